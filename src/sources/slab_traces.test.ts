import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { rng } from '../../test/rng.js';
import { parseSlabTraces, type SlabTraceLocation, SlabTraceReader } from './slab_traces.js';

const read = (p: string) => readFileSync(p, 'utf8');

describe('parseSlabTraces', () => {
  it('reads 6.12 debugfs alloc_traces with stacks, waste= and pid ranges', () => {
    const file = join(labFixture('6.12', 'after'), 'slab', 'kmalloc-96.alloc_traces');
    const t = parseSlabTraces(read(file), { file });
    expect(t.hasStacks).toBe(true);
    expect(t.noData).toBe(false);
    const first = t.locations[0]!;
    expect(first.count).toBe(428);
    expect(first.caller).toMatchObject({ func: 'eventfs_create_dir', offset: 0x59, length: 0x12a });
    expect(first.wasteBytes).toBe(3424);
    expect(first.wastePerObjectBytes).toBe(8);
    expect([first.ageMinJiffies, first.ageAvgJiffies, first.ageMaxJiffies]).toEqual([20508, 20509, 20511]);
    expect(first.stack?.length).toBe(10);
    const leak = t.locations.find((l) => l.caller?.func === 'msl_slab_leak')!;
    expect(leak.count).toBe(400);
    expect(leak.caller?.module).toBe('msl_leaky');
    expect([leak.pidMin, leak.pidMax]).toEqual([8, 28]);
    expect(leak.wasteBytes).toBeUndefined();
    expect(leak.stack?.map((f) => f.func).slice(0, 2)).toEqual(['msl_slab_leak', 'msl_step']);
    // every count line of the file became a location
    const countLines = read(file)
      .split('\n')
      .filter((l) => /^ +\d+ /.test(l)).length;
    expect(t.locations.length).toBe(countLines);
  });

  it('reads <not-available> and single age= in free_traces', () => {
    const file = join(labFixture('6.12', 'after'), 'slab', 'kmalloc-96.free_traces');
    const t = parseSlabTraces(read(file), { file });
    const na = t.locations[0]!;
    expect(na.caller).toBeUndefined();
    expect(na.count).toBe(1095);
    expect(na.ageMinJiffies).toBe(4294912967);
    expect(na.ageMaxJiffies).toBe(4294912967);
    expect(na.stack).toBeUndefined();
  });

  it('reads every 6.1 and 6.12 lab trace file', () => {
    for (const k of ['6.1', '6.12'] as const) {
      const dir = join(labFixture(k, 'after'), 'slab');
      for (const name of readdirSync(dir)) {
        if (!/_traces$/.test(name)) continue;
        const t = parseSlabTraces(read(join(dir, name)), { file: name });
        expect(t.noData || t.locations.length > 0).toBe(true);
      }
    }
  });

  it('gives the same locations read in pieces (SlabTraceReader) as whole, every lab file', () => {
    const next = rng(3);
    for (const k of ['6.1', '6.12'] as const) {
      const dir = join(labFixture(k, 'after'), 'slab');
      for (const name of readdirSync(dir)) {
        if (!/_traces$/.test(name)) continue;
        const text = read(join(dir, name));
        const whole = parseSlabTraces(text, { file: name });
        const locations: SlabTraceLocation[] = [];
        const r = new SlabTraceReader({ file: name }, (l) => locations.push(l));
        const bytes = Buffer.from(text, 'utf8');
        for (let at = 0; at < bytes.length; ) {
          const n = 1 + (next() % 5000);
          r.bytes(bytes.subarray(at, at + n));
          at += n;
        }
        expect({ locations, ...r.end() }).toEqual(whole);
      }
    }
  });

  it('reads `No data`', () => {
    const file = join(labFixture('6.1', 'after'), 'slab', 'PING.alloc_traces');
    expect(read(file).trim()).toBe('No data');
    expect(parseSlabTraces(read(file), { file })).toEqual({ locations: [], noData: true, hasStacks: false });
  });

  it('reads the <= 5.13 sysfs alloc_calls/free_calls lines (no stack, no waste)', () => {
    const file = join(REPO_FIXTURES, 'slab-5.13', 'kmalloc-96.alloc_calls');
    const t = parseSlabTraces(read(file), { file });
    expect(t.hasStacks).toBe(false);
    expect(t.locations[0]).toMatchObject({
      count: 400,
      caller: { func: 'demo_cache_fill', module: 'leaky' },
    });
    const free = parseSlabTraces(read(join(REPO_FIXTURES, 'slab-5.13', 'kmalloc-96.free_calls')));
    expect(free.locations[0]!.caller).toBeUndefined();
    expect(free.locations[0]!.count).toBe(505);
  });

  it('reads cpus= and nodes= (printed with more than one CPU / node online)', () => {
    // list_locations()/slab_debugfs_show(): " cpus=%*pbl" then " nodes=%*pbl".
    const t = parseSlabTraces(
      '     12 pci_create_attr+0x31/0x12c age=11230/11230/11231 pid=1 cpus=0-3,7 nodes=0-1\n',
    );
    expect(t.locations[0]).toMatchObject({ count: 12, cpus: '0-3,7', nodes: '0-1', pidMin: 1, pidMax: 1 });
  });

  it('rejects garbage with file and line', () => {
    expect(() => parseSlabTraces('', { file: 'x' })).toThrow(/x:1: expected/);
    expect(() => parseSlabTraces('hello world\n', { file: 'x' })).toThrow(/x:1: expected/);
    expect(() => parseSlabTraces('     12 foo+0x1/0x2 age=1 pid=1 bogus=3\n', { file: 'x' })).toThrow(
      /x:1:.*bogus/,
    );
    expect(() => parseSlabTraces('     12 foo+0x1/0x2 pid=1\n', { file: 'x' })).toThrow(/x:1:.*age=/);
    expect(() => parseSlabTraces('     12 foo+0x1/0x2 age=1/2 pid=1\n', { file: 'x' })).toThrow(/x:1:/);
    expect(() => parseSlabTraces('No data\n     1 foo age=1 pid=1\n', { file: 'x' })).toThrow(/x:2:/);
    expect(() => parseSlabTraces('        stray_frame+0x1/0x2\n', { file: 'x' })).toThrow(/x:1:/);
  });
});
