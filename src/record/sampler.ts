import { livePageSize, openLiveSnapshot } from '../capture/live.js';
import { ProcWatch } from '../capture/proc_watch.js';
import type { EntitySample, Layer, TickSample } from '../model/samples.js';
import type { Snapshot, SourceName } from '../model/snapshot.js';
import { ENTRIES, ENTRY_BY_NAME, SnapshotData } from '../registry/index.js';
import { topGrower } from '../registry/sources/processes.js';
import { reclaimableSlabCaches } from '../registry/sources/slabinfo.js';
import type { SampleContext, SampleOptions } from '../registry/types.js';

/**
 * The per-tick reads of `memsleuth record`: every registry entry with a `sample` turns its
 * source into entity samples for the store (meminfo and the unaccounted remainder, vmstat
 * counters, slab caches, buddy free lists, vmalloc callers and allocinfo call sites every
 * `vmallocEvery` ticks, kmemleak when asked, processes with PSS and per-mapping sizes at
 * slower cadences). Reads go through a Snapshot: this machine by default, or any snapshot
 * directory laid out like one (a captured tree replayed, a lab moment).
 */
export interface SamplerOptions extends SampleOptions {
  /** What to read at each tick; default this machine, now (a fresh LiveSnapshot per tick). */
  snapshot?: () => Snapshot | Promise<Snapshot>;
  /** Page size; default the snapshot manifest's. */
  pageSizeBytes?: number;
}

export class Sampler {
  private readonly opts: SamplerOptions;
  private readonly open: () => Snapshot | Promise<Snapshot>;
  private readonly states = new Map<SourceName, Record<string, unknown>>();
  private pageSize: number | undefined;
  private tick = 0;
  /** This machine's processes, from files kept open across ticks (the default snapshot only). */
  private readonly watch: ProcWatch | undefined;
  /** Sources that failed to read or parse, with the reason (reported once by the recorder). */
  readonly problems = new Map<string, string>();

  constructor(opts: SamplerOptions = {}) {
    this.opts = opts;
    if (opts.snapshot) this.open = opts.snapshot;
    else {
      const watch = new ProcWatch();
      this.watch = watch;
      this.open = () => openLiveSnapshot(undefined, { watch });
    }
    this.pageSize = opts.pageSizeBytes;
  }

  private problem(source: string, e: unknown): void {
    if (!this.problems.has(source)) this.problems.set(source, (e as Error)?.message ?? String(e));
  }

  /** Page size of what is sampled (the snapshot's manifest), read once. */
  async pageSizeBytes(): Promise<number> {
    // This machine's without a manifest (which probes every source and reads the kernel config).
    if (this.pageSize === undefined && this.watch) this.pageSize = await livePageSize();
    if (this.pageSize === undefined) {
      const snap = await this.open();
      try {
        this.pageSize = (await snap.manifest()).pageSizeBytes || 4096;
      } finally {
        await snap.close();
      }
    }
    return this.pageSize;
  }

  /** Slab caches the kernel accounts as reclaimable (SLAB_RECLAIM_ACCOUNT). */
  async reclaimableSlabCaches(): Promise<string[]> {
    const snap = await this.open();
    try {
      return await reclaimableSlabCaches(snap);
    } finally {
      await snap.close();
    }
  }

  /** Read one tick. Never throws for a source that is missing or vanishes mid-read. */
  async sample(nowMs = Date.now()): Promise<TickSample> {
    const started = performance.now();
    this.tick++;
    const pageSizeBytes = await this.pageSizeBytes();
    const snap = await this.open();
    const entities: EntitySample[] = [];
    const layersRead = new Set<Layer>();
    try {
      const data = new SnapshotData(snap, { smaps: false, pageSizeBytes }, ENTRY_BY_NAME);
      for (const entry of ENTRIES) {
        if (!entry.sample) continue;
        let state = this.states.get(entry.name);
        if (!state) {
          state = {};
          this.states.set(entry.name, state);
        }
        const ctx: SampleContext = {
          tick: this.tick,
          pageSizeBytes,
          options: this.opts,
          data,
          state,
          problem: (source, e) => this.problem(source, e),
          layerRead: (layer) => layersRead.add(layer),
        };
        try {
          entities.push(...(await entry.sample(snap, ctx)));
        } catch (e) {
          this.problem(entry.location.path, e);
        }
      }
    } finally {
      await snap.close();
    }
    const tick: TickSample = { tMs: nowMs, readMs: performance.now() - started, entities };
    if (layersRead.size > 0) tick.layersRead = [...layersRead];
    return tick;
  }

  /** Let go of the files kept open for the processes (the sampler is not used after). */
  close(): void {
    this.watch?.close();
  }

  /** The process whose RSS+swap grew most since it was first seen. */
  topGrower(): { key: string; comm: string; growthBytes: number } | undefined {
    return topGrower(this.states.get('processes') ?? {});
  }
}
