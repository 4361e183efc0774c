/**
 * Robust trend statistics for one time series, and a shape-aware verdict.
 *
 * - Theil–Sen slope: the median of the slopes between every pair of points. Up to 29% of
 *   the points can be outliers (a spike, a GC pause) without moving it.
 * - Mann–Kendall: a rank test for a monotonic trend, with the variance corrected for tied
 *   values (flat stretches are common: an idle process's RSS does not change for hours).
 * - Shape: a leak is growth that does not stop. Warm-up then plateau stops (the tail's slope
 *   falls to nothing); a garbage-collected heap saws up and down, and only a rising *floor*
 *   (the minima) is a leak; a spike that is freed leaves the floor where it was.
 */

/** Thin to at most `max` points, keeping the first and last (pair statistics are O(n²)). */
export function thin(t: readonly number[], v: readonly number[], max: number): { t: number[]; v: number[] } {
  const n = t.length;
  if (n <= max) return { t: [...t], v: [...v] };
  const outT: number[] = [];
  const outV: number[] = [];
  for (let k = 0; k < max; k++) {
    const i = Math.round((k * (n - 1)) / (max - 1));
    outT.push(t[i]!);
    outV.push(v[i]!);
  }
  return { t: outT, v: outV };
}

/**
 * The k-th smallest of xs[0..n) (0-based), reordering them: quickselect with a three-way
 * partition (flat stretches of change-only data give many equal slopes) around the median of
 * three. Afterwards xs[0..k) are all <= the result. O(n) on average instead of a sort.
 */
function selectInPlace(xs: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const a = xs[lo]!;
    const b = xs[(lo + hi) >> 1]!;
    const c = xs[hi]!;
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    // [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot
    let lt = lo;
    let i = lo;
    let gt = hi;
    while (i <= gt) {
      const x = xs[i]!;
      if (x < pivot) {
        xs[i] = xs[lt]!;
        xs[lt++] = x;
        i++;
      } else if (x > pivot) {
        xs[i] = xs[gt]!;
        xs[gt--] = x;
      } else i++;
    }
    if (k < lt) hi = lt - 1;
    else if (k > gt) lo = gt + 1;
    else return pivot;
  }
  return xs[k]!;
}

/** Median of xs[0..n), reordering them: the same value as sorting and taking the middle. */
function medianInPlace(xs: Float64Array, n: number): number {
  if (n === 0) return Number.NaN;
  const m = n >> 1;
  const upper = selectInPlace(xs, n, m);
  if (n % 2) return upper;
  let lower = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < m; i++) if (xs[i]! > lower) lower = xs[i]!;
  return (lower + upper) / 2;
}

/** The median (NaN for none). */
function median(xs: readonly number[]): number {
  return medianInPlace(Float64Array.from(xs), xs.length);
}

/** Reused for the pairwise slopes: 240 points make 28,680 of them. */
let slopeBuf = new Float64Array(0);

export interface TheilSen {
  /** Units per unit of t. */
  slope: number;
  intercept: number;
}

/** Theil–Sen estimator over all pairs with distinct t. */
export function theilSen(t: readonly number[], v: readonly number[]): TheilSen {
  const n = t.length;
  if (n < 2) return { slope: 0, intercept: v[0] ?? 0 };
  const pairs = (n * (n - 1)) / 2;
  if (slopeBuf.length < pairs) slopeBuf = new Float64Array(pairs);
  const slopes = slopeBuf;
  let m = 0;
  for (let i = 0; i < n; i++) {
    const ti = t[i]!;
    const vi = v[i]!;
    for (let j = i + 1; j < n; j++) {
      const dt = t[j]! - ti;
      if (dt !== 0) slopes[m++] = (v[j]! - vi) / dt;
    }
  }
  const slope = m ? medianInPlace(slopes, m) : 0;
  const intercept = median(v.map((y, i) => y - slope * t[i]!));
  return { slope, intercept };
}

/** Standard normal upper tail P(Z > z) (Abramowitz–Stegun 7.1.26 erfc, error < 1.5e-7). */
export function normalUpperTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const k = 1 / (1 + 0.3275911 * x);
  const poly =
    k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))));
  const erfc = poly * Math.exp(-x * x);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

export interface MannKendall {
  /** Σ sign(v_j − v_i) over i < j. */
  s: number;
  /** Variance of S under H0, with the tie correction. */
  variance: number;
  /** Continuity-corrected standard score. */
  z: number;
  /** One-sided p-value for an increasing trend. */
  pIncreasing: number;
  /** Kendall's tau-a = S / (n(n−1)/2), in −1..1. */
  tau: number;
}

/** Mann–Kendall trend test with tie correction (Kendall 1975; Hirsch et al. 1982). */
export function mannKendall(v: readonly number[]): MannKendall {
  const n = v.length;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const vi = v[i]!;
    for (let j = i + 1; j < n; j++) {
      const d = v[j]! - vi;
      s += d > 0 ? 1 : d < 0 ? -1 : 0;
    }
  }
  const ties = new Map<number, number>();
  for (const x of v) ties.set(x, (ties.get(x) ?? 0) + 1);
  let tieTerm = 0;
  for (const c of ties.values()) if (c > 1) tieTerm += c * (c - 1) * (2 * c + 5);
  const variance = (n * (n - 1) * (2 * n + 5) - tieTerm) / 18;
  const z =
    variance <= 0 ? 0 : s > 0 ? (s - 1) / Math.sqrt(variance) : s < 0 ? (s + 1) / Math.sqrt(variance) : 0;
  const pairs = (n * (n - 1)) / 2;
  return { s, variance, z, pIncreasing: variance <= 0 ? 1 : normalUpperTail(z), tau: pairs ? s / pairs : 0 };
}

export type Shape =
  /** Too few points or no change at all. */
  | 'flat'
  /** Keeps growing. */
  | 'growing'
  /** Grows in a sawtooth whose minima rise. */
  | 'sawtooth-rising'
  /** Sawtooth with flat minima: a collector doing its job. */
  | 'sawtooth-flat'
  /** Grew, then stopped. */
  | 'plateau'
  /** Went up and came back down (a spike that was freed). */
  | 'transient'
  /** Declining. */
  | 'shrinking'
  /** Moves without a monotonic trend. */
  | 'noise';

export interface TrendOptions {
  /** Smallest growth rate that counts, in value units per hour. */
  minRatePerHour: number;
  /** Smallest net growth of the floor over the window, in value units. */
  minGrowth: number;
  /** Significance level for Mann–Kendall. Default 0.01. */
  alpha?: number;
  /** Points used by the O(n²) statistics. Default 240. */
  maxPoints?: number;
}

export interface Trend {
  shape: Shape;
  /** The shape is a leak: growth that does not stop. */
  growing: boolean;
  /** Growth rate in value units per hour: the floor's slope for a sawtooth, else Theil–Sen. */
  ratePerHour: number;
  /** Theil–Sen slope over the whole window, units per hour. */
  slopePerHour: number;
  /** Slope of the last third of the window, units per hour. */
  tailSlopePerHour: number;
  /** Slope of the minima of six equal-time windows, units per hour. */
  floorSlopePerHour: number;
  mannKendall: MannKendall;
  /** 0..1: how sure the verdict "growing" is. */
  confidence: number;
  /** Time (ms) the growth began: where the floor started to rise. */
  sinceMs: number | undefined;
  first: number;
  last: number;
  min: number;
  max: number;
  points: number;
}

const HOUR_MS = 3_600_000;

/** Minima of `k` equal-time windows, each at its window's centre time. */
function windowMinima(t: readonly number[], v: readonly number[], k: number): { t: number[]; v: number[] } {
  const t0 = t[0]!;
  const span = t[t.length - 1]! - t0 || 1;
  const mins: number[] = new Array(k).fill(Number.POSITIVE_INFINITY);
  for (let i = 0; i < t.length; i++) {
    const w = Math.min(k - 1, Math.floor(((t[i]! - t0) / span) * k));
    if (v[i]! < mins[w]!) mins[w] = v[i]!;
  }
  const outT: number[] = [];
  const outV: number[] = [];
  for (let w = 0; w < k; w++) {
    if (mins[w] === Number.POSITIVE_INFINITY) continue;
    outT.push(t0 + ((w + 0.5) * span) / k);
    outV.push(mins[w]!);
  }
  return { t: outT, v: outV };
}

/** Classify one series. `t` in ms, ascending. */
export function analyzeTrend(tIn: readonly number[], vIn: readonly number[], opts: TrendOptions): Trend {
  const alpha = opts.alpha ?? 0.01;
  const { t, v } = thin(tIn, vIn, opts.maxPoints ?? 240);
  const n = t.length;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const x of v) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const base: Trend = {
    shape: 'flat',
    growing: false,
    ratePerHour: 0,
    slopePerHour: 0,
    tailSlopePerHour: 0,
    floorSlopePerHour: 0,
    mannKendall: { s: 0, variance: 0, z: 0, pIncreasing: 1, tau: 0 },
    confidence: 0,
    sinceMs: undefined,
    first: v[0] ?? 0,
    last: v[n - 1] ?? 0,
    min: n ? min : 0,
    max: n ? max : 0,
    points: tIn.length,
  };
  const spanH = n > 1 ? (t[n - 1]! - t[0]!) / HOUR_MS : 0;
  // Cheap exit: a series that never moved by minGrowth cannot be a leak.
  if (n < 8 || spanH <= 0 || max - min < opts.minGrowth) return base;

  const th = t.map((x) => (x - t[0]!) / HOUR_MS);
  const ts = theilSen(th, v);
  const mk = mannKendall(v);
  const tailStart = Math.floor((n * 2) / 3);
  const tail = theilSen(th.slice(tailStart), v.slice(tailStart));
  const floor = windowMinima(th, v, 6);
  const fl = theilSen(floor.t, floor.v);
  const floorMk = mannKendall(floor.v);

  // A sawtooth: repeated drops of at least a quarter of the range.
  const range = max - min;
  let drops = 0;
  for (let i = 1; i < n; i++) if (v[i - 1]! - v[i]! > range / 4) drops++;
  const sawtooth = drops >= 2;

  // Growth of the floor: the suffix minimum only rises; where it starts rising is "since".
  const suffixMin = new Array<number>(n);
  let m = Number.POSITIVE_INFINITY;
  for (let i = n - 1; i >= 0; i--) {
    m = Math.min(m, v[i]!);
    suffixMin[i] = m;
  }
  const floorGrowth = suffixMin[n - 1]! - suffixMin[0]!;
  // The last window's minimum against the first's: what a collector could not give back.
  const windowGrowth = (floor.v[floor.v.length - 1] ?? 0) - (floor.v[0] ?? 0);

  // A sawtooth's rate is its floor's, and no more than the floor's late rate: a heap that warmed
  // up fast and now creeps is reported at the creep.
  const lateFloor = theilSen(floor.t.slice(-4), floor.v.slice(-4));
  const rate = sawtooth
    ? Math.min(fl.slope, lateFloor.slope)
    : Math.min(ts.slope, Math.max(fl.slope, tail.slope));
  const result: Trend = {
    ...base,
    ratePerHour: rate,
    slopePerHour: ts.slope,
    tailSlopePerHour: tail.slope,
    floorSlopePerHour: fl.slope,
    mannKendall: mk,
  };
  const significant = mk.pIncreasing < alpha;
  const floorRising = floorMk.s > 0 && windowGrowth >= opts.minGrowth && fl.slope >= opts.minRatePerHour;
  // The tail must still climb at a good part of the overall rate: otherwise it levelled off.
  const stillClimbing = tail.slope >= Math.max(opts.minRatePerHour, 0.25 * Math.max(ts.slope, fl.slope));
  const lateFloorRising = (floor.v[floor.v.length - 1] ?? 0) > (floor.v[floor.v.length - 3] ?? 0);

  if (sawtooth) {
    result.shape =
      floorRising && lateFloorRising && floorMk.pIncreasing < 0.05 ? 'sawtooth-rising' : 'sawtooth-flat';
  } else if (mk.pIncreasing > 1 - alpha) {
    result.shape = 'shrinking';
  } else if (!significant) {
    result.shape = floorGrowth < opts.minGrowth && range >= opts.minGrowth ? 'transient' : 'noise';
  } else if (!floorRising) {
    result.shape = floorGrowth < opts.minGrowth ? 'transient' : 'plateau';
  } else if (!stillClimbing || !lateFloorRising) {
    result.shape = 'plateau';
  } else {
    result.shape = 'growing';
  }
  result.growing =
    (result.shape === 'growing' || result.shape === 'sawtooth-rising') && rate >= opts.minRatePerHour;
  if (!result.growing) return result;

  // Confidence: significance of the trend, how steadily the floor climbs, and whether the
  // tail keeps the pace. Each factor is in 0..1.
  const pTrend = sawtooth ? floorMk.pIncreasing : mk.pIncreasing;
  const sig = Math.min(1, -Math.log10(Math.max(pTrend, 1e-12)) / 6);
  const steady = Math.max(0, sawtooth ? floorMk.tau : mk.tau);
  const pace = Math.min(1, tail.slope / Math.max(rate, 1e-12));
  result.confidence = Math.round(Math.max(0, Math.min(1, 0.4 * sig + 0.3 * steady + 0.3 * pace)) * 100) / 100;
  const threshold = suffixMin[0]! + 0.05 * floorGrowth;
  let since = 0;
  for (let i = 0; i < n; i++) {
    if (suffixMin[i]! > threshold) {
      since = Math.max(0, i - 1);
      break;
    }
  }
  result.sinceMs = t[since];
  return result;
}
