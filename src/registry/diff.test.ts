import { describe, expect, it } from 'vitest';
import { type LabKernel, labFixture } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { diffSnapshots, rowsOf, type SnapshotDiff } from './diff.js';
import type { DiffRow } from './types.js';

const LEAKS = ['msl_slab_leak', 'msl_page_leak', 'msl_vmalloc_leak'];
const mentions = (r: DiffRow, fn: string) => r.name.includes(fn);

const cache = new Map<LabKernel, Promise<SnapshotDiff>>();
function labDiff(k: LabKernel): Promise<SnapshotDiff> {
  let p = cache.get(k);
  if (!p) {
    p = diffSnapshots(
      new DirectorySnapshot(labFixture(k, 'before')),
      new DirectorySnapshot(labFixture(k, 'after')),
    );
    cache.set(k, p);
  }
  return p;
}

describe.each(['6.1', '6.12'] as const)('diffSnapshots on lab %s before -> after', (k) => {
  it('compares every source both moments hold and names the missing ones', async () => {
    const d = await labDiff(k);
    const compared = d.sources.filter((s) => s.status === 'compared').map((s) => s.source);
    expect(compared).toEqual(
      expect.arrayContaining([
        'meminfo',
        'slabinfo',
        'buddyinfo',
        'vmallocinfo',
        'processes',
        'page_owner',
        'slab_traces',
        'kmemleak',
      ]),
    );
    const allocinfo = d.sources.find((s) => s.source === 'allocinfo')!;
    if (k === '6.1') expect(allocinfo).toMatchObject({ status: 'missing', missingIn: ['before', 'after'] });
    else expect(allocinfo.status).toBe('compared');
    // one ranked list
    for (let i = 1; i < d.rows.length; i++)
      expect(d.rows[i - 1]!.deltaBytes).toBeGreaterThanOrEqual(d.rows[i]!.deltaBytes);
  });

  it('puts the slab leak first in slab traces, the page leak first in page_owner, the vmalloc leak first in vmallocinfo', async () => {
    const d = await labDiff(k);
    const slab = rowsOf(d, 'slab_traces');
    const fill = slab.findIndex((r) => r.name === 'msl_slab_leak [msl_leaky]');
    expect(slab[fill]).toMatchObject({ detail: 'kmalloc-96', deltaCount: 400 });
    // Between the two moments the guest ran two more captures, each reading thousands of
    // procfs, sysfs and debugfs files: the dentries and inodes they left cached are real
    // slab growth and rank above the leak by bytes. Nothing else does.
    expect(slab.slice(0, fill).map((r) => `${r.name} ${r.detail}`)).toEqual([
      '__d_alloc dentry',
      'alloc_inode inode_cache',
      'alloc_inode inode_cache',
    ]);
    // it is the first slab call site in module code
    expect(slab.find((r) => r.module !== undefined)!.name).toBe('msl_slab_leak [msl_leaky]');
    expect(rowsOf(d, 'page_owner')[0]).toMatchObject({
      name: 'msl_page_leak [msl_leaky]',
      deltaCount: 200,
      deltaBytes: 200 * 4096,
    });
    // page cache (the capture's own tmpfs files) is ranked by meminfo instead
    const po = d.sources.find((x) => x.source === 'page_owner')!;
    expect(po.note).toMatch(/^page cache and anonymous page blocks left out: \d+ before, \d+ after$/);
    expect(rowsOf(d, 'vmallocinfo')[0]).toMatchObject({
      name: 'msl_vmalloc_leak [msl_leaky]',
      deltaCount: 40,
      deltaBytes: 40 * 2 * 4096,
    });
    const km = rowsOf(d, 'kmemleak');
    expect(
      km
        .slice(0, 2)
        .map((r) => r.name)
        .sort(),
    ).toEqual(['msl_slab_leak [msl_leaky]', 'msl_vmalloc_leak [msl_leaky]']);
    if (k === '6.12') {
      const ai = rowsOf(d, 'allocinfo');
      // allocinfo also counts every slab page (alloc_slab_page: the dentries and inodes
      // above, kmemleak's own objects); in module code the three leaks lead, by size.
      expect(ai[0]!.name).toBe('alloc_slab_page');
      expect(
        ai
          .filter((r) => r.module)
          .slice(0, 3)
          .map((r) => r.name),
      ).toEqual(['msl_page_leak [msl_leaky]', 'msl_vmalloc_leak [msl_leaky]', 'msl_slab_leak [msl_leaky]']);
      expect(ai.findIndex((r) => r.name === 'msl_page_leak [msl_leaky]')).toBe(1);
    }
  });

  it('never lists the balanced msl_balanced_churn as a gainer in kmemleak, slab traces, vmallocinfo or allocinfo', async () => {
    const d = await labDiff(k);
    for (const s of ['kmemleak', 'slab_traces', 'vmallocinfo', 'allocinfo'] as const) {
      expect(rowsOf(d, s).filter((r) => r.deltaBytes > 0 && mentions(r, 'msl_balanced_churn'))).toEqual([]);
    }
  });

  it('ranks msl_balanced_churn below every leak in page_owner', async () => {
    const po = rowsOf(await labDiff(k), 'page_owner');
    const churn = po.findIndex((r) => mentions(r, 'msl_balanced_churn'));
    const leakIdx = LEAKS.map((fn) => po.findIndex((r) => mentions(r, fn)));
    for (const i of leakIdx) expect(i).toBeGreaterThanOrEqual(0);
    if (churn >= 0) for (const i of leakIdx) expect(i).toBeLessThan(churn);
  });
});

describe('diffSnapshots page_owner with every allocator', () => {
  it("ranks the capture's own tmpfs page cache first on 6.12 when page cache is kept", async () => {
    const d = await diffSnapshots(
      new DirectorySnapshot(labFixture('6.12', 'before')),
      new DirectorySnapshot(labFixture('6.12', 'after')),
      {
        pageOwnerAll: true,
        sources: ['page_owner'],
      },
    );
    const po = rowsOf(d, 'page_owner');
    expect(po[0]!.name).toMatch(/^shmem_get_folio_gfp/);
    expect(po.findIndex((r) => r.name === 'msl_page_leak [msl_leaky]')).toBe(1);
    expect(d.sources[0]!.note).toBeUndefined();
  });
});

describe('diffSnapshots with sources missing on one side', () => {
  it('names allocinfo as missing before when only after has it (6.1 before vs 6.12 after)', async () => {
    const d = await diffSnapshots(
      new DirectorySnapshot(labFixture('6.1', 'before')),
      new DirectorySnapshot(labFixture('6.12', 'after')),
      {
        sources: ['meminfo', 'allocinfo'],
      },
    );
    expect(d.sources).toEqual([
      { source: 'meminfo', status: 'compared', rows: expect.any(Number) },
      {
        source: 'allocinfo',
        status: 'missing',
        missingIn: ['before'],
        reason: 'before: not present',
        rows: 0,
      },
    ]);
  });
});
