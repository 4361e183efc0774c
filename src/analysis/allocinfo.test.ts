import { describe, expect, it } from 'vitest';
import { sharedMoment } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { diffAllocinfo, readAllocinfo } from './allocinfo.js';

describe('allocinfo top and diff', () => {
  it('sorts the 6.12 lab call sites by bytes and sums them', async () => {
    const t = await readAllocinfo(new DirectorySnapshot(sharedMoment('6.12', 'after')));
    expect(t.version).toBe('1.0');
    expect(t.tags[0]!.func).toBe('shmem_alloc_folio');
    expect(t.totalBytes).toBe(t.tags.reduce((s, x) => s + x.bytes, 0));
    expect(t.inaccurate).toBe(0);
  });

  it('diffs before -> after: the module call sites appear (the module was not loaded before), demo_churn does not grow', async () => {
    const [b, a] = [
      await readAllocinfo(new DirectorySnapshot(sharedMoment('6.12', 'before'))),
      await readAllocinfo(new DirectorySnapshot(sharedMoment('6.12', 'after'))),
    ];
    const d = diffAllocinfo(b.tags, a.tags);
    const leaky = d.filter((x) => x.module === 'leaky');
    expect(leaky.map((x) => [x.func, x.deltaBytes, x.deltaCalls])).toEqual([
      ['demo_page_grab', 819200, 100],
      ['demo_vbuf_grow', 331520, 120],
      ['demo_cache_fill', 76800, 400],
      ['demo_churn', 0, 0],
      ['demo_churn', 0, 0],
      ['demo_churn', 0, 0],
    ]);
  });

  it('reads nothing from a 6.1 snapshot (no allocation profiling before 6.10)', async () => {
    await expect(readAllocinfo(new DirectorySnapshot(sharedMoment('6.1', 'after')))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      hint: expect.stringMatching(/6\.10\+/),
    });
  });
});
