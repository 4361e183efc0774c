import { readFileSync, writeFileSync } from 'node:fs';
import { analyzeFleet, type FleetSuspect } from '../../metrics/fleet.js';
import { alertRules } from '../../metrics/rules.js';
import { MemsleuthError } from '../../model/errors.js';
import { formatBytes, formatDuration, parseDuration, parseSince } from '../../model/units.js';
import { defineCommand, numberOption } from '../command.js';
import { heading, table } from '../format.js';

function rate(s: Pick<FleetSuspect, 'ratePerHour' | 'unit'>): string {
  return s.unit === 'bytes' ? `${formatBytes(s.ratePerHour)}/h` : `${Math.round(s.ratePerHour)}/h`;
}

function hours(h: number | undefined): string {
  if (h === undefined) return '-';
  return h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} d`;
}

export const fleetCommand = defineCommand({
  path: ['fleet'],
  summary: 'rank leak suspects across every host Prometheus scrapes (memsleuth exporter, node_exporter)',
  options: {
    prometheus: {
      type: 'string',
      valueName: 'URL',
      description: 'Prometheus server, e.g. http://prometheus:9090',
    },
    since: {
      type: 'string',
      valueName: 'WHEN',
      description: 'the last DUR (30m, 24h) or since an ISO time (default 24h)',
    },
    step: {
      type: 'string',
      valueName: 'DUR',
      description: 'query_range resolution (default: the window in 240 points, at least 1s)',
    },
    match: {
      type: 'string',
      valueName: 'MATCHERS',
      description: 'label matchers added to every query, e.g. job="memsleuth"',
    },
    'instance-label': {
      type: 'string',
      valueName: 'LABEL',
      description: 'the label naming a host (default instance)',
    },
    concurrency: { type: 'string', valueName: 'N', description: 'instances read at once (default 4)' },
    'min-rate': {
      type: 'string',
      valueName: 'MIB/H',
      description: 'smallest growth that is a leak, MiB per hour (default 2)',
    },
    rules: {
      type: 'string',
      valueName: 'FILE',
      description: 'write the alert rules to FILE instead of printing them',
    },
    'rules-window': {
      type: 'string',
      valueName: 'DUR',
      description: 'predict_linear window of the rules (default 6h)',
    },
    'rules-horizon': {
      type: 'string',
      valueName: 'DUR',
      description: 'how far ahead the rules look (default 24h)',
    },
    'token-file': { type: 'string', valueName: 'FILE', description: 'bearer token for Prometheus' },
    json: { type: 'boolean', description: 'the whole result as JSON (rules included)' },
    all: { type: 'boolean', description: 'list every suspect (default: top 25)' },
  },
  details:
    'Reads every instance’s memsleuth_* and node_memory_* series with query_range and judges each with the\n' +
    'engine of `memsleuth leaks` (Theil–Sen, Mann–Kendall, shape checks), then ranks the suspects of all\n' +
    'hosts together. Time to exhaustion: the host’s MemAvailable over the suspect’s rate.\n' +
    'Processes first seen in the last quarter of the window (or hour) are too young to judge.\n' +
    'Also prints alert rules (predict_linear per layer) for a Prometheus rules file.\n' +
    'Exit code 1 when there is at least one suspect.',
  async run({ values }, ctx) {
    if (!values.prometheus)
      throw new MemsleuthError('USAGE', 'fleet needs --prometheus URL', {
        hint: 'memsleuth fleet --prometheus http://prometheus:9090 --since 24h',
      });
    const endMs = Date.now();
    const startMs = parseSince(values.since ?? '24h', endMs);
    let token: string | undefined;
    if (values['token-file'] !== undefined) {
      try {
        token = readFileSync(values['token-file'], 'utf8').trim();
      } catch (e) {
        throw new MemsleuthError('IO', `--token-file ${values['token-file']}: ${(e as Error).message}`);
      }
    }
    const minRate = numberOption(values['min-rate'], 'min-rate', 2, { min: 0 });
    const report = await analyzeFleet({
      url: values.prometheus,
      startMs,
      endMs,
      ...(values.step !== undefined ? { stepMs: parseDuration(values.step, 'step') } : {}),
      ...(values.match !== undefined ? { match: values.match } : {}),
      ...(values['instance-label'] !== undefined ? { instanceLabel: values['instance-label'] } : {}),
      ...(token ? { token } : {}),
      concurrency: numberOption(values.concurrency, 'concurrency', 4, { min: 1, integer: true }),
      leakOptions: { minBytesPerHour: minRate * 1024 * 1024 },
    });
    const rules = alertRules({
      windowMs: parseDuration(values['rules-window'] ?? '6h', 'rules-window'),
      horizonMs: parseDuration(values['rules-horizon'] ?? '24h', 'rules-horizon'),
      ...(values.match !== undefined ? { match: values.match } : {}),
    });
    if (values.rules) {
      try {
        writeFileSync(values.rules, rules);
      } catch (e) {
        throw new MemsleuthError('IO', `--rules ${values.rules}: ${(e as Error).message}`);
      }
      ctx.stderr.write(`wrote alert rules to ${values.rules}\n`);
    }
    const status = report.suspects.length ? 1 : 0;
    if (values.json) {
      ctx.stdout.write(`${JSON.stringify({ ...report, rules }, null, 2)}\n`);
      return status;
    }
    const q = report.queries;
    const out: string[] = [];
    out.push(
      `${report.prometheus}: ${report.instances.length} instances, last ${formatDuration(report.endMs - report.startMs)} ` +
        `at ${formatDuration(report.stepMs)} steps; ${q.requests} queries, ${formatBytes(q.bytes)}, ${(q.ms / 1000).toFixed(1)} s`,
    );
    const shown = values.all ? report.suspects : report.suspects.slice(0, 25);
    if (shown.length) {
      out.push(heading(`Suspects across the fleet (${report.suspects.length})`));
      out.push(
        table(shown, [
          { header: '#', align: 'right', value: (s) => String(s.rank) },
          { header: 'instance', max: 24, value: (s) => s.instance },
          { header: 'layer', value: (s) => s.layer },
          { header: 'suspect', max: 34, value: (s) => s.name },
          { header: 'rate', align: 'right', value: rate },
          { header: 'conf', align: 'right', value: (s) => s.confidence.toFixed(2) },
          { header: 'exhausted in', align: 'right', value: (s) => hours(s.hoursToExhaustion) },
        ]),
      );
    } else out.push('', 'No leak suspects on any instance: nothing kept growing.');
    out.push(heading('Instances'));
    out.push(
      table(report.instances, [
        { header: 'instance', max: 32, value: (i) => i.instance },
        { header: 'series', align: 'right', value: (i) => String(i.series) },
        { header: 'suspects', align: 'right', value: (i) => (i.error ? 'error' : String(i.suspects)) },
        { header: 'too young', align: 'right', value: (i) => String(i.youngProcesses) },
        {
          header: 'MemAvailable',
          align: 'right',
          value: (i) => (i.memAvailableBytes === undefined ? '-' : formatBytes(i.memAvailableBytes)),
        },
        {
          header: 'suspects together',
          align: 'right',
          value: (i) => (i.combinedRatePerHour ? `${formatBytes(i.combinedRatePerHour)}/h` : '-'),
        },
        { header: 'exhausted in', align: 'right', value: (i) => hours(i.hoursToExhaustion) },
      ]),
    );
    for (const i of report.instances) if (i.error) out.push(`  ${i.instance}: ${i.error}`);
    if (!values.rules) {
      out.push(heading('Alert rules (predict_linear per layer; save as a rules file)'));
      out.push(rules.trimEnd());
    }
    ctx.stdout.write(`${out.join('\n')}\n`);
    return status;
  },
});
