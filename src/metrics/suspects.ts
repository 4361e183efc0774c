import type { LeakReport } from '../analysis/leaks.js';
import { FamilyBuilder, type MetricFamily, type MetricFamilyDoc } from '../registry/index.js';

/**
 * The current leak suspects of a recording (`memsleuth record` beside the exporter) as metric
 * families: the same verdicts `memsleuth leaks` prints, for dashboards and alerts.
 */

const SUSPECT_LABELS = ['suspect', 'kind', 'name'] as const;

export const SUSPECT_FAMILIES = {
  bytesRate: {
    name: 'memsleuth_leak_suspect_bytes_per_second',
    help: 'Growth rate of each leak suspect measured in bytes (memsleuth leaks on the recording given with --db; the top suspects).',
    type: 'gauge',
    labels: SUSPECT_LABELS,
    cardinality: '--leak-top (default 25), with the next two',
  },
  countRate: {
    name: 'memsleuth_leak_suspect_count_per_second',
    help: 'Growth rate of each leak suspect measured in counts (open fds, threads) per second.',
    type: 'gauge',
    labels: SUSPECT_LABELS,
    cardinality: '--leak-top (default 25), with the others',
  },
  confidence: {
    name: 'memsleuth_leak_suspect_confidence',
    help: 'Confidence (0 to 1) that each listed suspect keeps growing (Mann-Kendall significance, steadiness, pace of the tail).',
    type: 'gauge',
    labels: SUSPECT_LABELS,
    cardinality: '--leak-top (default 25)',
  },
  suspects: {
    name: 'memsleuth_leak_suspects',
    help: 'Leak suspects in the recording (all of them, listed or not).',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
  exhaustion: {
    name: 'memsleuth_leak_exhaustion_seconds',
    help: "Seconds until MemAvailable is used up at the suspects' combined byte rate (absent without growth).",
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
  lastTick: {
    name: 'memsleuth_leak_recording_last_tick_timestamp_seconds',
    help: 'Time of the last tick of the recording the suspects come from (seconds since the epoch).',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
} as const satisfies Record<string, MetricFamilyDoc>;

/** A leak report's families: the top `top` suspects by rank, and the totals. */
export function suspectFamilies(report: LeakReport, top: number): MetricFamily[] {
  const bytes = FamilyBuilder.of(SUSPECT_FAMILIES.bytesRate);
  const count = FamilyBuilder.of(SUSPECT_FAMILIES.countRate);
  const conf = FamilyBuilder.of(SUSPECT_FAMILIES.confidence);
  for (const s of report.suspects.slice(0, top)) {
    const labels = [s.id, s.kind, s.name];
    (s.unit === 'bytes' ? bytes : count).add(labels, s.ratePerHour / 3600);
    conf.add(labels, s.confidence);
  }
  const out = [bytes.family, count.family, conf.family];
  out.push(FamilyBuilder.of(SUSPECT_FAMILIES.suspects).add([], report.suspects.length).family);
  if (report.hoursToExhaustion !== undefined)
    out.push(FamilyBuilder.of(SUSPECT_FAMILIES.exhaustion).add([], report.hoursToExhaustion * 3600).family);
  if (report.lastMs !== undefined)
    out.push(FamilyBuilder.of(SUSPECT_FAMILIES.lastTick).add([], report.lastMs / 1000).family);
  return out.filter((f) => f.samples.length > 0);
}
