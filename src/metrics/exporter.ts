import { realpathSync, statSync } from 'node:fs';
import { analyzeLeaks } from '../analysis/leaks.js';
import { livePageSize, openLiveSnapshot } from '../capture/live.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { MemsleuthError } from '../model/errors.js';
import type { Snapshot, SourceName } from '../model/snapshot.js';
import {
  ENTRIES,
  ENTRY_BY_NAME,
  FamilyBuilder,
  type MetricFamily,
  type MetricFamilyDoc,
  type MetricsContext,
  type MetricsOptions,
  SnapshotData,
} from '../registry/index.js';
import { RecordingReader } from '../store/recording.js';
import { encodeFamilies, seriesCount } from './exposition.js';
import { suspectFamilies } from './suspects.js';

/**
 * The exporter: one snapshot (this machine, or a snapshot directory re-read each time) turned
 * into the Prometheus exposition by every registry entry's `metrics`, at most once per
 * `intervalMs`; scrapes in between get the cached text, and concurrent scrapes share one read.
 */
export interface ExporterOptions {
  /** A snapshot directory re-read at every snapshot (a replay can swap its contents); default this machine. */
  snapshotDir?: string;
  /** At most one snapshot per this many ms. */
  intervalMs: number;
  metrics?: MetricsOptions;
  /** A recording database (`memsleuth record --db`) whose current leak suspects are exported. */
  db?: string;
  /** Re-analyse the recording at most this often. Default 60 s. */
  leaksIntervalMs?: number;
  /** Only the recording's last this-many ms (default: all of it, as `memsleuth leaks`). */
  leaksWindowMs?: number;
  /** Suspects with series of their own. Default 25. */
  leakTop?: number;
  /** memsleuth's version, for memsleuth_exporter_build_info. */
  version: string;
  /** A source that could not be read or parsed, once per source and reason. */
  onProblem?(source: string, message: string): void;
}

/** What the exporter says about itself (documented in docs/fleet.md with the rest). */
export const EXPORTER_FAMILIES = {
  buildInfo: {
    name: 'memsleuth_exporter_build_info',
    help: 'Always 1; the memsleuth version and what the exporter reads (live or a snapshot directory).',
    type: 'gauge',
    labels: ['version', 'origin'],
    cardinality: '1',
  },
  snapshotSeconds: {
    name: 'memsleuth_exporter_snapshot_duration_seconds',
    help: 'Wall time to read the last snapshot and build its exposition.',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
  snapshotCpu: {
    name: 'memsleuth_exporter_snapshot_cpu_seconds',
    help: 'CPU time (user + system) the exporter spent on the last snapshot.',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
  snapshotTime: {
    name: 'memsleuth_exporter_snapshot_timestamp_seconds',
    help: 'When the last snapshot was read (seconds since the epoch).',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
  snapshots: {
    name: 'memsleuth_exporter_snapshots_total',
    help: 'Snapshots read since the exporter started (scrapes within --interval share one).',
    type: 'counter',
    labels: [],
    cardinality: '1',
  },
  sourceUp: {
    name: 'memsleuth_exporter_source_up',
    help: 'Whether each kernel source was read (1) or was missing or unreadable (0) in the last snapshot.',
    type: 'gauge',
    labels: ['source'],
    cardinality: 'the registry entries with metrics (9)',
  },
  sourceSeconds: {
    name: 'memsleuth_exporter_source_duration_seconds',
    help: 'Wall time each source took in the last snapshot (read, parse and families; a file shared with an earlier source is counted there).',
    type: 'gauge',
    labels: ['source'],
    cardinality: 'the registry entries with metrics (9)',
  },
  series: {
    name: 'memsleuth_exporter_series',
    help: 'Series in the last exposition, this family included.',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
  pid: {
    name: 'memsleuth_exporter_pid',
    help: 'Process id of the exporter when it reads the live machine (memsleuth fleet keeps its own growth apart from the suspects).',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
  cpu: {
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    type: 'counter',
    labels: [],
    cardinality: '1',
  },
  rss: {
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
  start: {
    name: 'process_start_time_seconds',
    help: 'Start time of the process since unix epoch in seconds.',
    type: 'gauge',
    labels: [],
    cardinality: '1',
  },
} as const satisfies Record<string, MetricFamilyDoc>;

export interface SnapshotStats {
  /** When the snapshot was read (ms since the epoch). */
  atMs: number;
  wallMs: number;
  cpuMs: number;
  series: number;
  bytes: number;
  sources: { source: SourceName; up: boolean; ms: number }[];
}

const START_SECONDS = Math.round(Date.now() - process.uptime() * 1000) / 1000;

/** Seconds to the microsecond: more digits are noise. */
function micro(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

/**
 * Every registry entry's families for one snapshot, with whether each source was read and how
 * long it took. `states` keeps each entry's state from one snapshot to the next.
 */
export async function collectFamilies(
  snap: Snapshot,
  opts: {
    pageSizeBytes: number;
    options?: MetricsOptions;
    states?: Map<SourceName, Record<string, unknown>>;
    onProblem?: (source: SourceName, e: unknown) => void;
  },
): Promise<{ families: MetricFamily[]; sources: SnapshotStats['sources'] }> {
  const { pageSizeBytes } = opts;
  const options = opts.options ?? {};
  const states = opts.states ?? new Map<SourceName, Record<string, unknown>>();
  const families: MetricFamily[] = [];
  const sources: SnapshotStats['sources'] = [];
  // Entries whose metrics read another source through `data` (meminfo reads vmstat and zoneinfo).
  const data = new SnapshotData(snap, { smaps: false, pageSizeBytes }, ENTRY_BY_NAME);
  for (const entry of ENTRIES) {
    const m = entry.metrics;
    if (!m || (m.wanted && !m.wanted(options))) continue;
    let state = states.get(entry.name);
    if (!state) {
      state = {};
      states.set(entry.name, state);
    }
    const ctx: MetricsContext = { snap, pageSizeBytes, options, data, state };
    const s0 = performance.now();
    let up = false;
    try {
      const value = m.load ? await m.load(snap, ctx) : await data.get(entry.name);
      if (value === undefined) {
        const why = entry.absentReason?.(snap) ?? snap.whyMissing(entry.location.path) ?? 'not present';
        opts.onProblem?.(entry.name, `${entry.location.livePath}: ${why} (${entry.location.enable})`);
      } else {
        families.push(...(await m.collect(value, ctx)));
        up = true;
      }
    } catch (e) {
      opts.onProblem?.(entry.name, e);
    }
    sources.push({ source: entry.name, up, ms: performance.now() - s0 });
  }
  return { families, sources };
}

export class Exporter {
  private cached: { text: string; atMs: number } | undefined;
  private inflight: Promise<string> | undefined;
  private readonly states = new Map<SourceName, Record<string, unknown>>();
  private livePage: number | undefined;
  private snapshots = 0;
  private leaks: { atMs: number; families: MetricFamily[] } | undefined;
  private readonly reported = new Set<string>();
  /** The last snapshot's cost. */
  last: SnapshotStats | undefined;

  constructor(readonly options: ExporterOptions) {
    if (!(options.intervalMs >= 0)) throw new MemsleuthError('USAGE', '--interval: must not be negative');
  }

  /** The exposition: the cached one when younger than the interval, else a new snapshot's. */
  async scrape(nowMs = Date.now()): Promise<string> {
    if (this.cached && nowMs - this.cached.atMs < this.options.intervalMs) return this.cached.text;
    if (!this.inflight) {
      this.inflight = this.build().finally(() => {
        this.inflight = undefined;
      });
    }
    return this.inflight;
  }

  private problem(source: string, e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    const key = `${source}\0${message}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.options.onProblem?.(source, message);
  }

  private async open(): Promise<{ snap: Snapshot; pageSizeBytes: number }> {
    const dir = this.options.snapshotDir;
    if (dir === undefined) {
      this.livePage ??= await livePageSize();
      return { snap: await openLiveSnapshot(), pageSizeBytes: this.livePage };
    }
    let real: string;
    try {
      // Resolved once per snapshot: a replay that swaps a symlink never mixes two captures.
      real = realpathSync(dir);
    } catch (e) {
      throw new MemsleuthError('IO', `${dir}: cannot open snapshot directory (${(e as Error).message})`, {
        file: dir,
      });
    }
    if (!statSync(real).isDirectory())
      throw new MemsleuthError('USAGE', `--snapshot ${dir}: not a directory`, {
        hint: 'the exporter re-reads a snapshot directory at every snapshot: unpack a bundle with tar xzf',
      });
    const snap = new DirectorySnapshot(real, dir);
    return { snap, pageSizeBytes: (await snap.manifest()).pageSizeBytes || 4096 };
  }

  private async build(): Promise<string> {
    const atMs = Date.now();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const { snap, pageSizeBytes } = await this.open();
    let families: MetricFamily[];
    let sources: SnapshotStats['sources'];
    try {
      ({ families, sources } = await collectFamilies(snap, {
        pageSizeBytes,
        options: this.options.metrics ?? {},
        states: this.states,
        onProblem: (source, e) => this.problem(source, e),
      }));
    } finally {
      await snap.close();
    }
    families.push(...this.leakFamilies());
    this.snapshots++;

    const self = EXPORTER_FAMILIES;
    const up = FamilyBuilder.of(self.sourceUp);
    const secs = FamilyBuilder.of(self.sourceSeconds);
    for (const s of sources) {
      up.add([s.source], s.up ? 1 : 0);
      secs.add([s.source], micro(s.ms / 1000));
    }
    const own: FamilyBuilder[] = [
      FamilyBuilder.of(self.buildInfo).add([this.options.version, this.options.snapshotDir ?? 'live'], 1),
      up,
      secs,
      FamilyBuilder.of(self.snapshotTime).add([], atMs / 1000),
      FamilyBuilder.of(self.snapshots).add([], this.snapshots),
    ];
    if (this.options.snapshotDir === undefined) own.push(FamilyBuilder.of(self.pid).add([], process.pid));
    const cpuNow = process.cpuUsage();
    own.push(
      FamilyBuilder.of(self.cpu).add([], (cpuNow.user + cpuNow.system) / 1e6),
      FamilyBuilder.of(self.rss).add([], process.memoryUsage.rss()),
      FamilyBuilder.of(self.start).add([], START_SECONDS),
    );
    // Cost and size come last: they measure everything above, encoding included.
    const body = encodeFamilies([...families, ...own.map((b) => b.family)]);
    // The three families of the tail have one series each.
    const series = seriesCount(families) + own.reduce((n, b) => n + b.family.samples.length, 0) + 3;
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const tail = encodeFamilies([
      FamilyBuilder.of(self.snapshotSeconds).add([], micro(wallMs / 1000)).family,
      FamilyBuilder.of(self.snapshotCpu).add([], micro(cpuMs / 1000)).family,
      FamilyBuilder.of(self.series).add([], series).family,
    ]);
    const text = body + tail;
    this.last = { atMs, wallMs, cpuMs, series, bytes: Buffer.byteLength(text), sources };
    this.cached = { text, atMs };
    return text;
  }

  /** The recording's suspects, re-analysed at most every leaksIntervalMs. */
  private leakFamilies(): MetricFamily[] {
    const db = this.options.db;
    if (db === undefined) return [];
    const now = Date.now();
    if (this.leaks && now - this.leaks.atMs < (this.options.leaksIntervalMs ?? 60_000))
      return this.leaks.families;
    let families: MetricFamily[] = [];
    try {
      const reader = new RecordingReader(db);
      try {
        const window = this.options.leaksWindowMs;
        const rec = reader.load(window === undefined ? {} : { sinceMs: now - window });
        families = suspectFamilies(analyzeLeaks(rec), this.options.leakTop ?? 25);
      } finally {
        reader.close();
      }
    } catch (e) {
      this.problem('leaks', e);
    }
    this.leaks = { atMs: now, families };
    return families;
  }
}
