import { sourceLocation } from '../../model/snapshot.js';
import { parseVmstat } from '../../sources/vmstat.js';
import { FamilyBuilder } from '../families.js';
import { NODE_VMSTAT_FIELDS, type SourceEntry, wantsNodeFamily } from '../types.js';
import { readParsed } from './read.js';

/** vmstat counters the recording keeps: reclaim pressure, faults, swap, OOM kills. */
export const VMSTAT_COUNTERS = [
  'nr_free_pages',
  'pgfault',
  'pgmajfault',
  'pswpin',
  'pswpout',
  'oom_kill',
  'compact_stall',
  'pgscan_kswapd',
  'pgscan_direct',
  'pgsteal_kswapd',
  'pgsteal_direct',
  'workingset_refault_file',
  'workingset_refault_anon',
  'nr_zspages',
] as const;

/** /proc/vmstat: refines the accounting (zsmalloc pages) and records reclaim and fault counters. */
export const vmstat: SourceEntry<Record<string, number>> = {
  name: 'vmstat',
  location: sourceLocation('vmstat'),
  title: 'virtual memory counters (/proc/vmstat)',
  load: (snap) => readParsed(snap, 'vmstat', parseVmstat),
  recognise: (head) => /^nr_free_pages \d+$/m.test(head) && /^nr_\w+ \d+$/m.test(head),
  layers: ['vmstat'],
  async sample(_snap, ctx) {
    const v = await ctx.data.get('vmstat');
    if (!v) return [];
    return VMSTAT_COUNTERS.filter((c) => v[c] !== undefined).map((c) => ({
      layer: 'vmstat' as const,
      key: c,
      values: { count: v[c]! },
    }));
  },

  metrics: {
    families: [
      {
        name: 'node_vmstat_<field>',
        help: '/proc/vmstat information field <field>.',
        type: 'untyped',
        labels: [],
        cardinality: "the fields matching --vmstat-fields (node_exporter's default regex: 8 on 6.x)",
      },
    ],
    wanted: (o) => wantsNodeFamily(o, 'vmstat'),
    collect(v, ctx) {
      const fields = ctx.options.vmstatFields ?? NODE_VMSTAT_FIELDS;
      // collector/vmstat_linux.go: every matching line, untyped, in file order.
      return Object.entries(v)
        .filter(([name]) => fields.test(name))
        .map(
          ([name, value]) =>
            new FamilyBuilder(
              `node_vmstat_${name}`,
              `/proc/vmstat information field ${name}.`,
              'untyped',
            ).add([], value).family,
        );
    },
  },
};
