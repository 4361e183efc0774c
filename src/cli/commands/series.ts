import { MemsleuthError } from '../../model/errors.js';
import { LAYERS, type Layer } from '../../model/samples.js';
import { parseSince } from '../../model/units.js';
import { defaultDbPath, RecordingReader } from '../../store/recording.js';
import { defineCommand, numberOption } from '../command.js';

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export const seriesCommand = defineCommand({
  path: ['series'],
  summary: 'export series from a recording as CSV or JSON',
  options: {
    db: { type: 'string', valueName: 'FILE', description: 'recording database (default as for `record`)' },
    layer: { type: 'string', valueName: 'LAYER', description: 'only this layer (see below)' },
    key: {
      type: 'string',
      valueName: 'KEY',
      description: 'only this key: a cache, a field, PID:START (PID:START: its mappings)',
    },
    label: { type: 'string', valueName: 'NAME', description: 'only entities labelled NAME (a process comm)' },
    metric: {
      type: 'string',
      valueName: 'METRIC',
      description: 'only this metric (bytes, rss_bytes, vsz_bytes, fds...)',
    },
    since: { type: 'string', valueName: 'WHEN', description: 'only the last DUR (30m) or since an ISO time' },
    'max-points': {
      type: 'string',
      valueName: 'N',
      description: 'thin to about N points per series (default: all)',
    },
    list: { type: 'boolean', description: 'list the series instead of their values' },
    json: { type: 'boolean', description: 'JSON instead of CSV' },
  },
  details:
    `Layers: ${LAYERS.join(', ')}.\n` +
    'CSV columns: time (ISO 8601), layer, key, label, metric, unit, value. One row per point.',
  async run({ values }, ctx) {
    const layer = values.layer as Layer | undefined;
    if (layer !== undefined && !(LAYERS as readonly string[]).includes(layer)) {
      throw new MemsleuthError(
        'USAGE',
        `--layer: expected one of ${LAYERS.join(', ')}, found ${JSON.stringify(layer)}`,
      );
    }
    const reader = new RecordingReader(values.db ?? defaultDbPath(ctx.env));
    try {
      const match = (l: Layer, key: string, metric: string, label: string | undefined | null) =>
        (layer === undefined || l === layer) &&
        (values.key === undefined ||
          key === values.key ||
          (values.key.endsWith(':') && key.startsWith(values.key))) &&
        (values.label === undefined || label === values.label) &&
        (values.metric === undefined || metric === values.metric);
      if (values.list) {
        const rows = reader.listSeries().filter((r) => match(r.layer, r.key, r.metric, r.label));
        if (values.json) ctx.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else
          for (const r of rows)
            ctx.stdout.write(`${r.layer}\t${r.key}\t${r.label ?? ''}\t${r.metric}\t${r.unit}\n`);
        return 0;
      }
      const whole = values.since ? reader.load({ maxPoints: 2, layers: ['meminfo'] }) : undefined;
      const sinceMs = values.since ? parseSince(values.since, whole?.lastMs) : undefined;
      const maxPoints = numberOption(values['max-points'], 'max-points', Number.MAX_SAFE_INTEGER, {
        min: 2,
        integer: true,
      });
      const rec = reader.load({ sinceMs, maxPoints, filter: match });
      if (values.json) {
        const out = rec.series.map((s) => ({
          layer: s.layer,
          key: s.key,
          label: s.label,
          pid: s.pid,
          metric: s.metric,
          unit: s.unit,
          points: s.t.map((t, i) => [t, s.v[i]]),
        }));
        ctx.stdout.write(`${JSON.stringify(out)}\n`);
        return 0;
      }
      const lines = ['time,layer,key,label,metric,unit,value'];
      for (const s of rec.series) {
        const prefix = `${csvCell(s.layer)},${csvCell(s.key)},${csvCell(s.label ?? '')},${s.metric},${s.unit}`;
        for (let i = 0; i < s.t.length; i++)
          lines.push(`${new Date(s.t[i]!).toISOString()},${prefix},${s.v[i]}`);
        if (lines.length > 10000) {
          ctx.stdout.write(`${lines.join('\n')}\n`);
          lines.length = 0;
        }
      }
      if (lines.length) ctx.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    } finally {
      reader.close();
    }
  },
});
