/**
 * Allocations paired with frees, from a trace (kmem tracepoints, uprobes on malloc):
 * what is still outstanding at the end, grouped by stack, call site and module with
 * bytes, count and age. The groups are the StackGroups of page_owner and kmemleak, so
 * top, diff and the flame-graph exports work on traces unchanged.
 *
 * Memory is bounded by the allocations outstanding and the distinct stacks, not by the
 * length of the trace: a free removes its allocation, stacks are interned.
 */
import { type Frame, frameKey, stackKey } from '../model/frame.js';
import { StackAggregator, type StackGroup, type Weights } from './stacks.js';

/** Where an allocation came from. */
export type AllocKind = 'kmalloc' | 'kmem_cache' | 'pages' | 'malloc' | 'calloc' | 'realloc' | 'mmap';

/**
 * A stack as the trace gave it, shared by every allocation made from it. User stacks
 * arrive as addresses and are symbolised once per stack, when a report is made.
 */
export interface TraceStack {
  /** Identity of the raw stack (frames or addresses joined). */
  raw: string;
  /** Symbolic frames, innermost first (kernel stacks have them at once). */
  frames?: Frame[];
  /** Raw user addresses (hex), innermost first, until symbolised. */
  addresses?: string[];
}

export interface TracedAllocation {
  kind: AllocKind;
  bytes: number;
  pages: number;
  /** Trace clock (seconds) of the allocation. */
  time: number;
  /** Filled when the stack record arrives (it follows the event). */
  stack?: TraceStack;
  /** The allocation's call site when the event names one (kmalloc's `call_site=`). */
  callSite?: Frame;
  /** Slab cache name (kmem_cache_alloc `name=`, kmalloc-N from bytes_alloc). */
  cache?: string;
  pid: number;
  comm: string;
  /** Why this allocation is left out of reports, when it is (counted in `filtered`). */
  excluded?: string;
}

export interface TraceCounters {
  allocs: number;
  frees: number;
  /** Frees of memory allocated before the trace started (or whose allocation was lost). */
  unmatchedFrees: number;
  /** An allocation at an address still marked outstanding: its free was not seen. */
  replaced: number;
  /** Events the kernel dropped (`[LOST N EVENTS]` and per-CPU overruns). */
  lostEvents: number;
  /** `[LOST EVENTS]` markers without a count. */
  lostMarkers: number;
  /** Allocations whose stack record never came. */
  missingStacks: number;
  /** Allocations left out on purpose (not matching --module, pages counted as slab...). */
  filtered: number;
}

/** Ages of a group's outstanding allocations, in seconds before the end of the trace. */
export interface AgeStats {
  oldestSeconds: number;
  newestSeconds: number;
  meanSeconds: number;
}

/** A group of outstanding allocations with the same stack. */
export interface OutstandingGroup extends StackGroup, AgeStats {
  culprit?: Frame;
  module?: string;
  /** Outstanding allocations per kind. */
  kinds: Partial<Record<AllocKind, number>>;
  /** Slab caches of the group's objects, when known. */
  caches: string[];
  /** Tasks that made them (`comm` -> count). */
  comms: Record<string, number>;
}

/** Outstanding allocations under one name (a call site or a module). */
export interface OutstandingRow extends AgeStats {
  name: string;
  weights: Weights;
}

export interface TraceReport {
  /** First and last trace clock seen (seconds). */
  firstTime: number;
  lastTime: number;
  durationSeconds: number;
  counters: TraceCounters;
  /** Every outstanding allocation counts this many times (address sampling, 1 = all). */
  sample: number;
  outstanding: Weights;
  byStack: OutstandingGroup[];
  byCallSite: OutstandingRow[];
  byModule: OutstandingRow[];
}

/** Frames of the tracing machinery itself at the top of a kernel stack. */
const TRACE_FRAME = /^(trace_|__trace_|perf_trace_|__traceiter_|event_trigger|ftrace_|__ftrace_)/;
/**
 * The allocator an event's stack starts in. The culprit is the first frame after it: a
 * kmalloc made *inside* the page allocator (page_owner's own records, 6.12) is
 * page_owner's, not the caller's of alloc_pages, so only the event's own allocator is
 * skipped, not every allocator frame (the shared list in stacks.ts is for whole stacks).
 * Names follow 4.x to 6.18 (`_noprof` from 6.10, `__alloc_frozen_pages` from 6.15).
 */
const SLAB_ENTRY =
  /^(__?kmalloc|kmem_cache_alloc|__kmem_cache_alloc|kmem_cache_zalloc|kzalloc|kcalloc|k?v?realloc|__krealloc|__kvmalloc|kvmalloc|kvzalloc|kvcalloc|slab_alloc|__slab_alloc|___slab_alloc|slab_post_alloc_hook|__do_kmalloc|kmalloc_array|kmalloc_trace|kmalloc_large|kmalloc_order)/;
const PAGE_ENTRY =
  /^(__alloc_pages|alloc_pages|__folio_alloc|folio_alloc|__alloc_frozen_pages|alloc_frozen_pages|get_page_from_freelist|__get_free_pages|get_zeroed_page|alloc_pages_exact|alloc_page_interleave|__alloc_pages_node|alloc_pages_node)/;
/** vmalloc wraps both: the culprit of a vmalloc is its caller, not `__get_vm_area_node`. */
const VMALLOC =
  /^(vmalloc|vzalloc|__vmalloc|vmalloc_|__get_vm_area|get_vm_area|alloc_vmap_area|__alloc_vmap_area|vm_area_alloc_pages|__kvmalloc|kvmalloc|kvzalloc|kvcalloc)/;

/** Drop the tracing machinery's frames from the top of a kernel stack. */
export function trimTraceFrames(frames: Frame[]): Frame[] {
  let i = 0;
  while (i < frames.length && TRACE_FRAME.test(frames[i]!.func)) i++;
  return i === 0 ? frames : frames.slice(i);
}

/**
 * Who made the allocation: the first frame after the event's allocator (slab or page)
 * and vmalloc around it; the first frame when the stack is all allocator.
 */
export function traceCulprit(frames: readonly Frame[]): Frame | undefined {
  let i = 0;
  const entry = frames[0] && SLAB_ENTRY.test(frames[0].func) ? SLAB_ENTRY : PAGE_ENTRY;
  while (i < frames.length && entry.test(frames[i]!.func)) i++;
  while (i < frames.length && VMALLOC.test(frames[i]!.func)) i++;
  return frames[i] ?? frames[0];
}

export interface TrackerOptions {
  /** Resolve a stack's frames at report time (user stacks: addresses to symbols). */
  resolve?: (s: TraceStack) => Frame[];
  /** Culprit of a stack (default: traceCulprit). */
  culprit?: (frames: readonly Frame[]) => Frame | undefined;
  /** Module of a stack (default: the culprit's module, else `vmlinux`). */
  module?: (frames: readonly Frame[], culprit: Frame | undefined) => string;
  /** Keep only allocations whose stack names this module (checked at report time). */
  onlyModule?: string;
}

function emptyCounters(): TraceCounters {
  return {
    allocs: 0,
    frees: 0,
    unmatchedFrees: 0,
    replaced: 0,
    lostEvents: 0,
    lostMarkers: 0,
    missingStacks: 0,
    filtered: 0,
  };
}

/** Pairs allocations and frees by address (or pfn) and reports what is outstanding. */
export class AllocationTracker {
  readonly counters: TraceCounters = emptyCounters();
  private readonly live = new Map<string, TracedAllocation>();
  private readonly stacks = new Map<string, TraceStack>();
  private firstTime = Number.NaN;
  private lastTime = Number.NaN;
  /** Address sampling: every outstanding allocation stands for this many. */
  sample = 1;
  private inSample: ((key: string) => boolean) | undefined;

  constructor(private readonly opts: TrackerOptions = {}) {}

  /** Number of allocations outstanding now. */
  get size(): number {
    return this.live.size;
  }

  /** The shared stack object for a raw stack (one per distinct stack). */
  intern(raw: string, make: () => Omit<TraceStack, 'raw'>): TraceStack {
    let s = this.stacks.get(raw);
    if (!s) {
      s = { raw, ...make() };
      this.stacks.set(raw, s);
    }
    return s;
  }

  /** Note the trace clock (every record, so ages are measured to the last one). */
  tick(time: number): void {
    if (Number.isNaN(this.firstTime) || time < this.firstTime) this.firstTime = time;
    if (Number.isNaN(this.lastTime) || time > this.lastTime) this.lastTime = time;
  }

  alloc(key: string, a: TracedAllocation): void {
    this.tick(a.time);
    // Recorded before the sampling got sparser, delivered after: outside the sample now.
    if (this.inSample && !this.inSample(key)) return;
    this.counters.allocs++;
    if (this.live.has(key)) this.counters.replaced++;
    this.live.set(key, a);
  }

  /** Returns the allocation that was freed, if it was outstanding. */
  free(key: string, time: number): TracedAllocation | undefined {
    this.tick(time);
    this.counters.frees++;
    const a = this.live.get(key);
    if (a === undefined) {
      this.counters.unmatchedFrees++;
      return undefined;
    }
    this.live.delete(key);
    return a;
  }

  /** The outstanding allocation at `key`, if any (munmap of part of a mapping). */
  get(key: string): TracedAllocation | undefined {
    return this.live.get(key);
  }

  lost(events: number | undefined): void {
    if (events === undefined) this.counters.lostMarkers++;
    else this.counters.lostEvents += events;
  }

  /**
   * Sample more sparsely: keep only the outstanding allocations `keep` accepts (they
   * match the new, stricter address sample) and count each as `sample` from now on.
   */
  resample(sample: number, keep: (key: string) => boolean): void {
    this.sample = sample;
    this.inSample = keep;
    for (const k of [...this.live.keys()]) if (!keep(k)) this.live.delete(k);
  }

  /** Outstanding allocations now, grouped. `now` defaults to the last trace time seen. */
  report(now = this.lastTime): TraceReport {
    const resolve = this.opts.resolve ?? rawFrames;
    const culpritOf = this.opts.culprit ?? traceCulprit;
    const moduleOf =
      this.opts.module ?? ((_f: readonly Frame[], c: Frame | undefined) => c?.module ?? 'vmlinux');
    const n = this.sample;
    interface Resolved {
      frames: Frame[];
      key: string;
      culprit?: Frame;
      module: string;
      keep: boolean;
    }
    const byStackObj = new Map<TraceStack, Resolved>();
    const bySite = new Map<string, Resolved>();
    const make = (frames: Frame[], site: Frame | undefined): Resolved => {
      const culprit = culpritOf(frames);
      const only = this.opts.onlyModule;
      const r: Resolved = {
        frames,
        key: stackKey(frames),
        module: moduleOf(frames, culprit),
        keep: only === undefined || frames.some((f) => f.module === only) || site?.module === only,
      };
      if (culprit) r.culprit = culprit;
      return r;
    };
    // One resolution per distinct stack (user stacks are symbolised here, once each).
    const resolveOf = (a: TracedAllocation): Resolved => {
      if (a.stack) {
        let r = byStackObj.get(a.stack);
        if (!r) {
          r = make(resolve(a.stack), a.callSite);
          byStackObj.set(a.stack, r);
        }
        return r;
      }
      const siteKey = a.callSite ? frameKey(a.callSite, true) : '';
      let r = bySite.get(siteKey);
      if (!r) {
        r = make(a.callSite ? [a.callSite] : [], a.callSite);
        bySite.set(siteKey, r);
      }
      return r;
    };

    const agg = new StackAggregator();
    const groups = new Map<string, OutstandingGroup>();
    const ages = new Map<string, { sum: number; min: number; max: number }>();
    const sites = new Map<string, OutstandingRow & { sum: number }>();
    const modules = new Map<string, OutstandingRow & { sum: number }>();
    const total: Weights = { count: 0, bytes: 0, pages: 0 };
    const addRow = (
      map: Map<string, OutstandingRow & { sum: number }>,
      name: string,
      w: Weights,
      age: number,
    ) => {
      let row = map.get(name);
      if (!row) {
        row = {
          name,
          weights: { count: 0, bytes: 0, pages: 0 },
          oldestSeconds: age,
          newestSeconds: age,
          meanSeconds: 0,
          sum: 0,
        };
        map.set(name, row);
      }
      row.weights.count += w.count;
      row.weights.bytes += w.bytes;
      row.weights.pages += w.pages;
      row.oldestSeconds = Math.max(row.oldestSeconds, age);
      row.newestSeconds = Math.min(row.newestSeconds, age);
      row.sum += age * w.count;
    };

    let filtered = 0;
    for (const a of this.live.values()) {
      const r = resolveOf(a);
      if (!r.keep || a.excluded !== undefined) {
        filtered++;
        continue;
      }
      const w: Weights = { count: n, bytes: a.bytes * n, pages: a.pages * n };
      const age = Math.max(0, now - a.time);
      total.count += w.count;
      total.bytes += w.bytes;
      total.pages += w.pages;
      agg.add(r.frames, w);
      let g = groups.get(r.key);
      if (!g) {
        g = {
          key: r.key,
          frames: r.frames,
          weights: { count: 0, bytes: 0, pages: 0 },
          oldestSeconds: 0,
          newestSeconds: 0,
          meanSeconds: 0,
          kinds: {},
          caches: [],
          comms: {},
        };
        if (r.culprit) g.culprit = r.culprit;
        g.module = r.module;
        groups.set(r.key, g);
      }
      g.kinds[a.kind] = (g.kinds[a.kind] ?? 0) + n;
      if (a.cache !== undefined && !g.caches.includes(a.cache)) g.caches.push(a.cache);
      g.comms[a.comm] = (g.comms[a.comm] ?? 0) + n;
      const st = ages.get(r.key);
      if (st) {
        st.sum += age * n;
        st.min = Math.min(st.min, age);
        st.max = Math.max(st.max, age);
      } else ages.set(r.key, { sum: age * n, min: age, max: age });
      const site = a.callSite ? frameKey(a.callSite) : r.culprit ? frameKey(r.culprit) : '[no stack]';
      addRow(sites, site, w, age);
      addRow(modules, r.module, w, age);
    }

    // The weights are the shared aggregator's; the extra fields ride along.
    const byStack: OutstandingGroup[] = [];
    for (const sg of agg.result()) {
      const g = groups.get(sg.key);
      if (!g) continue;
      const st = ages.get(g.key)!;
      g.weights = sg.weights;
      g.oldestSeconds = st.max;
      g.newestSeconds = st.min;
      g.meanSeconds = sg.weights.count ? st.sum / sg.weights.count : 0;
      byStack.push(g);
    }
    const finishRows = (m: Map<string, OutstandingRow & { sum: number }>): OutstandingRow[] =>
      [...m.values()]
        .map(({ sum, ...row }) => ({ ...row, meanSeconds: row.weights.count ? sum / row.weights.count : 0 }))
        .sort(byBytes);
    // No event yet: the trace covers nothing (not the clock's whole range since boot).
    const first = Number.isNaN(this.firstTime) ? (Number.isNaN(now) ? 0 : now) : this.firstTime;
    const last = Number.isNaN(now) ? first : now;
    return {
      firstTime: first,
      lastTime: last,
      durationSeconds: Math.max(0, last - first),
      counters: { ...this.counters, filtered: this.counters.filtered + filtered },
      sample: n,
      outstanding: total,
      byStack: byStack.sort(byBytes),
      byCallSite: finishRows(sites),
      byModule: finishRows(modules),
    };
  }
}

/** A stack's frames, or its raw addresses as `0xADDR` frames when nothing symbolises them. */
export function rawFrames(s: TraceStack): Frame[] {
  return s.frames ?? (s.addresses ?? []).map((a) => ({ func: `0x${a.replace(/^0+(?=.)/, '')}` }));
}

function byBytes(
  a: { weights: Weights; key?: string; name?: string },
  b: { weights: Weights; key?: string; name?: string },
): number {
  const ka = a.key ?? a.name ?? '';
  const kb = b.key ?? b.name ?? '';
  return (
    b.weights.bytes - a.weights.bytes ||
    b.weights.pages - a.weights.pages ||
    b.weights.count - a.weights.count ||
    (ka < kb ? -1 : ka > kb ? 1 : 0)
  );
}
