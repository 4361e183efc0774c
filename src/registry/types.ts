/**
 * What a kernel source is to memsleuth: one registry entry (src/registry/sources/*.ts)
 * joins where the source lives and how to enable it (src/model/snapshot.ts), its parser
 * (src/sources/), and what it gives every consumer: the report's sections, tables and
 * findings, the diff's rows, the recording's entities. report, diff and the sampler walk
 * the registry; none of them names a source.
 */
import type { Frame } from '../model/frame.js';
import type { EntitySample, Layer } from '../model/samples.js';
import type { Manifest, MissingSource, Snapshot, SourceLocation, SourceName } from '../model/snapshot.js';
import type { SnapshotData } from './data.js';

/** Options every consumer may pass down to the entries' loaders. */
export interface ReadOptions {
  /** Read per-mapping smaps (the four memory types) instead of smaps_rollup. Default true. */
  smaps?: boolean;
  /** page_owner: keep page cache and anonymous page blocks too (default: kernel allocations only). */
  pageOwnerAll?: boolean;
  /** Tolerate truncated input: warn instead of failing, where a parser can. */
  lenient?: boolean;
  /** Where a lenient parse says what it dropped (file, line, what). */
  onWarning?: (message: string) => void;
  /** The page size when the caller knows it (saves reading a live manifest); else the manifest's. */
  pageSizeBytes?: number;
}

/** The page size of what is read: given, else the snapshot manifest's (4 KiB when unknown). */
export async function pageSizeOf(snap: Snapshot, options: ReadOptions): Promise<number> {
  return options.pageSizeBytes ?? ((await snap.manifest()).pageSizeBytes || 4096);
}

/** A finding of the report: what one moment shows, and the next step. */
export interface Finding {
  severity: 'info' | 'warning' | 'critical';
  title: string;
  detail: string;
  /** Commands or actions to take next. */
  next: string[];
}

/**
 * The report's typed sections, one field per contributing entry. Entries add their field
 * by module augmentation (`declare module '../types.js' { interface ReportSections {...} }`),
 * so a new source touches only its own file. `--json` prints these fields as they are.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by the entries through declaration merging
export interface ReportSections {}

export interface Report extends ReportSections {
  snapshot: {
    origin: string;
    /** What wrote it (the manifest's tool); `unknown (no manifest.json)` for bare directories. */
    tool: string;
    /** Set when the input is one raw kernel file: which source it is. */
    source?: string;
    hostname: string;
    kernelRelease: string;
    time: string;
    uptimeSeconds: number;
    pageSizeBytes: number;
  };
  findings: Finding[];
  /** Sources that could not be read, with why and how to enable them. */
  unavailable: MissingSource[];
}

/** A plain table for presenters (text, HTML): cells are already formatted. */
export interface ReportTable {
  /** Which entry made it. */
  source: SourceName;
  title: string;
  columns: { header: string; align?: 'left' | 'right'; max?: number }[];
  rows: string[][];
  /** Lines printed under the table. */
  notes?: string[];
}

export interface ReportContext {
  snap: Snapshot;
  manifest: Manifest;
  pageSizeBytes: number;
  /** Rows per top list. */
  top: number;
  /** How the sources were read (lenient, onWarning): for a file an entry reads itself. */
  options: ReadOptions;
  /** Every source of this snapshot, loaded once. */
  data: SnapshotData;
  /** Sections of the entries before this one (the accounting for later findings). */
  report: Report;
  /** Is a source readable in this snapshot (not listed as unavailable)? */
  has(name: SourceName | string): boolean;
}

/** One thing that changed between two snapshots. */
export interface DiffRow {
  source: SourceName;
  /** What it is: a meminfo field, a cache, `func [module]`, `pid name`, a zone. */
  name: string;
  /** Context: the cache of a slab call site, a tag's file:line, a process's pid. */
  detail?: string;
  module?: string;
  /** The stack behind a stack-carrying row (innermost first). */
  frames?: Frame[];
  /** Bytes before and after (for free counters: free bytes, so the delta is their fall). */
  beforeBytes: number;
  afterBytes: number;
  /** Bytes gained (for free counters: bytes taken from free). */
  deltaBytes: number;
  /** Change of the source's own unit (objects, areas, pages, reports, calls), when it has one. */
  deltaCount?: number;
  countUnit?: string;
}

export interface DiffContext {
  pageSizeBytes: number;
}

export interface DiffResult {
  rows: DiffRow[];
  /** What was left out on purpose, e.g. page_owner's page cache and anonymous pages. */
  note?: string;
}

/** Options of the recording sampler that entries read. */
export interface SampleOptions {
  /** Read PSS from smaps_rollup every N ticks (0: never). Default 6. */
  pssEvery?: number;
  /** Per-mapping sizes of processes that grew, every N ticks (0: never). Default 12. */
  smapsEvery?: number;
  /**
   * A process "grows" when RSS+swap or VSZ rose by this much since the previous smaps tick
   * (recent growth: a warm-up that ended long ago does not take a leaker's place). Default 1 MiB.
   */
  smapsGrowthBytes?: number;
  /** At most this many processes get per-mapping sizes per smaps tick. Default 8. */
  smapsMaxProcesses?: number;
  /**
   * Read vmallocinfo and allocinfo every N ticks (0: never). Default 6 (`record`: every minute,
   * whatever the interval): vmallocinfo lists every area (3,000 lines here) and costs more CPU
   * than all processes together; the writer carries the totals forward.
   */
  vmallocEvery?: number;
  /**
   * Read the kernel's tables every N ticks (0: never): slabinfo, zoneinfo's per-CPU free lists
   * for the unaccounted remainder, buddyinfo, the tmpfs mounts' usage and SysV segments
   * (`tablesDue`). Default 1; `record` makes it every 10 s (10 at a 1 s interval):
   * slabinfo walks every cache and costs more than a hundred processes' counters; the other
   * three took 1.0-1.5 ms of a recorder's 8.9 ms read a tick with 183 processes; a kernel or shared
   * memory leak shows over minutes, not seconds, and meminfo (Shmem, the free pages) is read
   * every tick. The writer carries the values forward.
   */
  slabEvery?: number;
  /**
   * Read the open fds and the thread count (an fstat() of /proc/PID/fd and of task/) of a
   * process whose statm has not moved every N ticks; a process whose statm moved is counted at
   * that tick. Default 1; `record` makes it every 10 s (10 at a 1 s interval): the two fstat()
   * cost more than the statm read, and an fd or thread leak shows over minutes. The writer
   * carries the values forward.
   */
  countsEvery?: number;
  /** Read /sys/kernel/debug/kmemleak (no scan is triggered). Default false. */
  kmemleak?: boolean;
  /**
   * Every N ticks (0: never): the largest files of each tmpfs mount, and the search of every
   * process's fds and maps for the holders of the files and SysV segments that grew (the
   * mounts' usage is read at these ticks too, besides `slabEvery`'s). Default 6; `record` makes it every
   * minute (60 at a 1 s interval): where shared memory churns (a browser's /dev/shm, memfds) the
   * search would otherwise run every few seconds, and it reads every process's fd/ and maps.
   */
  tmpfsEvery?: number;
  /** Only processes whose pid passes (tests). */
  pidFilter?: (pid: number) => boolean;
}

export interface SampleContext {
  /** 1 for the first tick. */
  tick: number;
  pageSizeBytes: number;
  options: SampleOptions;
  /** Every source of this tick, loaded once. */
  data: SnapshotData;
  /** State an entry keeps from tick to tick (its own object, created empty). */
  state: Record<string, unknown>;
  /** Note a source that could not be read or parsed (reported once by the recorder). */
  problem(source: string, e: unknown): void;
  /**
   * Say a layer was read at this tick even if it listed nothing: its entities missing from the
   * tick have ended (layers in model/samples.ts ENDS_WHEN_ABSENT).
   */
  layerRead(layer: Layer): void;
}

/** True on the ticks a source read every `every` ticks is due (the first tick always). */
export function due(tick: number, every: number): boolean {
  return every > 0 && (tick - 1) % every === 0;
}

/** True on the ticks the kernel's tables are read (SampleOptions.slabEvery, default every tick). */
export function tablesDue(ctx: Pick<SampleContext, 'tick' | 'options'>): boolean {
  return due(ctx.tick, ctx.options.slabEvery ?? 1);
}

/** A Prometheus metric type as the text format names it. */
export type MetricType = 'gauge' | 'counter' | 'untyped';

/** One metric family of one snapshot, for the Prometheus text exposition (src/metrics). */
export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  /** Label names, in the order every sample gives their values. */
  labels: readonly string[];
  samples: MetricSample[];
}

export interface MetricSample {
  /** One value per label name of the family, in its order. */
  labels: readonly string[];
  value: number;
}

/**
 * What an entry may emit, for documentation and tests: `<Field>` (`<field>`) in a name or help stands for
 * the part that comes from the kernel (`node_memory_<Field>_bytes`).
 */
export interface MetricFamilyDoc {
  name: string;
  help: string;
  type: MetricType;
  labels: readonly string[];
  /** Series per host, and what bounds them. */
  cardinality: string;
}

/** node_exporter collectors whose families memsleuth can emit under node_exporter's own names. */
export const NODE_FAMILIES = ['meminfo', 'vmstat', 'buddyinfo', 'slabinfo'] as const;
export type NodeFamily = (typeof NODE_FAMILIES)[number];

/**
 * The node_exporter families memsleuth emits unless told otherwise: node_slabinfo_* is left out
 * (five series per cache: 1,175 on a 6.18 VM with 235 caches; memsleuth_slab_bytes has each
 * cache's bytes), as node_exporter leaves its slabinfo collector off by default.
 */
export const DEFAULT_NODE_FAMILIES: ReadonlySet<NodeFamily> = new Set(['meminfo', 'vmstat', 'buddyinfo']);

/** Does the exporter emit this node_exporter family? */
export function wantsNodeFamily(options: MetricsOptions, family: NodeFamily): boolean {
  return (options.nodeFamilies ?? DEFAULT_NODE_FAMILIES).has(family);
}

/** node_exporter's default `--collector.vmstat.fields` (collector/vmstat_linux.go). */
export const NODE_VMSTAT_FIELDS = /^(oom_kill|pgpg|pswp|pg.*fault).*/;

/** What the exporter asks of the entries. Every top list is bounded; see docs/fleet.md. */
export interface MetricsOptions {
  /** node_exporter families emitted under node_exporter's names. Default DEFAULT_NODE_FAMILIES. */
  nodeFamilies?: ReadonlySet<NodeFamily>;
  /** vmstat fields exported as node_vmstat_<field>. Default NODE_VMSTAT_FIELDS. */
  vmstatFields?: RegExp;
  /** Processes with series of their own: the top N by resident + swap. Default 20; Infinity: all. */
  processTop?: number;
  /**
   * What is read of the listed processes beyond status (RSS by anon/file/shmem, swap, VmSize,
   * threads): `pss` adds smaps_rollup (PSS, USS), `smaps` the per-mapping smaps (also the four
   * types private/shared × anon/file). The kernel walks every mapping for either: on this
   * project's VM smaps_rollup of all processes costs 60 ms of CPU where all their status files cost 3.
   * Default `status`.
   */
  processDetail?: 'status' | 'pss' | 'smaps';
  /** vmalloc callers with series of their own, by bytes. Default 20. */
  vmallocTop?: number;
  /** allocinfo call sites with series of their own, by bytes. Default 20. */
  allocinfoTop?: number;
  /** kmemleak callers with series of their own, by bytes. Default 10. */
  kmemleakTop?: number;
  /** Read /proc/pagetypeinfo (it walks every free list under the zone lock). Default false. */
  pagetypeinfo?: boolean;
  /** Read /sys/kernel/debug/kmemleak when it is readable (no scan is triggered). Default true. */
  kmemleak?: boolean;
}

export interface MetricsContext {
  snap: Snapshot;
  pageSizeBytes: number;
  options: MetricsOptions;
  /** Every source of this snapshot, loaded once. */
  data: SnapshotData;
  /** State an entry keeps from scrape to scrape (its own object, created empty). */
  state: Record<string, unknown>;
}

/**
 * How `memsleuth fleet` reads an entry's series back from Prometheus as recording entities, so
 * `analyzeLeaks` judges them exactly as it judges a local recording.
 */
export interface MetricsRecording {
  /** A PromQL selector: a metric name, or `{__name__=~"..."}`, optionally with label matchers. */
  selector: string;
  layer: Layer;
  /** The entity's key in its layer, from the series' labels (`__name__` included); undefined: skip. */
  key(labels: Readonly<Record<string, string>>): string | undefined;
  /** The recording metric (`bytes`, `anon_bytes`...), from the labels; undefined: skip. */
  metric(labels: Readonly<Record<string, string>>): string | undefined;
  label?(labels: Readonly<Record<string, string>>): string | undefined;
  pid?(labels: Readonly<Record<string, string>>): number | undefined;
  /** Recording meta derived from the label sets of the series found (e.g. `slab_reclaimable`). */
  meta?(labelSets: readonly Readonly<Record<string, string>>[]): Record<string, string>;
}

/** An entry's part of the Prometheus exposition and of the fleet's reading it back. */
export interface EntryMetrics<T> {
  /** Every family `collect` may emit. */
  families: readonly MetricFamilyDoc[];
  /** Its families for one snapshot (only those that have samples, or that say "absent" by design). */
  collect(value: T, ctx: MetricsContext): Promise<MetricFamily[]> | MetricFamily[];
  /** Whether to load the source at all for these options (default: yes). */
  wanted?(options: MetricsOptions): boolean;
  /**
   * How the exporter reads the source when it needs less than `load` gives (every scrape pays
   * for it): default the entry's `load`, shared with the other entries through `ctx.data`.
   */
  load?(snap: Snapshot, ctx: MetricsContext): Promise<T | undefined>;
  recording?: readonly MetricsRecording[];
}

/**
 * One kernel source. `T` is what `load` gives: the parsed file, or for streamed sources
 * (page_owner, kmemleak) the groups they reduce to.
 */
export interface SourceEntry<T = unknown> {
  name: SourceName;
  /** Where it lives in a snapshot and on a live machine, and how to enable it. */
  location: SourceLocation;
  /** One line: what it tells. */
  title: string;
  /** The command that shows this source on its own (`vmalloc top`), where there is one. */
  command?: string;
  /** Read and parse it; undefined when the snapshot does not have it. */
  load(snap: Snapshot, options: ReadOptions, data: SnapshotData): Promise<T | undefined>;
  /** Why `load` found nothing (default: the snapshot's reason for the file). */
  absentReason?(snap: Snapshot): string;
  /**
   * Does a raw file's beginning look like this source? Lets every command take the kernel
   * file itself (`memsleuth vmalloc diff a.txt b.txt`). `name` is the file's name.
   */
  recognise?(head: string, name: string): boolean;
  /** Its sections of the report. */
  report?(value: T, ctx: ReportContext): Promise<Partial<ReportSections>> | Partial<ReportSections>;
  /** Its findings, once every section is in `ctx.report`. */
  findings?(ctx: ReportContext): Promise<Finding[]> | Finding[];
  /** Its tables, for presenters, from the report's sections. */
  tables?(report: Report): ReportTable[];
  /** What changed between two moments. */
  diff?(before: T, after: T, ctx: DiffContext): DiffResult;
  /** Recording layers its `sample` writes. */
  layers?: readonly Layer[];
  /** The recording's entities at one tick. */
  sample?(snap: Snapshot, ctx: SampleContext): Promise<EntitySample[]>;
  /** Its Prometheus metric families (memsleuth exporter) and how the fleet reads them back. */
  metrics?: EntryMetrics<T>;
}
