/**
 * Where a session's records come from: the per-CPU binary buffers (default: cheap, needs
 * the mono clock and /proc/kallsyms for kernel symbols) or trace_pipe text (the kernel
 * formats everything; the fallback, and what the collector saves). Both hand the same
 * records to the analysis, and both can save the trace as text for `trace report`.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { TracePipeReader } from '../capture/trace_pipe.js';
import { RawTraceReader, readKernelSymbols } from '../capture/trace_raw.js';
import type { TraceInstance } from '../capture/tracefs.js';
import { type FtraceRecord, FtraceTextParser, formatFtraceRecord } from '../sources/ftrace_text.js';
import { monotonicSeconds } from './lifecycle.js';

export type ReadMode = 'raw' | 'text';

export interface TraceSource {
  readonly mode: ReadMode;
  /** Read what is there and deliver the records that are complete. */
  poll(): Promise<void>;
  /** Tracing is off: deliver everything left. */
  finish(): Promise<void>;
  close(): Promise<void>;
  /** Bytes read from tracefs. */
  readonly bytes: number;
}

export interface SourceOptions {
  inst: TraceInstance;
  tracefsRoot: string;
  /** `system/event` of every event enabled. */
  events: string[];
  kernelStacks: boolean;
  userStacks: boolean;
  /** Kernel symbols are needed (call sites, kernel stacks). */
  kernelSymbols: boolean;
  clock: string;
  onRecord: (r: FtraceRecord) => void;
  /** Also write the trace as text. */
  saveTo?: string;
  /** Force a mode (default: raw when the clock is mono, else text). */
  mode?: ReadMode;
  onNotice?: (line: string) => void;
}

async function writeText(out: WriteStream, text: string | Buffer): Promise<void> {
  if (!out.write(text)) await new Promise<void>((r) => out.once('drain', () => r()));
}

export async function openTraceSource(o: SourceOptions): Promise<TraceSource> {
  const out = o.saveTo === undefined ? undefined : createWriteStream(o.saveTo);
  const closeOut = async () => {
    if (out) await new Promise<void>((r) => out.end(() => r()));
  };
  let mode: ReadMode = o.mode ?? (o.clock === 'mono' ? 'raw' : 'text');
  let raw: RawTraceReader | undefined;
  if (mode === 'raw') {
    try {
      const saved: string[] = [];
      raw = await RawTraceReader.open(
        {
          instanceDir: o.inst.dir,
          tracefsRoot: o.tracefsRoot,
          events: o.events,
          kernelStacks: o.kernelStacks,
          userStacks: o.userStacks,
          onRecord: (r) => {
            o.onRecord(r);
            if (out) saved.push(formatFtraceRecord(r));
          },
          onLost: (cpu, events) => {
            const r: FtraceRecord = { type: 'lost', cpu, events: events < 0 ? undefined : events, line: 0 };
            o.onRecord(r);
            if (out) saved.push(formatFtraceRecord(r));
          },
        },
        o.kernelSymbols ? await readKernelSymbols() : undefined,
      );
      const reader = raw;
      const flush = async () => {
        if (out && saved.length) await writeText(out, saved.splice(0).join(''));
      };
      return {
        mode,
        poll: async () => {
          await reader.poll(monotonicSeconds());
          await flush();
        },
        finish: async () => {
          await reader.finish();
          await flush();
        },
        close: async () => {
          reader.close();
          await closeOut();
        },
        get bytes() {
          return reader.bytes;
        },
      };
    } catch (e) {
      if (o.mode === 'raw') {
        await closeOut();
        throw e;
      }
      o.onNotice?.(`reading trace_pipe text (binary buffers unusable: ${(e as Error).message})`);
      mode = 'text';
    }
  }
  const pipe = await TracePipeReader.open(o.inst.path('trace_pipe'));
  const parser = new FtraceTextParser(o.onRecord, { file: `${o.inst.dir}/trace_pipe` });
  const drain = async () => {
    for (const chunk of await pipe.readAvailable()) {
      parser.push(chunk);
      if (out) await writeText(out, chunk);
    }
  };
  return {
    mode,
    poll: drain,
    finish: async () => {
      await drain();
      parser.end();
    },
    close: async () => {
      await pipe.close();
      await closeOut();
    },
    get bytes() {
      return pipe.bytes;
    },
  };
}
