/**
 * Allocations paired with frees, from a trace (kmem tracepoints, uprobes on malloc):
 * what is still outstanding at the end, grouped by stack, call site and module with
 * bytes, count and age. The groups are the StackGroups of page_owner and kmemleak, so
 * top, diff and the flame-graph exports work on traces unchanged.
 *
 * Memory is bounded by the allocations outstanding and the distinct stacks, not by the
 * length of the trace: a free removes its allocation, and stacks are interned once in a
 * StackTable (frames in a table, a stack a run of frame ids), an allocation holding its id.
 */
import { type Frame, frameKey, ownString } from '../model/frame.js';
import { F64SmallBlocks, U8Blocks, U32SmallBlocks } from './intern.js';
import {
  InternedStackGroup,
  StackAggregator,
  type StackGroup,
  StackTable,
  selectTop,
  type Weights,
} from './stacks.js';

/** Where an allocation came from. */
export type AllocKind = 'kmalloc' | 'kmem_cache' | 'pages' | 'malloc' | 'calloc' | 'realloc' | 'mmap';

/**
 * A stack as the trace gave it, handed to `resolve` when a report is made. User stacks
 * arrive as addresses and are symbolised once per stack and report.
 */
export interface TraceStack {
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
  /**
   * Its stack's id in the tracker's table (internStack, internAddresses), filled when the
   * stack record arrives (it follows the event).
   */
  stackId?: number;
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
  /**
   * Stacks that differ only in offsets are kept apart (their first frames shown as seen);
   * reports group them by `func [module]` either way.
   */
  stackOffsets?: boolean;
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
  /** Every distinct stack once: an allocation holds its id. */
  readonly stacks: StackTable;
  /** By stack id: 1 when its frames are user addresses (internAddresses). */
  private readonly addressStack = new U8Blocks();
  /**
   * Stacks as reports group them (`func [module]`, user stacks symbolised): the tracker's own
   * table when that is how it keys them, else one kept across reports, so the groups of two
   * reports of one trace are matched by id.
   */
  private groupTable: StackTable | undefined;
  /** Task and cache names, one copy each (see ownText). */
  private readonly texts = new Map<string, string>();
  private firstTime = Number.NaN;
  private lastTime = Number.NaN;
  /** Address sampling: every outstanding allocation stands for this many. */
  sample = 1;
  private inSample: ((key: string) => boolean) | undefined;

  constructor(private readonly opts: TrackerOptions = {}) {
    this.stacks = new StackTable(undefined, opts.stackOffsets ?? false);
  }

  /** Number of allocations outstanding now. */
  get size(): number {
    return this.live.size;
  }

  /**
   * The tracker's one copy of a name. A task or cache name parsed from a line is a view of the
   * text it was read from when it is 13 characters or more (V8's sliced strings): kept by an
   * outstanding allocation it would keep that whole chunk of the trace alive.
   */
  private ownText(s: string): string {
    let t = this.texts.get(s);
    if (t === undefined) {
      t = ownString(s);
      this.texts.set(t, t);
    }
    return t;
  }

  /**
   * The id of a kernel stack (frames innermost first), added when new. `owned`: its frames are
   * copies of their own, kept as they are (a trace parser's; see FrameTable.intern).
   */
  internStack(frames: readonly Frame[], owned = false): number {
    return this.stacks.internFrames(frames, owned);
  }

  /** The tracker's copy of a frame (a call site): one object per distinct frame, shared. */
  internFrame(f: Frame): Frame {
    return this.stacks.frames.frameOf(f);
  }

  /** The id of a user stack (hex return addresses, innermost first), added when new. */
  internAddresses(addresses: readonly string[]): number {
    const frames: Frame[] = new Array(addresses.length);
    for (let i = 0; i < addresses.length; i++) {
      const a = addresses[i]!;
      frames[i] = { func: `0x${a.replace(/^0+(?=.)/, '')}`, address: a };
    }
    const id = this.stacks.internFrames(frames);
    while (this.addressStack.length <= id) this.addressStack.push(0);
    this.addressStack.set(id, 1);
    return id;
  }

  /** Stack `id` as `resolve` takes it: its frames, or a user stack's addresses. */
  traceStack(id: number): TraceStack {
    const frames = this.stacks.framesOf(id);
    if (id >= this.addressStack.length || this.addressStack.get(id) !== 1) return { frames };
    return { addresses: frames.map((f) => f.address ?? f.func.replace(/^0x/, '')) };
  }

  /** Number of distinct stacks interned. */
  get stackCount(): number {
    return this.stacks.size;
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
    a.comm = this.ownText(a.comm);
    if (a.cache !== undefined) a.cache = this.ownText(a.cache);
    this.counters.allocs++;
    if (this.live.has(key)) this.counters.replaced++;
    // A key made from a parsed address (`s:${ptr}`) holds a view of the text it was read from.
    else key = ownString(key);
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

  /**
   * Outstanding allocations now, grouped. `now` defaults to the last trace time seen.
   * `opts.stacks`: how many of the heaviest stack groups to build (default all): a report of a
   * hundred thousand stacks that prints twenty builds twenty, the rest stay weights in columns
   * (byStack then holds those first ones only).
   */
  report(now = this.lastTime, opts: { stacks?: number } = {}): TraceReport {
    const resolve = this.opts.resolve;
    const culpritOf = this.opts.culprit ?? traceCulprit;
    const moduleOf =
      this.opts.module ?? ((_f: readonly Frame[], c: Frame | undefined) => c?.module ?? 'vmlinux');
    const only = this.opts.onlyModule;
    const n = this.sample;
    // Groups are stacks keyed by `func [module]`: the tracker's own ids when it keys them so and
    // nothing resolves them, else ids of a table of their (resolved) frames.
    const own = resolve === undefined && !this.stacks.withOffsets;
    if (!own && this.groupTable === undefined)
      this.groupTable = new StackTable(resolve === undefined ? this.stacks.frames : undefined, false);
    const table = own ? this.stacks : this.groupTable!;
    const frames = table.frames;
    // By the tracker's stack id: its group's stack id in `table` (-1: not met yet). User stacks
    // are symbolised here, once each.
    const groupOf = new Int32Array(this.stacks.size).fill(-1);
    const bySite = new Map<string, number>();
    // By group stack id, worked out once: 0 not yet, 1 kept, 2 left out by --module; the
    // culprit's frame id + 1 (0: none); the module's index in `modules`.
    const state = new U8Blocks();
    const culpritCol = new U32SmallBlocks();
    const moduleCol = new U32SmallBlocks();
    const modules: string[] = [];
    const moduleIds = new Map<string, number>();
    const learn = (g: number, site: Frame | undefined): void => {
      while (state.length <= g) state.push(0);
      culpritCol.ensure(g + 1);
      moduleCol.ensure(g + 1);
      const fr = table.framesOf(g);
      const culprit = culpritOf(fr);
      const m = moduleOf(fr, culprit);
      let mid = moduleIds.get(m);
      if (mid === undefined) {
        mid = modules.length;
        modules.push(m);
        moduleIds.set(m, mid);
      }
      if (culprit) culpritCol.set(g, frames.intern(culprit) + 1);
      moduleCol.set(g, mid);
      const keep = only === undefined || fr.some((f) => f.module === only) || site?.module === only;
      state.set(g, keep ? 1 : 2);
    };
    /** The table's group stack id of an allocation (a stack, or its call site alone). */
    const groupStack = (a: TracedAllocation): number => {
      if (a.stackId !== undefined) {
        let g = groupOf[a.stackId]!;
        if (g < 0) {
          g = own
            ? a.stackId
            : table.internFrames(
                resolve ? resolve(this.traceStack(a.stackId)) : this.stacks.framesOf(a.stackId),
              );
          groupOf[a.stackId] = g;
        }
        return g;
      }
      // No stack: the call site the event named, alone, or nothing.
      const siteKey = a.callSite ? frameKey(a.callSite, true) : '';
      let sg = bySite.get(siteKey);
      if (sg === undefined) {
        sg = table.internFrames(a.callSite ? [a.callSite] : []);
        bySite.set(siteKey, sg);
      }
      return sg;
    };

    const agg = new StackAggregator(table);
    // By the aggregator's group index: ages (sum of age times count, least, greatest).
    const ageSum = new F64SmallBlocks();
    const ageMin = new F64SmallBlocks();
    const ageMax = new F64SmallBlocks();
    const sites = new Map<string, OutstandingRow & { sum: number }>();
    const moduleRows = new Map<string, OutstandingRow & { sum: number }>();
    const total: Weights = { count: 0, bytes: 0, pages: 0 };
    const addRow = (
      map: Map<string, OutstandingRow & { sum: number }>,
      name: string,
      count: number,
      bytes: number,
      pages: number,
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
      row.weights.count += count;
      row.weights.bytes += bytes;
      row.weights.pages += pages;
      row.oldestSeconds = Math.max(row.oldestSeconds, age);
      row.newestSeconds = Math.min(row.newestSeconds, age);
      row.sum += age * count;
    };

    let filtered = 0;
    for (const a of this.live.values()) {
      const g = groupStack(a);
      if (g >= state.length || state.get(g) === 0) learn(g, a.callSite);
      if (state.get(g) !== 1 || a.excluded !== undefined) {
        filtered++;
        continue;
      }
      const count = n;
      const bytes = a.bytes * n;
      const pages = a.pages * n;
      const age = Math.max(0, now - a.time);
      total.count += count;
      total.bytes += bytes;
      total.pages += pages;
      const before = agg.size;
      agg.addStack(g, count, bytes, pages);
      const gi = agg.indexOf(g);
      if (agg.size > before) {
        ageSum.push(0);
        ageMin.push(age);
        ageMax.push(age);
      }
      ageSum.add(gi, age * n);
      if (age < ageMin.get(gi)) ageMin.set(gi, age);
      if (age > ageMax.get(gi)) ageMax.set(gi, age);
      const c = culpritCol.get(g);
      // The call-site row of an allocation that names none: its culprit's key (`func [module]`).
      const site = a.callSite
        ? frameKey(a.callSite)
        : c === 0
          ? '[no stack]'
          : frames.keys[frames.keyOf(c - 1)]!;
      addRow(sites, site, count, bytes, pages, age);
      addRow(moduleRows, modules[moduleCol.get(g)]!, count, bytes, pages, age);
    }

    // Heaviest first; ties in the order of their keys, compared without spelling them.
    const heavier = (a: number, b: number): boolean => {
      const d =
        agg.weightAt(b, 'bytes') - agg.weightAt(a, 'bytes') ||
        agg.weightAt(b, 'pages') - agg.weightAt(a, 'pages') ||
        agg.weightAt(b, 'count') - agg.weightAt(a, 'count');
      return d !== 0 ? d < 0 : table.compareKeys(agg.stackAt(a), agg.stackAt(b)) < 0;
    };
    const chosen = selectTop(agg.size, opts.stacks ?? Infinity, heavier);
    // What rides along with the weights of the groups built: a second pass over the
    // outstanding allocations, for those groups only.
    const at = new Int32Array(agg.size).fill(-1);
    chosen.forEach((gi, k) => {
      at[gi] = k;
    });
    const extra: GroupExtra[] = chosen.map(() => ({
      kinds: {},
      caches: [],
      // Tasks in a dictionary of its own: as properties added one by one, thousands of task
      // names would give V8 a hidden class for every order they came in.
      comms: Object.create(null),
    }));
    if (chosen.length > 0)
      for (const a of this.live.values()) {
        const g = groupStack(a);
        if (state.get(g) !== 1 || a.excluded !== undefined) continue;
        const k = at[agg.indexOf(g)]!;
        if (k < 0) continue;
        const x = extra[k]!;
        x.kinds[a.kind] = (x.kinds[a.kind] ?? 0) + n;
        if (a.cache !== undefined && !x.caches.includes(a.cache)) x.caches.push(a.cache);
        x.comms[a.comm] = (x.comms[a.comm] ?? 0) + n;
      }
    const byStack = chosen.map((gi, k) => {
      const id = agg.stackAt(gi);
      const w: Weights = {
        count: agg.weightAt(gi, 'count'),
        bytes: agg.weightAt(gi, 'bytes'),
        pages: agg.weightAt(gi, 'pages'),
      };
      const c = culpritCol.get(id);
      return new OutstandingStackGroup(table, id, w, extra[k]!, {
        oldest: ageMax.get(gi),
        newest: ageMin.get(gi),
        mean: w.count ? ageSum.get(gi) / w.count : 0,
        culprit: c === 0 ? undefined : frames.frames[c - 1]!,
        module: modules[moduleCol.get(id)]!,
      });
    });
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
      byStack,
      byCallSite: finishRows(sites),
      byModule: finishRows(moduleRows),
    };
  }
}

/** What a group gathers beside its weights (for the groups built). */
interface GroupExtra {
  kinds: Partial<Record<AllocKind, number>>;
  caches: string[];
  comms: Record<string, number>;
}

/** A group's ages and who it is. */
interface GroupFacts {
  oldest: number;
  newest: number;
  mean: number;
  culprit: Frame | undefined;
  module: string;
}

/** An OutstandingGroup whose stack lives in a StackTable (its key spelled when asked). */
class OutstandingStackGroup extends InternedStackGroup implements OutstandingGroup {
  readonly oldestSeconds: number;
  readonly newestSeconds: number;
  readonly meanSeconds: number;
  readonly kinds: Partial<Record<AllocKind, number>>;
  readonly caches: string[];
  readonly comms: Record<string, number>;
  readonly culprit?: Frame;
  readonly module: string;
  constructor(table: StackTable, stackId: number, w: Weights, x: GroupExtra, f: GroupFacts) {
    super(table, stackId, w);
    this.oldestSeconds = f.oldest;
    this.newestSeconds = f.newest;
    this.meanSeconds = f.mean;
    this.kinds = x.kinds;
    this.caches = x.caches;
    this.comms = x.comms;
    if (f.culprit) this.culprit = f.culprit;
    this.module = f.module;
  }
  override toJSON(): OutstandingGroup {
    const g: OutstandingGroup = {
      ...super.toJSON(),
      oldestSeconds: this.oldestSeconds,
      newestSeconds: this.newestSeconds,
      meanSeconds: this.meanSeconds,
      kinds: this.kinds,
      caches: this.caches,
      comms: this.comms,
    };
    if (this.culprit) g.culprit = this.culprit;
    g.module = this.module;
    return g;
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
