import { diffSlabCallSites, readSlabCallSites, type SlabCallSite } from '../../analysis/slab.js';
import { callerName } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import type { DiffRow, SourceEntry } from '../types.js';

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
