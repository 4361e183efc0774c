import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../test/paths.js';
import { rng } from '../../test/rng.js';
import {
  blockHash,
  F64SmallBlocks,
  hash2,
  hashBytesDv,
  hashToBlankLine,
  RowBits,
  RowTable,
  RowU32,
  radixSort,
  SumBlocks,
  U32SmallBlocks,
} from './intern.js';

describe('radixSort', () => {
  it('orders rows by their keys, most significant first, stably; in its own arrays or in a scratch one', () => {
    const next = rng(7);
    const n = 5000;
    // Keys over the whole 32-bit range (two passes), a few values (one pass), and a constant.
    const a = Array.from({ length: n }, () => next() >>> 0);
    const b = Array.from({ length: n }, () => next() % 5);
    const c = Array.from({ length: n }, () => 9);
    const cases: ((r: number) => number)[][] = [
      [(r) => b[r]!, (r) => a[r]!],
      [(r) => b[r]!, (r) => c[r]!],
      [(r) => c[r]!, (r) => 0xffffffff - b[r]!],
    ];
    for (const keys of cases) {
      const want = Array.from({ length: n }, (_, i) => i).sort((x, y) => {
        for (const k of keys) if (k(x) !== k(y)) return k(x) < k(y) ? -1 : 1;
        return x - y;
      });
      const ids = () => Uint32Array.from({ length: n }, (_, i) => i);
      expect(Array.from(radixSort(ids(), keys))).toEqual(want);
      // The lookup table handed over as scratch: 2n words or more, garbage in it.
      const scratch = Int32Array.from({ length: 2 * n + 3 }, () => next() | 0);
      expect(Array.from(radixSort(ids(), keys, scratch))).toEqual(want);
      // Too small a scratch is not used.
      const small = new Int32Array(n).fill(-1);
      expect(Array.from(radixSort(ids(), keys, small))).toEqual(want);
      expect(small.every((v) => v === -1)).toBe(true);
    }
  });
});

describe('radixSort by ranges', () => {
  it('equals a stable comparison sort for short, middling and long ranges, with ties at every key', () => {
    const next = rng(23);
    for (const n of [1, 2, 3, 16, 17, 40, 300, 4095, 4096, 5000, 70000]) {
      // A key of few values, one of wide values that repeat (runs long and short below it),
      // one of a few small values, a constant, and a wide one almost never repeating.
      const pool = Array.from({ length: 1 + (n >> 4) }, () => next() >>> 0);
      const cols = [
        Array.from({ length: n }, () => next() % 3),
        Array.from({ length: n }, () => pool[next() % pool.length]!),
        Array.from({ length: n }, () => next() % 4),
        Array.from({ length: n }, () => 0xfffffffe),
        Array.from({ length: n }, () => next() >>> 0),
      ];
      const keys = cols.map((c, i) => (i === 2 ? (r: number) => 0xffffffff - c[r]! : (r: number) => c[r]!));
      // The rows in a shuffled start order: stability is about that order.
      const start = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = next() % (i + 1);
        [start[i], start[j]] = [start[j]!, start[i]!];
      }
      const at = new Int32Array(n);
      start.forEach((r, i) => {
        at[r] = i;
      });
      for (const used of [keys.slice(0, 3), keys.slice(1, 4), keys]) {
        const want = [...start].sort((x, y) => {
          for (const k of used) if (k(x) !== k(y)) return k(x) < k(y) ? -1 : 1;
          return at[x]! - at[y]!;
        });
        expect(Array.from(radixSort(Uint32Array.from(start), used))).toEqual(want);
      }
    }
  });
});

describe('RowBits', () => {
  it('keeps fields that share a word apart, and values too big for their bits beside the table', () => {
    const next = rng(11);
    const t = new RowTable(2);
    const whole = new RowU32(t, 0);
    const id = new RowBits(t, 1, 0, 17, true);
    const small = new RowBits(t, 1, 17, 2, false);
    const mid = new RowBits(t, 1, 19, 5, false);
    const count = new RowBits(t, 1, 24, 8, true);
    const want: number[][] = [];
    // Values at and around each field's limits: 2^17 - 1 and 255 (all ones) must spill too.
    const pick = (limit: number) => {
      const r = next() % 8;
      if (r === 0) return limit - 2 + (next() % 4);
      if (r === 1) return next() >>> 0;
      if (r === 2) return 0xffffffff;
      return next() % limit;
    };
    const n = 2 * 65536 + 77;
    for (let i = 0; i < n; i++) {
      const row = [next() >>> 0, pick(1 << 17), next() % 4, next() % 32, pick(256)];
      whole.push(row[0]!);
      id.push(row[1]!);
      small.push(row[2]!);
      mid.push(row[3]!);
      count.push(row[4]!);
      want.push(row);
    }
    const read = (i: number) => [whole.get(i), id.get(i), small.get(i), mid.get(i), count.get(i)];
    expect(Array.from({ length: n }, (_, i) => read(i))).toEqual(want);
    // Counting up across the limit and setting back below it.
    for (let k = 0; k < 30000; k++) {
      const i = next() % n;
      const w = want[i]!;
      if (k % 3 === 0) w[4] = next() % 300;
      else w[4] = w[4]! + 1;
      count.set(i, w[4]);
      if (k % 5 === 0) {
        w[1] = pick(1 << 17);
        id.set(i, w[1]);
        w[2] = next() % 4;
        small.set(i, w[2]);
      }
    }
    expect(Array.from({ length: n }, (_, i) => read(i))).toEqual(want);
    expect(() => small.push(4)).toThrow(/does not fit in 2 bits/);
    expect(() => mid.set(0, -1)).toThrow(RangeError);
    expect(() => count.set(0, 0.5)).toThrow(RangeError);
    expect(() => new RowBits(t, 1, 30, 3, false)).toThrow(RangeError);
  });
});

describe('U32SmallBlocks and F64SmallBlocks', () => {
  it('hold rows across blocks like a plain array: push, ensure, set, add; unwritten rows read 0', () => {
    const next = rng(5);
    const u = new U32SmallBlocks();
    const f = new F64SmallBlocks();
    // The first block starts small (a small table stays small).
    expect(u.capacity).toBe(1024);
    const ru: number[] = [];
    const rf: number[] = [];
    const n = 3 * 65536 + 123;
    for (let i = 0; i < n; i++) {
      const v = next() >>> 0;
      if (u.push(v) !== i) throw new Error(`push gave the wrong row at ${i}`);
      ru.push(v);
      f.push(i / 4);
      rf.push(i / 4);
      if (i === 5000) expect(u.capacity).toBe(8192);
    }
    expect(u.capacity).toBe(4 * 65536);
    for (let k = 0; k < 20000; k++) {
      const i = next() % n;
      u.set(i, k);
      ru[i] = k;
      f.add(i, 0.5);
      rf[i]! += 0.5;
    }
    expect(Array.from({ length: n }, (_, i) => u.get(i))).toEqual(ru);
    expect(Array.from({ length: n }, (_, i) => f.get(i))).toEqual(rf);
    // ensure() gives room for rows never pushed, reading 0 (an index by id).
    const g = new U32SmallBlocks();
    g.ensure(3000);
    expect(g.capacity).toBe(4096);
    expect(g.get(2999)).toBe(0);
    g.set(2999, 7);
    g.ensure(70000);
    expect(g.get(2999)).toBe(7);
    expect(g.get(69999)).toBe(0);
    expect(g.length).toBe(0);
  });
});

describe('SumBlocks', () => {
  it('sums like a Float64 column: whole 32-bit numbers first, then any value (fractions, negatives, above 2^32)', () => {
    for (const odd of [0.5, -3, 2 ** 32, 2 ** 40 + 1, Number.NaN]) {
      const next = rng(9);
      const s = new SumBlocks();
      const ref: number[] = [];
      const n = 70000;
      for (let i = 0; i < n; i++) {
        s.push(i % 7);
        ref.push(i % 7);
      }
      for (let k = 0; k < 5000; k++) {
        const i = next() % n;
        const v = k === 2500 ? odd : next() % 1000;
        s.add(i, v);
        ref[i]! += v;
      }
      s.push(odd);
      ref.push(odd);
      expect(s.length).toBe(n + 1);
      expect(Array.from({ length: n + 1 }, (_, i) => s.get(i))).toEqual(ref);
    }
    // A sum that crosses 2^32 by additions alone.
    const t = new SumBlocks();
    t.push(2 ** 32 - 2);
    t.add(0, 1);
    t.add(0, 1);
    t.add(0, 1);
    expect(t.get(0)).toBe(2 ** 32 + 1);
  });
});

describe('hashToBlankLine', () => {
  /** What it replaces: the search for "\n\n" from b[s - 1], then hashBytesDv over the block. */
  function reference(b: Buffer, s: number, end: number): { e: number; h1: number; h2: number } {
    const k = b.indexOf('\n\n', s - 1, 'latin1');
    if (k < 0 || k + 1 >= end) return { e: -1, h1: 0, h2: 0 };
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    const h1 = hashBytesDv(b, dv, s, k + 1) >>> 0;
    return { e: k + 1, h1, h2: hash2.value >>> 0 };
  }
  function fused(b: Buffer, s: number, end: number): { e: number; h1: number; h2: number } {
    const e = hashToBlankLine(b, new DataView(b.buffer, b.byteOffset, b.length), s, end);
    return e < 0 ? { e, h1: 0, h2: 0 } : { e, h1: blockHash.h1, h2: blockHash.h2 };
  }

  it('finds the blank line and hashes the block as the search and hashBytesDv do, at every length and alignment', () => {
    const next = rng(11);
    const alphabet = 'ab \n+0x\v';
    let checked = 0;
    for (let len = 0; len < 80; len++) {
      for (let lead = 1; lead < 10; lead++) {
        // A block of `len` bytes with lines of random lengths (no blank line inside), after a "\n".
        let block = '';
        while (block.length < len) {
          const c = alphabet[next() % alphabet.length]!;
          block += c === '\n' && (block === '' || block.endsWith('\n')) ? 'x' : c;
        }
        if (block !== '' && !block.endsWith('\n')) block = `${block.slice(0, -1)}\n`;
        const text = `${'h'.repeat(lead - 1)}\n${block}\nnext record\n\n`;
        const b = Buffer.from(text, 'latin1');
        for (const end of [b.length, lead + block.length + 1, lead + block.length]) {
          expect(fused(b, lead, end)).toEqual(reference(b, lead, end));
          checked++;
        }
      }
    }
    expect(checked).toBe(80 * 9 * 3);
  });

  it('finds no blank line in a block cut before it, and none between two lines', () => {
    const b = Buffer.from('PFN 1\n a+0x1/0x2\n b+0x3/0x4\n', 'latin1');
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    expect(hashToBlankLine(b, dv, 6, b.length)).toBe(-1);
    const empty = Buffer.from('PFN 1\n\nnext', 'latin1');
    expect(
      hashToBlankLine(empty, new DataView(empty.buffer, empty.byteOffset, empty.length), 6, empty.length),
    ).toBe(6);
  });

  it("gives the lab records' stacks the hashes hashBytesDv gives them", () => {
    // The page_owner dump of the 6.12 lab capture, from its bundle (a tar.gz).
    const tgz = gunzipSync(readFileSync(join(REPO_ROOT, 'test/fixtures/lab-6.12/after.tar.gz')));
    const at = tgz.indexOf('Page allocated via order');
    expect(at).toBeGreaterThan(0);
    let n = 0;
    // Every record's stack: from the line after its PFN line.
    for (let p = tgz.indexOf('\nPFN ', at); p >= 0 && n < 5000; p = tgz.indexOf('\nPFN ', p + 1)) {
      const s = tgz.indexOf(10, p + 1) + 1;
      const r = reference(tgz, s, tgz.length);
      if (r.e < 0) break;
      expect(fused(tgz, s, tgz.length)).toEqual(r);
      n++;
    }
    expect(n).toBeGreaterThan(1000);
  });
});
