/**
 * Kernel allocations from the kmem tracepoints (include/trace/events/kmem.h), paired with
 * their frees: slab objects by pointer (kmalloc/kfree, kmem_cache_alloc/kmem_cache_free),
 * page blocks by pfn (mm_page_alloc/mm_page_free). Each allocation event is followed on
 * its CPU by the `<stack trace>` its stacktrace trigger recorded.
 *
 * Event formats by kernel version:
 * - kmalloc, kmem_cache_alloc: `call_site=%pS ptr=%p bytes_req=%zu bytes_alloc=%zu
 *   gfp_flags=%s`, plus `node=%d` (6.0+, when the *_node events were merged in) and
 *   `accounted=%s` (5.19+); kmem_cache_alloc gained `name=%s` after 6.12. Before 6.0,
 *   kmalloc_node and kmem_cache_alloc_node were separate events with the same fields.
 * - kfree: `call_site=%pS ptr=%p`; kmem_cache_free: `... name=%s` (5.16+).
 * - mm_page_alloc: `page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s` (pfn since
 *   4.3; a failed allocation prints `page=0000000000000000 pfn=0x0`).
 * - mm_page_free: `page=%p pfn=0x%lx order=%d`; mm_page_free_batched: `... order=0`.
 * - `%p` prints a hashed value unless the instance's hash-ptr option is off (5.12+ has
 *   the option); hashing is consistent, so pairing works either way.
 */
import { type Frame, parseFrame } from '../model/frame.js';
import {
  contextLevel,
  type FtraceEvent,
  type FtraceKernelStack,
  type FtraceRecord,
  FtraceTextParser,
  parseEventFields,
} from '../sources/ftrace_text.js';
import {
  AllocationTracker,
  type AllocKind,
  type TracedAllocation,
  type TraceReport,
  trimTraceFrames,
} from './alloc_trace.js';

const ALLOC_EVENTS: Record<string, AllocKind> = {
  kmalloc: 'kmalloc',
  kmalloc_node: 'kmalloc',
  kmem_cache_alloc: 'kmem_cache',
  kmem_cache_alloc_node: 'kmem_cache',
  mm_page_alloc: 'pages',
};
const FREE_EVENTS: Record<string, 'slab' | 'pages'> = {
  kfree: 'slab',
  kmem_cache_free: 'slab',
  mm_page_free: 'pages',
  mm_page_free_batched: 'pages',
};

/** The tracepoints memsleuth enables for each `--events` group. */
export const KMEM_EVENT_GROUPS = {
  kmalloc: { alloc: ['kmalloc', 'kmalloc_node'], free: ['kfree'] },
  cache: { alloc: ['kmem_cache_alloc', 'kmem_cache_alloc_node'], free: ['kmem_cache_free'] },
  pages: { alloc: ['mm_page_alloc'], free: ['mm_page_free', 'mm_page_free_batched'] },
} as const;
export type KmemEventGroup = keyof typeof KMEM_EVENT_GROUPS;
export const KMEM_EVENT_GROUP_NAMES = Object.keys(KMEM_EVENT_GROUPS) as KmemEventGroup[];

/**
 * Frames that mark a page block as slab or large-kmalloc backing: those bytes are already
 * counted by the slab events, so with both traced the page is left out.
 */
const SLAB_BACKING =
  /^(allocate_slab|new_slab|alloc_slab_page|___slab_alloc|kmalloc_large|__kmalloc_large|kmalloc_order|___kmalloc_large)/;

/** A pointer as printed (`ffff888104fa2600`, `0x...`, hashed `00000000abcd1234`) as a key. */
export function pointerKey(p: string | undefined): string | undefined {
  if (p === undefined) return undefined;
  let i = p.charCodeAt(0) === 48 && (p.charCodeAt(1) | 32) === 120 ? 2 : 0; // 0x
  while (i < p.length && p.charCodeAt(i) === 48) i++;
  const s = i === 0 ? p : p.slice(i);
  // NULL and ZERO_SIZE_PTR (0x10): no object.
  if (s === '' || s === '10' || s === '(null)') return undefined;
  return /[A-F]/.test(s) ? s.toLowerCase() : s;
}

/** True for a slab object key (pointer-based) as opposed to a page key. */
export function isSlabKey(key: string): boolean {
  return key.startsWith('s:');
}

export interface KmemAnalyzerOptions {
  /** Bytes per page (default 4096). */
  pageSizeBytes?: number;
  /** Stacks are expected after allocation events (the stacktrace trigger was on). */
  stacks?: boolean;
  /** Leave page blocks that back slabs or large kmallocs out (default: true). */
  skipSlabPages?: boolean;
  /** Only objects of this slab cache (where the event names it or its size implies it). */
  cache?: string;
  /**
   * The stack records' frames are their parser's own copies, kept as they are (FtraceTextParser's
   * are); otherwise the tracker keeps a copy of each new frame.
   */
  ownFrames?: boolean;
}

interface Pending {
  alloc: TracedAllocation;
  event: string;
  ctx: number;
  pid: number;
}

/** Feeds trace records into an AllocationTracker. */
export class KmemTraceAnalyzer {
  private readonly pageSize: number;
  private readonly pending = new Map<number, Pending[]>();
  private readonly pageStacks: boolean;
  /** Records seen, by event name. */
  readonly events: Record<string, number> = {};

  constructor(
    readonly tracker: AllocationTracker,
    private readonly opts: KmemAnalyzerOptions = {},
  ) {
    this.pageSize = opts.pageSizeBytes ?? 4096;
    this.pageStacks = opts.stacks ?? true;
  }

  onRecord = (r: FtraceRecord): void => {
    if (r.type === 'lost') {
      this.tracker.lost(r.events);
      return;
    }
    this.tracker.tick(r.timestamp);
    if (r.type === 'kernel-stack') {
      this.onStack(r);
      return;
    }
    if (r.type !== 'event') return;
    this.events[r.event] = (this.events[r.event] ?? 0) + 1;
    const kind = ALLOC_EVENTS[r.event];
    if (kind) {
      this.onAlloc(kind, r);
      return;
    }
    const free = FREE_EVENTS[r.event];
    if (free) {
      const f = r.fields ?? parseEventFields(r.body);
      const key = free === 'slab' ? pointerKey(f.ptr) : pfnKey(f.pfn);
      if (key !== undefined) this.tracker.free(`${free === 'slab' ? 's' : 'p'}:${key}`, r.timestamp);
    }
  };

  private onAlloc(kind: AllocKind, r: FtraceEvent): void {
    const event = r.event;
    const f = r.fields ?? parseEventFields(r.body);
    let key: string | undefined;
    let bytes: number;
    let pages = 0;
    let cache: string | undefined;
    if (kind === 'pages') {
      if (f.page !== undefined && pointerKey(f.page) === undefined) return; // failed allocation
      const pfn = pfnKey(f.pfn);
      if (pfn === undefined) return;
      key = `p:${pfn}`;
      pages = 2 ** Number(f.order ?? 0);
      bytes = pages * this.pageSize;
    } else {
      const ptr = pointerKey(f.ptr);
      if (ptr === undefined) return; // failed allocation
      key = `s:${ptr}`;
      bytes = Number(f.bytes_alloc ?? f.bytes_req ?? 0);
      cache = f.name ?? (kind === 'kmalloc' ? kmallocCache(Number(f.bytes_req ?? bytes)) : undefined);
    }
    if (this.opts.cache !== undefined && cache !== undefined && cache !== this.opts.cache) {
      this.tracker.counters.filtered++;
      return;
    }
    // One Frame per distinct call site, shared by its allocations (not one parsed per event).
    let callSite: Frame | undefined;
    if (r.callSite) callSite = this.tracker.internFrame(r.callSite);
    else if (f.call_site !== undefined) {
      const site = parseFrame(f.call_site);
      if (site) callSite = this.tracker.internFrame(site);
    }
    // Every field in the literal, those set later too (the stack's id, a reason to leave it
    // out): a field added afterwards goes to a property array of its own, 40 bytes more for
    // each outstanding allocation.
    const a: TracedAllocation = {
      kind,
      bytes,
      pages,
      time: r.timestamp,
      pid: r.pid,
      comm: r.comm,
      cache,
      callSite,
      stackId: undefined,
      excluded: undefined,
    };
    this.tracker.alloc(key, a);
    if (!this.pageStacks) return;
    const ctx = contextLevel(r.flags);
    let list = this.pending.get(r.cpu);
    if (!list) {
      list = [];
      this.pending.set(r.cpu, list);
    }
    // An event of the same or a lower context than a waiting one: that one's stack
    // would have come before it, so it lost its stack.
    while (list.length && list[list.length - 1]!.ctx >= ctx) {
      list.pop();
      this.tracker.counters.missingStacks++;
    }
    list.push({ alloc: a, event, ctx, pid: r.pid });
  }

  private onStack(s: FtraceKernelStack): void {
    const list = this.pending.get(s.cpu);
    if (!list || list.length === 0) return;
    const ctx = contextLevel(s.flags);
    // The tracepoint's own frame names the event (`trace_event_raw_event_kmalloc`).
    const own = s.frames.find((f) => f.func.startsWith('trace_event_raw_event_'));
    const event = own?.func.slice('trace_event_raw_event_'.length);
    let i = list.length - 1;
    while (i >= 0 && (list[i]!.ctx !== ctx || (event !== undefined && !sameEvent(list[i]!.event, event))))
      i--;
    if (i < 0) return;
    const p = list[i]!;
    // Waiting entries above it (higher contexts) lost their stacks.
    this.tracker.counters.missingStacks += list.length - 1 - i;
    list.length = i;
    const frames = trimTraceFrames(s.frames);
    p.alloc.stackId = this.tracker.internStack(frames, this.opts.ownFrames ?? false);
    if (
      p.alloc.kind === 'pages' &&
      (this.opts.skipSlabPages ?? true) &&
      frames.some((f) => SLAB_BACKING.test(f.func))
    )
      p.alloc.excluded = 'slab or large-kmalloc backing pages (counted by the slab events)';
  }

  /** Allocations still waiting for a stack at the end of the input lost it. */
  finish(): void {
    for (const list of this.pending.values()) {
      this.tracker.counters.missingStacks += list.length;
      list.length = 0;
    }
  }
}

function sameEvent(pending: string, fromStack: string): boolean {
  // kmalloc_node's stack names trace_event_raw_event_kmalloc_node, and so on; older
  // kernels share one raw-event function between an event class's events.
  return pending === fromStack || pending.startsWith(fromStack) || fromStack.startsWith(pending);
}

function pfnKey(p: string | undefined): string | undefined {
  if (p === undefined) return undefined;
  const s = p.toLowerCase().replace(/^0x/, '').replace(/^0+/, '');
  // 0 and -1UL: a failed allocation (the text prints 0, a raw event carries -1).
  return s === '' || s === 'ffffffffffffffff' ? undefined : s;
}

/**
 * kmalloc size classes on SLUB (mm/slab_common.c kmalloc_info): powers of two from 8 plus
 * 96 and 192. The class is decided by the requested size: bytes_alloc is the cache's
 * object size, which slub_debug grows (kmalloc-96 is 168 bytes with slub_debug=U).
 */
export const KMALLOC_CLASSES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192] as const;

function className(bytes: number): string {
  return `kmalloc-${bytes >= 1024 ? `${bytes / 1024}k` : bytes}`;
}

/** The kmalloc cache (kmalloc-N) of a request of `bytesReq`, or none for large ones (pages). */
export function kmallocCache(bytesReq: number): string | undefined {
  if (bytesReq <= 0) return undefined;
  const c = KMALLOC_CLASSES.find((n) => bytesReq <= n);
  return c === undefined ? undefined : className(c);
}

/** The requests a kmalloc-N cache serves: (low, high], or undefined for a name that is not one. */
export function kmallocRange(cache: string): { low: number; high: number } | undefined {
  const m = /^kmalloc-(?:rcl-|cg-|dma-)?(\d+)(k?)$/.exec(cache);
  if (!m) return undefined;
  const high = Number(m[1]) * (m[2] ? 1024 : 1);
  const i = KMALLOC_CLASSES.indexOf(high as (typeof KMALLOC_CLASSES)[number]);
  if (i < 0) return undefined;
  return { low: i === 0 ? 0 : KMALLOC_CLASSES[i - 1]!, high };
}
export interface KmemTraceAnalysis {
  report: TraceReport;
  /** Records per event name. */
  events: Record<string, number>;
  /** Kernel stack records seen (0: the trace was taken without stacks). */
  stacks: number;
  lines: number;
}

/**
 * Analyse a saved kmem trace (`memsleuth trace kernel --save`, or the collector's
 * `trace/kmem`): streamed, memory bounded by what is outstanding.
 */
export async function analyzeKmemTrace(
  input: AsyncIterable<Buffer | string>,
  o: KmemAnalyzerOptions & {
    module?: string;
    file?: string;
    /** Stack groups to build, heaviest first (default all: see AllocationTracker.report). */
    stackGroups?: number;
  } = {},
): Promise<KmemTraceAnalysis> {
  const tracker = new AllocationTracker(o.module === undefined ? {} : { onlyModule: o.module });
  // The text parser's frames are its own copies.
  const analyzer = new KmemTraceAnalyzer(tracker, { ...o, ownFrames: true });
  let stacks = 0;
  const parser = new FtraceTextParser(
    (r) => {
      if (r.type === 'kernel-stack') stacks++;
      analyzer.onRecord(r);
    },
    o.file === undefined ? {} : { file: o.file },
  );
  for await (const chunk of input) parser.push(chunk);
  parser.end();
  analyzer.finish();
  // Without any stack record the trace was taken without stacks: none went missing.
  if (stacks === 0) tracker.counters.missingStacks = 0;
  const report = tracker.report(undefined, o.stackGroups === undefined ? {} : { stacks: o.stackGroups });
  return { report, events: analyzer.events, stacks, lines: parser.lines };
}
