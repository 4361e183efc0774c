import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labCounters, labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { requireSource } from '../registry/open.js';
import { reclaimFlags } from '../registry/sources/slabinfo.js';
import { parseCallstackBlocks } from '../sources/callstack_blocks.js';
import {
  diffCallstackDumps,
  diffSlabCallSites,
  parseSlabSortKey,
  readSlabCallSites,
  readSlabSiteTable,
  slabSiteGroups,
  slabTop,
} from './slab.js';

const snap = (k: '6.1' | '6.12', m: 'before' | 'mid' | 'after') => new DirectorySnapshot(labFixture(k, m));

/** slabTop of a snapshot, as `memsleuth slab top` reads it. */
async function slabTopOf(s: DirectorySnapshot, opts: Parameters<typeof slabTop>[3] = {}) {
  const { caches } = await requireSource(s, 'slabinfo');
  const flags = await reclaimFlags(
    s,
    caches.map((c) => c.name),
  );
  return slabTop(caches, (await s.manifest()).pageSizeBytes, flags, opts);
}

describe('slabTop', () => {
  it('totals and sorts the 6.1 lab slabinfo like slabtop', async () => {
    const t = await slabTopOf(snap('6.1', 'after'), { sortBy: parseSlabSortKey('a') });
    expect(t.sortBy).toBe('active');
    const lines = readFileSync(join(labFixture('6.1', 'after'), 'slabinfo'), 'utf8')
      .trim()
      .split('\n')
      .slice(2);
    const active = lines.map((l) => Number(l.split(/\s+/)[1]));
    expect(t.totals.activeObjs).toBe(active.reduce((s, x) => s + x, 0));
    expect(t.rows[0]!.activeObjs).toBe(Math.max(...active));
    // The collector copies slab/<cache>/reclaim_account: dentries are reclaimable, kmalloc is not.
    expect(t.reclaimKnown).toBe(true);
    expect(t.rows.find((r) => r.name === 'dentry')!.reclaimable).toBe(true);
    const k96 = t.rows.find((r) => r.name === 'kmalloc-96')!;
    expect(k96.reclaimable).toBe(false);
    expect(k96.cacheBytes).toBe(k96.numSlabs * k96.pagesPerSlab * 4096);
  });

  it('rejects unknown sort keys', () => {
    expect(() => parseSlabSortKey('z')).toThrow(/unknown key "z"/);
    expect(parseSlabSortKey('cache-size')).toBe('cache-size');
  });
});

describe('slab call sites', () => {
  it('reads every cache of a lab moment, bytes from slabinfo object sizes', async () => {
    const r = await readSlabCallSites(snap('6.12', 'after'));
    expect(r.hasStacks).toBe(true);
    const fill = r.sites.find((s) => s.caller?.func === 'msl_slab_leak')!;
    expect(fill).toMatchObject({
      cache: 'kmalloc-96',
      outstanding: 400,
      bytes: 400 * 192,
      pidMin: 8,
      pidMax: 28,
    });
    expect(r.noData.length).toBeGreaterThan(0);
  });

  it('builds the first sites by bytes (the table of `slab traces`) as sorting every site does', async () => {
    for (const k of ['6.1', '6.12'] as const) {
      const { table, ...rest } = await readSlabSiteTable(snap(k, 'after'));
      const all = table.all();
      expect({ sites: all, ...rest }).toEqual(await readSlabCallSites(snap(k, 'after')));
      const sorted = [...all].sort((a, b) => b.bytes - a.bytes || b.outstanding - a.outstanding);
      for (const n of [1, 20, 500, all.length + 1]) expect(table.top(n)).toEqual(sorted.slice(0, n));
      expect(table.size).toBe(all.length);
      expect(table.bytes).toBe(all.reduce((s, x) => s + x.bytes, 0));
    }
  });

  it('diffs mid -> after: the leak ran on after mid; in module code only the leaks grow', async () => {
    const [m, a] = [
      await readSlabCallSites(snap('6.1', 'mid')),
      await readSlabCallSites(snap('6.1', 'after')),
    ];
    const d = diffSlabCallSites(m.sites, a.sites);
    const fill = d.find((x) => x.caller?.func === 'msl_slab_leak')!;
    // 77 objects when the collector read kmalloc-96's traces, 164 by the module's counter at
    // the end of that capture, 400 when the module had finished.
    expect(fill.before.count).toBe(77);
    expect(labCounters('6.1', 'mid').slab_leaked).toBe(164);
    expect(fill.delta).toMatchObject({ count: 400 - 77, bytes: (400 - 77) * 168 });
    // Every module call site that grew is a leak: the slab leak's objects and, for each
    // leaked vmalloc area, vmalloc's own vm_struct, vmap_area and page array (40 in all).
    const grew = d.filter((x) => x.delta.bytes > 0 && x.frames.some((f) => f.module === 'msl_leaky'));
    expect(grew.map((x) => [x.cache, x.caller?.func, x.delta.count, x.after.count])).toEqual([
      ['kmalloc-96', 'msl_slab_leak', 323, 400],
      ['kmalloc-64', '__get_vm_area_node', 32, 40],
      ['vmap_area', 'alloc_vmap_area', 28, 40],
      ['kmalloc-16', '__vmalloc_node_range', 33, 40],
    ]);
    for (const x of grew.slice(1)) expect(x.frames.map((f) => f.func)).toContain('msl_vmalloc_leak');
    expect(d.some((x) => x.frames.some((f) => f.func === 'msl_balanced_churn'))).toBe(false);
  });

  it('merges entries of the same stack (different waste) into one group', async () => {
    const r = await readSlabCallSites(snap('6.12', 'after'), { cache: 'kmalloc-16' });
    const groups = slabSiteGroups(r.sites);
    expect(groups.reduce((s, g) => s + g.weights.count, 0)).toBe(
      r.sites.reduce((s, x) => s + x.outstanding, 0),
    );
    expect(groups.length).toBeLessThanOrEqual(r.sites.length);
  });
});

describe('diffCallstackDumps', () => {
  it('compares two count + call trace dumps by count', () => {
    const read = (m: 'before' | 'after') =>
      parseCallstackBlocks(
        readFileSync(join(labFixture('6.1', m), 'slab', 'kmalloc-96.alloc_traces'), 'utf8'),
      );
    const d = diffCallstackDumps(read('before'), read('after'));
    expect(d[0]!.delta.count).toBe(400);
    expect(d[0]!.frames.map((f) => f.func)).toContain('msl_slab_leak');
  });

  it('uses bytes when every block has a size', () => {
    const doc = readFileSync(join(REPO_FIXTURES, 'slabtrace', 'page_owner_sort-doc.txt'), 'utf8');
    const before = parseCallstackBlocks(doc.replace('1 times, 1 pages:', 'count: 1 size: 64'));
    const after = parseCallstackBlocks(doc.replace('1 times, 1 pages:', 'count: 5 size: 64'));
    expect(diffCallstackDumps(before, after)[0]).toMatchObject({ delta: { count: 4, bytes: 256 } });
  });
});
