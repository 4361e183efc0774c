import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseExposition } from '../../test/exposition.js';
import { REPO_FIXTURES } from '../../test/paths.js';
import { promtool } from '../../test/prometheus.js';
import { Exporter } from './exporter.js';
import { alertRules } from './rules.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-rules-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('alert rules', () => {
  it('pass promtool check rules, with and without label matchers', () => {
    for (const [name, opts] of [
      ['default', {}],
      [
        'matched',
        { match: 'job="memsleuth",env=~"prod|staging"', windowMs: 3_600_000, horizonMs: 7 * 86_400_000 },
      ],
    ] as const) {
      const file = join(work, `${name}.yml`);
      writeFileSync(file, alertRules(opts));
      const r = promtool(['check', 'rules', file]);
      expect(r.stdout + r.stderr, name).toMatch(/SUCCESS: 9 rules found/);
      expect(r.status).toBe(0);
    }
    expect(alertRules({ match: 'job="m"' })).toContain('memsleuth_slab_bytes{job="m"}[6h]');
  });

  it('fire for a layer that uses up MemAvailable within the horizon, not for a slow or a flat one (promtool test rules)', async () => {
    // Starting values from a real capture (live-6.18); per minute the growing host's unaccounted
    // remainder takes 20 MiB from MemAvailable (28 GiB a day), the slow one 200 MiB a day.
    const f = parseExposition(
      await new Exporter({
        snapshotDir: join(REPO_FIXTURES, 'live-6.18'),
        intervalMs: 0,
        version: 't',
      }).scrape(),
    );
    const un = f
      .get('memsleuth_memory_layer_bytes')!
      .samples.find((s) => s.labels.layer === 'unaccounted')!.value;
    const avail = f.get('node_memory_MemAvailable_bytes')!.samples[0]!.value;
    const perMin = { grow: 20 << 20, slow: Math.round((200 << 20) / 1440), flat: 0 };
    const rules = join(work, 'memsleuth.rules.yml');
    writeFileSync(rules, alertRules());
    const series = Object.entries(perMin).flatMap(([instance, d]) => [
      `      - series: 'memsleuth_memory_layer_bytes{instance="${instance}",layer="unaccounted"}'`,
      `        values: '${un}+${d}x480'`,
      `      - series: 'node_memory_MemAvailable_bytes{instance="${instance}"}'`,
      `        values: '${avail}-${d}x480'`,
    ]);
    const test = [
      `rule_files: [${JSON.stringify(rules)}]`,
      'evaluation_interval: 1m',
      'tests:',
      '  - interval: 1m',
      '    input_series:',
      ...series,
      '    alert_rule_test:',
      '      - eval_time: 7h',
      '        alertname: MemsleuthLayerUnaccountedExhausts',
      '        exp_alerts:',
      '          - exp_labels: { severity: warning, instance: grow, layer: unaccounted }',
      '            exp_annotations:',
      '              summary: "grow: the unaccounted layer grows into MemAvailable within 24h"',
      '              description: "memory no counter sees (pages taken straight from the buddy allocator) grew over the last 6h at a rate that uses up MemAvailable within 24h. Run memsleuth fleet or memsleuth leaks on the host."',
      '      - eval_time: 7h',
      '        alertname: MemsleuthLayerKernelExhausts',
      '        exp_alerts: []',
      '',
    ].join('\n');
    const file = join(work, 'test.yml');
    writeFileSync(file, test);
    const r = promtool(['test', 'rules', file]);
    expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });
});
