/**
 * The registry: every kernel source memsleuth reads, one entry each (./sources/*.ts). The
 * order is the order of the report's sections, of the diff's sources and of the sampler's
 * reads: the accounting (meminfo) comes first because later entries' findings use it.
 *
 * A new source: a parser in src/sources/, its location in src/model/snapshot.ts, one entry
 * file here with what it gives (report, diff, recording), one line below, and tests.
 */
import type { SourceName } from '../model/snapshot.js';
import { allocinfo } from './sources/allocinfo.js';
import { buddyinfo } from './sources/buddyinfo.js';
import { kmemleak } from './sources/kmemleak.js';
import { meminfo } from './sources/meminfo.js';
import { pageOwner } from './sources/page_owner.js';
import { pageOwnerStacks } from './sources/page_owner_stacks.js';
import { pagetypeinfo } from './sources/pagetypeinfo.js';
import { processes } from './sources/processes.js';
import { shmHolders } from './sources/shm_holders.js';
import { slabTraces } from './sources/slab_traces.js';
import { slabinfo } from './sources/slabinfo.js';
import { sysvipcShm } from './sources/sysvipc_shm.js';
import { tmpfs } from './sources/tmpfs.js';
import { vmallocinfo } from './sources/vmallocinfo.js';
import { vmstat } from './sources/vmstat.js';
import { zoneinfo } from './sources/zoneinfo.js';
import type { SourceEntry } from './types.js';

export const REGISTRY = {
  meminfo,
  vmstat,
  zoneinfo,
  processes,
  tmpfs,
  sysvipc_shm: sysvipcShm,
  shm_holders: shmHolders,
  slabinfo,
  vmallocinfo,
  buddyinfo,
  pagetypeinfo,
  page_owner: pageOwner,
  page_owner_stacks: pageOwnerStacks,
  slab_traces: slabTraces,
  kmemleak,
  allocinfo,
  // biome-ignore lint/suspicious/noExplicitAny: entries differ in what they load
} as const satisfies Record<SourceName, SourceEntry<any>>;

/** The entries in registry order. */
export const ENTRIES: readonly SourceEntry<unknown>[] = Object.values(REGISTRY) as SourceEntry<unknown>[];

/** By name, for lookups that start from a string. */
export const ENTRY_BY_NAME = REGISTRY as unknown as Readonly<Record<SourceName, SourceEntry<unknown>>>;

/** Sources a diff compares, in registry order. */
export const DIFF_SOURCES: readonly SourceName[] = ENTRIES.filter((e) => e.diff).map((e) => e.name);

export { SnapshotData, type SourceValue } from './data.js';
export { FamilyBuilder } from './families.js';
export type * from './types.js';
export { DEFAULT_NODE_FAMILIES, due, NODE_FAMILIES, NODE_VMSTAT_FIELDS, wantsNodeFamily } from './types.js';
