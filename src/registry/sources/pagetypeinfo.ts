import { sourceLocation } from '../../model/snapshot.js';
import { formatBytes, formatPercent } from '../../model/units.js';
import { freePagesOf } from '../../sources/buddyinfo.js';
import { type Pagetypeinfo, parsePagetypeinfo } from '../../sources/pagetypeinfo.js';
import { FamilyBuilder, nonEmpty } from '../families.js';
import type { DiffRow, Finding, MetricFamilyDoc, SourceEntry } from '../types.js';
import { readParsed } from './read.js';

/**
 * /proc/pagetypeinfo: the buddy free lists split by migrate type, and how many page blocks
 * (2^pageBlockOrder pages, the unit of anti-fragmentation and of a huge page) each type
 * owns. Why it matters: the page allocator keeps unmovable kernel allocations (slab, page
 * tables, driver buffers) in Unmovable blocks so that Movable blocks (user pages, page cache)
 * can be compacted into huge pages. When unmovable allocations run out of their own blocks
 * they steal Movable ones ("fallback"), and a block with one pinned page can never be freed
 * whole: the Unmovable and Reclaimable block counts creeping up is long-term fragmentation,
 * the reason THP and order >= 3 allocations start failing on a machine with free memory.
 */

/** One migrate type of one zone. */
export interface PagetypeRow {
  type: string;
  /** Free blocks per order. */
  freeBlocks: number[];
  freePages: number;
  freeBytes: number;
  /** Page blocks of this type (Number of blocks type). */
  pageBlocks: number;
  /** Page blocks of this type holding pages of another type (page_owner=on kernels only). */
  mixedBlocks?: number;
  /** Orders whose count the kernel capped at 100000 (5.4+): the real count is larger. */
  cappedOrders?: number[];
}

export interface PagetypeZone {
  node: number;
  zone: string;
  types: PagetypeRow[];
  freeBytes: number;
  /** Free bytes in blocks of order >= 3 (PAGE_ALLOC_COSTLY_ORDER): what costly allocations can get. */
  costlyFreeBytes: number;
  /** Free bytes in blocks of at least a page block (a huge page on x86). */
  pageBlockFreeBytes: number;
  /** Page blocks in the zone. */
  pageBlocks: number;
  /** Page blocks owned by Unmovable and Reclaimable: memory compaction cannot empty. */
  unmovableBlocks: number;
}

export interface PagetypeSection {
  pageBlockOrder: number;
  pagesPerBlock: number;
  pageBlockBytes: number;
  zones: PagetypeZone[];
  /** True when the kernel printed mixed-block counts (page_owner=on). */
  hasMixed: boolean;
}

declare module '../types.js' {
  interface ReportSections {
    pagetypes?: PagetypeSection;
  }
}

/** PAGE_ALLOC_COSTLY_ORDER (include/linux/mmzone.h): above it the allocator may fail rather than retry. */
const COSTLY_ORDER = 3;
const UNMOVABLE_TYPES = new Set(['Unmovable', 'Reclaimable']);
const MiB = 1024 * 1024;

/** The report's view of pagetypeinfo: per zone and migrate type, free memory and page blocks. */
export function pagetypeSection(p: Pagetypeinfo, pageSizeBytes: number): PagetypeSection {
  const zones: PagetypeZone[] = [];
  const zoneKey = (node: number, zone: string) => `${node}/${zone}`;
  const byZone = new Map<string, PagetypeZone>();
  const blockCounts = new Map(p.blocks.map((b) => [zoneKey(b.node, b.zone), b.counts]));
  const mixedCounts = new Map((p.mixedBlocks ?? []).map((b) => [zoneKey(b.node, b.zone), b.counts]));
  for (const f of p.free) {
    const key = zoneKey(f.node, f.zone);
    let z = byZone.get(key);
    if (!z) {
      const counts = blockCounts.get(key) ?? {};
      z = {
        node: f.node,
        zone: f.zone,
        types: [],
        freeBytes: 0,
        costlyFreeBytes: 0,
        pageBlockFreeBytes: 0,
        pageBlocks: Object.values(counts).reduce((s, n) => s + n, 0),
        unmovableBlocks: Object.entries(counts)
          .filter(([t]) => UNMOVABLE_TYPES.has(t))
          .reduce((s, [, n]) => s + n, 0),
      };
      byZone.set(key, z);
      zones.push(z);
    }
    const freePages = freePagesOf(f.freeBlocks);
    const row: PagetypeRow = {
      type: f.type,
      freeBlocks: f.freeBlocks,
      freePages,
      freeBytes: freePages * pageSizeBytes,
      pageBlocks: blockCounts.get(key)?.[f.type] ?? 0,
    };
    const mixed = mixedCounts.get(key)?.[f.type];
    if (mixed !== undefined) row.mixedBlocks = mixed;
    if (f.cappedOrders) row.cappedOrders = f.cappedOrders;
    z.types.push(row);
    z.freeBytes += row.freeBytes;
    f.freeBlocks.forEach((n, order) => {
      const bytes = n * 2 ** order * pageSizeBytes;
      if (order >= COSTLY_ORDER) z.costlyFreeBytes += bytes;
      if (order >= p.pageBlockOrder) z.pageBlockFreeBytes += bytes;
    });
  }
  return {
    pageBlockOrder: p.pageBlockOrder,
    pagesPerBlock: p.pagesPerBlock,
    pageBlockBytes: p.pagesPerBlock * pageSizeBytes,
    zones,
    hasMixed: p.mixedBlocks !== undefined,
  };
}

const PAGETYPE_FREE: MetricFamilyDoc = {
  name: 'memsleuth_pagetype_free_bytes',
  help: 'Free memory in the buddy allocator by zone and migrate type (/proc/pagetypeinfo, read with --pagetypeinfo).',
  type: 'gauge',
  labels: ['node', 'zone', 'type'],
  cardinality: 'zones × migrate types (about 6 per zone)',
};
const PAGETYPE_BLOCKS: MetricFamilyDoc = {
  name: 'memsleuth_pagetype_blocks',
  help: 'Page blocks owned by each migrate type, by zone: Unmovable and Reclaimable creeping up is long-term fragmentation.',
  type: 'gauge',
  labels: ['node', 'zone', 'type'],
  cardinality: 'zones × migrate types (about 6 per zone)',
};

export const pagetypeinfo: SourceEntry<Pagetypeinfo> = {
  name: 'pagetypeinfo',
  location: sourceLocation('pagetypeinfo'),
  title: 'free blocks per migrate type and page blocks per type (/proc/pagetypeinfo)',
  command: 'report',
  load: (snap) => readParsed(snap, 'pagetypeinfo', parsePagetypeinfo),
  recognise: (head) => /^Page block order: \d+\s*$/m.test(head),

  report: (p, ctx) => ({ pagetypes: pagetypeSection(p, ctx.pageSizeBytes) }),

  findings(ctx) {
    const s = ctx.report.pagetypes;
    if (!s) return [];
    const out: Finding[] = [];
    for (const z of s.zones) {
      if (z.pageBlocks === 0) continue;
      const share = z.unmovableBlocks / z.pageBlocks;
      const zoneBytes = z.pageBlocks * s.pageBlockBytes;
      // A few percent of Unmovable blocks is normal (the kernel's own memory); a quarter or
      // more of a sizeable zone means unmovable allocations have spread through it.
      if (share >= 0.25 && zoneBytes >= 512 * MiB) {
        out.push({
          severity: 'warning',
          title: `Node ${z.node} zone ${z.zone}: ${formatPercent(share * 100)} of page blocks are Unmovable or Reclaimable`,
          detail:
            `${z.unmovableBlocks} of ${z.pageBlocks} page blocks (${formatBytes(s.pageBlockBytes)} each) hold kernel allocations that compaction cannot move: ` +
            'huge pages and other high-order allocations can only come from the rest. Steady growth of this count is long-term fragmentation, often a slab or driver leak spreading into Movable blocks.',
          next: [
            'memsleuth diff BEFORE AFTER --source pagetypeinfo  (is the count growing?)',
            'memsleuth slab top SNAPSHOT and memsleuth report: which kernel layer grows',
          ],
        });
      }
      // Plenty free, nothing a huge page could come from.
      if (z.freeBytes >= 16 * s.pageBlockBytes && z.pageBlockFreeBytes === 0) {
        out.push({
          severity: 'info',
          title: `Node ${z.node} zone ${z.zone}: ${formatBytes(z.freeBytes)} free but no free block of ${formatBytes(s.pageBlockBytes)}`,
          detail: `Free memory is split into blocks smaller than a page block (order ${s.pageBlockOrder}): transparent huge pages and large contiguous allocations need compaction first (${formatBytes(z.costlyFreeBytes)} is in blocks of order ${COSTLY_ORDER} or more).`,
          next: [
            'grep -E "compact_(stall|fail|success)" /proc/vmstat',
            'echo 1 > /proc/sys/vm/compact_memory  (if you decide to compact)',
          ],
        });
      }
    }
    return out;
  },

  tables(r) {
    const s = r.pagetypes;
    if (!s) return [];
    const maxOrder = Math.max(0, ...s.zones.flatMap((z) => z.types.map((t) => t.freeBlocks.length)));
    const orders = Array.from({ length: maxOrder }, (_, i) => i);
    const rows: string[][] = [];
    for (const z of s.zones)
      for (const t of z.types) {
        if (t.freePages === 0 && t.pageBlocks === 0) continue;
        const row = [
          `${z.node}/${z.zone}`,
          t.type,
          ...orders.map((o) => `${t.cappedOrders?.includes(o) ? '>' : ''}${t.freeBlocks[o] ?? 0}`),
          formatBytes(t.freeBytes),
          String(t.pageBlocks),
        ];
        if (s.hasMixed) row.push(String(t.mixedBlocks ?? 0));
        rows.push(row);
      }
    const notes = s.zones.map(
      (z) =>
        `${z.node}/${z.zone}: ${formatBytes(z.freeBytes)} free, ${formatBytes(z.costlyFreeBytes)} in blocks of order >= ${COSTLY_ORDER}, ` +
        `${formatBytes(z.pageBlockFreeBytes)} in whole page blocks; ${z.unmovableBlocks} of ${z.pageBlocks} page blocks Unmovable or Reclaimable`,
    );
    return [
      {
        source: 'pagetypeinfo',
        title: `Free blocks per migrate type and order (page block: order ${s.pageBlockOrder}, ${formatBytes(s.pageBlockBytes)})`,
        columns: [
          { header: 'NODE/ZONE' },
          { header: 'TYPE' },
          ...orders.map((o) => ({ header: String(o), align: 'right' as const })),
          { header: 'FREE', align: 'right' },
          { header: 'BLOCKS', align: 'right' },
          ...(s.hasMixed ? [{ header: 'MIXED', align: 'right' as const }] : []),
        ],
        rows,
        notes,
      },
    ];
  },

  diff(b, a, ctx) {
    const sb = pagetypeSection(b, ctx.pageSizeBytes);
    const sa = pagetypeSection(a, ctx.pageSizeBytes);
    const index = (s: PagetypeSection) => {
      const m = new Map<string, PagetypeRow>();
      for (const z of s.zones) for (const t of z.types) m.set(`node${z.node}/${z.zone} ${t.type}`, t);
      return m;
    };
    const ib = index(sb);
    const ia = index(sa);
    const blockBytes = sa.pageBlockBytes || sb.pageBlockBytes;
    const rows: DiffRow[] = [];
    for (const key of new Set([...ib.keys(), ...ia.keys()])) {
      const tb = ib.get(key);
      const ta = ia.get(key);
      const fb = tb?.freePages ?? 0;
      const fa = ta?.freePages ?? 0;
      // As for buddyinfo: free pages that left the lists are memory someone took.
      rows.push({
        source: 'pagetypeinfo',
        name: `${key} taken from free`,
        beforeBytes: fb * ctx.pageSizeBytes,
        afterBytes: fa * ctx.pageSizeBytes,
        deltaBytes: (fb - fa) * ctx.pageSizeBytes,
        deltaCount: fb - fa,
        countUnit: 'pages',
      });
      // Page blocks changing type: memory that moved into (or out of) blocks of this type.
      const bb = tb?.pageBlocks ?? 0;
      const ba = ta?.pageBlocks ?? 0;
      rows.push({
        source: 'pagetypeinfo',
        name: `${key} page blocks`,
        beforeBytes: bb * blockBytes,
        afterBytes: ba * blockBytes,
        deltaBytes: (ba - bb) * blockBytes,
        deltaCount: ba - bb,
        countUnit: 'blocks',
      });
    }
    return { rows };
  },

  metrics: {
    families: [PAGETYPE_FREE, PAGETYPE_BLOCKS],
    // Reading it walks every free list under the zone lock (why it is mode 0400 since 5.6): opt-in.
    wanted: (o) => o.pagetypeinfo === true,
    collect(p, ctx) {
      const free = FamilyBuilder.of(PAGETYPE_FREE);
      const blocks = FamilyBuilder.of(PAGETYPE_BLOCKS);
      for (const z of pagetypeSection(p, ctx.pageSizeBytes).zones)
        for (const t of z.types) {
          free.add([z.node, z.zone, t.type], t.freeBytes);
          blocks.add([z.node, z.zone, t.type], t.pageBlocks);
        }
      return nonEmpty(free, blocks);
    },
  },
};
