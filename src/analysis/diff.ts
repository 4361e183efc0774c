import { isMemsleuthError } from '../model/errors.js';
import type { Frame } from '../model/frame.js';
import type { Snapshot } from '../model/snapshot.js';
import { parseAllocinfo } from '../sources/allocinfo.js';
import { parseBuddyinfo } from '../sources/buddyinfo.js';
import { parseMeminfo } from '../sources/meminfo.js';
import { parseSlabinfo, slabCacheBytes } from '../sources/slabinfo.js';
import { parseVmallocinfo } from '../sources/vmallocinfo.js';
import { diffAllocinfo } from './allocinfo.js';
import { groupKmemleakStream } from './kmemleak.js';
import { groupPageOwner, KERNEL_ALLOCATORS } from './page_owner.js';
import { readProcesses } from './process.js';
import { diffSlabCallSites, readSlabCallSites } from './slab.js';
import { culpritFrame, diffGroups, moduleOf, type StackGroup } from './stacks.js';
import { diffVmalloc, vmallocByCaller } from './vmalloc.js';

export const DIFF_SOURCES = [
  'meminfo',
  'slabinfo',
  'buddyinfo',
  'vmallocinfo',
  'processes',
  'page_owner',
  'slab_traces',
  'kmemleak',
  'allocinfo',
] as const;
export type DiffSource = (typeof DIFF_SOURCES)[number];

/** One thing that changed between two snapshots. */
export interface DiffRow {
  source: DiffSource;
  /** What it is: a meminfo field, a cache, `func [module]`, `pid name`, a zone. */
  name: string;
  /** Context: the cache of a slab call site, a tag's file:line, a process's pid. */
  detail?: string;
  module?: string;
  /** The stack behind a stack-carrying row (innermost first). */
  frames?: Frame[];
  /** Bytes before and after (for buddyinfo: free bytes, so the delta is their fall). */
  beforeBytes: number;
  afterBytes: number;
  /** Bytes gained (for buddyinfo: bytes taken from the free lists). */
  deltaBytes: number;
  /** Change of the source's own unit (objects, areas, pages, reports, calls), when it has one. */
  deltaCount?: number;
  countUnit?: string;
}

export interface DiffSourceStatus {
  source: DiffSource;
  /** `compared` when both sides had it; `unreadable` when a file did not parse (reason says where). */
  status: 'compared' | 'missing' | 'unreadable';
  /** Which side(s) lacked it. */
  missingIn?: ('before' | 'after')[];
  reason?: string;
  /** Rows this source contributed (changes only). */
  rows: number;
  /** What was left out on purpose, e.g. page_owner's page cache and anonymous pages. */
  note?: string;
}

export interface SnapshotDiff {
  before: string;
  after: string;
  /** Every change, largest byte gain first (losses last). */
  rows: DiffRow[];
  sources: DiffSourceStatus[];
}

/** Groups of page_owner stacks for one snapshot (pages and bytes per stack). */
export type PageOwnerGrouper = (
  snap: Snapshot,
  pageSizeBytes: number,
) => Promise<{ groups: StackGroup[]; leftOut: number } | undefined>;

/**
 * Group page_owner records by allocation stack (the page_owner helper's groupPageOwner).
 * By default only kernel allocations are kept (slab, vmalloc and the rest, the buddy
 * "black hole"): page cache and anonymous pages are user memory and file cache that
 * meminfo (AnonPages, Cached, Shmem) and the processes already rank; page_owner's job
 * here is the kernel's own allocations, the ones no other counter names. `leftOut`
 * counts the page blocks left out, so the report can say so.
 */
export function pageOwnerGrouper(opts: { allAllocators?: boolean } = {}): PageOwnerGrouper {
  return async (snap, pageSizeBytes) => {
    const stream = await snap.openStream('page_owner');
    if (!stream) return undefined;
    const r = await groupPageOwner(stream, {
      by: 'stack',
      pageSizeBytes,
      file: snap.describe('page_owner'),
      ...(opts.allAllocators ? {} : { allocators: KERNEL_ALLOCATORS }),
    });
    return { groups: r.groups, leftOut: r.records - r.kept };
  };
}

interface Side<T> {
  value?: T;
  reason?: string;
}

async function readSide<T>(snap: Snapshot, path: string, parse: (text: string) => T): Promise<Side<T>> {
  const text = await snap.readText(path);
  if (text === undefined) return { reason: snap.whyMissing(path) ?? 'not present' };
  return { value: parse(text) };
}

function frameName(f: Frame | undefined): string {
  return f ? (f.module ? `${f.func} [${f.module}]` : f.func) : '<no stack>';
}

const MEMINFO_FREE = new Set(['MemFree', 'MemAvailable', 'SwapFree']);
const MEMINFO_SKIP = new Set([
  'MemTotal',
  'SwapTotal',
  'VmallocTotal',
  'CommitLimit',
  'Hugepagesize',
  'Hugetlb',
]);

/**
 * Compare two snapshots over every source both have, ranked into one list by bytes
 * gained. Sources missing on one side are reported in `sources`, never fatal.
 */
export async function diffSnapshots(
  before: Snapshot,
  after: Snapshot,
  opts: {
    /** How to group page_owner (default: kernel allocations by stack); false skips it. */
    pageOwner?: PageOwnerGrouper | false;
    processes?: boolean;
    sources?: readonly DiffSource[];
  } = {},
): Promise<SnapshotDiff> {
  const pageSize = (await after.manifest()).pageSizeBytes || (await before.manifest()).pageSizeBytes || 4096;
  const wanted = new Set(opts.sources ?? DIFF_SOURCES);
  const rows: DiffRow[] = [];
  const statuses: DiffSourceStatus[] = [];

  const compare = async <T>(
    source: DiffSource,
    read: (s: Snapshot) => Promise<Side<T>>,
    toRows: (b: T, a: T) => DiffRow[],
  ): Promise<void> => {
    if (!wanted.has(source)) return;
    let b: Side<T>;
    let a: Side<T>;
    try {
      [b, a] = [await read(before), await read(after)];
    } catch (e) {
      // A malformed file spoils its own source, not the whole diff: named with file and line.
      if (!isMemsleuthError(e) || e.code !== 'PARSE') throw e;
      statuses.push({ source, status: 'unreadable', reason: e.message, rows: 0 });
      return;
    }
    if (b.value === undefined || a.value === undefined) {
      const missingIn: ('before' | 'after')[] = [];
      if (b.value === undefined) missingIn.push('before');
      if (a.value === undefined) missingIn.push('after');
      statuses.push({
        source,
        status: 'missing',
        missingIn,
        reason:
          b.reason !== undefined && b.reason === a.reason
            ? b.reason
            : [b.reason && `before: ${b.reason}`, a.reason && `after: ${a.reason}`]
                .filter(Boolean)
                .join('; '),
        rows: 0,
      });
      return;
    }
    const r = toRows(b.value, a.value).filter((x) => x.deltaBytes !== 0 || (x.deltaCount ?? 0) !== 0);
    rows.push(...r);
    statuses.push({ source, status: 'compared', rows: r.length });
  };

  await compare(
    'meminfo',
    (s) => readSide(s, 'meminfo', (t) => parseMeminfo(t, { file: s.describe('meminfo') }).bytes),
    (b, a) => {
      const out: DiffRow[] = [];
      for (const name of new Set([...Object.keys(b), ...Object.keys(a)])) {
        if (MEMINFO_SKIP.has(name) || name.startsWith('DirectMap')) continue;
        const vb = b[name] ?? 0;
        const va = a[name] ?? 0;
        // Free counters gain when memory is returned: their fall is what was taken.
        if (MEMINFO_FREE.has(name))
          out.push({
            source: 'meminfo',
            name: `${name} fall`,
            beforeBytes: vb,
            afterBytes: va,
            deltaBytes: vb - va,
          });
        else out.push({ source: 'meminfo', name, beforeBytes: vb, afterBytes: va, deltaBytes: va - vb });
      }
      return out;
    },
  );

  await compare(
    'slabinfo',
    (s) => readSide(s, 'slabinfo', (t) => parseSlabinfo(t, { file: s.describe('slabinfo') }).caches),
    (b, a) => {
      const bytes = (caches: typeof b) =>
        new Map(
          caches.map((c) => [c.name, { bytes: slabCacheBytes(c, pageSize).slabBytes, objs: c.activeObjs }]),
        );
      const mb = bytes(b);
      const ma = bytes(a);
      return [...new Set([...mb.keys(), ...ma.keys()])].map((name) => {
        const vb = mb.get(name) ?? { bytes: 0, objs: 0 };
        const va = ma.get(name) ?? { bytes: 0, objs: 0 };
        return {
          source: 'slabinfo' as const,
          name,
          beforeBytes: vb.bytes,
          afterBytes: va.bytes,
          deltaBytes: va.bytes - vb.bytes,
          deltaCount: va.objs - vb.objs,
          countUnit: 'objects',
        };
      });
    },
  );

  await compare(
    'buddyinfo',
    (s) => readSide(s, 'buddyinfo', (t) => parseBuddyinfo(t, { file: s.describe('buddyinfo') }).zones),
    (b, a) => {
      // Free pages that left the buddy free lists are memory someone took: a fall in
      // free is a gain for this row.
      const free = (zones: typeof b) => new Map(zones.map((z) => [`node${z.node}/${z.zone}`, z.freePages]));
      const fb = free(b);
      const fa = free(a);
      return [...new Set([...fb.keys(), ...fa.keys()])].map((zone) => {
        const pb = fb.get(zone) ?? 0;
        const pa = fa.get(zone) ?? 0;
        return {
          source: 'buddyinfo' as const,
          name: `${zone} taken from free`,
          // before/after: free bytes; the delta is what left the free lists
          beforeBytes: pb * pageSize,
          afterBytes: pa * pageSize,
          deltaBytes: (pb - pa) * pageSize,
          deltaCount: pb - pa,
          countUnit: 'pages',
        };
      });
    },
  );

  await compare(
    'vmallocinfo',
    (s) =>
      readSide(s, 'vmallocinfo', (t) =>
        vmallocByCaller(parseVmallocinfo(t, { file: s.describe('vmallocinfo') }).areas, pageSize),
      ),
    (b, a) =>
      diffVmalloc(b, a).map((d) => {
        const row: DiffRow = {
          source: 'vmallocinfo',
          name: d.key,
          beforeBytes: d.before.bytes,
          afterBytes: d.after.bytes,
          deltaBytes: d.deltaBytes,
          deltaCount: d.deltaAreas,
          countUnit: 'areas',
        };
        if (d.module) row.module = d.module;
        if (d.caller) row.frames = [d.caller];
        return row;
      }),
  );

  if (opts.processes !== false) {
    await compare(
      'processes',
      async (s) => {
        const pids = await s.pids();
        if (pids.length === 0) return { reason: 'no proc/<pid> files' };
        return { value: (await readProcesses(s, { withSmaps: false })).processes };
      },
      (b, a) => {
        // A process is the same one when pid, name and (when known) start time agree.
        const key = (p: (typeof b)[number]) => `${p.pid}:${p.name}:${p.startTimeTicks ?? ''}`;
        const size = (p: (typeof b)[number]) => p.pssBytes ?? p.rssBytes;
        const mb = new Map(b.map((p) => [key(p), p]));
        const ma = new Map(a.map((p) => [key(p), p]));
        return [...new Set([...mb.keys(), ...ma.keys()])].map((k) => {
          const pb = mb.get(k);
          const pa = ma.get(k);
          const p = (pa ?? pb)!;
          const vb = pb ? size(pb) : 0;
          const va = pa ? size(pa) : 0;
          return {
            source: 'processes' as const,
            name: `${p.pid} ${p.name}`,
            detail: pa?.pssBytes !== undefined || pb?.pssBytes !== undefined ? 'PSS' : 'RSS',
            beforeBytes: vb,
            afterBytes: va,
            deltaBytes: va - vb,
          };
        });
      },
    );
  }

  const pageOwner = opts.pageOwner === undefined ? pageOwnerGrouper() : opts.pageOwner;
  if (pageOwner) {
    const leftOut: number[] = [];
    await compare(
      'page_owner',
      async (s) => {
        const r = await pageOwner(s, pageSize);
        if (!r) return { reason: s.whyMissing('page_owner') ?? 'not present' };
        leftOut.push(r.leftOut);
        return { value: r.groups };
      },
      (b, a) =>
        diffGroups(b, a, 'bytes').map((d) => {
          const culprit = culpritFrame(d.frames);
          const row: DiffRow = {
            source: 'page_owner',
            name: frameName(culprit),
            beforeBytes: d.before.bytes,
            afterBytes: d.after.bytes,
            deltaBytes: d.delta.bytes,
            deltaCount: d.delta.pages,
            countUnit: 'pages',
            frames: d.frames,
          };
          const m = moduleOf(d.frames);
          if (m) row.module = m;
          return row;
        }),
    );
    const st = statuses.find((x) => x.source === 'page_owner');
    if (st?.status === 'compared' && (leftOut[0] || leftOut[1]))
      st.note = `page cache and anonymous page blocks left out: ${leftOut[0]} before, ${leftOut[1]} after`;
  }

  await compare(
    'slab_traces',
    async (s) => {
      const files = await s.slabTraceFiles();
      if (files.size === 0) return { reason: 'no slab/<cache>.alloc_traces or alloc_calls' };
      return { value: (await readSlabCallSites(s)).sites };
    },
    (b, a) =>
      diffSlabCallSites(b, a).map((d) => {
        const row: DiffRow = {
          source: 'slab_traces',
          name: d.caller ? frameName(d.caller) : '<not-available>',
          detail: d.cache,
          beforeBytes: d.before.bytes,
          afterBytes: d.after.bytes,
          deltaBytes: d.delta.bytes,
          deltaCount: d.delta.count,
          countUnit: 'objects',
          frames: d.frames,
        };
        if (d.caller?.module) row.module = d.caller.module;
        return row;
      }),
  );

  await compare(
    'kmemleak',
    async (s) => {
      const stream = await s.openStream('kmemleak');
      if (!stream) return { reason: s.whyMissing('kmemleak') ?? 'not present' };
      return {
        value: (await groupKmemleakStream(stream, 'backtrace', { file: s.describe('kmemleak') })).groups,
      };
    },
    (b, a) => {
      const extra = new Map([...b, ...a].map((g) => [g.key, g]));
      return diffGroups(b, a, 'bytes').map((d) => {
        const g = extra.get(d.key);
        const row: DiffRow = {
          source: 'kmemleak',
          name: frameName(g?.culprit),
          beforeBytes: d.before.bytes,
          afterBytes: d.after.bytes,
          deltaBytes: d.delta.bytes,
          deltaCount: d.delta.count,
          countUnit: 'reports',
          frames: d.frames,
        };
        if (g?.module) row.module = g.module;
        return row;
      });
    },
  );

  await compare(
    'allocinfo',
    (s) => readSide(s, 'allocinfo', (t) => parseAllocinfo(t, { file: s.describe('allocinfo') }).tags),
    (b, a) =>
      diffAllocinfo(b, a).map((d) => {
        const row: DiffRow = {
          source: 'allocinfo',
          name: d.module ? `${d.func} [${d.module}]` : d.func,
          detail: `${d.sourceFile}:${d.sourceLine}`,
          beforeBytes: d.before.bytes,
          afterBytes: d.after.bytes,
          deltaBytes: d.deltaBytes,
          deltaCount: d.deltaCalls,
          countUnit: 'calls',
        };
        if (d.module) row.module = d.module;
        return row;
      }),
  );

  rows.sort(
    (x, y) =>
      y.deltaBytes - x.deltaBytes ||
      (x.source < y.source ? -1 : x.source > y.source ? 1 : 0) ||
      (x.name < y.name ? -1 : x.name > y.name ? 1 : 0),
  );
  return { before: before.origin, after: after.origin, rows, sources: statuses };
}

/** Rows of one source, in ranking order. */
export function rowsOf(diff: SnapshotDiff, source: DiffSource): DiffRow[] {
  return diff.rows.filter((r) => r.source === source);
}
