import { MemsleuthError } from '../model/errors.js';
import { type Frame, FrameLines, stackKey } from '../model/frame.js';
import type { SlabTraceKind, Snapshot } from '../model/snapshot.js';
import type { CallstackBlock } from '../sources/callstack_blocks.js';
import { type SlabTraceLocation, SlabTraceReader } from '../sources/slab_traces.js';
import { parseSlabinfo, type SlabCache, slabCacheBytes } from '../sources/slabinfo.js';
import { feedChunks, type ParseSettings } from '../sources/text.js';
import { F64SmallBlocks, U32SmallBlocks } from './intern.js';
import {
  diffGroups,
  FrameTable,
  type GroupDelta,
  InternedStackGroup,
  type StackGroup,
  StackTable,
  selectTop,
} from './stacks.js';

/** Just the parse settings of an options object. */
const parseOf = (o: ParseSettings): ParseSettings => ({
  ...(o.lenient !== undefined ? { lenient: o.lenient } : {}),
  ...(o.onWarning ? { onWarning: o.onWarning } : {}),
});

/** slabtop's sort keys (`slabtop -s`), by letter and by name. */
export const SLAB_SORT_KEYS = {
  a: 'active',
  b: 'objs-per-slab',
  c: 'cache-size',
  l: 'slabs',
  v: 'active-slabs',
  n: 'name',
  o: 'objects',
  p: 'pages-per-slab',
  s: 'object-size',
  u: 'use',
} as const;
export type SlabSortKey = (typeof SLAB_SORT_KEYS)[keyof typeof SLAB_SORT_KEYS];

export function parseSlabSortKey(value: string): SlabSortKey {
  const byLetter = (SLAB_SORT_KEYS as Record<string, SlabSortKey>)[value];
  if (byLetter) return byLetter;
  const names = Object.values(SLAB_SORT_KEYS) as string[];
  if (names.includes(value)) return value as SlabSortKey;
  throw new MemsleuthError('USAGE', `--sort: unknown key ${JSON.stringify(value)}`, {
    hint: `one of ${names.join(', ')} (or slabtop's letters ${Object.keys(SLAB_SORT_KEYS).join('')})`,
  });
}

export interface SlabTopRow {
  name: string;
  activeObjs: number;
  numObjs: number;
  objSizeBytes: number;
  objPerSlab: number;
  pagesPerSlab: number;
  activeSlabs: number;
  numSlabs: number;
  /** Bytes of the cache's slabs (num_slabs x pages per slab x page size). */
  cacheBytes: number;
  /** Bytes of the active objects (active_objs x objsize). */
  activeBytes: number;
  /** active / total objects, percent. */
  usePercent: number;
  /** From slab/<cache>.reclaim_account (1: counted in SReclaimable); undefined when not captured. */
  reclaimable: boolean | undefined;
}

export interface SlabTop {
  rows: SlabTopRow[];
  totals: {
    caches: number;
    activeObjs: number;
    numObjs: number;
    activeSlabs: number;
    numSlabs: number;
    cacheBytes: number;
    activeBytes: number;
  };
  reclaimKnown: boolean;
  sortBy: SlabSortKey;
}

function sortValue(r: SlabTopRow, key: SlabSortKey): number | string {
  switch (key) {
    case 'active':
      return r.activeObjs;
    case 'objs-per-slab':
      return r.objPerSlab;
    case 'cache-size':
      return r.cacheBytes;
    case 'slabs':
      return r.numSlabs;
    case 'active-slabs':
      return r.activeSlabs;
    case 'name':
      return r.name;
    case 'objects':
      return r.numObjs;
    case 'pages-per-slab':
      return r.pagesPerSlab;
    case 'object-size':
      return r.objSizeBytes;
    case 'use':
      return r.usePercent;
  }
}

async function readSlabinfo(snap: Snapshot): Promise<SlabCache[] | undefined> {
  const text = await snap.readText('slabinfo');
  if (text === undefined) return undefined;
  return parseSlabinfo(text, { file: snap.describe('slabinfo') }).caches;
}

/**
 * slabtop's view of one slabinfo, sorted like `slabtop -s <key>` (largest first, names A-Z).
 * `reclaimable` gives each cache's SLAB_RECLAIM_ACCOUNT flag where the snapshot has it.
 */
export function slabTop(
  caches: readonly SlabCache[],
  pageSize: number,
  reclaimable: ReadonlyMap<string, boolean>,
  opts: { sortBy?: SlabSortKey } = {},
): SlabTop {
  const sortBy = opts.sortBy ?? 'cache-size';
  let reclaimKnown = false;
  const rows: SlabTopRow[] = [];
  for (const c of caches) {
    const flag = reclaimable.get(c.name);
    if (flag !== undefined) reclaimKnown = true;
    const { slabBytes, objectBytes } = slabCacheBytes(c, pageSize);
    rows.push({
      name: c.name,
      activeObjs: c.activeObjs,
      numObjs: c.numObjs,
      objSizeBytes: c.objSizeBytes,
      objPerSlab: c.objPerSlab,
      pagesPerSlab: c.pagesPerSlab,
      activeSlabs: c.activeSlabs,
      numSlabs: c.numSlabs,
      cacheBytes: slabBytes,
      activeBytes: objectBytes,
      usePercent: c.numObjs ? (c.activeObjs / c.numObjs) * 100 : 0,
      reclaimable: flag,
    });
  }
  rows.sort((a, b) => {
    const va = sortValue(a, sortBy);
    const vb = sortValue(b, sortBy);
    if (typeof va === 'string' || typeof vb === 'string') return String(va).localeCompare(String(vb));
    return vb - va || a.name.localeCompare(b.name);
  });
  const sum = (f: (r: SlabTopRow) => number) => rows.reduce((s, r) => s + f(r), 0);
  return {
    rows,
    totals: {
      caches: rows.length,
      activeObjs: sum((r) => r.activeObjs),
      numObjs: sum((r) => r.numObjs),
      activeSlabs: sum((r) => r.activeSlabs),
      numSlabs: sum((r) => r.numSlabs),
      cacheBytes: sum((r) => r.cacheBytes),
      activeBytes: sum((r) => r.activeBytes),
    },
    reclaimKnown,
    sortBy,
  };
}

/** One call site (and stack, 5.19+) of one cache. */
export interface SlabCallSite {
  cache: string;
  /** The call site the kernel printed; undefined for `<not-available>`. */
  caller?: Frame;
  /** Full stack when the kernel printed it, else just the call site. */
  frames: Frame[];
  /** Live objects allocated here (alloc_traces/alloc_calls count). */
  outstanding: number;
  /** Bytes of those objects (count x the cache's object size). */
  bytes: number;
  /** Live objects whose slot was last freed at this same call site (free listing). */
  freedHere?: number;
  wasteBytes?: number;
  ageMinJiffies: number;
  ageMaxJiffies: number;
  pidMin: number;
  pidMax: number;
  /** Which file it came from. */
  kind: SlabTraceKind;
}

export interface SlabTracesResult {
  sites: SlabCallSite[];
  /** Caches that had trace files. */
  caches: string[];
  /** Caches whose listing said `No data`. */
  noData: string[];
  hasStacks: boolean;
}

/** Object size per cache from slabinfo, else from a kmalloc-N name. */
function objectSizeFor(cache: string, sizes: Map<string, number>): number {
  const known = sizes.get(cache);
  if (known !== undefined) return known;
  const m = /^kmalloc-(?:[a-z]+-)*(\d+)(k?)$/.exec(cache);
  return m ? Number(m[1]) * (m[2] ? 1024 : 1) : 0;
}

/** Key of a call site across snapshots: cache, then the stack (offsets ignored). */
export function slabSiteKey(site: Pick<SlabCallSite, 'cache' | 'frames'>): string {
  return `${site.cache}:${site.frames.length ? stackKey(site.frames) : '<not-available>'}`;
}

/**
 * The call sites of slab listings as rows of columns, each built as a SlabCallSite when asked
 * (a snapshot with a hundred thousand call sites that prints twenty builds twenty). A site's
 * frames are a stack of a StackTable that keeps offsets apart, so they come back as listed.
 */
export class SlabSiteTable {
  private readonly stacks = new StackTable(new FrameTable(), true);
  /** By cache index: name, listing kind, object size. */
  private readonly cacheNames: string[] = [];
  private readonly cacheKinds: SlabTraceKind[] = [];
  private readonly cacheSizes: number[] = [];
  // By site.
  private readonly cache = new U32SmallBlocks();
  private readonly stack = new U32SmallBlocks();
  /** Frame id + 1 of the call site, 0 for `<not-available>`. */
  private readonly caller = new U32SmallBlocks();
  private readonly count = new F64SmallBlocks();
  private readonly ageMin = new F64SmallBlocks();
  private readonly ageMax = new F64SmallBlocks();
  private readonly pidMin = new F64SmallBlocks();
  private readonly pidMax = new F64SmallBlocks();
  /** NaN: not known. */
  private readonly freed = new F64SmallBlocks();
  private readonly waste = new F64SmallBlocks();

  get size(): number {
    return this.cache.length;
  }

  /** Bytes of every site's live objects. */
  get bytes(): number {
    let sum = 0;
    for (let i = 0; i < this.size; i++) sum += this.bytesAt(i);
    return sum;
  }

  private bytesAt(i: number): number {
    return this.count.get(i) * this.cacheSizes[this.cache.get(i)]!;
  }

  /** A cache whose sites follow (addSite), its index. */
  addCache(name: string, kind: SlabTraceKind, objSize: number): number {
    this.cacheNames.push(name);
    this.cacheKinds.push(kind);
    this.cacheSizes.push(objSize);
    return this.cacheNames.length - 1;
  }

  /** A location of cache `c`'s listing (its stack frames are the scanner's own copies). */
  addSite(c: number, l: SlabTraceLocation): void {
    const ft = this.stacks.frames;
    const callerId = l.caller ? ft.intern(l.caller) : -1;
    const caller = callerId < 0 ? undefined : ft.frames[callerId]!;
    const id = l.stack
      ? this.stacks.internFrames(l.stack, true)
      : this.stacks.internFrames(caller ? [caller] : []);
    this.cache.push(c);
    this.stack.push(id);
    this.caller.push(callerId + 1);
    this.count.push(l.count);
    this.ageMin.push(l.ageMinJiffies);
    this.ageMax.push(l.ageMaxJiffies);
    this.pidMin.push(l.pidMin);
    this.pidMax.push(l.pidMax);
    this.freed.push(Number.NaN);
    this.waste.push(l.wasteBytes ?? Number.NaN);
  }

  /** Sites `from..size-1` (a cache's): objects whose slot was last freed by their call site. */
  setFreed(from: number, freedByCaller: ReadonlyMap<string, number>): void {
    // A caller's key, stackKey([caller]), is its frame's match key in the table: not built again.
    const ft = this.stacks.frames;
    for (let i = from; i < this.size; i++) {
      const caller = this.caller.get(i);
      const freed = caller === 0 ? undefined : freedByCaller.get(ft.keys[ft.keyOf(caller - 1)]!);
      if (freed !== undefined) this.freed.set(i, freed);
    }
  }

  /** Site `i`, built. */
  site(i: number): SlabCallSite {
    const c = this.cache.get(i);
    const site: SlabCallSite = {
      cache: this.cacheNames[c]!,
      frames: this.stacks.framesOf(this.stack.get(i)),
      outstanding: this.count.get(i),
      bytes: this.bytesAt(i),
      ageMinJiffies: this.ageMin.get(i),
      ageMaxJiffies: this.ageMax.get(i),
      pidMin: this.pidMin.get(i),
      pidMax: this.pidMax.get(i),
      kind: this.cacheKinds[c]!,
    };
    const caller = this.caller.get(i);
    if (caller !== 0) {
      site.caller = this.stacks.frames.frames[caller - 1]!;
      const freed = this.freed.get(i);
      if (!Number.isNaN(freed)) site.freedHere = freed;
    }
    const waste = this.waste.get(i);
    if (!Number.isNaN(waste)) site.wasteBytes = waste;
    return site;
  }

  /** Every site, in listing order (caches by name). */
  all(): SlabCallSite[] {
    const out: SlabCallSite[] = new Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.site(i);
    return out;
  }

  /** The first `limit` sites by bytes, then objects, then listing order; built. */
  top(limit: number): SlabCallSite[] {
    const before = (a: number, b: number): boolean => {
      const d = this.bytesAt(b) - this.bytesAt(a) || this.count.get(b) - this.count.get(a);
      return d !== 0 ? d < 0 : a < b;
    };
    return selectTop(this.size, limit, before).map((i) => this.site(i));
  }
}

/**
 * A listing fed to `reader` in pieces: from the file in whole lines where the snapshot reads
 * files (one reused buffer), else from its stream. False when the snapshot does not have it.
 */
async function readListing(snap: Snapshot, path: string, reader: SlabTraceReader): Promise<boolean> {
  if (snap.readLines) return snap.readLines(path, (t) => reader.text(t));
  const input = await snap.openStream(path);
  if (input === undefined) return false;
  await feedChunks(input, reader);
  return true;
}

/** The call sites of a snapshot's slab listings, as a table, and what the listings said. */
export interface SlabSiteListing {
  table: SlabSiteTable;
  /** Caches that had trace files. */
  caches: string[];
  /** Caches whose listing said `No data`. */
  noData: string[];
  hasStacks: boolean;
}

/**
 * Live objects per call site, from every cache with trace files (or one cache).
 * `outstanding` is the alloc listing's count: SLUB counts only allocated objects in
 * both listings (see sources/slab_traces.ts), so subtracting the free listing would
 * be wrong; `freedHere` reports it beside for sites that appear in both.
 */
export async function readSlabCallSites(
  snap: Snapshot,
  opts: { cache?: string } & ParseSettings = {},
): Promise<SlabTracesResult> {
  const { table, ...rest } = await readSlabSiteTable(snap, opts);
  return { sites: table.all(), ...rest };
}

/** readSlabCallSites with the sites left in their table (built when asked). */
export async function readSlabSiteTable(
  snap: Snapshot,
  opts: { cache?: string } & ParseSettings = {},
): Promise<SlabSiteListing> {
  const files = await snap.slabTraceFiles();
  const sizes = new Map<string, number>();
  const caches = await readSlabinfo(snap).catch(() => undefined);
  for (const c of caches ?? []) sizes.set(c.name, c.objSizeBytes);
  const result: SlabSiteListing = { table: new SlabSiteTable(), caches: [], noData: [], hasStacks: false };
  // Every distinct frame line parsed once, across caches (their stacks share most frames).
  const lines = new FrameLines();
  const names = [...files.keys()].sort();
  if (opts.cache !== undefined && !files.has(opts.cache)) {
    throw new MemsleuthError(
      'UNAVAILABLE',
      `${snap.describe(`slab/${opts.cache}.alloc_traces`)}: no trace files for cache ${JSON.stringify(opts.cache)}`,
      {
        hint: names.length
          ? `caches with traces: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''}`
          : 'boot with slub_debug=U (or slub_debug=U,<cache>) and mount debugfs to get alloc_traces',
      },
    );
  }
  for (const cache of names) {
    if (opts.cache !== undefined && cache !== opts.cache) continue;
    const kinds = files.get(cache)!;
    const allocKind: SlabTraceKind | undefined = kinds.has('alloc_traces')
      ? 'alloc_traces'
      : kinds.has('alloc_calls')
        ? 'alloc_calls'
        : undefined;
    if (!allocKind) continue;
    const freeKind: SlabTraceKind = allocKind === 'alloc_traces' ? 'free_traces' : 'free_calls';
    const path = `slab/${cache}.${allocKind}`;
    // Read in pieces: a listing of a hundred thousand stacks is tens of MB, never needed whole.
    let c = -1;
    const first = result.table.size;
    const reader = new SlabTraceReader(
      { ...parseOf(opts), file: snap.describe(path) },
      (l) => {
        if (c < 0) c = result.table.addCache(cache, allocKind, objectSizeFor(cache, sizes));
        result.table.addSite(c, l);
      },
      lines,
    );
    if (!(await readListing(snap, path, reader))) continue;
    result.caches.push(cache);
    const alloc = reader.end();
    if (kinds.has(freeKind)) {
      const fpath = `slab/${cache}.${freeKind}`;
      const freedByCaller = new Map<string, number>();
      const freeReader = new SlabTraceReader(
        { ...parseOf(opts), file: snap.describe(fpath) },
        (l) => {
          if (!l.caller) return;
          const k = stackKey([l.caller]);
          freedByCaller.set(k, (freedByCaller.get(k) ?? 0) + l.count);
        },
        lines,
      );
      if (await readListing(snap, fpath, freeReader)) {
        freeReader.end();
        result.table.setFreed(first, freedByCaller);
      }
    }
    if (alloc.noData) result.noData.push(cache);
    if (alloc.hasStacks) result.hasStacks = true;
  }
  return result;
}

/**
 * Call sites as stack groups (key: cache + stack), merging entries the kernel lists
 * separately for the same stack (different waste per object).
 */
export function slabSiteGroups(sites: readonly SlabCallSite[]): StackGroup[] {
  const stacks = new StackTable();
  const map = new Map<string, StackGroup>();
  for (const s of sites) {
    // Stacks interned once: the map is keyed by cache and stack id, not by stack text.
    const id = stacks.internFrames(s.frames);
    const k = `${s.cache}\u0000${id}`;
    let g = map.get(k);
    if (!g) {
      g = new InternedStackGroup(stacks, id, { count: 0, bytes: 0, pages: 0 }, s.frames, {
        keyPrefix: `${s.cache}:`,
        emptyKey: '<not-available>',
      });
      map.set(k, g);
    }
    g.weights.count += s.outstanding;
    g.weights.bytes += s.bytes;
  }
  return [...map.values()];
}

export interface SlabSiteDelta extends GroupDelta {
  cache: string;
  caller?: Frame;
}

/** Per call site change between two snapshots, largest byte gain first. */
export function diffSlabCallSites(
  before: readonly SlabCallSite[],
  after: readonly SlabCallSite[],
): SlabSiteDelta[] {
  const info = new Map<string, { cache: string; caller?: Frame }>();
  for (const s of [...before, ...after]) {
    const k = slabSiteKey(s);
    if (!info.has(k)) info.set(k, s.caller ? { cache: s.cache, caller: s.caller } : { cache: s.cache });
  }
  return diffGroups(slabSiteGroups(before), slabSiteGroups(after), 'bytes').map((d) => ({
    ...d,
    ...info.get(d.key)!,
  }));
}

/**
 * Blocks of a "count + call trace" dump (vendor /proc/slabtrace, page_owner_sort output)
 * as stack groups: key = optional cache label + stack; count, bytes and pages summed.
 */
export function callstackGroups(blocks: readonly CallstackBlock[]): StackGroup[] {
  const stacks = new StackTable();
  const map = new Map<string, StackGroup>();
  for (const b of blocks) {
    const cache = b.labels.cache ?? b.labels.name ?? b.labels.slab;
    const id = stacks.internFrames(b.frames);
    const k = `${cache ?? ''}\u0000${id}`;
    let g = map.get(k);
    if (!g) {
      g = new InternedStackGroup(
        stacks,
        id,
        { count: 0, bytes: 0, pages: 0 },
        b.frames,
        cache ? { keyPrefix: `${cache}:` } : {},
      );
      map.set(k, g);
    }
    g.weights.count += b.count;
    g.weights.bytes += b.bytes ?? 0;
    g.weights.pages += b.pages ?? 0;
  }
  return [...map.values()];
}

/** Compare two count + call trace dumps, largest count gain first (bytes when every block has them). */
export function diffCallstackDumps(
  before: readonly CallstackBlock[],
  after: readonly CallstackBlock[],
): GroupDelta[] {
  const withBytes = [...before, ...after].every((b) => b.bytes !== undefined);
  return diffGroups(callstackGroups(before), callstackGroups(after), withBytes ? 'bytes' : 'count');
}
