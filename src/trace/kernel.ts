/**
 * `memsleuth trace kernel`: kmem tracepoints in an instance of our own, the kernel stack
 * of every allocation (a `stacktrace` trigger on the allocation events only: frees need
 * no stack), trace_pipe read as it fills, allocations paired with frees, and at the end
 * (and every --refresh seconds) what is outstanding by stack, call site and module.
 *
 * Overhead bounds:
 * - filters in the kernel: movable pages (page cache, anonymous memory) are left out
 *   unless asked for, --cache and --min-bytes become event filters;
 * - address sampling: with --sample N only objects whose address has certain bits clear
 *   are traced (allocation and free alike, so pairs stay whole) and each counts N times;
 * - a rate cap: when more than --max-rate events/s arrive, or more than
 *   --max-outstanding allocations are tracked, the sampling gets 4x sparser (the tracked
 *   allocations outside the new sample are dropped, so the estimate stays unbiased).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AllocationTracker, type TraceReport } from '../analysis/alloc_trace.js';
import {
  isSlabKey,
  KMEM_EVENT_GROUP_NAMES,
  KMEM_EVENT_GROUPS,
  type KmemEventGroup,
  KmemTraceAnalyzer,
  kmallocRange,
} from '../analysis/kmem_trace.js';
import { livePageSize } from '../capture/live.js';
import { readBufferStats } from '../capture/trace_pipe.js';
import { cleanupStale, openTracefs, type Tracefs, TraceInstance } from '../capture/tracefs.js';
import { MemsleuthError } from '../model/errors.js';
import { parseFtraceFormat } from '../sources/ftrace_format.js';
import { cpuSeconds, monotonicSeconds, sessionLifecycle, sleep } from './lifecycle.js';
import { openTraceSource, type ReadMode, type TraceSource } from './source.js';

export interface KernelTraceOptions {
  /** Seconds to trace; undefined: until the signal aborts (Ctrl-C). */
  durationSeconds?: number;
  events?: readonly KmemEventGroup[];
  /** Only this slab cache (kmalloc-N or a named cache). */
  cache?: string;
  /** Only allocations whose stack names this module (decided when reporting). */
  module?: string;
  /** Only events of this process's threads (and what they fork): set_event_pid. */
  pid?: number;
  /** Record kernel stacks (default true). */
  stacks?: boolean;
  /** Include movable pages (page cache, anonymous memory). */
  allPages?: boolean;
  /** Only slab allocations of at least this many bytes. */
  minBytes?: number;
  /** Initial address sampling, a power of two (default 1: every allocation). */
  sample?: number;
  /**
   * Events per second the kernel records above which the sampling gets sparser; dropped
   * events do the same. 0: never resample. Default 200000.
   */
  maxRate?: number;
  /** Outstanding allocations above which the sampling gets sparser. Default 2 000 000. */
  maxOutstanding?: number;
  /** Ring buffer per CPU, KiB (default: 64 MiB shared by the CPUs, 1-16 MiB each). */
  bufferKb?: number;
  /** Seconds between onRefresh calls (0 or undefined: none). */
  refreshSeconds?: number;
  /** Gets every stack group (it compares them from one refresh to the next). */
  onRefresh?: (r: TraceReport) => void;
  /**
   * Stack groups the final report builds, heaviest first (default all; AllocationTracker.report):
   * a table of twenty rows needs twenty of a long trace's hundred thousand.
   */
  stackGroups?: number;
  /** Diagnostics for stderr: what was cleaned up, sampling changes. */
  onNotice?: (line: string) => void;
  /** Called once tracing is on. */
  onStart?: () => void;
  /** Also write the raw trace text here (what `memsleuth trace report` reads). */
  saveTo?: string;
  signal?: AbortSignal;
  /** Catch SIGINT/SIGTERM/SIGHUP to stop and restore (the CLI sets it). */
  handleSignals?: boolean;
  /** Use this tracefs instead of finding one (tests). */
  tracefs?: Tracefs;
  /** Read the binary per-CPU buffers (default) or trace_pipe text. */
  readMode?: ReadMode;
}

export interface KernelTraceResult {
  report: TraceReport;
  /** Trace records per event name. */
  events: Record<string, number>;
  /** Stack records seen. */
  stacks: number;
  /** What the start removed of killed runs. */
  cleaned: string[];
  instance: string;
  tracefs: string;
  /** The signal that stopped the trace, if one did. */
  stoppedBy?: string;
  /** Wall-clock seconds traced. */
  seconds: number;
  /** CPU seconds memsleuth itself spent reading and pairing. */
  readerCpuSeconds: number;
  bytesRead: number;
  /** Sampling changes made by the rate cap. */
  resampled: { atSeconds: number; sample: number; why: string }[];
  /** Per-CPU buffer counters at the end (dropped: buffer full). */
  droppedEvents: number;
  overrunEvents: number;
  hashedPointers: boolean;
  readMode: ReadMode;
}

// Pages: bits above the largest buddy order (10), so a block is sampled whole.
const PFN_SHIFT = 10n;
// Slab objects: page granularity, so a slab page's objects are sampled together.
const PTR_SHIFT = 12n;

function hexMask(sample: number, shift: bigint): string {
  return `0x${(BigInt(sample - 1) << shift).toString(16)}`;
}

/** The address-sampling condition of an event (empty for sample 1). */
export function sampleCondition(event: string, sample: number): string {
  if (sample <= 1) return '';
  return event.startsWith('mm_page')
    ? `!(pfn & ${hexMask(sample, PFN_SHIFT)})`
    : `!(ptr & ${hexMask(sample, PTR_SHIFT)})`;
}

/** True when a tracked allocation's key is inside the sample (see sampleCondition). */
export function inSample(key: string, sample: number): boolean {
  if (sample <= 1) return true;
  const v = BigInt(`0x${key.slice(2)}`);
  const shift = isSlabKey(key) ? PTR_SHIFT : PFN_SHIFT;
  return ((v >> shift) & BigInt(sample - 1)) === 0n;
}

export interface EventPlan {
  system: 'kmem';
  event: string;
  filter: string;
  /** Record a kernel stack after it (allocation events). */
  stack: boolean;
}

/**
 * Which events to enable with which filters. `fields` tells which fields each event has
 * on this kernel (kmem_cache_alloc's `name` came after 6.12; kmem_cache_free's in 5.16).
 */
export function planKmemEvents(
  o: Pick<KernelTraceOptions, 'events' | 'cache' | 'allPages' | 'minBytes' | 'stacks'>,
  sample: number,
  fields: (event: string) => Set<string> | undefined,
  cacheSizeBytes?: number,
): { plan: EventPlan[]; notes: string[] } {
  const groups = o.events ?? KMEM_EVENT_GROUP_NAMES;
  const notes: string[] = [];
  const plan: EventPlan[] = [];
  const kmallocSize = o.cache === undefined ? undefined : kmallocRange(o.cache);
  for (const g of groups) {
    if (o.cache !== undefined && g === 'pages') continue; // a cache trace is about objects
    for (const side of ['alloc', 'free'] as const) {
      for (const event of KMEM_EVENT_GROUPS[g][side]) {
        const f = fields(event);
        if (!f) continue; // not on this kernel (kmalloc_node before 6.0 only)
        const conds: string[] = [];
        const s = sampleCondition(event, sample);
        if (s) conds.push(s);
        if (side === 'alloc' && g === 'pages' && !o.allPages) conds.push('migratetype != 1');
        if (side === 'alloc' && g !== 'pages' && o.minBytes) conds.push(`bytes_alloc >= ${o.minBytes}`);
        if (o.cache !== undefined) {
          if (g === 'kmalloc') {
            if (!kmallocSize) continue;
            if (side === 'alloc')
              conds.push(`bytes_req > ${kmallocSize.low} && bytes_req <= ${kmallocSize.high}`);
          } else if (f.has('name')) conds.push(`name == "${o.cache}"`);
          else if (side === 'alloc' && cacheSizeBytes !== undefined) {
            conds.push(`bytes_alloc == ${cacheSizeBytes}`);
            notes.push(
              `${event} has no cache name on this kernel: objects of every cache of ${cacheSizeBytes} bytes are traced`,
            );
          }
        }
        plan.push({
          system: 'kmem',
          event,
          filter: conds.join(' && '),
          stack: side === 'alloc' && (o.stacks ?? true),
        });
      }
    }
  }
  return { plan, notes };
}

async function eventFields(root: string, event: string): Promise<Set<string> | undefined> {
  const file = join(root, 'events', 'kmem', event, 'format');
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return new Set(parseFtraceFormat(text, { file }).fields.map((f) => f.name));
}

/** Default ring buffer per CPU: 64 MiB in all, between 1 and 16 MiB per CPU. */
async function defaultBufferKb(): Promise<number> {
  const { availableParallelism } = await import('node:os');
  return Math.max(1024, Math.min(16384, Math.floor(65536 / availableParallelism())));
}

/** Set the instance up; returns whether pointers stay hashed and which clock it uses. */
async function configure(
  inst: TraceInstance,
  o: KernelTraceOptions,
  plan: EventPlan[],
): Promise<{ hashed: boolean; clock: string }> {
  await inst.write('tracing_on', '0');
  await inst.write('buffer_size_kb', String(o.bufferKb ?? (await defaultBufferKb())));
  const clocks = await inst.read('trace_clock');
  // A clock shared by all CPUs, so an object freed on another CPU sorts after its allocation.
  const clock = /\bmono\b/.test(clocks) ? 'mono' : 'global';
  await inst.write('trace_clock', clock);
  await inst.tryWrite('options/overwrite', '0');
  await inst.tryWrite('options/sym-offset', '1');
  await inst.tryWrite('options/irq-info', '1');
  const raw = inst.exists('options/hash-ptr') ? await inst.tryWrite('options/hash-ptr', '0') : true;
  await applyPlan(inst, plan);
  return { hashed: !raw, clock };
}

async function applyPlan(inst: TraceInstance, plan: EventPlan[]): Promise<void> {
  for (const p of plan) {
    const dir = `events/${p.system}/${p.event}`;
    await inst.write(`${dir}/filter`, p.filter === '' ? '0' : p.filter);
    if (p.stack)
      await inst.write(`${dir}/trigger`, p.filter === '' ? 'stacktrace' : `stacktrace if ${p.filter}`);
    await inst.write(`${dir}/enable`, '1');
  }
}

/** Rewrite filters and triggers for a new sample (tracing stays on; a few events may straddle). */
async function resamplePlan(inst: TraceInstance, oldPlan: EventPlan[], newPlan: EventPlan[]): Promise<void> {
  for (let i = 0; i < newPlan.length; i++) {
    const p = newPlan[i]!;
    const old = oldPlan[i]!;
    const dir = `events/${p.system}/${p.event}`;
    await inst.write(`${dir}/filter`, p.filter === '' ? '0' : p.filter);
    if (p.stack) {
      await inst.write(`${dir}/trigger`, old.filter === '' ? '!stacktrace' : `!stacktrace if ${old.filter}`);
      await inst.write(`${dir}/trigger`, `stacktrace if ${p.filter}`);
    }
  }
}

/** Leave this process's threads out of the instance's events (set_event_notrace_pid, 5.8+). */
export async function ignoreOwnThreads(inst: TraceInstance): Promise<boolean> {
  if (!inst.exists('set_event_notrace_pid')) return false;
  const { readdir } = await import('node:fs/promises');
  const tids = await readdir('/proc/self/task').catch(() => [String(process.pid)]);
  return inst.tryWrite('set_event_notrace_pid', tids.join(' '));
}

/** Run a kernel allocation trace; tracefs is restored before this returns or throws. */
export async function traceKernel(o: KernelTraceOptions = {}): Promise<KernelTraceResult> {
  const notice = o.onNotice ?? (() => {});
  let sample = o.sample ?? 1;
  if (!Number.isInteger(Math.log2(sample)) || sample < 1)
    throw new MemsleuthError('USAGE', `--sample: expected a power of two, found ${sample}`);
  const tracefs = o.tracefs ?? (await openTracefs());
  let inst: TraceInstance | undefined;
  let source: TraceSource | undefined;
  const life = sessionLifecycle({
    cleanupSync: () => {
      inst?.removeSync();
      if (!o.tracefs) tracefs.releaseSync();
    },
    handleSignals: o.handleSignals ?? false,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  try {
    const cleaned = await cleanupStale(tracefs);
    for (const c of cleaned) notice(`removed what a killed run left: ${c}`);
    if (!(await eventFields(tracefs.root, 'kmalloc')))
      throw new MemsleuthError('UNAVAILABLE', `${tracefs.root}/events/kmem: no kmem trace events`, {
        hint: 'the kernel needs CONFIG_EVENT_TRACING (and CONFIG_TRACEPOINTS)',
      });
    const fields = new Map<string, Set<string> | undefined>();
    for (const g of KMEM_EVENT_GROUP_NAMES)
      for (const side of ['alloc', 'free'] as const)
        for (const e of KMEM_EVENT_GROUPS[g][side]) fields.set(e, await eventFields(tracefs.root, e));
    let cacheSize: number | undefined;
    if (o.cache !== undefined && !o.cache.startsWith('kmalloc-')) {
      const t = await readFile(`/sys/kernel/slab/${o.cache}/slab_size`, 'utf8').catch(() => undefined);
      if (t === undefined)
        throw new MemsleuthError(
          'USAGE',
          `--cache: no slab cache ${JSON.stringify(o.cache)} on this machine`,
          {
            hint: 'see `memsleuth slab top` for the cache names',
          },
        );
      cacheSize = Number(t.trim());
    }
    const mkPlan = (s: number) => planKmemEvents(o, s, (e) => fields.get(e), cacheSize);
    let { plan, notes } = mkPlan(sample);
    for (const n of notes) notice(n);
    if (plan.length === 0)
      throw new MemsleuthError('USAGE', 'nothing to trace with these --events and --cache');

    inst = await TraceInstance.create(tracefs);
    const { hashed, clock } = await configure(inst, o, plan);
    // The mono trace clock is CLOCK_MONOTONIC: ages can run to now, not to the last event.
    const traceNow = () => (clock === 'mono' ? monotonicSeconds() : undefined);
    if (hashed)
      notice('this kernel hashes pointers in traces (no hash-ptr option): the rate cap cannot resample');

    const pageSizeBytes = await livePageSize();
    const tracker = new AllocationTracker(o.module === undefined ? {} : { onlyModule: o.module });
    tracker.sample = sample;
    const analyzer = new KmemTraceAnalyzer(tracker, {
      pageSizeBytes,
      stacks: o.stacks ?? true,
      skipSlabPages: (o.events ?? KMEM_EVENT_GROUP_NAMES).some((g) => g !== 'pages'),
      ...(o.cache !== undefined ? { cache: o.cache } : {}),
    });
    let stackRecords = 0;
    source = await openTraceSource({
      inst,
      tracefsRoot: tracefs.root,
      events: plan.map((p) => `${p.system}/${p.event}`),
      kernelStacks: o.stacks ?? true,
      userStacks: false,
      kernelSymbols: true,
      clock,
      onRecord: (r) => {
        if (r.type === 'kernel-stack') stackRecords++;
        analyzer.onRecord(r);
      },
      ...(o.saveTo !== undefined ? { saveTo: o.saveTo } : {}),
      ...(o.readMode !== undefined ? { mode: o.readMode } : {}),
      onNotice: notice,
    });
    // Our own reads allocate (trace_iter_expand_format...): leave this process out (5.8+).
    await ignoreOwnThreads(inst);
    if (o.pid !== undefined) {
      const { readdir } = await import('node:fs/promises');
      const tids = await readdir(`/proc/${o.pid}/task`).catch(() => {
        throw new MemsleuthError('USAGE', `--pid: no process ${o.pid}`);
      });
      await inst.tryWrite('options/event-fork', '1');
      await inst.write('set_event_pid', tids.join(' '));
    }
    const cpu0 = cpuSeconds();
    const t0 = Date.now();
    await inst.write('tracing_on', '1');
    o.onStart?.();
    const resampled: KernelTraceResult['resampled'] = [];
    const end = o.durationSeconds === undefined ? Number.POSITIVE_INFINITY : t0 + o.durationSeconds * 1000;
    const maxRate = o.maxRate ?? 200_000;
    const maxOutstanding = o.maxOutstanding ?? 2_000_000;
    let nextRefresh = o.refreshSeconds ? t0 + o.refreshSeconds * 1000 : Number.POSITIVE_INFINITY;
    // The rate the kernel records at (read + in the buffer + lost), not the rate we manage
    // to read: a reader that falls behind must not hide the load it is under.
    const written = (st: Awaited<ReturnType<typeof readBufferStats>>) =>
      st.total.readEvents + st.total.entries + st.total.overrun + st.total.droppedEvents;
    let window = { t: t0, stats: await readBufferStats(inst.dir) };
    while (!life.signal.aborted && Date.now() < end) {
      await sleep(Math.min(200, Math.max(0, end - Date.now())), life.signal);
      await source.poll();
      const now = Date.now();
      if (now - window.t >= 1000) {
        const stats = await readBufferStats(inst.dir);
        const rate = ((written(stats) - written(window.stats)) * 1000) / (now - window.t);
        const dropped =
          stats.total.droppedEvents +
          stats.total.overrun -
          window.stats.total.droppedEvents -
          window.stats.total.overrun;
        window = { t: now, stats };
        const why =
          dropped > 0
            ? `${dropped} events dropped (buffer full)`
            : maxRate > 0 && rate > maxRate
              ? `${Math.round(rate)} events/s > --max-rate ${maxRate}`
              : tracker.size > maxOutstanding
                ? `${tracker.size} outstanding > ${maxOutstanding}`
                : undefined;
        // Sparser than 1 in 4096 tells nothing any more.
        if (why && !hashed && maxRate > 0 && sample < 4096) {
          sample *= 4;
          const next = mkPlan(sample).plan;
          await resamplePlan(inst, plan, next);
          plan = next;
          tracker.resample(sample, (k) => inSample(k, sample));
          resampled.push({ atSeconds: (now - t0) / 1000, sample, why });
          notice(`rate cap: ${why}: now tracing 1 in ${sample} objects by address (counts are scaled up)`);
        }
      }
      if (now >= nextRefresh && o.onRefresh) {
        nextRefresh = now + o.refreshSeconds! * 1000;
        o.onRefresh(tracker.report(traceNow()));
      }
    }
    await inst.write('tracing_on', '0');
    const stoppedAt = traceNow();
    const seconds = (Date.now() - t0) / 1000;
    await source.finish();
    analyzer.finish();
    const stats = await readBufferStats(inst.dir);
    // Lost-event markers and the buffers' own counters describe the same losses.
    const lostFromStats = stats.total.droppedEvents + stats.total.overrun;
    if (lostFromStats > tracker.counters.lostEvents) tracker.counters.lostEvents = lostFromStats;
    const readerCpuSeconds = cpuSeconds() - cpu0;
    const report = tracker.report(stoppedAt, o.stackGroups === undefined ? {} : { stacks: o.stackGroups });
    const stoppedBy = life.reason();
    const result: KernelTraceResult = {
      report,
      events: analyzer.events,
      stacks: stackRecords,
      cleaned,
      instance: inst.name,
      tracefs: tracefs.root,
      seconds,
      readerCpuSeconds,
      bytesRead: source.bytes,
      resampled,
      droppedEvents: stats.total.droppedEvents,
      overrunEvents: stats.total.overrun,
      hashedPointers: hashed,
      readMode: source.mode,
    };
    if (stoppedBy) result.stoppedBy = stoppedBy;
    return result;
  } finally {
    await source?.close();
    try {
      await inst?.remove();
    } finally {
      if (!o.tracefs) await tracefs.release();
      life.dispose();
    }
  }
}
