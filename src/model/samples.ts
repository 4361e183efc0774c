/**
 * What a recording holds: layers of entities, each with named series of samples.
 * Ground layer: imports nothing; the sampler writes these, the store keeps them, the
 * analysis reads them.
 */

/** Where a recording's entities live, in the order `series` lists them. */
export const LAYERS = [
  'meminfo',
  'unaccounted',
  'vmstat',
  'slab',
  'buddy',
  'vmalloc',
  'allocinfo',
  'kmemleak',
  'process',
  'mapping',
  /** tmpfs mounts: statfs used bytes and inodes, every tick. */
  'tmpfs',
  /** The largest files of each tmpfs mount: allocated bytes, at the `tmpfsEvery` cadence. */
  'tmpfs-file',
  /** System V shared memory segments (/proc/sysvipc/shm): rss, swap, attaches, every tick. */
  'sysv-shm',
  /**
   * Who holds a shared memory object that grew (a tmpfs file, a SysV segment, a memfd or a
   * deleted file): one entity per (object, process), with its fds and mapped bytes when looked.
   */
  'shm-holder',
] as const;
export type Layer = (typeof LAYERS)[number];

/**
 * Layers whose entities are totals over a kernel list: an entity missing from a tick
 * means zero (a vmalloc caller with no area left), not "gone". Processes vanish.
 */
export const ZERO_WHEN_ABSENT: ReadonlySet<Layer> = new Set(['slab', 'vmalloc', 'allocinfo', 'kmemleak']);

/**
 * Layers whose entities end when a tick that read the layer does not list them: a process
 * exits, a tmpfs is unmounted, a file deleted, a segment removed. Their values are carried
 * forward only while they live.
 */
export const ENDS_WHEN_ABSENT: ReadonlySet<Layer> = new Set(['process', 'tmpfs', 'tmpfs-file', 'sysv-shm']);

export interface EntitySample {
  layer: Layer;
  /** Unique within the layer: a cache name, a caller, `pid:starttime` for a process. */
  key: string;
  /** Human name (process comm, mapping path). */
  label?: string;
  pid?: number;
  startTicks?: number;
  /** Series read every tick: metric → value. */
  values?: Record<string, number>;
  /** Series read at a slower cadence: metric → value, every reading kept. */
  sparse?: Record<string, number>;
}

export interface TickSample {
  tMs: number;
  readMs?: number;
  entities: EntitySample[];
  /**
   * Layers read at this tick even when they listed nothing (the last segment removed): an
   * entity of such a layer missing from `entities` has ended. Layers with entities count as read.
   */
  layersRead?: Layer[];
}

/** Unit of a metric, from its name: `*_bytes`/`bytes` → bytes, else count. */
export function metricUnit(metric: string): 'bytes' | 'count' {
  return metric === 'bytes' || metric.endsWith('_bytes') ? 'bytes' : 'count';
}

/** One series loaded for analysis: time (ms since epoch) and value arrays of equal length. */
export interface SeriesData {
  id: number;
  layer: Layer;
  key: string;
  label: string | undefined;
  pid: number | undefined;
  metric: string;
  unit: 'bytes' | 'count';
  t: number[];
  v: number[];
  /** When the entity ended (its last tick), if it ended within the loaded range. */
  endedMs?: number;
}

export interface LoadedRecording {
  file: string;
  meta: Record<string, string>;
  /** Times of every tick in range (ms since epoch), before thinning. */
  tickCount: number;
  firstMs: number | undefined;
  lastMs: number | undefined;
  series: SeriesData[];
}
