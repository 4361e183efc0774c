/**
 * Kernel stack frames, as page_owner, kmemleak, slab traces, vmallocinfo, allocinfo and
 * traces print them: one parser, one display form, one key. Ground layer: imports nothing.
 */

/** One kernel stack frame, e.g. ` demo_cache_fill+0x2c/0x57 [leaky]`. */
export interface Frame {
  /** Symbol name, or the raw address when unsymbolised (`0xffffffff81234567`). */
  func: string;
  /** Offset into the function (`0x2c`), when printed. */
  offset?: number;
  /** Function length (`0x57`), when printed. */
  length?: number;
  /** Module name from a trailing `[leaky]`; absent for vmlinux frames. */
  module?: string;
  /** Return address from a leading `[<ffffffff81234567>]` (older kmemleak, stack dumps). */
  address?: string;
  /** Where its code is, when resolved from debug info (`--symbols`; src/symbols). */
  source?: FrameSource;
}

/**
 * A frame's place in the source: the line of its own function (the call, for a return
 * address), and the functions inlined at that point, innermost first.
 */
export interface FrameSource {
  file: string;
  line: number;
  inlined?: { function: string; file: string; line: number }[];
}

/** `file:line`, then ` (inlined fn file:line, ...)` unless `inlines` is false. */
export function formatSource(s: FrameSource, inlines = true): string {
  const at = `${s.file}:${s.line}`;
  if (!inlines || !s.inlined?.length) return at;
  return `${at} (inlined ${s.inlined.map((i) => `${i.function || '?'} ${i.file}:${i.line}`).join(', ')})`;
}

/**
 * `s` in memory of its own. V8 keeps a substring of 13 or more characters as a view of the
 * string it was cut from (a line, itself a view of a whole read): a copy lets that go.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

/** A copy of a frame whose strings are its own (see ownString). */
export function ownFrame(f: Frame): Frame {
  const c: Frame = { func: ownString(f.func) };
  if (f.offset !== undefined) c.offset = f.offset;
  if (f.length !== undefined) c.length = f.length;
  if (f.module !== undefined) c.module = ownString(f.module);
  if (f.address !== undefined) c.address = ownString(f.address);
  if (f.source !== undefined) c.source = f.source;
  return c;
}

// `[<ffffffff81234567>] ` (kmemleak before 6.2, dump_stack) or `? ` (unreliable frame).
export const ADDR_PREFIX = /^\s*(?:\[<([0-9a-fA-Fx]+)>\]\s*)?(?:\?\s+)?/;
export const SYMBOL = /^([^\s+]+)(?:\+0x([0-9a-fA-F]+)(?:\/0x([0-9a-fA-F]+))?)?(?:\s+\[([^\]\s]+)\])?\s*$/;

/** Parse one frame line; returns undefined for text that is not a frame. */
export function parseFrame(text: string): Frame | undefined {
  const prefix = ADDR_PREFIX.exec(text);
  const rest = text.slice(prefix ? prefix[0].length : 0).trim();
  if (rest === '') {
    const address = prefix?.[1];
    return address ? { func: `0x${address.replace(/^0x/, '')}`, address } : undefined;
  }
  const m = SYMBOL.exec(rest);
  if (!m) return undefined;
  const frame: Frame = { func: m[1]! };
  if (m[2] !== undefined) frame.offset = Number.parseInt(m[2], 16);
  if (m[3] !== undefined) frame.length = Number.parseInt(m[3], 16);
  if (m[4] !== undefined) frame.module = m[4];
  if (prefix?.[1] !== undefined) frame.address = prefix[1];
  return frame;
}

/** Display form: `func+0x2c/0x57 [mod]`. */
export function formatFrame(f: Frame): string {
  let s = f.func;
  if (f.offset !== undefined) {
    s += `+0x${f.offset.toString(16)}`;
    if (f.length !== undefined) s += `/0x${f.length.toString(16)}`;
  }
  if (f.module !== undefined) s += ` [${f.module}]`;
  return s;
}

/** Matching form of a frame: function and module, offsets ignored. */
export function frameKey(f: Frame, withOffsets = false): string {
  const base = withOffsets ? formatFrame(f) : f.func;
  return !withOffsets && f.module !== undefined ? `${base} [${f.module}]` : base;
}

/** Key of a whole stack (frames joined by `;`, innermost first). */
export function stackKey(frames: readonly Frame[], withOffsets = false): string {
  return frames.map((f) => frameKey(f, withOffsets)).join(';');
}

/** The name of an absent caller (a vmalloc area the kernel printed without one). */
export const UNKNOWN_CALLER = '<unknown>';

/** `func [module]` of a caller (offsets ignored), or UNKNOWN_CALLER. */
export function callerName(f: Frame | undefined): string {
  return f ? frameKey(f) : UNKNOWN_CALLER;
}
