import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { requireSource } from '../registry/open.js';
import { diffVmalloc, vmallocTop } from './vmalloc.js';

const readVmalloc = async (snap: DirectorySnapshot) => vmallocTop(await requireSource(snap, 'vmallocinfo'));

describe('vmalloc by caller', () => {
  it('groups the 6.12 lab areas; bytes are pages, not the printed size with its guard page', async () => {
    const t = await readVmalloc(new DirectorySnapshot(labFixture('6.12', 'after')));
    const lines = readFileSync(join(labFixture('6.12', 'after'), 'vmallocinfo'), 'utf8')
      .trim()
      .split('\n');
    expect(t.totalAreas).toBe(lines.length);
    const leak = t.callers.find((c) => c.key === 'msl_vmalloc_leak [msl_leaky]')!;
    expect(leak).toMatchObject({
      areas: 40,
      pages: 80,
      bytes: 80 * 4096,
      virtualBytes: 40 * 12288,
      module: 'msl_leaky',
      flags: ['vmalloc'],
    });
  });

  it('diffs before -> after on both lab kernels: the 40 leaked areas first', async () => {
    for (const k of ['6.1', '6.12'] as const) {
      const [b, a] = [
        await readVmalloc(new DirectorySnapshot(labFixture(k, 'before'))),
        await readVmalloc(new DirectorySnapshot(labFixture(k, 'after'))),
      ];
      const d = diffVmalloc(b.callers, a.callers);
      expect(d[0]).toMatchObject({
        key: 'msl_vmalloc_leak [msl_leaky]',
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
