/**
 * The stack-group model shared by every stack-carrying source (page_owner, kmemleak,
 * slab alloc_traces, allocinfo, vmallocinfo callers). A group is keyed by its
 * normalised frames (function and module; `+off/len` kept for display only), and
 * carries counts, bytes and pages. Top, diff and flame-graph export work on groups
 * from any source.
 */

import { type Frame, formatFrame, frameKey, ownFrame } from '../model/frame.js';

import { fmix32, hashText, placeAll } from '../model/hash.js';
import { SumBlocks, TextIds, U32Column, U32SmallBlocks } from './intern.js';

/**
 * Functions that belong to the allocators themselves. The culprit of an allocation is
 * the first frame below them. Prefix matches; names follow 4.x to 6.12 (the
 * `_noprof` suffixes come from 6.10 memory allocation profiling).
 */
const ALLOCATOR_PREFIXES = [
  '__alloc_pages',
  'alloc_pages',
  '__folio_alloc',
  'folio_alloc',
  'alloc_slab_page',
  'allocate_slab',
  'new_slab',
  '___slab_alloc',
  '__slab_alloc',
  'slab_alloc',
  '__kmem_cache_alloc',
  'kmem_cache_alloc',
  '__kmalloc',
  'kmalloc',
  '__do_kmalloc',
  'kmalloc_trace',
  'kmalloc_large',
  '__kmalloc_large',
  'kmalloc_order',
  'kzalloc',
  'kcalloc',
  'krealloc',
  '__vmalloc',
  'vmalloc',
  'vzalloc',
  '__vmalloc_node',
  '__vmalloc_area_node',
  'vm_area_alloc_pages',
  'kvmalloc',
  '__kvmalloc',
  'get_page_from_freelist',
  'prep_new_page',
  'post_alloc_hook',
  'set_page_owner',
  '__set_page_owner',
  'register_dummy_stack',
  'save_stack',
  'stack_trace_save',
  'kmemleak_alloc',
  'kmemleak_vmalloc',
  'slab_post_alloc_hook',
  'alloc_pages_mpol',
  'alloc_pages_bulk',
  '__alloc_pages_bulk',
  'alloc_pages_exact',
  '__get_free_pages',
  'get_zeroed_page',
  'alloc_page_interleave',
  'pcpu_alloc',
  '__alloc_percpu',
] as const;

/** True for frames inside the page/slab/vmalloc allocators (and page_owner itself). */
export function isAllocatorFrame(f: Frame): boolean {
  const name = f.func;
  return ALLOCATOR_PREFIXES.some((p) => name.startsWith(p));
}

/** The first frame outside the allocators: who asked for the memory. */
export function culpritFrame(frames: readonly Frame[]): Frame | undefined {
  return frames.find((f) => !isAllocatorFrame(f)) ?? frames[0];
}

/** The first module named in the stack (innermost first), if any. */
export function moduleOf(frames: readonly Frame[]): string | undefined {
  return frames.find((f) => f.module !== undefined)?.module;
}

/** What a group counts. All optional so a source fills what it knows. */
export interface Weights {
  /** Records or objects (allocations outstanding, kmemleak reports...). */
  count: number;
  bytes: number;
  pages: number;
}

export type WeightName = keyof Weights;

export interface StackGroup {
  /** Matching key (see `stackKey`). */
  key: string;
  /** Frames of the first stack seen with this key (offsets kept for display). */
  frames: Frame[];
  weights: Weights;
}

/** The hash of a frame's fields that tell frames apart (FrameTable's identity). */
function hashFrame(f: Frame): number {
  let h = hashText(f.func);
  if (f.offset !== undefined) h = Math.imul(h ^ f.offset, 0x01000193) ^ Math.imul(f.length ?? -1, 0x9e3779b1);
  if (f.module !== undefined) h = hashText(f.module, h ^ 0x5bd1e995);
  if (f.address !== undefined) h = hashText(f.address, h ^ 0x27d4eb2f);
  return fmix32(h);
}

/** Frames `a` and `b` print alike (offsets included) and have the same address. */
function sameFrame(a: Frame, b: Frame): boolean {
  return (
    a.func === b.func &&
    a.offset === b.offset &&
    (a.offset === undefined || a.length === b.length) &&
    a.module === b.module &&
    a.address === b.address
  );
}

/**
 * Every distinct frame once: parsed once, shared (read-only) by every stack that has it,
 * with its matching keys (`func [module]`, and the form with offsets) as key ids. Keys
 * live in one table of texts, so two frames that print the same key share its id.
 *
 * A new frame costs its object and strings, the text of its key with offsets, and a few
 * typed-array slots: frames are looked up by their fields, not by a text built for each
 * lookup, and no Map holds them (a Map entry with its slack is about 40 bytes).
 */
export class FrameTable {
  /** Frames by id. */
  readonly frames: Frame[] = [];
  private readonly keyTexts = new TextIds();
  private readonly matchKey = new U32Column();
  private readonly offsetKey = new U32Column();
  /** Frame id + 1 by hashFrame, open addressing (0: empty), at most half full. */
  private slots = new Uint32Array(1 << 10);

  get size(): number {
    return this.frames.length;
  }

  /** Key texts by key id. */
  get keys(): readonly string[] {
    return this.keyTexts.texts;
  }

  /**
   * Id of a frame (frames with the same fields, offsets and address included, share one). A
   * new frame is kept as a copy whose strings are its own: a name parsed from a line is a
   * slice of the text it was read from, and kept as it is it would keep that whole chunk of
   * input alive (a 64 KiB read of a kmemleak report or a trace for every chunk where a stack
   * first appears). `owned`: the frame was parsed from a text of its own (one line), kept as it is.
   */
  intern(f: Frame, owned = false): number {
    const mask = this.slots.length - 1;
    let slot = hashFrame(f) & mask;
    for (; ; slot = (slot + 1) & mask) {
      const e = this.slots[slot]!;
      if (e === 0) break;
      if (sameFrame(this.frames[e - 1]!, f)) return e - 1;
    }
    const id = this.frames.length;
    const kept = owned ? f : ownFrame(f);
    this.frames.push(kept);
    // The match key of a frame without a module is its name: that string, not a copy.
    const match =
      kept.module === undefined ? this.keyTexts.id(kept.func) : this.keyTexts.id(frameKey(kept), true);
    this.matchKey.push(match);
    // Without an offset, the frame prints as its match key.
    this.offsetKey.push(kept.offset === undefined ? match : this.keyTexts.id(formatFrame(kept), true));
    this.slots[slot] = id + 1;
    if ((id + 1) * 2 > this.slots.length)
      this.slots = placeAll(this.slots.length * 2, id + 1, (i) => hashFrame(this.frames[i]!));
    return id;
  }

  /** The table's frame for `f` (its copy, added when new): one object per distinct frame. */
  frameOf(f: Frame): Frame {
    return this.frames[this.intern(f)]!;
  }

  /** Id of a key text (kept as it is: a text cut from a larger one keeps that alive). */
  keyId(text: string): number {
    return this.keyTexts.id(text);
  }

  /** Key ids by frame id (valid until the next new frame): `func [module]`, or with offsets. */
  keyIds(withOffsets = false): Uint32Array {
    return (withOffsets ? this.offsetKey : this.matchKey).data;
  }

  /** Key id of a frame: `func [module]`, or with offsets. */
  keyOf(frameId: number, withOffsets = false): number {
    return (withOffsets ? this.offsetKey : this.matchKey).data[frameId]!;
  }
}

/** Frame ids per block of a StackTable's pool (the last blocks; the first are smaller). */
const POOL_BLOCK_BITS = 16;
const POOL_BLOCK = 1 << POOL_BLOCK_BITS;
const POOL_OFFSET_MASK = POOL_BLOCK - 1;
/** A block of a StackTable's pool: 16-bit frame ids while every id fits, else 32-bit. */
type PoolBlock = Uint16Array | Uint32Array;

/** Slots of a StackTable: id + 1 in the low 24 bits, the hash's top 8 bits above (while ids fit). */
const ID_MASK = 0xffffff;
const TAG_SHIFT = 24;
const TAG_UNIT = 1 << 24;

/** The hash (unsigned) of the key ids of frames `ids[s..s+n)`: a stack's, wherever its ids are. */
function hashKeys(key: Uint32Array, ids: ArrayLike<number>, s: number, n: number): number {
  let h = n | 0;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ key[ids[s + i]!]!, 0x01000193) + (h >>> 15);
  return fmix32(h) >>> 0;
}

/**
 * Stacks interned once: a stack is a run of frame ids in a pool of blocks, looked up by its
 * key ids (offsets ignored unless `withOffsets`), so a distinct stack costs a few bytes
 * per frame plus a dozen, whatever the number of records that carry it. The frames kept
 * for display are those of the first stack seen with the key.
 */
export class StackTable {
  readonly frames: FrameTable;
  /**
   * Frame ids of every stack, each stack's run inside one block (blocks are never copied:
   * the pool grows by a block, without the moment a doubling array holds both copies). A
   * stack's start is its block << 16 | its offset there.
   */
  private readonly pool: PoolBlock[] = [];
  /**
   * Every frame id so far is below 65,536: the blocks are Uint16Array, half the bytes (a
   * kernel has tens of thousands of functions; 3.3 of `page-owner top`'s 6.6 MB of frame ids
   * at 108,443 stacks). The first larger id turns every block into a Uint32Array.
   */
  private narrow = true;
  /** Entries used in the last block. */
  private poolUsed = 0;
  // By stack id, in blocks (no doubled copies left behind; see SmallFirstBlocks).
  private readonly starts = new U32SmallBlocks();
  private readonly lengths = new U32SmallBlocks();
  /**
   * The lookup table: 0 for an empty slot, else id + 1 with, while ids fit in 24 bits, the top
   * 8 bits of the stack's hash above it: a probe that meets another stack's slot mostly tells
   * it apart there. No hash is kept per stack (4 bytes a stack: 0.4 MB of `page-owner top`'s
   * peak at 108,545 stacks); growing the table hashes every stack again from its key ids.
   */
  private slots = new Uint32Array(1 << 10);
  private tagged = true;
  private scratch = new Uint32Array(64);

  /** Ids up to which slots carry a tag (below 2^24; tests set fewer). */
  private readonly tagIds: number;

  constructor(
    frames: FrameTable = new FrameTable(),
    readonly withOffsets = false,
    opts: { tagIds?: number } = {},
  ) {
    this.frames = frames;
    this.tagIds = Math.min(opts.tagIds ?? ID_MASK, ID_MASK);
  }

  get size(): number {
    return this.starts.length;
  }

  /**
   * Id of the stack of these frames, added when new. `owned`: the frames hold no view of a
   * larger text (FrameTable.intern), a new one is kept as it is.
   */
  internFrames(frames: readonly Frame[], owned = false): number {
    if (this.scratch.length < frames.length) this.scratch = new Uint32Array(frames.length * 2);
    const ids = this.scratch;
    for (let i = 0; i < frames.length; i++) ids[i] = this.frames.intern(frames[i]!, owned);
    return this.intern(ids, frames.length);
  }

  /** Id of the stack whose frames are `frameIds[0..n)` (ids of this table's FrameTable). */
  intern(frameIds: ArrayLike<number>, n: number): number {
    const key = this.frames.keyIds(this.withOffsets);
    const h = hashKeys(key, frameIds, 0, n);
    const tag = this.tagged ? (h >>> TAG_SHIFT) * TAG_UNIT : 0;
    const mask = this.slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const e = this.slots[slot]!;
      if (e === 0) break;
      if (!this.tagged || e - (e & ID_MASK) === tag) {
        const id = (this.tagged ? e & ID_MASK : e) - 1;
        if (this.lengths.get(id) === n) {
          const st = this.starts.get(id);
          const pool = this.pool[st >>> POOL_BLOCK_BITS]!;
          const s = st & POOL_OFFSET_MASK;
          let k = 0;
          while (k < n && key[pool[s + k]!] === key[frameIds[k]!]) k++;
          if (k === n) return id;
        }
      }
      slot = (slot + 1) & mask;
    }
    const id = this.starts.length;
    if (this.narrow)
      for (let i = 0; i < n; i++)
        if (frameIds[i]! > 0xffff) {
          this.widen();
          break;
        }
    const start = this.place(n);
    this.starts.push(start);
    this.lengths.push(n);
    const block = this.pool[start >>> POOL_BLOCK_BITS]!;
    const at = start & POOL_OFFSET_MASK;
    for (let i = 0; i < n; i++) block[at + i] = frameIds[i]!;
    if (this.tagged && id + 1 > this.tagIds) {
      // Ids no longer fit beside a tag: the table holds id + 1 alone from now on.
      this.tagged = false;
      this.rehash(this.slots.length);
      return id;
    }
    this.slots[slot] = this.tagged ? tag + id + 1 : id + 1;
    if ((id + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    return id;
  }

  /** Stack `id`'s frames are `frameIds[0..n)`, id for id (the same display). */
  sameFrames(id: number, frameIds: ArrayLike<number>, n: number): boolean {
    if (this.lengths.get(id) !== n) return false;
    const st = this.starts.get(id);
    const pool = this.pool[st >>> POOL_BLOCK_BITS]!;
    const s = st & POOL_OFFSET_MASK;
    let k = 0;
    while (k < n && pool[s + k] === frameIds[k]) k++;
    return k === n;
  }

  /**
   * Room for a run of `n` frame ids: its start (block << 16 | offset). A run that does not
   * fit in the last block opens the next one (4 K entries at first, doubling up to 64 K; a
   * run longer than that gets a block of its own).
   */
  private place(n: number): number {
    let b = this.pool.length - 1;
    if (b < 0 || this.poolUsed + n > this.pool[b]!.length) {
      b++;
      const size = Math.max(n, Math.min(POOL_BLOCK, 4096 << b));
      this.pool.push(this.narrow ? new Uint16Array(size) : new Uint32Array(size));
      this.poolUsed = 0;
    }
    const start = b * POOL_BLOCK + this.poolUsed;
    this.poolUsed += n;
    return start;
  }

  /** Blocks of 32-bit frame ids from now on, the 16-bit ones copied. */
  private widen(): void {
    for (let b = 0; b < this.pool.length; b++) this.pool[b] = Uint32Array.from(this.pool[b]!);
    this.narrow = false;
  }

  /** The block and offset of stack `id`'s frame ids. */
  private run(id: number): { block: PoolBlock; s: number } {
    const st = this.starts.get(id);
    return { block: this.pool[st >>> POOL_BLOCK_BITS]!, s: st & POOL_OFFSET_MASK };
  }

  /** Number of frames of a stack. */
  depth(id: number): number {
    return this.lengths.get(id);
  }

  /** Frame id `i` of a stack. */
  frameId(id: number, i: number): number {
    const st = this.starts.get(id);
    return this.pool[st >>> POOL_BLOCK_BITS]![(st & POOL_OFFSET_MASK) + i]!;
  }

  /** The display frames of a stack (shared Frame objects, a new array). */
  framesOf(id: number): Frame[] {
    const { block, s } = this.run(id);
    const n = this.lengths.get(id);
    const out: Frame[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.frames.frames[block[s + i]!]!;
    return out;
  }

  /** The matching key of a stack, as `stackKey` spells it (built on each call). */
  keyOf(id: number): string {
    const { block, s } = this.run(id);
    const n = this.lengths.get(id);
    const parts: string[] = new Array(n);
    for (let i = 0; i < n; i++)
      parts[i] = this.frames.keys[this.frames.keyOf(block[s + i]!, this.withOffsets)]!;
    return parts.join(';');
  }

  /**
   * Order of two stacks' keys as strings (`keyOf(a) < keyOf(b)`), without building them:
   * frame keys are compared one by one, minding that `;` follows every key but the last.
   */
  compareKeys(a: number, b: number): number {
    if (a === b) return 0;
    const ft = this.frames;
    const off = this.withOffsets;
    const { block: pa, s: sa } = this.run(a);
    const { block: pb, s: sb } = this.run(b);
    const na = this.lengths.get(a);
    const nb = this.lengths.get(b);
    for (let i = 0; ; i++) {
      if (i === na) return i === nb ? 0 : -1;
      if (i === nb) return 1;
      const ka = ft.keyOf(pa[sa + i]!, off);
      const kb = ft.keyOf(pb[sb + i]!, off);
      if (ka === kb) continue;
      const ta = ft.keys[ka]!;
      const tb = ft.keys[kb]!;
      if (ta.includes(';') || tb.includes(';')) {
        // A name with ";" in it blurs where frames start: compare the whole keys.
        const x = this.keyOf(a);
        const y = this.keyOf(b);
        return x < y ? -1 : x > y ? 1 : 0;
      }
      // One key a prefix of the other: what follows it (";" or the end) decides.
      if (tb.length > ta.length && tb.startsWith(ta)) {
        if (i === na - 1) return -1;
        return 59 < tb.charCodeAt(ta.length) ? -1 : 1;
      }
      if (ta.length > tb.length && ta.startsWith(tb)) {
        if (i === nb - 1) return 1;
        return ta.charCodeAt(tb.length) < 59 ? -1 : 1;
      }
      return ta < tb ? -1 : 1;
    }
  }

  /** A lookup table of `size` slots (a power of two) for every stack, hashed again. */
  private rehash(size: number): void {
    const slots = new Uint32Array(size);
    const mask = size - 1;
    const key = this.frames.keyIds(this.withOffsets);
    for (let id = 0; id < this.starts.length; id++) {
      const st = this.starts.get(id);
      const h = hashKeys(
        key,
        this.pool[st >>> POOL_BLOCK_BITS]!,
        st & POOL_OFFSET_MASK,
        this.lengths.get(id),
      );
      let slot = h & mask;
      while (slots[slot]! !== 0) slot = (slot + 1) & mask;
      slots[slot] = this.tagged ? (h >>> TAG_SHIFT) * TAG_UNIT + id + 1 : id + 1;
    }
    this.slots = slots;
  }
}

/**
 * A group whose stack lives in a StackTable: `frames` are shared Frame objects, `key`
 * is spelled on demand (it is long, and most groups are never printed), and JSON
 * carries all three like a plain StackGroup.
 */
export class InternedStackGroup implements StackGroup {
  readonly #stacks: StackTable;
  readonly #id: number;
  readonly #keyPrefix: string;
  readonly #emptyKey: string | undefined;
  #frames: Frame[] | undefined;
  weights: Weights;
  /**
   * `frames` default to the first stack the table saw with this key. `keyPrefix` is put
   * before the key (a group of a slab cache: `cache:`), `emptyKey` replaces the key of a
   * stack without frames.
   */
  constructor(
    stacks: StackTable,
    stackId: number,
    weights: Weights,
    frames?: Frame[],
    opts: { keyPrefix?: string; emptyKey?: string } = {},
  ) {
    this.#stacks = stacks;
    this.#id = stackId;
    this.#keyPrefix = opts.keyPrefix ?? '';
    this.#emptyKey = opts.emptyKey;
    this.#frames = frames;
    this.weights = weights;
  }
  /** The frames shown (the table's, read when first asked: most groups never are). */
  get frames(): Frame[] {
    if (this.#frames === undefined) this.#frames = this.#stacks.framesOf(this.#id);
    return this.#frames;
  }
  set frames(f: Frame[]) {
    this.#frames = f;
  }
  get key(): string {
    const k =
      this.#emptyKey !== undefined && this.#stacks.depth(this.#id) === 0
        ? this.#emptyKey
        : this.#stacks.keyOf(this.#id);
    return this.#keyPrefix + k;
  }
  get stackId(): number {
    return this.#id;
  }
  get stacks(): StackTable {
    return this.#stacks;
  }
  /** True when the key is the stack's key alone (groups can then be matched by stack id). */
  get plainKey(): boolean {
    return this.#keyPrefix === '' && this.#emptyKey === undefined;
  }
  toJSON(): StackGroup {
    return { key: this.key, frames: this.frames, weights: this.weights };
  }
}

/**
 * The `limit` first of rows 0..n-1 in the order `before` (true: a comes before b), in that
 * order: a heap of `limit` row numbers whose root is the last of them, no copy of anything
 * (it runs at the end of a grouping, when the scan's tables are not collected yet).
 */
export function selectTop(n: number, limit: number, before: (a: number, b: number) => boolean): number[] {
  let keep: number[];
  if (limit >= n) keep = Array.from({ length: n }, (_, g) => g);
  else {
    keep = [];
    const siftDown = (i: number) => {
      const m = keep.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= m) return;
        const r = l + 1;
        const c = r < m && before(keep[l]!, keep[r]!) ? r : l;
        if (!before(keep[i]!, keep[c]!)) return;
        [keep[i], keep[c]] = [keep[c]!, keep[i]!];
        i = c;
      }
    };
    for (let g = 0; g < n && limit > 0; g++) {
      if (keep.length < limit) {
        keep.push(g);
        for (let i = keep.length - 1; i > 0; ) {
          const p = (i - 1) >> 1;
          if (!before(keep[p]!, keep[i]!)) break;
          [keep[i], keep[p]] = [keep[p]!, keep[i]!];
          i = p;
        }
      } else if (before(g, keep[0]!)) {
        keep[0] = g;
        siftDown(0);
      }
    }
  }
  return keep.sort((a, b) => (a === b ? 0 : before(a, b) ? -1 : 1));
}

/**
 * Bounded by distinct stacks, not by input size: weights in columns, stacks interned. The
 * columns grow by blocks (SmallFirstBlocks), never leaving a doubled copy behind.
 */
export class StackAggregator {
  readonly stacks: StackTable;
  /** Groups so far. */
  private n = 0;
  /**
   * While every group's index is its stack id (each new stack added just after it was
   * interned, as a fresh grouping of one dump does), `ids` and `groupOf` stay empty: 1 MB
   * less at 120,828 stacks. The first stack out of that order fills them in.
   */
  private identity = true;
  /** By group index: its stack id. */
  private readonly ids = new U32SmallBlocks();
  /** By stack id: its group index + 1 (0: no group yet). */
  private readonly groupOf = new U32SmallBlocks();
  // Sums: 32-bit whole numbers until one is not (SumBlocks).
  private readonly count = new SumBlocks();
  /** Not kept when bytes are pages times `bytesPerPage` (page_owner). */
  private readonly bytes: SumBlocks | undefined;
  private readonly pages = new SumBlocks();
  private readonly bytesPerPage: number;

  /**
   * `bytesPerPage`: every stack's bytes are its pages times this (page_owner's blocks): the
   * bytes passed to addStack are not kept, a column less (1 MB at 120,828 stacks).
   */
  constructor(withOffsets: boolean | StackTable = false, opts: { bytesPerPage?: number } = {}) {
    this.stacks =
      typeof withOffsets === 'boolean' ? new StackTable(new FrameTable(), withOffsets) : withOffsets;
    this.bytesPerPage = opts.bytesPerPage ?? 0;
    this.bytes = opts.bytesPerPage === undefined ? new SumBlocks() : undefined;
  }

  add(frames: readonly Frame[], w: Partial<Weights>): void {
    this.addStack(this.stacks.internFrames(frames), w.count ?? 1, w.bytes ?? 0, w.pages ?? 0);
  }

  /** Add to the group of an interned stack. */
  addStack(stackId: number, count: number, bytes: number, pages: number): void {
    const g = this.identity && stackId < this.n ? stackId : this.groupFor(stackId);
    this.count.add(g, count);
    this.bytes?.add(g, bytes);
    this.pages.add(g, pages);
  }

  /** The group of a stack outside groups 0..n-1 of the identity: found, or added. */
  private groupFor(stackId: number): number {
    if (this.identity && stackId !== this.n) this.leaveIdentity();
    if (!this.identity) {
      if (stackId >= this.groupOf.capacity) this.groupOf.ensure(stackId + 1);
      const g = this.groupOf.get(stackId) - 1;
      if (g >= 0) return g;
      this.ids.push(stackId);
      this.groupOf.set(stackId, this.n + 1);
    }
    this.count.push(0);
    this.bytes?.push(0);
    this.pages.push(0);
    return this.n++;
  }

  /** Group i is stack i no more: the index columns, filled in. */
  private leaveIdentity(): void {
    this.identity = false;
    this.groupOf.ensure(this.n);
    for (let i = 0; i < this.n; i++) {
      this.ids.push(i);
      this.groupOf.set(i, i + 1);
    }
  }

  get size(): number {
    return this.n;
  }

  /** The group index of an interned stack, or -1 when no record had it. */
  indexOf(stackId: number): number {
    if (this.identity) return stackId < this.n ? stackId : -1;
    return stackId < this.groupOf.capacity ? this.groupOf.get(stackId) - 1 : -1;
  }

  /** The stack id of group index `g`. */
  stackAt(g: number): number {
    return this.identity ? g : this.ids.get(g);
  }

  /** Group index `g`'s weight `by`. */
  weightAt(g: number, by: WeightName): number {
    if (by === 'count') return this.count.get(g);
    if (by === 'pages') return this.pages.get(g);
    return this.bytesAt(g);
  }

  private bytesAt(g: number): number {
    return this.bytes ? this.bytes.get(g) : this.pages.get(g) * this.bytesPerPage;
  }

  /** Group index `g`, built. */
  group(g: number, display?: ReadonlyMap<number, Frame[]>): InternedStackGroup {
    const id = this.stackAt(g);
    return new InternedStackGroup(
      this.stacks,
      id,
      { count: this.count.get(g), bytes: this.bytesAt(g), pages: this.pages.get(g) },
      display?.get(id),
    );
  }

  /**
   * Groups in the order their stacks were first added. `display`: frames to show for
   * some stacks instead of the table's (those first seen in another input).
   */
  result(display?: ReadonlyMap<number, Frame[]>): InternedStackGroup[] {
    const out: InternedStackGroup[] = new Array(this.n);
    for (let g = 0; g < this.n; g++) out[g] = this.group(g, display);
    return out;
  }

  /** The `limit` largest groups by `by`, ties by key (topGroups' order), building only those. */
  top(by: WeightName, limit: number, display?: ReadonlyMap<number, Frame[]>): InternedStackGroup[] {
    // Bytes derived from pages order the groups as pages do.
    const col = by === 'count' ? this.count : by === 'bytes' ? (this.bytes ?? this.pages) : this.pages;
    const t = this.stacks;
    const n = this.n;
    // Before in the answer: heavier, then the smaller key.
    const before = (a: number, b: number) => {
      const d = col.get(b) - col.get(a);
      return d !== 0 ? d < 0 : t.compareKeys(this.stackAt(a), this.stackAt(b)) < 0;
    };
    return selectTop(n, limit, before).map((g) => this.group(g, display));
  }
}

/**
 * diffGroups of two aggregators over one StackTable (both groupings of a diff), building
 * only the deltas asked for: `all()` is diffGroups(before.result(db), after.result(da), by)
 * and `gained(n)` / `lost(n)` its first n gains and, read from the end, its first n losses,
 * without building the groups and deltas of every other stack (a dump can have hundreds of
 * thousands of them, and a diff prints twenty).
 */
export class AggregatorDiff {
  readonly #b: StackAggregator;
  readonly #a: StackAggregator;
  readonly #db: ReadonlyMap<number, Frame[]> | undefined;
  readonly #da: ReadonlyMap<number, Frame[]> | undefined;
  /** Stack ids of every group of either side (after's first), and their deltas in `by`. */
  readonly #ids: Uint32Array;
  readonly #delta: Float64Array;

  constructor(
    before: StackAggregator,
    after: StackAggregator,
    by: WeightName,
    displayBefore?: ReadonlyMap<number, Frame[]>,
    displayAfter?: ReadonlyMap<number, Frame[]>,
  ) {
    if (before.stacks !== after.stacks)
      throw new Error('AggregatorDiff: the aggregators must share a StackTable');
    this.#b = before;
    this.#a = after;
    this.#db = displayBefore;
    this.#da = displayAfter;
    let n = after.size;
    for (let g = 0; g < before.size; g++) if (after.indexOf(before.stackAt(g)) < 0) n++;
    const ids = new Uint32Array(n);
    const delta = new Float64Array(n);
    let k = 0;
    for (let g = 0; g < after.size; g++) {
      const id = after.stackAt(g);
      const gb = before.indexOf(id);
      ids[k] = id;
      delta[k++] = after.weightAt(g, by) - (gb < 0 ? 0 : before.weightAt(gb, by));
    }
    for (let g = 0; g < before.size; g++) {
      const id = before.stackAt(g);
      if (after.indexOf(id) >= 0) continue;
      ids[k] = id;
      delta[k++] = -before.weightAt(g, by);
    }
    this.#ids = ids;
    this.#delta = delta;
  }

  /** Every delta, largest gain first (ties by key): diffGroups' list. */
  all(): GroupDelta[] {
    return this.#pick(() => true, Number.POSITIVE_INFINITY, 1);
  }

  /** The first `limit` deltas of all() that gained (delta > 0). */
  gained(limit = Number.POSITIVE_INFINITY): GroupDelta[] {
    return this.#pick((d) => d > 0, limit, 1);
  }

  /** The first `limit` deltas of all(), read from its end, that lost (delta < 0). */
  lost(limit = Number.POSITIVE_INFINITY): GroupDelta[] {
    return this.#pick((d) => d < 0, limit, -1);
  }

  /** `dir` 1: largest delta first, ties by key; -1: the reverse of that order. */
  #pick(keep: (d: number) => boolean, limit: number, dir: 1 | -1): GroupDelta[] {
    const ids = this.#ids;
    const delta = this.#delta;
    const t = this.#a.stacks;
    let idx: number[] = [];
    for (let i = 0; i < ids.length; i++) if (keep(delta[i]!)) idx.push(i);
    if (limit < idx.length) {
      // Only deltas at least as far out as the limit-th can be in the answer.
      const ds = Float64Array.from(idx, (i) => dir * delta[i]!).sort();
      const min = ds[ds.length - limit]!;
      idx = idx.filter((i) => dir * delta[i]! >= min);
    }
    idx.sort((x, y) => dir * (delta[y]! - delta[x]! || t.compareKeys(ids[x]!, ids[y]!)));
    if (limit < idx.length) idx.length = limit;
    return idx.map((i) => this.#build(ids[i]!));
  }

  #build(id: number): InternedGroupDelta {
    const gb = this.#b.indexOf(id);
    const ga = this.#a.indexOf(id);
    const b = gb < 0 ? undefined : this.#b.group(gb, this.#db);
    const a = ga < 0 ? undefined : this.#a.group(ga, this.#da);
    return new InternedGroupDelta(
      this.#a.stacks,
      id,
      (a ?? b)!.frames,
      b?.weights ?? ZERO,
      a?.weights ?? ZERO,
    );
  }
}

/** The StackTable every group of the list is interned in, if they share one. */
function sharedTable(groups: readonly StackGroup[]): StackTable | undefined {
  const first = groups[0];
  if (!(first instanceof InternedStackGroup)) return undefined;
  const t = first.stacks;
  for (const g of groups)
    if (!(g instanceof InternedStackGroup) || g.stacks !== t || !g.plainKey) return undefined;
  return t;
}

/** Groups sorted by a weight, largest first; ties broken by key for stable output. */
export function topGroups(groups: readonly StackGroup[], by: WeightName, limit = Infinity): StackGroup[] {
  const t = sharedTable(groups);
  const sorted = t
    ? [...(groups as readonly InternedStackGroup[])].sort(
        (a, b) => b.weights[by] - a.weights[by] || t.compareKeys(a.stackId, b.stackId),
      )
    : [...groups].sort(
        (a, b) => b.weights[by] - a.weights[by] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
      );
  return sorted.slice(0, limit);
}

export interface GroupDelta {
  key: string;
  frames: Frame[];
  before: Weights;
  after: Weights;
  delta: Weights;
  /** Present only after (a new stack). */
  isNew: boolean;
  /** Present only before (gone). */
  isGone: boolean;
}

const ZERO: Weights = { count: 0, bytes: 0, pages: 0 };

/** A GroupDelta of interned groups: `key` spelled on demand, like InternedStackGroup. */
export class InternedGroupDelta implements GroupDelta {
  readonly #stacks: StackTable;
  readonly #id: number;
  frames: Frame[];
  before: Weights;
  after: Weights;
  delta: Weights;
  isNew: boolean;
  isGone: boolean;
  constructor(stacks: StackTable, stackId: number, frames: Frame[], before: Weights, after: Weights) {
    this.#stacks = stacks;
    this.#id = stackId;
    this.frames = frames;
    this.before = { ...before };
    this.after = { ...after };
    this.delta = {
      count: after.count - before.count,
      bytes: after.bytes - before.bytes,
      pages: after.pages - before.pages,
    };
    this.isNew = before === ZERO;
    this.isGone = after === ZERO;
  }
  get key(): string {
    return this.#stacks.keyOf(this.#id);
  }
  get stackId(): number {
    return this.#id;
  }
  toJSON(): GroupDelta {
    const { frames, before, after, delta, isNew, isGone } = this;
    return { key: this.key, frames, before, after, delta, isNew, isGone };
  }
}

/** Per-key change between two group sets, sorted by `by` gained (largest gain first). */
export function diffGroups(
  before: readonly StackGroup[],
  after: readonly StackGroup[],
  by: WeightName,
): GroupDelta[] {
  const t = sharedTable([...before, ...after]);
  if (t) {
    // Interned in one table: matched by stack id, ordered without spelling keys.
    const b = new Map((before as readonly InternedStackGroup[]).map((g) => [g.stackId, g]));
    const a = new Map((after as readonly InternedStackGroup[]).map((g) => [g.stackId, g]));
    const out: InternedGroupDelta[] = [];
    for (const g of after as readonly InternedStackGroup[]) {
      const gb = b.get(g.stackId);
      out.push(new InternedGroupDelta(t, g.stackId, g.frames, gb?.weights ?? ZERO, g.weights));
    }
    for (const g of before as readonly InternedStackGroup[])
      if (!a.has(g.stackId)) out.push(new InternedGroupDelta(t, g.stackId, g.frames, g.weights, ZERO));
    return out.sort((x, y) => y.delta[by] - x.delta[by] || t.compareKeys(x.stackId, y.stackId));
  }
  const b = new Map(before.map((g) => [g.key, g]));
  const a = new Map(after.map((g) => [g.key, g]));
  const keys = new Set([...b.keys(), ...a.keys()]);
  const out: GroupDelta[] = [];
  for (const key of keys) {
    const gb = b.get(key);
    const ga = a.get(key);
    const wb = gb?.weights ?? ZERO;
    const wa = ga?.weights ?? ZERO;
    out.push({
      key,
      frames: (ga ?? gb)!.frames,
      before: { ...wb },
      after: { ...wa },
      delta: { count: wa.count - wb.count, bytes: wa.bytes - wb.bytes, pages: wa.pages - wb.pages },
      isNew: gb === undefined,
      isGone: ga === undefined,
    });
  }
  return out.sort((x, y) => y.delta[by] - x.delta[by] || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
}

/**
 * Collapsed-stack text (Brendan Gregg's format, read by flamegraph.pl, speedscope,
 * inferno): root first, frames joined by `;`, a space, the weight.
 */
export function toCollapsed(groups: readonly StackGroup[], by: WeightName): string {
  const lines: string[] = [];
  for (const g of topGroups(groups, by)) {
    const w = g.weights[by];
    if (w <= 0) continue;
    const names = g.frames.map((f) => frameKey(f)).reverse();
    lines.push(`${names.join(';').replace(/\s+(?=\[)/g, '_') || '[no stack]'} ${w}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** speedscope's file format (https://www.speedscope.app/file-format-schema.json), sampled profile. */
export function toSpeedscope(groups: readonly StackGroup[], by: WeightName, name: string): object {
  const frameIndex = new Map<string, number>();
  const frames: { name: string }[] = [];
  const samples: number[][] = [];
  const weights: number[] = [];
  for (const g of topGroups(groups, by)) {
    const w = g.weights[by];
    if (w <= 0) continue;
    const sample: number[] = [];
    for (const f of [...g.frames].reverse()) {
      const n = frameKey(f);
      let i = frameIndex.get(n);
      if (i === undefined) {
        i = frames.length;
        frames.push({ name: n });
        frameIndex.set(n, i);
      }
      sample.push(i);
    }
    samples.push(sample);
    weights.push(w);
  }
  const total = weights.reduce((s, x) => s + x, 0);
  return {
    $schema: 'https://www.speedscope.app/file-format-schema.json',
    shared: { frames },
    profiles: [
      {
        type: 'sampled',
        name,
        unit: by === 'bytes' ? 'bytes' : 'none',
        startValue: 0,
        endValue: total,
        samples,
        weights,
      },
    ],
    name,
    exporter: 'memsleuth',
  };
}
