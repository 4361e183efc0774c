import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EntitySample } from '../model/samples.js';
import { RecordingWriter } from '../store/recording.js';
import { Sampler, type SamplerOptions } from './sampler.js';

export interface RecordOptions extends SamplerOptions {
  db: string;
  intervalMs: number;
  /** Stop after this long (ms); undefined: until the signal aborts. */
  durationMs?: number;
  /** Stop cleanly (Ctrl-C): the tick in progress is finished and the database closed. */
  signal?: AbortSignal;
  /** Called after every committed tick. */
  onTick?: (info: RecordTickInfo) => void;
  /** Extra meta rows (tool version, command line). */
  meta?: Record<string, string>;
}

export interface RecordTickInfo {
  ticks: number;
  dbBytes: number;
  readMs: number;
  writeMs: number;
  /** Entities the tick sampled (processes, caches, ...). */
  entities: number;
  /**
   * Processes among them. Unlike `entities` this does not move with the slower cadences (the
   * slab caches every 10 ticks, vmalloc callers every 6, mappings every 12): it moves when
   * processes come and go.
   */
  processes: number;
  topGrower: { key: string; comm: string; growthBytes: number } | undefined;
}

export interface RecordResult {
  db: string;
  ticks: number;
  dbBytes: number;
  /** Mean wall time per tick spent reading /proc and writing, ms. */
  meanReadMs: number;
  meanWriteMs: number;
  /** Sources that could not be read, with why. */
  problems: Record<string, string>;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * SQLite page cache of the recorder's connection: a tick appends at the right edge of the
 * samples and ticks tables (keyed by tick), and the 2 MiB default only held pages no tick
 * reads again (docs/recording.md, "Cost").
 */
const WRITER_CACHE_KIB = 256;

/**
 * Sample every `intervalMs` into the database until the duration passes or the signal
 * aborts. Ticks keep to a fixed schedule (a slow tick does not shift the next ones).
 */
export async function record(opts: RecordOptions): Promise<RecordResult> {
  mkdirSync(dirname(opts.db), { recursive: true });
  // Unless told: slab caches and zoneinfo every 10 s, vmallocinfo and the tmpfs walk (with the
  // search for who holds what grew) every minute, whatever the interval, and so the fd and thread
  // counts of processes whose memory holds still. At 1 s they would cost more than every process
  // together (the holder search reads every process's fd/ and maps), and a leak shows over minutes.
  const every = (ms: number) => Math.max(1, Math.round(ms / opts.intervalMs));
  const sampler = new Sampler({
    ...opts,
    slabEvery: opts.slabEvery ?? every(10_000),
    countsEvery: opts.countsEvery ?? every(10_000),
    tmpfsEvery: opts.tmpfsEvery ?? every(60_000),
    vmallocEvery: opts.vmallocEvery ?? every(60_000),
  });
  const writer = new RecordingWriter(
    opts.db,
    {
      interval_ms: String(opts.intervalMs),
      page_size: String(await sampler.pageSizeBytes()),
      slab_reclaimable: JSON.stringify(await sampler.reclaimableSlabCaches()),
      // Who is recording: `leaks` lists the recorder's own process apart from the suspects.
      recorder_pid: String(process.pid),
      ...opts.meta,
    },
    { cacheKiB: WRITER_CACHE_KIB },
  );
  const start = Date.now();
  let ticks = 0;
  let readTotal = 0;
  let writeTotal = 0;
  try {
    for (let k = 0; ; k++) {
      const due = start + k * opts.intervalMs;
      if (opts.durationMs !== undefined && due - start > opts.durationMs) break;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait, opts.signal);
      if (opts.signal?.aborted) break;
      const sample = await sampler.sample();
      const w0 = performance.now();
      writer.writeTick(sample);
      const writeMs = performance.now() - w0;
      ticks++;
      readTotal += sample.readMs ?? 0;
      writeTotal += writeMs;
      opts.onTick?.({
        ticks,
        dbBytes: writer.sizeBytes(),
        readMs: sample.readMs ?? 0,
        writeMs,
        entities: sample.entities.length,
        processes: processCount(sample.entities),
        topGrower: sampler.topGrower(),
      });
      // Skip ticks that are already overdue rather than bursting to catch up.
      const behind = Math.floor((Date.now() - start) / opts.intervalMs);
      if (behind > k) k = behind;
    }
  } finally {
    sampler.close();
    writer.close();
  }
  return {
    db: opts.db,
    ticks,
    dbBytes: writer.sizeBytes(),
    meanReadMs: ticks ? readTotal / ticks : 0,
    meanWriteMs: ticks ? writeTotal / ticks : 0,
    problems: Object.fromEntries(sampler.problems),
  };
}

function processCount(entities: readonly EntitySample[]): number {
  let n = 0;
  for (let i = 0; i < entities.length; i++) if (entities[i]!.layer === 'process') n++;
  return n;
}
