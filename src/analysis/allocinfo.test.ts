import { describe, expect, it } from 'vitest';
import { labFixture } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { requireSource } from '../registry/open.js';
import { allocinfoTop, diffAllocinfo } from './allocinfo.js';

const readAllocinfo = async (snap: DirectorySnapshot) => allocinfoTop(await requireSource(snap, 'allocinfo'));

describe('allocinfo top and diff', () => {
  it('sorts the 6.12 lab call sites by bytes and sums them', async () => {
    const t = await readAllocinfo(new DirectorySnapshot(labFixture('6.12', 'after')));
    expect(t.version).toBe('1.0');
    // Slab pages lead (kmemleak's object cache among them); the capture's tmpfs is removed
    // between moments, so shmem_alloc_folio is third.
    expect(t.tags.slice(0, 3).map((x) => [x.func, x.bytes])).toEqual([
      ['alloc_slab_page', 11866112],
      ['alloc_page_ext', 7864320],
      ['shmem_alloc_folio', 2170880],
    ]);
    expect(t.totalBytes).toBe(t.tags.reduce((s, x) => s + x.bytes, 0));
    expect(t.inaccurate).toBe(0);
  });

  it('diffs before -> after: the module call sites appear (the module was not loaded before), msl_balanced_churn does not grow', async () => {
    const [b, a] = [
      await readAllocinfo(new DirectorySnapshot(labFixture('6.12', 'before'))),
      await readAllocinfo(new DirectorySnapshot(labFixture('6.12', 'after'))),
    ];
    const d = diffAllocinfo(b.tags, a.tags);
    const leaky = d.filter((x) => x.module === 'msl_leaky');
    // 100 order-1 blocks; 40 areas of 2 pages, charged 8288 bytes and 3 calls each with what
    // vmalloc allocates beside the pages; 400 objects charged kmalloc-96's 192-byte stride
    // under slub_debug=U.
    expect(leaky.map((x) => [x.func, x.deltaBytes, x.deltaCalls])).toEqual([
      ['msl_page_leak', 819200, 100],
      ['msl_vmalloc_leak', 331520, 120],
      ['msl_slab_leak', 76800, 400],
      ['msl_balanced_churn', 0, 0],
      ['msl_balanced_churn', 0, 0],
    ]);
  });

  it('reads nothing from a 6.1 snapshot (no allocation profiling before 6.10)', async () => {
    await expect(readAllocinfo(new DirectorySnapshot(labFixture('6.1', 'after')))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      hint: expect.stringMatching(/6\.10\+/),
    });
  });
});
