import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture, LAB_MOMENTS as MOMENTS } from '../../test/parsers.js';
import { labCounters, labFixture } from '../../test/paths.js';
import { parseVmallocinfo, type Vmallocinfo } from './vmallocinfo.js';

const PAGE_SIZE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());

/** Checks that hold for any vmallocinfo, against an independent reading of the text. */
function checkAgainstText(v: Vmallocinfo, text: string, pageSize: number) {
  const lines = text.trim().split('\n');
  expect(v.areas).toHaveLength(lines.length);
  v.areas.forEach((a, i) => {
    const tokens = lines[i]!.trim().split(/\s+/);
    expect(a.line).toBe(i + 1);
    expect(`${a.startAddr}-${a.endAddr}`).toBe(tokens[0]);
    expect(a.sizeBytes).toBe(Number(tokens[1]));
    const pagesTok = tokens.find((t) => t.startsWith('pages='));
    expect(a.pages).toBe(pagesTok === undefined ? undefined : Number(pagesTok.slice(6)));
    expect(a.kind === 'unpurged').toBe(lines[i]!.endsWith(' unpurged vm_area'));
    // Every vmalloc area with pages carries one guard page in its printed size (VM_NO_GUARD is
    // not used by vmalloc()), whatever the kernel version.
    if (a.flags.includes('vmalloc') && a.pages !== undefined)
      expect(a.sizeBytes).toBe((a.pages + 1) * pageSize);
  });
}

describe('parseVmallocinfo', () => {
  it('reads this machine’s /proc/vmallocinfo', () => {
    const text = readFileSync('/proc/vmallocinfo', 'utf8');
    const v = parseVmallocinfo(text);
    checkAgainstText(v, text, PAGE_SIZE);
    const vmalloc = v.areas.filter((a) => a.flags.includes('vmalloc'));
    expect(vmalloc.length).toBeGreaterThan(10);
    // Kernel stacks (CONFIG_VMAP_STACK): 16 KiB of pages plus the guard page, from kernel_clone.
    expect(
      v.areas.some(
        (a) => a.caller?.func === 'kernel_clone' && a.pages === 4 && a.sizeBytes === 5 * PAGE_SIZE,
      ),
    ).toBe(true);
    // This is a one-node machine: every N<node>= count is node 0 and equals pages=.
    for (const a of vmalloc)
      if (Object.keys(a.nodePages).length > 0) expect(a.nodePages).toEqual({ 0: a.pages });
  });

  it('reads the live-6.18 capture: ioremap with phys=, vpages, unpurged areas, vmap', () => {
    const text = fixture('live-6.18', 'vmallocinfo');
    const v = parseVmallocinfo(text);
    checkAgainstText(v, text, 4096);
    const ioremap = v.areas.find((a) => a.flags.includes('ioremap'))!;
    expect(ioremap.physAddr).toMatch(/^0x[0-9a-f]{16}$/);
    expect(ioremap.pages).toBeUndefined();
    expect(v.areas.some((a) => a.flags.includes('vpages'))).toBe(true);
    expect(v.areas.some((a) => a.flags.includes('vmap'))).toBe(true);
    const unpurged = v.areas.filter((a) => a.kind === 'unpurged');
    expect(unpurged.length).toBe(text.split('\n').filter((l) => l.endsWith('unpurged vm_area')).length);
    for (const a of unpurged) {
      expect(a.caller).toBeUndefined();
      expect(a.flags).toEqual([]);
      expect(a.nodePages).toEqual({});
    }
  });

  it.each(MOMENTS)('reads lab %s %s and finds the leaking module’s areas', (kernel, moment) => {
    const text = readFileSync(join(labFixture(kernel, moment), 'vmallocinfo'), 'utf8');
    const v = parseVmallocinfo(text);
    checkAgainstText(v, text, 4096);
    const leaky = v.areas.filter((a) => a.caller?.module === 'msl_leaky');
    expect(leaky).toHaveLength(text.split('\n').filter((l) => l.includes(' [msl_leaky] ')).length);
    for (const a of leaky) {
      expect(a.caller).toMatchObject({
        func: 'msl_vmalloc_leak',
        offset: expect.any(Number),
        length: expect.any(Number),
      });
      expect(a).toMatchObject({ pages: 2, sizeBytes: 3 * 4096, flags: ['vmalloc'] });
    }
    // msl_leaky leaves 40 areas of 2 pages (test/fixtures/lab-*/README.md). `mid` caught the
    // module running: the collector reads vmallocinfo in its first seconds (4 areas) and the
    // module's counter at the end (17 on 6.1, 21 on 6.12).
    const counted = labCounters(kernel, moment).vmalloc_leaked ?? 0;
    if (moment === 'before') expect(leaky).toHaveLength(0);
    else if (moment === 'mid') {
      expect(leaky).toHaveLength(4);
      expect(counted).toBeGreaterThan(4);
    } else expect(leaky).toHaveLength(40);
    if (moment !== 'mid') expect(leaky).toHaveLength(counted);
  });

  it('reads the 3.x format of Documentation/filesystems/proc.txt: bare-hex phys=, NUMA counts, no flags', () => {
    const v = parseVmallocinfo(fixture('docs-3.6', 'vmallocinfo'));
    expect(v.areas[0]).toMatchObject({
      sizeBytes: 2101248,
      caller: { func: 'alloc_large_system_hash', offset: 0x204, length: 0x2c0 },
      pages: 512,
      flags: ['vmalloc'],
      nodePages: { 0: 128, 1: 128, 2: 128, 3: 128 },
    });
    expect(v.areas[2]).toMatchObject({ physAddr: '7fee8000', flags: ['ioremap'] });
    expect(v.areas[4]).toMatchObject({ caller: { func: 'init_vdso_vars' }, flags: [], nodePages: {} });
    expect(v.areas[7]!.caller).toEqual({
      func: 'xt_alloc_table_info',
      offset: 0xfe,
      length: 0x130,
      module: 'x_tables',
    });
    const counted = v.areas.filter((a) => Object.keys(a.nodePages).length > 0);
    for (const a of counted) expect(Object.values(a.nodePages).reduce((s, n) => s + n, 0)).toBe(a.pages);
  });

  it('reads vm_map_ram and unpurged lines (mm/vmalloc.c since 4.13), areas without a caller, raw addresses', () => {
    const v = parseVmallocinfo(
      [
        '0xffffc90000000000-0xffffc90000005000   20480 vm_map_ram',
        '0xffffc90000005000-0xffffc90000007000    8192 unpurged vm_area',
        '0xffffc90000008000-0xffffc9000000d000   20480 pages=4 vmalloc',
        '0xffffc9000000d000-0xffffc9000000f000    8192 0xffffffffc0a01234 pages=1 vmalloc user dma-coherent',
      ].join('\n'),
    );
    expect(v.areas.map((a) => a.kind)).toEqual(['vm_map_ram', 'unpurged', 'area', 'area']);
    expect(v.areas[2]!.caller).toBeUndefined();
    expect(v.areas[3]!.caller?.func).toBe('0xffffffffc0a01234');
    expect(v.areas[3]!.flags).toEqual(['vmalloc', 'user', 'dma-coherent']);
  });

  describe('malformed input', () => {
    it('rejects empty input', () => {
      expectParseError(() => parseVmallocinfo(''), {
        line: 1,
        message: ['/proc/vmallocinfo:1: expected', '<empty input>'],
      });
    });
    it('rejects a line without an address range or size', () => {
      expectParseError(
        () => parseVmallocinfo('ffffc90000000000-ffffc90000005000 20480 vmap\n', { file: 'v' }),
        {
          line: 1,
          message: ['v:1: expected "0x<start>-0x<end> <size>', 'found "ffffc90000000000-'],
        },
      );
      expectParseError(() => parseVmallocinfo('0xffffc90000000000-0xffffc90000005000 vmap\n'), {
        line: 1,
        message: ['found "0xffffc90000000000-0xffffc90000005000 vmap"'],
      });
    });
    it('rejects an unknown word after the caller, naming it', () => {
      const text = fixture('docs-3.6', 'vmallocinfo').replace('pages=11 vmalloc', 'pages=11 vmalloc bogus');
      expectParseError(() => parseVmallocinfo(text), {
        line: 6,
        message: ['expected pages=N, phys=ADDR, N<node>=N or one of ioremap', 'found "\\"bogus\\" in'],
      });
    });
    it('rejects a line cut in the middle (truncated file)', () => {
      const text = fixture('docs-3.6', 'vmallocinfo');
      const cut = text.slice(0, text.indexOf('pages=256') + 4);
      expectParseError(() => parseVmallocinfo(cut), { line: 2, message: ['found "\\"page\\" in'] });
    });
    it('rejects a caller that is not a symbol', () => {
      expectParseError(
        () => parseVmallocinfo('0xffffc90000000000-0xffffc90000005000   20480 foo+bar pages=4 vmalloc\n'),
        {
          line: 1,
          message: ['a caller like "func+0x1a/0x40 [module]"'],
        },
      );
    });
  });
});
