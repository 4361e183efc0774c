import { diffSlabCallSites, readSlabCallSites, type SlabCallSite } from '../../analysis/slab.js';
import { callerName } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import type { DiffRow, SourceEntry } from '../types.js';

export interface SlabTracesSection {
  sites: number;
  caches: number;
  /** Call sites by outstanding bytes. */
  top: {
    cache: string;
    site: string;
    module?: string;
    objects: number;
    bytes: number;
    shareOfCache?: number;
  }[];
}

declare module '../types.js' {
  interface ReportSections {
    slabTraces?: SlabTracesSection;
  }
}

const MiB = 1024 * 1024;

/**
 * Outstanding objects per slab call site: debugfs slab/<cache>/alloc_traces (5.14+) or sysfs
 * alloc_calls (<= 5.13), on caches with user tracking (slub_debug=U).
 */
export const slabTraces: SourceEntry<SlabCallSite[]> = {
  name: 'slab_traces',
  location: sourceLocation('slab_traces'),
  title: 'outstanding slab objects per call site (slub_debug=U alloc_traces / alloc_calls)',
  command: 'slab traces',
  async load(snap) {
    const files = await snap.slabTraceFiles();
    if (files.size === 0) return undefined;
    return (await readSlabCallSites(snap)).sites;
  },
  absentReason: () => 'no slab/<cache>.alloc_traces or alloc_calls',

  async report(sites, ctx) {
    const active = new Map(
      (await ctx.data.get('slabinfo').catch(() => undefined))?.caches.map((c) => [c.name, c.activeObjs]),
    );
    // Stacks differ below the call site (who called it): the report counts per cache and site.
    const by = new Map<string, SlabTracesSection['top'][number]>();
    for (const x of sites) {
      const site = x.caller ? callerName(x.caller) : '<not-available>';
      const key = `${x.cache}\0${site}`;
      let row = by.get(key);
      if (!row) {
        row = { cache: x.cache, site, objects: 0, bytes: 0 };
        if (x.caller?.module) row.module = x.caller.module;
        by.set(key, row);
      }
      row.objects += x.outstanding;
      row.bytes += x.bytes;
    }
    const rows = [...by.values()].sort((a, b) => b.bytes - a.bytes || b.objects - a.objects);
    // Share of the cache's live objects. slabinfo and the trace files are read at different
    // moments, and merged caches share one listing: never less than the sites' own sum.
    const traced = new Map<string, number>();
    for (const r of rows) traced.set(r.cache, (traced.get(r.cache) ?? 0) + r.objects);
    for (const row of rows) {
      const all = Math.max(active.get(row.cache) ?? 0, traced.get(row.cache) ?? 0);
      if (all > 0) row.shareOfCache = row.objects / all;
    }
    return {
      slabTraces: {
        sites: rows.length,
        caches: new Set(rows.map((r) => r.cache)).size,
        top: rows.slice(0, ctx.top),
      },
    };
  },

  findings(ctx) {
    const t = ctx.report.slabTraces;
    const total = ctx.report.accounting?.memTotalBytes;
    if (!t || total === undefined) return [];
    // One call site owning most of a big cache is the picture of a slab leak.
    return t.top
      .filter((r) => (r.shareOfCache ?? 0) >= 0.5 && (r.bytes >= total * 0.01 || r.bytes >= 16 * MiB))
      .map((r) => ({
        severity: 'warning' as const,
        title: `${r.site} holds ${((r.shareOfCache ?? 0) * 100).toFixed(0)}% of ${r.cache} (${r.objects} objects, ${formatBytes(r.bytes)})`,
        detail:
          'One call site owns most of the live objects of a large slab cache: the usual shape of a slab leak at that site.',
        next: [
          `memsleuth slab traces --cache ${r.cache} --stacks SNAPSHOT`,
          'a later snapshot: memsleuth diff BEFORE AFTER --source slab_traces',
        ],
      }));
  },

  tables(r) {
    const t = r.slabTraces;
    if (!t) return [];
    return [
      {
        source: 'slab_traces',
        title: `Slab call sites by live bytes (${t.sites} sites in ${t.caches} caches with user tracking)`,
        columns: [
          { header: 'OBJECTS', align: 'right' },
          { header: 'BYTES', align: 'right' },
          { header: 'OF CACHE', align: 'right' },
          { header: 'CACHE', max: 22 },
          { header: 'CALL SITE', max: 44 },
        ],
        rows: t.top.map((x) => [
          String(x.objects),
          formatBytes(x.bytes),
          x.shareOfCache === undefined ? '-' : `${(x.shareOfCache * 100).toFixed(0)}%`,
          x.cache,
          x.site,
        ]),
      },
    ];
  },

  diff(b, a) {
    return {
      rows: diffSlabCallSites(b, a).map((d) => {
        const row: DiffRow = {
          source: 'slab_traces',
          name: d.caller ? callerName(d.caller) : '<not-available>',
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
    };
  },
};
