import { type Snapshot, slabTracePath, sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { parseSlabinfo, type Slabinfo, slabCacheBytes } from '../../sources/slabinfo.js';
import { FamilyBuilder, nonEmpty } from '../families.js';
import {
  type DiffRow,
  type MetricFamilyDoc,
  type SourceEntry,
  tablesDue,
  wantsNodeFamily,
} from '../types.js';
import { readParsed } from './read.js';

export interface SlabRow {
  name: string;
  activeObjs: number;
  numObjs: number;
  objSizeBytes: number;
  /** activeObjs × objSize: what the objects use. */
  objectBytes: number;
  /** numSlabs × pagesPerSlab × page size: what the cache holds from the page allocator. */
  slabBytes: number;
  /** From /sys/kernel/slab/<cache>/reclaim_account; undefined when not captured. */
  reclaimable: boolean | undefined;
}

declare module '../types.js' {
  interface ReportSections {
    slab?: { caches: SlabRow[]; cacheCount: number; totalSlabBytes: number; reclaimKnown: boolean };
  }
}

/** A cache's SLAB_RECLAIM_ACCOUNT flag (counted in SReclaimable), or undefined when not captured. */
export async function reclaimAccount(snap: Snapshot, cache: string): Promise<boolean | undefined> {
  const ra = await snap.readText(slabTracePath(cache, 'reclaim_account'));
  return ra === undefined ? undefined : ra.trim() === '1';
}

/** SLAB_RECLAIM_ACCOUNT of each cache the snapshot has the flag for. */
export async function reclaimFlags(snap: Snapshot, caches: readonly string[]): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  for (const c of caches) {
    const flag = await reclaimAccount(snap, c);
    if (flag !== undefined) out.set(c, flag);
  }
  return out;
}

/** Caches the kernel accounts as reclaimable, for the recording's meta (leaks tells them apart). */
export async function reclaimableSlabCaches(snap: Snapshot): Promise<string[]> {
  const slab = await readParsed(snap, 'slabinfo', parseSlabinfo).catch(() => undefined);
  const out: string[] = [];
  for (const c of slab?.caches ?? []) if ((await reclaimAccount(snap, c.name)) === true) out.push(c.name);
  return out;
}

/** collector/slabinfo_linux.go: five gauges per cache, labelled `slab`. */
type SlabField = 'activeObjs' | 'numObjs' | 'objSizeBytes' | 'objPerSlab' | 'pagesPerSlab';
const NODE_SLABINFO: readonly (MetricFamilyDoc & { field: SlabField })[] = (
  [
    {
      name: 'node_slabinfo_active_objects',
      help: 'The number of objects that are currently active (i.e., in use).',
      field: 'activeObjs',
    },
    {
      name: 'node_slabinfo_objects',
      help: 'The total number of allocated objects (i.e., objects that are both in use and not in use).',
      field: 'numObjs',
    },
    {
      name: 'node_slabinfo_object_size_bytes',
      help: 'The size of objects in this slab, in bytes.',
      field: 'objSizeBytes',
    },
    {
      name: 'node_slabinfo_objects_per_slab',
      help: 'The number of objects stored in each slab.',
      field: 'objPerSlab',
    },
    {
      name: 'node_slabinfo_pages_per_slab',
      help: 'The number of pages allocated for each slab.',
      field: 'pagesPerSlab',
    },
  ] as const
).map((f) => ({
  ...f,
  type: 'gauge' as const,
  labels: ['slab'],
  cardinality: 'one per slab cache (slabinfo lines: 100-300 with SLUB merging)',
}));

const SLAB_BYTES: MetricFamilyDoc = {
  name: 'memsleuth_slab_bytes',
  help: 'Bytes of slab pages each cache holds from the page allocator (num_slabs × pages_per_slab × page size).',
  type: 'gauge',
  labels: ['slab'],
  cardinality: 'one per slab cache (slabinfo lines: 100-300 with SLUB merging)',
};
const SLAB_RECLAIMABLE: MetricFamilyDoc = {
  name: 'memsleuth_slab_reclaimable',
  help: 'Present (1) for caches the kernel counts in SReclaimable (SLAB_RECLAIM_ACCOUNT, /sys/kernel/slab/<cache>/reclaim_account).',
  type: 'gauge',
  labels: ['slab'],
  cardinality: 'the reclaimable caches only (about 20)',
};

/** /proc/slabinfo: every slab cache's objects and the pages it holds. */
export const slabinfo: SourceEntry<Slabinfo> = {
  name: 'slabinfo',
  location: sourceLocation('slabinfo'),
  title: 'slab caches (/proc/slabinfo)',
  command: 'slab top',
  load: (snap, options) => readParsed(snap, 'slabinfo', parseSlabinfo, options),
  recognise: (head) => /^slabinfo - version: \d/.test(head),

  async report(slab, ctx) {
    const rows: SlabRow[] = [];
    const flags = await reclaimFlags(
      ctx.snap,
      slab.caches.map((c) => c.name),
    );
    const reclaimKnown = flags.size > 0;
    for (const c of slab.caches) {
      const { objectBytes, slabBytes } = slabCacheBytes(c, ctx.pageSizeBytes);
      const reclaimable = flags.get(c.name);
      rows.push({
        name: c.name,
        activeObjs: c.activeObjs,
        numObjs: c.numObjs,
        objSizeBytes: c.objSizeBytes,
        objectBytes,
        slabBytes,
        reclaimable,
      });
    }
    rows.sort((a, b) => b.slabBytes - a.slabBytes || (a.name < b.name ? -1 : 1));
    return {
      slab: {
        caches: rows.slice(0, ctx.top),
        cacheCount: rows.length,
        totalSlabBytes: rows.reduce((s, r) => s + r.slabBytes, 0),
        reclaimKnown,
      },
    };
  },

  tables(r) {
    const sl = r.slab;
    if (!sl) return [];
    return [
      {
        source: 'slabinfo',
        title: `Top slab caches by memory (${sl.cacheCount} caches, ${formatBytes(sl.totalSlabBytes)} in slabs)`,
        columns: [
          { header: 'CACHE', max: 28 },
          { header: 'SLABS', align: 'right' },
          { header: 'OBJECTS', align: 'right' },
          { header: 'ACTIVE', align: 'right' },
          { header: 'TOTAL', align: 'right' },
          { header: 'OBJSIZE', align: 'right' },
          { header: 'RECLAIM' },
        ],
        rows: sl.caches.map((x) => [
          x.name,
          formatBytes(x.slabBytes),
          formatBytes(x.objectBytes),
          String(x.activeObjs),
          String(x.numObjs),
          String(x.objSizeBytes),
          x.reclaimable === undefined ? '?' : x.reclaimable ? 'yes' : 'no',
        ]),
        notes: sl.reclaimKnown ? [] : ['RECLAIM ?: this snapshot has no /sys/kernel/slab/*/reclaim_account'],
      },
    ];
  },

  diff(b, a, ctx) {
    const bytes = (s: Slabinfo) =>
      new Map(
        s.caches.map((c) => [
          c.name,
          { bytes: slabCacheBytes(c, ctx.pageSizeBytes).slabBytes, objs: c.activeObjs },
        ]),
      );
    const mb = bytes(b);
    const ma = bytes(a);
    const rows: DiffRow[] = [...new Set([...mb.keys(), ...ma.keys()])].map((name) => {
      const vb = mb.get(name) ?? { bytes: 0, objs: 0 };
      const va = ma.get(name) ?? { bytes: 0, objs: 0 };
      return {
        source: 'slabinfo',
        name,
        beforeBytes: vb.bytes,
        afterBytes: va.bytes,
        deltaBytes: va.bytes - vb.bytes,
        deltaCount: va.objs - vb.objs,
        countUnit: 'objects',
      };
    });
    return { rows };
  },

  layers: ['slab'],
  async sample(_snap, ctx) {
    if (!tablesDue(ctx)) return [];
    const slab = await ctx.data.get('slabinfo');
    if (!slab) throw new Error('unreadable (root needed)');
    return slab.caches.map((c) => ({
      layer: 'slab' as const,
      key: c.name,
      values: { bytes: slabCacheBytes(c, ctx.pageSizeBytes).slabBytes, active_objs: c.activeObjs },
    }));
  },

  metrics: {
    families: [...NODE_SLABINFO, SLAB_BYTES, SLAB_RECLAIMABLE],
    async collect(slab, ctx) {
      const node = NODE_SLABINFO.map((d) => ({ d, f: FamilyBuilder.of(d) }));
      const bytes = FamilyBuilder.of(SLAB_BYTES);
      const reclaimable = FamilyBuilder.of(SLAB_RECLAIMABLE);
      const withNode = wantsNodeFamily(ctx.options, 'slabinfo');
      // The flag is fixed for a cache's life: read once per cache and origin, not every scrape.
      ctx.state.reclaim ??= new Map<string, boolean | undefined>();
      const flags = ctx.state.reclaim as Map<string, boolean | undefined>;
      for (const c of slab.caches) {
        if (withNode) for (const { d, f } of node) f.add([c.name], c[d.field]);
        bytes.add([c.name], slabCacheBytes(c, ctx.pageSizeBytes).slabBytes);
        const key = `${ctx.snap.origin}\0${c.name}`;
        if (!flags.has(key)) flags.set(key, await reclaimAccount(ctx.snap, c.name));
        if (flags.get(key) === true) reclaimable.add([c.name], 1);
      }
      return nonEmpty(...node.map((n) => n.f), bytes, reclaimable);
    },
    recording: [
      { selector: 'memsleuth_slab_bytes', layer: 'slab', key: (l) => l.slab, metric: () => 'bytes' },
      {
        // Not an entity: which caches `leaks` counts as reclaimable growth rather than a leak.
        selector: 'memsleuth_slab_reclaimable',
        layer: 'slab',
        key: () => undefined,
        metric: () => undefined,
        meta: (sets) => ({
          slab_reclaimable: JSON.stringify([...new Set(sets.map((l) => l.slab).filter(Boolean))].sort()),
        }),
      },
    ],
  },
};
