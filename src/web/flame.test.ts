import { describe, expect, it } from 'vitest';
import { StackAggregator, toCollapsed } from '../analysis/stacks.js';
import { diffFlameTree, type FlameNode, flameTree } from './flame.js';

function groups(stacks: [string[], number][]) {
  const agg = new StackAggregator();
  for (const [names, pages] of stacks)
    agg.add(
      names.map((func) => ({ func })),
      { pages, count: 1 },
    );
  return agg.result();
}

/** Collapsed lines from a tree: the leaves' paths with their self weight. */
function collapsed(n: FlameNode, prefix: string[] = [], out: string[] = []): string[] {
  const kids = n.c ?? [];
  const self = n.v - kids.reduce((s, k) => s + k.v, 0);
  const here = n.n === 'all' && prefix.length === 0 ? [] : [...prefix, n.n];
  if (self > 0 && here.length) out.push(`${here.join(';')} ${self}`);
  for (const k of kids) collapsed(k, here, out);
  return out;
}

describe('flameTree', () => {
  it('holds exactly the weights of the collapsed export, root = the sum', () => {
    // innermost first, as the kernel prints them
    const g = groups([
      [['post_alloc_hook', 'alloc_pages', 'demo_page_grab', 'kthread'], 2],
      [['post_alloc_hook', 'alloc_pages', 'other_grab', 'kthread'], 5],
      [['kmalloc', 'demo_cache_fill', 'kthread'], 1],
      [['kmalloc', 'nothing'], 0],
    ]);
    const tree = flameTree(g, 'pages');
    expect(tree.v).toBe(8);
    expect(tree.c!.map((c) => [c.n, c.v])).toEqual([['kthread', 8]]);
    expect(collapsed(tree).sort()).toEqual(toCollapsed(g, 'pages').trim().split('\n').sort());
  });
});

describe('diffFlameTree', () => {
  it('carries before and after per frame', () => {
    const before = groups([
      [['a', 'root'], 3],
      [['gone', 'root'], 2],
    ]);
    const after = groups([
      [['a', 'root'], 7],
      [['new', 'root'], 4],
    ]);
    const t = diffFlameTree(before, after, 'pages');
    expect([t.v, t.b]).toEqual([11, 5]);
    const root = t.c![0]!;
    expect(root.c!.map((c) => [c.n, c.v, c.b])).toEqual([
      ['a', 7, 3],
      ['new', 4, 0],
      ['gone', 0, 2],
    ]);
  });
});
