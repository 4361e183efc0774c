import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture, LAB_MOMENTS as MOMENTS } from '../../test/parsers.js';
import { type LabMoment, labFixture } from '../../test/paths.js';
import { parseMeminfo } from './meminfo.js';
import { parseSlabinfo, slabCacheBytes } from './slabinfo.js';

/** Independent reading of a cache line: whitespace tokens, numbers at fixed positions from the end. */
function columns(line: string) {
  const t = line.trim().split(/\s+/);
  const n = (i: number) => Number(t[t.length - i]);
  return {
    name: t[0],
    activeObjs: n(15),
    numObjs: n(14),
    objSize: n(13),
    pagesPerSlab: n(11),
    numSlabs: n(2),
  };
}

/** Σ numSlabs × pagesPerSlab × 4096 against meminfo Slab. */
function slabTotals(slabText: string, meminfoText: string) {
  const s = parseSlabinfo(slabText);
  const slabBytes = s.caches.reduce((sum, c) => sum + slabCacheBytes(c, 4096).slabBytes, 0);
  return { slabBytes, meminfoSlab: parseMeminfo(meminfoText).bytes.Slab! };
}

describe('parseSlabinfo', () => {
  it('reads this machine’s /proc/slabinfo (SLUB, 2.1)', () => {
    const text = readFileSync('/proc/slabinfo', 'utf8');
    const s = parseSlabinfo(text);
    expect(s.version).toBe('2.1');
    expect(s.statistics).toBe(false);
    const lines = text.trim().split('\n').slice(2);
    expect(s.caches).toHaveLength(lines.length);
    s.caches.forEach((c, i) => {
      const col = columns(lines[i]!);
      expect([c.name, c.activeObjs, c.numObjs, c.objSizeBytes, c.pagesPerSlab, c.numSlabs]).toEqual([
        col.name,
        col.activeObjs,
        col.numObjs,
        col.objSize,
        col.pagesPerSlab,
        col.numSlabs,
      ]);
      // SLUB prints no tunables and the same number for active and total slabs.
      expect([c.limit, c.batchcount, c.sharedFactor, c.sharedAvail]).toEqual([0, 0, 0, 0]);
      expect(c.activeSlabs).toBe(c.numSlabs);
    });
  });

  it('sums to meminfo Slab on this machine (live-6.18 capture: within 5%)', () => {
    const { slabBytes, meminfoSlab } = slabTotals(
      fixture('live-6.18', 'slabinfo'),
      fixture('live-6.18', 'meminfo'),
    );
    expect(Math.abs(slabBytes - meminfoSlab) / meminfoSlab).toBeLessThan(0.05);
  });

  it.each(MOMENTS)('lab %s %s: caches sum to meminfo Slab within 2%%', (kernel, moment) => {
    const dir = labFixture(kernel, moment);
    const { slabBytes, meminfoSlab } = slabTotals(
      readFileSync(join(dir, 'slabinfo'), 'utf8'),
      readFileSync(join(dir, 'meminfo'), 'utf8'),
    );
    expect(Math.abs(slabBytes - meminfoSlab) / meminfoSlab).toBeLessThan(0.02);
  });

  it('lab 6.12: the leaking module’s kmalloc-96 objects show in the slabinfo delta', () => {
    const get = (m: LabMoment) =>
      parseSlabinfo(readFileSync(join(labFixture('6.12', m), 'slabinfo'), 'utf8')).caches.find(
        (c) => c.name === 'kmalloc-96',
      )!;
    // msl_slab_leak leaks one 96-byte object per step, 400 steps (test/fixtures/lab-6.12/README.md).
    expect(get('after').activeObjs - get('before').activeObjs).toBeGreaterThanOrEqual(400);
  });

  it('computes object bytes and slab bytes', () => {
    const s = parseSlabinfo(fixture('lkml-2.6.8', 'slabinfo'));
    const task = s.caches.find((c) => c.name === 'task_struct')!;
    expect(slabCacheBytes(task, 4096)).toEqual({ objectBytes: 82 * 1424, slabBytes: 17 * 2 * 4096 });
  });

  it('reads slabinfo 2.0 of SLAB on 2.6.8: tunables are limit, batchcount, shared whatever the header says', () => {
    const text = fixture('lkml-2.6.8', 'slabinfo');
    const s = parseSlabinfo(text);
    expect(s.version).toBe('2.0');
    expect(s.caches).toHaveLength(text.trim().split('\n').length - 2);
    expect(s.caches[0]).toMatchObject({
      name: 'rpc_buffers',
      limit: 24,
      batchcount: 12,
      sharedFactor: 0,
      line: 3,
    });
    // Names longer than the %-17s column, and names with parentheses.
    expect(s.caches.map((c) => c.name)).toEqual(
      expect.arrayContaining(['ntfs_big_inode_cache', 'biovec-(256)', 'size-131072(DMA)']),
    );
    const buffer = s.caches.find((c) => c.name === 'buffer_head')!;
    expect(buffer).toMatchObject({
      activeObjs: 33719,
      numObjs: 36126,
      objSizeBytes: 48,
      objPerSlab: 81,
      activeSlabs: 446,
      numSlabs: 446,
    });
    expect(buffer.numObjs).toBe(buffer.numSlabs * buffer.objPerSlab);
  });

  it('reads slabinfo 2.1 of SLUB on 2.6.29 (lkml bug 12832)', () => {
    const s = parseSlabinfo(fixture('lkml-2009-bug12832', 'slabinfo'));
    expect(s.version).toBe('2.1');
    const fasync = s.caches.find((c) => c.name === 'fasync_cache')!;
    expect(fasync).toMatchObject({ activeObjs: 313798, numObjs: 313820, numSlabs: 1846 });
    expect(s.caches.find((c) => c.name === 'dm_snap_pending_exception')?.activeObjs).toBe(144);
  });

  it('reads the "(statistics)" variant of CONFIG_DEBUG_SLAB (format of mm/slab.c slabinfo_show_stats)', () => {
    // Header and sections as printed by mm/slab.c before 6.8; numbers are those of the 2.6.8 capture
    // plus globalstat/cpustat columns in the printed order.
    const text = [
      'slabinfo - version: 2.1 (statistics)',
      '# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail> : globalstat <listallocs> <maxobjs> <grown> <reaped> <error> <maxfreeable> <nodeallocs> <remotefrees> <alienoverflow> : cpustat <allochit> <allocmiss> <freehit> <freemiss>',
      'rpc_buffers            8      8   2048    2    1 : tunables   24   12    0 : slabdata      4      4      0 : globalstat      16      8     4    0    0    0    0    0    0 : cpustat     10      4      6      0',
    ].join('\n');
    const s = parseSlabinfo(text);
    expect(s.statistics).toBe(true);
    expect(s.caches[0]!.globalstat).toEqual([16, 8, 4, 0, 0, 0, 0, 0, 0]);
    expect(s.caches[0]!.cpustat).toEqual([10, 4, 6, 0]);
  });

  describe('malformed input', () => {
    const head = fixture('lkml-2.6.8', 'slabinfo').split('\n').slice(0, 2).join('\n');
    it('rejects empty input', () => {
      expectParseError(() => parseSlabinfo(''), {
        line: 1,
        message: ['/proc/slabinfo:1: expected "slabinfo - version: 2.1"', '<empty input>'],
      });
    });
    it('rejects an unsupported version (1.1 of 2.4 kernels) and a missing header', () => {
      expectParseError(() => parseSlabinfo('slabinfo - version: 1.1\nkmem_cache 59 78 100 1 1 1\n'), {
        line: 1,
        message: [
          'expected "slabinfo - version: 2.0" or "slabinfo - version: 2.1"',
          'found "slabinfo - version: 1.1"',
        ],
      });
      expectParseError(
        () =>
          parseSlabinfo('slabinfo - version: 2.1\nkmalloc-8 1 1 8 512 1 : tunables 0 0 0 : slabdata 1 1 0\n'),
        {
          line: 2,
          message: ['the column header "# name <active_objs> ..."'],
        },
      );
    });
    it('rejects a cache line with a missing section, a bad number or active > total', () => {
      expectParseError(
        () => parseSlabinfo(`${head}\nkmalloc-8 1 1 8 512 1 : tunables 0 0 0\n`, { file: 's' }),
        {
          line: 3,
          message: ['s:3: expected "<name> <active_objs>', 'found "kmalloc-8 1 1 8 512 1 : tunables 0 0 0"'],
        },
      );
      expectParseError(
        () => parseSlabinfo(`${head}\nkmalloc-8 1 x 8 512 1 : tunables 0 0 0 : slabdata 1 1 0\n`),
        {
          line: 3,
          message: ['five numbers after the name'],
        },
      );
      expectParseError(
        () => parseSlabinfo(`${head}\nkmalloc-8 9 1 8 512 1 : tunables 0 0 0 : slabdata 1 1 0\n`),
        {
          line: 3,
          message: ['<active_objs> <= <num_objs> for kmalloc-8'],
        },
      );
      expectParseError(
        () =>
          parseSlabinfo(`${head}\nkmalloc-8 1 1 8 512 1 : tunables 0 0 0 : slabdata 1 1 0 : globalstat 1\n`),
        {
          line: 3,
          message: ['extra sections only in a "(statistics)" slabinfo'],
        },
      );
    });
    it('rejects a table cut in the middle of a line, or after the header', () => {
      const text = fixture('lkml-2.6.8', 'slabinfo');
      const cut = text.slice(0, text.indexOf('ext3_inode_cache') + 40);
      expectParseError(() => parseSlabinfo(cut), { line: 48, message: ['found "ext3_inode_cache'] });
      expectParseError(() => parseSlabinfo(`${head}\n`), {
        line: 3,
        message: ['at least one cache line after the header', '<end of file>'],
      });
    });
    it('rejects a cache listed twice', () => {
      const line = 'kmalloc-8 1 1 8 512 1 : tunables 0 0 0 : slabdata 1 1 0';
      expectParseError(() => parseSlabinfo(`${head}\n${line}\n${line}\n`), {
        line: 4,
        message: ['each cache once (kmalloc-8 repeats)'],
      });
    });
  });
});
