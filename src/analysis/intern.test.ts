import { describe, expect, it } from 'vitest';
import { rng } from '../../test/rng.js';
import { radixSort } from './intern.js';

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
