/**
 * Downsampling for charts: a week at 10 s is 60,480 ticks, and a chart is ~1,000 pixels wide.
 * Every bucket of time (one pixel) keeps its minimum and its maximum, in the order they
 * happened, so a spike or a dip one tick long still shows; a straight thinning (every k-th
 * tick) would drop it. Points kept are real samples, never averages.
 */

export interface Points {
  /** ms since epoch, ascending. */
  t: number[];
  v: number[];
}

/**
 * Indices of the points kept: per bucket (`buckets` equal slices of [fromMs, toMs]) the
 * minimum and the maximum of `v`, in time order, plus the first and last point in range (the
 * chart's ends). Points outside the range are dropped; with no more than 2 × buckets points
 * in range, all of them are kept.
 */
export function minMaxIndices(
  t: readonly number[],
  v: readonly number[],
  buckets: number,
  fromMs = t[0] ?? 0,
  toMs = t[t.length - 1] ?? 0,
): number[] {
  let lo = 0;
  while (lo < t.length && t[lo]! < fromMs) lo++;
  let hi = t.length;
  while (hi > lo && t[hi - 1]! > toMs) hi--;
  const out: number[] = [];
  if (hi - lo <= 2 * buckets) {
    for (let i = lo; i < hi; i++) out.push(i);
    return out;
  }
  const span = toMs - fromMs || 1;
  const bucketOf = (x: number) => Math.min(buckets - 1, Math.floor(((x - fromMs) / span) * buckets));
  let i = lo;
  while (i < hi) {
    const b = bucketOf(t[i]!);
    let iMin = i;
    let iMax = i;
    let j = i + 1;
    for (; j < hi && bucketOf(t[j]!) === b; j++) {
      if (v[j]! < v[iMin]!) iMin = j;
      if (v[j]! > v[iMax]!) iMax = j;
    }
    out.push(Math.min(iMin, iMax));
    if (iMin !== iMax) out.push(Math.max(iMin, iMax));
    i = j;
  }
  if (out[0] !== lo) out.unshift(lo);
  if (out[out.length - 1] !== hi - 1) out.push(hi - 1);
  return out;
}

/** One series, at most two points per bucket (see minMaxIndices). */
export function minMaxBuckets(
  t: readonly number[],
  v: readonly number[],
  buckets: number,
  fromMs?: number,
  toMs?: number,
): Points {
  const keep = minMaxIndices(t, v, buckets, fromMs, toMs);
  return { t: keep.map((i) => t[i]!), v: keep.map((i) => v[i]!) };
}

/**
 * Stacked series on one time axis: per bucket the ticks where the total is smallest and
 * largest, with every layer's value at those ticks, so the stack drawn still sums to a real
 * total at every point.
 */
export function minMaxStacked(
  t: readonly number[],
  layers: readonly (readonly number[])[],
  buckets: number,
  fromMs?: number,
  toMs?: number,
): { t: number[]; layers: number[][] } {
  const total = t.map((_, i) => layers.reduce((s, l) => s + (l[i] ?? 0), 0));
  const keep = minMaxIndices(t, total, buckets, fromMs, toMs);
  return { t: keep.map((i) => t[i]!), layers: layers.map((l) => keep.map((i) => l[i] ?? 0)) };
}
