import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ThreadedWriter } from './threaded_write.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function tmp(): string {
  dir = mkdtempSync(join(tmpdir(), 'memsleuth-tw-'));
  return dir;
}

describe('ThreadedWriter', () => {
  it('writes every piece from the calling thread after oneThread(), past the direct bytes', () => {
    const path = join(tmp(), 'out');
    const fd = openSync(path, 'w');
    const w = new ThreadedWriter(fd, { slotBytes: 64, slots: 2, directBytes: 100 });
    w.write(Buffer.from('a'.repeat(60)));
    w.oneThread();
    let want = 'a'.repeat(60);
    for (let i = 0; i < 50; i++) {
      const b = w.lend();
      b.fill(98 + (i % 3), 0, 50);
      w.handOver(50);
      w.write(Buffer.from('xyz'));
      want += String.fromCharCode(98 + (i % 3)).repeat(50) + 'xyz';
      // Written when handed over: no thread writes them later.
      expect(fstatSync(fd).size).toBe(want.length);
    }
    expect(w.bytes).toBe(want.length);
    expect((w as unknown as { worker?: unknown }).worker).toBeUndefined();
    w.close();
    closeSync(fd);
    expect(readFileSync(path, 'latin1')).toBe(want);
  });

  it('writes every piece in order, directly first, then from its thread through few small slots', () => {
    const path = join(tmp(), 'out');
    const fd = openSync(path, 'w');
    const w = new ThreadedWriter(fd, { slotBytes: 64, slots: 3, directBytes: 100 });
    const pieces: Buffer[] = [];
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      // Pieces of 0 to 300 bytes: some fill several slots, some none.
      seed = (seed * 1103515245 + 12345) >>> 0;
      const n = seed % 301;
      const b = Buffer.alloc(n);
      for (let j = 0; j < n; j++) b[j] = (i + j * 31) & 0xff;
      pieces.push(Buffer.from(b));
      w.write(b);
      b.fill(0); // the caller may reuse its buffer as soon as write returns
    }
    w.close();
    closeSync(fd);
    expect(readFileSync(path).equals(Buffer.concat(pieces))).toBe(true);
  });

  it('writes pieces built in lent memory, in order, mixed with copied ones, without a copy', () => {
    const path = join(tmp(), 'out');
    const fd = openSync(path, 'w');
    const w = new ThreadedWriter(fd, { slotBytes: 64, slots: 3, directBytes: 100 });
    const pieces: Buffer[] = [];
    let detached = 0;
    let seed = 11;
    for (let i = 0; i < 3000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      if (seed % 5 === 0) {
        // Now and then a copied piece between lent ones.
        const b = Buffer.alloc(seed % 150, i & 0xff);
        pieces.push(Buffer.from(b));
        w.write(b);
        continue;
      }
      const b = w.lend();
      expect(b.length).toBe(64);
      expect(b.buffer).not.toBeInstanceOf(SharedArrayBuffer);
      const n = seed % 65;
      for (let j = 0; j < n; j++) b[j] = (i * 7 + j) & 0xff;
      // Bytes past n are not written.
      if (n < 64) b[n] = 0xee;
      pieces.push(Buffer.from(b.subarray(0, n)));
      w.handOver(n);
      // Handed to the thread, not copied: the buffer is no longer this side's.
      if (b.buffer.byteLength === 0) detached++;
    }
    // A lend not handed over writes nothing.
    w.lend().fill(0xaa);
    w.close();
    closeSync(fd);
    expect(readFileSync(path).equals(Buffer.concat(pieces))).toBe(true);
    // Every lent piece after the first 100 bytes (written directly) went over uncopied.
    expect(detached).toBeGreaterThan(2000);
  });

  it('refuses handOver without lend, or of more than was lent', () => {
    const path = join(tmp(), 'out');
    const fd = openSync(path, 'w');
    const w = new ThreadedWriter(fd, { slotBytes: 16, slots: 2, directBytes: 0 });
    expect(() => w.handOver(1)).toThrow(/without lend/);
    w.lend();
    expect(() => w.handOver(17)).toThrow(RangeError);
    w.lend();
    w.write(Buffer.from('ab'));
    // write() ends the lend.
    expect(() => w.handOver(1)).toThrow(/without lend/);
    w.close();
    closeSync(fd);
    expect(readFileSync(path, 'latin1')).toBe('ab');
  });

  it('writes a small output directly, without a thread', () => {
    const path = join(tmp(), 'out');
    const fd = openSync(path, 'w');
    const w = new ThreadedWriter(fd);
    w.write(Buffer.from('hello\n'));
    expect((w as unknown as { worker?: unknown }).worker).toBeUndefined();
    w.close();
    closeSync(fd);
    expect(readFileSync(path, 'latin1')).toBe('hello\n');
  });

  it('throws the error of a failed write (EBADF on a read-only fd) at the next write or close', () => {
    const path = join(tmp(), 'in');
    writeFileSync(path, 'x');
    const fd = openSync(path, 'r');
    const w = new ThreadedWriter(fd, { slotBytes: 16, slots: 2, directBytes: 0 });
    let thrown: NodeJS.ErrnoException | undefined;
    try {
      for (let i = 0; i < 10_000; i++) w.write(Buffer.alloc(16, 1));
      w.close();
    } catch (e) {
      thrown = e as NodeJS.ErrnoException;
    }
    closeSync(fd);
    expect(thrown?.code).toBe('EBADF');
    expect(thrown?.message).toMatch(/^EBADF: bad file descriptor, write/);
    // Once thrown, the writer is closed: close() does nothing more.
    expect(() => w.close()).not.toThrow();
  });

  it('throws the direct write error as writeSync does', () => {
    const path = join(tmp(), 'in');
    writeFileSync(path, 'x');
    const fd = openSync(path, 'r');
    const w = new ThreadedWriter(fd);
    expect(() => w.write(Buffer.from('x'))).toThrow(/EBADF/);
    closeSync(fd);
  });
});
