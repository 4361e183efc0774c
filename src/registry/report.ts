import type { MissingSource, Snapshot, SourceName } from '../model/snapshot.js';
import { SnapshotData } from './data.js';
import { ENTRIES, ENTRY_BY_NAME } from './index.js';
import type { Finding, ReadOptions, Report, ReportContext, ReportTable } from './types.js';

export interface ReportOptions extends ReadOptions {
  /** Rows per top list. Default 10. */
  top?: number;
}

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 } as const;

/**
 * What one moment shows: every registry entry that has the source contributes its section,
 * then its findings; sources the snapshot lacks are listed with why and how to enable them.
 * A parse error propagates (file and line): a report on a half-read file would mislead.
 */
export async function buildReport(snap: Snapshot, opts: ReportOptions = {}): Promise<Report> {
  const manifest = await snap.manifest();
  const unavailable: MissingSource[] = [...manifest.missing];
  const missingPaths = new Set(unavailable.map((m) => m.path));
  const report: Report = {
    snapshot: {
      origin: snap.origin,
      tool: manifest.tool,
      ...(manifest.source ? { source: manifest.source } : {}),
      hostname: manifest.hostname,
      kernelRelease: manifest.kernelRelease,
      time: manifest.time,
      uptimeSeconds: manifest.uptimeSeconds,
      pageSizeBytes: manifest.pageSizeBytes,
    },
    findings: [],
    unavailable,
  };
  const data = new SnapshotData(snap, { pageSizeBytes: manifest.pageSizeBytes, ...opts }, ENTRY_BY_NAME);
  const ctx: ReportContext = {
    snap,
    manifest,
    pageSizeBytes: manifest.pageSizeBytes,
    top: opts.top ?? 10,
    data,
    report,
    has: (name) =>
      !unavailable.some(
        (m) => m.path === name || m.path === ENTRY_BY_NAME[name as SourceName]?.location.path,
      ),
  };
  for (const entry of ENTRIES) {
    if (!entry.report) continue;
    const value = await data.get(entry.name);
    if (value === undefined) {
      const path = entry.location.path;
      // A raw kernel file holds one source: the others are not "missing" from it.
      if (!missingPaths.has(path) && manifest.source === undefined) {
        missingPaths.add(path);
        unavailable.push({
          path,
          reason: entry.absentReason?.(snap) ?? snap.whyMissing(path) ?? 'not present',
          enable: entry.location.enable,
        });
      }
      continue;
    }
    Object.assign(report, await entry.report(value, ctx));
  }
  const findings: Finding[] = [];
  for (const entry of ENTRIES) if (entry.findings) findings.push(...(await entry.findings(ctx)));
  report.findings = findings.sort((x, y) => SEVERITY_ORDER[x.severity] - SEVERITY_ORDER[y.severity]);
  return report;
}

/** The report's tables, in registry order, for presenters. */
export function reportTables(report: Report): ReportTable[] {
  return ENTRIES.flatMap((e) => e.tables?.(report) ?? []);
}
