/**
 * `memsleuth trace user --pid PID`: uprobes and uretprobes on the malloc family of the
 * library the process really allocates from (its own symbol tables: a static binary, a
 * preloaded jemalloc, else libc), the stack of each allocation read at its return (the
 * frame-pointer chain as fetch-args of the return probe; or the userstacktrace option),
 * allocations paired with frees, symbolised from /proc/PID/maps and the ELF symbols.
 *
 * The cost: a uprobe is a breakpoint in the file, so every process that maps that libc
 * traps on it while the probes exist; the instance keeps only the target's threads
 * (set_event_pid, with event-fork for new threads). The target's share of CPU time spent
 * in the kernel, before and during the trace, is measured and reported.
 */
import { readdir, readFile } from 'node:fs/promises';
import { AllocationTracker, type TraceReport } from '../analysis/alloc_trace.js';
import { UserSymbolizer, UserTraceAnalyzer, userCulprit, userStackResolver } from '../analysis/user_trace.js';
import { livePageSize } from '../capture/live.js';
import { ElfCache, findDefinition, readProcessMaps } from '../capture/process_elf.js';
import { readBufferStats } from '../capture/trace_pipe.js';
import { cleanupStale, openTracefs, type Tracefs, TraceInstance, UprobeGroup } from '../capture/tracefs.js';
import { MemsleuthError } from '../model/errors.js';
import { fileOffsetOf } from '../sources/elf_symbols.js';
import { parseProcStat } from '../sources/proc_stat.js';
import { LIBC_PROBES, type LibcProbe, libcProbeDefinitions } from '../sources/uprobe_events.js';
import { cpuSeconds, monotonicSeconds, sessionLifecycle, sleep } from './lifecycle.js';
import { openTraceSource, type ReadMode, type TraceSource } from './source.js';

export interface UserTraceOptions {
  pid: number;
  /** Seconds to trace; undefined: until the signal aborts (or the process exits). */
  durationSeconds?: number;
  /** Which functions to probe (default all of LIBC_PROBES). */
  functions?: readonly LibcProbe['fn'][];
  /** Seconds of CPU accounting before the probes go in, for the overhead figure (default 1). */
  baselineSeconds?: number;
  refreshSeconds?: number;
  onRefresh?: (r: TraceReport) => void;
  /** Stack groups the final report builds, heaviest first (default all; see KernelTraceOptions). */
  stackGroups?: number;
  onNotice?: (line: string) => void;
  /** Called once tracing is on. */
  onStart?: () => void;
  /** Ring buffer per CPU, KiB (default 8192). */
  bufferKb?: number;
  signal?: AbortSignal;
  handleSignals?: boolean;
  tracefs?: Tracefs;
  /** Read the binary per-CPU buffers (default) or trace_pipe text. */
  readMode?: ReadMode;
  /**
   * Frames read from the frame-pointer chain by the return probes (default 8, at most 12);
   * 0 uses the userstacktrace option instead (a walk after every event, costlier).
   */
  stackDepth?: number;
}

export interface ProbeSite {
  fn: string;
  /** The file as the process maps it. */
  library: string;
  offset: string;
}

/** The target's CPU time split, before and during the trace. */
export interface TracingOverhead {
  /** Probe hits recorded for the target. */
  hits: number;
  hitsPerSecond: number;
  baselineSeconds: number;
  /** Share of the target's CPU time spent in the kernel before the probes went in. */
  baselineSystemShare?: number;
  /** The same while traced: a probe hit is a trap, its cost is system time of the target. */
  tracedSystemShare?: number;
  /** CPU seconds the target used while traced. */
  tracedCpuSeconds: number;
  /** Estimated share of the target's CPU time the probes took (traced - baseline system share). */
  estimatedShare?: number;
  /** Kernel CPU seconds of the target while traced, beyond its kernel time before: the probes'. */
  probeCpuSeconds?: number;
  /** probeCpuSeconds per probe hit, in microseconds. */
  microsPerHit?: number;
  /** CPU seconds memsleuth used reading and pairing. */
  readerCpuSeconds: number;
}

export interface UserTraceResult {
  pid: number;
  comm: string;
  report: TraceReport;
  events: Record<string, number>;
  probes: ProbeSite[];
  cleaned: string[];
  stoppedBy?: string;
  /** The process exited during the trace. */
  exited: boolean;
  seconds: number;
  overhead: TracingOverhead;
  droppedEvents: number;
  readMode: ReadMode;
}

async function cpuTicks(pid: number): Promise<{ user: number; system: number } | undefined> {
  const file = `/proc/${pid}/stat`;
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const s = parseProcStat(text, { file });
  return { user: s.utimeTicks, system: s.stimeTicks };
}

async function threadsOf(pid: number): Promise<string[]> {
  return readdir(`/proc/${pid}/task`).catch(() => [String(pid)]);
}

function systemShare(
  a: { user: number; system: number },
  b: { user: number; system: number },
): number | undefined {
  const total = b.user + b.system - a.user - a.system;
  return total > 0 ? (b.system - a.system) / total : undefined;
}

/** Run a user-space allocation trace of one process; tracefs is restored before this returns or throws. */
export async function traceUser(o: UserTraceOptions): Promise<UserTraceResult> {
  const notice = o.onNotice ?? (() => {});
  const pid = o.pid;
  const maps = await readProcessMaps(pid);
  const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
  const elfs = new ElfCache(pid);
  const wanted = LIBC_PROBES.filter((p) => !o.functions || o.functions.includes(p.fn));
  const sites: { probe: LibcProbe; mapped: string; path: string; offset: bigint; machine: number }[] = [];
  for (const p of wanted) {
    const def = findDefinition(maps, elfs, p.fn);
    if (!def) {
      if (p.fn === 'malloc')
        throw new MemsleuthError(
          'UNAVAILABLE',
          `process ${pid} (${comm}) maps no library that defines malloc`,
          {
            hint: 'a Go or Rust binary with its own allocator has nothing to probe; `memsleuth pmap` shows its mappings',
          },
        );
      notice(`${p.fn}: not defined in any library of process ${pid}; not traced`);
      continue;
    }
    const sym = def.elf.byName.get(p.fn)!;
    const offset = fileOffsetOf(def.elf, sym.value);
    if (offset === undefined)
      throw new MemsleuthError('BAD_INPUT', `${def.mapped}: ${p.fn} is outside every PT_LOAD segment`);
    sites.push({
      probe: p,
      mapped: def.mapped,
      path: elfs.hostPath(def.mapped),
      offset,
      machine: def.elf.machine,
    });
  }
  const libc = sites.find((s) => s.probe.fn === 'malloc')!.mapped;

  const baselineSeconds = o.baselineSeconds ?? 1;
  const stackDepth = o.stackDepth ?? 8;
  // Each frame is one more dereference of the fetch-arg; kernels allow 16 steps per arg.
  if (!Number.isInteger(stackDepth) || stackDepth < 0 || stackDepth > 12)
    throw new MemsleuthError('USAGE', `--stack-depth: expected 0 to 12, found ${stackDepth}`);
  const ticks0 = await cpuTicks(pid);
  const tracefs = o.tracefs ?? (await openTracefs());
  let inst: TraceInstance | undefined;
  let group: UprobeGroup | undefined;
  let source: TraceSource | undefined;
  const life = sessionLifecycle({
    cleanupSync: () => {
      inst?.removeSync();
      group?.removeSync();
      if (!o.tracefs) tracefs.releaseSync();
    },
    handleSignals: o.handleSignals ?? false,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  try {
    const cleaned = await cleanupStale(tracefs);
    for (const c of cleaned) notice(`removed what a killed run left: ${c}`);
    if (baselineSeconds > 0) await sleep(baselineSeconds * 1000, life.signal);
    const ticks1 = await cpuTicks(pid);

    group = await UprobeGroup.create(tracefs);
    for (const s of sites)
      for (const d of libcProbeDefinitions(s.probe, group.group, s.path, s.offset, s.machine, stackDepth)) {
        const { group: _g, ...def } = d;
        await group.add(def);
      }
    inst = await TraceInstance.create(tracefs);
    await inst.write('tracing_on', '0');
    await inst.write('buffer_size_kb', String(o.bufferKb ?? 16384));
    const clocks = await inst.read('trace_clock');
    const clock = /\bmono\b/.test(clocks) ? 'mono' : 'global';
    await inst.write('trace_clock', clock);
    await inst.tryWrite('options/overwrite', '0');
    await inst.tryWrite('options/sym-userobj', '0');
    // The kernel's user stack walk after every event (entries and frees too), only when asked.
    await inst.write('options/userstacktrace', stackDepth > 0 ? '0' : '1');
    await inst.tryWrite('options/event-fork', '1');
    await inst.write('set_event_pid', (await threadsOf(pid)).join(' '));
    await inst.write(`events/${group.group}/enable`, '1');

    const pageSizeBytes = await livePageSize();
    let currentMaps = maps;
    const symbolizer = new UserSymbolizer(maps, (p) => elfs.get(p));
    const libcName = libc.split('/').pop();
    const tracker = new AllocationTracker({
      resolve: userStackResolver(symbolizer),
      culprit: userCulprit(libcName),
      module: (_f, c) => c?.module ?? '?',
    });
    const analyzer = new UserTraceAnalyzer(tracker, { pageSizeBytes });
    const events: string[] = [];
    for (const site of sites) {
      events.push(`${group.group}/${site.probe.fn}`);
      if (site.probe.ret) events.push(`${group.group}/${site.probe.fn}_ret`);
    }
    source = await openTraceSource({
      inst,
      tracefsRoot: tracefs.root,
      events,
      kernelStacks: false,
      userStacks: stackDepth === 0,
      kernelSymbols: false,
      clock,
      onRecord: analyzer.onRecord,
      ...(o.readMode !== undefined ? { mode: o.readMode } : {}),
      onNotice: notice,
    });
    const traceNow = () => (clock === 'mono' ? monotonicSeconds() : undefined);
    const refreshMaps = async () => {
      try {
        currentMaps = await readProcessMaps(pid);
        symbolizer.update(currentMaps);
      } catch {
        // exited: keep the last maps
      }
    };
    const cpu0 = cpuSeconds();
    const t0 = Date.now();
    await inst.write('tracing_on', '1');
    o.onStart?.();
    const end = o.durationSeconds === undefined ? Number.POSITIVE_INFINITY : t0 + o.durationSeconds * 1000;
    let nextRefresh = o.refreshSeconds ? t0 + o.refreshSeconds * 1000 : Number.POSITIVE_INFINITY;
    let exited = false;
    let lastTicks = await cpuTicks(pid);
    while (!life.signal.aborted && Date.now() < end) {
      await sleep(Math.min(200, Math.max(0, end - Date.now())), life.signal);
      await source.poll();
      const t = await cpuTicks(pid);
      if (!t) {
        exited = true;
        notice(`process ${pid} exited`);
        break;
      }
      lastTicks = t;
      if (Date.now() >= nextRefresh && o.onRefresh) {
        nextRefresh = Date.now() + o.refreshSeconds! * 1000;
        await refreshMaps();
        o.onRefresh(tracker.report(traceNow()));
      }
    }
    await inst.write('tracing_on', '0');
    const stoppedAt = traceNow();
    const seconds = (Date.now() - t0) / 1000;
    const ticks2 = exited ? lastTicks : ((await cpuTicks(pid)) ?? lastTicks);
    await source.finish();
    const stats = await readBufferStats(inst.dir);
    const lost = stats.total.droppedEvents + stats.total.overrun;
    if (lost > tracker.counters.lostEvents) tracker.counters.lostEvents = lost;
    if (!exited) await refreshMaps();
    const report = tracker.report(stoppedAt, o.stackGroups === undefined ? {} : { stacks: o.stackGroups });
    const hits = Object.values(analyzer.events).reduce((a, b) => a + b, 0);
    const tck = 100; // USER_HZ: /proc/PID/stat counts in 1/100 s on every architecture Linux has
    const overhead: TracingOverhead = {
      hits,
      hitsPerSecond: seconds > 0 ? hits / seconds : 0,
      baselineSeconds,
      tracedCpuSeconds:
        ticks2 && lastTicks
          ? (ticks2.user + ticks2.system - (ticks1?.user ?? 0) - (ticks1?.system ?? 0)) / tck
          : 0,
      readerCpuSeconds: cpuSeconds() - cpu0,
    };
    const base = ticks0 && ticks1 ? systemShare(ticks0, ticks1) : undefined;
    const traced = ticks1 && ticks2 ? systemShare(ticks1, ticks2) : undefined;
    if (base !== undefined) overhead.baselineSystemShare = base;
    if (traced !== undefined) overhead.tracedSystemShare = traced;
    if (traced !== undefined) overhead.estimatedShare = Math.max(0, traced - (base ?? 0));
    if (ticks1 && ticks2) {
      // Kernel time the target would have spent anyway: its rate before the probes went in.
      const baseRate =
        ticks0 && baselineSeconds > 0 ? (ticks1.system - ticks0.system) / tck / baselineSeconds : 0;
      const probe = Math.max(0, (ticks2.system - ticks1.system) / tck - baseRate * seconds);
      overhead.probeCpuSeconds = probe;
      if (hits > 0) overhead.microsPerHit = (probe / hits) * 1e6;
    }
    const result: UserTraceResult = {
      pid,
      comm,
      report,
      events: analyzer.events,
      probes: sites.map((s) => ({ fn: s.probe.fn, library: s.mapped, offset: `0x${s.offset.toString(16)}` })),
      cleaned,
      exited,
      seconds,
      overhead,
      droppedEvents: stats.total.droppedEvents,
      readMode: source.mode,
    };
    const stoppedBy = life.reason();
    if (stoppedBy) result.stoppedBy = stoppedBy;
    return result;
  } finally {
    await source?.close();
    try {
      if (inst && group) await inst.tryWrite(`events/${group.group}/enable`, '0');
      await inst?.remove();
      await group?.remove();
    } finally {
      if (!o.tracefs) await tracefs.release();
      life.dispose();
    }
  }
}
