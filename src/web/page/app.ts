/** The page: tabs over what the data has (an HTML report) or over everything (the dashboard). */
import { useEffect, useState } from 'preact/hooks';
import type { FlameGraph, ReportView } from '../types.js';
import { DiffPage, DiffPicker } from './diff.js';
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
