import { isMemsleuthError } from '../model/errors.js';
import type { Snapshot, SourceName } from '../model/snapshot.js';
import { SnapshotData } from './data.js';
import { DIFF_SOURCES, ENTRIES, ENTRY_BY_NAME } from './index.js';
import type { DiffRow, ReadOptions, SourceEntry } from './types.js';

export interface DiffSourceStatus {
  source: SourceName;
  /** `compared` when both sides had it; `unreadable` when a file did not parse (reason says where). */
  status: 'compared' | 'missing' | 'unreadable';
  /** Which side(s) lacked it. */
  missingIn?: ('before' | 'after')[];
  reason?: string;
  /** Rows this source contributed (changes only). */
  rows: number;
  /** What was left out on purpose, e.g. page_owner's page cache and anonymous pages. */
  note?: string;
}

export interface SnapshotDiff {
  before: string;
  after: string;
  /** Every change, largest byte gain first (losses last). */
  rows: DiffRow[];
  sources: DiffSourceStatus[];
}

export interface DiffOptions extends ReadOptions {
  /** Only these sources (default: every source with a diff, DIFF_SOURCES). */
  sources?: readonly SourceName[];
}

function absent(entry: SourceEntry<unknown>, snap: Snapshot): string {
  return entry.absentReason?.(snap) ?? snap.whyMissing(entry.location.path) ?? 'not present';
}

/**
 * Compare two snapshots over every source both have, ranked into one list by bytes gained.
 * Sources missing on one side are reported in `sources`, never fatal; a file that does not
 * parse spoils its own source (named with file and line), not the whole diff.
 */
export async function diffSnapshots(
  before: Snapshot,
  after: Snapshot,
  opts: DiffOptions = {},
): Promise<SnapshotDiff> {
  const pageSizeBytes =
    (await after.manifest()).pageSizeBytes || (await before.manifest()).pageSizeBytes || 4096;
  const wanted = new Set(opts.sources ?? DIFF_SOURCES);
  // Processes are compared by PSS from smaps_rollup: the per-mapping smaps adds nothing here.
  const loadOpts: ReadOptions = { smaps: false, ...opts };
  const sides = [
    new SnapshotData(before, loadOpts, ENTRY_BY_NAME),
    new SnapshotData(after, loadOpts, ENTRY_BY_NAME),
  ];
  const rows: DiffRow[] = [];
  const sources: DiffSourceStatus[] = [];
  for (const entry of ENTRIES) {
    if (!entry.diff || !wanted.has(entry.name)) continue;
    let b: unknown;
    let a: unknown;
    try {
      b = await sides[0]!.get(entry.name);
      a = await sides[1]!.get(entry.name);
    } catch (e) {
      if (!isMemsleuthError(e) || e.code !== 'PARSE') throw e;
      sources.push({ source: entry.name, status: 'unreadable', reason: e.message, rows: 0 });
      continue;
    }
    if (b === undefined || a === undefined) {
      const rb = b === undefined ? absent(entry, before) : undefined;
      const ra = a === undefined ? absent(entry, after) : undefined;
      sources.push({
        source: entry.name,
        status: 'missing',
        missingIn: [
          ...(b === undefined ? ['before' as const] : []),
          ...(a === undefined ? ['after' as const] : []),
        ],
        reason:
          rb !== undefined && rb === ra
            ? rb
            : [rb && `before: ${rb}`, ra && `after: ${ra}`].filter(Boolean).join('; '),
        rows: 0,
      });
      continue;
    }
    const r = entry.diff(b, a, { pageSizeBytes });
    const changed = r.rows.filter((x) => x.deltaBytes !== 0 || (x.deltaCount ?? 0) !== 0);
    rows.push(...changed);
    const status: DiffSourceStatus = { source: entry.name, status: 'compared', rows: changed.length };
    if (r.note) status.note = r.note;
    sources.push(status);
  }
  rows.sort(
    (x, y) =>
      y.deltaBytes - x.deltaBytes ||
      (x.source < y.source ? -1 : x.source > y.source ? 1 : 0) ||
      (x.name < y.name ? -1 : x.name > y.name ? 1 : 0),
  );
  return { before: before.origin, after: after.origin, rows, sources };
}

/** Rows of one source, in ranking order. */
export function rowsOf(diff: SnapshotDiff, source: SourceName): DiffRow[] {
  return diff.rows.filter((r) => r.source === source);
}
