/** Two moments: the diff's one ranking (as `memsleuth diff --json`) and differential flame graphs. */
import { useEffect, useState } from 'preact/hooks';
import type { DiffView } from '../types.js';
import { formatBytes, formatDelta, formatTime, formatValue } from './format.js';
import { html } from './html.js';
import { Flames } from './icicle.js';
import type { DataSource, TimeDiffRow } from './source.js';

export function DiffTable({ view, top = 50 }: { view: DiffView; top?: number }) {
  const d = view.diff;
  const [source, setSource] = useState('');
  const gainers = d.rows.filter((r) => r.deltaBytes > 0 && (!source || r.source === source));
  const compared = d.sources.filter((s) => s.status === 'compared');
  return html`<section class="diff">
    <p class="meta">before: ${d.before}<br />after: ${d.after}</p>
    <div class="pills">
      <button class=${source === '' ? 'pill on' : 'pill'} onClick=${() => setSource('')}>all sources</button>
      ${compared.map(
        (s) =>
          html`<button class=${source === s.source ? 'pill on' : 'pill'} onClick=${() => setSource(s.source)}>${s.source}</button>`,
      )}
    </div>
    <h3>Top gainers (${gainers.length} rows gained memory)</h3>
    <div class="scroll">
      <table class="diff-rows">
        <thead>
          <tr><th class="num">Δ bytes</th><th class="num">after</th><th class="num">Δ count</th><th>source</th><th>what</th></tr>
        </thead>
        <tbody>
          ${gainers.slice(0, top).map(
            (r) => html`<tr data-source=${r.source} data-delta=${r.deltaBytes}>
              <td class="num grew">${formatDelta(r.deltaBytes)}</td>
              <td class="num">${formatBytes(r.afterBytes)}</td>
              <td class="num">${r.deltaCount === undefined ? '' : `${r.deltaCount > 0 ? '+' : ''}${r.deltaCount} ${r.countUnit ?? ''}`}</td>
              <td>${r.source}</td>
              <td>${r.detail ? `${r.name} (${r.detail})` : r.name}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <h3>Sources</h3>
    <ul class="sources">
      ${d.sources.map(
        (s) => html`<li>
          <b>${s.source}</b>${': '}${
            s.status === 'compared'
              ? `compared, ${s.rows} changes${s.note ? ` (${s.note})` : ''}`
              : s.status === 'unreadable'
                ? `UNREADABLE: ${s.reason}`
                : `missing in ${(s.missingIn ?? []).join(' and ')} (${s.reason})`
          }
        </li>`,
      )}
    </ul>
  </section>`;
}

export function DiffPage({ view }: { view: DiffView }) {
  return html`<div>
    <${DiffTable} view=${view} />
    <section>
      <h2>Differential flame graphs</h2>
      <p class="muted">Widths are after's weights; red frames grew since before, blue shrank.</p>
      <${Flames} graphs=${view.flames} empty="Neither pair of snapshots has allocation stacks (page_owner, kmemleak, slab traces, allocinfo)." />
    </section>
  </div>`;
}

/** Dashboard: pick two snapshots (or two times of the recording) and diff them. */
export function DiffPicker({ src }: { src: DataSource }) {
  const snaps = (src.info?.snapshots ?? []).filter((s) => s !== 'live');
  const [b, setB] = useState(snaps[0] ?? '');
  const [a, setA] = useState(snaps[snaps.length - 1] ?? '');
  const [view, setView] = useState<DiffView | undefined | null>();
  const [err, setErr] = useState('');
  const [t1, setT1] = useState('');
  const [t2, setT2] = useState('');
  const [times, setTimes] = useState<TimeDiffRow[] | undefined>();
  useEffect(() => {
    if (!src.info?.recording) return;
    src.status().then((s) => {
      if (s?.lastMs) {
        setT2(new Date(s.lastMs).toISOString());
        setT1(new Date(s.lastMs - 3_600_000).toISOString());
      }
    });
  }, [src]);
  const run = () => {
    setView(null);
    setErr('');
    src.diff(b, a).then(setView, (e: Error) => {
      setView(undefined);
      setErr(e.message);
    });
  };
  return html`<div>
    ${
      snaps.length >= 2
        ? html`<section>
          <h2>Diff two snapshots</h2>
          <label>before <select value=${b} onChange=${(e: Event) => setB((e.target as HTMLSelectElement).value)}>
            ${snaps.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
          <label> after <select value=${a} onChange=${(e: Event) => setA((e.target as HTMLSelectElement).value)}>
            ${snaps.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
          <button class="run-diff" onClick=${run}>diff</button>
          ${err && html`<p class="error">${err}</p>`}
          ${view === null ? html`<p class="muted">comparing…</p>` : view && html`<${DiffPage} view=${view} />`}
        </section>`
        : html`<p class="muted">Give --snapshots DIR with two or more snapshots to diff them.</p>`
    }
    ${
      src.info?.recording &&
      html`<section>
      <h2>Diff two times of the recording</h2>
      <label>from <input value=${t1} onInput=${(e: Event) => setT1((e.target as HTMLInputElement).value)} /></label>
      <label> to <input value=${t2} onInput=${(e: Event) => setT2((e.target as HTMLInputElement).value)} /></label>
      <button onClick=${() => src.timesDiff(Date.parse(t1), Date.parse(t2)).then(setTimes)}>diff</button>
      ${
        times &&
        html`<div class="scroll"><table>
        <thead><tr><th>series</th><th>metric</th><th class="num">at ${formatTime(Date.parse(t1))}</th><th class="num">at ${formatTime(Date.parse(t2))}</th><th class="num">change</th></tr></thead>
        <tbody>${times.slice(0, 100).map(
          (r) => html`<tr><td>${r.id}${r.label ? ` (${r.label})` : ''}</td><td>${r.metric}</td>
            <td class="num">${formatValue(r.before, r.unit)}</td><td class="num">${formatValue(r.after, r.unit)}</td>
            <td class=${r.delta > 0 ? 'num grew' : 'num'}>${r.delta > 0 ? '+' : ''}${formatValue(r.delta, r.unit)}</td></tr>`,
        )}</tbody></table></div>`
      }
    </section>`
    }
  </div>`;
}
