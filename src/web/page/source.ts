/**
 * Where the page's data comes from: the data inlined in an HTML report, or the dashboard's
 * /api (same shapes, src/web/types.ts). Views ask this object and never know which.
 */
import type { LeakReport } from '../../analysis/leaks.js';
import type {
  AccountingOverTime,
  DiffView,
  FlameGraph,
  PageData,
  ProjectionView,
  RecordingView,
  ReportView,
  SeriesView,
  ServeInfo,
  TraceView,
} from '../types.js';
import { suspectKey } from '../types.js';

export interface TimeDiffRow {
  id: string;
  label: string | undefined;
  metric: string;
  unit: 'bytes' | 'count';
  before: number;
  after: number;
  delta: number;
}

export interface SeriesListRow {
  layer: string;
  key: string;
  label: string | null;
  metric: string;
  unit: string;
}

export interface DataSource {
  kind: PageData['kind'];
  title: string;
  /** True for the dashboard: it can be asked anything. */
  live: boolean;
  info?: ServeInfo;
  report(snapshot?: string): Promise<ReportView | undefined>;
  flames(snapshot?: string): Promise<FlameGraph[]>;
  diff(before?: string, after?: string): Promise<DiffView | undefined>;
  leaks(): Promise<LeakReport | undefined>;
  /** An allocation trace's title line (HTML reports of `trace ... --html` only). */
  trace(): Promise<TraceView | undefined>;
  accounting(): Promise<AccountingOverTime | undefined>;
  suspect(s: { id: string; metric: string }): Promise<SeriesView | undefined>;
  projection(): Promise<ProjectionView | undefined>;
  series(id: string, metric: string): Promise<SeriesView | undefined>;
  seriesList(): Promise<SeriesListRow[]>;
  timesDiff(fromMs: number, toMs: number): Promise<TimeDiffRow[]>;
  status(): Promise<{ ticks: number; lastMs: number | undefined } | undefined>;
}

/** An HTML report: everything is inlined, nothing is fetched. */
export function inlineSource(d: PageData): DataSource {
  const rec: RecordingView | undefined = d.recording;
  return {
    kind: d.kind,
    title: d.title,
    live: false,
    report: async () => d.report,
    flames: async () => d.flames ?? [],
    diff: async () => d.diff,
    leaks: async () => rec?.leaks,
    trace: async () => d.trace,
    accounting: async () => rec?.accounting,
    suspect: async (s) => rec?.suspects[suspectKey(s)],
    projection: async () => rec?.projection,
    series: async () => undefined,
    seriesList: async () => [],
    timesDiff: async () => [],
    status: async () => undefined,
  };
}

/** The dashboard: /api, with the access token when the server asked for one. */
export function apiSource(d: PageData, token: string | undefined): DataSource {
  const get = async <T>(
    path: string,
    params: Record<string, string | number | undefined> = {},
  ): Promise<T> => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
    if (token) q.set('token', token);
    const qs = q.toString();
    const r = await fetch(`/api/${path}${qs ? `?${qs}` : ''}`);
    if (!r.ok) throw new Error(`/api/${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  const buckets = () => Math.max(200, Math.min(4000, Math.round(window.innerWidth)));
  const info = d.serve!;
  return {
    kind: 'serve',
    title: d.title,
    live: true,
    info,
    report: (snapshot) => get<ReportView>('report/view', { snapshot }),
    flames: (snapshot) => get<FlameGraph[]>('flames', { snapshot }),
    diff: (before, after) => get<DiffView>('diff/view', { before, after }),
    leaks: async () => (info.recording ? get<LeakReport>('leaks') : undefined),
    trace: async () => undefined,
    accounting: async () =>
      info.recording ? get<AccountingOverTime>('accounting', { buckets: buckets() }) : undefined,
    suspect: (s) => get<SeriesView>('suspect', { id: s.id, metric: s.metric, buckets: buckets() }),
    projection: async () =>
      info.recording ? get<ProjectionView>('projection', { buckets: buckets() }) : undefined,
    series: (id, metric) => get<SeriesView>('series', { id, metric, buckets: buckets() }),
    seriesList: () => get<SeriesListRow[]>('series/list'),
    timesDiff: (fromMs, toMs) => get<TimeDiffRow[]>('diff/times', { from: fromMs, to: toMs }),
    status: () => get<{ ticks: number; lastMs: number | undefined }>('status'),
  };
}
