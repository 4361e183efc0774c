import { diffVmalloc, type VmallocCaller, vmallocByCaller } from '../../analysis/vmalloc.js';
import { frameKey } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { parseVmallocinfo } from '../../sources/vmallocinfo.js';
import { FamilyBuilder, nonEmpty, topN } from '../families.js';
import { due, type MetricFamilyDoc, pageSizeOf, type SourceEntry } from '../types.js';

export interface VmallocCallerRow {
  caller: string;
  module?: string;
  areas: number;
  /** Pages backing the areas × page size (ioremap and vmap areas own no pages). */
  bytes: number;
}

declare module '../types.js' {
  interface ReportSections {
    vmalloc?: { byCaller: VmallocCallerRow[]; callerCount: number; totalBytes: number };
  }
}

const VMALLOC_BYTES: MetricFamilyDoc = {
  name: 'memsleuth_vmalloc_bytes',
  help: 'Bytes of pages backing the vmalloc areas of each caller (the top callers by bytes; the rest in memsleuth_vmalloc_rest_bytes).',
  type: 'gauge',
  labels: ['caller'],
  cardinality: '--vmalloc-top (default 20)',
};
const VMALLOC_AREAS: MetricFamilyDoc = {
  name: 'memsleuth_vmalloc_areas',
  help: 'vmalloc areas of each caller listed in memsleuth_vmalloc_bytes.',
  type: 'gauge',
  labels: ['caller'],
  cardinality: '--vmalloc-top (default 20)',
};
const VMALLOC_REST: MetricFamilyDoc = {
  name: 'memsleuth_vmalloc_rest_bytes',
  help: 'Bytes of pages backing the vmalloc areas of the callers not listed in memsleuth_vmalloc_bytes.',
  type: 'gauge',
  labels: [],
  cardinality: '1',
};

/** /proc/vmallocinfo, grouped by caller (analysis/vmalloc.ts: the one grouping every consumer uses). */
export const vmallocinfo: SourceEntry<VmallocCaller[]> = {
  name: 'vmallocinfo',
  location: sourceLocation('vmallocinfo'),
  title: 'vmalloc areas by caller (/proc/vmallocinfo)',
  command: 'vmalloc top',
  async load(snap, options) {
    const text = await snap.readText('vmallocinfo');
    if (text === undefined) return undefined;
    const pageSize = await pageSizeOf(snap, options);
    return vmallocByCaller(parseVmallocinfo(text, { file: snap.describe('vmallocinfo') }).areas, pageSize);
  },
  recognise: (head) => /^0x[0-9a-f]+-0x[0-9a-f]+\s+\d+\s/m.test(head),

  report(callers, ctx) {
    // RAM only: areas without pages (ioremap, vmap of other memory) hold none.
    const rows = callers
      .filter((c) => c.bytes > 0)
      .map((c) => {
        const row: VmallocCallerRow = { caller: c.caller?.func ?? c.key, areas: c.areas, bytes: c.bytes };
        if (c.module) row.module = c.module;
        return row;
      });
    return {
      vmalloc: {
        byCaller: rows.slice(0, ctx.top),
        callerCount: rows.length,
        totalBytes: rows.reduce((s, r) => s + r.bytes, 0),
      },
    };
  },

  tables(r) {
    const v = r.vmalloc;
    if (!v) return [];
    return [
      {
        source: 'vmallocinfo',
        title: `vmalloc by caller (${v.callerCount} callers, ${formatBytes(v.totalBytes)} in pages)`,
        columns: [
          { header: 'CALLER', max: 60 },
          { header: 'AREAS', align: 'right' },
          { header: 'BYTES', align: 'right' },
        ],
        rows: v.byCaller.map((x) => [
          frameKey({ func: x.caller, module: x.module }),
          String(x.areas),
          formatBytes(x.bytes),
        ]),
      },
    ];
  },

  diff(b, a) {
    return {
      rows: diffVmalloc(b, a).map((d) => ({
        source: 'vmallocinfo' as const,
        name: d.key,
        beforeBytes: d.before.bytes,
        afterBytes: d.after.bytes,
        deltaBytes: d.deltaBytes,
        deltaCount: d.deltaAreas,
        countUnit: 'areas',
        ...(d.module ? { module: d.module } : {}),
        ...(d.caller ? { frames: [d.caller] } : {}),
      })),
    };
  },

  layers: ['vmalloc'],
  async sample(_snap, ctx) {
    if (!due(ctx.tick, ctx.options.vmallocEvery ?? 6)) return [];
    const callers = await ctx.data.get('vmallocinfo');
    return (callers ?? []).map((c) => ({
      layer: 'vmalloc' as const,
      key: c.key,
      values: { bytes: c.bytes, areas: c.areas },
    }));
  },

  metrics: {
    families: [VMALLOC_BYTES, VMALLOC_AREAS, VMALLOC_REST],
    collect(callers, ctx) {
      // RAM only (ioremap and vmap areas own no pages); vmallocByCaller sorts by bytes.
      const { top, rest } = topN(
        callers.filter((c) => c.bytes > 0),
        ctx.options.vmallocTop ?? 20,
      );
      const bytes = FamilyBuilder.of(VMALLOC_BYTES);
      const areas = FamilyBuilder.of(VMALLOC_AREAS);
      for (const c of top) {
        bytes.add([c.key], c.bytes);
        areas.add([c.key], c.areas);
      }
      const other = FamilyBuilder.of(VMALLOC_REST).add(
        [],
        rest.reduce((s, c) => s + c.bytes, 0),
      );
      return nonEmpty(bytes, areas, other);
    },
    recording: [
      { selector: 'memsleuth_vmalloc_bytes', layer: 'vmalloc', key: (l) => l.caller, metric: () => 'bytes' },
    ],
  },
};
