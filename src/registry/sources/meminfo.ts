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
import { FamilyBuilder, nonEmpty } from '../families.js';
import {
  type Finding,
  type MetricFamily,
  type MetricFamilyDoc,
  type ReportTable,
  type SourceEntry,
  tablesDue,
  wantsNodeFamily,
} from '../types.js';
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

/**
 * The accounting identity as a table: each layer, then its parts. `omitEmpty` leaves out
 * parts of 0 bytes (the OOM report's Mem-Info lists fewer counters than meminfo).
 */
export function accountingTable(
  a: Accounting,
  opts: {
    omitEmpty?: boolean;
    title?: string;
    totalNote?: string;
    unaccountedNote?: string;
    whatWidth?: number;
  } = {},
): ReportTable {
  const rows: string[][] = [];
  for (const layer of LAYER_NAMES) {
    const parts = a.parts.filter(
      (p) => p.layer === layer && (!opts.omitEmpty || p.bytes > 0 || p.name === 'AnonPages'),
    );
    const row = [
      LAYER_TITLES[layer],
      formatBytes(a.layers[layer]),
      formatPercent((a.layers[layer] / a.memTotalBytes) * 100),
      '',
    ];
    rows.push(row);
    if (layer === 'unaccounted') {
      row[3] = opts.unaccountedNote ?? a.parts.find((p) => p.layer === 'unaccounted')?.description ?? '';
      continue;
    }
    for (const p of parts)
      rows.push([`  ${p.name}`, formatBytes(p.bytes), formatPercent(p.percent), p.description]);
  }
  const sum = a.parts.reduce((t, p) => t + p.bytes, 0);
  rows.push([
    'total',
    formatBytes(sum),
    formatPercent((sum / a.memTotalBytes) * 100),
    sum === a.memTotalBytes ? (opts.totalNote ?? '= MemTotal') : '≠ MemTotal',
  ]);
  return {
    source: 'meminfo',
    title:
      opts.title ??
      `Where the memory is: MemTotal ${formatBytes(a.memTotalBytes)} = ${LAYER_NAMES.join(' + ')}`,
    columns: [
      { header: 'LAYER' },
      { header: 'BYTES', align: 'right' },
      { header: '%', align: 'right' },
      { header: 'WHAT', max: opts.whatWidth ?? 46 },
    ],
    rows,
  };
}

/**
 * node_exporter's name for a meminfo field (collector/meminfo_linux.go, the parser up to 1.8:
 * `\((.*)\)` → `_${1}`, then `_bytes` for fields printed in kB; 1.9+ lists the fields it keeps
 * and gives each the same name). `Active(anon)` → `node_memory_Active_anon_bytes`,
 * `HugePages_Total` → `node_memory_HugePages_Total`. Checked against node_exporter's source in
 * src/metrics/node_exporter.test.ts.
 */
export function nodeMemoryName(field: string, unit: 'bytes' | 'count'): string {
  return `node_memory_${field.replace(/\((.*)\)/, '_$1')}${unit === 'bytes' ? '_bytes' : ''}`;
}

/** The meminfo field behind a `node_memory_<Field>_bytes` name (`Active_anon` → `Active(anon)`). */
export function meminfoFieldOfNodeName(name: string): string | undefined {
  const m = /^node_memory_(.+)_bytes$/.exec(name);
  return m ? m[1]!.replace(/_(anon|file)$/, '($1)') : undefined;
}

const NODE_MEMORY: MetricFamilyDoc = {
  name: 'node_memory_<Field>',
  help: 'Memory information field <Field>.',
  type: 'gauge',
  labels: [],
  cardinality: 'one per /proc/meminfo line (about 55 on 6.x); `_bytes` for kB fields',
};
const LAYER_BYTES: MetricFamilyDoc = {
  name: 'memsleuth_memory_layer_bytes',
  help: 'Bytes of MemTotal in each layer of the identity MemTotal = user + shared + cache + kernel + free + unaccounted; unaccounted is memory no counter sees (pages taken straight from the buddy allocator).',
  type: 'gauge',
  labels: ['layer'],
  cardinality: '6 (the layers)',
};
const PART_BYTES: MetricFamilyDoc = {
  name: 'memsleuth_memory_part_bytes',
  help: 'Bytes of each part of the accounting identity (meminfo fields, vmstat nr_zspages, per-CPU free lists from zoneinfo, the unaccounted remainder), by layer.',
  type: 'gauge',
  labels: ['layer', 'part'],
  cardinality: 'about 20 (the parts this kernel prints)',
};

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
    if (!r.accounting) return [];
    const extra: string[] = [];
    if (r.memAvailableBytes !== undefined) extra.push(`MemAvailable ${formatBytes(r.memAvailableBytes)}`);
    if (r.swap) extra.push(`swap used ${formatBytes(r.swap.usedBytes)} of ${formatBytes(r.swap.totalBytes)}`);
    if (r.accounting.absentFields.length)
      extra.push(`not printed by this kernel: ${r.accounting.absentFields.join(', ')}`);
    const table = accountingTable(r.accounting);
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
    // zoneinfo at the slab cadence (its per-CPU lists move by a few MiB): the last totals between.
    if (tablesDue(ctx)) {
      const zones = await ctx.data.get('zoneinfo').catch(() => undefined);
      ctx.state.zones = zones && zoneTotals(zones, ctx.pageSizeBytes);
    }
    const acc = computeAccounting(
      m,
      vmstat,
      ctx.pageSizeBytes,
      ctx.state.zones as ReturnType<typeof zoneTotals>,
    );
    out.push({ layer: 'unaccounted', key: 'unaccounted', values: { bytes: acc.unaccountedBytes } });
    return out;
  },

  metrics: {
    families: [NODE_MEMORY, LAYER_BYTES, PART_BYTES],
    async collect(m, ctx) {
      const out: MetricFamily[] = [];
      if (wantsNodeFamily(ctx.options, 'meminfo')) {
        for (const f of m.fields) {
          const name = nodeMemoryName(f.name, f.unit);
          const k = name.slice('node_memory_'.length);
          // collector/meminfo.go: counters are the fields ending in `_total` (none on Linux).
          const type = k.endsWith('_total') ? 'counter' : 'gauge';
          out.push(new FamilyBuilder(name, `Memory information field ${k}.`, type).add([], f.value).family);
        }
      }
      const vmstat = await ctx.data.get('vmstat').catch(() => undefined);
      const zones = await ctx.data.get('zoneinfo').catch(() => undefined);
      const acc = computeAccounting(
        m,
        vmstat,
        ctx.pageSizeBytes,
        zones && zoneTotals(zones, ctx.pageSizeBytes),
      );
      const layers = FamilyBuilder.of(LAYER_BYTES);
      for (const l of LAYER_NAMES) layers.add([l], acc.layers[l]);
      const parts = FamilyBuilder.of(PART_BYTES);
      for (const p of acc.parts) parts.add([p.layer, p.name], p.bytes);
      return [...out, ...nonEmpty(layers, parts)];
    },
    recording: [
      {
        // node_exporter's own meminfo series serve as well as ours (textfile setups).
        selector: '{__name__=~"node_memory_.+_bytes"}',
        layer: 'meminfo',
        key: (l) => meminfoFieldOfNodeName(l.__name__ ?? ''),
        metric: () => 'bytes',
      },
      {
        // Page cache without shmem: what `leaks` counts as reclaimable growth.
        selector: 'memsleuth_memory_part_bytes{part="Cached-Shmem"}',
        layer: 'meminfo',
        key: () => 'Cached-Shmem',
        metric: () => 'bytes',
      },
      {
        selector: 'memsleuth_memory_layer_bytes{layer="unaccounted"}',
        layer: 'unaccounted',
        key: () => 'unaccounted',
        metric: () => 'bytes',
      },
    ],
  },
};
