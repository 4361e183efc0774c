/**
 * Building blocks for interning at scale: growable typed columns, hashing of byte
 * ranges, and an exact interner for short byte strings (prefixes, names, frame lines).
 * Everything here keeps its data in typed arrays, so millions of entries cost a few
 * bytes each and can be handed between worker threads without copying.
 */

import { ownString } from '../model/frame.js';
import { fmix32, hashText, placeAll } from '../model/hash.js';

/** A growable Uint32 column. */
export class U32Column {
  data: Uint32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Uint32Array(capacity);
  }
  push(v: number): number {
    if (this.length === this.data.length) this.grow(this.length + 1);
    this.data[this.length] = v;
    return this.length++;
  }
  /** Make room for `n` entries in all (contents kept). */
  grow(n: number): void {
    if (n <= this.data.length) return;
    let cap = this.data.length || 1024;
    while (cap < n) cap = cap < 1 << 20 ? cap * 2 : Math.ceil(cap * 1.25);
    const d = new Uint32Array(cap);
    d.set(this.data.subarray(0, this.length));
    this.data = d;
  }
  /** The used part (a view). */
  view(): Uint32Array {
    return this.data.subarray(0, this.length);
  }
}

/** A growable Float64 column (counts that may exceed 2^32, or numbers up to 2^53). */
export class F64Column {
  data: Float64Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Float64Array(capacity);
  }
  push(v: number): number {
    if (this.length === this.data.length) this.grow(this.length + 1);
    this.data[this.length] = v;
    return this.length++;
  }
  grow(n: number): void {
    if (n <= this.data.length) return;
    let cap = this.data.length || 1024;
    while (cap < n) cap = cap < 1 << 20 ? cap * 2 : Math.ceil(cap * 1.25);
    const d = new Float64Array(cap);
    d.set(this.data.subarray(0, this.length));
    this.data = d;
  }
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

/** A growable byte arena. */
export class ByteArena {
  data: Buffer;
  length = 0;
  constructor(capacity = 1 << 16) {
    this.data = Buffer.alloc(capacity);
  }
  /** Append bytes [s, e) of `src`; returns where they start. */
  append(src: Uint8Array, s: number, e: number): number {
    const n = e - s;
    if (this.length + n > this.data.length) {
      let cap = this.data.length * 2;
      while (cap < this.length + n) cap *= 2;
      const d = Buffer.alloc(cap);
      this.data.copy(d, 0, 0, this.length);
      this.data = d;
    }
    const at = this.length;
    if (n < 64) {
      const d = this.data;
      for (let i = 0; i < n; i++) d[at + i] = src[s + i]!;
    } else this.data.set(src.subarray(s, e), at);
    this.length += n;
    return at;
  }
}

const M1 = 0x01000193;
const M2 = 0x9e3779b1 | 0;

/**
 * Two 32-bit hashes of bytes [s, e) in one pass (read 8 bytes at a time): `hashBytes`
 * returns the first and leaves the second in `hash2.value`. Two chains of different
 * structure (xor-multiply, and rotate-add-multiply), each finished by an avalanche:
 * together a 64-bit fingerprint.
 */
export const hash2 = { value: 0 };
export function hashBytes(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5 | 0;
  let g = (e - s) | 0;
  let i = s;
  for (; i + 8 <= e; i += 8) {
    const x = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    const y = b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24);
    h = Math.imul(Math.imul(h ^ x, M1) ^ y, M1);
    g = Math.imul(((g << 13) | (g >>> 19)) + x, M2) ^ y;
  }
  for (; i < e; i++) {
    const c = b[i]!;
    h = Math.imul(h ^ c, M1);
    g = Math.imul(((g << 5) | (g >>> 27)) + c, M2);
  }
  hash2.value = fmix32(g ^ 0x5bd1e995);
  return fmix32(h);
}

/** The second chain's start in hashBytesDv (the length is folded in at the end). */
const G0 = 0x3c6ef372 | 0;

/**
 * hashBytes reading through `dv` (a DataView of the memory of `b`): about twice as fast on long
 * ranges; a different hash. Its second chain starts from a constant and takes the length at the
 * end, so that hashToBlankLine can hash a block before knowing where it ends.
 */
export function hashBytesDv(b: Uint8Array, dv: DataView, s: number, e: number): number {
  let h = 0x811c9dc5 | 0;
  let g = G0;
  let i = s;
  for (; i + 8 <= e; i += 8) {
    const x = dv.getInt32(i, true);
    const y = dv.getInt32(i + 4, true);
    h = Math.imul(Math.imul(h ^ x, M1) ^ y, M1);
    g = Math.imul(((g << 13) | (g >>> 19)) + x, M2) ^ y;
  }
  for (; i < e; i++) {
    const c = b[i]!;
    h = Math.imul(h ^ c, M1);
    g = Math.imul(((g << 5) | (g >>> 27)) + c, M2);
  }
  hash2.value = fmix32(g ^ (e - s) ^ 0x5bd1e995);
  return fmix32(h);
}

/** hashToBlankLine's hashes of the block it found. */
export const blockHash = { h1: 0, h2: 0 };

/**
 * The end of a block of lines that starts at `s` (b[s - 1] is "\n") and ends at a blank line:
 * the first e in [s, end) with b[e - 1] and b[e] both "\n" (the block is [s, e), e === s when it
 * is empty), or -1 when there is none before `end`. On the way it hashes [s, e) exactly as
 * hashBytesDv(b, dv, s, e) does and leaves the two hashes (unsigned) in `blockHash`: one pass over
 * the bytes instead of a search and then a hash. Eight bytes at a time are read for the hash;
 * only those holding a "\n" are looked at one by one.
 */
export function hashToBlankLine(b: Uint8Array, dv: DataView, s: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  let g = G0;
  let i = s;
  let e = -1;
  // Bit 7 set when the byte before b[i] may be "\n" (b[s - 1] is).
  let before = 0x80;
  for (; i + 8 <= end; i += 8) {
    const x = dv.getInt32(i, true);
    const y = dv.getInt32(i + 4, true);
    // Bit 7 of each byte of mx and my is set when that byte of x or y may be "\n": the has-zero-
    // byte test on x ^ 0x0a0a0a0a sets it for every "\n" (and maybe for a 0x0b just above one).
    // Two of them side by side (inside x, inside y, across x and y, or across the words before)
    // may be the blank line: only then are the bytes looked at one by one.
    const zx = x ^ 0x0a0a0a0a;
    const zy = y ^ 0x0a0a0a0a;
    const mx = (zx - 0x01010101) & ~zx & 0x80808080;
    const my = (zy - 0x01010101) & ~zy & 0x80808080;
    if ((mx & ((mx << 8) | before)) | (my & ((my << 8) | (mx >>> 24)))) {
      let j = i;
      while (j < i + 8 && !(b[j] === 10 && b[j - 1] === 10)) j++;
      if (j < i + 8) {
        e = j;
        break;
      }
    }
    before = my >>> 24;
    h = Math.imul(Math.imul(h ^ x, M1) ^ y, M1);
    g = Math.imul(((g << 13) | (g >>> 19)) + x, M2) ^ y;
  }
  if (e < 0) {
    let j = i;
    while (j < end && !(b[j] === 10 && b[j - 1] === 10)) j++;
    if (j >= end) return -1;
    e = j;
  }
  for (; i < e; i++) {
    const c = b[i]!;
    h = Math.imul(h ^ c, M1);
    g = Math.imul(((g << 5) | (g >>> 27)) + c, M2);
  }
  blockHash.h1 = fmix32(h) >>> 0;
  blockHash.h2 = fmix32(g ^ (e - s) ^ 0x5bd1e995) >>> 0;
  return e;
}

/** Hash of a few 32-bit integers (group keys made of ids). */
export function hashInts(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x27d4eb2d, M2);
  h = Math.imul(h ^ b, M1) + ((h << 7) | (h >>> 25));
  h = Math.imul(h ^ c, M2) + ((h << 11) | (h >>> 21));
  h = Math.imul(h ^ d, M1);
  return fmix32(h);
}

/**
 * Strings by id, each once: an open-addressing table of ids (4 bytes a slot, at most half
 * full) over the array of texts, in place of a Map (about 40 bytes an entry with its slack).
 */
export class TextIds {
  readonly texts: string[] = [];
  /** id + 1, 0 empty. */
  private slots = new Uint32Array(1 << 10);

  get size(): number {
    return this.texts.length;
  }

  /**
   * Id of `t`, added when new. `own`: what is kept is a copy in memory of its own (see
   * ownString: a text built by `+` or cut from a larger one), else `t` itself.
   */
  id(t: string, own = false): number {
    const mask = this.slots.length - 1;
    let slot = fmix32(hashText(t)) & mask;
    for (; ; slot = (slot + 1) & mask) {
      const e = this.slots[slot]!;
      if (e === 0) break;
      if (this.texts[e - 1] === t) return e - 1;
    }
    const id = this.texts.length;
    this.texts.push(own ? ownString(t) : t);
    this.slots[slot] = id + 1;
    if ((id + 1) * 2 > this.slots.length)
      this.slots = placeAll(this.slots.length * 2, id + 1, (i) => fmix32(hashText(this.texts[i]!)));
    return id;
  }
}

/**
 * Exact interning of short byte strings: id <-> bytes, looked up by hash and checked
 * byte for byte (the strings are few: header prefixes, task names, frame lines).
 */
export class ByteInterner {
  readonly arena = new ByteArena();
  /**
   * `exact` (the default): looked up by hashBytes, checked byte for byte. `fingerprint`:
   * looked up by the 64-bit hashBytesDv and its length, never compared (for strings met
   * once per record: the task name of a page_owner header; see internFp).
   */
  constructor(private readonly mode: 'exact' | 'fingerprint' = 'exact') {}
  private hashOf(b: Uint8Array, s: number, e: number): number {
    return hashBytes(b, s, e);
  }
  readonly starts = new U32Column();
  readonly ends = new U32Column();
  private hashes = new U32Column();
  private hashes2 = new U32Column();
  private slots = new Int32Array(1 << 10).fill(-1);
  private texts: (string | undefined)[] = [];

  get size(): number {
    return this.starts.length;
  }

  /**
   * Id of bytes [s, e) of a fingerprint interner (`dv`: a DataView of the memory of `b`),
   * added when new.
   */
  internFp(b: Uint8Array, dv: DataView, s: number, e: number): number {
    const h = hashBytesDv(b, dv, s, e);
    const h2 = hash2.value >>> 0;
    const hu = h >>> 0;
    const n = e - s;
    const mask = this.slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const id = this.slots[slot]!;
      if (id < 0) break;
      if (
        this.hashes.data[id] === hu &&
        this.hashes2.data[id] === h2 &&
        this.ends.data[id]! - this.starts.data[id]! === n
      )
        return id;
      slot = (slot + 1) & mask;
    }
    const id = this.starts.length;
    const at = this.arena.append(b, s, e);
    this.starts.push(at);
    this.ends.push(at + n);
    this.hashes.push(hu);
    this.hashes2.push(h2);
    this.slots[slot] = id;
    if ((id + 1) * 2 > this.slots.length) this.rehash();
    return id;
  }

  /** Id of bytes [s, e) of `b`, added when new. `h` is hashBytes(b, s, e). */
  intern(b: Uint8Array, s: number, e: number, h = this.hashOf(b, s, e)): number {
    if (this.mode === 'fingerprint')
      return this.internFp(b, new DataView(b.buffer, b.byteOffset, b.length), s, e);
    const mask = this.slots.length - 1;
    const a = this.arena.data;
    const n = e - s;
    let slot = h & mask;
    for (;;) {
      const id = this.slots[slot]!;
      if (id < 0) break;
      if (this.hashes.data[id] === h >>> 0) {
        const as = this.starts.data[id]!;
        if (this.ends.data[id]! - as === n) {
          let k = 0;
          while (k < n && a[as + k] === b[s + k]) k++;
          if (k === n) return id;
        }
      }
      slot = (slot + 1) & mask;
    }
    const id = this.starts.length;
    const at = this.arena.append(b, s, e);
    this.starts.push(at);
    this.ends.push(at + n);
    this.hashes.push(h >>> 0);
    this.slots[slot] = id;
    if ((id + 1) * 2 > this.slots.length) this.rehash();
    return id;
  }

  /** Id of a latin1 string, added when new. */
  internText(t: string): number {
    const b = Buffer.from(t, 'latin1');
    return this.intern(b, 0, b.length);
  }

  /** Id of bytes [s, e), or -1 when they were never interned. */
  find(b: Uint8Array, s: number, e: number, h = this.hashOf(b, s, e)): number {
    if (this.mode === 'fingerprint') throw new Error('find() on a fingerprint interner');
    const mask = this.slots.length - 1;
    const a = this.arena.data;
    const n = e - s;
    let slot = h & mask;
    for (;;) {
      const id = this.slots[slot]!;
      if (id < 0) return -1;
      if (this.hashes.data[id] === h >>> 0) {
        const as = this.starts.data[id]!;
        if (this.ends.data[id]! - as === n) {
          let k = 0;
          while (k < n && a[as + k] === b[s + k]) k++;
          if (k === n) return id;
        }
      }
      slot = (slot + 1) & mask;
    }
  }

  /** The text of an id (latin1, one char per byte), decoded once. */
  text(id: number): string {
    let t = this.texts[id];
    if (t === undefined) {
      t = this.arena.data.toString('latin1', this.starts.data[id]!, this.ends.data[id]!);
      this.texts[id] = t;
    }
    return t;
  }

  /** Every text, by id (for handing to another thread). */
  allTexts(): string[] {
    const out: string[] = new Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.text(i);
    return out;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(-1);
    const mask = slots.length - 1;
    for (let id = 0; id < this.starts.length; id++) {
      let slot = this.hashes.data[id]! & mask;
      while (slots[slot]! >= 0) slot = (slot + 1) & mask;
      slots[slot] = id;
    }
    this.slots = slots;
  }
}

/** Rows per block of the block columns and RowTable. */
export const BLOCK_BITS = 16;
const BLOCK = 1 << BLOCK_BITS;
export const BLOCK_MASK = BLOCK - 1;

/**
 * A Uint8 column for tables of millions of rows, in blocks of 65,536: growing never copies
 * (a doubling array would hold old and new copies at once), and unused blocks cost nothing.
 */
export class U8Blocks {
  private readonly blocks: Uint8Array[] = [];
  length = 0;
  push(v: number): number {
    const i = this.length++;
    if (i >>> BLOCK_BITS === this.blocks.length) this.blocks.push(new Uint8Array(BLOCK));
    this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK] = v;
    return i;
  }
  get(i: number): number {
    return this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK]!;
  }
  set(i: number, v: number): void {
    this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK] = v;
  }
}

/**
 * Growable columns for tables that may reach hundreds of thousands of rows but are usually
 * small (the groups of a stack aggregator): the first block starts at 1,024 entries and
 * doubles up to 65,536; past that the column grows by whole blocks and never copies. A
 * doubling array leaves its old copies to the collector, and malloc keeps the pages: at
 * 120,828 stacks (`page-owner top`) presized columns peaked 4-5 MB lower than doubling ones.
 * Entries not yet written read 0. Block 0 holds rows 0..65,535 however long it is, so a row's
 * block and offset are always `i >>> 16` and `i & 0xffff`.
 */
abstract class SmallFirstBlocks<A extends Uint32Array | Float64Array> {
  protected blocks: A[];
  /** Rows with room (the length of every block together). */
  capacity = 1024;
  length = 0;
  constructor(private readonly make: (n: number) => A) {
    this.blocks = [make(1024)];
  }
  /** Room for rows 0..n-1 (new rows read 0); `length` is not changed. */
  ensure(n: number): void {
    if (n <= this.capacity) return;
    const b0 = this.blocks[0]!;
    if (b0.length < BLOCK) {
      let c = b0.length * 2;
      while (c < n && c < BLOCK) c *= 2;
      const b = this.make(c);
      b.set(b0);
      this.blocks[0] = b;
    }
    while (this.blocks.length * BLOCK < n) this.blocks.push(this.make(BLOCK));
    this.capacity = this.blocks.length === 1 ? this.blocks[0]!.length : this.blocks.length * BLOCK;
  }
  push(v: number): number {
    const i = this.length;
    if (i >= this.capacity) this.ensure(i + 1);
    this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK] = v;
    this.length = i + 1;
    return i;
  }
  /** Row `i` (below `capacity`). */
  get(i: number): number {
    return this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK]!;
  }
  /** Set row `i` (below `capacity`). */
  set(i: number, v: number): void {
    this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK] = v;
  }
  /** Add `v` to row `i` (below `capacity`). */
  add(i: number, v: number): void {
    this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK]! += v;
  }
}

/** Uint32 rows in blocks, the first small (see SmallFirstBlocks). */
export class U32SmallBlocks extends SmallFirstBlocks<Uint32Array> {
  constructor() {
    super((n) => new Uint32Array(n));
  }
}

/** Float64 rows in blocks, the first small (see SmallFirstBlocks). */
export class F64SmallBlocks extends SmallFirstBlocks<Float64Array> {
  constructor() {
    super((n) => new Float64Array(n));
  }
}

/**
 * Sums in blocks: whole numbers of 32 bits while every value is one (counts and pages are),
 * then Float64 from the first fraction, negative or larger value on: half the bytes of a
 * Float64 column in the usual case (1 MB less per column at 120,828 stacks).
 */
export class SumBlocks {
  private u: U32SmallBlocks | undefined = new U32SmallBlocks();
  private f: F64SmallBlocks | undefined;
  get length(): number {
    return this.u ? this.u.length : this.f!.length;
  }
  push(v: number): number {
    if (this.u) {
      if (v >>> 0 === v) return this.u.push(v);
      this.widen();
    }
    return this.f!.push(v);
  }
  get(i: number): number {
    return this.u ? this.u.get(i) : this.f!.get(i);
  }
  add(i: number, v: number): void {
    const u = this.u;
    if (u) {
      const x = u.get(i) + v;
      if (x >>> 0 === x) {
        u.set(i, x);
        return;
      }
      this.widen();
    }
    this.f!.add(i, v);
  }
  private widen(): void {
    const u = this.u!;
    const f = new F64SmallBlocks();
    f.ensure(u.length);
    for (let i = 0; i < u.length; i++) f.push(u.get(i));
    this.f = f;
    this.u = undefined;
  }
}

/** Float64 column in blocks (see U8Blocks). */
export class F64Blocks {
  private readonly blocks: Float64Array[] = [];
  length = 0;
  push(v: number): number {
    const i = this.length++;
    if (i >>> BLOCK_BITS === this.blocks.length) this.blocks.push(new Float64Array(BLOCK));
    this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK] = v;
    return i;
  }
  get(i: number): number {
    return this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK]!;
  }
  set(i: number, v: number): void {
    this.blocks[i >>> BLOCK_BITS]![i & BLOCK_MASK] = v;
  }
}

/**
 * Rows of several 32-bit fields stored side by side (`stride` words a row), in blocks of
 * 65,536 rows like U8Blocks. A row read in an order unrelated to the order it was written
 * (output in sorted order, a hash probe) then costs one cache miss, not one per column:
 * on a 1 GiB page_owner dump (2 million rows) separate columns made the output's column
 * reads most of its time. The fields (RowU32, RowI32, RowU8) each push, get and set one
 * field of every row; U8 fields share a word (`shift` 0, 8, 16, 24).
 */
export class RowTable {
  readonly blocks: Uint32Array[] = [];
  constructor(readonly stride: number) {}
  /** The block of row `i`, allocated when first reached. */
  block(i: number): Uint32Array {
    const b = i >>> BLOCK_BITS;
    while (b >= this.blocks.length) this.blocks.push(new Uint32Array(BLOCK * this.stride));
    return this.blocks[b]!;
  }
  /** What touch() read, summed (meaningless: kept so that the reads are not optimized away). */
  touched = 0;
  /**
   * Read the first word of rows order[from..to): run before work that reads those rows one
   * by one, it brings them into the cache with many reads in flight, where the work itself
   * would wait for each row in turn.
   */
  touch(order: Uint32Array, from: number, to: number): void {
    const blocks = this.blocks;
    const stride = this.stride;
    let s = this.touched;
    for (let i = from; i < to; i++) {
      const r = order[i]!;
      s = (s + blocks[r >>> BLOCK_BITS]![(r & BLOCK_MASK) * stride]!) | 0;
    }
    this.touched = s;
  }
}

/** An unsigned 32-bit field of a RowTable (word `word` of each row). */
export class RowU32 {
  length = 0;
  private readonly stride: number;
  constructor(
    private readonly t: RowTable,
    private readonly word: number,
  ) {
    this.stride = t.stride;
  }
  push(v: number): number {
    const i = this.length++;
    this.t.block(i)[(i & BLOCK_MASK) * this.stride + this.word] = v;
    return i;
  }
  get(i: number): number {
    return this.t.blocks[i >>> BLOCK_BITS]![(i & BLOCK_MASK) * this.stride + this.word]!;
  }
  set(i: number, v: number): void {
    this.t.blocks[i >>> BLOCK_BITS]![(i & BLOCK_MASK) * this.stride + this.word] = v;
  }
}

/** A signed 32-bit field of a RowTable: the same word, read as a signed number. */
export class RowI32 extends RowU32 {
  override get(i: number): number {
    return super.get(i) | 0;
  }
}

/** An 8-bit field of a RowTable: bits `shift`..`shift + 7` of word `word` (values 0-255). */
export class RowU8 {
  length = 0;
  private readonly stride: number;
  private readonly keep: number;
  constructor(
    private readonly t: RowTable,
    private readonly word: number,
    private readonly shift: number,
  ) {
    this.stride = t.stride;
    this.keep = ~(0xff << shift);
  }
  push(v: number): number {
    const i = this.length++;
    const b = this.t.block(i);
    const j = (i & BLOCK_MASK) * this.stride + this.word;
    b[j] = (b[j]! & this.keep) | ((v & 0xff) << this.shift);
    return i;
  }
  get(i: number): number {
    return (
      (this.t.blocks[i >>> BLOCK_BITS]![(i & BLOCK_MASK) * this.stride + this.word]! >>> this.shift) & 0xff
    );
  }
  set(i: number, v: number): void {
    const b = this.t.blocks[i >>> BLOCK_BITS]!;
    const j = (i & BLOCK_MASK) * this.stride + this.word;
    b[j] = (b[j]! & this.keep) | ((v & 0xff) << this.shift);
  }
}

/** A field of rows: RowU32, RowI32, RowU8 or RowBits. */
export interface RowField {
  readonly length: number;
  push(v: number): number;
  get(i: number): number;
  set(i: number, v: number): void;
}

/**
 * A field of `bits` bits (1-31) at bit `shift` of word `word` of a RowTable, so that small
 * fields share a word. With `spill`, any whole number from 0 up fits: a value of `bits` ones or
 * more is kept in a map beside the table, the field holding `bits` ones (for a count that is
 * nearly always small, or an id that nearly always is); without, a value that does not fit
 * is an error.
 */
export class RowBits implements RowField {
  length = 0;
  private readonly stride: number;
  private readonly mask: number;
  private readonly keep: number;
  /** The values of `bits` ones or more, by row (with `spill`). */
  private readonly spilled = new Map<number, number>();
  constructor(
    private readonly t: RowTable,
    private readonly word: number,
    private readonly shift: number,
    bits: number,
    private readonly spill: boolean,
  ) {
    if (!(bits >= 1 && bits <= 31 && shift >= 0 && shift + bits <= 32))
      throw new RangeError(`RowBits: ${bits} bits at bit ${shift}`);
    this.stride = t.stride;
    this.mask = 2 ** bits - 1;
    this.keep = ~(this.mask << shift);
  }
  push(v: number): number {
    const i = this.length++;
    this.t.block(i);
    this.set(i, v);
    return i;
  }
  get(i: number): number {
    const f =
      (this.t.blocks[i >>> BLOCK_BITS]![(i & BLOCK_MASK) * this.stride + this.word]! >>> this.shift) &
      this.mask;
    return f === this.mask && this.spill ? this.spilled.get(i)! : f;
  }
  set(i: number, v: number): void {
    const b = this.t.blocks[i >>> BLOCK_BITS]!;
    const j = (i & BLOCK_MASK) * this.stride + this.word;
    const old = (b[j]! >>> this.shift) & this.mask;
    let f = v;
    if (!(v >>> 0 === v && v < this.mask)) {
      if (this.spill && v >= 0 && Number.isSafeInteger(v)) {
        this.spilled.set(i, v);
        f = this.mask;
      } else if (v !== this.mask || this.spill)
        throw new RangeError(`RowBits: ${v} does not fit in ${Math.log2(this.mask + 1)} bits`);
    } else if (old === this.mask && this.spill) this.spilled.delete(i);
    b[j] = (b[j]! & this.keep) | (f << this.shift);
  }
}

/** Ranges of at most this many rows are put in order by insertion, comparing keys. */
const SORT_SMALL = 16;
/** Ranges below this many rows are sorted by 8-bit digits, longer ones by 16-bit digits. */
const SORT_WIDE = 4096;

/**
 * Stable sort of `idx` (row numbers) by unsigned integer keys, most significant first:
 * `keys[k](row)` in [0, 2^32). Most significant key first (MSD): the rows are put in order by
 * keys[0], then each run of rows that tie on it by keys[1], and so on, so a key is read only
 * for rows the keys before it could not tell apart (the default sort's 2 million rows are
 * told apart by their first three keys: the last three are read for a few rows, where an LSD
 * sort read and moved every row by each of them). A range is sorted by a key with counting
 * passes over its digits (16-bit digits for long ranges, 8-bit for short ones, a pass where
 * every row has the same digit skipped), a range of a few rows by insertion over its remaining
 * keys. The key's values (by row) and the passes' output live in `scratch` when it holds
 * 2 * idx.length words (its contents are overwritten), else in new arrays.
 */
export function radixSort(
  idx: Uint32Array,
  keys: readonly ((row: number) => number)[],
  scratch?: Int32Array | Uint32Array,
): Uint32Array {
  const n = idx.length;
  if (n < 2 || keys.length === 0) return idx;
  let rows = 0;
  for (let i = 0; i < n; i++) if (idx[i]! >= rows) rows = idx[i]! + 1;
  const room = scratch !== undefined && scratch.length >= rows + n;
  const vals = room ? new Uint32Array(scratch.buffer, scratch.byteOffset, rows) : new Uint32Array(rows);
  const tmp = room ? new Uint32Array(scratch.buffer, scratch.byteOffset + 4 * rows, n) : new Uint32Array(n);
  const count16 = new Uint32Array(BLOCK);
  const count8 = new Uint32Array(256);
  const last = keys.length - 1;
  // Ranges still to sort: (lo, hi, key), pushed in that order.
  const todo: number[] = [0, n, 0];
  while (todo.length > 0) {
    const k = todo.pop()!;
    const hi = todo.pop()!;
    const lo = todo.pop()!;
    if (hi - lo <= SORT_SMALL) {
      insertionSort(idx, lo, hi, keys, k);
      continue;
    }
    const key = keys[k]!;
    let min = 0xffffffff;
    let max = 0;
    for (let i = lo; i < hi; i++) {
      const r = idx[i]!;
      const v = key(r) >>> 0;
      vals[r] = v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (min === max) {
      if (k < last) todo.push(lo, hi, k + 1);
      continue;
    }
    const span = max - min;
    const wide = hi - lo >= SORT_WIDE;
    const bits = wide ? 16 : 8;
    const count = wide ? count16 : count8;
    const mask = count.length - 1;
    for (let shift = 0; shift < 32 && span >>> shift !== 0; shift += bits) {
      count.fill(0);
      for (let i = lo; i < hi; i++) count[((vals[idx[i]!]! - min) >>> shift) & mask]!++;
      let sum = lo;
      let buckets = 0;
      for (let d = 0; d <= mask; d++) {
        const c = count[d]!;
        if (c > 0) buckets++;
        count[d] = sum;
        sum += c;
      }
      if (buckets < 2) continue;
      for (let i = lo; i < hi; i++) {
        const r = idx[i]!;
        tmp[count[((vals[r]! - min) >>> shift) & mask]!++] = r;
      }
      idx.set(tmp.subarray(lo, hi), lo);
    }
    if (k === last) continue;
    // Runs of rows with the same value: in order by the next key (a short run at once, so that
    // the list of ranges to do stays short).
    let s = lo;
    let sv = vals[idx[lo]!]!;
    for (let i = lo + 1; i <= hi; i++) {
      if (i < hi && vals[idx[i]!]! === sv) continue;
      if (i - s > SORT_SMALL) todo.push(s, i, k + 1);
      else if (i - s > 1) insertionSort(idx, s, i, keys, k + 1);
      if (i < hi) {
        s = i;
        sv = vals[idx[i]!]!;
      }
    }
  }
  return idx;
}

/** Rows idx[lo, hi) (which tie on the keys before `k`) in order by keys[k...], stably. */
function insertionSort(
  idx: Uint32Array,
  lo: number,
  hi: number,
  keys: readonly ((row: number) => number)[],
  k: number,
): void {
  for (let i = lo + 1; i < hi; i++) {
    const r = idx[i]!;
    let j = i - 1;
    while (j >= lo && compareRows(idx[j]!, r, keys, k) > 0) {
      idx[j + 1] = idx[j]!;
      j--;
    }
    idx[j + 1] = r;
  }
}

function compareRows(a: number, b: number, keys: readonly ((row: number) => number)[], k: number): number {
  for (; k < keys.length; k++) {
    const key = keys[k]!;
    const x = key(a) >>> 0;
    const y = key(b) >>> 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
