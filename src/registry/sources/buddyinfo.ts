import { sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { type Buddyinfo, parseBuddyinfo } from '../../sources/buddyinfo.js';
import { FamilyBuilder, nonEmpty } from '../families.js';
import {
  type DiffRow,
  type Finding,
  type MetricFamilyDoc,
  type SourceEntry,
  tablesDue,
  wantsNodeFamily,
} from '../types.js';
import { readParsed } from './read.js';

export interface BuddyZoneRow {
  node: number;
  zone: string;
  freeBlocks: number[];
  freePages: number;
  freeBytes: number;
}

declare module '../types.js' {
  interface ReportSections {
    buddy?: { zones: BuddyZoneRow[]; maxOrder: number; totalFreeBytes: number };
  }
}

const MiB = 1024 * 1024;

/** collector/buddyinfo.go: one gauge per zone and order, `size` being the order. */
const NODE_BUDDYINFO_BLOCKS: MetricFamilyDoc = {
  name: 'node_buddyinfo_blocks',
  help: 'Count of free blocks according to size.',
  type: 'gauge',
  labels: ['node', 'zone', 'size'],
  cardinality: 'zones × orders (11 per populated zone on x86: 33 for DMA, DMA32, Normal)',
};

/** /proc/buddyinfo: free blocks per zone and order in the buddy allocator. */
export const buddyinfo: SourceEntry<Buddyinfo> = {
  name: 'buddyinfo',
  location: sourceLocation('buddyinfo'),
  title: 'free blocks per zone and order (/proc/buddyinfo)',
  command: 'report',
  load: (snap, options) => readParsed(snap, 'buddyinfo', parseBuddyinfo, options),
  recognise: (head) => /^Node \d+, zone\s+\S+(\s+\d+){4,}\s*$/m.test(head.split('\n')[0] ?? ''),

  report(b, ctx) {
    const zones = b.zones.map((z) => ({
      node: z.node,
      zone: z.zone,
      freeBlocks: z.freeBlocks,
      freePages: z.freePages,
      freeBytes: z.freePages * ctx.pageSizeBytes,
    }));
    return {
      buddy: { zones, maxOrder: b.maxOrder, totalFreeBytes: zones.reduce((s, z) => s + z.freeBytes, 0) },
    };
  },

  findings(ctx) {
    const { buddy, accounting } = ctx.report;
    if (!buddy || !accounting) return [];
    const out: Finding[] = [];
    const memFree = accounting.parts.find((p) => p.name === 'MemFree')?.bytes ?? 0;
    const buddyFree = buddy.totalFreeBytes;
    if (Math.abs(memFree - buddyFree) > Math.max(64 * MiB, memFree * 0.1)) {
      out.push({
        severity: 'info',
        title: `MemFree (${(memFree / MiB).toFixed(0)} MiB) and the buddy free lists (${(buddyFree / MiB).toFixed(0)} MiB) disagree`,
        detail:
          'Free pages are counted outside the buddyinfo free lists: per-CPU page lists, memory still being initialised (deferred struct page init), hot-plugged or ballooned memory, or free page reporting to a hypervisor.',
        next: ['grep -E "zone|free|managed|present" /proc/zoneinfo'],
      });
    }
    for (const z of buddy.zones) {
      const high = z.freeBlocks.slice(3).reduce((s, n, i) => s + n * 2 ** (i + 3), 0);
      if (z.freeBytes > 256 * MiB && high < z.freePages * 0.05) {
        out.push({
          severity: 'warning',
          title: `Node ${z.node} zone ${z.zone}: free memory is fragmented`,
          detail: `Less than 5% of its ${z.freePages} free pages are in blocks of order 3 or more; higher-order allocations may fail or stall.`,
          next: [
            ctx.has('pagetypeinfo')
              ? 'memsleuth report (free blocks per migrate type)'
              : 'cat /proc/pagetypeinfo',
            'echo 1 > /proc/sys/vm/compact_memory  (if you decide to compact)',
          ],
        });
      }
    }
    return out;
  },

  tables(r) {
    const b = r.buddy;
    if (!b) return [];
    const orders = Array.from({ length: b.maxOrder }, (_, i) => i);
    return [
      {
        source: 'buddyinfo',
        title: `Buddy allocator free blocks per order (total free ${formatBytes(b.totalFreeBytes)})`,
        columns: [
          { header: 'NODE/ZONE' },
          ...orders.map((o) => ({ header: String(o), align: 'right' as const })),
          { header: 'FREE', align: 'right' },
        ],
        rows: b.zones.map((z) => [
          `${z.node}/${z.zone}`,
          ...orders.map((o) => String(z.freeBlocks[o] ?? 0)),
          formatBytes(z.freeBytes),
        ]),
      },
    ];
  },

  diff(b, a, ctx) {
    // Free pages that left the buddy free lists are memory someone took: a fall in free is
    // a gain for this row.
    const free = (x: Buddyinfo) => new Map(x.zones.map((z) => [`node${z.node}/${z.zone}`, z.freePages]));
    const fb = free(b);
    const fa = free(a);
    const rows: DiffRow[] = [...new Set([...fb.keys(), ...fa.keys()])].map((zone) => {
      const pb = fb.get(zone) ?? 0;
      const pa = fa.get(zone) ?? 0;
      return {
        source: 'buddyinfo',
        name: `${zone} taken from free`,
        beforeBytes: pb * ctx.pageSizeBytes,
        afterBytes: pa * ctx.pageSizeBytes,
        deltaBytes: (pb - pa) * ctx.pageSizeBytes,
        deltaCount: pb - pa,
        countUnit: 'pages',
      };
    });
    return { rows };
  },

  layers: ['buddy'],
  async sample(_snap, ctx) {
    // At the kernel tables' cadence (SampleOptions.slabEvery): context for people, never a verdict.
    if (!tablesDue(ctx)) return [];
    const b = await ctx.data.get('buddyinfo');
    if (!b) return [];
    return b.zones.map((z) => {
      const values: Record<string, number> = { free_bytes: z.freePages * ctx.pageSizeBytes };
      z.freeBlocks.forEach((n, order) => {
        values[`order${order}`] = n;
      });
      return { layer: 'buddy' as const, key: `Node ${z.node} ${z.zone}`, values };
    });
  },

  metrics: {
    families: [NODE_BUDDYINFO_BLOCKS],
    wanted: (o) => wantsNodeFamily(o, 'buddyinfo'),
    collect(b) {
      const f = FamilyBuilder.of(NODE_BUDDYINFO_BLOCKS);
      for (const z of b.zones)
        z.freeBlocks.forEach((n, order) => {
          f.add([z.node, z.zone, order], n);
        });
      return nonEmpty(f);
    },
  },
};
