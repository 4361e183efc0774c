import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { type KmemleakReport, parseKmemleak, scanKmemleak } from './kmemleak.js';

const read = (p: string) => readFileSync(p, 'utf8');

describe('parseKmemleak', () => {
  it('reads the 6.12 lab report: backtrace (crc), frames without addresses', () => {
    const file = join(labFixture('6.12', 'after'), 'kmemleak');
    const text = read(file);
    const { reports } = parseKmemleak(text, { file });
    expect(reports.length).toBe((text.match(/^unreferenced object/gm) ?? []).length);
    expect(reports.length).toBe(440);
    const r = reports[0]!;
    expect(r).toMatchObject({
      address: '0xffff888003150f00',
      type: 'virt',
      sizeBytes: 96,
      comm: 'kworker/0:0',
      pid: 8,
      jiffies: 4294899621,
      hexDumpBytes: 32,
      crc: 'a4d68168',
    });
    expect(r.ageSeconds).toBeUndefined();
    expect(r.frames.map((f) => f.func).slice(0, 2)).toEqual(['__kmalloc_noprof', 'msl_slab_leak']);
    expect(r.frames[1]!.module).toBe('msl_leaky');
    expect(r.frames[1]!.address).toBeUndefined();
    expect(reports.filter((x) => x.frames.some((f) => f.func === 'msl_vmalloc_leak')).length).toBe(40);
  });

  it('reads the 6.1 lab report: `backtrace:` and [<address>] frames', () => {
    const file = join(labFixture('6.1', 'after'), 'kmemleak');
    const { reports } = parseKmemleak(read(file), { file });
    expect(reports.length).toBe(440);
    expect(reports[0]!.crc).toBeUndefined();
    expect(reports[0]!.frames[2]).toMatchObject({
      func: 'msl_slab_leak',
      address: 'ffffffffa0000021',
      module: 'msl_leaky',
    });
  });

  it('reads an empty report file (nothing unreferenced)', () => {
    expect(parseKmemleak(read(join(labFixture('6.12', 'before'), 'kmemleak'))).reports).toEqual([]);
  });

  it('reads (age ...) and hashed addresses (vendor 5.x arm64, seed 004)', () => {
    const { reports } = parseKmemleak(
      read(join(REPO_FIXTURES, 'kmemleak-docs', 'seed004-arm64-age.kmemleak')),
    );
    expect(reports.length).toBe(1);
    expect(reports[0]).toMatchObject({ comm: 'softirq', pid: 0, sizeBytes: 8192, ageSeconds: 42936.6 });
    expect(reports[0]!.frames.length).toBe(16);
    expect(reports[0]!.frames[4]).toMatchObject({
      func: 'pci_rx_dma_done_handle',
      module: 'mt7916_ap',
      address: '0000000032e42415',
    });
  });

  it('reads (percpu) objects, per-cpu hex dumps and unsymbolised frames (6.19 bug report)', () => {
    const { reports } = parseKmemleak(
      read(join(REPO_FIXTURES, 'kmemleak-docs', 'nvme-6.19-percpu.kmemleak')),
    );
    expect(reports.map((r) => r.type)).toEqual(['virt', 'virt', 'percpu', 'virt']);
    expect(reports[2]).toMatchObject({
      address: '0x60777301a898',
      sizeBytes: 8,
      hexDumpBytes: 8,
      hexDumpCpu: 9,
      crc: '0',
    });
    expect(reports[0]!.frames[4]).toEqual({ func: '0xffffffffc11de07f' });
  });

  it('reads 2.6.31 lines prefixed with `kmemleak: ` and without a hex dump', () => {
    // 2.6.31 print_unreferenced() used print_helper(seq, "kmemleak: unreferenced object ...").
    const lab = read(join(labFixture('6.1', 'after'), 'kmemleak'))
      .split('\n')
      .slice(0, 30);
    const old = lab
      .filter((l) => !/hex dump|^ {4}[0-9a-f]{2} /.test(l))
      .map((l) => (l ? `kmemleak: ${l}` : l))
      .join('\n');
    const { reports } = parseKmemleak(old);
    expect(reports.length).toBe(2);
    expect(reports[0]!.hexDumpBytes).toBeUndefined();
    expect(reports[1]!.frames.map((f) => f.func)).toContain('msl_vmalloc_leak');
  });

  it('reads (phys) objects', () => {
    // print_unreferenced(): "unreferenced object%s 0x%08lx (size %zu):" with " (phys)".
    const lab = read(join(REPO_FIXTURES, 'kmemleak-docs', 'seed004-arm64-age.kmemleak'));
    const { reports } = parseKmemleak(lab.replace('unreferenced object 0x', 'unreferenced object (phys) 0x'));
    expect(reports[0]!.type).toBe('phys');
  });

  it('rejects garbage and truncated reports with file and line', () => {
    const lab = read(join(labFixture('6.12', 'after'), 'kmemleak')).split('\n');
    expect(() => parseKmemleak('garbage\n', { file: 'k' })).toThrow(/k:1: expected/);
    expect(() => parseKmemleak(lab.slice(0, 3).join('\n'), { file: 'k' })).toThrow(
      /k:1: expected a complete report/,
    );
    const bad = [...lab.slice(0, 6), '    !!not a frame!!', ...lab.slice(7, 20)].join('\n');
    expect(() => parseKmemleak(bad, { file: 'k' })).toThrow(/k:7:/);
    const noComm = [lab[0], '  pid 3', ...lab.slice(2, 14)].join('\n');
    expect(() => parseKmemleak(noComm, { file: 'k' })).toThrow(/k:2: expected ` {2}comm/);
  });
});

describe('scanKmemleak (streaming)', () => {
  it('gives the same reports as parseKmemleak whatever the chunk boundaries', async () => {
    const file = join(labFixture('6.1', 'after'), 'kmemleak');
    const whole = parseKmemleak(read(file)).reports;
    for (const hw of [7, 64, 4096]) {
      const got: KmemleakReport[] = [];
      const r = await scanKmemleak(createReadStream(file, { highWaterMark: hw }), (x) => got.push(x), {
        file,
      });
      expect(r.reports).toBe(440);
      expect(got).toEqual(whole);
    }
  });

  it('reports a truncated stream with file and line', async () => {
    // cut inside the second report's hex dump (the report starts on line 16)
    const text = read(join(labFixture('6.12', 'after'), 'kmemleak'))
      .split('\n')
      .slice(0, 18)
      .join('\n');
    await expect(scanKmemleak(Readable.from([text]), () => {}, { file: 'k' })).rejects.toThrow(
      /k:16: expected a complete report ending in a backtrace/,
    );
  });
});
