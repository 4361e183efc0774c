/**
 * What the page shows of a recording: `memsleuth leaks --json` (the same calls as the
 * command), the accounting identity at every tick, and any series, downsampled to min and
 * max per pixel bucket at full resolution underneath.
 */
import { computeAccounting, LAYER_NAMES, LAYER_TITLES } from '../analysis/accounting.js';
import { analyzeLeaks, type LeakOptions, type LeakReport, type Suspect } from '../analysis/leaks.js';
import type { Layer, SeriesData } from '../model/samples.js';
import { parseSince } from '../model/units.js';
import type { RecordingReader } from '../store/recording.js';
import { minMaxBuckets, minMaxStacked } from './downsample.js';
import {
  type AccountingOverTime,
  type ProjectionView,
  type RecordingView,
  type SeriesView,
  suspectKey,
} from './types.js';

/** Every tick, unthinned: downsampling happens after, per bucket. */
const ALL_POINTS = Number.MAX_SAFE_INTEGER;

export interface LeaksQuery {
  /** `--since`: 30m, 2h or an ISO time. */
  since?: string;
  /** `--min-rate`, MiB per hour. Default 2. */
  minRateMiBPerHour?: number;
}

/** What `memsleuth leaks --json` prints, computed the way the command does. */
export function recordingLeaks(reader: RecordingReader, q: LeaksQuery = {}): LeakReport {
  const whole = q.since ? reader.load({ maxPoints: 2, layers: ['meminfo'] }) : undefined;
  const sinceMs = q.since ? parseSince(q.since, whole?.lastMs) : undefined;
  const opts: LeakOptions = { minBytesPerHour: (q.minRateMiBPerHour ?? 2) * 1024 * 1024 };
  return analyzeLeaks(reader.load({ sinceMs }), opts);
}

export interface RangeQuery {
  fromMs?: number;
  toMs?: number;
  /** Pixel buckets: the chart's width. Default 1200. */
  buckets?: number;
}

/** Value of a series at each of `ticks` (ascending), undefined where it has none. */
function align(ticks: readonly number[], s: SeriesData): (number | undefined)[] {
  const out: (number | undefined)[] = new Array(ticks.length).fill(undefined);
  let j = 0;
  for (let i = 0; i < ticks.length && j < s.t.length; i++) {
    while (j < s.t.length && s.t[j]! < ticks[i]!) j++;
    if (s.t[j] === ticks[i]) out[i] = s.v[j];
  }
  return out;
}

/**
 * The report's identity (analysis/accounting.ts) at every tick, from the recorded meminfo
 * fields and vmstat; `unaccounted` is the recorder's own (it saw the per-CPU free lists), and
 * the per-CPU free pages it found are counted in `free`, so the layers sum to MemTotal.
 */
export function accountingOverTime(reader: RecordingReader, q: RangeQuery = {}): AccountingOverTime {
  const rec = reader.load({
    sinceMs: q.fromMs,
    untilMs: q.toMs,
    maxPoints: ALL_POINTS,
    layers: ['meminfo', 'unaccounted', 'vmstat'],
    filter: (layer, key) => layer !== 'vmstat' || key === 'nr_zspages',
  });
  const pageSize = Number(rec.meta.page_size) || 4096;
  const memTotal = rec.series.find((s) => s.layer === 'meminfo' && s.key === 'MemTotal');
  const empty: AccountingOverTime = {
    t: [],
    layers: LAYER_NAMES.map((n) => ({ name: n, title: LAYER_TITLES[n], bytes: [] })),
    ticks: rec.tickCount,
    firstMs: rec.firstMs,
    lastMs: rec.lastMs,
  };
  if (!memTotal) return empty;
  const ticks = memTotal.t;
  const fields: { kind: 'bytes' | 'counts' | 'vmstat' | 'unaccounted'; key: string; v: (number | undefined)[] }[] =
    rec.series.map((s) => ({
      kind:
        s.layer === 'unaccounted'
          ? 'unaccounted'
          : s.layer === 'vmstat'
            ? 'vmstat'
            : s.metric === 'bytes'
              ? 'bytes'
              : 'counts',
      key: s.key,
      v: align(ticks, s),
    }));
  const layers: number[][] = LAYER_NAMES.map(() => new Array(ticks.length).fill(0));
  for (let i = 0; i < ticks.length; i++) {
    const bytes: Record<string, number> = {};
    const counts: Record<string, number> = {};
    const vmstat: Record<string, number> = {};
    let unaccounted: number | undefined;
    for (const f of fields) {
      const v = f.v[i];
      if (v === undefined) continue;
      if (f.kind === 'bytes') bytes[f.key] = v;
      else if (f.kind === 'counts') counts[f.key] = v;
      else if (f.kind === 'vmstat') vmstat[f.key] = v;
      else unaccounted = v;
    }
    let acc: ReturnType<typeof computeAccounting>;
    try {
      acc = computeAccounting({ bytes, counts }, vmstat.nr_zspages === undefined ? undefined : vmstat, pageSize);
    } catch {
      continue; // a tick without MemTotal: nothing to stack
    }
    const l = { ...acc.layers };
    if (unaccounted !== undefined) {
      // What the recorder found in the per-CPU lists is free memory, as in the report.
      l.free += l.unaccounted - unaccounted;
      l.unaccounted = unaccounted;
    }
    LAYER_NAMES.forEach((n, k) => {
      layers[k]![i] = l[n];
    });
  }
  const d = minMaxStacked(ticks, layers, q.buckets ?? 1200, q.fromMs, q.toMs);
  return {
    ...empty,
    t: d.t,
    layers: LAYER_NAMES.map((n, k) => ({ name: n, title: LAYER_TITLES[n], bytes: d.layers[k]! })),
  };
}

export interface SeriesQuery extends RangeQuery {
  /** `layer/key`, as suspects name them. */
  id: string;
  /** A metric, or two joined by `+` (a suspect's anon_bytes+swap_bytes): their sum. */
  metric: string;
}

function splitId(id: string): { layer: Layer; key: string } {
  const slash = id.indexOf('/');
  return { layer: id.slice(0, slash) as Layer, key: id.slice(slash + 1) };
}

/** One series (or the sum of two metrics of one entity), min and max per bucket. */
export function seriesView(reader: RecordingReader, q: SeriesQuery): SeriesView | undefined {
  const { layer, key } = splitId(q.id);
  const metrics = q.metric.split('+');
  const rec = reader.load({
    sinceMs: q.fromMs,
    untilMs: q.toMs,
    maxPoints: ALL_POINTS,
    layers: [layer],
    filter: (l, k, m) => l === layer && k === key && metrics.includes(m),
  });
  const parts = metrics.map((m) => rec.series.find((s) => s.metric === m));
  const first = parts[0];
  if (!first) return undefined;
  let v = first.v;
  for (const p of parts.slice(1)) {
    if (!p) continue;
    const other = align(first.t, p);
    v = v.map((x, i) => x + (other[i] ?? 0));
  }
  const label =
    layer === 'process'
      ? `${first.label ?? '?'} (pid ${first.pid})`
      : layer === 'mapping'
        ? `${first.label} of pid ${first.pid}`
        : `${layer} ${key}`;
  return {
    id: q.id,
    label,
    metric: q.metric,
    unit: first.unit,
    points: minMaxBuckets(first.t, v, q.buckets ?? 1200, q.fromMs, q.toMs),
    rawPoints: first.t.length,
  };
}

function median(xs: number[]): number {
  const s = Float64Array.from(xs).sort();
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * A suspect's series with its fitted growth: the rate `leaks` found, through the points since
 * the growth began (the intercept is the median residual, as Theil–Sen's).
 */
export function suspectView(
  reader: RecordingReader,
  s: Suspect,
  leaks: Pick<LeakReport, 'firstMs' | 'lastMs'>,
  q: RangeQuery = {},
): SeriesView | undefined {
  const fromMs = q.fromMs ?? leaks.firstMs;
  const toMs = q.toMs ?? leaks.lastMs;
  const view = seriesView(reader, { ...q, fromMs, toMs, id: s.id, metric: s.metric });
  if (!view) return undefined;
  view.label = s.name;
  const since = s.sinceMs ?? fromMs ?? view.points.t[0] ?? 0;
  const end = view.points.t[view.points.t.length - 1] ?? since;
  const slopePerMs = s.ratePerHour / 3_600_000;
  const pts = view.points;
  const residuals: number[] = [];
  for (let i = 0; i < pts.t.length; i++)
    if (pts.t[i]! >= since) residuals.push(pts.v[i]! - slopePerMs * (pts.t[i]! - since));
  view.fit = { fromMs: since, toMs: end, intercept: median(residuals), slopePerMs };
  if (s.sinceMs !== undefined) view.sinceMs = s.sinceMs;
  return view;
}

/** MemAvailable and where the suspects' combined rate takes it. */
export function projectionView(
  reader: RecordingReader,
  leaks: LeakReport,
  q: RangeQuery = {},
): ProjectionView | undefined {
  const mem = seriesView(reader, {
    ...q,
    fromMs: q.fromMs ?? leaks.firstMs,
    toMs: q.toMs ?? leaks.lastMs,
    id: 'meminfo/MemAvailable',
    metric: 'bytes',
  });
  if (!mem) return undefined;
  mem.label = 'MemAvailable';
  const out: ProjectionView = { memAvailable: mem, combinedRatePerHour: leaks.combinedRatePerHour };
  const h = leaks.hoursToExhaustion;
  if (h !== undefined && leaks.memAvailableBytes !== undefined && leaks.lastMs !== undefined) {
    out.hoursToExhaustion = h;
    out.line = {
      fromMs: leaks.lastMs,
      fromBytes: leaks.memAvailableBytes,
      toMs: leaks.lastMs + h * 3_600_000,
      toBytes: 0,
    };
  }
  return out;
}

/** Everything of a recording for an HTML report: leaks, the layers, every suspect's series. */
export function recordingView(
  reader: RecordingReader,
  q: LeaksQuery & { buckets?: number; maxSuspects?: number } = {},
): RecordingView {
  const leaks = recordingLeaks(reader, q);
  const range = { fromMs: leaks.firstMs, toMs: leaks.lastMs, buckets: q.buckets ?? 1200 };
  const suspects: Record<string, SeriesView> = {};
  for (const s of leaks.suspects.slice(0, q.maxSuspects ?? 100)) {
    const v = suspectView(reader, s, leaks, range);
    if (v) suspects[suspectKey(s)] = v;
  }
  const view: RecordingView = {
    file: reader.file,
    leaks,
    accounting: accountingOverTime(reader, range),
    suspects,
  };
  const p = projectionView(reader, leaks, range);
  if (p) view.projection = p;
  return view;
}

/** One row of a diff between two times of a recording. */
export interface TimeDiffRow {
  id: string;
  label: string | undefined;
  metric: string;
  unit: 'bytes' | 'count';
  before: number;
  after: number;
  delta: number;
}

/** Every series' value at `fromMs` and at `toMs` (the ticks nearest inside), largest byte gain first. */
export function diffTimes(reader: RecordingReader, fromMs: number, toMs: number): TimeDiffRow[] {
  const rec = reader.load({ sinceMs: fromMs, untilMs: toMs, maxPoints: 2 });
  const rows: TimeDiffRow[] = [];
  for (const s of rec.series) {
    if (s.v.length === 0) continue;
    const before = s.t[0] === rec.firstMs ? s.v[0]! : 0;
    const after = s.t[s.t.length - 1] === rec.lastMs ? s.v[s.v.length - 1]! : 0;
    if (before === after) continue;
    rows.push({
      id: `${s.layer}/${s.key}`,
      label: s.label,
      metric: s.metric,
      unit: s.unit,
      before,
      after,
      delta: after - before,
    });
  }
  return rows.sort(
    (a, b) => (a.unit === b.unit ? 0 : a.unit === 'bytes' ? -1 : 1) || b.delta - a.delta || (a.id < b.id ? -1 : 1),
  );
}
