// Public library surface. Internal files are not part of it; re-export here only.

export * from './analysis/accounting.js';
export * from './analysis/allocinfo.js';
export * from './analysis/kmemleak.js';
export * from './analysis/leaks.js';
export * from './analysis/page_owner.js';
export {
  parseSortArgv,
  runPageOwnerSort,
  type SortArgv,
  type SortCompat,
  type SortConfig,
  type SortIo,
  type SortResult,
  sortUsage,
} from './analysis/page_owner_sort.js';
export * from './analysis/process.js';
export * from './analysis/slab.js';
export * from './analysis/stacks.js';
export * from './analysis/trend.js';
export * from './analysis/vmalloc.js';
export * from './capture/build_ids.js';
export { type WriteSnapshotOptions, type WriteSnapshotResult, writeSnapshot } from './capture/bundle.js';
export * from './capture/kmemleak.js';
export { type LiveRoots, LiveSnapshot, openLiveSnapshot } from './capture/live.js';
export { DirectorySnapshot, openSnapshot } from './capture/snapshot.js';
export {
  collectFamilies,
  EXPORTER_FAMILIES,
  Exporter,
  type ExporterOptions,
  type SnapshotStats,
} from './metrics/exporter.js';
export { CONTENT_TYPE, encodeFamilies } from './metrics/exposition.js';
export {
  analyzeFleet,
  type FleetInstance,
  type FleetOptions,
  type FleetReport,
  type FleetSuspect,
} from './metrics/fleet.js';
export { alertRules, type RulesOptions } from './metrics/rules.js';
export { type RunningServer, serveExporter, writeTextfile } from './metrics/server.js';
export * from './model/errors.js';
export * from './model/frame.js';
export * from './model/samples.js';
export * from './model/snapshot.js';
export * from './record/recorder.js';
export { Sampler, type SamplerOptions } from './record/sampler.js';
export * from './registry/diff.js';
export * from './registry/index.js';
export * from './registry/open.js';
export * from './registry/report.js';
export * from './sources/allocinfo.js';
export * from './sources/callstack_blocks.js';
export * from './sources/index.js';
export * from './sources/kmemleak.js';
export * from './sources/page_owner.js';
export * from './sources/slab_traces.js';
export * from './store/recording.js';
export * from './symbols/index.js';
