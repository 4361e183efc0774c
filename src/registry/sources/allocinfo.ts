import { diffAllocinfo } from '../../analysis/allocinfo.js';
import { frameKey } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import { type Allocinfo, allocTagKey, parseAllocinfo } from '../../sources/allocinfo.js';
import { due, type SourceEntry } from '../types.js';
import { readParsed } from './read.js';

/** /proc/allocinfo (6.10+ memory allocation profiling): bytes and live calls per call site. */
export const allocinfo: SourceEntry<Allocinfo> = {
  name: 'allocinfo',
  location: sourceLocation('allocinfo'),
  title: 'kernel allocations by call site (/proc/allocinfo, 6.10+)',
  command: 'allocinfo top',
  load: (snap, options) => readParsed(snap, 'allocinfo', parseAllocinfo, options),
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
};
