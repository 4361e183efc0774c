import { MemsleuthError } from '../model/errors.js';
import { type Frame, stackKey } from '../model/frame.js';
import type { SlabTraceKind, Snapshot } from '../model/snapshot.js';
import type { CallstackBlock } from '../sources/callstack_blocks.js';
import { parseSlabTraces, type SlabTraceLocation } from '../sources/slab_traces.js';
import { parseSlabinfo, type SlabCache, slabCacheBytes } from '../sources/slabinfo.js';
import type { ParseSettings } from '../sources/text.js';
import {
  diffGroups,
  FrameTable,
  type GroupDelta,
  InternedStackGroup,
  type StackGroup,
  StackTable,
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
 * Live objects per call site, from every cache with trace files (or one cache).
 * `outstanding` is the alloc listing's count: SLUB counts only allocated objects in
 * both listings (see sources/slab_traces.ts), so subtracting the free listing would
 * be wrong; `freedHere` reports it beside for sites that appear in both.
 */
export async function readSlabCallSites(
  snap: Snapshot,
  opts: { cache?: string } & ParseSettings = {},
): Promise<SlabTracesResult> {
  const files = await snap.slabTraceFiles();
  const sizes = new Map<string, number>();
  const caches = await readSlabinfo(snap).catch(() => undefined);
  for (const c of caches ?? []) sizes.set(c.name, c.objSizeBytes);
  const result: SlabTracesResult = { sites: [], caches: [], noData: [], hasStacks: false };
  // Every distinct frame once, its strings its own: a site keeps the table's frames, not the
  // parsed ones, which are views of the cache's listing and would keep all of it alive.
  const frames = new FrameTable();
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
    const text = await snap.readText(path);
    if (text === undefined) continue;
    result.caches.push(cache);
    const alloc = parseSlabTraces(text, { ...parseOf(opts), file: snap.describe(path) });
    if (alloc.noData) result.noData.push(cache);
    if (alloc.hasStacks) result.hasStacks = true;
    const freedByCaller = new Map<string, number>();
    if (kinds.has(freeKind)) {
      const fpath = `slab/${cache}.${freeKind}`;
      const ftext = await snap.readText(fpath);
      if (ftext !== undefined) {
        for (const l of parseSlabTraces(ftext, { ...parseOf(opts), file: snap.describe(fpath) }).locations) {
          if (!l.caller) continue;
          const k = stackKey([l.caller]);
          freedByCaller.set(k, (freedByCaller.get(k) ?? 0) + l.count);
        }
      }
    }
    const objSize = objectSizeFor(cache, sizes);
    for (const l of alloc.locations)
      result.sites.push(toSite(cache, l, allocKind, objSize, freedByCaller, frames));
  }
  return result;
}

function toSite(
  cache: string,
  l: SlabTraceLocation,
  kind: SlabTraceKind,
  objSize: number,
  freedByCaller: Map<string, number>,
  table: FrameTable,
): SlabCallSite {
  const caller = l.caller ? table.frameOf(l.caller) : undefined;
  const frames = l.stack ? l.stack.map((f) => table.frameOf(f)) : caller ? [caller] : [];
  const site: SlabCallSite = {
    cache,
    frames,
    outstanding: l.count,
    bytes: l.count * objSize,
    ageMinJiffies: l.ageMinJiffies,
    ageMaxJiffies: l.ageMaxJiffies,
    pidMin: l.pidMin,
    pidMax: l.pidMax,
    kind,
  };
  if (caller) {
    site.caller = caller;
    const freed = freedByCaller.get(stackKey([caller]));
    if (freed !== undefined) site.freedHere = freed;
  }
  if (l.wasteBytes !== undefined) site.wasteBytes = l.wasteBytes;
  return site;
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
