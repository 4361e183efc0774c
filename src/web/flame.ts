/**
 * Flame graphs of allocation stacks for the page: the stack groups of any source
 * (analysis/stacks.ts) folded into one tree, root first. The same frames and weights as
 * `--collapsed`/`--speedscope` (toCollapsed): the page draws what those files hold.
 */
import type { StackGroup, WeightName } from '../analysis/stacks.js';
import { frameKey } from '../model/frame.js';

/** One node: its frame, its weight (self + children), its children. Short keys: it is inlined. */
export interface FlameNode {
  /** Frame name (`func [module]`), `all` at the root. */
  n: string;
  /** Weight: after's for a differential graph. */
  v: number;
  /** Differential graphs: the weight before. */
  b?: number;
  c?: FlameNode[];
}

export interface FlameGraph {
  /** Which source it comes from: page_owner, kmemleak, slab_traces, allocinfo, page_owner_stacks. */
  source: string;
  title: string;
  /** What v counts. */
  unit: WeightName;
  root: FlameNode;
  /** Differential: before and after weights are both there (root.b). */
  differential?: boolean;
}

interface Building {
  n: string;
  v: number;
  b: number;
  kids: Map<string, Building>;
}

function node(n: string): Building {
  return { n, v: 0, b: 0, kids: new Map() };
}

function add(root: Building, frames: readonly string[], after: number, before: number): void {
  let cur = root;
  cur.v += after;
  cur.b += before;
  for (const f of frames) {
    let k = cur.kids.get(f);
    if (!k) {
      k = node(f);
      cur.kids.set(f, k);
    }
    k.v += after;
    k.b += before;
    cur = k;
  }
}

function finish(x: Building, differential: boolean): FlameNode {
  const out: FlameNode = { n: x.n, v: x.v };
  if (differential) out.b = x.b;
  if (x.kids.size) {
    out.c = [...x.kids.values()]
      .map((k) => finish(k, differential))
      .sort((p, q) => q.v - p.v || (q.b ?? 0) - (p.b ?? 0) || (p.n < q.n ? -1 : p.n > q.n ? 1 : 0));
  }
  return out;
}

/** Outermost frame first, as a flame graph stacks them; `[no stack]` for an empty one. */
function path(g: StackGroup): string[] {
  return g.frames.length ? g.frames.map((f) => frameKey(f)).reverse() : ['[no stack]'];
}

/** One tree from a source's groups, weighted by `by`. Groups of weight 0 are left out. */
export function flameTree(groups: readonly StackGroup[], by: WeightName): FlameNode {
  const root = node('all');
  for (const g of groups) if (g.weights[by] > 0) add(root, path(g), g.weights[by], 0);
  return finish(root, false);
}

/**
 * A differential tree: widths are after's weights, `b` holds before's, so a frame's growth is
 * `v − b`. Stacks only before (all freed) keep v = 0 and show in the page's "shrank" list.
 */
export function diffFlameTree(
  before: readonly StackGroup[],
  after: readonly StackGroup[],
  by: WeightName,
): FlameNode {
  const root = node('all');
  for (const g of after) if (g.weights[by] > 0) add(root, path(g), g.weights[by], 0);
  for (const g of before) if (g.weights[by] > 0) add(root, path(g), 0, g.weights[by]);
  return finish(root, true);
}
