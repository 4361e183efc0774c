import {
  type Accounting,
  computeAccounting,
  LAYER_NAMES,
  LAYER_TITLES,
  zoneTotals,
} from '../../analysis/accounting.js';
import type { EntitySample } from '../../model/samples.js';
import { sourceLocation } from '../../model/snapshot.js';
import { formatBytes, formatPercent } from '../../model/units.js';
import { type Meminfo, parseMeminfo } from '../../sources/meminfo.js';
import type { Finding, ReportTable, SourceEntry } from '../types.js';
import { readParsed } from './read.js';

declare module '../types.js' {
  interface ReportSections {
    /** MemTotal = user + shared + cache + kernel + free + unaccounted (analysis/accounting.ts). */
    accounting?: Accounting;
    memAvailableBytes?: number;
    swap?: { totalBytes: number; freeBytes: number; usedBytes: number };
  }
}

/** Sizes, limits and page sizes: not memory anyone took. */
const MEMINFO_SKIP = new Set([
  'MemTotal',
  'SwapTotal',
  'VmallocTotal',
  'CommitLimit',
  'Hugepagesize',
  'Hugetlb',
]);

function pct(part: number, total: number): string {
  return `${((part / total) * 100).toFixed(1)}%`;
}

/** /proc/meminfo: the accounting identity, the free and swap totals, and the recording's meminfo layer. */
export const meminfo: SourceEntry<Meminfo> = {
  name: 'meminfo',
  location: sourceLocation('meminfo'),
  title: 'system-wide memory counters (/proc/meminfo)',
  command: 'report',
  load: (snap, options) => readParsed(snap, 'meminfo', parseMeminfo, options),
  recognise: (head) => /^MemTotal:\s+\d+ kB\s*$/m.test(head),

  async report(m, ctx) {
    const vmstat = await ctx.data.get('vmstat');
    const zones = await ctx.data.get('zoneinfo');
    const out: Awaited<ReturnType<NonNullable<SourceEntry['report']>>> = {
      accounting: computeAccounting(
        m,
        vmstat,
        ctx.pageSizeBytes,
        zones && zoneTotals(zones, ctx.pageSizeBytes),
      ),
    };
    if (m.bytes.MemAvailable !== undefined) out.memAvailableBytes = m.bytes.MemAvailable;
    if (m.bytes.SwapTotal !== undefined) {
      const total = m.bytes.SwapTotal;
      const free = m.bytes.SwapFree ?? 0;
      out.swap = { totalBytes: total, freeBytes: free, usedBytes: total - free };
    }
    return out;
  },

  findings(ctx) {
    const r = ctx.report;
    const a = r.accounting;
    if (!a) return [];
    const out: Finding[] = [];
    const total = a.memTotalBytes;
    const part = (n: string) => a.parts.find((p) => p.name === n)?.bytes ?? 0;
    const un = a.unaccountedBytes;
    if (un > total * 0.1) {
      out.push({
        severity: 'critical',
        title: `Unaccounted memory is ${pct(un, total)} of RAM`,
        detail:
          'No meminfo counter covers it: pages taken straight from the buddy allocator (drivers, DMA rings, network page pools). Only page_owner can name the code that holds them.',
        next: ctx.has('page_owner')
          ? [
              'memsleuth page-owner top --by function SNAPSHOT',
              'take a second snapshot later and run: memsleuth page-owner diff BEFORE AFTER',
            ]
          : [
              'boot with page_owner=on (needs CONFIG_PAGE_OWNER) and mount debugfs',
              'then: memsleuth snapshot -o before.tar.gz; wait; memsleuth snapshot -o after.tar.gz; memsleuth diff before.tar.gz after.tar.gz',
            ],
      });
    } else if (un < -total * 0.02) {
      out.push({
        severity: 'info',
        title: `Counters exceed MemTotal by ${pct(-un, total)}`,
        detail:
          'Some meminfo fields overlap on this kernel (e.g. VmallocUsed counting ioremap space before 4.4, or the counters were read at slightly different moments).',
        next: [],
      });
    }
    const sun = part('SUnreclaim');
    if (sun > total * 0.1) {
      out.push({
        severity: 'warning',
        title: `SUnreclaim (unreclaimable slab) is ${pct(sun, total)} of RAM`,
        detail: 'Unreclaimable slab this large is the usual sign of a kernel object leak.',
        next: [
          'memsleuth slab top SNAPSHOT  (which cache)',
          'boot with slub_debug=U,<cache> and run: memsleuth slab traces --cache <cache>',
          'with CONFIG_DEBUG_KMEMLEAK: memsleuth kmemleak scan',
        ],
      });
    }
    const vmalloc = part('VmallocUsed');
    if (vmalloc > total * 0.1) {
      out.push({
        severity: 'warning',
        title: `vmalloc holds ${pct(vmalloc, total)} of RAM`,
        detail: 'Large vmalloc use: look at which callers own the areas.',
        next: ['memsleuth vmalloc top SNAPSHOT', 'memsleuth vmalloc diff BEFORE AFTER'],
      });
    }
    const ptables = part('PageTables');
    if (ptables > total * 0.05) {
      out.push({
        severity: 'warning',
        title: `Page tables use ${pct(ptables, total)} of RAM`,
        detail: 'Many processes mapping large areas (or huge sparse mappings) without huge pages.',
        next: ['memsleuth ps --sort vsz SNAPSHOT'],
      });
    }
    if (r.memAvailableBytes !== undefined && r.memAvailableBytes < total * 0.1) {
      out.push({
        severity: 'critical',
        title: `MemAvailable is only ${pct(r.memAvailableBytes, total)} of RAM`,
        detail: 'The machine is close to reclaim storms and the OOM killer.',
        next: ['memsleuth record --interval 10s  (then memsleuth leaks) to see what grows'],
      });
    }
    const cache = part('Cached-Shmem') + part('Buffers');
    if (cache > total * 0.5) {
      out.push({
        severity: 'info',
        title: `Page cache holds ${pct(cache, total)} of RAM`,
        detail: 'Page cache is reclaimable: it is not a leak and is given back under pressure.',
        next: [],
      });
    }
    const shmem = part('Shmem');
    if (shmem > total * 0.1) {
      out.push({
        severity: 'warning',
        title: `Shared memory (Shmem) is ${pct(shmem, total)} of RAM`,
        detail: 'tmpfs files, shared anonymous mappings and SysV/POSIX shm are not reclaimable without swap.',
        next: ['df -h -t tmpfs', 'ipcs -m', 'memsleuth ps --sort rss SNAPSHOT'],
      });
    }
    if (r.swap && r.swap.usedBytes > 0 && r.swap.usedBytes > total * 0.05) {
      out.push({
        severity: 'info',
        title: `${pct(r.swap.usedBytes, total)} of RAM's worth is swapped out`,
        detail: 'Swapped anonymous memory is not in any RAM counter above.',
        next: ['memsleuth ps --sort swap SNAPSHOT'],
      });
    }
    return out;
  },

  tables(r) {
    const a = r.accounting;
    if (!a) return [];
    const rows: string[][] = [];
    for (const layer of LAYER_NAMES) {
      const parts = a.parts.filter((p) => p.layer === layer);
      const row = [
        LAYER_TITLES[layer],
        formatBytes(a.layers[layer]),
        formatPercent((a.layers[layer] / a.memTotalBytes) * 100),
        '',
      ];
      rows.push(row);
      if (parts.length > 1 || (parts.length === 1 && parts[0]!.name !== 'unaccounted')) {
        for (const p of parts)
          rows.push([`  ${p.name}`, formatBytes(p.bytes), formatPercent(p.percent), p.description]);
      } else if (layer === 'unaccounted' && parts[0]) {
        row[3] = parts[0].description;
      }
    }
    const sum = a.parts.reduce((t, p) => t + p.bytes, 0);
    rows.push([
      'total',
      formatBytes(sum),
      formatPercent((sum / a.memTotalBytes) * 100),
      sum === a.memTotalBytes ? '= MemTotal' : '≠ MemTotal',
    ]);
    const extra: string[] = [];
    if (r.memAvailableBytes !== undefined) extra.push(`MemAvailable ${formatBytes(r.memAvailableBytes)}`);
    if (r.swap) extra.push(`swap used ${formatBytes(r.swap.usedBytes)} of ${formatBytes(r.swap.totalBytes)}`);
    if (a.absentFields.length) extra.push(`not printed by this kernel: ${a.absentFields.join(', ')}`);
    const table: ReportTable = {
      source: 'meminfo',
      title: `Where the memory is: MemTotal ${formatBytes(a.memTotalBytes)} = ${LAYER_NAMES.join(' + ')}`,
      columns: [
        { header: 'LAYER' },
        { header: 'BYTES', align: 'right' },
        { header: '%', align: 'right' },
        { header: 'WHAT', max: 46 },
      ],
      rows,
    };
    if (extra.length) table.notes = [extra.join('; ')];
    return [table];
  },

  diff(b, a) {
    const rows = [];
    for (const name of new Set([...Object.keys(b.bytes), ...Object.keys(a.bytes)])) {
      if (MEMINFO_SKIP.has(name) || name.startsWith('DirectMap')) continue;
      const vb = b.bytes[name] ?? 0;
      const va = a.bytes[name] ?? 0;
      // Every field with its own sign: MemFree and MemAvailable fall when memory is taken, so
      // they rank with the losses, not among the gainers (buddyinfo's rows say what left free).
      rows.push({ source: 'meminfo' as const, name, beforeBytes: vb, afterBytes: va, deltaBytes: va - vb });
    }
    return { rows };
  },

  layers: ['meminfo', 'unaccounted'],
  async sample(_snap, ctx) {
    const m = await ctx.data.get('meminfo');
    if (!m) throw new Error('unreadable');
    const out: EntitySample[] = [];
    for (const [k, v] of Object.entries(m.bytes))
      if (v !== undefined) out.push({ layer: 'meminfo', key: k, values: { bytes: v } });
    for (const [k, v] of Object.entries(m.counts))
      if (v !== undefined) out.push({ layer: 'meminfo', key: k, values: { count: v } });
    if (m.bytes.Cached !== undefined)
      out.push({
        layer: 'meminfo',
        key: 'Cached-Shmem',
        values: { bytes: Math.max(0, m.bytes.Cached - (m.bytes.Shmem ?? 0)) },
      });
    // The same identity as the report, per-CPU free lists included: their swings right after
    // boot would otherwise show as unaccounted growth.
    const vmstat = await ctx.data.get('vmstat').catch(() => undefined);
    const zones = await ctx.data.get('zoneinfo').catch(() => undefined);
    const acc = computeAccounting(
      m,
      vmstat,
      ctx.pageSizeBytes,
      zones && zoneTotals(zones, ctx.pageSizeBytes),
    );
    out.push({ layer: 'unaccounted', key: 'unaccounted', values: { bytes: acc.unaccountedBytes } });
    return out;
  },
};
