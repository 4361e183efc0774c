/**
 * Prometheus alerting rules that watch the same layers as `memsleuth fleet`, for a rules file
 * (`rule_files:` in prometheus.yml): per layer, `predict_linear` over a window says what the layer
 * will have grown by the horizon, and the alert fires when that growth is more than what is
 * still available. Checked with `promtool check rules` in the tests.
 */

export interface RulesOptions {
  /** Window predict_linear fits over. Default 6 h. */
  windowMs?: number;
  /** How far ahead. Default 24 h. */
  horizonMs?: number;
  /** Extra label matchers for every selector, e.g. `job="memsleuth"`. */
  match?: string;
  /** How long the condition must hold before the alert fires. Default 30 m. */
  forMs?: number;
}

/** A PromQL duration: whole seconds, minutes or hours. */
function promDuration(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

function sel(name: string, matchers: string[]): string {
  const m = matchers.filter((x) => x.trim() !== '');
  return m.length ? `${name}{${m.join(',')}}` : name;
}

interface Rule {
  alert: string;
  expr: string;
  summary: string;
  description: string;
}

/** The rules file, YAML. */
export function alertRules(opts: RulesOptions = {}): string {
  const window = promDuration(opts.windowMs ?? 6 * 3_600_000);
  const horizonS = Math.round((opts.horizonMs ?? 24 * 3_600_000) / 1000);
  const horizon = promDuration(horizonS * 1000);
  const extra = opts.match ?? '';
  const avail = sel('node_memory_MemAvailable_bytes', [extra]);
  const grows = (series: string) =>
    `(predict_linear(${series}[${window}], ${horizonS}) - ${series})\n  > on(instance) group_left()\n  ${avail}`;
  const rules: Rule[] = [];
  const layers: [string, string, string][] = [
    ['unaccounted', 'Unaccounted', 'memory no counter sees (pages taken straight from the buddy allocator)'],
    ['kernel', 'Kernel', 'kernel memory (slab, stacks, page tables, vmalloc, per-cpu)'],
    ['shared', 'Shared', 'shmem and tmpfs'],
    ['user', 'User', 'anonymous memory of processes'],
  ];
  for (const [layer, title, what] of layers) {
    rules.push({
      alert: `MemsleuthLayer${title}Exhausts`,
      expr: grows(sel('memsleuth_memory_layer_bytes', [`layer="${layer}"`, extra])),
      summary: `{{ $labels.instance }}: the ${layer} layer grows into MemAvailable within ${horizon}`,
      description: `${what} grew over the last ${window} at a rate that uses up MemAvailable within ${horizon}. Run memsleuth fleet or memsleuth leaks on the host.`,
    });
  }
  const parts: [string, string, string, string][] = [
    [
      'memsleuth_slab_bytes',
      'Slab',
      'slab cache {{ $labels.slab }}',
      'memsleuth slab top; boot with slub_debug=U,<cache> for its call sites',
    ],
    [
      'memsleuth_vmalloc_bytes',
      'Vmalloc',
      'vmalloc caller {{ $labels.caller }}',
      'memsleuth vmalloc diff BEFORE AFTER',
    ],
    [
      'memsleuth_allocinfo_bytes',
      'Allocinfo',
      'call site {{ $labels.site }} {{ $labels.function }}',
      'memsleuth allocinfo diff BEFORE AFTER',
    ],
    [
      'memsleuth_process_memory_bytes{type="rss_anon"}',
      'Process',
      'process {{ $labels.comm }} (pid {{ $labels.pid }})',
      'memsleuth record, then memsleuth leaks, on the host',
    ],
  ];
  for (const [series, title, who, next] of parts) {
    const name = series.replace(/\{.*$/, '');
    const matchers = series.includes('{') ? [series.slice(series.indexOf('{') + 1, -1), extra] : [extra];
    rules.push({
      alert: `Memsleuth${title}Exhausts`,
      expr: grows(sel(name, matchers)),
      summary: `{{ $labels.instance }}: ${who} grows into MemAvailable within ${horizon}`,
      description: `${who} grew over the last ${window} at a rate that uses up MemAvailable within ${horizon}. Next: ${next}.`,
    });
  }
  rules.push({
    alert: 'MemsleuthLeakSuspectsExhaust',
    expr: `${sel('memsleuth_leak_exhaustion_seconds', [extra])} < ${horizonS}`,
    summary: `{{ $labels.instance }}: the recording's leak suspects use up MemAvailable within ${horizon}`,
    description:
      'memsleuth record runs beside the exporter (--db); memsleuth leaks --db on the host names the suspects.',
  });
  const forText = promDuration(opts.forMs ?? 30 * 60_000);
  const lines = ['groups:', '  - name: memsleuth-leaks', '    rules:'];
  for (const r of rules) {
    lines.push(`      - alert: ${r.alert}`);
    lines.push('        expr: |');
    for (const l of r.expr.split('\n')) lines.push(`          ${l}`);
    lines.push(`        for: ${forText}`);
    lines.push('        labels:');
    lines.push('          severity: warning');
    lines.push('        annotations:');
    lines.push(`          summary: ${JSON.stringify(r.summary)}`);
    lines.push(`          description: ${JSON.stringify(r.description)}`);
  }
  return `${lines.join('\n')}\n`;
}
