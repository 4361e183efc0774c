/**
 * page_owner analysis over the stream: group outstanding page blocks by stack,
 * culprit function, module, process, order, GFP mask, migratetype or allocator, and
 * diff two dumps. Memory is bounded by the distinct groups (StackAggregator), never by
 * the number of records; timestamps and PFNs are ignored by construction.
 */

import { parseError } from '../model/errors.js';
import { type Frame, formatFrame, parseFrame } from '../model/frame.js';
import {
  BlockReader,
  checkRecordTail,
  type PageOwnerInput,
  type PageOwnerParseOptions,
  type PageOwnerRecord,
} from '../sources/page_owner.js';
import { U32Column, U32SmallBlocks } from './intern.js';
import { type ParallelOptions, scanChunks } from './page_owner_parallel.js';
import {
  type ChunkResult,
  F_SLAB_FLAG,
  K_ODD,
  type OddRecord,
  PageOwnerDict,
  T_COMM,
  T_MT,
  T_ODD,
  T_PREFIX,
  T_REST,
  TUPLE,
} from './page_owner_scan.js';
import {
  AggregatorDiff,
  culpritFrame,
  type GroupDelta,
  moduleOf,
  StackAggregator,
  type StackGroup,
  StackTable,
  type WeightName,
} from './stacks.js';

export type PageOwnerGroupBy =
  | 'stack'
  | 'function'
  | 'module'
  | 'comm'
  | 'order'
  | 'gfp'
  | 'migratetype'
  | 'allocator';

export const PAGE_OWNER_GROUP_BY: readonly PageOwnerGroupBy[] = [
  'stack',
  'function',
  'module',
  'comm',
  'order',
  'gfp',
  'migratetype',
  'allocator',
];

/** Who handed out the pages, from the stack and the page flags. */
export type PageAllocator = 'slab' | 'vmalloc' | 'page cache' | 'anonymous' | 'other';

export const PAGE_ALLOCATORS: readonly PageAllocator[] = [
  'slab',
  'vmalloc',
  'page cache',
  'anonymous',
  'other',
];

const SLAB_FUNCS = ['allocate_slab', 'new_slab', 'alloc_slab_page', '___slab_alloc'];
const VMALLOC_FUNCS = ['__vmalloc_node_range', 'vm_area_alloc_pages', '__vmalloc_area_node'];
// Page cache (including shmem/tmpfs, which is page cache too) and readahead.
const CACHE_FUNCS = [
  'filemap_',
  '__filemap_',
  'page_cache_ra',
  'pagecache_get_page',
  'grab_cache_page',
  'add_to_page_cache',
  'shmem_get_folio',
  'shmem_getpage',
  'shmem_alloc_',
  'read_pages',
  'do_read_cache',
];
const ANON_FUNCS = [
  'do_anonymous_page',
  'alloc_anon_folio',
  'do_huge_pmd_anonymous_page',
  'wp_page_copy',
  'do_cow_fault',
  'alloc_zeroed_user_highpage',
  'vma_alloc_zeroed_movable_folio',
  'do_swap_page',
];

// Records with the same stack share one frames array (see parsePageOwner): per-stack
// answers are cached on the array itself.
const stackAllocator = new WeakMap<readonly Frame[], PageAllocator>();

function allocatorOfStack(frames: readonly Frame[]): PageAllocator {
  let a = stackAllocator.get(frames);
  if (a === undefined) {
    const has = (names: readonly string[]) => frames.some((f) => names.some((n) => f.func.startsWith(n)));
    a = has(SLAB_FUNCS)
      ? 'slab'
      : has(VMALLOC_FUNCS)
        ? 'vmalloc'
        : has(CACHE_FUNCS)
          ? 'page cache'
          : has(ANON_FUNCS)
            ? 'anonymous'
            : 'other';
    stackAllocator.set(frames, a);
  }
  return a;
}

/** Classify a record by its allocator (slab pages also carry the `slab` page flag before 6.10). */
export function allocatorOf(r: Pick<PageOwnerRecord, 'frames' | 'pageFlags'>): PageAllocator {
  if (r.pageFlags?.includes('slab') && /[(|]slab[|)]/.test(r.pageFlags)) return 'slab';
  return allocatorOfStack(r.frames);
}

/** The group label of a record for a non-stack grouping. */
export function groupLabel(r: PageOwnerRecord, by: Exclude<PageOwnerGroupBy, 'stack' | 'function'>): string {
  switch (by) {
    case 'module': {
      const m = moduleOf(r.frames);
      return m === undefined ? 'vmlinux' : `[${m}]`;
    }
    case 'comm':
      return r.comm ?? (r.pid !== undefined ? `pid ${r.pid}` : '(not printed)');
    case 'order':
      return `order ${r.order}`;
    case 'gfp':
      return `0x${r.gfpMask.toString(16)}${r.gfpFlags !== undefined ? `(${r.gfpFlags})` : ''}`;
    case 'migratetype':
      return r.migratetype ?? '(not printed)';
    case 'allocator':
      return allocatorOf(r);
  }
}

export interface GroupPageOwnerOptions extends PageOwnerParseOptions, Omit<ParallelOptions, 'onProgress'> {
  /**
   * Worker threads (default 0: the calling thread reads the input, whatever its size; each
   * worker would cost about 40 MB for little time saved, see groupInto).
   */
  workers?: number;
  by?: PageOwnerGroupBy;
  /** Bytes per page (default 4096). */
  pageSizeBytes?: number;
  /** Keep only records from these allocators. */
  allocators?: readonly PageAllocator[];
  /** Keep only records whose stack names this module. */
  module?: string;
}

export interface PageOwnerGroups {
  by: PageOwnerGroupBy;
  /** Every group (built on first use: prefer top() when only the largest are wanted). */
  groups: StackGroup[];
  /** How many groups there are, building none of them. */
  groupCount: number;
  /** Records read (before filters). */
  records: number;
  /** Records kept after the allocator/module filters. */
  kept: number;
  /** Pages in kept records. */
  pages: number;
  bytes: number;
  inputBytes: number;
  /** The `limit` largest groups by `weight` (ties by key), building no other group. */
  top(weight: WeightName, limit?: number): StackGroup[];
}

const RE_PREFIX = /^Page allocated via order (\d+), mask (0x[0-9a-fA-F]+|0|\d+)(?:\(([^)]*)\))?/;
const ALLOCATOR_CODE: Record<PageAllocator, number> = {
  slab: 1,
  vmalloc: 2,
  'page cache': 3,
  anonymous: 4,
  other: 5,
};

/** The result of groupPageOwner: counts, and the groups built when asked for. */
class Grouped implements PageOwnerGroups {
  readonly #agg: StackAggregator;
  readonly #display: Map<number, Frame[]>;
  #groups: StackGroup[] | undefined;
  constructor(
    readonly by: PageOwnerGroupBy,
    readonly records: number,
    readonly kept: number,
    readonly pages: number,
    readonly bytes: number,
    readonly inputBytes: number,
    agg: StackAggregator,
    display: Map<number, Frame[]>,
  ) {
    this.#agg = agg;
    this.#display = display;
  }
  get groups(): StackGroup[] {
    this.#groups ??= this.#agg.result(this.#display);
    return this.#groups;
  }
  get groupCount(): number {
    return this.#agg.size;
  }
  top(weight: WeightName, limit = Number.POSITIVE_INFINITY): StackGroup[] {
    return this.#agg.top(weight, limit, this.#display);
  }
  /** The change from this grouping to `after` (grouped into the same StackTable). */
  diffTo(after: Grouped, by: WeightName): AggregatorDiff {
    return new AggregatorDiff(this.#agg, after.#agg, by, this.#display, after.#display);
  }
}

/** `a` copied into an array with room for index `i` (at least twice as long). */
function grownBytes(a: Uint8Array, i: number): Uint8Array<ArrayBuffer> {
  let n = Math.max(1024, a.length * 2);
  while (n <= i) n *= 2;
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}

/**
 * Grouping of one dump, fed chunk by chunk (page_owner_scan.ts), in columns: per
 * distinct stack, prefix or name the answers are computed once and cached by id. A
 * stack is read once, when the dict learns it, from its interned lines: every distinct
 * line is parsed once (a frame, or a line the kernel adds), and the frames are interned
 * (StackTable): no string is built per stack.
 */
class PageOwnerGrouping {
  records = 0;
  kept = 0;
  pages = 0;
  private line = 1;
  private readonly agg: StackAggregator;
  /** Display frames of this dump where they differ from the table's (diff's second dump). */
  private readonly display = new Map<number, Frame[]>();
  /** Frames of rests whose frames differ from their stack's display frames. */
  private readonly otherFrames = new Map<number, Frame[]>();
  /** Rests whose lines are not a stack: their text, for the error with the first record that has one. */
  private readonly bad = new Map<number, string>();
  private lineFrame = new Int32Array(1024);
  private seenStack: Uint8Array<ArrayBuffer> = new Uint8Array(1024);
  // By rest id: stack (+1) of the grouping (in blocks: one entry per distinct stack text, a
  // doubled copy would be left behind), allocator class and module filter (1 in, 2 out),
  // these two only when a filter or the grouping asks.
  private readonly restStack = new U32SmallBlocks();
  private restAllocator = new Uint8Array(0);
  private restModule = new Uint8Array(0);
  private readonly needAllocator: boolean;
  private readonly prefixPages: number[] = [];
  private readonly prefixGfp: string[] = [];
  private readonly labelStack = new Map<string, number>();
  private readonly reader: BlockReader;
  private readonly allow: Set<PageAllocator> | undefined;
  private readonly pageSize: number;
  private readonly frameIds = new U32Column(64);
  /**
   * Stacks from this id on were added by this grouping. Without filters, the first record of
   * such a stack is the one that added it, so a later stack's other frames are never shown
   * and are not kept (11,406 frame arrays at 108,443 groups). A stack of the table before
   * (diff's first dump) or a filter that skips records can make any record the first shown.
   */
  private readonly ownStacks: number;

  constructor(
    private readonly dict: PageOwnerDict,
    private readonly stacks: StackTable,
    private readonly by: PageOwnerGroupBy,
    private readonly opts: GroupPageOwnerOptions,
    private readonly file: string,
  ) {
    this.pageSize = opts.pageSizeBytes ?? 4096;
    this.agg = new StackAggregator(stacks, { bytesPerPage: this.pageSize });
    this.reader = new BlockReader(file, opts);
    this.allow = opts.allocators ? new Set(opts.allocators) : undefined;
    this.needAllocator = this.allow !== undefined || by === 'allocator';
    this.ownStacks = stacks.size;
  }

  chunk(c: ChunkResult): void {
    const t = c.tuples;
    const lineCount = this.dict.rests.lineCount;
    for (let i = 0; i < t.length; i += TUPLE) {
      if (t[i]! & K_ODD) {
        this.odd(c.odd[t[i + T_ODD]!]!);
        continue;
      }
      this.records++;
      const rest = t[i + T_REST]!;
      const badText = this.bad.get(rest);
      if (badText !== undefined) checkRecordTail(badText, this.file, this.line + 2, c.offset + t[i + T_ODD]!);
      this.line += 3 + lineCount.get(rest);
      const prefix = t[i + T_PREFIX]!;
      if (this.allow) {
        const a = t[i]! & F_SLAB_FLAG ? 'slab' : PAGE_ALLOCATORS[this.restAllocator[rest]! - 1]!;
        if (!this.allow.has(a)) continue;
      }
      if (this.opts.module !== undefined && this.restModule[rest] !== 1) continue;
      const pages = this.pagesOf(prefix);
      let stack: number;
      switch (this.by) {
        case 'comm':
          stack = this.label(this.dict.comms.text(t[i + T_COMM]!));
          break;
        case 'order':
          stack = this.label(`order ${Math.log2(pages)}`);
          break;
        case 'gfp':
          stack = this.label(this.gfpOf(prefix));
          break;
        case 'migratetype': {
          const mt = t[i + T_MT]!;
          stack = this.label(mt > 0 ? this.dict.migratetypes.text(mt - 1) : '(not printed)');
          break;
        }
        case 'allocator':
          stack = this.label(t[i]! & F_SLAB_FLAG ? 'slab' : PAGE_ALLOCATORS[this.restAllocator[rest]! - 1]!);
          break;
        default:
          // stack, function, module: decided by the rest when it was learnt.
          stack = this.restStack.get(rest) - 1;
          if (this.by === 'stack') this.firstOfStack(stack, rest);
      }
      this.kept++;
      this.pages += pages;
      this.agg.addStack(stack, 1, pages * this.pageSize, pages);
    }
  }

  /** True for the first record of `stack` in this dump (whose frames are shown for it). */
  private firstSeen(stack: number): boolean {
    if (stack >= this.seenStack.length) this.seenStack = grownBytes(this.seenStack, stack);
    if (this.seenStack[stack]) return false;
    this.seenStack[stack] = 1;
    return true;
  }

  private firstOfStack(stack: number, rest: number): void {
    if (!this.firstSeen(stack)) return;
    const other = this.otherFrames.get(rest);
    if (other) this.display.set(stack, other);
  }

  /**
   * Frame id (+1) of a line id, -1 for a line the kernel adds after the stack (migrate
   * reason, memcg, handles, a misplaced PFN line: such records take the slow path), -2
   * for anything else.
   */
  private frameOfLine(line: number): number {
    if (line >= this.lineFrame.length) {
      let n = this.lineFrame.length * 2;
      while (n <= line) n *= 2;
      const b = new Int32Array(n);
      b.set(this.lineFrame);
      this.lineFrame = b;
    }
    let f = this.lineFrame[line]!;
    if (f === 0) {
      const text = this.dict.lines.text(line);
      if (text.startsWith(' ')) {
        const frame = parseFrame(text);
        // Parsed from this line's own text (decoded alone, not cut from a read): kept as it is.
        f = frame ? this.stacks.frames.intern(frame, true) + 1 : -2;
      } else
        f =
          text.startsWith('PFN ') ||
          text.startsWith('Page has been migrated, last migrate reason: ') ||
          text.startsWith('Charged ') ||
          text === 'Slab cache page' ||
          text.startsWith('handle:') ||
          text.startsWith('free_handle:')
            ? -1
            : -2;
      this.lineFrame[line] = f;
    }
    return f;
  }

  /**
   * A stack the dict has just learnt (its line ids, valid during the call): its frames,
   * and what the grouping will ask of it. The dict keeps no lines: this is the one read.
   */
  learn(rest: number, lines: Uint32Array, n: number): void {
    this.grow(rest);
    const ids = this.frameIds;
    ids.length = 0;
    for (let k = 0; k < n; k++) {
      const f = this.frameOfLine(lines[k]!);
      if (f === -2) {
        // Not a page_owner stack: the first record that has it reports the line.
        let text = '';
        for (let j = 0; j < n; j++) text += `${this.dict.lines.text(lines[j]!)}\n`;
        this.bad.set(rest, text);
        return;
      }
      if (f > 0) ids.push(f - 1);
    }
    const by = this.by;
    // Frame arrays only where asked, built at most once per stack (no closure per stack
    // either: with one, allocation was 47 MB in all for `top` at 108,000 stacks, 19 MB of it
    // here).
    let frames: Frame[] | undefined;
    if (by === 'stack') {
      const s = this.stacks.intern(ids.data, ids.length);
      this.restStack.set(rest, s + 1);
      // Frames that print differently from the first ones seen with this key.
      if (
        !this.stacks.sameFrames(s, ids.data, ids.length) &&
        (s < this.ownStacks || this.allow || this.opts.module !== undefined)
      ) {
        frames = this.framesOfIds();
        this.otherFrames.set(rest, frames);
      }
    } else if (by === 'function') {
      frames = this.framesOfIds();
      const f = culpritFrame(frames);
      this.restStack.set(
        rest,
        this.stacks.internFrames(
          f ? [{ func: f.func, ...(f.module !== undefined ? { module: f.module } : {}) }] : [],
        ) + 1,
      );
    } else if (by === 'module') {
      frames = this.framesOfIds();
      const m = moduleOf(frames);
      this.restStack.set(rest, this.label(m === undefined ? 'vmlinux' : `[${m}]`) + 1);
    }
    if (this.needAllocator)
      this.restAllocator[rest] = ALLOCATOR_CODE[allocatorOfStack(frames ?? this.framesOfIds())];
    if (this.opts.module !== undefined) {
      const mod = this.opts.module;
      const table = this.stacks.frames.frames;
      let has = false;
      for (let k = 0; k < ids.length && !has; k++) has = table[ids.data[k]!]!.module === mod;
      this.restModule[rest] = has ? 1 : 2;
    }
  }

  /** The frames of `frameIds` (shared Frame objects, in a new array). */
  private framesOfIds(): Frame[] {
    const ids = this.frameIds;
    const table = this.stacks.frames.frames;
    const out: Frame[] = new Array(ids.length);
    for (let k = 0; k < ids.length; k++) out[k] = table[ids.data[k]!]!;
    return out;
  }

  /** A record the scanner left to the slow path: decoded by the record parser. */
  private odd(o: OddRecord): void {
    const buf = Buffer.from(o.text, 'latin1');
    this.reader.line = this.line;
    const r = this.reader.read({
      buf,
      start: 0,
      end: buf.length,
      offset: o.offset,
      unterminated: o.unterminated,
    });
    this.line = this.reader.line;
    if (!r) return; // the last record, cut short (--lenient): dropped with a warning
    this.records++;
    if (this.allow && !this.allow.has(allocatorOf(r))) return;
    if (this.opts.module !== undefined && !r.frames.some((f) => f.module === this.opts.module)) return;
    let stack: number;
    const by = this.by;
    if (by === 'stack') {
      stack = this.stacks.internFrames(r.frames);
      if (this.firstSeen(stack)) {
        const shown = this.stacks.framesOf(stack);
        if (
          shown.length !== r.frames.length ||
          shown.some((f, k) => formatFrame(f) !== formatFrame(r.frames[k]!))
        )
          this.display.set(stack, r.frames);
      }
    } else if (by === 'function') {
      const f = culpritFrame(r.frames);
      stack = this.stacks.internFrames(
        f ? [{ func: f.func, ...(f.module !== undefined ? { module: f.module } : {}) }] : [],
      );
    } else stack = this.label(groupLabel(r, by));
    this.kept++;
    this.pages += r.pages;
    this.agg.addStack(stack, 1, r.pages * this.pageSize, r.pages);
  }

  private grow(rest: number): void {
    // No closure here: its context would be allocated on every call, growing or not (it
    // was 10 MB of garbage at 108,000 stacks).
    if (rest >= this.restStack.capacity) this.restStack.ensure(rest + 1);
    if (this.needAllocator && rest >= this.restAllocator.length)
      this.restAllocator = grownBytes(this.restAllocator, rest);
    if (this.opts.module !== undefined && rest >= this.restModule.length)
      this.restModule = grownBytes(this.restModule, rest);
  }

  private label(text: string): number {
    let s = this.labelStack.get(text);
    if (s === undefined) {
      s = this.stacks.internFrames([{ func: text }]);
      this.labelStack.set(text, s);
    }
    return s;
  }

  private pagesOf(prefix: number): number {
    let p = this.prefixPages[prefix];
    if (p === undefined) {
      p = 2 ** Number(RE_PREFIX.exec(this.dict.prefixes.text(prefix))![1]);
      this.prefixPages[prefix] = p;
    }
    return p;
  }

  private gfpOf(prefix: number): string {
    let g = this.prefixGfp[prefix];
    if (g === undefined) {
      const m = RE_PREFIX.exec(this.dict.prefixes.text(prefix))!;
      const mask = m[2]!.startsWith('0x') ? Number.parseInt(m[2]!, 16) : Number(m[2]);
      g = `0x${mask.toString(16)}${m[3] !== undefined ? `(${m[3]})` : ''}`;
      this.prefixGfp[prefix] = g;
    }
    return g;
  }

  result(inputBytes: number): Grouped {
    return new Grouped(
      this.by,
      this.records,
      this.kept,
      this.pages,
      this.pages * this.pageSize,
      inputBytes,
      this.agg,
      this.display,
    );
  }
}

/**
 * Read a page_owner dump (file path, stdin or any chunk stream) and group it.
 * `weights.count` is page blocks, `pages` is 2^order summed, `bytes` pages * page size.
 * Big files are scanned by worker threads (see ParallelOptions); the result is the same.
 */
export async function groupPageOwner(
  input: PageOwnerInput,
  opts: GroupPageOwnerOptions = {},
): Promise<PageOwnerGroups> {
  return groupInto(input, opts, new StackTable());
}

async function groupInto(
  input: PageOwnerInput,
  opts: GroupPageOwnerOptions,
  stacks: StackTable,
): Promise<Grouped> {
  const by = opts.by ?? 'stack';
  const file = opts.file ?? (typeof input === 'string' ? input : 'page_owner');
  // The grouping reads each stack's lines once (learn): the dict keeps none.
  const dict = new PageOwnerDict({ keepLines: false });
  const g = new PageOwnerGrouping(dict, stacks, by, opts, file);
  dict.onRest = (id, lines, n) => g.learn(id, lines, n);
  // One thread unless asked: workers cost about 40 MB each here (each interns the stacks of
  // its chunks again) and bring top little (2.1 against 2.5 s on a 1 GiB dump of 2 million
  // records, 1.5-1.7 against 1.4 s at 108,000 distinct stacks, on two cores).
  const workers = opts.workers ?? 0;
  // Read in 1 MiB (two halves: one read ahead while the other is scanned) when this thread
  // reads: at 108,443 groups 78-79 against 82-87 MiB with 4 MiB, in the same time; on a
  // 1 GiB dump 67-70 against 71-73 MiB, about 3% more CPU.
  const chunkBytes = opts.chunkBytes ?? (workers === 0 ? 1 << 20 : undefined);
  const totals = await scanChunks(
    input,
    dict,
    {
      migratetypes: by === 'migratetype',
      comms: by === 'comm',
      file,
      ...(opts.maxRecordBytes !== undefined ? { maxRecordBytes: opts.maxRecordBytes } : {}),
    },
    (c) => g.chunk(c),
    {
      workers,
      ...(chunkBytes !== undefined ? { chunkBytes } : {}),
      ...(opts.minParallelBytes !== undefined ? { minParallelBytes: opts.minParallelBytes } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    },
  );
  if (totals.bytes === 0) throw parseError(file, 1, 'page_owner records', '<empty input>');
  return g.result(totals.bytes);
}

export interface PageOwnerDiff {
  by: PageOwnerGroupBy;
  /** Every group, largest page gain first (built on first use: prefer gained() and lost()). */
  deltas: GroupDelta[];
  /** The first `limit` groups of `deltas` that gained pages, building no other group. */
  gained(limit?: number): GroupDelta[];
  /** The first `limit` groups of `deltas` read from the end (largest loss first) that lost pages. */
  lost(limit?: number): GroupDelta[];
  before: Omit<PageOwnerGroups, 'groups' | 'top'>;
  after: Omit<PageOwnerGroups, 'groups' | 'top'>;
}

/** The result of diffPageOwner: counts, and the deltas built when asked for. */
class Diffed implements PageOwnerDiff {
  readonly #d: AggregatorDiff;
  #deltas: GroupDelta[] | undefined;
  constructor(
    readonly by: PageOwnerGroupBy,
    d: AggregatorDiff,
    readonly before: Omit<PageOwnerGroups, 'groups' | 'top'>,
    readonly after: Omit<PageOwnerGroups, 'groups' | 'top'>,
  ) {
    this.#d = d;
  }
  get deltas(): GroupDelta[] {
    if (this.#deltas === undefined) this.#deltas = this.#d.all();
    return this.#deltas;
  }
  gained(limit?: number): GroupDelta[] {
    return this.#d.gained(limit);
  }
  lost(limit?: number): GroupDelta[] {
    return this.#d.lost(limit);
  }
  toJSON(): { by: PageOwnerGroupBy; deltas: GroupDelta[]; before: object; after: object } {
    return { by: this.by, deltas: this.deltas, before: this.before, after: this.after };
  }
}

/** Group both dumps the same way (stacks interned once for both) and rank the groups by pages gained. */
export async function diffPageOwner(
  before: PageOwnerInput,
  after: PageOwnerInput,
  opts: GroupPageOwnerOptions & { beforeFile?: string; afterFile?: string } = {},
): Promise<PageOwnerDiff> {
  const { beforeFile, afterFile, ...rest } = opts;
  const stacks = new StackTable();
  const b = await groupInto(before, { ...rest, ...(beforeFile ? { file: beforeFile } : {}) }, stacks);
  const a = await groupInto(after, { ...rest, ...(afterFile ? { file: afterFile } : {}) }, stacks);
  const counts = (g: PageOwnerGroups) => ({
    by: g.by,
    records: g.records,
    kept: g.kept,
    pages: g.pages,
    bytes: g.bytes,
    inputBytes: g.inputBytes,
    groupCount: g.groupCount,
  });
  return new Diffed(b.by, b.diffTo(a, 'pages'), counts(b), counts(a));
}

/** Kernel allocations only: what slab, vmalloc and the buddy "black hole" hold. */
export const KERNEL_ALLOCATORS: readonly PageAllocator[] = ['slab', 'vmalloc', 'other'];
