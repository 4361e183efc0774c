import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemsleuthError } from '../model/errors.js';
import { TMPFS_MOUNTS_PATH } from '../model/snapshot.js';
import { LiveSnapshot } from './live.js';
import { DirectorySnapshot, readTextFile, readTextPieces } from './snapshot.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-read-text-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Text of `n` bytes whose every line is numbered, so a lost or doubled chunk shows. */
function numbered(n: number): string {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `line ${i} ${'x'.repeat(i % 97)}\n`;
  return s.slice(0, n);
}

describe('readTextFile', () => {
  // Sizes around the 64 KiB read buffer: within it, filling it exactly, one byte over, and
  // several times it (the file's size then sizes one buffer for the rest).
  for (const n of [0, 1, 65535, 65536, 65537, 3 * 65536 + 5, 2_000_001]) {
    it(`reads a ${n}-byte regular file whole`, () => {
      const f = join(work, `f${n}`);
      const text = numbered(n);
      writeFileSync(f, text);
      expect(readTextFile(f)).toBe(text);
      // Twice: the shared buffer of one call does not leak into the next.
      expect(readTextFile(f)).toBe(text);
    });
  }

  it('reads procfs files, which report size 0, to their end', () => {
    // /proc/self/maps of this process is tens of KiB; /proc/self/smaps several times 64 KiB.
    for (const name of ['status', 'maps', 'smaps']) {
      const text = readTextFile(`/proc/self/${name}`);
      expect(text.endsWith('\n')).toBe(true);
      expect(text.length).toBeGreaterThan(100);
    }
    const smaps = readTextFile('/proc/self/smaps');
    expect(smaps.length).toBeGreaterThan(65536);
    // Whole: every mapping's record complete, the last one included (this process's mappings
    // move between two reads, so they are not compared with a second read).
    const lines = smaps.trimEnd().split('\n');
    const headers = lines.filter((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l)).length;
    expect(headers).toBeGreaterThan(10);
    expect(lines.filter((l) => l.startsWith('VmFlags:')).length).toBe(headers);
    expect(lines[lines.length - 1]).toMatch(/^VmFlags:/);
  });

  it('refuses a regular file larger than the limit, naming its size', () => {
    const f = join(work, 'big');
    writeFileSync(f, numbered(200_000));
    expect(() => readTextFile(f, 100_000, 'big')).toThrow(
      /^big: 200000 bytes: larger than 100000 bytes, not a kernel text source$/,
    );
    // A limit within the first read: refused with its size too.
    expect(() => readTextFile(f, 1000, 'big')).toThrow(/^big: 200000 bytes: larger than 1000 bytes/);
    try {
      readTextFile(f, 1000, 'big');
    } catch (e) {
      expect(e).toBeInstanceOf(MemsleuthError);
      expect((e as MemsleuthError).code).toBe('BAD_INPUT');
    }
    // At the limit exactly: read.
    expect(readTextFile(f, 200_000, 'big').length).toBe(200_000);
  });

  it('stops a device that never ends at the limit', () => {
    expect(() => readTextFile('/dev/zero', 300_000, 'zero')).toThrow(
      /^zero: more: larger than 300000 bytes, not a kernel text source$/,
    );
  });

  it('checks line lengths while reading, before a long line is all in memory', () => {
    const f = join(work, 'oneline');
    writeFileSync(f, `short\n${'y'.repeat(300_000)}\n`);
    expect(() => readTextFile(f, undefined, 'oneline', { maxLineBytes: 100_000 })).toThrow(/oneline/);
    const ok = numbered(150_000);
    writeFileSync(f, ok);
    expect(readTextFile(f, undefined, 'oneline', { maxLineBytes: 1000 })).toBe(ok);
  });
});

describe('readTextPieces', () => {
  const collect = (file: string, max?: number): string[] => {
    const got: string[] = [];
    readTextPieces(file, (t) => got.push(t), max, 'f');
    return got;
  };

  for (const n of [0, 10, 65535, 65536, 65537, 3 * 65536 + 5, 2_000_001]) {
    it(`hands a ${n}-byte file over in pieces of whole lines`, () => {
      const f = join(work, `p${n}`);
      const text = numbered(n);
      writeFileSync(f, text);
      const got = collect(f);
      expect(got.join('')).toBe(text);
      // Every piece but a last line without its newline ends at a line's end, within 64 KiB.
      for (const [i, p] of got.entries()) {
        if (i < got.length - 1 || text.endsWith('\n')) expect(p.endsWith('\n')).toBe(true);
        expect(p.length).toBeLessThanOrEqual(65536);
      }
      if (n > 65536) expect(got.length).toBeGreaterThan(1);
    });
  }

  it('a line longer than the buffer comes whole', () => {
    const f = join(work, 'longline');
    const long = `${'z'.repeat(200_000)}\n`;
    writeFileSync(f, `a\n${long}b\n`);
    const got = collect(f);
    expect(got.join('')).toBe(`a\n${long}b\n`);
    expect(got.some((p) => p.includes(long))).toBe(true);
  });

  it('stops at the limit', () => {
    expect(() => collect('/dev/zero', 300_000)).toThrow(/^f: more: larger than 300000 bytes/);
  });

  it('reads a live smaps in pieces of whole lines (LiveSnapshot.readLines)', async () => {
    const snap = new LiveSnapshot();
    try {
      const got: string[] = [];
      expect(snap.readLines(`proc/${process.pid}/smaps`, (t) => got.push(t))).toBe(true);
      const text = got.join('');
      expect(text.endsWith('\n')).toBe(true);
      expect(text.split('\n').filter((l) => l.startsWith('VmFlags:')).length).toBeGreaterThan(10);
      // A process that does not exist: false, and why.
      expect(snap.readLines('proc/999999999/smaps', () => {})).toBe(false);
      expect(snap.whyMissing('proc/999999999/smaps')).toBe('not present');
      // A text the reader makes (an fd listing, the tmpfs listing) is no file: readText makes it.
      expect(() => snap.readLines(`proc/${process.pid}/fd`, () => {})).toThrow(/use readText/);
      expect(() => snap.readLines(TMPFS_MOUNTS_PATH, () => {})).toThrow(/use readText/);
      expect(await snap.readText(`proc/${process.pid}/fd`)).toMatch(/^0 /m);
      expect(await snap.readText(TMPFS_MOUNTS_PATH)).toContain('/dev/shm');
    } finally {
      await snap.close();
    }
  });

  it('reads a snapshot directory in pieces too, and what the sink throws reaches the caller as it is', () => {
    const dir = join(work, 'snap');
    const slab = join(dir, 'slab');
    mkdirSync(slab, { recursive: true });
    const text = `${numbered(200_000)}\n`;
    writeFileSync(join(slab, 'kmalloc-96.alloc_traces'), text);
    const snap = new DirectorySnapshot(dir, dir);
    const got: string[] = [];
    expect(snap.readLines('slab/kmalloc-96.alloc_traces', (t) => got.push(t))).toBe(true);
    expect(got.join('')).toBe(text);
    expect(got.every((t) => t.endsWith('\n'))).toBe(true);
    expect(snap.readLines('slab/absent.alloc_traces', () => {})).toBe(false);
    // A bug in the sink is not an unreadable file: the error itself, not false.
    const bug = new TypeError('sink bug');
    expect(() =>
      snap.readLines('slab/kmalloc-96.alloc_traces', () => {
        throw bug;
      }),
    ).toThrow(bug);
    expect(snap.whyMissing('slab/kmalloc-96.alloc_traces')).toBeUndefined();
  });
});
