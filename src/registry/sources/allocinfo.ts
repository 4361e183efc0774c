import { diffAllocinfo } from '../../analysis/allocinfo.js';
import { frameKey } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import { type Allocinfo, allocTagKey, parseAllocinfo } from '../../sources/allocinfo.js';
import { FamilyBuilder, nonEmpty, topN } from '../families.js';
import { due, type MetricFamilyDoc, type SourceEntry } from '../types.js';
import { readParsed } from './read.js';

const ALLOC_LABELS = ['site', 'module', 'function'] as const;
const ALLOCINFO_BYTES: MetricFamilyDoc = {
  name: 'memsleuth_allocinfo_bytes',
  help: 'Bytes currently allocated from each kernel call site (/proc/allocinfo; the top sites by bytes, the rest in memsleuth_allocinfo_rest_bytes).',
  type: 'gauge',
  labels: ALLOC_LABELS,
  cardinality: '--allocinfo-top (default 20)',
};
const ALLOCINFO_CALLS: MetricFamilyDoc = {
  name: 'memsleuth_allocinfo_calls',
  help: 'Live allocations from each call site listed in memsleuth_allocinfo_bytes.',
  type: 'gauge',
  labels: ALLOC_LABELS,
  cardinality: '--allocinfo-top (default 20)',
};
const ALLOCINFO_REST: MetricFamilyDoc = {
  name: 'memsleuth_allocinfo_rest_bytes',
  help: 'Bytes currently allocated from the call sites not listed in memsleuth_allocinfo_bytes.',
  type: 'gauge',
  labels: [],
  cardinality: '1',
};

/** /proc/allocinfo (6.10+ memory allocation profiling): bytes and live calls per call site. */
export const allocinfo: SourceEntry<Allocinfo> = {
  name: 'allocinfo',
  location: sourceLocation('allocinfo'),
  title: 'kernel allocations by call site (/proc/allocinfo, 6.10+)',
  command: 'allocinfo top',
  load: (snap) => readParsed(snap, 'allocinfo', parseAllocinfo),
  recognise: (head) =>
    /^allocinfo - version: /.test(head) || /^\s*-?\d+\s+\d+\s+\S+:\d+(\s+\[\S+\])?\s+func:\S+/m.test(head),

  diff(b, a) {
    return {
      rows: diffAllocinfo(b.tags, a.tags).map((d) => ({
        source: 'allocinfo' as const,
        name: frameKey({ func: d.func, ...(d.module ? { module: d.module } : {}) }),
        detail: `${d.sourceFile}:${d.sourceLine}`,
        beforeBytes: d.before.bytes,
        afterBytes: d.after.bytes,
        deltaBytes: d.deltaBytes,
        deltaCount: d.deltaCalls,
        countUnit: 'calls',
        ...(d.module ? { module: d.module } : {}),
      })),
    };
  },

  layers: ['allocinfo'],
  async sample(_snap, ctx) {
    if (!due(ctx.tick, ctx.options.vmallocEvery ?? 6)) return [];
    const info = await ctx.data.get('allocinfo');
    return (info?.tags ?? [])
      .filter((t) => t.bytes !== 0 || t.calls !== 0)
      .map((t) => ({
        layer: 'allocinfo' as const,
        key: allocTagKey(t),
        values: { bytes: t.bytes, calls: t.calls },
      }));
  },

  metrics: {
    families: [ALLOCINFO_BYTES, ALLOCINFO_CALLS, ALLOCINFO_REST],
    collect(info, ctx) {
      const sorted = [...info.tags].sort((a, b) => b.bytes - a.bytes || b.calls - a.calls || a.line - b.line);
      const { top, rest } = topN(sorted, ctx.options.allocinfoTop ?? 20);
      const bytes = FamilyBuilder.of(ALLOCINFO_BYTES);
      const calls = FamilyBuilder.of(ALLOCINFO_CALLS);
      // Two tags can share file:line and function (a macro expanded twice): keep the first.
      const seen = new Set<string>();
      for (const t of top) {
        const labels = [`${t.sourceFile}:${t.sourceLine}`, t.module ?? '', t.func];
        const k = labels.join('\0');
        if (seen.has(k)) continue;
        seen.add(k);
        bytes.add(labels, t.bytes);
        calls.add(labels, t.calls);
      }
      const other = FamilyBuilder.of(ALLOCINFO_REST).add(
        [],
        rest.reduce((s, t) => s + t.bytes, 0),
      );
      return nonEmpty(bytes, calls, other);
    },
    recording: [
      {
        selector: 'memsleuth_allocinfo_bytes',
        layer: 'allocinfo',
        // The recording's key (allocTagKey): `file:line [module] func`.
        key: (l) =>
          l.site && l.function ? `${l.site}${l.module ? ` [${l.module}]` : ''} ${l.function}` : undefined,
        metric: () => 'bytes',
      },
    ],
  },
};
