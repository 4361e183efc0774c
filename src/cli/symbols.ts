/**
 * `--symbols PATH` for every command that prints kernel stacks, in one place: open a
 * symbolizer, give every frame of a result its `source` (file:line and inlines) before the
 * result is printed (so --json carries it too), and the SOURCE column and stack lines that
 * show it.
 */
import { release as osRelease } from 'node:os';
import { type Frame, formatFrame, formatSource } from '../model/frame.js';
import type { Symbolizer, SymbolizerOptions } from '../symbols/symbolizer.js';
import { frameSource } from '../symbols/text.js';
import type { CommandContext } from './context.js';
import type { Column } from './format.js';

/** `--symbols PATH` (repeatable), shared by every command that prints kernel stacks. */
export const SYMBOLS_OPTION = {
  symbols: {
    type: 'string',
    multiple: true,
    valueName: 'PATH',
    description: 'resolve frames to file:line from this vmlinux, .ko, or directory of them (repeatable)',
  },
} as const;

export interface SymbolizerSetup {
  /** --symbols values. */
  paths: readonly string[] | undefined;
  /** Kernel release whose standard places (/usr/lib/debug, /lib/modules/R/build) are searched too. */
  kernelRelease?: string | undefined;
  /** The frames come from this machine now: check files against the running build-ids. */
  running: boolean;
}

/** A symbolizer whose warnings go to stderr, one line each. */
export async function openSymbolizer(setup: SymbolizerSetup, ctx: CommandContext): Promise<Symbolizer> {
  const opts: SymbolizerOptions = {
    paths: setup.paths ?? [],
    onWarning: (m) => ctx.stderr.write(`memsleuth: warning: ${m}\n`),
  };
  const release = setup.kernelRelease ?? (setup.running ? osRelease() : undefined);
  if (release) opts.kernelRelease = release;
  // Loaded when --symbols is given: the ELF and DWARF readers are most of a command's modules.
  if (setup.running) opts.buildIds = await (await import('../capture/build_ids.js')).readRunningBuildIds();
  return (await import('../symbols/symbolizer.js')).Symbolizer.create(opts);
}

/** The kernel release a snapshot names, for the standard places of its debug info (none when unknown). */
export async function releaseOf(snap: {
  manifest(): Promise<{ kernelRelease: string }>;
}): Promise<string | undefined> {
  const r = (await snap.manifest()).kernelRelease;
  return r && r !== 'unknown' ? r : undefined;
}

const FRAME_KEYS = new Set(['func', 'offset', 'length', 'module', 'address', 'source']);

/** Whether a value is a Frame: `func` and nothing but frame fields. */
function isFrame(v: object): v is Frame {
  const o = v as Record<string, unknown>;
  if (typeof o.func !== 'string') return false;
  for (const k in o) if (!FRAME_KEYS.has(k)) return false;
  return true;
}

/** Every distinct Frame object reachable from a result (groups, rows, culprits, stacks). */
function framesIn(result: unknown): Frame[] {
  const out: Frame[] = [];
  const seen = new Set<object>();
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (isFrame(v)) {
      out.push(v);
      return;
    }
    // An object with a JSON form is walked as it shows itself: a group whose stack is in a
    // StackTable has its frames behind a getter (the same Frame objects), no own property.
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    const shown: unknown = typeof toJSON === 'function' ? toJSON.call(v) : v;
    if (shown === null || typeof shown !== 'object') return;
    for (const x of Array.isArray(shown) ? shown : Object.values(shown)) visit(x);
  };
  visit(result);
  return out;
}

/**
 * With --symbols, set `source` on every frame of `result` (in place, one batch), so
 * the text and the JSON show it; returns whether it ran. Frames without an offset (a
 * grouped culprit) get the line where their function starts.
 */
export async function annotateFrames(
  result: unknown,
  values: { symbols?: string[] | undefined },
  setup: Omit<SymbolizerSetup, 'paths'>,
  ctx: CommandContext,
): Promise<boolean> {
  if (!values.symbols?.length) return false;
  const symbolizer = await openSymbolizer({ ...setup, paths: values.symbols }, ctx);
  try {
    const frames = framesIn(result);
    const rs = await symbolizer.resolveFrames(frames);
    frames.forEach((f, i) => {
      const r = rs[i]!;
      const src = r.status === 'resolved' ? frameSource(r) : undefined;
      if (src) f.source = src;
    });
  } finally {
    await symbolizer.close();
  }
  return true;
}

/** The SOURCE column for a row's frame (its own file:line only: tables stay one line per row). */
export function sourceColumn<T>(frameOf: (row: T) => Frame | undefined, header = 'SOURCE'): Column<T> {
  return {
    header,
    value: (row) => {
      const s = frameOf(row)?.source;
      const text = s ? formatSource(s, false) : '';
      // a long path loses its head, never its line
      return text.length > 48 ? `…${text.slice(-47)}` : text;
    },
  };
}

/** One stack line: the frame as printed, then its file:line and inlines when resolved. */
export function frameLine(f: Frame, withOffsets = true): string {
  const text = withOffsets
    ? formatFrame(f)
    : formatFrame({ func: f.func, ...(f.module ? { module: f.module } : {}) });
  return f.source ? `${text} ${formatSource(f.source)}` : text;
}
