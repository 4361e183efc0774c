/**
 * What the page shows of a recording: `memsleuth leaks --json` (the same calls as the
 * command), the accounting identity at every tick, and any series, downsampled to min and
 * max per pixel bucket at full resolution underneath.
 */
import { computeAccounting, LAYER_NAMES, LAYER_TITLES } from '../analysis/accounting.js';
import {
  analyzeLeaks,
  type LeakOptions,
  type LeakReport,
  readByLeaks,
  type Suspect,
} from '../analysis/leaks.js';
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
  /** Progress: ticks read of all, then series analysed of all. */
  onProgress?: (phase: 'read' | 'analyse', done: number, total: number) => void;
}

/** What `memsleuth leaks --json` prints, computed the way the command does. */
export function recordingLeaks(reader: RecordingReader, q: LeaksQuery = {}): LeakReport {
  const sinceMs = q.since ? parseSince(q.since, reader.span().lastMs) : undefined;
  const progress = q.onProgress;
  const opts: LeakOptions = { minBytesPerHour: (q.minRateMiBPerHour ?? 2) * 1024 * 1024 };
  if (progress) opts.onProgress = (done, total) => progress('analyse', done, total);
  const rec = reader.load({
    sinceMs,
    // Only what the analysis reads: the same report from fewer samples.
    filter: (layer, _key, metric) => readByLeaks(layer, metric),
    ...(progress ? { onProgress: (done: number, total: number) => progress('read', done, total) } : {}),
  });
  return analyzeLeaks(rec, opts);
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

/** The identity's layers at every tick of a range, unthinned: what accountingView downsamples. */
export interface AccountingSeries {
  t: number[];
  /** One array per layer, in LAYER_NAMES order, one value per t. */
  layers: number[][];
  ticks: number;
  firstMs: number | undefined;
  lastMs: number | undefined;
}

/**
 * The report's identity (analysis/accounting.ts) at every tick, from the recorded meminfo
 * fields and vmstat; `unaccounted` is the recorder's own (it saw the per-CPU free lists), and
 * the per-CPU free pages it found are counted in `free`, so the layers sum to MemTotal.
 */
export function accountingSeries(
  reader: RecordingReader,
  q: { fromMs?: number; toMs?: number } = {},
): AccountingSeries {
  const rec = reader.load({
    sinceMs: q.fromMs,
    untilMs: q.toMs,
    maxPoints: ALL_POINTS,
    layers: ['meminfo', 'unaccounted', 'vmstat'],
    filter: (layer, key) => layer !== 'vmstat' || key === 'nr_zspages',
  });
  const pageSize = Number(rec.meta.page_size) || 4096;
  const memTotal = rec.series.find((s) => s.layer === 'meminfo' && s.key === 'MemTotal');
  const out: AccountingSeries = {
    t: [],
    layers: LAYER_NAMES.map(() => []),
    ticks: rec.tickCount,
    firstMs: rec.firstMs,
    lastMs: rec.lastMs,
  };
  if (!memTotal) return out;
  const ticks = memTotal.t;
  const fields = rec.series.map((s) => ({
    kind:
      s.layer === 'unaccounted'
        ? ('unaccounted' as const)
        : s.layer === 'vmstat'
          ? ('vmstat' as const)
          : s.metric === 'bytes'
            ? ('bytes' as const)
            : ('counts' as const),
    key: s.key,
    v: align(ticks, s),
  }));
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
    const acc = computeAccounting(
      { bytes, counts },
      vmstat.nr_zspages === undefined ? undefined : vmstat,
      pageSize,
    );
    const l = { ...acc.layers };
    if (unaccounted !== undefined) {
      // What the recorder found in the per-CPU lists is free memory, as in the report.
      l.free += l.unaccounted - unaccounted;
      l.unaccounted = unaccounted;
    }
    out.t.push(ticks[i]!);
    LAYER_NAMES.forEach((n, k) => {
      out.layers[k]!.push(l[n]);
    });
  }
  return out;
}

/** The layers over time for a chart: min and max of the total per pixel bucket. */
export function accountingView(full: AccountingSeries, q: RangeQuery = {}): AccountingOverTime {
  const d = minMaxStacked(full.t, full.layers, q.buckets ?? 1200, q.fromMs, q.toMs);
  return {
    t: d.t,
    layers: LAYER_NAMES.map((n, k) => ({ name: n, title: LAYER_TITLES[n], bytes: d.layers[k]! })),
    ticks: full.ticks,
    firstMs: full.firstMs,
    lastMs: full.lastMs,
  };
}

/** accountingSeries then accountingView. */
export function accountingOverTime(reader: RecordingReader, q: RangeQuery = {}): AccountingOverTime {
  return accountingView(accountingSeries(reader, q), q);
}

/** One series (or the sum of two metrics of one entity, `a+b`), every point. */
export interface RawSeries {
  /** `layer/key`. */
  id: string;
  metric: string;
  label: string;
  unit: 'bytes' | 'count';
  t: number[];
  v: number[];
}

function splitId(id: string): { layer: Layer; key: string } {
  const slash = id.indexOf('/');
  return { layer: id.slice(0, slash) as Layer, key: id.slice(slash + 1) };
}

/**
 * Several series in one pass over the recording (a table scan costs the same for one series
 * or fifty): every suspect's series for the page at once. Missing ones are left out.
 */
export function readSeries(
  reader: RecordingReader,
  wanted: readonly { id: string; metric: string }[],
  q: { fromMs?: number; toMs?: number } = {},
): RawSeries[] {
  const want = new Set<string>();
  const layers = new Set<Layer>();
  for (const w of wanted) {
    layers.add(splitId(w.id).layer);
    for (const m of w.metric.split('+')) want.add(`${w.id}\0${m}`);
  }
  const rec = reader.load({
    sinceMs: q.fromMs,
    untilMs: q.toMs,
    maxPoints: ALL_POINTS,
    layers: [...layers],
    filter: (l, k, m) => want.has(`${l}/${k}\0${m}`),
  });
  const byKey = new Map(rec.series.map((s) => [`${s.layer}/${s.key}\0${s.metric}`, s]));
  const out: RawSeries[] = [];
  for (const w of wanted) {
    const parts = w.metric.split('+').map((m) => byKey.get(`${w.id}\0${m}`));
    const first = parts[0];
    if (!first) continue;
    let v = first.v;
    for (const p of parts.slice(1)) {
      if (!p) continue;
      const other = align(first.t, p);
      v = v.map((x, i) => x + (other[i] ?? 0));
    }
    const { layer, key } = splitId(w.id);
    const label =
      layer === 'process'
        ? `${first.label ?? '?'} (pid ${first.pid})`
        : layer === 'mapping'
          ? `${first.label} of pid ${first.pid}`
          : `${layer} ${key}`;
    out.push({ id: w.id, metric: w.metric, label, unit: first.unit, t: first.t, v });
  }
  return out;
}

/** A series for a chart: min and max per pixel bucket. */
export function seriesView(raw: RawSeries, q: RangeQuery = {}): SeriesView {
  const points = minMaxBuckets(raw.t, raw.v, q.buckets ?? 1200, q.fromMs, q.toMs);
  return {
    id: raw.id,
    label: raw.label,
    metric: raw.metric,
    unit: raw.unit,
    points,
    rawPoints: raw.t.length,
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
export function suspectView(raw: RawSeries, s: Suspect, q: RangeQuery = {}): SeriesView {
  const view = seriesView(raw, q);
  view.label = s.name;
  const since = s.sinceMs ?? raw.t[0] ?? 0;
  const end = raw.t[raw.t.length - 1] ?? since;
  const slopePerMs = s.ratePerHour / 3_600_000;
  const residuals: number[] = [];
  for (let i = 0; i < raw.t.length; i++)
    if (raw.t[i]! >= since) residuals.push(raw.v[i]! - slopePerMs * (raw.t[i]! - since));
  view.fit = { fromMs: since, toMs: end, intercept: median(residuals), slopePerMs };
  if (s.sinceMs !== undefined) view.sinceMs = s.sinceMs;
  return view;
}

export const MEM_AVAILABLE = { id: 'meminfo/MemAvailable', metric: 'bytes' } as const;

/** MemAvailable and where the suspects' combined rate takes it. */
export function projectionView(raw: RawSeries, leaks: LeakReport, q: RangeQuery = {}): ProjectionView {
  const mem = seriesView(raw, q);
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
  const shown = leaks.suspects.slice(0, q.maxSuspects ?? 100);
  const raws = readSeries(reader, [...shown, MEM_AVAILABLE], range);
  const rawOf = (w: { id: string; metric: string }) =>
    raws.find((r) => r.id === w.id && r.metric === w.metric);
  const suspects: Record<string, SeriesView> = {};
  for (const s of shown) {
    const raw = rawOf(s);
    if (raw) suspects[suspectKey(s)] = suspectView(raw, s, range);
  }
  const view: RecordingView = {
    file: reader.file,
    leaks,
    accounting: accountingOverTime(reader, range),
    suspects,
  };
  const mem = rawOf(MEM_AVAILABLE);
  if (mem) view.projection = projectionView(mem, leaks, range);
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
    (a, b) =>
      (a.unit === b.unit ? 0 : a.unit === 'bytes' ? -1 : 1) || b.delta - a.delta || (a.id < b.id ? -1 : 1),
  );
}
