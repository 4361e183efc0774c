/**
 * The stack-group model shared by every stack-carrying source (page_owner, kmemleak,
 * slab alloc_traces, allocinfo, vmallocinfo callers). A group is keyed by its
 * normalised frames (function and module; `+off/len` kept for display only), and
 * carries counts, bytes and pages. Top, diff and flame-graph export work on groups
 * from any source.
 */

import { type Frame, frameKey, stackKey } from '../model/frame.js';

/**
 * Functions that belong to the allocators themselves. The culprit of an allocation is
 * the first frame below them. Prefix matches; names follow 4.x to 6.12 (the
 * `_noprof` suffixes come from 6.10 memory allocation profiling).
 */
const ALLOCATOR_PREFIXES = [
  '__alloc_pages',
  'alloc_pages',
  '__folio_alloc',
  'folio_alloc',
  'alloc_slab_page',
  'allocate_slab',
  'new_slab',
  '___slab_alloc',
  '__slab_alloc',
  'slab_alloc',
  '__kmem_cache_alloc',
  'kmem_cache_alloc',
  '__kmalloc',
  'kmalloc',
  '__do_kmalloc',
  'kmalloc_trace',
  'kmalloc_large',
  '__kmalloc_large',
  'kmalloc_order',
  'kzalloc',
  'kcalloc',
  'krealloc',
  '__vmalloc',
  'vmalloc',
  'vzalloc',
  '__vmalloc_node',
  '__vmalloc_area_node',
  'vm_area_alloc_pages',
  'kvmalloc',
  '__kvmalloc',
  'get_page_from_freelist',
  'prep_new_page',
  'post_alloc_hook',
  'set_page_owner',
  '__set_page_owner',
  'register_dummy_stack',
  'save_stack',
  'stack_trace_save',
  'kmemleak_alloc',
  'kmemleak_vmalloc',
  'slab_post_alloc_hook',
  'alloc_pages_mpol',
  'alloc_pages_bulk',
  '__alloc_pages_bulk',
  'alloc_pages_exact',
  '__get_free_pages',
  'get_zeroed_page',
  'alloc_page_interleave',
  'pcpu_alloc',
  '__alloc_percpu',
] as const;

/** True for frames inside the page/slab/vmalloc allocators (and page_owner itself). */
export function isAllocatorFrame(f: Frame): boolean {
  const name = f.func;
  return ALLOCATOR_PREFIXES.some((p) => name.startsWith(p));
}

/** The first frame outside the allocators: who asked for the memory. */
export function culpritFrame(frames: readonly Frame[]): Frame | undefined {
  return frames.find((f) => !isAllocatorFrame(f)) ?? frames[0];
}

/** The first module named in the stack (innermost first), if any. */
export function moduleOf(frames: readonly Frame[]): string | undefined {
  return frames.find((f) => f.module !== undefined)?.module;
}

/** What a group counts. All optional so a source fills what it knows. */
export interface Weights {
  /** Records or objects (allocations outstanding, kmemleak reports...). */
  count: number;
  bytes: number;
  pages: number;
}

export type WeightName = keyof Weights;

export interface StackGroup {
  /** Matching key (see `stackKey`). */
  key: string;
  /** Frames of the first stack seen with this key (offsets kept for display). */
  frames: Frame[];
  weights: Weights;
}

/** Bounded by distinct stacks, not by input size. */
export class StackAggregator {
  private readonly groups = new Map<string, StackGroup>();
  constructor(private readonly withOffsets = false) {}

  add(frames: readonly Frame[], w: Partial<Weights>): void {
    const key = stackKey(frames, this.withOffsets);
    let g = this.groups.get(key);
    if (!g) {
      g = { key, frames: frames.slice(), weights: { count: 0, bytes: 0, pages: 0 } };
      this.groups.set(key, g);
    }
    g.weights.count += w.count ?? 1;
    g.weights.bytes += w.bytes ?? 0;
    g.weights.pages += w.pages ?? 0;
  }

  get size(): number {
    return this.groups.size;
  }

  result(): StackGroup[] {
    return [...this.groups.values()];
  }
}

/** Groups sorted by a weight, largest first; ties broken by key for stable output. */
export function topGroups(groups: readonly StackGroup[], by: WeightName, limit = Infinity): StackGroup[] {
  return [...groups]
    .sort((a, b) => b.weights[by] - a.weights[by] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, limit);
}

export interface GroupDelta {
  key: string;
  frames: Frame[];
  before: Weights;
  after: Weights;
  delta: Weights;
  /** Present only after (a new stack). */
  isNew: boolean;
  /** Present only before (gone). */
  isGone: boolean;
}

const ZERO: Weights = { count: 0, bytes: 0, pages: 0 };

/** Per-key change between two group sets, sorted by `by` gained (largest gain first). */
export function diffGroups(
  before: readonly StackGroup[],
  after: readonly StackGroup[],
  by: WeightName,
): GroupDelta[] {
  const b = new Map(before.map((g) => [g.key, g]));
  const a = new Map(after.map((g) => [g.key, g]));
  const keys = new Set([...b.keys(), ...a.keys()]);
  const out: GroupDelta[] = [];
  for (const key of keys) {
    const gb = b.get(key);
    const ga = a.get(key);
    const wb = gb?.weights ?? ZERO;
    const wa = ga?.weights ?? ZERO;
    out.push({
      key,
      frames: (ga ?? gb)!.frames,
      before: { ...wb },
      after: { ...wa },
      delta: { count: wa.count - wb.count, bytes: wa.bytes - wb.bytes, pages: wa.pages - wb.pages },
      isNew: gb === undefined,
      isGone: ga === undefined,
    });
  }
  return out.sort((x, y) => y.delta[by] - x.delta[by] || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
}

/**
 * Collapsed-stack text (Brendan Gregg's format, read by flamegraph.pl, speedscope,
 * inferno): root first, frames joined by `;`, a space, the weight.
 */
export function toCollapsed(groups: readonly StackGroup[], by: WeightName): string {
  const lines: string[] = [];
  for (const g of topGroups(groups, by)) {
    const w = g.weights[by];
    if (w <= 0) continue;
    const names = g.frames.map((f) => frameKey(f)).reverse();
    lines.push(`${names.join(';').replace(/\s+(?=\[)/g, '_') || '[no stack]'} ${w}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** speedscope's file format (https://www.speedscope.app/file-format-schema.json), sampled profile. */
export function toSpeedscope(groups: readonly StackGroup[], by: WeightName, name: string): object {
  const frameIndex = new Map<string, number>();
  const frames: { name: string }[] = [];
  const samples: number[][] = [];
  const weights: number[] = [];
  for (const g of topGroups(groups, by)) {
    const w = g.weights[by];
    if (w <= 0) continue;
    const sample: number[] = [];
    for (const f of [...g.frames].reverse()) {
      const n = frameKey(f);
      let i = frameIndex.get(n);
      if (i === undefined) {
        i = frames.length;
        frames.push({ name: n });
        frameIndex.set(n, i);
      }
      sample.push(i);
    }
    samples.push(sample);
    weights.push(w);
  }
  const total = weights.reduce((s, x) => s + x, 0);
  return {
    $schema: 'https://www.speedscope.app/file-format-schema.json',
    shared: { frames },
    profiles: [
      {
        type: 'sampled',
        name,
        unit: by === 'bytes' ? 'bytes' : 'none',
        startValue: 0,
        endValue: total,
        samples,
        weights,
      },
    ],
    name,
    exporter: 'memsleuth',
  };
}
