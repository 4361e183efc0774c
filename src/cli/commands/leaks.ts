import type { LeakReport } from '../../analysis/leaks.js';
import { formatBytes } from '../../model/units.js';
import { defaultDbPath, RecordingReader } from '../../store/recording.js';
import { leaksPageData } from '../../web/pages.js';
import { recordingLeaks } from '../../web/recording.js';
import { defineCommand, numberOption } from '../command.js';
import { progress } from '../context.js';
import { heading, table } from '../format.js';
import { writeHtml } from '../html.js';

/** Wrap prose to 100 columns; continuation lines are indented by 6. */
function wrap(text: string, width = 100): string {
  const indent = /^ */.exec(text)![0];
  const lines: string[] = [];
  let line = indent;
  for (const word of text.slice(indent.length).split(' ')) {
    if (line.trim() !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `      ${word}`;
    } else line = line.trim() === '' ? `${line}${word}` : `${line} ${word}`;
  }
  lines.push(line);
  return lines.join('\n');
}

function rate(r: number, unit: 'bytes' | 'count'): string {
  return unit === 'bytes' ? `${formatBytes(r)}/h` : `${Math.round(r)}/h`;
}

export const leaksCommand = defineCommand({
  path: ['leaks'],
  summary: 'rank leak suspects across processes, slab, vmalloc and meminfo from a recording',
  options: {
    db: { type: 'string', valueName: 'FILE', description: 'recording database (default as for `record`)' },
    since: {
      type: 'string',
      valueName: 'WHEN',
      description: 'only the last DUR (30m, 2h) or since an ISO time',
    },
    'min-rate': {
      type: 'string',
      valueName: 'MIB/H',
      description: 'smallest growth that is a leak, MiB per hour (default 2)',
    },
    json: { type: 'boolean', description: 'the whole result as JSON' },
    html: {
      type: 'string',
      valueName: 'FILE',
      description: 'also write a self-contained HTML report (layers over time, suspects, projection) to FILE',
    },
    all: { type: 'boolean', description: 'list every suspect (default: top 25)' },
  },
  details:
    'A leak is growth that does not stop: Theil–Sen slope, Mann–Kendall test, and shape checks\n' +
    '(warm-up then plateau, a sawtooth with flat minima, a freed spike and reclaimable page cache\n' +
    'are not leaks).\n' +
    'Exit code 1 when there is at least one suspect.',
  async run({ values }, ctx) {
    const db = values.db ?? defaultDbPath(ctx.env);
    const reader = new RecordingReader(db);
    let report: LeakReport;
    // On a terminal, one line on stderr says how far it got (a week at 10 s takes a while).
    const line = progress(ctx);
    const onProgress = (phase: 'read' | 'analyse', done: number, total: number) =>
      line.update(
        phase === 'read'
          ? `reading samples: tick ${done} of ${total} (${Math.floor((100 * done) / total)}%)`
          : `analysing series: ${done} of ${total} (${Math.floor((100 * done) / total)}%)`,
      );
    try {
      const minRate = numberOption(values['min-rate'], 'min-rate', 2, { min: 0 });
      const q = { since: values.since, minRateMiBPerHour: minRate, onProgress };
      if (values.html !== undefined) {
        const data = leaksPageData(reader, q);
        await writeHtml(values.html, data, ctx);
        report = data.recording!.leaks;
      } else report = recordingLeaks(reader, q);
    } finally {
      line.done();
      reader.close();
    }
    if (values.json) {
      ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return report.suspects.length ? 1 : 0;
    }
    const span = ((report.lastMs ?? 0) - (report.firstMs ?? 0)) / 1000;
    const out: string[] = [];
    out.push(db);
    out.push(
      `${report.ticks} ticks over ${(span / 60).toFixed(1)} min, ${report.seriesAnalysed} series analysed, ` +
        `${report.suspects.length} suspects`,
    );
    if (report.memAvailableBytes !== undefined) {
      const h = report.hoursToExhaustion;
      out.push(
        `MemAvailable ${formatBytes(report.memAvailableBytes)}; suspects together ${formatBytes(report.combinedRatePerHour)}/h` +
          (h !== undefined
            ? `: exhausted in ${h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} days`} at this rate`
            : ''),
      );
    }
    const shown = values.all ? report.suspects : report.suspects.slice(0, 25);
    if (shown.length) {
      out.push(heading('Suspects'));
      out.push(
        table(shown, [
          { header: '#', align: 'right', value: (s) => String(s.rank) },
          { header: 'kind', value: (s) => s.kind },
          { header: 'suspect', max: 34, value: (s) => s.name },
          { header: 'rate', align: 'right', value: (s) => rate(s.ratePerHour, s.unit) },
          { header: 'conf', align: 'right', value: (s) => s.confidence.toFixed(2) },
          {
            header: 'since',
            value: (s) => (s.sinceMs ? new Date(s.sinceMs).toISOString().slice(11, 19) : '-'),
          },
        ]),
      );
      out.push(heading('Evidence and next step'));
      for (const s of shown) {
        out.push(wrap(`${s.rank}. ${s.name}: ${s.evidence}`));
        if (s.owners?.length)
          out.push(
            wrap(
              `   held by: ${s.owners
                .slice(0, 3)
                .map((o) => `${o.name} (pid ${o.pid}) ${o.how}`)
                .join('; ')}`,
            ),
          );
        if (s.related) out.push(wrap(`   related: ${s.related.join('; ')}`));
        out.push(wrap(`   next: ${s.next}`));
      }
    } else {
      out.push('', 'No leak suspects: nothing kept growing.');
    }
    if (report.exitedGrowing.length) {
      const names = report.exitedGrowing.slice(0, 5).map((s) => `${s.name} ${rate(s.ratePerHour, s.unit)}`);
      out.push('', `Grew, then gone (exited, deleted or removed: memory given back): ${names.join('; ')}`);
    }
    for (const s of report.recorder)
      out.push(`The recorder itself (${s.name}): ${s.kind} ${rate(s.ratePerHour, s.unit)}, ${s.shape}`);
    if (report.reclaimable.length) {
      out.push(heading('Reclaimable growth (not leaks)'));
      for (const r of report.reclaimable.slice(0, 5))
        out.push(
          `${r.name}: ${formatBytes(r.first)} → ${formatBytes(r.last)}, ${formatBytes(r.ratePerHour)}/h`,
        );
    }
    ctx.stdout.write(`${out.join('\n')}\n`);
    return report.suspects.length ? 1 : 0;
  },
});
