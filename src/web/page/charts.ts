/**
 * Time charts on uPlot: the accounting layers stacked over time, and one series with its fitted
 * growth, its "since" marker and a projection. Each chart registers itself in
 * `window.memsleuthCharts` under its name, so what is drawn can be read back (the browser tests
 * compare it with the CLI's JSON).
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { AccountingOverTime, ProjectionView, SeriesView } from '../types.js';
import { formatBytes, formatTime, formatValue } from './format.js';
import { html } from './html.js';

declare global {
  interface Window {
    memsleuthCharts?: Record<string, { data: uPlot.AlignedData; raw?: unknown }>;
  }
}

export const LAYER_COLOURS: Record<string, string> = {
  user: '#4e79a7',
  shared: '#b07aa1',
  cache: '#59a14f',
  kernel: '#f28e2b',
  free: '#d9d9d9',
  unaccounted: '#e15759',
};

function register(name: string, u: uPlot, raw?: unknown) {
  window.memsleuthCharts ??= {};
  window.memsleuthCharts[name] = { data: u.data, raw };
}

function useChart(make: (el: HTMLElement, width: number) => uPlot | undefined, deps: unknown[]) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const u = make(el, Math.max(320, el.clientWidth));
    if (!u) return;
    const ro = new ResizeObserver(() =>
      u.setSize({ width: Math.max(320, el.clientWidth), height: u.height }),
    );
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
    };
  }, deps);
  return ref;
}

const timeAxis: uPlot.Axis = {};

function valueAxis(unit: string): uPlot.Axis {
  return { size: 80, values: (_u, splits) => splits.map((s) => formatValue(s, unit)) };
}

/** The identity's layers stacked: each band is a layer, the top edge MemTotal. */
export function AccountingArea({
  data,
  name = 'accounting',
  hide = [],
}: {
  data: AccountingOverTime;
  name?: string;
  /** Layers left out of the stack (free: to see the used memory on a mostly idle machine). */
  hide?: string[];
}) {
  const ref = useChart(
    (el, width) => {
      if (data.t.length === 0) return undefined;
      const xs = data.t.map((t) => t / 1000);
      // Cumulative sums, drawn top layer first so each lower band paints over the one above.
      const cum: number[][] = [];
      let acc = data.t.map(() => 0);
      for (const l of data.layers) {
        if (!hide.includes(l.name)) acc = acc.map((a, i) => a + (l.bytes[i] ?? 0));
        cum.push(acc);
      }
      const order = data.layers
        .map((_, k) => k)
        .filter((k) => !hide.includes(data.layers[k]!.name))
        .reverse();
      const u = new uPlot(
        {
          width,
          height: 320,
          scales: { x: { time: true } },
          axes: [timeAxis, valueAxis('bytes')],
          series: [
            { value: (_u, v) => (v == null ? '' : formatTime(v * 1000)) },
            ...order.map((k) => {
              const l = data.layers[k]!;
              return {
                label: l.name,
                stroke: LAYER_COLOURS[l.name] ?? '#888',
                fill: LAYER_COLOURS[l.name] ?? '#888',
                width: 1,
                points: { show: false },
                value: (_u: uPlot, _v: number | null, _s: number, i: number | null) =>
                  i == null ? '' : formatBytes(l.bytes[i] ?? 0),
              } satisfies uPlot.Series;
            }),
          ],
        },
        [xs, ...order.map((k) => cum[k]!)] as uPlot.AlignedData,
        el,
      );
      register(name, u, data);
      return u;
    },
    [data, hide.join()],
  );
  return html`<div class="chart" data-chart=${name} ref=${ref}></div>`;
}

/** A series, its fitted growth from `since`, and the projection of MemAvailable when given. */
export function SeriesChart({
  view,
  name,
  projection,
}: {
  view: SeriesView;
  name: string;
  projection?: ProjectionView['line'];
}) {
  const ref = useChart(
    (el, width) => {
      const pts = view.points;
      const fit = view.fit;
      const xsMs = [...pts.t];
      if (fit) xsMs.push(fit.fromMs, fit.toMs);
      if (projection) xsMs.push(projection.fromMs, projection.toMs);
      const xs = [...new Set(xsMs)].sort((a, b) => a - b);
      const at = new Map(xs.map((x, i) => [x, i]));
      const values: (number | null)[] = xs.map(() => null);
      pts.t.forEach((t, i) => {
        values[at.get(t)!] = pts.v[i]!;
      });
      const series: uPlot.Series[] = [
        { value: (_u, v) => (v == null ? '' : formatTime(v * 1000)) },
        {
          label: view.metric,
          stroke: '#4e79a7',
          width: 1.5,
          points: { show: false },
          value: (_u, v) => (v == null ? '' : formatValue(v, view.unit)),
        },
      ];
      const data: (number | null)[][] = [xs.map((x) => x / 1000), values];
      if (fit) {
        const line: (number | null)[] = xs.map(() => null);
        line[at.get(fit.fromMs)!] = fit.intercept;
        line[at.get(fit.toMs)!] = fit.intercept + fit.slopePerMs * (fit.toMs - fit.fromMs);
        series.push({
          label: 'trend',
          stroke: '#e15759',
          width: 2,
          dash: [6, 4],
          spanGaps: true,
          points: { show: false },
        });
        data.push(line);
      }
      if (projection) {
        const line: (number | null)[] = xs.map(() => null);
        line[at.get(projection.fromMs)!] = projection.fromBytes;
        line[at.get(projection.toMs)!] = projection.toBytes;
        series.push({
          label: 'projection',
          stroke: '#e15759',
          width: 2,
          dash: [2, 4],
          spanGaps: true,
          points: { show: false },
        });
        data.push(line);
      }
      const since = view.sinceMs;
      const u = new uPlot(
        {
          width,
          height: 260,
          scales: { x: { time: true } },
          axes: [timeAxis, valueAxis(view.unit)],
          series,
          hooks: {
            draw: [
              (u) => {
                if (since === undefined) return;
                const x = u.valToPos(since / 1000, 'x', true);
                const c = u.ctx;
                c.save();
                c.strokeStyle = '#e15759';
                c.setLineDash([3, 3]);
                c.beginPath();
                c.moveTo(x, u.bbox.top);
                c.lineTo(x, u.bbox.top + u.bbox.height);
                c.stroke();
                c.fillStyle = '#e15759';
                c.font = `${11 * devicePixelRatio}px system-ui`;
                c.fillText('since', x + 4, u.bbox.top + 12 * devicePixelRatio);
                c.restore();
              },
            ],
          },
        },
        data as uPlot.AlignedData,
        el,
      );
      register(name, u, view);
      return u;
    },
    [view, projection],
  );
  return html`<div class="chart" data-chart=${name} ref=${ref}></div>`;
}
