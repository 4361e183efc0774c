import { openInputOrLive } from '../../registry/open.js';
import { buildReport, reportTables } from '../../registry/report.js';
import type { Report } from '../../registry/types.js';
import { defineCommand, LENIENT_OPTION, numberOption, parseSettingsOf } from '../command.js';
import type { CommandContext } from '../context.js';
import { heading, renderTable, wrap } from '../format.js';

export function renderReport(r: Report): string {
  const out: string[] = [];
  const s = r.snapshot;
  if (s.source) {
    out.push(
      `memsleuth report — ${s.origin}: a raw ${s.source} file (no host or kernel recorded; 4 KiB pages assumed)`,
    );
  } else if (s.hostname === 'unknown' && s.kernelRelease === 'unknown') {
    out.push(`memsleuth report — ${s.origin} (no manifest.json: host and kernel not recorded)`);
  } else {
    out.push(
      `memsleuth report — ${s.hostname}, Linux ${s.kernelRelease}, ${s.origin === 'live' ? 'live' : s.origin}` +
        (s.time !== new Date(0).toISOString() ? `, ${s.time}` : '') +
        (s.uptimeSeconds ? `, up ${formatUptime(s.uptimeSeconds)}` : ''),
    );
  }
  for (const t of reportTables(r))
    out.push(heading(t.title), renderTable(t), ...(t.notes ?? []).map((n) => wrap(n, 100, '  ')));

  out.push(heading('Findings'));
  if (r.findings.length === 0) out.push('Nothing stands out.');
  for (const f of r.findings) {
    out.push(wrap(`[${f.severity}] ${f.title}`, 100, '  '));
    out.push(wrap(f.detail, 100, '  ', '  '));
    for (const n of f.next) out.push(wrap(n, 100, '        ', '  next: '));
  }
  if (r.unavailable.length) {
    out.push(heading('Not available in this snapshot'));
    for (const m of r.unavailable)
      out.push(wrap(`${m.path}: ${m.reason}. To enable: ${m.enable}`, 100, '    '));
  }
  return `${out.join('\n')}\n`;
}

function formatUptime(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

export const reportCommand = defineCommand({
  path: ['report'],
  summary: 'where the memory is: the accounting identity, top consumers per layer, findings',
  args: '[SNAPSHOT]',
  options: {
    json: { type: 'boolean', description: 'print the whole report model as JSON' },
    html: {
      type: 'string',
      valueName: 'FILE',
      description: 'also write a self-contained HTML report (charts, flame graphs) to FILE',
    },
    top: { type: 'string', valueName: 'N', description: 'rows per top list (default 10)' },
    'no-smaps': { type: 'boolean', description: 'skip smaps (no PSS/USS): faster on huge machines' },
    ...LENIENT_OPTION,
  },
  details:
    'SNAPSHOT is a bundle (.tar.gz) or directory from `memsleuth snapshot`; without it, this machine now.',
  async run({ values, positionals }, ctx: CommandContext) {
    const top = numberOption(values.top, 'top', 10, { min: 1, integer: true });
    const snap = await openInputOrLive(positionals[0]);
    try {
      const opts = { top, smaps: !values['no-smaps'], ...parseSettingsOf(values, ctx) };
      let report: Report;
      if (values.html !== undefined) {
        // The page's modules load only for --html.
        const [{ reportPageData }, { writeHtml }] = await Promise.all([
          import('../../web/pages.js'),
          import('../html.js'),
        ]);
        const data = await reportPageData(snap, opts);
        await writeHtml(values.html, data, ctx);
        report = data.report!.report;
      } else report = await buildReport(snap, opts);
      ctx.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
      return 0;
    } finally {
      await snap.close();
    }
  },
});
