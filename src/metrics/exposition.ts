/**
 * The Prometheus text exposition format (0.0.4), written by hand rather than with prom-client:
 *
 * - node_exporter's vmstat families are `untyped` (collector/vmstat_linux.go), a type prom-client
 *   cannot emit, and the shared names must keep node_exporter's types exactly;
 * - every scrape is one snapshot turned into families from scratch (processes and vmalloc callers
 *   come and go between snapshots); prom-client keeps metric objects and label sets between
 *   scrapes in a registry, which would have to be reset and refilled each time;
 * - the format is small: HELP and TYPE lines, samples, three escapes.
 *
 * Checked by `promtool check metrics` and by Prometheus scraping it (src/metrics/*.test.ts,
 * test/e2e/fleet.test.ts).
 */
import type { MetricFamily } from '../registry/index.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** A sample value as the format writes it (Go's ParseFloat reads every one of these back). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** Is a name usable as a metric name (the format's, without UTF-8 quoting)? */
export function isMetricName(name: string): boolean {
  return METRIC_NAME.test(name);
}

/**
 * Encode families, in the order given. Labels are written sorted by name, as client_golang
 * writes them. Throws on what a scraper would reject: a bad or repeated name, a sample with the
 * wrong number of labels, two samples with the same labels. Families without samples are left out.
 */
export function encodeFamilies(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const names = new Set<string>();
  for (const f of families) {
    if (f.samples.length === 0) continue;
    if (!METRIC_NAME.test(f.name)) throw new Error(`metric name ${JSON.stringify(f.name)} is not valid`);
    if (names.has(f.name)) throw new Error(`metric family ${f.name} written twice`);
    names.add(f.name);
    for (const l of f.labels)
      if (!LABEL_NAME.test(l) || l.startsWith('__'))
        throw new Error(`${f.name}: label name ${JSON.stringify(l)} is not valid`);
    if (new Set(f.labels).size !== f.labels.length) throw new Error(`${f.name}: repeated label name`);
    const order = f.labels.map((_, i) => i).sort((a, b) => (f.labels[a]! < f.labels[b]! ? -1 : 1));
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    const seen = new Set<string>();
    for (const s of f.samples) {
      if (s.labels.length !== f.labels.length)
        throw new Error(`${f.name}: ${s.labels.length} label values for ${f.labels.length} labels`);
      const labels = order.map((i) => `${f.labels[i]}="${escapeLabelValue(s.labels[i]!)}"`).join(',');
      if (seen.has(labels)) throw new Error(`${f.name}{${labels}} written twice`);
      seen.add(labels);
      out.push(`${f.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Series (samples) in a set of families. */
export function seriesCount(families: readonly MetricFamily[]): number {
  return families.reduce((n, f) => n + f.samples.length, 0);
}
