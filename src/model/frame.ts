/**
 * Kernel stack frames, as page_owner, kmemleak, slab traces, vmallocinfo, allocinfo and
 * traces print them: one parser, one display form, one key. Ground layer: imports nothing
 * outside it.
 */

import { fmix32, hashText, placeAll } from './hash.js';

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
 * `s` in memory of its own, one flat string. V8 keeps a substring of 13 or more characters as
 * a view of the string it was cut from (a line, itself a view of a whole read), and a string
 * of 13 or more built by `+` as a tree of its parts (32 bytes a node): a copy lets those go.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

/**
 * A frame with these fields (undefined ones absent). The usual shapes are built in one literal:
 * fields added one by one after `{ func }` go to a separate property array (40 bytes more a
 * frame, in tables of hundreds of thousands).
 */
export function makeFrame(
  func: string,
  offset?: number,
  length?: number,
  module?: string,
  address?: string,
  source?: FrameSource,
): Frame {
  if (address === undefined && source === undefined) {
    if (offset !== undefined && length !== undefined)
      return module === undefined ? { func, offset, length } : { func, offset, length, module };
    if (offset === undefined && length === undefined)
      return module === undefined ? { func } : { func, module };
  }
  const f: Frame = { func };
  if (offset !== undefined) f.offset = offset;
  if (length !== undefined) f.length = length;
  if (module !== undefined) f.module = module;
  if (address !== undefined) f.address = address;
  if (source !== undefined) f.source = source;
  return f;
}

/** A copy of a frame whose strings are its own (see ownString). */
export function ownFrame(f: Frame): Frame {
  return makeFrame(
    ownString(f.func),
    f.offset,
    f.length,
    f.module === undefined ? undefined : ownString(f.module),
    f.address === undefined ? undefined : ownString(f.address),
    f.source,
  );
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
  return makeFrame(
    m[1]!,
    m[2] === undefined ? undefined : Number.parseInt(m[2], 16),
    m[3] === undefined ? undefined : Number.parseInt(m[3], 16),
    m[4],
    prefix?.[1],
  );
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

/**
 * `<sep>0x<v>` at `p` of `t`, v in lowercase hex without leading zeros (as formatFrame writes
 * it): the position after it, or -1. Builds no string.
 */
function hexAt(t: string, p: number, sep: number, v: number): number {
  if (t.charCodeAt(p) !== sep || t.charCodeAt(p + 1) !== 0x30 || t.charCodeAt(p + 2) !== 0x78) return -1;
  let d = 1;
  for (let x = v; x >= 16; x = Math.floor(x / 16)) d++;
  const s = p + 3;
  let x = v;
  for (let i = d - 1; i >= 0; i--) {
    const digit = x % 16;
    if (t.charCodeAt(s + i) !== (digit < 10 ? 48 + digit : 87 + digit)) return -1;
    x = Math.floor(x / 16);
  }
  return s + d;
}

/** `formatFrame(f) === t.slice(from)`, without building either string. */
export function printsAs(f: Frame, t: string, from = 0): boolean {
  if (!t.startsWith(f.func, from)) return false;
  let p = from + f.func.length;
  if (f.offset !== undefined) {
    p = hexAt(t, p, 0x2b, f.offset);
    if (p >= 0 && f.length !== undefined) p = hexAt(t, p, 0x2f, f.length);
    if (p < 0) return false;
  }
  if (f.module !== undefined) {
    if (t.charCodeAt(p) !== 0x20 || t.charCodeAt(p + 1) !== 0x5b || !t.startsWith(f.module, p + 2))
      return false;
    p += 2 + f.module.length;
    if (t.charCodeAt(p) !== 0x5d) return false;
    p++;
  }
  return p === t.length;
}

/**
 * The frames of printed lines, each line parsed once while there is room: a cache that keeps
 * the frame, not the line (a Map from the line's text kept both, and about 100 bytes more a
 * distinct frame). A line is looked up by its hash and is a hit only when a kept frame prints
 * exactly as it (printsAs), so only lines that formatFrame writes back as they are get kept;
 * others (an address after the symbol, leading zeros) are parsed each time. The frames are
 * copies whose strings are their own (ownFrame), one object for every repeat of a line.
 */
export class FrameLines {
  /**
   * Kept frames by index, in arrays of 4,096: one array grown to a hundred thousand would leave
   * each outgrown copy (a large object, up to a megabyte) to the next full collection.
   */
  private readonly chunks: Frame[][] = [];
  private size = 0;
  /** Index + 1 of a kept frame, 0 empty; at most half full. */
  private slots = new Uint32Array(1 << 10);

  /** `limit`: distinct lines kept at most (past it, new lines are parsed each time). */
  constructor(private readonly limit = 200_000) {}

  private at(i: number): Frame {
    return this.chunks[i >>> 12]![i & 4095]!;
  }

  /** The kept frame of line `t` (from index `from`: what precedes is not the frame's), or undefined. */
  get(t: string, from = 0): Frame | undefined {
    const mask = this.slots.length - 1;
    for (let slot = fmix32(hashText(t, undefined, from)) & mask; ; slot = (slot + 1) & mask) {
      const e = this.slots[slot]!;
      if (e === 0) return undefined;
      const f = this.at(e - 1);
      if (printsAs(f, t, from)) return f;
    }
  }

  /**
   * Frame `f`, parsed from line `t` (which get did not find; from index `from`), as a copy of its
   * own, kept for the next time `t` is met when it prints as `t` and there is room.
   */
  keep(t: string, f: Frame, from = 0): Frame {
    const own = ownFrame(f);
    if (this.size >= this.limit || !printsAs(own, t, from)) return own;
    const i = this.size++;
    if ((i & 4095) === 0) this.chunks.push([]);
    this.chunks[i >>> 12]!.push(own);
    const mask = this.slots.length - 1;
    let slot = fmix32(hashText(t, undefined, from)) & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = i + 1;
    // Placed again by the hash of what each prints (its line, from `from`: the same text).
    if (this.size * 2 > this.slots.length)
      this.slots = placeAll(this.slots.length * 2, this.size, (k) =>
        fmix32(hashText(formatFrame(this.at(k)))),
      );
    return own;
  }
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
