/** A recording: the layers over time, the suspects with drill-down, the projection, any series. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { LeakReport, Suspect } from '../../analysis/leaks.js';
import type { AccountingOverTime, ProjectionView, SeriesView } from '../types.js';
import { AccountingArea, SeriesChart } from './charts.js';
import { formatBytes, formatTime, formatValue } from './format.js';
import { html } from './html.js';
import type { DataSource, SeriesListRow } from './source.js';

function rate(s: Pick<Suspect, 'ratePerHour' | 'unit'>): string {
  return s.unit === 'bytes' ? `${formatBytes(s.ratePerHour)}/h` : `${Math.round(s.ratePerHour)}/h`;
}

/** Re-run `load` whenever the recorder commits a tick (dashboard with --record). */
export function useTicks(src: DataSource): number {
  const [ticks, setTicks] = useState(0);
  useEffect(() => {
    if (!src.info?.recordingLive) return;
    let stop = false;
    const every = Math.min(5000, Math.max(500, (src.info.intervalMs ?? 10_000) / 2));
    const poll = async () => {
      if (stop) return;
      const s = await src.status().catch(() => undefined);
      if (s) setTicks(s.ticks);
      setTimeout(poll, every);
    };
    poll();
    return () => {
      stop = true;
    };
  }, [src]);
  return ticks;
}

export function OverTime({ src }: { src: DataSource }) {
  const ticks = useTicks(src);
  const [data, setData] = useState<AccountingOverTime | undefined | null>(null);
  const [showFree, setShowFree] = useState(false);
  useEffect(() => {
    src.accounting().then(setData, () => setData(undefined));
  }, [src, ticks]);
  if (data === null) return html`<p class="muted">loading…</p>`;
  if (!data || data.t.length === 0) return html`<p class="muted">No recording.</p>`;
  const last = data.layers.map((l) => ({ name: l.name, bytes: l.bytes[l.bytes.length - 1] ?? 0 }));
  const span = `${data.firstMs ? formatTime(data.firstMs) : '?'} → ${data.lastMs ? formatTime(data.lastMs) : '?'}`;
  return html`<section>
    <h2>Where the memory was, over time</h2>
    <p class="meta">
      ${`${data.ticks.toLocaleString('en-US')} ticks, ${span}; drawn: ${data.t.length.toLocaleString('en-US')} points (min and max of the total per pixel)`}
    </p>
    <label class="toggle"><input type="checkbox" class="show-free" checked=${showFree}
      onChange=${(e: Event) => setShowFree((e.target as HTMLInputElement).checked)} /> stack free memory too (the top edge is then MemTotal)</label>
    <${AccountingArea} data=${data} hide=${showFree ? [] : ['free']} />
    <p class="last-tick" data-ticks=${data.ticks}>
      last tick: ${last.map((l) => html`<span data-layer=${l.name} data-bytes=${l.bytes}>${l.name} ${formatBytes(l.bytes)} </span>`)}
    </p>
  </section>`;
}

function Projection({ src, leaks }: { src: DataSource; leaks: LeakReport }) {
  const [p, setP] = useState<ProjectionView | undefined>();
  useEffect(() => {
    src.projection().then(setP, () => setP(undefined));
  }, [src, leaks]);
  if (!p) return null;
  const h = p.hoursToExhaustion;
  return html`<section>
    <h2>Projection</h2>
    <p class="projection-text">
      ${`MemAvailable ${leaks.memAvailableBytes !== undefined ? formatBytes(leaks.memAvailableBytes) : '?'}; suspects together ${formatBytes(p.combinedRatePerHour)}/h`}${
        h !== undefined
          ? `: exhausted in ${h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} days`} at this rate`
          : ''
      }
    </p>
    <${SeriesChart} view=${p.memAvailable} name="projection" projection=${p.line} />
  </section>`;
}

function SuspectDetail({ src, s }: { src: DataSource; s: Suspect }) {
  const [view, setView] = useState<SeriesView | undefined | null>(null);
  useEffect(() => {
    setView(null);
    src.suspect(s).then(setView, () => setView(undefined));
  }, [src, s]);
  return html`<div class="detail" data-suspect=${s.id}>
    <h3>#${s.rank} ${s.name}: ${s.metric}</h3>
    <p>${s.evidence}</p>
    ${s.related && html`<p>related: ${s.related.join('; ')}</p>`}
    <p>next: <code>${s.next}</code></p>
    ${
      view === null
        ? html`<p class="muted">loading…</p>`
        : view
          ? html`<${SeriesChart} view=${view} name="suspect" />
            <p class="meta">${view.rawPoints.toLocaleString('en-US')} samples, ${view.points.t.length} drawn</p>`
          : html`<p class="muted">no series</p>`
    }
  </div>`;
}

export function Suspects({ src }: { src: DataSource }) {
  const ticks = useTicks(src);
  const [leaks, setLeaks] = useState<LeakReport | undefined | null>(null);
  const [sel, setSel] = useState<string | undefined>();
  useEffect(() => {
    src.leaks().then(setLeaks, () => setLeaks(undefined));
  }, [src, ticks > 0 ? Math.floor(ticks / 6) : 0]);
  if (leaks === null) return html`<p class="muted">analysing the recording…</p>`;
  if (!leaks) return html`<p class="muted">No recording.</p>`;
  const span = ((leaks.lastMs ?? 0) - (leaks.firstMs ?? 0)) / 60_000;
  const chosen = leaks.suspects.find((s) => `${s.id} ${s.metric}` === sel);
  return html`<section>
    <h2>Leak suspects</h2>
    <p class="meta">
      ${`${leaks.ticks.toLocaleString('en-US')} ticks over ${span.toFixed(1)} min, ${leaks.seriesAnalysed} series analysed, ${leaks.suspects.length} suspects`}
    </p>
    ${
      leaks.suspects.length === 0
        ? html`<p>No leak suspects: nothing kept growing.</p>`
        : html`<div class="scroll">
          <table class="suspects">
            <thead>
              <tr>
                <th class="num">#</th>
                <th>kind</th>
                <th>suspect</th>
                <th class="num">rate</th>
                <th class="num">conf</th>
                <th>since</th>
                <th class="num">now</th>
              </tr>
            </thead>
            <tbody>
              ${leaks.suspects.map((s) => {
                const key = `${s.id} ${s.metric}`;
                return html`<tr
                  class=${key === sel ? 'sel' : ''}
                  data-id=${s.id}
                  data-metric=${s.metric}
                  onClick=${() => setSel(key)}
                >
                  <td class="num">${s.rank}</td>
                  <td>${s.kind}</td>
                  <td>${s.name}</td>
                  <td class="num">${rate(s)}</td>
                  <td class="num">${s.confidence.toFixed(2)}</td>
                  <td>${s.sinceMs ? formatTime(s.sinceMs).slice(11) : '-'}</td>
                  <td class="num">${formatValue(s.last, s.unit)}</td>
                </tr>`;
              })}
            </tbody>
          </table>
        </div>`
    }
    ${chosen ? html`<${SuspectDetail} src=${src} s=${chosen} />` : leaks.suspects.length > 0 && html`<p class="muted">Click a suspect to see its series.</p>`}
    ${
      leaks.exitedGrowing.length > 0 &&
      html`<p>Grew, then exited (memory given back): ${leaks.exitedGrowing
        .slice(0, 5)
        .map((s) => `${s.name} ${rate(s)}`)
        .join('; ')}</p>`
    }
    ${
      leaks.reclaimable.length > 0 &&
      html`<h3>Reclaimable growth (not leaks)</h3>
      <ul>
        ${leaks.reclaimable
          .slice(0, 5)
          .map(
            (r) =>
              html`<li>${r.name}: ${formatBytes(r.first)} → ${formatBytes(r.last)}, ${formatBytes(r.ratePerHour)}/h</li>`,
          )}
      </ul>`
    }
    <${Projection} src=${src} leaks=${leaks} />
  </section>`;
}

/** Dashboard: any series of the recording. */
export function SeriesPicker({ src }: { src: DataSource }) {
  const [list, setList] = useState<SeriesListRow[]>([]);
  const [filter, setFilter] = useState('');
  const [view, setView] = useState<SeriesView | undefined>();
  useEffect(() => {
    src.seriesList().then(setList, () => setList([]));
  }, [src]);
  const shown = useMemo(() => {
    const f = filter.toLowerCase();
    return list
      .filter((r) => `${r.layer}/${r.key} ${r.label ?? ''} ${r.metric}`.toLowerCase().includes(f))
      .slice(0, 200);
  }, [list, filter]);
  return html`<section>
    <h2>Any series</h2>
    <input class="series-filter" placeholder="filter: layer, key, process name, metric" value=${filter}
      onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} />
    <span class="muted"> ${list.length} series</span>
    <div class="scroll short">
      <table>
        <tbody>
          ${shown.map(
            (
              r,
            ) => html`<tr class="pick" onClick=${() => src.series(`${r.layer}/${r.key}`, r.metric).then(setView)}>
              <td>${r.layer}</td><td>${r.key}</td><td>${r.label ?? ''}</td><td>${r.metric}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${view && html`<h3>${view.label}: ${view.metric}</h3><${SeriesChart} view=${view} name="series" />`}
  </section>`;
}
