import { MemsleuthError } from '../../model/errors.js';
import { LAYERS, type Layer } from '../../model/samples.js';
import { parseSince } from '../../model/units.js';
import { defaultDbPath, RecordingReader } from '../../store/recording.js';
import { defineCommand, numberOption } from '../command.js';
import type { Out } from '../context.js';

/**
 * Writes through a buffer of about 64 KiB and waits for a slow reader (a pipe to `less`)
 * instead of queueing the whole output in memory: `write` returns a promise only when the
 * stream asks to wait for 'drain'.
 */
function chunked(stream: Out): {
  write(s: string): Promise<void> | undefined;
  end(): Promise<void> | undefined;
} {
  let buf = '';
  const flush = () => {
    if (!buf) return undefined;
    const ok = stream.write(buf);
    buf = '';
    return ok ? undefined : new Promise<void>((resolve) => stream.once('drain', resolve));
  };
  return {
    write(s) {
      buf += s;
      return buf.length >= 65536 ? flush() : undefined;
    },
    end: flush,
  };
}

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
    'CSV columns: time (ISO 8601), layer, key, label, metric, unit, value. One row per point, in\n' +
    'time order (the series of one tick in recording order), streamed as it is read.',
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
      const sinceMs = values.since ? parseSince(values.since, reader.span().lastMs) : undefined;
      const maxPoints = numberOption(values['max-points'], 'max-points', Number.MAX_SAFE_INTEGER, {
        min: 2,
        integer: true,
      });
      // Streamed: a week of every series does not fit in memory, and need not.
      const out = chunked(ctx.stdout);
      if (values.json) {
        // Series by series (each read in batches of series, one pass over the samples per batch).
        let first = true;
        await out.write('[');
        for (const s of reader.eachSeries({ sinceMs, maxPoints, filter: match })) {
          const head = JSON.stringify({
            layer: s.layer,
            key: s.key,
            label: s.label,
            pid: s.pid,
            metric: s.metric,
            unit: s.unit,
          });
          // `"points":[[t,v],...]` as JSON.stringify writes it, without an array per point.
          await out.write(`${first ? '' : ','}${head.slice(0, -1)},"points":[`);
          for (let i = 0; i < s.t.length; i++) {
            const wait = out.write(`${i ? ',' : ''}[${s.t[i]},${s.v[i]}]`);
            if (wait) await wait;
          }
          await out.write(']}');
          first = false;
        }
        await out.write(']\n');
        await out.end();
        return 0;
      }
      // CSV in time order, tick by tick (series in recording order within a tick): one pass.
      await out.write('time,layer,key,label,metric,unit,value\n');
      const prefixes = new Map<number, string>();
      for (const tick of reader.points({ sinceMs, maxPoints, filter: match })) {
        let lines = '';
        let iso = '';
        let isoT = Number.NaN;
        for (const p of tick.points) {
          const s = p.series;
          let prefix = prefixes.get(s.id);
          if (prefix === undefined) {
            prefix = `${csvCell(s.layer)},${csvCell(s.key)},${csvCell(s.label ?? '')},${s.metric},${s.unit}`;
            prefixes.set(s.id, prefix);
          }
          if (p.t !== isoT) {
            isoT = p.t;
            iso = new Date(p.t).toISOString();
          }
          lines += `${iso},${prefix},${p.v}\n`;
        }
        if (lines) await out.write(lines);
      }
      await out.end();
      return 0;
    } finally {
      reader.close();
    }
  },
});
