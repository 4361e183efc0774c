import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedMoment } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { diffVmalloc, readVmalloc } from './vmalloc.js';

describe('vmalloc by caller', () => {
  it('groups the 6.12 lab areas; bytes are pages, not the printed size with its guard page', async () => {
    const t = await readVmalloc(new DirectorySnapshot(sharedMoment('6.12', 'after')));
    const lines = readFileSync(join(sharedMoment('6.12', 'after'), 'vmallocinfo'), 'utf8')
      .trim()
      .split('\n');
    expect(t.totalAreas).toBe(lines.length);
    const demo = t.callers.find((c) => c.key === 'demo_vbuf_grow [leaky]')!;
    expect(demo).toMatchObject({
      areas: 40,
      pages: 80,
      bytes: 80 * 4096,
      virtualBytes: 40 * 12288,
      module: 'leaky',
      flags: ['vmalloc'],
    });
  });

  it('diffs before -> after on both lab kernels: the 40 leaked areas first', async () => {
    for (const k of ['6.1', '6.12'] as const) {
      const [b, a] = [
        await readVmalloc(new DirectorySnapshot(sharedMoment(k, 'before'))),
        await readVmalloc(new DirectorySnapshot(sharedMoment(k, 'after'))),
      ];
      const d = diffVmalloc(b.callers, a.callers);
      expect(d[0]).toMatchObject({
        key: 'demo_vbuf_grow [leaky]',
        deltaAreas: 40,
        deltaBytes: 327680,
        before: { areas: 0, bytes: 0 },
      });
    }
  });

  it('says what is missing', async () => {
    const s = new DirectorySnapshot('/nonexistent-memsleuth');
    await expect(readVmalloc(s)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
