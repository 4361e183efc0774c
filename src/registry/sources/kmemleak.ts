import { groupKmemleakStream, type KmemleakGroup } from '../../analysis/kmemleak.js';
import { diffGroups } from '../../analysis/stacks.js';
import { callerName } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import type { DiffRow, SourceEntry } from '../types.js';

/** kmemleak's unreferenced objects, streamed and grouped by backtrace. */
export interface KmemleakGroups {
  reports: number;
  groups: KmemleakGroup[];
}

/** /sys/kernel/debug/kmemleak: objects no pointer refers to, at the last scan. */
export const kmemleak: SourceEntry<KmemleakGroups> = {
  name: 'kmemleak',
  location: sourceLocation('kmemleak'),
  title: 'unreferenced kernel objects (/sys/kernel/debug/kmemleak)',
  command: 'kmemleak report',
  async load(snap) {
    const stream = await snap.openStream('kmemleak');
    if (!stream) return undefined;
    return groupKmemleakStream(stream, 'backtrace', { file: snap.describe('kmemleak') });
  },
  recognise: (head) => /^unreferenced object 0x[0-9a-f]+ \(size \d+\):/.test(head),

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
    // By the first frame outside the allocators: one entity per leaking function.
    const by = new Map<string, { bytes: number; objects: number }>();
    for (const g of k.groups) {
      const key = callerName(g.culprit);
      const e = by.get(key) ?? { bytes: 0, objects: 0 };
      e.bytes += g.weights.bytes;
      e.objects += g.weights.count;
      by.set(key, e);
    }
    return [...by].map(([key, v]) => ({ layer: 'kmemleak' as const, key, values: v }));
  },
};
