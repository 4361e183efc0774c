import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KMEMLEAK_HEAD } from '../sources/kmemleak.js';
import { PAGE_OWNER_HEAD } from '../sources/page_owner.js';
import { openInput } from './open.js';
import { isRawSourceFile } from './raw_file.js';

const tmp = mkdtempSync(join(tmpdir(), 'raw-file-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('isRawSourceFile', () => {
  it('is true exactly for the raw files openInput takes as that source', async () => {
    const po = 'Page allocated via order 0, mask 0x0(), pid 1, tgid 1 (swapper), ts 5 ns\n';
    const km = 'unreferenced object 0xffff888003f4d000 (size 64):\n  comm "insmod", pid 7\n';
    const files: [string, string | undefined][] = [
      ['dump', po],
      ['leaks.txt', km],
      // A slab trace by its name, whatever it holds.
      ['kmalloc-64.alloc_traces', po],
      ['meminfo', 'MemTotal:       1000 kB\n'],
      ['empty', ''],
      ['gz', '\x1f\x8b\x08\x00'],
      ['dir', undefined],
    ];
    for (const [name, text] of files) {
      const p = join(tmp, name);
      if (text === undefined) mkdirSync(p);
      else writeFileSync(p, text, 'latin1');
    }
    for (const [name, head, source] of [
      ['dump', PAGE_OWNER_HEAD, 'page_owner'],
      ['leaks.txt', KMEMLEAK_HEAD, 'kmemleak'],
    ] as const) {
      const p = join(tmp, name);
      expect(await isRawSourceFile(p, head)).toBe(true);
      // openInput says the same of it.
      const snap = await openInput(p);
      expect((await snap.manifest()).source).toBe(source);
      await snap.close();
    }
    expect(await isRawSourceFile(join(tmp, 'dump'), KMEMLEAK_HEAD)).toBe(false);
    for (const name of ['kmalloc-64.alloc_traces', 'meminfo', 'empty', 'gz', 'dir', 'missing'])
      expect(await isRawSourceFile(join(tmp, name), PAGE_OWNER_HEAD), name).toBe(false);
    expect(await isRawSourceFile('-', PAGE_OWNER_HEAD)).toBe(false);
  });
});
