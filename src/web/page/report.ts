/** One moment: the accounting identity as a stacked bar, buddy free lists as a heat table, the registry's tables, findings. */
import type { Accounting } from '../../analysis/accounting.js';
import type { Report, ReportTable } from '../../registry/index.js';
import type { ReportView } from '../types.js';
import { LAYER_COLOURS } from './charts.js';
import { formatBytes, formatPercent } from './format.js';
import { html } from './html.js';

export function IdentityBar({ acc }: { acc: Accounting }) {
  const total = acc.memTotalBytes;
  const names = Object.keys(acc.layers) as (keyof Accounting['layers'])[];
  return html`<div class="identity">
    <div class="bar" role="img" aria-label="MemTotal split by layer">
      ${names.map((n) => {
        const bytes = acc.layers[n];
        const pct = (Math.max(0, bytes) / total) * 100;
        return html`<div
          class=${`seg seg-${n}`}
          data-layer=${n}
          data-bytes=${bytes}
          style=${`width:${pct}%;background-color:${LAYER_COLOURS[n]}`}
          title=${`${n}: ${formatBytes(bytes)} (${formatPercent(pct)})`}
        >${pct > 6 ? html`<span>${n} ${formatBytes(bytes)}</span>` : ''}</div>`;
      })}
    </div>
    <div class="bar-legend">
      ${names.map(
        (n) => html`<span class=${n === 'unaccounted' ? 'key unaccounted' : 'key'}
          ><i class=${`swatch seg-${n}`} style=${`background-color:${LAYER_COLOURS[n]}`}></i>${`${n} `}<b
            >${formatBytes(acc.layers[n])}</b
          >${` ${formatPercent((acc.layers[n] / total) * 100)}`}</span
        >`,
      )}
    </div>
    <p class="unaccounted-note">
      <b>unaccounted ${formatBytes(acc.unaccountedBytes)}</b> (hatched): pages no counter sees, taken straight from the
      buddy allocator (drivers, page pools). page_owner names who holds them.
    </p>
  </div>`;
}

export function BuddyHeat({
  buddy,
  pageSizeBytes,
}: {
  buddy: NonNullable<Report['buddy']>;
  pageSizeBytes: number;
}) {
  const orders = Array.from({ length: buddy.maxOrder }, (_, o) => o);
  const cell = (blocks: number, o: number) => blocks * 2 ** o * pageSizeBytes;
  const max = Math.max(1, ...buddy.zones.flatMap((z) => z.freeBlocks.map((b, o) => cell(b, o))));
  return html`<table class="heat">
    <thead>
      <tr>
        <th>node/zone</th>
        ${orders.map((o) => html`<th title=${formatBytes(2 ** o * pageSizeBytes)}>${o}</th>`)}
        <th>free</th>
      </tr>
    </thead>
    <tbody>
      ${buddy.zones.map(
        (z) => html`<tr data-zone=${`${z.node}/${z.zone}`}>
          <th>${z.node}/${z.zone}</th>
          ${orders.map((o) => {
            const blocks = z.freeBlocks[o] ?? 0;
            const bytes = cell(blocks, o);
            // Log scale: free memory spans six orders of magnitude across orders.
            const k = bytes > 0 ? Math.log1p(bytes) / Math.log1p(max) : 0;
            return html`<td
              data-order=${o}
              data-blocks=${blocks}
              style=${`background:hsla(205, 80%, 45%, ${k.toFixed(3)});color:${k > 0.6 ? '#fff' : '#222'}`}
              title=${`order ${o}: ${blocks} blocks of ${formatBytes(2 ** o * pageSizeBytes)} = ${formatBytes(bytes)}`}
            >
              ${blocks}
            </td>`;
          })}
          <td class="num">${formatBytes(z.freeBytes)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function Table({ t }: { t: ReportTable }) {
  return html`<section class="rtable" data-source=${t.source}>
    <h3>${t.title}</h3>
    <div class="scroll">
      <table>
        <thead>
          <tr>
            ${t.columns.map((c) => html`<th class=${c.align === 'right' ? 'num' : ''}>${c.header}</th>`)}
          </tr>
        </thead>
        <tbody>
          ${t.rows.map(
            (r) => html`<tr>
              ${r.map((cell, i) => html`<td class=${t.columns[i]?.align === 'right' ? 'num' : ''}>${cell}</td>`)}
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${(t.notes ?? []).map((n) => html`<p class="note">${n}</p>`)}
  </section>`;
}

export function Findings({ report }: { report: Report }) {
  return html`<section>
    <h2>Findings</h2>
    ${report.findings.length === 0 && html`<p class="muted">Nothing stands out.</p>`}
    ${report.findings.map(
      (f) => html`<div class=${`finding ${f.severity}`}>
        <b>[${f.severity}] ${f.title}</b>
        <p>${f.detail}</p>
        ${f.next.map((n) => html`<div class="next">next: <code>${n}</code></div>`)}
      </div>`,
    )}
    ${
      report.unavailable.length > 0 &&
      html`<h3>Not available in this snapshot</h3>
      <ul class="unavailable">
        ${report.unavailable.map((m) => html`<li><b>${m.path}</b>: ${m.reason}. To enable: ${m.enable}</li>`)}
      </ul>`
    }
  </section>`;
}

export function ReportPage({ view }: { view: ReportView }) {
  const r = view.report;
  const s = r.snapshot;
  return html`<div class="report">
    <p class="meta">
      ${s.hostname}, Linux ${s.kernelRelease}, ${s.origin}${s.time !== new Date(0).toISOString() ? `, ${s.time}` : ''}
    </p>
    ${
      r.accounting &&
      html`<section>
      <h2>Where the memory is: MemTotal ${formatBytes(r.accounting.memTotalBytes)}</h2>
      <${IdentityBar} acc=${r.accounting} />
    </section>`
    }
    ${
      r.buddy &&
      html`<section>
      <h2>Buddy allocator: free memory per zone and order</h2>
      <${BuddyHeat} buddy=${r.buddy} pageSizeBytes=${s.pageSizeBytes || 4096} />
    </section>`
    }
    <${Findings} report=${r} />
    <section>
      <h2>Top consumers per layer</h2>
      ${view.tables.map((t) => html`<${Table} t=${t} />`)}
    </section>
  </div>`;
}
