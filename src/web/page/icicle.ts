/**
 * A searchable icicle (a flame graph drawn root at the top) on a canvas: click a frame to zoom
 * into it, click the root row to zoom out, type to highlight frames whose name matches. A
 * differential graph colours each frame by its growth (after − before): red grew, blue shrank.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { FlameGraph, FlameNode } from '../types.js';
import { formatValue } from './format.js';
import { html } from './html.js';

const ROW = 18;

interface Placed {
  node: FlameNode;
  depth: number;
  x: number;
  w: number;
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return Math.abs(h);
}

function warm(name: string): string {
  const h = hash(name);
  return `hsl(${20 + (h % 35)}, ${70 + (h % 20)}%, ${58 + ((h >> 3) % 14)}%)`;
}

function diffColour(n: FlameNode, maxGrowth: number): string {
  const d = n.v - (n.b ?? 0);
  if (d === 0 || maxGrowth === 0) return 'hsl(0, 0%, 82%)';
  const k = Math.min(1, Math.abs(d) / maxGrowth);
  return d > 0 ? `hsl(0, ${45 + 45 * k}%, ${82 - 30 * k}%)` : `hsl(220, ${45 + 45 * k}%, ${82 - 30 * k}%)`;
}

/** Frames of the zoomed subtree laid out in [0, 1], ancestors above at full width. */
function layout(path: FlameNode[], minFrac: number): Placed[] {
  const out: Placed[] = [];
  path.forEach((node, depth) => {
    out.push({ node, depth, x: 0, w: 1 });
  });
  const top = path[path.length - 1]!;
  const total = top.v || 1;
  const walk = (n: FlameNode, depth: number, x: number) => {
    let cx = x;
    for (const c of n.c ?? []) {
      const w = c.v / total;
      if (w >= minFrac) {
        out.push({ node: c, depth, x: cx, w });
        walk(c, depth + 1, cx);
      }
      cx += w;
    }
  };
  walk(top, path.length, 0);
  return out;
}

function maxDepth(n: FlameNode): number {
  return 1 + Math.max(0, ...(n.c ?? []).map(maxDepth));
}

/** Sum of the matching frames that have no matching ancestor (so nothing counts twice). */
function matchedTotal(n: FlameNode, re: RegExp): number {
  if (re.test(n.n)) return n.v;
  return (n.c ?? []).reduce((s, c) => s + matchedTotal(c, re), 0);
}

function maxGrowthOf(n: FlameNode): number {
  return Math.max(Math.abs(n.v - (n.b ?? 0)), ...(n.c ?? []).map(maxGrowthOf));
}

export function Icicle({ graph }: { graph: FlameGraph }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [path, setPath] = useState<FlameNode[]>([graph.root]);
  const [search, setSearch] = useState('');
  const [hover, setHover] = useState<{ p: Placed; x: number; y: number } | undefined>();
  const [width, setWidth] = useState(1000);
  useEffect(() => setPath([graph.root]), [graph]);
  const re = useMemo(() => {
    if (!search) return undefined;
    try {
      return new RegExp(search, 'i');
    } catch {
      return new RegExp(search.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    }
  }, [search]);
  const depth = useMemo(() => maxDepth(graph.root), [graph]);
  const maxGrowth = useMemo(() => (graph.differential ? maxGrowthOf(graph.root) : 0), [graph]);
  const placed = useMemo(() => layout(path, 0.5 / width), [path, width]);
  const height = (depth + 1) * ROW;

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const measure = () => setWidth(Math.max(300, c.parentElement?.clientWidth ?? 1000));
    measure();
    const ro = new ResizeObserver(measure);
    if (c.parentElement) ro.observe(c.parentElement);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = width * dpr;
    c.height = height * dpr;
    c.style.width = `${width}px`;
    c.style.height = `${height}px`;
    const g = c.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    for (const p of placed) {
      const x = p.x * width;
      const w = p.w * width;
      const y = p.depth * ROW;
      const matched = re?.test(p.node.n);
      g.fillStyle = matched
        ? '#d63ad6'
        : graph.differential
          ? diffColour(p.node, maxGrowth)
          : p.depth < path.length
            ? '#c9c9c9'
            : warm(p.node.n);
      g.fillRect(x, y, Math.max(0.5, w - 0.5), ROW - 1);
      if (w > 28) {
        g.fillStyle = '#111';
        const label = p.node.n;
        const max = Math.floor((w - 6) / 6.2);
        g.fillText(
          label.length > max ? `${label.slice(0, Math.max(0, max - 1))}…` : label,
          x + 3,
          y + ROW / 2,
        );
      }
    }
  }, [placed, width, height, re, graph, maxGrowth, path.length]);

  const at = (ev: MouseEvent): Placed | undefined => {
    const r = (ev.target as HTMLCanvasElement).getBoundingClientRect();
    const fx = (ev.clientX - r.left) / width;
    const d = Math.floor((ev.clientY - r.top) / ROW);
    return placed.find((p) => p.depth === d && fx >= p.x && fx < p.x + p.w);
  };
  const onClick = (ev: MouseEvent) => {
    const p = at(ev);
    if (!p) return;
    if (p.depth < path.length) setPath(path.slice(0, p.depth + 1));
    else {
      // The path from the zoomed frame down to the clicked one.
      const chain: FlameNode[] = [];
      const find = (n: FlameNode): boolean => {
        if (n === p.node) return true;
        for (const c of n.c ?? []) if (find(c)) return chain.unshift(c) > 0;
        return false;
      };
      find(path[path.length - 1]!);
      setPath([...path, ...chain]);
    }
  };
  const root = graph.root;
  const unit = graph.unit;
  const matched = re ? matchedTotal(path[path.length - 1]!, re) : 0;
  const tip = hover?.p.node;
  return html`<div class="flame" data-source=${graph.source}>
    <div class="flame-head">
      <span class="flame-root" data-value=${root.v} data-before=${root.b ?? ''}>
        all: ${formatValue(root.v, unit)}${graph.differential ? ` (before ${formatValue(root.b ?? 0, unit)})` : ''}
      </span>
      <input
        class="flame-search"
        type="search"
        placeholder="search frames (regex)"
        value=${search}
        onInput=${(e: Event) => setSearch((e.target as HTMLInputElement).value)}
      />
      ${re && html`<span class="flame-matched" data-value=${matched}>matched ${formatValue(matched, unit)} (${((matched / (path[path.length - 1]!.v || 1)) * 100).toFixed(1)}%)</span>`}
      ${path.length > 1 && html`<button onClick=${() => setPath([graph.root])}>reset zoom</button>`}
      ${graph.differential && html`<span class="legend"><i class="grew"></i>grew <i class="shrank"></i>shrank</span>`}
    </div>
    <div class="flame-canvas">
      <canvas
        ref=${canvas}
        onClick=${onClick}
        onMouseMove=${(ev: MouseEvent) => {
          const p = at(ev);
          setHover(p ? { p, x: ev.offsetX, y: ev.offsetY } : undefined);
        }}
        onMouseLeave=${() => setHover(undefined)}
      ></canvas>
      ${
        tip &&
        html`<div class="tip" style=${`left:${Math.min(hover!.x + 12, width - 320)}px;top:${hover!.y + 14}px`}>
        <b>${tip.n}</b><br />
        ${formatValue(tip.v, unit)} (${((tip.v / (root.v || 1)) * 100).toFixed(2)}% of all)
        ${graph.differential && html`<br />before ${formatValue(tip.b ?? 0, unit)}, change ${tip.v - (tip.b ?? 0) >= 0 ? '+' : ''}${formatValue(tip.v - (tip.b ?? 0), unit)}`}
      </div>`
      }
    </div>
  </div>`;
}

/** A picker over several graphs (one per stack source) and the icicle of the chosen one. */
export function Flames({ graphs, empty }: { graphs: FlameGraph[]; empty: string }) {
  const [i, setI] = useState(0);
  if (graphs.length === 0) return html`<p class="muted">${empty}</p>`;
  const g = graphs[Math.min(i, graphs.length - 1)]!;
  return html`<div>
    <div class="pills">
      ${graphs.map(
        (x, k) =>
          html`<button class=${k === i ? 'pill on' : 'pill'} data-source=${x.source} onClick=${() => setI(k)}>${x.source}</button>`,
      )}
    </div>
    <h3>${g.title}</h3>
    <${Icicle} graph=${g} />
  </div>`;
}
