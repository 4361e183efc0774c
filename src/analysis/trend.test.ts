import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../test/rng.mjs';
import { analyzeTrend, mannKendall, normalUpperTail, theilSen, thin } from './trend.js';

// Synthetic series whose properties are known by construction: the statistics are checked
// against what the construction guarantees (a slope, a plateau, flat minima), not against
// numbers copied from a run.

const rng = mulberry32;

const MiB = 1024 * 1024;
const STEP_MS = 5000;
const OPTS = { minRatePerHour: 2 * MiB, minGrowth: MiB };

/** n points every 5 s; value from f(seconds). */
function series(n: number, f: (s: number, i: number) => number): { t: number[]; v: number[] } {
  const t: number[] = [];
  const v: number[] = [];
  for (let i = 0; i < n; i++) {
    t.push(1_700_000_000_000 + i * STEP_MS);
    v.push(Math.round(f((i * STEP_MS) / 1000, i)));
  }
  return { t, v };
}

describe('theilSen', () => {
  it('recovers an exact line', () => {
    const t = [0, 1, 2, 3, 4, 5];
    const r = theilSen(
      t,
      t.map((x) => 3 * x + 7),
    );
    expect(r.slope).toBe(3);
    expect(r.intercept).toBe(7);
  });

  it('is not moved by 20% gross outliers, where least squares would be', () => {
    const noise = rng(1);
    const t = Array.from({ length: 50 }, (_, i) => i);
    const v = t.map((x) => 2 * x + (noise() - 0.5));
    for (let i = 0; i < 50; i += 5) v[i] = 1e6; // every 5th point is garbage
    expect(theilSen(t, v).slope).toBeCloseTo(2, 1);
  });

  it('handles fewer than two points and repeated times', () => {
    expect(theilSen([1], [5])).toEqual({ slope: 0, intercept: 5 });
    expect(theilSen([1, 1, 1], [1, 2, 3]).slope).toBe(0);
  });

  it('gives exactly the median of every pairwise slope (selection, not a sort), ties included', () => {
    const sortedMedian = (xs: number[]) => {
      const s = Float64Array.from(xs).sort();
      const m = s.length >> 1;
      return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
    };
    const reference = (t: number[], v: number[]) => {
      const slopes: number[] = [];
      for (let i = 0; i < t.length; i++)
        for (let j = i + 1; j < t.length; j++)
          if (t[j] !== t[i]) slopes.push((v[j]! - v[i]!) / (t[j]! - t[i]!));
      const slope = slopes.length ? sortedMedian(slopes) : 0;
      return { slope, intercept: sortedMedian(v.map((y, i) => y - slope * t[i]!)) };
    };
    const r = rng(11);
    for (let run = 0; run < 200; run++) {
      const n = 2 + Math.floor(r() * 60);
      // Change-only data repeats values (many zero slopes); some runs repeat times too.
      const t = Array.from({ length: n }, (_, i) => (run % 5 === 0 ? Math.floor(i / 2) : i));
      const levels = 1 + Math.floor(r() * 6);
      const v = t.map(() => Math.floor(r() * levels) * (r() < 0.5 ? 4096 : 0.1));
      expect(theilSen(t, v), `run ${run}`).toEqual(reference(t, v));
    }
  });
});

describe('mannKendall', () => {
  it('computes S and the tie-corrected variance of a small series by hand', () => {
    // v = 1 1 2 2 3: S = 8 (two tied pairs score 0); Var = [5·4·15 − 2·(2·1·9)]/18 = 264/18.
    const r = mannKendall([1, 1, 2, 2, 3]);
    expect(r.s).toBe(8);
    expect(r.variance).toBeCloseTo(264 / 18, 10);
    expect(r.z).toBeCloseTo(7 / Math.sqrt(264 / 18), 10);
    expect(r.tau).toBeCloseTo(0.8, 10);
  });

  it('finds no trend in a constant series (all ties: variance 0)', () => {
    const r = mannKendall([4, 4, 4, 4, 4, 4]);
    expect(r.s).toBe(0);
    expect(r.variance).toBe(0);
    expect(r.pIncreasing).toBe(1);
  });

  it('is significant for a monotonic series and symmetric for its reverse', () => {
    const up = Array.from({ length: 30 }, (_, i) => i);
    const a = mannKendall(up);
    const b = mannKendall([...up].reverse());
    expect(a.s).toBe((30 * 29) / 2);
    expect(a.pIncreasing).toBeLessThan(1e-6);
    expect(b.z).toBeCloseTo(-a.z, 10);
    expect(b.pIncreasing).toBeGreaterThan(0.999999);
  });
});

describe('normalUpperTail', () => {
  it('matches the standard normal table', () => {
    expect(normalUpperTail(0)).toBeCloseTo(0.5, 6);
    expect(normalUpperTail(1.959964)).toBeCloseTo(0.025, 6);
    expect(normalUpperTail(-1.644854)).toBeCloseTo(0.95, 6);
    expect(normalUpperTail(3.090232)).toBeCloseTo(0.001, 6);
  });
});

describe('thin', () => {
  it('keeps first and last and at most max points', () => {
    const t = Array.from({ length: 1000 }, (_, i) => i);
    const r = thin(t, t, 100);
    expect(r.t.length).toBe(100);
    expect(r.t[0]).toBe(0);
    expect(r.t[99]).toBe(999);
  });
});

describe('analyzeTrend shapes', () => {
  const noise = rng(42);
  const jitter = (amp: number) => (noise() - 0.5) * 2 * amp;

  it('a steady 1.5 MiB/min leak with noise is growing, at the constructed rate', () => {
    const { t, v } = series(60, (s) => 50 * MiB + (1.5 * MiB * s) / 60 + jitter(200 * 1024));
    const r = analyzeTrend(t, v, OPTS);
    expect(r.shape).toBe('growing');
    expect(r.growing).toBe(true);
    expect(r.ratePerHour / (90 * MiB)).toBeGreaterThan(0.9);
    expect(r.ratePerHour / (90 * MiB)).toBeLessThan(1.1);
    expect(r.confidence).toBeGreaterThan(0.8);
  });

  it('a leak that starts later reports when it started', () => {
    const { t, v } = series(80, (s) => 10 * MiB + (s < 100 ? 0 : ((s - 100) * MiB) / 10));
    const r = analyzeTrend(t, v, OPTS);
    expect(r.growing).toBe(true);
    const startedS = ((r.sinceMs ?? 0) - t[0]!) / 1000;
    expect(startedS).toBeGreaterThanOrEqual(90);
    expect(startedS).toBeLessThanOrEqual(110);
  });

  it('step growth (change-only storage: a value repeats until it changes) is still growing', () => {
    const { t, v } = series(72, (_s, i) => 8 * MiB + Math.floor(i / 4) * 400 * 1024);
    expect(analyzeTrend(t, v, OPTS).shape).toBe('growing');
  });

  it('warm-up then plateau is not a leak', () => {
    const { t, v } = series(72, (s) => 5 * MiB + Math.min(s, 60) * MiB * 0.6 + jitter(50 * 1024));
    const r = analyzeTrend(t, v, OPTS);
    expect(r.shape).toBe('plateau');
    expect(r.growing).toBe(false);
  });

  it('a GC sawtooth whose minima stay flat is not a leak', () => {
    const { t, v } = series(72, (s) => 20 * MiB + ((s % 30) / 30) * 30 * MiB);
    const r = analyzeTrend(t, v, OPTS);
    expect(r.shape).toBe('sawtooth-flat');
    expect(r.growing).toBe(false);
  });

  it('a GC sawtooth whose minima rise is a leak, at the rate of the minima', () => {
    // Floor rises 2 MiB per minute under a 30 MiB tooth.
    const { t, v } = series(72, (s) => 20 * MiB + (2 * MiB * s) / 60 + ((s % 30) / 30) * 30 * MiB);
    const r = analyzeTrend(t, v, OPTS);
    expect(r.shape).toBe('sawtooth-rising');
    expect(r.growing).toBe(true);
    expect(r.floorSlopePerHour / (120 * MiB)).toBeGreaterThan(0.8);
    expect(r.floorSlopePerHour / (120 * MiB)).toBeLessThan(1.2);
  });

  it('a spike that is freed is not a leak', () => {
    const { t, v } = series(72, (s) => 30 * MiB + (s >= 60 && s < 80 ? 160 * MiB : 0) + jitter(20 * 1024));
    const r = analyzeTrend(t, v, OPTS);
    expect(r.growing).toBe(false);
    expect(['transient', 'noise']).toContain(r.shape);
  });

  it('a large stable value with small noise is not a leak', () => {
    const { t, v } = series(72, () => 384 * MiB + jitter(300 * 1024));
    const r = analyzeTrend(t, v, OPTS);
    expect(r.growing).toBe(false);
  });

  it('shrinking memory is shrinking', () => {
    const { t, v } = series(72, (s) => 500 * MiB - s * MiB);
    expect(analyzeTrend(t, v, OPTS).shape).toBe('shrinking');
  });

  it('growth below the minimum rate is not reported', () => {
    // 1 MiB/h over 6 minutes: real, monotonic, but under the 2 MiB/h floor and growth.
    const { t, v } = series(72, (s) => 10 * MiB + (MiB * s) / 3600);
    expect(analyzeTrend(t, v, OPTS).growing).toBe(false);
  });

  it('too few points is flat', () => {
    const { t, v } = series(5, (s) => s * MiB);
    expect(analyzeTrend(t, v, OPTS).shape).toBe('flat');
  });
});
