/**
 * The byte-level page_owner scanner shared by `page-owner sort`, `top` and `diff`.
 *
 * A record in every kernel since 5.19 looks like
 *
 *   Page allocated via order 0, mask 0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), pid 5, tgid 5 (cat), ts 123 ns
 *   PFN 0x12345 type Movable Block 72 type Movable Flags 0x...(lru|zone=1)
 *    frame+0x12/0x34
 *    ...
 *   (blank line)
 *
 * (5.19-6.6 add `, free_ts N ns`; 6.9+ print the PFN in hex). The scanner reads such a
 * record straight from the bytes and turns it into one tuple of small integers: the
 * header's prefix (up to `, pid `), the task name and the stack (everything after the PFN
 * line) as interned ids, pid and tgid as numbers (ts and free_ts as order-keeping codes
 * of their digits), and what the PFN line says (CMA, slab, migratetype). No string is
 * built for a record whose parts were seen before. A stack is identified by a 64-bit hash of its bytes and its length
 * (the chance that two distinct stacks of one dump collide is about n^2/2^65: below
 * 1e-7 for a million stacks); the lines of a new stack are interned exactly.
 *
 * Anything else (older formats, a PFN line elsewhere, a header whose fields the C tool's
 * regular expressions would read differently, numbers the record parser refuses: an
 * order above PAGE_ORDER_LIMIT, a mask or PFN of 2^53 or more; garbage) is handed over as
 * an "odd" record with its text, for the slow paths of the engines, which keep the exact
 * semantics (and errors) of the record parser or the C tool. A record longer than
 * MAX_RECORD_BYTES (also one whose blank line is not within that many bytes) is an error,
 * whichever thread finds it and however the input was cut into chunks.
 *
 * A scanner runs in the main thread or in a worker; its ids are local, and what it
 * interned since the last chunk travels with the chunk (`ChunkResult`), so that the
 * main thread can map them to its own tables (DictMapper).
 */
import { MAX_RECORD_BYTES, recordTooLong } from '../sources/page_owner.js';
import { PAGE_ORDER_LIMIT } from '../sources/text.js';
import {
  BLOCK_BITS,
  BLOCK_MASK,
  ByteInterner,
  blockHash,
  F64Column,
  hash2,
  hashBytesDv,
  hashToBlankLine,
  RowTable,
  RowU32,
  U32Column,
} from './intern.js';

/** Words per record in ChunkResult.tuples. */
export const TUPLE = 8;
/** tuple[0]: kind and flags. */
export const T_META = 0;
export const T_PREFIX = 1;
export const T_COMM = 2;
/** pid (at most 9 digits, no leading zero). */
export const T_PID = 3;
export const T_TGID = 4;
export const T_REST = 5;
/** Migratetype id + 1 (0: none printed). */
export const T_MT = 6;
/** Odd records: index into ChunkResult.odd; others: byte offset from ChunkResult.offset. */
export const T_ODD = 7;

export const K_ODD = 1;
/** "CMA" somewhere in the PFN line (what page_owner_sort tests). */
export const F_CMA = 1 << 2;
/** "slab" somewhere in the PFN line (what page_owner_sort tests). */
export const F_SLAB_TEXT = 1 << 3;
/** `slab` as a page flag, `(slab|` or `|slab)` (what allocatorOf tests). */
export const F_SLAB_FLAG = 1 << 4;
/** The ts digits are present (F64 side: hi, lo of their code). */
export const F_TS = 1 << 5;
/** `, free_ts N ns` present. */
export const F_FREE_TS = 1 << 6;
/** Digit counts of ts and free_ts: (meta >>> 8) & 0xff, (meta >>> 16) & 0xff. */
export const TS_LEN_SHIFT = 8;
export const FREE_TS_LEN_SHIFT = 16;

/** Rest flags (RestTable.flags). */
export const R_PFN_LINE = 1;
/** page_owner_sort's vmalloc test: `__vmalloc_node_range` on a line after one naming alloc_pages. */
export const R_VMALLOC = 2;

/** One record the fast path does not take: its text and where it is. */
export interface OddRecord {
  /** The block's bytes as latin1 (without the blank line after it). */
  text: string;
  /** Byte offset in the whole input. */
  offset: number;
  /** True for a last block with no blank line after it. */
  unterminated: boolean;
  /**
   * The last PFN line before this block in the same chunk (page_owner_sort keeps the last
   * PFN line it read for a record that has none); undefined when none came before it in
   * this chunk, null never.
   */
  pfnBefore?: string;
}

/** What one chunk of input became. Ids are those of the scanner that made it. */
export interface ChunkResult {
  seq: number;
  /** TUPLE words per record, in input order. */
  tuples: Uint32Array;
  /** For records with F_TS or F_FREE_TS: ts hi, ts lo, free_ts hi, free_ts lo. */
  wide: Float64Array;
  odd: OddRecord[];
  /** Texts interned since the previous chunk, in id order. */
  newPrefixes: string[];
  newComms: string[];
  newMigratetypes: string[];
  newLines: string[];
  /** Per new rest: hash1, hash2, byte length, flags, line count, then its line ids. */
  newRests: Uint32Array;
  /** Bytes of input consumed by this chunk. */
  bytes: number;
  /** Byte offset of the chunk's first record. */
  offset: number;
  /** The last PFN line of the chunk (text without "\n"), if any. */
  lastPfn?: string;
}

/**
 * Order-keeping code of a digit string of up to 9 digits (base 11, digit d -> d+1, an
 * absent digit 0): codes compare as the strings compare when the character after them
 * is below '0', as `,` and ` ` are in a page_owner header. Fits in 32 bits.
 */
export function digitCode(b: Uint8Array, s: number, e: number): number {
  let c = 0;
  let i = s;
  for (let k = 0; k < 9; k++) c = c * 11 + (i < e ? b[i++]! - 47 : 0);
  return c;
}

/** The number digits [s, e) stand for (at most 15 digits). */
export function digitValue(b: Uint8Array, s: number, e: number): number {
  let v = 0;
  for (let i = s; i < e; i++) v = v * 10 + b[i]! - 48;
  return v;
}

/** digitCode of the decimal digits of `v` (a whole number below 10^9). */
export function lexCode(v: number): number {
  let n = 1;
  let p = 10;
  while (v >= p && n < 9) {
    n++;
    p *= 10;
  }
  let c = 0;
  let div = p / 10;
  for (let k = 0; k < 9; k++) {
    if (k < n) {
      const d = Math.floor(v / div) % 10;
      c = c * 11 + d + 1;
      div /= 10;
    } else c *= 11;
  }
  return c;
}

/** The same for up to 10 digits (a Float64 of at most 2.6e10); the low half of 20 digits. */
export function digitCode10(b: Uint8Array, s: number, e: number): number {
  let c = 0;
  let i = s;
  for (let k = 0; k < 10; k++) c = c * 11 + (i < e ? b[i++]! - 47 : 0);
  return c;
}

/** The digits a code stands for. */
export function digitsOf(code: number, width = 9): string {
  let s = '';
  for (let k = 0; k < width; k++) {
    const d = code % 11;
    code = (code - d) / 11;
    if (d > 0) s = String.fromCharCode(47 + d) + s;
  }
  return s;
}

/** A rest's flags (R_PFN_LINE, R_VMALLOC) in the low bits of its packed word, its line count above. */
const R_FLAG_BITS = 2;
const R_FLAG_MASK = (1 << R_FLAG_BITS) - 1;
/** Most lines a rest may have (its count shares a word with the flags). */
const R_MAX_LINES = 2 ** (32 - R_FLAG_BITS) - 1;

/** Some bits of a RowU32 field, read as a field of their own. */
class RowBits {
  constructor(
    private readonly field: RowU32,
    private readonly shift: number,
    private readonly mask: number,
  ) {}
  get(i: number): number {
    return (this.field.get(i) >>> this.shift) & this.mask;
  }
}

/**
 * Distinct stacks (the bytes after the PFN line), by 64-bit hash and length, each with
 * its lines (ids of a ByteInterner), flags and line count: 20 bytes a stack, side by side in
 * one RowTable (a lookup reads one cache line where separate columns read three, and the
 * table grows by blocks, never copying), plus 4 per line. Without the lines (`keepLines`
 * false: a consumer reads each stack's lines once, as `page-owner top` does) a row is 16
 * bytes: no line start.
 */
export class RestTable {
  private readonly rows: RowTable;
  readonly h1: RowU32;
  readonly h2: RowU32;
  readonly len: RowU32;
  /** Flags in the low R_FLAG_BITS, the line count above (one word: 4 bytes a stack less). */
  private readonly packed: RowU32;
  readonly flags: RowBits;
  readonly lineCount: RowBits;
  /** Where a rest's line ids start in `lines` (only when the lines are kept). */
  readonly lineStart: RowU32;
  readonly lines = new U32Column(8192);
  private readonly stride: number;
  private slots = new Int32Array(1 << 12).fill(-1);

  constructor(readonly keepLines = true) {
    this.stride = keepLines ? 5 : 4;
    this.rows = new RowTable(this.stride);
    this.h1 = new RowU32(this.rows, 0);
    this.h2 = new RowU32(this.rows, 1);
    this.len = new RowU32(this.rows, 2);
    this.packed = new RowU32(this.rows, 3);
    this.flags = new RowBits(this.packed, 0, R_FLAG_MASK);
    this.lineCount = new RowBits(this.packed, R_FLAG_BITS, R_MAX_LINES);
    // Without kept lines this field is never pushed (its word would be the next row's).
    this.lineStart = new RowU32(this.rows, 4);
  }

  get size(): number {
    return this.h1.length;
  }

  find(h1: number, h2: number, len: number): number {
    const mask = this.slots.length - 1;
    const blocks = this.rows.blocks;
    let slot = h1 & mask;
    for (;;) {
      const id = this.slots[slot]!;
      if (id < 0) return -1;
      const b = blocks[id >>> BLOCK_BITS]!;
      const o = (id & BLOCK_MASK) * this.stride;
      if (b[o] === h1 && b[o + 1] === h2 && b[o + 2] === len) return id;
      slot = (slot + 1) & mask;
    }
  }

  /** Add a rest not in the table (find() said -1). */
  add(
    h1: number,
    h2: number,
    len: number,
    flags: number,
    lineIds: ArrayLike<number>,
    n: number,
    lineCount = n,
  ): number {
    const id = this.h1.length;
    if (lineCount > R_MAX_LINES || flags > R_FLAG_MASK)
      throw new Error(`RestTable: ${lineCount} lines, flags ${flags}: more than a row holds`);
    this.h1.push(h1);
    this.h2.push(h2);
    this.len.push(len);
    this.packed.push(((lineCount << R_FLAG_BITS) | flags) >>> 0);
    if (this.keepLines) {
      this.lineStart.push(this.lines.length);
      this.lines.grow(this.lines.length + n);
      for (let i = 0; i < n; i++) this.lines.data[this.lines.length++] = lineIds[i]!;
    }
    const mask = this.slots.length - 1;
    let slot = h1 & mask;
    while (this.slots[slot]! >= 0) slot = (slot + 1) & mask;
    this.slots[slot] = id;
    if ((id + 1) * 2 > this.slots.length) this.rehash();
    return id;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(-1);
    const mask = slots.length - 1;
    for (let id = 0; id < this.h1.length; id++) {
      let slot = this.h1.get(id) & mask;
      while (slots[slot]! >= 0) slot = (slot + 1) & mask;
      slots[slot] = id;
    }
    this.slots = slots;
  }
}

const RE_TS_ANY = /ts\s*[0-9]*\s*ns/;
const RE_PREFIX =
  /^Page allocated via order (\d+), mask (0x[0-9a-fA-F]+|0|\d+)(?:\(([^)]*)\))?(?:, migratetype \d+)?$/;

/**
 * The tables a scanner interns into. The main thread has one for the whole input; each
 * worker has its own, whose new entries travel with its chunks.
 */
export class PageOwnerDict {
  /**
   * Called for every rest as it is added, with its line ids (valid during the call):
   * a consumer that reads each stack once. With it the lines ids are not kept (restText
   * and the sort engine need them kept).
   */
  onRest: ((id: number, lineIds: Uint32Array, n: number) => void) | undefined;

  /** Add a rest (the hash is known not to be there), or hand it to onRest. */
  addRestLines(h1: number, h2: number, len: number, flags: number, lineIds: Uint32Array, n: number): number {
    if (this.onRest === undefined) {
      if (!this.rests.keepLines) throw new Error('PageOwnerDict: no onRest to read the lines of a rest');
      return this.rests.add(h1, h2, len, flags, lineIds, n);
    }
    const id = this.rests.add(h1, h2, len, flags, lineIds, 0, n);
    this.onRest(id, lineIds, n);
    return id;
  }

  /** Header text up to `, pid ` (order, mask, GFP flags). */
  readonly prefixes = new ByteInterner('fingerprint');
  /** Task names (between `tgid N (` and the last `), ts `). */
  readonly comms = new ByteInterner('fingerprint');
  /** Migratetype names from PFN lines. */
  readonly migratetypes = new ByteInterner();
  /**
   * Lines of stacks, without their "\n": by 64-bit fingerprint and length, as the rests they
   * make up are (a new stack's lines are looked up without comparing their bytes).
   */
  readonly lines = new ByteInterner('fingerprint');
  readonly rests: RestTable;

  /**
   * `keepLines` false: every rest goes to `onRest` (set it before scanning) and its lines are
   * not kept (restText and the sort engine need them).
   */
  constructor(opts: { keepLines?: boolean } = {}) {
    this.rests = new RestTable(opts.keepLines ?? true);
  }
  /** Per prefix / comm: 1 when the fast path may take it, 2 when not (0: not checked yet). */
  readonly prefixOk: number[] = [];
  readonly commOk: number[] = [];

  /**
   * A prefix the fast path may take: it is a prefix of the header every kernel prints,
   * its order and mask are numbers the record parser accepts (an order of at most
   * PAGE_ORDER_LIMIT, a mask below 2^53: the slow path reports the others), and none of
   * page_owner_sort's regular expressions (pid, tgid, ts, free_ts, order) nor its
   * allocator test (alloc_pages, __vmalloc_node_range) can match inside it.
   */
  checkPrefix(id: number): boolean {
    let ok = this.prefixOk[id];
    if (ok === undefined) {
      const t = this.prefixes.text(id);
      const m = RE_PREFIX.exec(t);
      const good =
        m !== null &&
        Number(m[1]) <= PAGE_ORDER_LIMIT &&
        Number.isSafeInteger(m[2]!.startsWith('0x') ? Number.parseInt(m[2]!.slice(2), 16) : Number(m[2])) &&
        !t.includes('pid') &&
        !t.includes('tgid') &&
        !t.includes('ts') &&
        !t.includes('alloc_pages') &&
        !t.includes('__vmalloc_node_range') &&
        t.indexOf('order', 20) < 0;
      ok = good ? 1 : 2;
      this.prefixOk[id] = ok;
    }
    return ok === 1;
  }

  /** A task name the fast path may take (see checkPrefix; `), ts` would blur where it ends). */
  checkComm(id: number): boolean {
    let ok = this.commOk[id];
    if (ok === undefined) {
      const t = this.comms.text(id);
      const good =
        !RE_TS_ANY.test(t) &&
        !t.includes('), ts') &&
        !t.includes('alloc_pages') &&
        !t.includes('__vmalloc_node_range');
      ok = good ? 1 : 2;
      this.commOk[id] = ok;
    }
    return ok === 1;
  }

  /** The text of a rest: its lines, each followed by "\n". */
  restText(id: number): string {
    const r = this.rests;
    const s = r.lineStart.get(id);
    const n = r.lineCount.get(id);
    let t = '';
    for (let i = 0; i < n; i++) t += `${this.lines.text(r.lines.data[s + i]!)}\n`;
    return t;
  }

  /** Intern a rest given as text (slow paths), with the same identity as from bytes. */
  internRestText(text: string): number {
    const b = Buffer.from(text, 'latin1');
    return this.internRest(b, 0, b.length);
  }

  /** Intern the rest in bytes [s, e) (each line ending in "\n", or e === s). */
  internRest(b: Uint8Array, s: number, e: number): number {
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    const h1 = hashBytesDv(b, dv, s, e) >>> 0;
    const h2 = hash2.value >>> 0;
    const found = this.rests.find(h1, h2, e - s);
    return found >= 0 ? found : this.addRest(b, dv, s, e, h1, h2);
  }

  /**
   * internRest over bytes also seen through `dv` (a DataView of the same memory), whose hashes
   * (hashBytesDv's, unsigned) are known.
   */
  internRestHashed(b: Uint8Array, dv: DataView, s: number, e: number, h1: number, h2: number): number {
    const found = this.rests.find(h1, h2, e - s);
    return found >= 0 ? found : this.addRest(b, dv, s, e, h1, h2);
  }

  private lineScratch = new Uint32Array(256);
  /**
   * By line id: 1 + where in the line __vmalloc_node_range starts, 0 when it does not name it
   * (looked for once per distinct line).
   */
  private lineVmalloc = new Int32Array(1024);
  private lineVmallocKnown = 0;

  /** Add a rest that find() did not know. */
  addRest(b: Uint8Array, dv: DataView, s: number, e: number, h1: number, h2: number): number {
    let n = 0;
    let flags = 0;
    let p = s;
    let vmallocAt = -1;
    while (p < e) {
      let nl = u8IndexOf.call(b, 10, p);
      if (nl < 0 || nl > e) nl = e;
      if (n === this.lineScratch.length) {
        const bigger = new Uint32Array(n * 2);
        bigger.set(this.lineScratch);
        this.lineScratch = bigger;
      }
      const line = this.lines.internFp(b, dv, p, nl);
      this.lineScratch[n++] = line;
      if (b[p] === 80 && b[p + 1] === 70 && b[p + 2] === 78) flags |= R_PFN_LINE;
      if (vmallocAt < 0) {
        const at = this.vmallocIn(line, p);
        if (at >= 0) {
          vmallocAt = at;
          // page_owner_sort: the line before the one naming __vmalloc_node_range (the
          // header, which never names alloc_pages, when it is the first line here) must
          // name alloc_pages somewhere before it.
          const prevStart = n >= 2 ? lineStartBefore(b, s, p) : s;
          const ap = indexOfIn(b, prevStart, at, ALLOC_PAGES);
          if (ap >= 0) flags |= R_VMALLOC;
        }
      }
      p = nl + 1;
    }
    return this.addRestLines(h1, h2, e - s, flags, this.lineScratch, n);
  }

  /**
   * Where __vmalloc_node_range starts in line `id`, which starts at `p` (-1: not there). The
   * lines up to it are looked at once each, in the dict's own copy of their bytes.
   */
  private vmallocIn(id: number, p: number): number {
    if (id >= this.lineVmallocKnown) this.learnLines(id);
    const k = this.lineVmalloc[id]!;
    return k === 0 ? -1 : p + k - 1;
  }

  private learnLines(upTo: number): void {
    const l = this.lines;
    if (upTo >= this.lineVmalloc.length) {
      const bigger = new Int32Array(Math.max(upTo + 1, this.lineVmalloc.length * 2));
      bigger.set(this.lineVmalloc);
      this.lineVmalloc = bigger;
    }
    for (let id = this.lineVmallocKnown; id <= upTo; id++) {
      const s = l.starts.data[id]!;
      const at = indexOfIn(l.arena.data, s, l.ends.data[id]!, VMALLOC_NODE_RANGE);
      this.lineVmalloc[id] = at < 0 ? 0 : at - s + 1;
    }
    this.lineVmallocKnown = upTo + 1;
  }
}

const VMALLOC_NODE_RANGE = Buffer.from('__vmalloc_node_range', 'latin1');
const ALLOC_PAGES = Buffer.from('alloc_pages', 'latin1');

/**
 * bytes [a, a+n) equal bytes [c, c+n) of the same buffer (`dv` a DataView of it). The first
 * 32 bytes are compared here, word by word, the rest natively: two stacks that differ
 * mostly differ in their first frame (a 1 GiB dump of 100 variants per stack: 2.1 million
 * calls, 25,344 equal; the native compare alone took 130 ms of the 2.8 s).
 */
function sameBytes(b: Buffer, dv: DataView, a: number, c: number, n: number): boolean {
  if (b[a + n - 1] !== b[c + n - 1]) return false;
  const head = n < 32 ? n & ~3 : 32;
  for (let k = 0; k < head; k += 4) if (dv.getInt32(a + k) !== dv.getInt32(c + k)) return false;
  return head === n || b.compare(b, a + head, a + n, c + head, c + n) === 0;
}

/** bytes [a, a+n) equal bytes [c, c+n) of the same buffer, compared here (short ranges). */
function sameShort(b: Uint8Array, dv: DataView, a: number, c: number, n: number): boolean {
  let k = 0;
  for (; k + 4 <= n; k += 4) if (dv.getInt32(a + k) !== dv.getInt32(c + k)) return false;
  for (; k < n; k++) if (b[a + k] !== b[c + k]) return false;
  return true;
}

/** First index of `needle` fully inside [s, e), or -1. */
function indexOfIn(b: Uint8Array, s: number, e: number, needle: Uint8Array): number {
  const n = needle.length;
  const c0 = needle[0]!;
  for (let i = s; i + n <= e; i++) {
    if (b[i] !== c0) continue;
    let k = 1;
    while (k < n && b[i + k] === needle[k]) k++;
    if (k === n) return i;
  }
  return -1;
}

/** Start of the line before the one starting at `lineStart` (lines end in "\n"). */
function lineStartBefore(b: Uint8Array, s: number, lineStart: number): number {
  let q = lineStart - 2;
  while (q >= s && b[q] !== 10) q--;
  return q + 1;
}

const PID_NEEDLE = Buffer.from(', pid ', 'latin1');
const BLANK_LINE = Buffer.from('\n\n', 'latin1');
const u8IndexOf = Uint8Array.prototype.indexOf;

const isDigit = (c: number | undefined) => c !== undefined && c >= 48 && c <= 57;
const isHex = (c: number | undefined) =>
  c !== undefined && ((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70));

/** Header fields found by parseHeader (positions in the buffer). */
class HeaderView {
  prefixE = 0;
  d1s = 0;
  d1e = 0;
  d2s = 0;
  d2e = 0;
  commS = 0;
  commE = 0;
  d3s = 0;
  d3e = 0;
  d4s = -1;
  d4e = -1;
}

/**
 * The header every kernel since 5.19 prints, read from bytes [s, he):
 * PREFIX ", pid " D ", tgid " D " (" COMM "), ts " D " ns" [", free_ts " D " ns"].
 * pid and tgid of 1-9 digits, ts and free_ts of at most 20, all without leading
 * zeros (ts may be empty when `allowEmptyTs`: a header whose ts digits were cut).
 * `pidAt`, when not -1, is where the first `, pid ` at or after s + 25 is known to be.
 */
export function parseHeader(
  b: Uint8Array,
  s: number,
  he: number,
  v: HeaderView,
  allowEmptyTs = false,
  pidAt = -1,
): boolean {
  // ", pid " (the first one: the prefix before it is checked once per distinct prefix).
  let p = pidAt >= 0 ? pidAt : (Buffer.prototype.indexOf.call(b, PID_NEEDLE, s + 25) as number);
  if (p < 0 || p > he - 6) return false;
  v.prefixE = p;
  p += 6;
  let d = p;
  while (p < he && isDigit(b[p])) p++;
  if (p === d || p - d > 9 || (p - d > 1 && b[d] === 48)) return false;
  v.d1s = d;
  v.d1e = p;
  if (
    b[p] !== 44 ||
    b[p + 1] !== 32 ||
    b[p + 2] !== 116 ||
    b[p + 3] !== 103 ||
    b[p + 4] !== 105 ||
    b[p + 5] !== 100 ||
    b[p + 6] !== 32
  )
    return false;
  p += 7;
  d = p;
  while (p < he && isDigit(b[p])) p++;
  if (p === d || p - d > 9 || (p - d > 1 && b[d] === 48)) return false;
  v.d2s = d;
  v.d2e = p;
  if (b[p] !== 32 || b[p + 1] !== 40) return false;
  v.commS = p + 2;
  // From the end: " ns", digits, then ", free_ts " or "), ts ".
  let q = he;
  if (b[q - 1] !== 115 || b[q - 2] !== 110 || b[q - 3] !== 32) return false;
  q -= 3;
  let de = q;
  while (q > v.commS && isDigit(b[q - 1])) q--;
  let ds = q;
  v.d4s = -1;
  v.d4e = -1;
  if (
    b[q - 1] === 32 &&
    b[q - 2] === 115 &&
    b[q - 3] === 116 &&
    b[q - 4] === 95 &&
    b[q - 5] === 101 &&
    b[q - 6] === 101 &&
    b[q - 7] === 114 &&
    b[q - 8] === 102 &&
    b[q - 9] === 32 &&
    b[q - 10] === 44
  ) {
    if (de === ds || de - ds > 20 || (de - ds > 1 && b[ds] === 48)) return false;
    v.d4s = ds;
    v.d4e = de;
    q -= 10;
    if (b[q - 1] !== 115 || b[q - 2] !== 110 || b[q - 3] !== 32) return false;
    q -= 3;
    de = q;
    while (q > v.commS && isDigit(b[q - 1])) q--;
    ds = q;
  }
  if (
    b[q - 1] !== 32 ||
    b[q - 2] !== 115 ||
    b[q - 3] !== 116 ||
    b[q - 4] !== 32 ||
    b[q - 5] !== 44 ||
    b[q - 6] !== 41
  )
    return false;
  if ((de === ds && !allowEmptyTs) || de - ds > 20 || (de - ds > 1 && b[ds] === 48)) return false;
  v.d3s = ds;
  v.d3e = de;
  v.commE = q - 6;
  return v.commE >= v.commS;
}

/** New header view (for callers outside the scanner). */
export function headerView(): HeaderView {
  return new HeaderView();
}

export interface ScannerOptions {
  /** Decode the PFN line's migratetype (page-owner top --by migratetype). */
  migratetypes?: boolean;
  /** Keep the ts digits (F_TS and the wide side) for sorting by or printing them. */
  ts?: boolean;
  /** Keep the free_ts digits (F_FREE_TS). */
  freeTs?: boolean;
  /** Hand every record over as odd (for a slow path that must see them all). */
  allOdd?: boolean;
  /**
   * Intern task names (T_COMM) and take only records whose name page_owner_sort's
   * expressions read as the fast path does (default true; `top` needs neither).
   */
  comms?: boolean;
  /** Longest record accepted, in bytes (default MAX_RECORD_BYTES). */
  maxRecordBytes?: number;
  /** Name of the input in errors (default `page_owner`). */
  file?: string;
}

/**
 * Scans chunks of input in order; keeps its tables between chunks. `scan` takes a buffer
 * holding whole records (and maybe the start of one more) and returns where it stopped.
 */
export class ChunkScanner {
  readonly dict: PageOwnerDict;
  private tuples = new U32Column(1 << 15);
  private readonly wide = new F64Column(1 << 12);
  private odd: OddRecord[] = [];
  private sent = { prefixes: 0, comms: 0, migratetypes: 0, lines: 0, rests: 0 };
  private readonly v = new HeaderView();
  private lastPfnS = -1;
  private lastPfnE = -1;
  private lastPfnText: string | undefined;
  private prevRestS = -1;
  private prevRestE = -1;
  private prevRestId = -1;
  /** The previous PFN line's flags part in this buffer (-1: none) and what it said. */
  private prevFlagsS = -1;
  private prevFlagsE = -1;
  private prevFlagsMeta = 0;
  /** The previous record's prefix and task name in this buffer (-1: none), and their ids. */
  private prevPrefixS = -1;
  private prevPrefixE = -1;
  private prevPrefixId = -1;
  private prevCommS = -1;
  private prevCommE = -1;
  private prevCommId = -1;
  private chunkBytes = 0;
  private chunkOffset = -1;
  /** Set by pfnLine: F_CMA / F_SLAB_TEXT / F_SLAB_FLAG, and the migratetype's bytes. */
  private pfnMeta = 0;
  private mtS = 0;
  private mtE = 0;
  private readonly wantMt: boolean;
  private readonly wantTs: boolean;
  private readonly wantFreeTs: boolean;
  private readonly allOdd: boolean;
  private readonly wantComms: boolean;
  private readonly maxRecord: number;
  private readonly file: string;

  /**
   * `announce`: flush() lists what was interned since the previous chunk, for a dict in
   * another thread (false when the consumer shares this scanner's dict).
   */
  private readonly announce: boolean;

  constructor(dict = new PageOwnerDict(), opts: ScannerOptions = {}, announce = true) {
    this.dict = dict;
    this.announce = announce;
    this.allOdd = opts.allOdd ?? false;
    this.wantComms = opts.comms ?? true;
    this.wantMt = opts.migratetypes ?? false;
    this.wantTs = opts.ts ?? false;
    this.wantFreeTs = opts.freeTs ?? false;
    this.maxRecord = opts.maxRecordBytes ?? MAX_RECORD_BYTES;
    this.file = opts.file ?? 'page_owner';
  }

  /**
   * Scan the blocks of `b` from `pos` (a block start) up to `end`. Stops before a block
   * whose blank line is not in the buffer, unless `final` (then the rest is the last,
   * unterminated block). `offset` is the input offset of b[0]. Returns the position of
   * the first block not scanned. Throws for a block longer than maxRecordBytes, and for
   * an unfinished one already longer (its blank line is too far to look for).
   */
  scan(b: Buffer, pos: number, end: number, offset: number, final: boolean): number {
    if (this.chunkOffset < 0) this.chunkOffset = offset + pos;
    const start = pos;
    this.prevRestS = -1;
    this.prevPrefixS = -1;
    this.prevCommS = -1;
    this.lastPfnS = -1;
    this.prevFlagsS = -1;
    const v = this.v;
    const dict = this.dict;
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    for (;;) {
      if (pos >= end) break;
      if (b[pos] === 10) {
        this.oddBlock(b, pos, pos, offset, false);
        pos++;
        continue;
      }
      const s = pos;
      // Header line and PFN line (neither is empty: no blank line before the second "\n").
      // Buffer's indexOf of a byte (memchr) takes half the time of Uint8Array's on these lines.
      const he = b.indexOf(10, s);
      const pe = he >= 0 && he + 1 < end ? b.indexOf(10, he + 1) : -1;
      let e: number;
      let good = pe >= 0 && pe + 1 < end && pe > he + 1;
      // The stack is the previous record's (same bytes, then the blank line).
      let samePrev = false;
      if (good) {
        // The stack: where the previous record's stack would end, or the next blank line.
        const n = this.prevRestE - this.prevRestS;
        const rs = pe + 1;
        if (
          this.prevRestS >= 0 &&
          rs + n < end &&
          b[rs + n] === 10 &&
          (n === 0 || b[rs + n - 1] === 10) &&
          sameBytes(b, dv, rs, this.prevRestS, n)
        ) {
          e = rs + n;
          samePrev = true;
        } else {
          // Found and hashed in one pass (blockHash holds the hashes for internRestHashed).
          e = hashToBlankLine(b, dv, rs, end);
        }
      } else {
        e = b.indexOf(BLANK_LINE, s);
        if (e >= 0) e++;
      }
      if (e < 0 || e >= end) {
        if (end - s > this.maxRecord) throw recordTooLong(this.file, offset + s, this.maxRecord);
        if (!final) break;
        this.oddBlock(b, s, end, offset, true);
        pos = end;
        break;
      }
      // e: one past the record's last "\n" (the blank line's "\n" is at e).
      if (e - s > this.maxRecord) throw recordTooLong(this.file, offset + s, this.maxRecord);
      pos = e + 1;
      // The previous record's prefix, when its bytes are here with ", pid " after them: then
      // that is the first ", pid " here too, and the prefix's id is known.
      const pn = this.prevPrefixE - this.prevPrefixS;
      const pidAt =
        this.prevPrefixS >= 0 &&
        s + pn + 6 <= he &&
        b[s + pn] === 44 &&
        b[s + pn + 1] === 32 &&
        b[s + pn + 2] === 112 &&
        b[s + pn + 3] === 105 &&
        b[s + pn + 4] === 100 &&
        b[s + pn + 5] === 32 &&
        sameShort(b, dv, s, this.prevPrefixS, pn)
          ? s + pn
          : -1;
      good =
        good &&
        !this.allOdd &&
        pe < e &&
        parseHeader(b, s, he, v, false, pidAt) &&
        this.pfnLine(b, dv, he + 1, pe);
      if (!good) {
        this.oddBlock(b, s, e, offset, false);
        continue;
      }
      const ps = he + 1;
      let meta = this.pfnMeta;
      // Header parts.
      const prefixId = pidAt >= 0 ? this.prevPrefixId : dict.prefixes.internFp(b, dv, s, v.prefixE);
      this.prevPrefixS = s;
      this.prevPrefixE = v.prefixE;
      this.prevPrefixId = prefixId;
      let commId = 0;
      if (this.wantComms) {
        const cn = v.commE - v.commS;
        if (
          this.prevCommS >= 0 &&
          this.prevCommE - this.prevCommS === cn &&
          sameShort(b, dv, v.commS, this.prevCommS, cn)
        )
          commId = this.prevCommId;
        else commId = dict.comms.internFp(b, dv, v.commS, v.commE);
        this.prevCommS = v.commS;
        this.prevCommE = v.commE;
        this.prevCommId = commId;
      }
      if (!dict.checkPrefix(prefixId) || (this.wantComms && !dict.checkComm(commId))) {
        this.oddBlock(b, s, e, offset, false);
        continue;
      }
      // The stack: the same bytes as the previous record's are the same rest.
      const rs = pe + 1;
      let restId: number;
      if (samePrev) {
        restId = this.prevRestId;
      } else {
        restId = dict.internRestHashed(b, dv, rs, e, blockHash.h1, blockHash.h2);
        this.prevRestS = rs;
        this.prevRestE = e;
        this.prevRestId = restId;
      }
      if (dict.rests.flags.get(restId) & R_PFN_LINE) {
        this.oddBlock(b, s, e, offset, false);
        continue;
      }
      this.lastPfnS = ps;
      this.lastPfnE = pe;
      this.lastPfnText = undefined;
      const d3n = this.wantTs ? v.d3e - v.d3s : 0;
      if (d3n > 0) meta |= F_TS | (d3n << TS_LEN_SHIFT);
      const d4n = this.wantFreeTs && v.d4s >= 0 ? v.d4e - v.d4s : -1;
      if (d4n >= 0) meta |= F_FREE_TS | (d4n << FREE_TS_LEN_SHIFT);
      const t = this.tuples;
      if (t.length + TUPLE > t.data.length) t.grow(t.length + TUPLE);
      const d = t.data;
      const at = t.length;
      d[at] = meta;
      d[at + T_PREFIX] = prefixId;
      d[at + T_COMM] = commId;
      d[at + T_PID] = digitValue(b, v.d1s, v.d1e);
      d[at + T_TGID] = digitValue(b, v.d2s, v.d2e);
      d[at + T_REST] = restId;
      d[at + T_MT] = this.wantMt ? dict.migratetypes.intern(b, this.mtS, this.mtE) + 1 : 0;
      d[at + T_ODD] = offset + s - this.chunkOffset;
      t.length = at + TUPLE;
      if (meta & (F_TS | F_FREE_TS)) {
        const w = this.wide;
        w.push(digitCode10(b, v.d3s, v.d3s + Math.min(d3n, 10)));
        w.push(d3n > 10 ? digitCode10(b, v.d3s + 10, v.d3e) : 0);
        w.push(d4n >= 0 ? digitCode10(b, v.d4s, v.d4s + Math.min(d4n, 10)) : 0);
        w.push(d4n > 10 ? digitCode10(b, v.d4s + 10, v.d4e) : 0);
      }
    }
    // The PFN line a next record without one would use, before the buffer moves.
    if (this.lastPfnS >= 0) {
      this.lastPfnText = b.toString('latin1', this.lastPfnS, this.lastPfnE);
      this.lastPfnS = -1;
    }
    this.prevRestS = -1;
    this.chunkBytes += pos - start;
    return pos;
  }

  /**
   * Read the PFN line starting at `p` ("PFN N type T Block N type T" then the end,
   * " Flags ..." or " ..."): returns its "\n", or -1 when it is not one. Notes in pfnMeta
   * what page_owner_sort looks for in it ("CMA", "slab") and whether `slab` is a flag.
   */
  private pfnLine(b: Uint8Array, dv: DataView, p: number, pe: number): boolean {
    if (b[p] !== 80 || b[p + 1] !== 70 || b[p + 2] !== 78 || b[p + 3] !== 32) return false;
    p += 4;
    const n0 = p;
    // A PFN of 2^53 or more is the record parser's error: at most 13 hex or 15 decimal
    // digits here, longer ones take the slow path.
    if (b[p] === 48 && b[p + 1] === 120) {
      p += 2;
      while (isHex(b[p])) p++;
      if (p === n0 + 2 || p - n0 > 15) return false;
    } else {
      while (isDigit(b[p])) p++;
      if (p === n0 || p - n0 > 15) return false;
    }
    if (
      b[p] !== 32 ||
      b[p + 1] !== 116 ||
      b[p + 2] !== 121 ||
      b[p + 3] !== 112 ||
      b[p + 4] !== 101 ||
      b[p + 5] !== 32
    )
      return false;
    let meta = 0;
    p += 6;
    this.mtS = p;
    while (b[p] !== 32 && b[p] !== 10 && b[p] !== 9) {
      if (b[p] === 67 && b[p + 1] === 77 && b[p + 2] === 65) meta |= F_CMA;
      p++;
    }
    this.mtE = p;
    if (p === this.mtS) return false;
    if (
      b[p] !== 32 ||
      b[p + 1] !== 66 ||
      b[p + 2] !== 108 ||
      b[p + 3] !== 111 ||
      b[p + 4] !== 99 ||
      b[p + 5] !== 107 ||
      b[p + 6] !== 32
    )
      return false;
    p += 7;
    const d = p;
    while (isDigit(b[p])) p++;
    if (p === d) return false;
    if (
      b[p] !== 32 ||
      b[p + 1] !== 116 ||
      b[p + 2] !== 121 ||
      b[p + 3] !== 112 ||
      b[p + 4] !== 101 ||
      b[p + 5] !== 32
    )
      return false;
    p += 6;
    const w = p;
    while (b[p] !== 32 && b[p] !== 10 && b[p] !== 9) {
      if (b[p] === 67 && b[p + 1] === 77 && b[p + 2] === 65) meta |= F_CMA;
      p++;
    }
    if (p === w || b[p] === 9) return false;
    // The rest of the line (the flags): anything, up to the "\n". What it says depends on its
    // bytes alone (it starts with a blank and ends before the "\n"): the same bytes as the
    // previous record's say the same (few distinct flag texts; about 10% of `top`'s time).
    const n = pe - p;
    if (
      this.prevFlagsS >= 0 &&
      this.prevFlagsE - this.prevFlagsS === n &&
      sameShort(b, dv, p, this.prevFlagsS, n)
    ) {
      this.pfnMeta = meta | this.prevFlagsMeta;
      return true;
    }
    this.prevFlagsS = p;
    this.prevFlagsE = pe;
    let flags = 0;
    for (; p < pe; p++) {
      const c = b[p]!;
      if (c === 115 && b[p + 1] === 108 && b[p + 2] === 97 && b[p + 3] === 98) {
        flags |= F_SLAB_TEXT;
        const before = b[p - 1];
        const after = b[p + 4];
        if ((before === 40 || before === 124) && (after === 124 || after === 41)) flags |= F_SLAB_FLAG;
      } else if (c === 67 && b[p + 1] === 77 && b[p + 2] === 65) flags |= F_CMA;
    }
    this.prevFlagsMeta = flags;
    this.pfnMeta = meta | flags;
    return true;
  }

  private oddBlock(b: Buffer, s: number, e: number, offset: number, unterminated: boolean): void {
    const t = this.tuples;
    if (t.length + TUPLE > t.data.length) t.grow(t.length + TUPLE);
    const d = t.data;
    const at = t.length;
    d.fill(0, at, at + TUPLE);
    d[at] = K_ODD;
    d[at + T_ODD] = this.odd.length;
    t.length = at + TUPLE;
    const rec: OddRecord = { text: b.toString('latin1', s, e), offset: offset + s, unterminated };
    if (this.lastPfnS >= 0) {
      this.lastPfnText = b.toString('latin1', this.lastPfnS, this.lastPfnE);
      this.lastPfnS = -1;
    }
    if (this.lastPfnText !== undefined) rec.pfnBefore = this.lastPfnText;
    // A PFN line in the odd block becomes the last one seen.
    let p = s;
    while (p < e) {
      let nl = p;
      while (nl < e && b[nl] !== 10) nl++;
      if (b[p] === 80 && b[p + 1] === 70 && b[p + 2] === 78) this.lastPfnText = b.toString('latin1', p, nl);
      p = nl + 1;
    }
    this.odd.push(rec);
  }

  /** Everything scanned since the last call, with the entries interned meanwhile. */
  flush(seq: number): ChunkResult {
    const dict = this.dict;
    const sent = this.sent;
    const texts = (bi: ByteInterner, from: number) => {
      const out: string[] = [];
      for (let i = from; i < bi.size; i++) out.push(bi.text(i));
      return out;
    };
    const r = dict.rests;
    let words = 0;
    if (this.announce) for (let i = sent.rests; i < r.size; i++) words += 5 + r.lineCount.get(i);
    const newRests = new Uint32Array(words);
    let w = 0;
    for (let i = sent.rests; this.announce && i < r.size; i++) {
      newRests[w++] = r.h1.get(i);
      newRests[w++] = r.h2.get(i);
      newRests[w++] = r.len.get(i);
      newRests[w++] = r.flags.get(i);
      const n = r.lineCount.get(i);
      newRests[w++] = n;
      const ls = r.lineStart.get(i);
      for (let k = 0; k < n; k++) newRests[w++] = r.lines.data[ls + k]!;
    }
    const result: ChunkResult = {
      seq,
      // For another thread: copies it can own; here: views, valid until the next scan.
      tuples: this.announce ? this.tuples.data.slice(0, this.tuples.length) : this.tuples.view(),
      wide: this.announce ? this.wide.data.slice(0, this.wide.length) : this.wide.view(),
      odd: this.odd,
      newPrefixes: this.announce ? texts(dict.prefixes, sent.prefixes) : [],
      newComms: this.announce ? texts(dict.comms, sent.comms) : [],
      newMigratetypes: this.announce ? texts(dict.migratetypes, sent.migratetypes) : [],
      newLines: this.announce ? texts(dict.lines, sent.lines) : [],
      newRests,
      bytes: this.chunkBytes,
      offset: Math.max(this.chunkOffset, 0),
    };
    if (this.lastPfnText !== undefined) result.lastPfn = this.lastPfnText;
    sent.prefixes = dict.prefixes.size;
    sent.comms = dict.comms.size;
    sent.migratetypes = dict.migratetypes.size;
    sent.lines = dict.lines.size;
    sent.rests = r.size;
    this.tuples.length = 0;
    this.wide.length = 0;
    this.odd = [];
    this.chunkBytes = 0;
    this.chunkOffset = -1;
    return result;
  }

  /** Forget the last PFN line (a new, unrelated input). */
  resetPfn(): void {
    this.lastPfnText = undefined;
    this.lastPfnS = -1;
  }
}

/**
 * Maps a scanner's ids to the main thread's dict, chunk after chunk, and rewrites the
 * chunk's tuples in place so that consumers only see the main dict's ids.
 */
export class DictMapper {
  private prefixes = new U32Column();
  private comms = new U32Column();
  private migratetypes = new U32Column();
  private lines = new U32Column();
  private rests = new U32Column();
  private scratch = new Uint32Array(256);

  constructor(private readonly dict: PageOwnerDict) {}

  apply(c: ChunkResult): void {
    const dict = this.dict;
    for (const t of c.newPrefixes) this.prefixes.push(dict.prefixes.internText(t));
    for (const t of c.newComms) this.comms.push(dict.comms.internText(t));
    for (const t of c.newMigratetypes) this.migratetypes.push(dict.migratetypes.internText(t));
    for (const t of c.newLines) this.lines.push(dict.lines.internText(t));
    const nr = c.newRests;
    let w = 0;
    while (w < nr.length) {
      const h1 = nr[w++]!;
      const h2 = nr[w++]!;
      const len = nr[w++]!;
      const flags = nr[w++]!;
      const n = nr[w++]!;
      let id = dict.rests.find(h1, h2, len);
      if (id < 0) {
        if (this.scratch.length < n) this.scratch = new Uint32Array(n * 2);
        for (let j = 0; j < n; j++) this.scratch[j] = this.lines.data[nr[w + j]!]!;
        id = dict.addRestLines(h1, h2, len, flags, this.scratch, n);
      }
      w += n;
      this.rests.push(id);
    }
    const t = c.tuples;
    const pm = this.prefixes.data;
    const cm = this.comms.data;
    const mm = this.migratetypes.data;
    const rm = this.rests.data;
    for (let i = 0; i < t.length; i += TUPLE) {
      if (t[i]! & K_ODD) continue;
      t[i + T_PREFIX] = pm[t[i + T_PREFIX]!]!;
      t[i + T_COMM] = cm[t[i + T_COMM]!]!;
      t[i + T_REST] = rm[t[i + T_REST]!]!;
      const mt = t[i + T_MT]!;
      if (mt > 0) t[i + T_MT] = mm[mt - 1]! + 1;
    }
  }
}
