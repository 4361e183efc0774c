/**
 * What the page shows, as data: the server's /api answers and the inlined data of an HTML
 * report have these shapes. The page (./page) imports only types from here and from the
 * floors below, so server and page agree at compile time.
 */
import type { LeakReport } from '../analysis/leaks.js';
import type { Weights } from '../analysis/stacks.js';
import type { SnapshotDiff } from '../registry/diff.js';
import type { Report, ReportTable } from '../registry/index.js';
import type { Points } from './downsample.js';
import type { FlameGraph } from './flame.js';

export type { Points } from './downsample.js';
export type { FlameGraph, FlameNode } from './flame.js';

/** One moment: `memsleuth report --json` and the registry's tables for it. */
export interface ReportView {
  report: Report;
  tables: ReportTable[];
}

/** The accounting layers over time (MemTotal = user + shared + cache + kernel + free + unaccounted). */
export interface AccountingOverTime {
  t: number[];
  /** In the identity's order; values in bytes, one per t. */
  layers: { name: string; title: string; bytes: number[] }[];
  /** Ticks in the range before downsampling. */
  ticks: number;
  firstMs: number | undefined;
  lastMs: number | undefined;
}

/** A series ready to draw: points (min and max per pixel bucket) and, for a suspect, its fit. */
export interface SeriesView {
  /** `layer/key`. */
  id: string;
  label: string;
  metric: string;
  unit: 'bytes' | 'count';
  points: Points;
  /** Points in range before downsampling. */
  rawPoints: number;
  /** The suspect's growth: v = intercept + slopePerMs × (t − fromMs), from `since` to the last tick. */
  fit?: { fromMs: number; toMs: number; intercept: number; slopePerMs: number };
  sinceMs?: number;
}

/** How long until MemAvailable is gone at the suspects' combined rate. */
export interface ProjectionView {
  memAvailable: SeriesView;
  /** From the last tick to zero (or to `hoursToExhaustion` when far away). */
  line?: { fromMs: number; fromBytes: number; toMs: number; toBytes: number };
  hoursToExhaustion?: number;
  combinedRatePerHour: number;
}

/** A recording: `memsleuth leaks --json`, the layers over time, each suspect's series. */
export interface RecordingView {
  file: string;
  leaks: LeakReport;
  accounting: AccountingOverTime;
  /** By suspect id + metric (`slab/kmalloc-96 bytes`); the HTML report inlines them all. */
  suspects: Record<string, SeriesView>;
  projection?: ProjectionView;
}

/** Two moments: `memsleuth diff --json` and differential flame graphs of the stack sources. */
export interface DiffView {
  diff: SnapshotDiff;
  flames: FlameGraph[];
}

/** An allocation trace (`trace report|kernel|user --html`): what it was, its icicle in PageData.flames. */
export interface TraceView {
  /** What was traced: the saved file, `kernel allocations`, `process PID (comm)`. */
  what: string;
  durationSeconds: number;
  /** Trace events read (allocations, frees, other kmem events). */
  events: number;
  /** Events the kernel dropped (buffer full): their frees are missing, so outstanding overstates. */
  lostEvents: number;
  allocs: number;
  frees: number;
  /** Still allocated at the end of the trace. */
  outstanding: Weights;
  /** 1 in `sample` objects by address were traced (1: all). */
  sample: number;
}

/** The server's description of itself, for the dashboard. */
export interface ServeInfo {
  /** Snapshots found under --snapshots (names for /api/report?snapshot=), `live` first. */
  snapshots: string[];
  /** A recording is open (--db or --record). */
  recording: boolean;
  /** A recorder runs in this server (--record): the page follows its ticks. */
  recordingLive: boolean;
  intervalMs?: number;
}

/** Everything a page shows; the HTML report inlines one, the dashboard fetches the parts. */
export interface PageData {
  kind: 'report' | 'diff' | 'leaks' | 'trace' | 'serve';
  title: string;
  generatedAt: string;
  report?: ReportView;
  flames?: FlameGraph[];
  diff?: DiffView;
  recording?: RecordingView;
  trace?: TraceView;
  serve?: ServeInfo;
}

/** The key of a suspect's series in RecordingView.suspects. */
export function suspectKey(s: { id: string; metric: string }): string {
  return `${s.id} ${s.metric}`;
}
