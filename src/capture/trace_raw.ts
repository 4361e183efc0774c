import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { MemsleuthError } from '../model/errors.js';
import { type FtraceFormat, parseFtraceFields, parseFtraceFormat } from '../sources/ftrace_format.js';
import { type PageLayout, RawTraceDecoder, ringBufferPageEvents } from '../sources/ftrace_raw.js';
import type { FtraceRecord } from '../sources/ftrace_text.js';
import { KernelSymbols } from '../sources/kallsyms.js';

/**
 * Reads an instance's per-CPU binary buffers (per_cpu/cpuN/trace_pipe_raw), decodes them
 * (sources/ftrace_raw.ts) and hands the records over in time order across CPUs, as
 * trace_pipe would, at a fraction of the cost: no text formatting and no symbol lookup
 * per stack frame in the kernel (kallsyms is read once, frames are looked up once each).
 *
 * Order across CPUs: each poll drains every CPU, then releases the records stamped
 * before the poll started (minus a margin for events still being written); the rest
 * wait for the next poll. This needs the `mono` trace clock (CLOCK_MONOTONIC).
 */
export interface RawReaderOptions {
  /** The instance directory and the tracefs root (for format files). */
  instanceDir: string;
  tracefsRoot: string;
  /** `system/event` of every event enabled. */
  events: string[];
  kernelStacks: boolean;
  userStacks: boolean;
  onRecord: (r: FtraceRecord) => void;
  /** Lost events reported by a page (-1: some, uncounted). */
  onLost?: (cpu: number, events: number) => void;
}

const MARGIN_SECONDS = 0.05;

interface CpuBuffer {
  cpu: number;
  fd: number;
  path: string;
  /** Timestamp of the last record read from this CPU. */
  lastTs: number;
}

async function readFormat(root: string, path: string): Promise<FtraceFormat> {
  const file = join(root, 'events', path, 'format');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new MemsleuthError('UNAVAILABLE', `${file}: cannot read (${(e as NodeJS.ErrnoException).code})`, {
      cause: e,
    });
  }
  return parseFtraceFormat(text, { file });
}

/** The page layout from events/header_page (commit size and data offset). */
async function pageLayout(root: string): Promise<PageLayout> {
  const file = join(root, 'events', 'header_page');
  const fields = parseFtraceFields(await readFile(file, 'utf8'), { file });
  const commit = fields.find((f) => f.name === 'commit');
  const data = fields.find((f) => f.name === 'data');
  if (!commit || !data) throw new MemsleuthError('UNAVAILABLE', `${file}: no commit or data field`);
  return { commitSize: commit.size, dataOffset: data.offset, littleEndian: endianness() === 'LE' };
}

/** Task names by pid, from /proc (raw events carry only the pid). */
export function commResolver(procRoot = '/proc'): (pid: number) => string {
  const cache = new Map<number, string>();
  return (pid) => {
    let c = cache.get(pid);
    if (c === undefined) {
      if (pid === 0) c = '<idle>';
      else {
        try {
          c = readFileSync(join(procRoot, String(pid), 'comm'), 'utf8').trim();
        } catch {
          c = '<...>';
        }
      }
      if (cache.size > 100_000) cache.clear();
      cache.set(pid, c);
    }
    return c;
  };
}

/** Kernel symbols for stack frames (root reads real addresses). */
export async function readKernelSymbols(procRoot = '/proc'): Promise<KernelSymbols> {
  const file = join(procRoot, 'kallsyms');
  return KernelSymbols.parse(await readFile(file, 'utf8'), { file });
}

export class RawTraceReader {
  private pending: FtraceRecord[] = [];
  private seq = 0;
  bytes = 0;
  records = 0;

  private constructor(
    private readonly cpus: CpuBuffer[],
    private readonly pageSize: number,
    private readonly layout: PageLayout,
    private readonly decoder: RawTraceDecoder,
    private readonly o: RawReaderOptions,
  ) {}

  static async open(o: RawReaderOptions, symbols?: KernelSymbols): Promise<RawTraceReader> {
    const formats = await Promise.all(o.events.map((e) => readFormat(o.tracefsRoot, e)));
    const kernelStack = o.kernelStacks ? await readFormat(o.tracefsRoot, 'ftrace/kernel_stack') : undefined;
    const userStack = o.userStacks ? await readFormat(o.tracefsRoot, 'ftrace/user_stack') : undefined;
    const layout = await pageLayout(o.tracefsRoot);
    // Kernel symbols only when something prints one (call sites, kernel stacks).
    const needSymbols = o.kernelStacks || formats.some((f) => /=%p[sSfF]/.test(f.printFmt));
    const syms = symbols ?? (needSymbols ? await readKernelSymbols() : undefined);
    const decoder = new RawTraceDecoder({
      formats,
      ...(kernelStack ? { kernelStack } : {}),
      ...(userStack ? { userStack } : {}),
      symbol: (a) => (syms ? syms.frame(a) : { func: `0x${a.toString(16)}` }),
      comm: commResolver(),
      littleEndian: layout.littleEndian,
    });
    // 6.8+ can make sub-buffers bigger than a page; a read returns one sub-buffer.
    const subKb = await readFile(join(o.instanceDir, 'buffer_subbuf_size_kb'), 'utf8').catch(() => undefined);
    const { livePageSize } = await import('./live.js');
    const pageSize = subKb !== undefined ? Number(subKb.trim()) * 1024 : await livePageSize();
    const cpus: CpuBuffer[] = [];
    for (const name of await readdir(join(o.instanceDir, 'per_cpu'))) {
      const m = /^cpu(\d+)$/.exec(name);
      if (!m) continue;
      const path = join(o.instanceDir, 'per_cpu', name, 'trace_pipe_raw');
      try {
        cpus.push({
          cpu: Number(m[1]),
          fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK),
          path,
          lastTs: 0,
        });
      } catch (e) {
        for (const c of cpus) closeSync(c.fd);
        throw new MemsleuthError('IO', `${path}: cannot open (${(e as NodeJS.ErrnoException).code})`, {
          cause: e,
        });
      }
    }
    return new RawTraceReader(cpus, pageSize, layout, decoder, o);
  }

  /**
   * Read every CPU's buffer (up to `maxPagesPerCpu` pages each, so a CPU producing faster
   * than we read cannot hold the poll forever), then deliver, in time order, the records
   * no unread event can precede: older than `watermark` (seconds of the trace clock,
   * normally when the poll started) and than the last event read from a CPU that still
   * had more.
   */
  async poll(watermark: number, maxPagesPerCpu = 2048): Promise<void> {
    const buf = Buffer.allocUnsafe(this.pageSize);
    let limit = watermark - MARGIN_SECONDS;
    for (const c of this.cpus) {
      let pages = 0;
      let drained = false;
      // Reads are synchronous: O_NONBLOCK never waits, and a page per read through the
      // thread pool would cost more than the decoding.
      while (pages < maxPagesPerCpu) {
        let n: number;
        try {
          n = readSync(c.fd, buf, 0, buf.length, null);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
            drained = true;
            break;
          }
          if (code === 'EINTR') continue;
          throw new MemsleuthError('IO', `${c.path}: read failed (${code})`, { cause: e });
        }
        if (n === 0) {
          drained = true;
          break;
        }
        pages++;
        this.bytes += n;
        const page = buf.subarray(0, n);
        const { events, missed } = ringBufferPageEvents(page, this.layout, { file: c.path });
        if (missed !== 0) this.o.onLost?.(c.cpu, missed);
        for (const e of events) {
          const r = this.decoder.decode(page, e, c.cpu);
          if (!r) continue;
          r.line = ++this.seq;
          if (r.type !== 'lost') c.lastTs = r.timestamp;
          this.pending.push(r);
        }
      }
      if (!drained) limit = Math.min(limit, c.lastTs);
      // Let timers and signals run between CPUs on a busy machine.
      await new Promise((r) => setImmediate(r));
    }
    this.release(limit);
  }

  private release(upTo: number): void {
    if (this.pending.length === 0) return;
    // Stable by arrival within a CPU: `line` is the read order.
    const ts = (r: FtraceRecord) => (r.type === 'lost' ? 0 : r.timestamp);
    this.pending.sort((a, b) => ts(a) - ts(b) || a.line - b.line);
    let i = 0;
    while (i < this.pending.length && ts(this.pending[i]!) <= upTo) i++;
    const ready = this.pending.slice(0, i);
    this.pending = this.pending.slice(i);
    for (const r of ready) {
      this.records++;
      this.o.onRecord(r);
    }
  }

  /** Deliver everything left (tracing is off). */
  async finish(): Promise<void> {
    await this.poll(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
  }

  close(): void {
    for (const c of this.cpus) {
      try {
        closeSync(c.fd);
      } catch {}
    }
    this.cpus.length = 0;
  }
}
