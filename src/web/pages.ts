/** The three HTML reports: `report --html`, `diff --html`, `leaks --html`. */
import type { Snapshot } from '../model/snapshot.js';
import type { DiffOptions } from '../registry/diff.js';
import type { ReportOptions } from '../registry/report.js';
import type { RecordingReader } from '../store/recording.js';
import { pageHtml } from './html.js';
import { type LeaksQuery, recordingView } from './recording.js';
import { diffView, reportView, snapshotFlames } from './snapshots.js';
import type { PageData } from './types.js';

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

export async function reportHtml(snap: Snapshot, opts: ReportOptions = {}): Promise<string> {
  return pageHtml(await reportPageData(snap, opts));
}

export async function diffHtml(before: Snapshot, after: Snapshot, opts: DiffOptions = {}): Promise<string> {
  return pageHtml(await diffPageData(before, after, opts));
}

export function leaksHtml(reader: RecordingReader, q: LeaksQuery = {}): string {
  return pageHtml(leaksPageData(reader, q));
}
