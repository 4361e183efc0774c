import { analyzeLeaks, type LeakOptions, type Suspect, suspectScore } from '../analysis/leaks.js';
import { MemsleuthError } from '../model/errors.js';
import { type Layer, type LoadedRecording, metricUnit, type SeriesData } from '../model/samples.js';
import { ENTRIES, type MetricsRecording } from '../registry/index.js';
import {
  PrometheusClient,
  promString,
  type QueryCost,
  type RangeSeries,
  withMatchers,
} from './prometheus.js';

/**
 * Leak ranking across a fleet through Prometheus: every instance's series are read back with
 * query_range and turned into the recording shape (model/samples.ts LoadedRecording) the way
 * each registry entry's `metrics.recording` says, so the engine of `memsleuth leaks`
 * (analyzeLeaks) judges them exactly as it judges a local recording; then the suspects of all
 * instances are ranked together by the same score.
 *
 * One instance at a time (a few in parallel): memory stays bounded by one instance's series.
 */

export interface FleetOptions {
  /** Prometheus server root, e.g. http://prometheus:9090. */
  url: string;
  /** Start and end of the window, ms since the epoch. */
  startMs: number;
  endMs: number;
  /** Resolution of query_range; default the window / maxPoints, at least 1 s. */
  stepMs?: number;
  /** Points per series when the step is chosen automatically. Default 240 (what the trend test uses). */
  maxPoints?: number;
  /** Extra label matchers for every query, e.g. `job="memsleuth"`. */
  match?: string;
  /** The label that names a host. Default `instance`. */
  instanceLabel?: string;
  /** Instances analysed at once. Default 4. */
  concurrency?: number;
  /** Bearer token for Prometheus. */
  token?: string;
  timeoutMs?: number;
  leakOptions?: LeakOptions;
}

export interface FleetSuspect extends Suspect {
  instance: string;
  /** The recording layer (`slab`, `unaccounted`, `process`...). */
  layer: Layer;
  /** Hours until the instance's MemAvailable is used up at this suspect's rate (byte suspects). */
  hoursToExhaustion?: number;
}

export interface FleetInstance {
  instance: string;
  series: number;
  points: number;
  firstMs: number | undefined;
  lastMs: number | undefined;
  suspects: number;
  memAvailableBytes: number | undefined;
  combinedRatePerHour: number;
  hoursToExhaustion: number | undefined;
  /** Reclaimable growth (page cache, reclaimable slab): not leaks. */
  reclaimable: { id: string; name: string; ratePerHour: number }[];
  /** Processes first seen too late in the window to be judged (see dropYoungProcesses). */
  youngProcesses: number;
  error?: string;
}

export interface FleetReport {
  prometheus: string;
  startMs: number;
  endMs: number;
  stepMs: number;
  instances: FleetInstance[];
  /** Suspects of every instance, ranked together (`rank` is the fleet rank). */
  suspects: FleetSuspect[];
  queries: QueryCost;
}

/** Every registry entry's reading-back, in registry order. */
export function recordingMaps(): MetricsRecording[] {
  return ENTRIES.flatMap((e) => e.metrics?.recording ?? []);
}

/** Series that tell a host exists: memsleuth's accounting, or node_exporter's meminfo. */
export const INSTANCE_ANCHORS = [
  'memsleuth_memory_layer_bytes{layer="unaccounted"}',
  'node_memory_MemAvailable_bytes',
] as const;

/** The step: given, else the window cut into maxPoints, in whole seconds, at least 1 s. */
export function fleetStepMs(opts: Pick<FleetOptions, 'startMs' | 'endMs' | 'stepMs' | 'maxPoints'>): number {
  if (opts.stepMs !== undefined) return Math.max(1000, opts.stepMs);
  const range = opts.endMs - opts.startMs;
  return Math.max(1000, Math.ceil(range / (opts.maxPoints ?? 240) / 1000) * 1000);
}

/** Instances with any anchor series in the window. */
export async function fleetInstances(client: PrometheusClient, opts: FleetOptions): Promise<string[]> {
  const label = opts.instanceLabel ?? 'instance';
  const sets = await client.series(
    INSTANCE_ANCHORS.map((a) => withMatchers(a, opts.match ?? '')),
    opts.startMs / 1000,
    opts.endMs / 1000,
  );
  return [...new Set(sets.map((s) => s[label]).filter((v): v is string => v !== undefined))].sort();
}

/** One instance's series as a recording, through the registry's reading-back maps. */
export async function loadInstance(
  client: PrometheusClient,
  instance: string,
  opts: FleetOptions,
  stepMs: number,
): Promise<LoadedRecording> {
  const label = opts.instanceLabel ?? 'instance';
  const matchers = [`${label}=${promString(instance)}`, opts.match ?? ''].filter((m) => m.trim()).join(',');
  const start = opts.startMs / 1000;
  const end = opts.endMs / 1000;
  const step = stepMs / 1000;
  const results: { map: MetricsRecording; result: RangeSeries[] }[] = [];
  for (const map of recordingMaps())
    results.push({
      map,
      result: await client.queryRange(withMatchers(map.selector, matchers), start, end, step),
    });
  const rec = toRecording(instance, results);
  // The exporter's own process (live machines): `leaks` lists its warm-up apart, as the recorder's.
  const pid = await client.queryRange(withMatchers('memsleuth_exporter_pid', matchers), start, end, step);
  const lastPid = pid[0]?.values[pid[0].values.length - 1]?.[1];
  if (lastPid !== undefined) rec.meta.recorder_pid = lastPid;
  return rec;
}

/**
 * Series read back (one query result per map, in registry order) as a recording. The first map
 * to give a layer/key/metric wins: memsleuth's own series before node_exporter's.
 */
export function toRecording(
  file: string,
  results: readonly { map: MetricsRecording; result: readonly RangeSeries[] }[],
): LoadedRecording {
  const series: SeriesData[] = [];
  const seen = new Set<string>();
  const meta: Record<string, string> = {};
  let firstMs: number | undefined;
  let lastMs: number | undefined;
  let ticks = 0;
  for (const { map, result } of results) {
    if (map.meta) Object.assign(meta, map.meta(result.map((r) => r.metric)));
    for (const r of result) {
      const key = map.key(r.metric);
      const metric = map.metric(r.metric);
      if (key === undefined || metric === undefined || r.values.length === 0) continue;
      const id = `${map.layer}\0${key}\0${metric}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const t = r.values.map(([ts]) => Math.round(ts * 1000));
      const v = r.values.map(([, x]) => Number(x));
      series.push({
        id: series.length + 1,
        layer: map.layer,
        key,
        label: map.label?.(r.metric),
        pid: map.pid?.(r.metric),
        metric,
        unit: metricUnit(metric),
        t,
        v,
      });
      ticks = Math.max(ticks, t.length);
      firstMs = firstMs === undefined ? t[0] : Math.min(firstMs, t[0]!);
      lastMs = lastMs === undefined ? t[t.length - 1] : Math.max(lastMs, t[t.length - 1]!);
    }
  }
  return { file, meta, tickCount: ticks, firstMs, lastMs, series };
}

/**
 * Processes first seen in the last quarter of the window (or the last hour, when that is
 * shorter) are left out: a process that just started grows while it warms up, and over a
 * window of hours Prometheus still has enough points of it to pass the trend test. They are
 * judged once they have been seen that long. Returns how many processes were left out.
 */
export function dropYoungProcesses(rec: LoadedRecording): number {
  if (rec.firstMs === undefined || rec.lastMs === undefined) return 0;
  const minAgeMs = Math.min(0.25 * (rec.lastMs - rec.firstMs), 3_600_000);
  const young = new Set<string>();
  for (const s of rec.series)
    if (s.layer === 'process' && rec.lastMs - (s.t[0] ?? rec.lastMs) < minAgeMs) young.add(s.key);
  rec.series = rec.series.filter((s) => s.layer !== 'process' || !young.has(s.key));
  return young.size;
}

async function pool<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  return out;
}

/** Read every instance of the fleet, judge each with analyzeLeaks, rank all suspects together. */
export async function analyzeFleet(opts: FleetOptions): Promise<FleetReport> {
  if (!(opts.endMs > opts.startMs)) throw new MemsleuthError('USAGE', '--since: the window is empty');
  const client = new PrometheusClient(opts.url, { timeoutMs: opts.timeoutMs, token: opts.token });
  const stepMs = fleetStepMs(opts);
  const maxPoints = Math.ceil((opts.endMs - opts.startMs) / stepMs) + 1;
  if (maxPoints > 11_000)
    throw new MemsleuthError('USAGE', `--step: ${maxPoints} points per series, Prometheus allows 11000`, {
      hint: 'a larger --step or a shorter --since',
    });
  const instances = await fleetInstances(client, opts);
  if (instances.length === 0) {
    throw new MemsleuthError(
      'UNAVAILABLE',
      `${opts.url}: no instance has ${INSTANCE_ANCHORS.join(' or ')} in the window`,
      { hint: 'is `memsleuth exporter` (or node_exporter) scraped, and is --since long enough?' },
    );
  }
  const rows: FleetInstance[] = [];
  const all: FleetSuspect[] = [];
  const results = await pool(instances, opts.concurrency ?? 4, async (instance) => {
    try {
      const rec = await loadInstance(client, instance, opts, stepMs);
      const young = dropYoungProcesses(rec);
      return { instance, rec, young, report: analyzeLeaks(rec, opts.leakOptions) };
    } catch (e) {
      if (e instanceof MemsleuthError && e.code === 'IO') throw e;
      return { instance, error: (e as Error).message };
    }
  });
  for (const r of results) {
    if (!('report' in r) || !r.report || !r.rec) {
      rows.push({
        instance: r.instance,
        series: 0,
        points: 0,
        firstMs: undefined,
        lastMs: undefined,
        suspects: 0,
        memAvailableBytes: undefined,
        combinedRatePerHour: 0,
        hoursToExhaustion: undefined,
        reclaimable: [],
        youngProcesses: 0,
        error: r.error,
      });
      continue;
    }
    const { rec, report } = r;
    rows.push({
      instance: r.instance,
      series: rec.series.length,
      points: rec.series.reduce((n, s) => n + s.t.length, 0),
      firstMs: rec.firstMs,
      lastMs: rec.lastMs,
      suspects: report.suspects.length,
      memAvailableBytes: report.memAvailableBytes,
      combinedRatePerHour: report.combinedRatePerHour,
      hoursToExhaustion: report.hoursToExhaustion,
      reclaimable: report.reclaimable.map((x) => ({ id: x.id, name: x.name, ratePerHour: x.ratePerHour })),
      youngProcesses: r.young,
    });
    for (const s of report.suspects) {
      const f: FleetSuspect = { ...s, instance: r.instance, layer: s.id.split('/')[0] as Layer };
      if (s.unit === 'bytes' && s.ratePerHour > 0 && report.memAvailableBytes !== undefined)
        f.hoursToExhaustion = report.memAvailableBytes / s.ratePerHour;
      all.push(f);
    }
  }
  all.sort((a, b) => suspectScore(b) - suspectScore(a) || (a.instance < b.instance ? -1 : 1));
  all.forEach((s, i) => {
    s.rank = i + 1;
  });
  return {
    prometheus: opts.url,
    startMs: opts.startMs,
    endMs: opts.endMs,
    stepMs,
    instances: rows,
    suspects: all,
    queries: { ...client.cost },
  };
}
