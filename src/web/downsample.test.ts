import { describe, expect, it } from 'vitest';
import { minMaxBuckets, minMaxStacked } from './downsample.js';

describe('minMaxBuckets', () => {
  it('keeps a one-tick spike and a one-tick dip that thinning would drop', () => {
    const t = Array.from({ length: 60_480 }, (_, i) => i * 10_000);
    const v = t.map((_, i) => 1000 + (i % 7));
    v[31_337] = 99_999;
    v[40_001] = -5;
    const d = minMaxBuckets(t, v, 1000);
    expect(d.t.length).toBeLessThanOrEqual(2002);
    expect(Math.max(...d.v)).toBe(99_999);
    expect(Math.min(...d.v)).toBe(-5);
    expect(d.t).toContain(31_337 * 10_000);
    // Real samples, in time order.
    for (let i = 1; i < d.t.length; i++) expect(d.t[i]!).toBeGreaterThan(d.t[i - 1]!);
    for (let i = 0; i < d.t.length; i++) expect(d.v[i]).toBe(v[d.t[i]! / 10_000]);
    // First and last samples survive (the ends of the chart).
    expect(d.t[0]).toBe(0);
    expect(d.t[d.t.length - 1]).toBe(t[t.length - 1]);
  });

  it('returns short series whole and clips to the range', () => {
    expect(minMaxBuckets([1, 2, 3], [5, 6, 7], 10)).toEqual({ t: [1, 2, 3], v: [5, 6, 7] });
    expect(minMaxBuckets([1, 2, 3, 4], [5, 6, 7, 8], 10, 2, 3)).toEqual({ t: [2, 3], v: [6, 7] });
  });
});

describe('minMaxStacked', () => {
  it('keeps whole ticks, so every drawn stack sums to a real total', () => {
    const n = 5000;
    const t = Array.from({ length: n }, (_, i) => i);
    const a = t.map((i) => 100 + (i % 13));
    const b = t.map((i) => 50 + ((i * 7) % 11));
    b[2222] = 10_000;
    const s = minMaxStacked(t, [a, b], 100);
    expect(s.t.length).toBeLessThanOrEqual(202);
    for (let k = 0; k < s.t.length; k++) {
      const i = s.t[k]!;
      expect(s.layers[0]![k]).toBe(a[i]);
      expect(s.layers[1]![k]).toBe(b[i]);
    }
    expect(s.t).toContain(2222);
  });
});
