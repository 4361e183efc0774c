/**
 * `memsleuth slab trace CACHE --seconds N`: the /sys/kernel/slab/<cache>/trace workflow
 * (echo 1 > trace; sleep; echo 0 > trace; read the call traces in the kernel log), done
 * safely and grouped: every allocation and free of the cache prints a stack to the kernel
 * log, which on a busy cache can stall the machine, so the switch is on only for the
 * seconds asked and always turned off again (exit, Ctrl-C, SIGTERM; a killed run's at the
 * next start). Since 5.9 the switch is read-only: when the cache was not traced from boot
 * (slub_debug=T,<cache>), the kmem tracepoints of that cache do the same job.
 */
import { readFile } from 'node:fs/promises';
import { AllocationTracker, type TraceReport } from '../analysis/alloc_trace.js';
import {
  cleanupStaleSlabTrace,
  KmsgReader,
  slabTraceSwitch,
  switchSlabTraceOff,
  switchSlabTraceOn,
} from '../capture/slab_trace.js';
import { MemsleuthError } from '../model/errors.js';
import { parseSlubTraceLog, type SlubTraceRecord } from '../sources/slub_trace_log.js';
import { type KernelTraceResult, traceKernel } from './kernel.js';
import { sessionLifecycle, sleep } from './lifecycle.js';

export interface SlabTraceOptions {
  cache: string;
  seconds: number;
  /** Analyse a saved kernel log (dmesg) instead of tracing now. */
  logFile?: string;
  signal?: AbortSignal;
  handleSignals?: boolean;
  onNotice?: (line: string) => void;
  onStart?: () => void;
}

export type SlabTraceMethod = 'slub-trace' | 'slub-trace-from-boot' | 'tracefs' | 'log';

export interface SlabTraceResult {
  cache: string;
  method: SlabTraceMethod;
  report: TraceReport;
  /** TRACE records read from the log (slub methods). */
  records: number;
  kernel?: KernelTraceResult;
  stoppedBy?: string;
}

/** Pair a cache's TRACE records: what was allocated and not freed, by allocation stack. */
export function analyzeSlubTrace(
  records: readonly SlubTraceRecord[],
  cache: string,
  objectBytes: number,
): TraceReport {
  // Stacks told apart by offsets too (each shown as first seen); grouped without them.
  const t = new AllocationTracker({ stackOffsets: true });
  let time = 0;
  for (const r of records) {
    if (r.cache !== cache) continue;
    // The log gives order, not time: ages are in records.
    time++;
    const key = `${r.cache}:${r.object}`;
    if (r.op === 'free') {
      t.free(key, time);
      continue;
    }
    const a = {
      kind: 'kmem_cache' as const,
      bytes: objectBytes,
      pages: 0,
      time,
      pid: r.pid ?? 0,
      comm: r.comm ?? '?',
      cache: r.cache,
    };
    const frames = r.frames;
    t.alloc(key, { ...a, stackId: t.internStack(frames) });
  }
  return t.report(time);
}

async function objectSize(cache: string): Promise<number> {
  const t = await readFile(`/sys/kernel/slab/${cache}/object_size`, 'utf8').catch(() => '0');
  return Number(t.trim()) || 0;
}

export async function traceSlabCache(o: SlabTraceOptions): Promise<SlabTraceResult> {
  const notice = o.onNotice ?? (() => {});
  if (o.logFile !== undefined) {
    let text: string;
    try {
      text = await readFile(o.logFile, 'utf8');
    } catch (e) {
      throw new MemsleuthError('IO', `${o.logFile}: cannot read (${(e as NodeJS.ErrnoException).code})`);
    }
    const recs = parseSlubTraceLog(text, { file: o.logFile });
    const n = recs.filter((r) => r.cache === o.cache).length;
    if (n === 0)
      throw new MemsleuthError('BAD_INPUT', `${o.logFile}: no \`TRACE ${o.cache} alloc|free\` lines`, {
        hint: 'the log of a kernel booted with slub_debug=T,<cache> (or after writing 1 to /sys/kernel/slab/<cache>/trace)',
      });
    // The object's size from the hex dumps of its frees: the log may come from another machine.
    const dumped = Math.max(0, ...recs.filter((r) => r.cache === o.cache).map((r) => r.objectBytes ?? 0));
    return { cache: o.cache, method: 'log', report: analyzeSlubTrace(recs, o.cache, dumped), records: n };
  }
  for (const c of await cleanupStaleSlabTrace()) notice(`turned off what a killed run left on: ${c}`);
  const sw = await slabTraceSwitch(o.cache);
  let method: SlabTraceMethod = sw.on ? 'slub-trace-from-boot' : 'slub-trace';
  if (!sw.on) {
    if (await switchSlabTraceOn(sw))
      notice(
        `warning: ${sw.path} prints a stack to the kernel log for every allocation and free of ${o.cache}; ` +
          `on a busy cache that can stall the machine: on for ${o.seconds} s only`,
      );
    else {
      method = 'tracefs';
      notice(
        `${sw.path} is read-only on this kernel (5.9+; slub_debug=T,${o.cache} at boot is the only way on): ` +
          'using the kmem tracepoints of the cache instead',
      );
    }
  }
  if (sw.on)
    notice(
      `${o.cache} is traced since boot (slub_debug=T): reading its call traces from the kernel log for ${o.seconds} s`,
    );
  if (method === 'tracefs') {
    const kernel = await traceKernel({
      cache: o.cache,
      events: o.cache.startsWith('kmalloc-') ? ['kmalloc', 'cache'] : ['cache'],
      durationSeconds: o.seconds,
      ...(o.signal ? { signal: o.signal } : {}),
      handleSignals: o.handleSignals ?? false,
      onNotice: notice,
      ...(o.onStart ? { onStart: o.onStart } : {}),
    });
    const r: SlabTraceResult = { cache: o.cache, method, report: kernel.report, records: 0, kernel };
    if (kernel.stoppedBy) r.stoppedBy = kernel.stoppedBy;
    return r;
  }
  const life = sessionLifecycle({
    cleanupSync: () => {
      if (method === 'slub-trace') switchSlabTraceOff(sw);
    },
    handleSignals: o.handleSignals ?? false,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const kmsg = KmsgReader.open();
  let log = '';
  try {
    o.onStart?.();
    const end = Date.now() + o.seconds * 1000;
    while (!life.signal.aborted && Date.now() < end) {
      await sleep(Math.min(200, end - Date.now()), life.signal);
      log += kmsg.read();
    }
  } finally {
    if (method === 'slub-trace') switchSlabTraceOff(sw);
    log += kmsg.read();
    kmsg.close();
    life.dispose();
  }
  const recs = parseSlubTraceLog(log, { file: '/dev/kmsg' });
  const r: SlabTraceResult = {
    cache: o.cache,
    method,
    report: analyzeSlubTrace(recs, o.cache, await objectSize(o.cache)),
    records: recs.filter((x) => x.cache === o.cache).length,
  };
  const stopped = life.reason();
  if (stopped) r.stoppedBy = stopped;
  return r;
}
