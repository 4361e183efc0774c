/** The page: tabs over what the data has (an HTML report) or over everything (the dashboard). */
import { useEffect, useState } from 'preact/hooks';
import type { FlameGraph, ReportView, TraceView } from '../types.js';
import { DiffPage, DiffPicker } from './diff.js';
import { formatBytes } from './format.js';
import { html } from './html.js';
import { Flames } from './icicle.js';
import { OverTime, SeriesPicker, Suspects } from './recording.js';
import { ReportPage } from './report.js';
import type { DataSource } from './source.js';

function useAsync<T>(f: () => Promise<T>, deps: unknown[]): T | undefined | null {
  const [v, setV] = useState<T | undefined | null>(null);
  useEffect(() => {
    setV(null);
    f().then(setV, (e: Error) => {
      console.warn(e.message);
      setV(undefined);
    });
  }, deps);
  return v;
}

function SnapshotPicker({
  src,
  value,
  onChange,
}: {
  src: DataSource;
  value: string;
  onChange(v: string): void;
}) {
  const snaps = src.info?.snapshots ?? [];
  if (!src.live || snaps.length < 2) return null;
  return html`<label class="picker">snapshot
    <select value=${value} onChange=${(e: Event) => onChange((e.target as HTMLSelectElement).value)}>
      ${snaps.map((s) => html`<option value=${s}>${s}</option>`)}
    </select></label>`;
}

function Now({ src }: { src: DataSource }) {
  const [snap, setSnap] = useState(src.info?.snapshots[0] ?? '');
  const view = useAsync<ReportView | undefined>(() => src.report(snap || undefined), [src, snap]);
  return html`<div>
    <${SnapshotPicker} src=${src} value=${snap} onChange=${setSnap} />
    ${view === null ? html`<p class="muted">reading…</p>` : view ? html`<${ReportPage} view=${view} />` : html`<p class="muted">No report.</p>`}
  </div>`;
}

function FlamesTab({ src }: { src: DataSource }) {
  const first = (src.info?.snapshots ?? []).find((s) => s !== 'live') ?? '';
  const [snap, setSnap] = useState(first);
  const graphs = useAsync<FlameGraph[]>(() => src.flames(snap || undefined), [src, snap]);
  return html`<div>
    <${SnapshotPicker} src=${src} value=${snap} onChange=${setSnap} />
    ${
      graphs === null
        ? html`<p class="muted">grouping stacks…</p>`
        : html`<${Flames}
          graphs=${graphs ?? []}
          empty="This snapshot has no allocation stacks: page_owner, kmemleak, slab alloc_traces or allocinfo (see the report's 'not available')."
        />`
    }
  </div>`;
}

function seconds(s: number): string {
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

const n = (x: number) => x.toLocaleString('en-US');

/** An allocation trace: its title line, then the icicle of what is still allocated. */
function TraceTab({ src }: { src: DataSource }) {
  const t = useAsync<TraceView | undefined>(() => src.trace(), [src]);
  const graphs = useAsync<FlameGraph[]>(() => src.flames(), [src]);
  if (t === null || graphs === null) return html`<p class="muted">reading…</p>`;
  const o = t?.outstanding;
  return html`<div>
    ${
      t &&
      html`<p class="trace-line" data-events=${t.events} data-lost=${t.lostEvents}>
        <b>${t.what}</b>${`: ${seconds(t.durationSeconds)} traced, ${n(t.events)} events (${n(t.allocs)} allocations, ${n(t.frees)} frees), `}<span
          class=${t.lostEvents ? 'lost' : ''}
          >${n(t.lostEvents)} lost</span
        >${`; outstanding ${n(o!.count)} allocations, ${formatBytes(o!.bytes)}${o!.pages ? ` (${n(o!.pages)} pages)` : ''}${t.sample > 1 ? `, estimated from 1 in ${t.sample} objects` : ''}`}
      </p>`
    }
    ${
      t && t.lostEvents > 0
        ? html`<div class="finding warning"><p>
            Events were lost (buffer full): allocations whose free was lost show as outstanding. Trace
            fewer events (--events, --cache, --sample) or raise --buffer-kb.
          </p></div>`
        : null
    }
    <${Flames}
      graphs=${(graphs ?? []).filter((g) => g.root.v > 0)}
      empty="Nothing the trace saw allocated is still outstanding."
    />
  </div>`;
}

function DiffTab({ src }: { src: DataSource }) {
  const view = useAsync(() => src.diff(), [src]);
  return view === null
    ? html`<p class="muted">reading…</p>`
    : view
      ? html`<${DiffPage} view=${view} />`
      : null;
}

interface Tab {
  id: string;
  title: string;
  view: () => unknown;
}

function tabsFor(src: DataSource, hasFlames: boolean): Tab[] {
  const t: Tab[] = [];
  if (src.kind === 'report') {
    t.push({ id: 'report', title: 'Accounting', view: () => html`<${Now} src=${src} />` });
    if (hasFlames)
      t.push({ id: 'flames', title: 'Flame graphs', view: () => html`<${FlamesTab} src=${src} />` });
  } else if (src.kind === 'diff') {
    t.push({ id: 'diff', title: 'Diff', view: () => html`<${DiffTab} src=${src} />` });
  } else if (src.kind === 'trace') {
    t.push({ id: 'outstanding', title: 'Outstanding', view: () => html`<${TraceTab} src=${src} />` });
  } else if (src.kind === 'leaks') {
    t.push({ id: 'over-time', title: 'Over time', view: () => html`<${OverTime} src=${src} />` });
    t.push({ id: 'suspects', title: 'Suspects', view: () => html`<${Suspects} src=${src} />` });
  } else {
    const info = src.info!;
    if (info.recording)
      t.push({ id: 'over-time', title: 'Over time', view: () => html`<${OverTime} src=${src} />` });
    if (info.recording)
      t.push({ id: 'suspects', title: 'Suspects', view: () => html`<${Suspects} src=${src} />` });
    t.push({ id: 'report', title: 'Accounting', view: () => html`<${Now} src=${src} />` });
    t.push({ id: 'flames', title: 'Flame graphs', view: () => html`<${FlamesTab} src=${src} />` });
    t.push({ id: 'diff', title: 'Diff', view: () => html`<${DiffPicker} src=${src} />` });
    if (info.recording)
      t.push({ id: 'series', title: 'Series', view: () => html`<${SeriesPicker} src=${src} />` });
  }
  return t;
}

export function App({ src, hasFlames }: { src: DataSource; hasFlames: boolean }) {
  const tabs = tabsFor(src, hasFlames);
  const fromHash = () => tabs.find((t) => `#${t.id}` === location.hash)?.id ?? tabs[0]?.id;
  const [tab, setTab] = useState(fromHash());
  useEffect(() => {
    const on = () => setTab(fromHash());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  const cur = tabs.find((t) => t.id === tab) ?? tabs[0];
  return html`<div class="app">
    <header>
      <h1>memsleuth</h1>
      <span class="title">${src.title}</span>
      <nav>
        ${tabs.map(
          (t) =>
            html`<a href=${`#${t.id}`} class=${t.id === cur?.id ? 'tab on' : 'tab'} data-tab=${t.id}>${t.title}</a>`,
        )}
      </nav>
    </header>
    <main>${cur?.view()}</main>
  </div>`;
}
