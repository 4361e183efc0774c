import type { KmemleakGroup } from '../../analysis/kmemleak.js';
import { diffGroups } from '../../analysis/stacks.js';
import { callerName } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { KMEMLEAK_HEAD } from '../../sources/kmemleak.js';
import { FamilyBuilder, nonEmpty, topN } from '../families.js';
import type { DiffRow, MetricFamilyDoc, SourceEntry } from '../types.js';
import { parseSettings } from './read.js';

/** kmemleak's unreferenced objects, streamed and grouped by backtrace. */
export interface KmemleakGroups {
  reports: number;
  groups: KmemleakGroup[];
}

export interface KmemleakSection {
  reports: number;
  bytes: number;
  /** Groups by the first frame outside the allocators, most objects first. */
  top: { culprit: string; module?: string; objects: number; bytes: number; types: string[] }[];
  groups: number;
}

declare module '../types.js' {
  interface ReportSections {
    kmemleak?: KmemleakSection;
  }
}

const KMEMLEAK_OBJECTS: MetricFamilyDoc = {
  name: 'memsleuth_kmemleak_unreferenced_objects',
  help: 'Objects kmemleak reported as unreferenced at its last scan (/sys/kernel/debug/kmemleak; memsleuth never triggers a scan).',
  type: 'gauge',
  labels: [],
  cardinality: '1',
};
const KMEMLEAK_BYTES: MetricFamilyDoc = {
  name: 'memsleuth_kmemleak_unreferenced_bytes',
  help: 'Bytes of the objects kmemleak reported as unreferenced at its last scan.',
  type: 'gauge',
  labels: [],
  cardinality: '1',
};
const KMEMLEAK_CALLER_BYTES: MetricFamilyDoc = {
  name: 'memsleuth_kmemleak_caller_unreferenced_bytes',
  help: 'Bytes of unreferenced objects by allocating function (first frame outside the allocators; the top callers).',
  type: 'gauge',
  labels: ['caller'],
  cardinality: '--kmemleak-top (default 10)',
};
const KMEMLEAK_CALLER_OBJECTS: MetricFamilyDoc = {
  name: 'memsleuth_kmemleak_caller_unreferenced_objects',
  help: 'Unreferenced objects by allocating function, for the callers listed in memsleuth_kmemleak_caller_unreferenced_bytes.',
  type: 'gauge',
  labels: ['caller'],
  cardinality: '--kmemleak-top (default 10)',
};

/** By the first frame outside the allocators: one row per leaking function, largest first. */
function byCaller(k: KmemleakGroups): { caller: string; bytes: number; objects: number }[] {
  const by = new Map<string, { caller: string; bytes: number; objects: number }>();
  for (const g of k.groups) {
    const caller = callerName(g.culprit);
    const e = by.get(caller) ?? { caller, bytes: 0, objects: 0 };
    e.bytes += g.weights.bytes;
    e.objects += g.weights.count;
    by.set(caller, e);
  }
  return [...by.values()].sort((a, b) => b.bytes - a.bytes || (a.caller < b.caller ? -1 : 1));
}

/** /sys/kernel/debug/kmemleak: objects no pointer refers to, at the last scan. */
export const kmemleak: SourceEntry<KmemleakGroups> = {
  name: 'kmemleak',
  location: sourceLocation('kmemleak'),
  title: 'unreferenced kernel objects (/sys/kernel/debug/kmemleak)',
  command: 'kmemleak report',
  async load(snap, options) {
    const stream = await snap.openStream('kmemleak');
    if (!stream) return undefined;
    const { groupKmemleakStream } = await import('../../analysis/kmemleak.js');
    return groupKmemleakStream(stream, 'backtrace', {
      ...parseSettings(options),
      file: snap.describe('kmemleak'),
    });
  },
  recognise: (head) => KMEMLEAK_HEAD.test(head),

  report(k, ctx) {
    const by = new Map<string, KmemleakSection['top'][number]>();
    for (const g of k.groups) {
      const culprit = g.culprit ? callerName(g.culprit) : '<no backtrace>';
      let row = by.get(culprit);
      if (!row) {
        row = { culprit, objects: 0, bytes: 0, types: [] };
        if (g.module) row.module = g.module;
        by.set(culprit, row);
      }
      row.objects += g.weights.count;
      row.bytes += g.weights.bytes;
      for (const t of g.types) if (!row.types.includes(t)) row.types.push(t);
    }
    const rows = [...by.values()].sort((a, b) => b.objects - a.objects || b.bytes - a.bytes);
    return {
      kmemleak: {
        reports: k.reports,
        bytes: rows.reduce((s, r) => s + r.bytes, 0),
        top: rows.slice(0, ctx.top),
        groups: rows.length,
      },
    };
  },

  findings(ctx) {
    const k = ctx.report.kmemleak;
    if (!k || k.reports === 0) return [];
    const named = k.top
      .slice(0, 3)
      .map((r) => `${r.culprit} ${r.objects} object${r.objects === 1 ? '' : 's'} (${formatBytes(r.bytes)})`);
    const fromModules = k.top.filter((r) => r.module).length;
    return [
      {
        // Objects the kernel itself cannot find a pointer to: a leak unless a false positive
        // (pointers kept in places kmemleak does not scan); one report cannot tell which.
        severity: fromModules ? 'warning' : 'info',
        title: `kmemleak reports ${k.reports} unreferenced object${k.reports === 1 ? '' : 's'} (${formatBytes(k.bytes)})`,
        detail: `By allocating function: ${named.join('; ')}${k.groups > 3 ? `; ${k.groups - 3} more` : ''}. One scan can hold false positives; objects that keep growing over scans are leaks.`,
        next: [
          'memsleuth kmemleak report --stacks SNAPSHOT',
          'scan again later and compare: memsleuth kmemleak watch BEFORE AFTER (growing backtraces are leaks)',
        ],
      },
    ];
  },

  tables(r) {
    const k = r.kmemleak;
    if (!k) return [];
    return [
      {
        source: 'kmemleak',
        title: `kmemleak: ${k.reports} unreferenced objects (${formatBytes(k.bytes)}) by allocating function`,
        columns: [
          { header: 'OBJECTS', align: 'right' },
          { header: 'BYTES', align: 'right' },
          { header: 'TYPE' },
          { header: 'ALLOCATED BY', max: 60 },
        ],
        rows: k.top.map((x) => [String(x.objects), formatBytes(x.bytes), x.types.join(','), x.culprit]),
      },
    ];
  },

  diff(b, a) {
    const extra = new Map([...b.groups, ...a.groups].map((g) => [g.key, g]));
    return {
      rows: diffGroups(b.groups, a.groups, 'bytes').map((d) => {
        const g = extra.get(d.key);
        const row: DiffRow = {
          source: 'kmemleak',
          name: g?.culprit ? callerName(g.culprit) : '<no backtrace>',
          beforeBytes: d.before.bytes,
          afterBytes: d.after.bytes,
          deltaBytes: d.delta.bytes,
          deltaCount: d.delta.count,
          countUnit: 'reports',
          frames: d.frames,
        };
        if (g?.module) row.module = g.module;
        return row;
      }),
    };
  },

  layers: ['kmemleak'],
  async sample(_snap, ctx) {
    if (!ctx.options.kmemleak) return [];
    const k = await ctx.data.get('kmemleak');
    if (!k) throw new Error('unreadable (debugfs, root and CONFIG_DEBUG_KMEMLEAK needed)');
    return byCaller(k).map((c) => ({
      layer: 'kmemleak' as const,
      key: c.caller,
      values: { bytes: c.bytes, objects: c.objects },
    }));
  },

  metrics: {
    families: [KMEMLEAK_OBJECTS, KMEMLEAK_BYTES, KMEMLEAK_CALLER_BYTES, KMEMLEAK_CALLER_OBJECTS],
    wanted: (o) => o.kmemleak !== false,
    collect(k, ctx) {
      const rows = byCaller(k);
      const objects = FamilyBuilder.of(KMEMLEAK_OBJECTS).add(
        [],
        rows.reduce((s, r) => s + r.objects, 0),
      );
      const bytes = FamilyBuilder.of(KMEMLEAK_BYTES).add(
        [],
        rows.reduce((s, r) => s + r.bytes, 0),
      );
      const cb = FamilyBuilder.of(KMEMLEAK_CALLER_BYTES);
      const co = FamilyBuilder.of(KMEMLEAK_CALLER_OBJECTS);
      for (const r of topN(rows, ctx.options.kmemleakTop ?? 10).top) {
        cb.add([r.caller], r.bytes);
        co.add([r.caller], r.objects);
      }
      return nonEmpty(objects, bytes, cb, co);
    },
    recording: [
      {
        selector: 'memsleuth_kmemleak_caller_unreferenced_bytes',
        layer: 'kmemleak',
        key: (l) => l.caller,
        metric: () => 'bytes',
      },
    ],
  },
};
