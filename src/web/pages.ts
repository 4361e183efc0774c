/** The HTML reports: `report --html`, `diff --html`, `leaks --html`, `trace ... --html`. */
import type { TraceReport } from '../analysis/alloc_trace.js';
import type { Snapshot } from '../model/snapshot.js';
import type { DiffOptions } from '../registry/diff.js';
import type { ReportOptions } from '../registry/report.js';
import type { RecordingReader } from '../store/recording.js';
import { flameTree } from './flame.js';
import { pageHtml } from './html.js';
import { type LeaksQuery, recordingView } from './recording.js';
import { diffView, reportView, snapshotFlames } from './snapshots.js';
import type { PageData, TraceView } from './types.js';

/** One snapshot: the report (as `report --json`) and flame graphs of its allocation stacks. */
export async function reportPageData(snap: Snapshot, opts: ReportOptions = {}): Promise<PageData> {
  const report = await reportView(snap, opts);
  const s = report.report.snapshot;
  return {
    kind: 'report',
    title: `report: ${s.hostname}, Linux ${s.kernelRelease}, ${s.origin}`,
    generatedAt: new Date().toISOString(),
    report,
    flames: await snapshotFlames(snap, opts),
  };
}

export async function diffPageData(
  before: Snapshot,
  after: Snapshot,
  opts: DiffOptions = {},
): Promise<PageData> {
  const diff = await diffView(before, after, opts);
  return {
    kind: 'diff',
    title: `diff: ${before.origin} → ${after.origin}`,
    generatedAt: new Date().toISOString(),
    diff,
  };
}

export function leaksPageData(reader: RecordingReader, q: LeaksQuery = {}): PageData {
  return {
    kind: 'leaks',
    title: `leaks: ${reader.file}`,
    generatedAt: new Date().toISOString(),
    recording: recordingView(reader, q),
  };
}

/**
 * An allocation trace: the title line and one icicle of its outstanding allocations by stack,
 * weighted by bytes (the stacks `--collapsed` writes). `source` names the graph (kmem_trace,
 * malloc_trace).
 */
export function tracePageData(r: TraceReport, o: { what: string; events: number; source: string }): PageData {
  const trace: TraceView = {
    what: o.what,
    durationSeconds: r.durationSeconds,
    events: o.events,
    lostEvents: r.counters.lostEvents,
    allocs: r.counters.allocs,
    frees: r.counters.frees,
    outstanding: r.outstanding,
    sample: r.sample,
  };
  return {
    kind: 'trace',
    title: `trace: ${o.what}`,
    generatedAt: new Date().toISOString(),
    trace,
    flames: [
      {
        source: o.source,
        title: `${o.source}: outstanding bytes by stack`,
        unit: 'bytes',
        root: flameTree(r.byStack, 'bytes'),
      },
    ],
  };
}

export async function reportHtml(snap: Snapshot, opts: ReportOptions = {}): Promise<string> {
  return pageHtml(await reportPageData(snap, opts));
}

export async function diffHtml(before: Snapshot, after: Snapshot, opts: DiffOptions = {}): Promise<string> {
  return pageHtml(await diffPageData(before, after, opts));
}

export function leaksHtml(reader: RecordingReader, q: LeaksQuery = {}): string {
  return pageHtml(leaksPageData(reader, q));
}
