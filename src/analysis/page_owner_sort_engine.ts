/**
 * The engine of `page-owner sort` (page_owner_sort.ts parses the command line).
 *
 * What the C tool does: read every record into RAM, sort all of them by the cull key,
 * merge neighbours with equal keys (the first record of a run, in input order since
 * glibc's qsort is a stable merge sort, represents the group), then sort the groups.
 * The output therefore depends only on the groups: we keep one row per distinct cull
 * key (the fields of its first record that the sort or the output reads, its count and
 * pages), never the records, in columns. With no --cull the key is the whole record text
 * (6.7+: minus the `ts` digits, unless sorting by allocation time first), held as ids:
 * the header's prefix and task name (interned), pid and tgid as order-keeping digit
 * codes, the stack as an id (page_owner_scan.ts): about 30 bytes a row however long the
 * text, and the text is written back from these parts.
 *
 * Records the scanner does not take (other formats, odd text) go through the slow path
 * below, which evaluates the C tool's own regular expressions on the text; its rows are
 * turned into the same ids when their text allows, so both paths group together. Sorting
 * is a radix sort on integer keys (ranks of the interned texts, codes, counts); what
 * cannot be put that way (an odd text, the 5.18-6.6 tool's ts comparators that never
 * return 0) is sorted with comparators, as the C tool does.
 *
 * Text is handled as latin1 so each byte is one UTF-16 unit: string comparison is then
 * strcmp's unsigned byte order and the output is byte-identical.
 */
import type { ScanProgress } from '../sources/page_owner.js';
import {
  F64Blocks,
  hashInts,
  RowBits,
  type RowField,
  RowI32,
  RowTable,
  RowU8,
  RowU32,
  radixSort,
  U8Blocks,
} from './intern.js';
import type { ScanTotals } from './page_owner_parallel.js';
import {
  type ChunkResult,
  digitCode10,
  digitsOf,
  digitValue,
  F_CMA,
  F_FREE_TS,
  F_SLAB_TEXT,
  F_TS,
  FREE_TS_LEN_SHIFT,
  headerView,
  K_ODD,
  lexCode,
  type OddRecord,
  type PageOwnerDict,
  parseHeader,
  R_VMALLOC,
  T_COMM,
  T_ODD,
  T_PID,
  T_PREFIX,
  T_REST,
  T_TGID,
  TS_LEN_SHIFT,
  TUPLE,
} from './page_owner_scan.js';

export type SortCompat = '6.1' | '6.12';

export type SortKeyName =
  | 'num'
  | 'page_num'
  | 'pid'
  | 'tgid'
  | 'comm'
  | 'stacktrace'
  | 'ts'
  | 'free_ts'
  | 'txt'
  | 'allocator';

export interface SortKey {
  key: SortKeyName;
  /** 1 ascending, -1 descending. */
  sign: 1 | -1;
}

// Bits as in the C enums (6.12 numbering; 6.1's extra `free` cull is kept separately).
export const CULL_PID = 1 << 1;
export const CULL_TGID = 1 << 2;
export const CULL_COMM = 1 << 3;
export const CULL_STACKTRACE = 1 << 4;
export const CULL_ALLOCATOR = 1 << 5;
export const CULL_UNRELEASE = 1 << 6;
export const FILTER_PID = 1 << 1;
export const FILTER_TGID = 1 << 2;
export const FILTER_COMM = 1 << 3;
export const FILTER_UNRELEASE = 1 << 4;

const ALLOCATOR_CMA = 1 << 1;
const ALLOCATOR_SLAB = 1 << 2;
const ALLOCATOR_VMALLOC = 1 << 3;
const ALLOCATOR_OTHERS = 1 << 4;

export interface SortConfig {
  compat: SortCompat;
  cull: number;
  filter: number;
  pids: number[];
  tgids: number[];
  comms: string[];
  sort: SortKey[];
  debug: boolean;
  input: string;
  output: string;
}

export interface SortIo {
  /** The C tool's progress lines ("loaded N", "sorting ....", "culling") go here. */
  progressOut: (s: string) => void;
  /** Debug (-d) and warnings. */
  errOut: (s: string) => void;
  /** Output bytes, in pieces of about 1 MiB. */
  write: (chunk: Buffer) => void;
  /**
   * `write` is done with the bytes when it returns (it wrote or copied them): the next piece
   * is built in the same buffer. Otherwise (a stream keeps what it is given) every piece is a
   * new buffer: a gigabyte of output left a gigabyte of them to the collector, which let
   * about 80 MB of them stand at a time.
   */
  writeDone?: boolean;
  /**
   * Memory to build the output in, written without a copy (a writer's own memory): `lend`
   * gives the buffer the next piece is built in, `handOver(n)` writes its first n bytes.
   * Pieces too big for it go through `write`.
   */
  buffers?: { lend: () => Buffer; handOver: (n: number) => void };
  /**
   * Awaited once the input is read, before the first byte of output: `threads`, other threads
   * scanned it (their cores are free for a writer thread; else the output is written from this
   * thread). The old output file may still be being cut meanwhile.
   */
  beforeOutput?: (threads: boolean) => void | Promise<void>;
  onProgress?: (p: ScanProgress) => void;
}

export interface SortResult {
  records: number;
  loaded: number;
  groups: number;
  bytes: number;
}

const WS = '[ \\t\\n\\v\\f\\r]';
const RE_ORDER = new RegExp(`order${WS}*([0-9]*),`);
const RE_PID = new RegExp(`pid${WS}*([0-9]*),`);
const RE_TGID = new RegExp(`tgid${WS}*([0-9]*) `);
const RE_COMM = new RegExp(`tgid${WS}*[0-9]*${WS}*\\(([^\\n]*)\\),${WS}*ts`);
const RE_TS_612 = new RegExp(`ts${WS}*([0-9]*)${WS}*ns`);
const RE_TS_61 = new RegExp(`ts${WS}*([0-9]*)${WS}*ns,`);
const RE_FREE_TS = new RegExp(`free_ts${WS}*([0-9]*)${WS}*ns`);
const LONG_MAX = 9223372036854775807n;
const U64_MAX = (1n << 64n) - 1n;
const NONE = 0xffffffff;
/** Rows.slots: bits of a row number (+ 1) below the hash's tag. */
const ROW_BITS = 24;
const ROW_MASK = (1 << ROW_BITS) - 1;

/** What the engine must be able to do with the fields, from the configuration. */
export interface SortPlan {
  is61: boolean;
  stripTs: boolean;
  /** Every record through the slow path (debug output, 5.18-6.6 ts and free_ts handling). */
  slowOnly: boolean;
  /** The scanner keeps the ts digits (text or sort key). */
  scanTs: boolean;
}

export function sortPlan(cfg: SortConfig): SortPlan {
  const is61 = cfg.compat === '6.1';
  const keys = new Set(cfg.sort.map((k) => k.key));
  const firstIsTs = cfg.sort[0]?.key === 'ts';
  const stripTs = !is61 && !firstIsTs;
  const slowOnly =
    cfg.debug ||
    (is61 && (keys.has('ts') || keys.has('free_ts') || (cfg.cull & CULL_UNRELEASE) !== 0)) ||
    (is61 && (cfg.filter & FILTER_UNRELEASE) !== 0) ||
    (cfg.cull !== 0 && keys.has('txt'));
  return { is61, stripTs, slowOnly, scanTs: !stripTs || keys.has('ts') };
}

/**
 * A record decoded by the slow path: the text split as read_block() splits it (PFN
 * lines go to ext_buf), and the C tool's field getters, with its debug messages.
 */
class SlowRecord {
  head: string;
  rest: string;
  /** The text the regular expressions see (ts digits still in). */
  readonly head0: string;
  readonly rest0: string;
  private whole: string | undefined;
  constructor(
    text: string,
    readonly ext: string,
    private readonly dbg: (s: string) => void,
  ) {
    if (text === '') {
      this.head = '';
      this.rest = '';
    } else {
      // Every line starting with "PFN" goes to ext_buf; the last one stays there.
      const kept: string[] = [];
      let p = 0;
      let ext = this.ext;
      while (p < text.length) {
        const nl = text.indexOf('\n', p);
        const lineEnd = nl < 0 ? text.length : nl + 1;
        if (text.startsWith('PFN', p)) ext = text.slice(p, lineEnd);
        else kept.push(text.slice(p, lineEnd));
        p = lineEnd;
      }
      this.ext = ext;
      const txt = kept.join('');
      const nl = txt.indexOf('\n');
      this.head = nl < 0 ? txt : txt.slice(0, nl + 1);
      this.rest = nl < 0 ? '' : txt.slice(nl + 1);
    }
    this.head0 = this.head;
    this.rest0 = this.rest;
  }
  /** The C buffer the regexes see: the record text followed by the blank line's "\n". */
  full(): string {
    this.whole ??= `${this.head0}${this.rest0}\n`;
    return this.whole;
  }
  search(re: RegExp): string | undefined {
    const m = re.exec(this.head0) ?? re.exec(this.full());
    if (!m) {
      this.dbg(`no matching pattern in ${this.full()}\n`);
      return undefined;
    }
    return m[1];
  }
  private int(re: RegExp, what: string): number {
    const d = this.search(re) ?? '';
    if (d === '') {
      this.dbg(`wrong/invalid ${what} in follow buf:\n${this.full()}\n`);
      return -1;
    }
    if (d.length <= 9) return Number(d);
    const v = BigInt(d);
    if (v > LONG_MAX) {
      this.dbg(`wrong/invalid ${what} in follow buf:\n${this.full()}\n`);
      return -1;
    }
    return Number(BigInt.asIntN(32, v));
  }
  pid(): number {
    return this.int(RE_PID, 'pid');
  }
  tgid(): number {
    return this.int(RE_TGID, 'tgid');
  }
  comm(): string {
    return this.search(RE_COMM) ?? '';
  }
  private u64(re: RegExp, what: string): bigint {
    const d = this.search(re) ?? '';
    const v = d === '' ? -1n : BigInt(d);
    if (v < 0n || v > U64_MAX) {
      this.dbg(`wrong ${what} in follow buf:\n${this.full()}\n`);
      return U64_MAX;
    }
    return v;
  }
  ts(is61: boolean): bigint {
    return this.u64(is61 ? RE_TS_61 : RE_TS_612, 'ts_nsec');
  }
  freeTs(): bigint {
    return this.u64(RE_FREE_TS, 'free_ts_nsec');
  }
  pageNum(): number {
    const d = this.search(RE_ORDER) ?? '';
    let order: number | undefined;
    if (d.length > 0 && d.length <= 9) order = Number(d);
    else if (d !== '') {
      const v = BigInt(d);
      if (v <= LONG_MAX) order = Number(BigInt.asIntN(32, v));
    }
    if (order === undefined || order > 64) {
      this.dbg(`wrong order in follow buf:\n${this.full()}\n`);
      return 0;
    }
    return 1 << order;
  }
  allocator(): number {
    let a = 0;
    if (this.ext.includes('CMA')) a |= ALLOCATOR_CMA;
    if (this.ext.includes('slab')) a |= ALLOCATOR_SLAB;
    const t = this.full();
    const at = t.indexOf('__vmalloc_node_range');
    if (at >= 0) {
      // The line before the one naming __vmalloc_node_range must call alloc_pages.
      const lineStart = t.lastIndexOf('\n', at);
      const prevStart = lineStart <= 0 ? 0 : t.lastIndexOf('\n', lineStart - 1) + 1;
      const ap = t.indexOf('alloc_pages', prevStart);
      if (ap >= 0 && ap < at) a |= ALLOCATOR_VMALLOC;
    }
    return a === 0 ? ALLOCATOR_OTHERS : a;
  }
  /** 6.7+: cut the ts digits out of the stored copy (the regexes keep seeing them). */
  stripTs(): void {
    const head = this.head;
    const fast = fastTsDigits(head);
    if (fast !== undefined) {
      if (fast[1] > fast[0]) this.head = head.slice(0, fast[0]) + head.slice(fast[1]);
      return;
    }
    const m = RE_TS_612.exec(head);
    if (m) {
      const at = m.index + m[0].indexOf(m[1]!, 2);
      if (m[1]!.length) this.head = head.slice(0, at) + head.slice(at + m[1]!.length);
      return;
    }
    if (!RE_TS_612.test(this.full())) return;
    const t = this.full().slice(0, -1);
    const m2 = RE_TS_612.exec(t)!;
    const at = m2.index + m2[0].indexOf(m2[1]!, 2);
    const stripped = t.slice(0, at) + t.slice(at + m2[1]!.length);
    const nl = stripped.indexOf('\n');
    this.head = nl < 0 ? stripped : stripped.slice(0, nl + 1);
    this.rest = nl < 0 ? '' : stripped.slice(nl + 1);
  }
}

const isWs = (c: number) => c === 32 || (c >= 9 && c <= 13);

/**
 * Where the digits of the leftmost `ts\s*([0-9]*)\s*ns` match are, without a regex, when
 * the first "ts" in the header is the one that matches (it is in every kernel's output);
 * undefined to let the regex decide.
 */
function fastTsDigits(head: string): [number, number] | undefined {
  const i = head.indexOf('ts');
  if (i < 0) return undefined;
  let j = i + 2;
  while (j < head.length && isWs(head.charCodeAt(j))) j++;
  const d0 = j;
  while (j < head.length && head.charCodeAt(j) >= 48 && head.charCodeAt(j) <= 57) j++;
  const d1 = j;
  while (j < head.length && isWs(head.charCodeAt(j))) j++;
  if (head.charCodeAt(j) !== 110 || head.charCodeAt(j + 1) !== 115) return undefined; // "ns"
  return [d0, d1];
}

/** The C get_page_num() for the digits its regex captured (non-debug path). */
function pageNumOf(d: string): number {
  let order: number | undefined;
  if (d.length > 0 && d.length <= 9) order = Number(d);
  else if (d !== '') {
    const v = BigInt(d);
    if (v <= LONG_MAX) order = Number(BigInt.asIntN(32, v));
  }
  if (order === undefined || order > 64) return 0;
  return 1 << order;
}

function allocatorText(a: number): string {
  let s = 'allocated by ';
  if (a & ALLOCATOR_CMA) s += 'CMA ';
  if (a & ALLOCATOR_SLAB) s += 'SLAB ';
  if (a & ALLOCATOR_VMALLOC) s += 'VMALLOC ';
  if (a & ALLOCATOR_OTHERS) s += 'OTHERS ';
  return s;
}

const strcmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Ranks of texts by strcmp order (rank[id]). */
function ranksOf(n: number, text: (id: number) => string): Uint32Array {
  const texts: string[] = new Array(n);
  for (let i = 0; i < n; i++) texts[i] = text(i);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => strcmp(texts[x]!, texts[y]!));
  const r = new Uint32Array(n);
  order.forEach((id, i) => {
    r[id] = i;
  });
  return r;
}

/** A TextKey of zeros (the engine fills one per record). */
export function emptyTextKey(): TextKey {
  return { tmpl: 0, pid: 0, tgid: 0, rest: 0, form: 0, d3hi: 0, d3lo: 0, d4hi: 0, d4lo: 0, d3n: 0, d4n: 0 };
}

/** The hash of a text key (no --cull): the one formula for a lookup and for a row's rehash. */
export function textKeyHash(k: TextKey): number {
  let h = hashInts(k.tmpl, k.pid, k.tgid, k.rest);
  if (k.form !== 0) {
    h = hashInts(
      h,
      k.form | (k.d3n << 8) | (k.d4n << 16),
      (k.d3hi | 0) ^ (k.d4lo | 0),
      (k.d3lo | 0) ^ (k.d4hi | 0),
    );
    h ^= Math.floor(k.d3hi / 0x100000000) + Math.floor(k.d4hi / 0x100000000) * 7;
  }
  return h;
}

/**
 * The key of a cull row: the fields --cull names (0, or NONE for rest and comm, when not),
 * the unrelease flag, and the allocator (0 unless culled by allocator).
 */
export interface CullKey {
  rest: number;
  kpid: number;
  ktgid: number;
  kcomm: number;
  kflag: number;
  kalloc: number;
}

/** A CullKey of zeros (the engine fills one per record). */
export function emptyCullKey(): CullKey {
  return { rest: 0, kpid: 0, ktgid: 0, kcomm: 0, kflag: 0, kalloc: 0 };
}

/** The hash of a cull key: the one formula for a lookup and for a row's rehash. */
export function cullKeyHash(k: CullKey): number {
  return hashInts(k.rest, k.kpid, k.ktgid, (k.kcomm * 31 + k.kflag * 7 + k.kalloc) | 0);
}

/** Key fields of a row whose text is a canonical header (see parseHeader) and a rest. */
export interface TextKey {
  tmpl: number;
  /** pid and tgid (canonical headers print them without leading zeros). */
  pid: number;
  tgid: number;
  rest: number;
  /** bit 0: ts digits kept; bit 1: free_ts present. */
  form: number;
  d3hi: number;
  d3lo: number;
  d4hi: number;
  d4lo: number;
  /** Digit counts of ts and free_ts. */
  d3n: number;
  d4n: number;
}

/**
 * Rows of the grouping, in block columns. A row is either a text row (no --cull: its
 * key is the record text, as ids) or a cull row (its key is the cull fields).
 */
/**
 * `sum` plus the slots of hashes `hs[0..n)` in a table of `slots.length` (a power of two): the
 * reads, independent of one another, are in flight together (see Rows.touchSlots).
 */
function readSlots(slots: Uint32Array, hs: Int32Array, n: number, sum: number): number {
  const mask = slots.length - 1;
  let s = sum;
  for (let i = 0; i < n; i++) s = (s + slots[hs[i]! & mask]!) | 0;
  return s;
}

export class Rows {
  readonly num: RowField;
  // Text rows.
  readonly tmpl: RowField;
  readonly pid: RowField;
  readonly tgid: RowField;
  readonly rest: RowField;
  readonly form: RowField;
  wide: [F64Blocks, F64Blocks, F64Blocks, F64Blocks, U8Blocks, U8Blocks] | undefined;
  /** Odd text rows (tmpl = NONE): their header text and pages per record. */
  readonly oddHead = new Map<number, string>();
  readonly oddPageNum = new Map<number, number>();
  // Cull rows: key fields, then what the first record said.
  readonly kpid: RowI32;
  readonly ktgid: RowI32;
  readonly kcomm: RowU32;
  readonly kflag: RowU8;
  readonly pages: RowI32;
  readonly rpid: RowI32;
  readonly rtgid: RowI32;
  readonly rcomm: RowU32;
  /** The first record's stack (cull rows; `rest` is the key, NONE unless culled by it). */
  readonly rrest: RowU32;
  /** The first record's header text, when sorting cull rows by text (--sort=txt). */
  readonly rhead = new Map<number, string>();
  /** pid, tgid and comm the regexes gave an odd text row's first record. */
  readonly oddFields = new Map<number, { pid: number; tgid: number; comm: string }>();
  /** Allocator bits of the first record. */
  readonly alloc: RowField;
  /** ts / free_ts of the first record when the slow path read them. */
  readonly rts = new Map<number, bigint>();
  readonly rfreeTs = new Map<number, bigint>();
  /** ts of the first record as (digit count, code hi, code lo) when sorting by a stripped ts. */
  tsCols: [U8Blocks, F64Blocks, F64Blocks] | undefined;
  length = 0;
  /**
   * The lookup table: 0 for an empty slot, else row + 1 with, while rows fit in 24 bits,
   * the top 8 bits of the row's hash above it. A probe that meets another key's slot then
   * mostly tells it apart there, without reading that row's columns (a cache miss each, for
   * a table of millions of rows): on a 1 GiB dump of 2 million distinct records the default
   * sort's lookups took 452 ms before.
   */
  private slots = new Uint32Array(1 << 12);
  private tagged = true;
  /** The fields of the rows of this kind (see the constructor). */
  readonly table: RowTable;
  /**
   * A row's hash, from its key columns, for growing the table: recomputed (a few multiplies)
   * rather than kept (4 bytes a row: 8 MB of the default sort's peak at 2 million rows).
   */
  private readonly rowHash: (r: number) => number;
  private readonly tagRows: number;

  /**
   * Text rows (`cull` false) or cull rows: the fields of the kind in one RowTable, side by
   * side; the other kind's fields, never pushed, in tables of their own. `cullByAllocator`:
   * the allocator is part of a cull key. `tagRows`: rows up to which slots carry a tag (tests
   * set fewer than the 2^24 - 1 that fit); `rowHash`: tests give one that collides.
   */
  constructor(
    cull: boolean,
    opts: { cullByAllocator?: boolean; tagRows?: number; rowHash?: (r: number) => number } = {},
  ) {
    this.tagRows = opts.tagRows ?? ROW_MASK;
    const own = () => new RowTable(1);
    if (!cull) {
      // 16 bytes a row: pid, tgid and stack, then template (17 bits), form (2), allocator (5)
      // and count (8) in one word; a count or template that does not fit is kept beside the
      // table (the default sort of a 1 GiB dump of 2 million distinct records holds 31 MiB of
      // rows, not 46.5 with a word each).
      const t = new RowTable(4);
      this.table = t;
      this.pid = new RowU32(t, 0);
      this.tgid = new RowU32(t, 1);
      this.rest = new RowU32(t, 2);
      this.tmpl = new RowBits(t, 3, 0, 17, true);
      this.form = new RowBits(t, 3, 17, 2, false);
      this.alloc = new RowBits(t, 3, 19, 5, false);
      this.num = new RowBits(t, 3, 24, 8, true);
      this.kpid = new RowI32(own(), 0);
      this.ktgid = new RowI32(own(), 0);
      this.kcomm = new RowU32(own(), 0);
      this.kflag = new RowU8(own(), 0, 0);
      this.pages = new RowI32(own(), 0);
      this.rpid = new RowI32(own(), 0);
      this.rtgid = new RowI32(own(), 0);
      this.rcomm = new RowU32(own(), 0);
      this.rrest = new RowU32(own(), 0);
    } else {
      const t = new RowTable(11);
      this.table = t;
      this.num = new RowU32(t, 0);
      this.pages = new RowI32(t, 1);
      this.rest = new RowU32(t, 2);
      this.kpid = new RowI32(t, 3);
      this.ktgid = new RowI32(t, 4);
      this.kcomm = new RowU32(t, 5);
      this.rpid = new RowI32(t, 6);
      this.rtgid = new RowI32(t, 7);
      this.rcomm = new RowU32(t, 8);
      this.rrest = new RowU32(t, 9);
      this.kflag = new RowU8(t, 10, 0);
      this.alloc = new RowU8(t, 10, 8);
      this.tmpl = new RowU32(own(), 0);
      this.pid = new RowU32(own(), 0);
      this.tgid = new RowU32(own(), 0);
      this.form = new RowU8(own(), 0, 0);
    }
    const byAllocator = opts.cullByAllocator === true;
    const key = emptyTextKey();
    const ckey = emptyCullKey();
    this.rowHash =
      opts.rowHash ??
      (cull
        ? (r) => cullKeyHash(this.cullKeyOf(r, byAllocator, ckey))
        : (r) => textKeyHash(this.textKeyOf(r, key)));
  }

  /** Row `r`'s cull key, written into `k` (its allocator only when it is part of the key). */
  private cullKeyOf(r: number, byAllocator: boolean, k: CullKey): CullKey {
    k.rest = this.rest.get(r);
    k.kpid = this.kpid.get(r);
    k.ktgid = this.ktgid.get(r);
    k.kcomm = this.kcomm.get(r);
    k.kflag = this.kflag.get(r);
    k.kalloc = byAllocator ? this.alloc.get(r) : 0;
    return k;
  }

  /** Row `r`'s text key, written into `k`. */
  private textKeyOf(r: number, k: TextKey): TextKey {
    k.tmpl = this.tmpl.get(r);
    k.pid = this.pid.get(r);
    k.tgid = this.tgid.get(r);
    k.rest = this.rest.get(r);
    k.form = this.form.get(r);
    const wd = this.wide;
    if (k.form === 0 || !wd) {
      k.d3hi = k.d3lo = k.d4hi = k.d4lo = k.d3n = k.d4n = 0;
    } else {
      k.d3hi = wd[0].get(r);
      k.d3lo = wd[1].get(r);
      k.d4hi = wd[2].get(r);
      k.d4lo = wd[3].get(r);
      k.d3n = wd[4].get(r);
      k.d4n = wd[5].get(r);
    }
    return k;
  }

  /** A new text row for key `k` (hash `h`), counted once. */
  addText(h: number, k: TextKey, allocator: number): number {
    if (k.form !== 0) this.ensureWide();
    const row = this.add(h);
    this.num.push(1);
    this.tmpl.push(k.tmpl);
    this.pid.push(k.pid);
    this.tgid.push(k.tgid);
    this.rest.push(k.rest);
    this.form.push(k.form);
    this.alloc.push(allocator);
    const wd = this.wide;
    if (wd) {
      wd[0].push(k.d3hi);
      wd[1].push(k.d3lo);
      wd[2].push(k.d4hi);
      wd[3].push(k.d4lo);
      wd[4].push(k.d3n);
      wd[5].push(k.d4n);
    }
    return row;
  }

  /**
   * A new cull row (hash `h`) for its key fields, with `pages` for its first record and what
   * that record said (pid, tgid, comm, stack; `alloc`: the key's allocator or the record's).
   */
  addCull(
    h: number,
    key: CullKey,
    alloc: number,
    pages: number,
    pid: number,
    tgid: number,
    comm: number,
    firstRest: number,
  ): number {
    const row = this.add(h);
    this.num.push(1);
    this.pages.push(pages);
    this.rest.push(key.rest);
    this.kpid.push(key.kpid);
    this.ktgid.push(key.ktgid);
    this.kcomm.push(key.kcomm);
    this.kflag.push(key.kflag);
    this.alloc.push(alloc);
    this.rpid.push(pid);
    this.rtgid.push(tgid);
    this.rcomm.push(comm);
    this.rrest.push(firstRest);
    return row;
  }

  /** What touchSlots read, summed (meaningless: kept so that the reads are not optimized away). */
  touched = 0;

  /**
   * Read the lookup table's slots of hashes `hs[0..n)`: run before the lookups of those keys,
   * it brings the slots into the cache with many reads in flight, where each lookup would wait
   * for its own (a table of millions of rows is far larger than the cache).
   */
  touchSlots(hs: Int32Array, n: number): void {
    this.touched = readSlots(this.slots, hs, n, this.touched);
  }

  /** Row of a text key with hash `h`; -1 when none. */
  findText(h: number, k: TextKey): number {
    const mask = this.slots.length - 1;
    const hu = h >>> 0;
    const tagged = this.tagged;
    const tag = hu >>> ROW_BITS;
    let slot = h & mask;
    for (;;) {
      const e = this.slots[slot]!;
      if (e === 0) return -1;
      slot = (slot + 1) & mask;
      if (tagged && e >>> ROW_BITS !== tag) continue;
      const r = (tagged ? e & ROW_MASK : e) - 1;
      if (
        this.tmpl.get(r) === k.tmpl &&
        this.pid.get(r) === k.pid &&
        this.tgid.get(r) === k.tgid &&
        this.rest.get(r) === k.rest &&
        this.form.get(r) === k.form &&
        (k.form === 0 || this.sameWide(r, k))
      )
        return r;
    }
  }

  private sameWide(r: number, k: TextKey): boolean {
    const wd = this.wide!;
    return (
      wd[0].get(r) === k.d3hi &&
      wd[1].get(r) === k.d3lo &&
      wd[2].get(r) === k.d4hi &&
      wd[3].get(r) === k.d4lo &&
      wd[4].get(r) === k.d3n &&
      wd[5].get(r) === k.d4n
    );
  }

  /** Row of a cull key with hash `h` (kalloc 0: the allocator is not part of it); -1 when none. */
  findCull(h: number, k: CullKey): number {
    const mask = this.slots.length - 1;
    const hu = h >>> 0;
    const tagged = this.tagged;
    const tag = hu >>> ROW_BITS;
    let slot = h & mask;
    for (;;) {
      const e = this.slots[slot]!;
      if (e === 0) return -1;
      slot = (slot + 1) & mask;
      if (tagged && e >>> ROW_BITS !== tag) continue;
      const r = (tagged ? e & ROW_MASK : e) - 1;
      if (
        this.rest.get(r) === k.rest &&
        this.kpid.get(r) === k.kpid &&
        this.ktgid.get(r) === k.ktgid &&
        this.kcomm.get(r) === k.kcomm &&
        this.kflag.get(r) === k.kflag &&
        (k.kalloc === 0 || this.alloc.get(r) === k.kalloc)
      )
        return r;
    }
  }

  /**
   * A new row with hash `h`, its columns pushed next (addText, addCull). The table grows
   * before the row goes in: growing rehashes every row from its columns, which this one has
   * not yet.
   */
  private add(h: number): number {
    const row = this.length;
    if (this.tagged && row + 1 >= this.tagRows) {
      // Rows no longer fit beside a tag: the table holds row + 1 alone from now on.
      this.tagged = false;
      this.rehash(this.slots.length);
    }
    if ((row + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    this.length = row + 1;
    const mask = this.slots.length - 1;
    let slot = h & mask;
    while (this.slots[slot]! !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = this.entry(row, h >>> 0);
    return row;
  }

  /** Slots of the lookup table. */
  get slotCount(): number {
    return this.slots.length;
  }

  /** Room for `n` rows before the table grows again (a table that big already is left). */
  reserve(n: number): void {
    let size = this.slots.length;
    while (n * 2 > size) size *= 2;
    if (size > this.slots.length) this.rehash(size);
  }

  private entry(row: number, hu: number): number {
    return this.tagged ? (hu >>> ROW_BITS) * (ROW_MASK + 1) + row + 1 : row + 1;
  }

  /**
   * A table of `size` slots with every row placed again, TOUCH_KEYS rows at a time: their hashes,
   * then a read of each one's slot (the reads in flight together), then the placing.
   */
  private rehash(size: number): void {
    const slots = new Uint32Array(size);
    const mask = size - 1;
    const rowHash = this.rowHash;
    const hs = this.rehashScratch;
    for (let r0 = 0; r0 < this.length; r0 += hs.length) {
      const n = Math.min(hs.length, this.length - r0);
      for (let i = 0; i < n; i++) hs[i] = rowHash(r0 + i);
      this.touched = readSlots(slots, hs, n, this.touched);
      for (let i = 0; i < n; i++) {
        const hu = hs[i]! >>> 0;
        let slot = hu & mask;
        while (slots[slot]! !== 0) slot = (slot + 1) & mask;
        slots[slot] = this.entry(r0 + i, hu);
      }
    }
    this.slots = slots;
  }
  private readonly rehashScratch = new Int32Array(TOUCH_KEYS);

  /**
   * The lookup table is not needed once reading is over: it is handed over (at least two
   * words per row: the sort's scratch, instead of 8 bytes a row more at the peak).
   */
  takeIndex(): Int32Array {
    const slots = this.slots;
    this.slots = new Uint32Array(1);
    return new Int32Array(slots.buffer, slots.byteOffset, slots.length);
  }

  ensureWide(): NonNullable<Rows['wide']> {
    if (!this.wide) {
      this.wide = [
        new F64Blocks(),
        new F64Blocks(),
        new F64Blocks(),
        new F64Blocks(),
        new U8Blocks(),
        new U8Blocks(),
      ];
      for (let r = 0; r < this.form.length; r++) {
        for (let k = 0; k < 4; k++) this.wide[k as 0]!.push(0);
        this.wide[4].push(0);
        this.wide[5].push(0);
      }
    }
    return this.wide;
  }
}

/**
 * Bytes of stack text written from one copy each (restWriter): the stacks of the most rows
 * first, the others line by line.
 */
const REST_COPY_LIMIT = 4 << 20;

/**
 * When the text rows' table is sized for the whole input (SortEngine.presize): inputs of
 * `minInput` bytes or more, first looked at after `look` bytes (at most 1/32 of the input).
 */
export interface PresizeOptions {
  minInput: number;
  look: number;
  /** Slots from which lookups are read ahead (TOUCH_MIN_SLOTS; tests set 0). */
  touchMinSlots?: number;
}
const PRESIZE: PresizeOptions = { minInput: 64 << 20, look: 32 << 20 };
const PRESIZE_MAX_ROWS = 1 << 27;

/**
 * Output buffer: bytes written in place, flushed in pieces of about 1 MiB; in the writer's
 * memory when it lends it (SortIo.buffers).
 */
class Out {
  /** Written by callers that reserved room() first (the hot loop of output()). */
  buf: Buffer;
  p = 0;
  /** `buf` is the lender's. */
  private lent: boolean;
  constructor(
    private readonly write: (b: Buffer) => void,
    /** `write` is done with its argument when it returns (SortIo.writeDone). */
    private readonly reuse = false,
    private readonly lender?: SortIo['buffers'],
  ) {
    this.lent = lender !== undefined;
    this.buf = lender ? lender.lend() : Buffer.allocUnsafe(1 << 20);
  }
  room(n: number): void {
    if (this.p + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) {
      // A piece bigger than the lent memory: built here, written through write().
      this.buf = Buffer.allocUnsafe(n);
      this.lent = false;
    }
  }
  ascii(s: string): void {
    this.room(s.length);
    const b = this.buf;
    let p = this.p;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.p = p;
  }
  byte(c: number): void {
    this.room(1);
    this.buf[this.p++] = c;
  }
  int(n: number): void {
    if (n < 0 || n > 0xffffffff || n !== Math.floor(n)) {
      this.ascii(String(n));
      return;
    }
    let digits = 1;
    for (let p = 10; n >= p && digits < 10; p *= 10) digits++;
    this.room(digits);
    const b = this.buf;
    let q = this.p + digits;
    this.p = q;
    let x = n;
    do {
      const d = x % 10;
      b[--q] = 48 + d;
      x = (x - d) / 10;
    } while (x > 0);
  }
  /** Digits of a (lexical) digit code of `width` digits. */
  code(c: number, width: number): void {
    this.room(width);
    let n = 0;
    let x = c;
    for (let k = 0; k < width; k++) {
      if (x % 11 > 0) n++;
      x = Math.floor(x / 11);
    }
    const b = this.buf;
    let q = this.p + n;
    x = c;
    for (let k = 0; k < width; k++) {
      const d = x % 11;
      x = (x - d) / 11;
      if (d > 0) b[--q] = 47 + d;
    }
    this.p += n;
  }
  /** Bytes of a view (kept by the caller: no allocation here). */
  view(v: Uint8Array): void {
    const n = v.length;
    this.room(n);
    if (n <= 24) {
      const b = this.buf;
      let p = this.p;
      for (let i = 0; i < n; i++) b[p++] = v[i]!;
      this.p = p;
    } else {
      this.buf.set(v, this.p);
      this.p += n;
    }
  }
  flush(): void {
    if (this.p === 0) return;
    const lender = this.lender;
    if (this.lent) lender!.handOver(this.p);
    else this.write(this.buf.subarray(0, this.p));
    this.p = 0;
    if (lender) {
      this.buf = lender.lend();
      this.lent = true;
    } else if (!this.reuse) {
      // Unless the sink is done with what it was given, the next bytes go to a new buffer.
      this.buf = Buffer.allocUnsafe(this.buf.length);
    }
  }
}

/** Digits of a whole number 0 <= n < 2^32 at b[p...]; returns the new position. */
function putInt(b: Buffer, p: number, n: number): number {
  if (n < 10) {
    b[p] = 48 + n;
    return p + 1;
  }
  let digits = 2;
  for (let q = 100; n >= q && digits < 10; q *= 10) digits++;
  let e = p + digits;
  let x = n;
  while (e > p) {
    const d = x % 10;
    b[--e] = 48 + d;
    x = (x - d) / 10;
  }
  return p + digits;
}

/** Bytes of `v` at b[p...]; returns the new position. */
function put(b: Buffer, p: number, v: Uint8Array): number {
  const n = v.length;
  if (n <= 24) for (let i = 0; i < n; i++) b[p + i] = v[i]!;
  else b.set(v, p);
  return p + n;
}

const TIMES = Buffer.from(' times, ', 'latin1');
/** Rows output() brings into the cache ahead of writing them (RowTable.touch). */
const TOUCH_ROWS = 512;
/** Records whose lookup slots are read ahead at once (text rows; see Rows.touchSlots). */
const TOUCH_KEYS = 256;
/** ...once the table has this many slots (a smaller one stays in the cache). */
const TOUCH_MIN_SLOTS = 1 << 18;
const TGID = Buffer.from(', tgid ', 'latin1');
const NS_NL = Buffer.from(' ns\n', 'latin1');
const NS_FREE_TS = Buffer.from(' ns, free_ts ', 'latin1');

/** Digits of a wide code pair (up to 20 digits). */
function wideDigits(hi: number, lo: number, n: number): string {
  return n > 10 ? digitsOf(hi, 10) + digitsOf(lo, 10) : digitsOf(hi, 10);
}

/** The number a digit string of at most 20 digits stands for, as a BigInt. */
function wideValue(hi: number, lo: number, n: number): bigint {
  return BigInt(wideDigits(hi, lo, n) || '0');
}

/**
 * Groups records as the C tool would, chunk by chunk in input order, then sorts the groups
 * and writes them (finish). One instance per run.
 */
export class SortEngine {
  private readonly plan: SortPlan;
  private readonly rows: Rows;
  private readonly oddKeys = new Map<string, number>();
  private readonly tmplOf = new Map<number, number>();
  private readonly tmplPrefix: number[] = [];
  private readonly tmplComm: number[] = [];
  private readonly prefixPageNum: number[] = [];
  private readonly commPass: number[] = [];
  private readonly hv = headerView();
  private readonly needPid: boolean;
  private readonly needTgid: boolean;
  private readonly needComm: boolean;
  private readonly needAllocator: boolean;
  private readonly sortKeys: Set<SortKeyName>;
  records = 0;
  listSize = 0;
  private headersSeen = 0;
  /** ext_buf: the last PFN line of the chunks read so far. */
  private ext = '';
  // 6.1: the last record added to the list (its text, as ids or as text) and its row.
  private prevRow = -1;
  /**
   * Row (+1) by rest id when the key is the stack alone (`--cull=stacktrace`): a lookup
   * without hashing the key or probing the rows' table (which still gets every row).
   */
  private restRow = new Int32Array(0);
  private prevKey: TextKey | undefined;
  private prevRaw: string | undefined;
  private readonly key: TextKey = emptyTextKey();
  private readonly cullKey: CullKey = emptyCullKey();

  constructor(
    private readonly cfg: SortConfig,
    private readonly dict: PageOwnerDict,
    private readonly io: SortIo,
    /** See restWriter. */
    private readonly restCopyBytes = REST_COPY_LIMIT,
    /** When to size the text rows' table for the input (presize; tests set it). */
    private readonly presizeOpts: PresizeOptions = PRESIZE,
  ) {
    this.plan = sortPlan(cfg);
    this.rows = new Rows(cfg.cull !== 0, { cullByAllocator: (cfg.cull & CULL_ALLOCATOR) !== 0 });
    const keys = new Set(cfg.sort.map((k) => k.key));
    this.sortKeys = keys;
    const { cull, filter, debug } = cfg;
    this.needPid = debug || (cull & CULL_PID) !== 0 || (filter & FILTER_PID) !== 0 || keys.has('pid');
    this.needTgid = debug || (cull & CULL_TGID) !== 0 || (filter & FILTER_TGID) !== 0 || keys.has('tgid');
    this.needComm = debug || (cull & CULL_COMM) !== 0 || (filter & FILTER_COMM) !== 0 || keys.has('comm');
    this.needAllocator = cull === 0 || (cull & CULL_ALLOCATOR) !== 0 || keys.has('allocator');
    if (cull === 0 && keys.has('ts') && this.plan.stripTs) {
      this.rows.tsCols = [new U8Blocks(), new F64Blocks(), new F64Blocks()];
    }
  }

  /** The input is a file of `bytes` (before its first chunk): its table may be sized for it. */
  expectInput(bytes: number): void {
    const pre = this.presizeOpts;
    if (this.cfg.cull !== 0 || bytes < pre.minInput || this.seenBytes > 0) return;
    this.inputBytes = bytes;
    this.presizeAt = Math.max(1, Math.min(pre.look, Math.floor(bytes / 32)));
  }

  /** Input bytes, when known and the table may be sized for them; bytes grouped so far. */
  private inputBytes = -1;
  private seenBytes = 0;
  /** Bytes at which presize looks next (0: never again), and what its first look saw. */
  private presizeAt = 0;
  private firstLook: { bytes: number; rows: number } | undefined;

  /**
   * Size the text rows' lookup table for the whole input once the rows are seen to keep pace
   * with it, instead of doubling it as they come (each doubling places every row again: 0.2 s
   * of the default sort of the 1 GiB bench dump, whose 2 million records are nearly all
   * distinct). Looks twice: at `look` bytes, then at twice that; when the rows added between
   * the two looks came at 90% or more of the rate before, the table gets room for the rows
   * that rate gives the rest of the input. Records that repeat (a few processes allocating the
   * same way) slow the rate down and the table grows as before, so it holds no more than the
   * rows it will have, as far as the rate tells.
   */
  private presize(): void {
    const rows = this.rows.length;
    const bytes = this.seenBytes;
    if (!this.firstLook) {
      this.firstLook = { bytes, rows };
      this.presizeAt = bytes * 2;
      return;
    }
    this.presizeAt = 0;
    const { bytes: b1, rows: r1 } = this.firstLook;
    if (bytes <= b1 || r1 === 0) return;
    const since = (rows - r1) / (bytes - b1);
    if (since < 0.9 * (r1 / b1)) return;
    // At most 2^27 rows ahead (a table of 1 GiB): past that the table grows as rows come.
    const expected = Math.ceil(rows + since * Math.max(0, this.inputBytes - bytes));
    this.rows.reserve(Math.min(expected, PRESIZE_MAX_ROWS));
  }

  private dbg = (s: string): void => {
    if (this.cfg.debug) this.io.errOut(s);
  };

  private lastTmplKey = -1;
  private lastTmpl = 0;

  private template(prefix: number, comm: number): number {
    const k = prefix * 0x100000 + comm;
    if (k === this.lastTmplKey) return this.lastTmpl;
    this.lastTmplKey = k;
    this.lastTmpl = this.templateOf(k, prefix, comm);
    return this.lastTmpl;
  }

  private templateOf(k: number, prefix: number, comm: number): number {
    let t = this.tmplOf.get(k);
    if (t === undefined) {
      t = this.tmplPrefix.length;
      this.tmplPrefix.push(prefix);
      this.tmplComm.push(comm);
      this.tmplOf.set(k, t);
    }
    return t;
  }

  private pageNumOfPrefix(prefix: number): number {
    let n = this.prefixPageNum[prefix];
    if (n === undefined) {
      n = pageNumOf(RE_ORDER.exec(this.dict.prefixes.text(prefix))![1]!);
      this.prefixPageNum[prefix] = n;
    }
    return n;
  }

  private commPasses(comm: number): boolean {
    let ok = this.commPass[comm];
    if (ok === undefined) {
      ok = this.cfg.comms.includes(this.dict.comms.text(comm)) ? 1 : 0;
      this.commPass[comm] = ok;
    }
    return ok === 1;
  }

  chunk(c: ChunkResult): void {
    const t = c.tuples;
    const wide = c.wide;
    let w = 0;
    const rows = this.rows;
    const cfg = this.cfg;
    const cull = cfg.cull;
    const filter = cfg.filter;
    const is61 = this.plan.is61;
    const k = this.key;
    // Text rows: the lookup slots of the next TOUCH_KEYS records are read ahead, together.
    const ahead = cull === 0 && rows.slotCount >= (this.presizeOpts.touchMinSlots ?? TOUCH_MIN_SLOTS);
    let touchedTo = 0;
    let wTouched = 0;
    for (let i = 0; i < t.length; i += TUPLE) {
      if (ahead && i === touchedTo) {
        const end = Math.min(t.length, i + TOUCH_KEYS * TUPLE);
        wTouched = this.touchAhead(t, wide, i, end, wTouched);
        touchedTo = end;
      }
      const meta = t[i]!;
      if (meta & K_ODD) {
        const o = c.odd[t[i + T_ODD]!]!;
        this.slow(o, o.pfnBefore ?? this.ext);
        continue;
      }
      this.records++;
      this.headersSeen++;
      const prefix = t[i + T_PREFIX]!;
      const comm = t[i + T_COMM]!;
      let tsHi = 0;
      let tsLo = 0;
      let tsN = 0;
      if (meta & (F_TS | F_FREE_TS)) {
        tsHi = wide[w]!;
        tsLo = wide[w + 1]!;
        tsN = (meta >>> TS_LEN_SHIFT) & 0xff;
      }
      w = this.textKeyOf(t, i, wide, w, k);
      const pageNum = this.pageNumOfPrefix(prefix);
      if (is61 && this.prevRow >= 0 && this.sameAsPrev(k)) {
        rows.num.set(this.prevRow, rows.num.get(this.prevRow) + 1);
        if (cull !== 0) rows.pages.set(this.prevRow, (rows.pages.get(this.prevRow) + pageNum) | 0);
        continue;
      }
      let pid = -2;
      let tgid = -2;
      if (filter & FILTER_PID) {
        pid = k.pid;
        if (!cfg.pids.includes(pid)) continue;
      }
      if (filter & FILTER_TGID) {
        tgid = k.tgid;
        if (!cfg.tgids.includes(tgid)) continue;
      }
      if (filter & FILTER_COMM && !this.commPasses(comm)) continue;
      const alloc =
        (meta & F_CMA ? ALLOCATOR_CMA : 0) |
        (meta & F_SLAB_TEXT ? ALLOCATOR_SLAB : 0) |
        (this.dict.rests.flags.get(k.rest) & R_VMALLOC ? ALLOCATOR_VMALLOC : 0);
      const allocator = alloc === 0 ? ALLOCATOR_OTHERS : alloc;
      let row: number;
      if (cull === 0) {
        row = this.textRow(k, allocator);
        if (rows.tsCols && row === rows.length - 1 && rows.num.get(row) === 1) {
          rows.tsCols[0].push(tsN);
          rows.tsCols[1].push(tsHi);
          rows.tsCols[2].push(tsLo);
        }
      } else {
        if (cull & CULL_PID && pid === -2) pid = k.pid;
        if (cull & CULL_TGID && tgid === -2) tgid = k.tgid;
        const before = rows.length;
        const ck = this.cullKey;
        ck.rest = cull & CULL_STACKTRACE ? k.rest : NONE;
        ck.kpid = cull & CULL_PID ? pid : 0;
        ck.ktgid = cull & CULL_TGID ? tgid : 0;
        ck.kcomm = cull & CULL_COMM ? comm : NONE;
        ck.kflag = 0;
        ck.kalloc = cull & CULL_ALLOCATOR ? allocator : 0;
        row = this.cullRow(ck, pageNum, pid, tgid, comm, allocator, k.rest);
        if (rows.length > before) {
          // What the first record says, for the sort and the output.
          if (pid === -2) rows.rpid.set(row, k.pid);
          if (tgid === -2) rows.rtgid.set(row, k.tgid);
          if (this.sortKeys.has('ts')) rows.rts.set(row, wideValue(tsHi, tsLo, tsN));
        }
      }
      if (is61) {
        this.prevRow = row;
        this.prevKey = { ...k };
        this.prevRaw = undefined;
      }
      this.loaded();
    }
    // The chunk's last PFN line is ext_buf for what follows.
    if (c.lastPfn !== undefined) this.ext = c.lastPfn;
    this.seenBytes += c.bytes;
    if (this.presizeAt > 0 && this.seenBytes >= this.presizeAt) this.presize();
  }

  /**
   * Fill `k` with the text key of the record at tuple `i` (not odd), its ts digits read from
   * `wide` at `w`; returns where the next record's are.
   */
  private textKeyOf(t: Uint32Array, i: number, wide: Float64Array, w: number, k: TextKey): number {
    const meta = t[i]!;
    k.tmpl = this.template(t[i + T_PREFIX]!, t[i + T_COMM]!);
    k.pid = t[i + T_PID]!;
    k.tgid = t[i + T_TGID]!;
    k.rest = t[i + T_REST]!;
    k.form = 0;
    k.d3hi = k.d3lo = k.d4hi = k.d4lo = 0;
    k.d3n = k.d4n = 0;
    if (meta & (F_TS | F_FREE_TS)) {
      if (!this.plan.stripTs && meta & F_TS) {
        k.form |= 1;
        k.d3hi = wide[w]!;
        k.d3lo = wide[w + 1]!;
        k.d3n = (meta >>> TS_LEN_SHIFT) & 0xff;
      }
      if (meta & F_FREE_TS) {
        k.form |= 2;
        k.d4hi = wide[w + 2]!;
        k.d4lo = wide[w + 3]!;
        k.d4n = (meta >>> FREE_TS_LEN_SHIFT) & 0xff;
      }
      return w + 4;
    }
    return w;
  }

  private readonly aheadKey: TextKey = emptyTextKey();
  private readonly aheadHashes = new Int32Array(TOUCH_KEYS);

  /**
   * Read ahead the lookup slots of the text keys of tuples [i, end) (their ts digits from `w`
   * on in `wide`); returns where the next tuple's digits are. Only reads: the records are
   * looked up afterwards, as always.
   */
  private touchAhead(t: Uint32Array, wide: Float64Array, i: number, end: number, w: number): number {
    const k = this.aheadKey;
    const hs = this.aheadHashes;
    let n = 0;
    for (let j = i; j < end; j += TUPLE) {
      if (t[j]! & K_ODD) continue;
      w = this.textKeyOf(t, j, wide, w, k);
      hs[n++] = textKeyHash(k);
    }
    this.rows.touchSlots(hs, n);
    return w;
  }

  private loaded(): void {
    this.listSize++;
    if (this.listSize % 1000 === 0) this.io.progressOut(`loaded ${this.listSize}\r`);
  }

  private sameAsPrev(k: TextKey): boolean {
    const p = this.prevKey;
    if (p === undefined) {
      // The previous record took the slow path: compare texts.
      return this.prevRaw !== undefined && this.prevRaw === this.rawText(k);
    }
    return (
      p.tmpl === k.tmpl &&
      p.pid === k.pid &&
      p.tgid === k.tgid &&
      p.rest === k.rest &&
      p.form === k.form &&
      p.d3hi === k.d3hi &&
      p.d3lo === k.d3lo &&
      p.d3n === k.d3n &&
      p.d4hi === k.d4hi &&
      p.d4lo === k.d4lo &&
      p.d4n === k.d4n
    );
  }

  /** Row of a text key (no --cull), created with this record as its first. */
  private textRow(k: TextKey, allocator: number): number {
    const rows = this.rows;
    const h = textKeyHash(k);
    const found = rows.findText(h, k);
    if (found >= 0) {
      rows.num.set(found, rows.num.get(found) + 1);
      return found;
    }
    return rows.addText(h, k, allocator);
  }

  /** Row of a cull key, created with this record's fields as its first. */
  private cullRow(
    k: CullKey,
    pageNum: number,
    pid: number,
    tgid: number,
    comm: number,
    allocator: number,
    firstRest: number,
  ): number {
    const rows = this.rows;
    const byRest =
      this.cfg.cull === CULL_STACKTRACE &&
      k.kpid === 0 &&
      k.ktgid === 0 &&
      k.kcomm === NONE &&
      k.kflag === 0 &&
      k.kalloc === 0;
    const rest = k.rest;
    if (byRest) {
      if (rest >= this.restRow.length) {
        const bigger = new Int32Array(Math.max(rest + 1, this.restRow.length * 2, 1024));
        bigger.set(this.restRow);
        this.restRow = bigger;
      }
      const r = this.restRow[rest]! - 1;
      if (r >= 0) {
        rows.num.set(r, rows.num.get(r) + 1);
        rows.pages.set(r, (rows.pages.get(r) + pageNum) | 0);
        return r;
      }
    }
    const h = cullKeyHash(k);
    const found = byRest ? -1 : rows.findCull(h, k);
    if (found >= 0) {
      rows.num.set(found, rows.num.get(found) + 1);
      rows.pages.set(found, (rows.pages.get(found) + pageNum) | 0);
      return found;
    }
    const row = rows.addCull(
      h,
      k,
      // The allocator is part of the key when culled by it, else the first record's.
      this.cfg.cull & CULL_ALLOCATOR ? k.kalloc : allocator,
      pageNum,
      pid,
      tgid,
      comm,
      firstRest,
    );
    if (byRest) this.restRow[rest] = row + 1;
    return row;
  }

  /** The C text of a canonical key (header with its "\n", then the rest). */
  private rawText(k: TextKey): string {
    return (
      this.headText(k.tmpl, k.pid, k.tgid, k.form, k.d3hi, k.d3lo, k.d3n, k.d4hi, k.d4lo, k.d4n) +
      this.dict.restText(k.rest)
    );
  }

  private headText(
    tmpl: number,
    pid: number,
    tgid: number,
    form: number,
    d3hi: number,
    d3lo: number,
    d3n: number,
    d4hi: number,
    d4lo: number,
    d4n: number,
  ): string {
    const d = this.dict;
    let s = `${d.prefixes.text(this.tmplPrefix[tmpl]!)}, pid ${pid}, tgid ${tgid} (${d.comms.text(this.tmplComm[tmpl]!)}), ts ${form & 1 ? wideDigits(d3hi, d3lo, d3n) : ''} ns`;
    if (form & 2) s += `, free_ts ${wideDigits(d4hi, d4lo, d4n)} ns`;
    return `${s}\n`;
  }

  /** A record the scanner left: the C tool's logic on its text. */
  private slow(o: OddRecord, ext: string): void {
    const io = this.io;
    const cfg = this.cfg;
    const { cull, filter, debug } = cfg;
    const is61 = this.plan.is61;
    if (o.unterminated) {
      // read_block() returns -1 at end of file: a record without its blank line is
      // dropped. Say so instead of dropping it silently.
      io.errOut(
        `memsleuth: warning: the input does not end with a blank line; ignored the last ${o.text.length} bytes from byte ${o.offset} (a truncated record?)\n`,
      );
      return;
    }
    this.records++;
    const r = new SlowRecord(o.text, ext, this.dbg);
    this.ext = r.ext;
    if (r.head.startsWith('Page allocated via order ')) this.headersSeen++;
    const raw = r.head0 + r.rest0;
    if (is61) {
      // add_list(): a record identical to the previous one is counted on it at once.
      if (this.prevRow >= 0) {
        const prevText = this.prevKey ? this.rawText(this.prevKey) : this.prevRaw;
        if (prevText === raw) {
          const rows = this.rows;
          rows.num.set(this.prevRow, rows.num.get(this.prevRow) + 1);
          if (cull !== 0) rows.pages.set(this.prevRow, (rows.pages.get(this.prevRow) + r.pageNum()) | 0);
          return;
        }
      }
      // is_need()
      if (debug || filter & FILTER_UNRELEASE) {
        const ts = r.ts(true);
        const freeTs = r.freeTs();
        if (filter & FILTER_UNRELEASE && freeTs !== 0n && ts < freeTs) return;
      }
    }
    if (filter & FILTER_PID && !cfg.pids.includes(r.pid())) return;
    if (filter & FILTER_TGID && !cfg.tgids.includes(r.tgid())) return;
    if (debug || filter & FILTER_COMM) {
      const comm = r.comm();
      if (filter & FILTER_COMM && !cfg.comms.includes(comm)) return;
    }
    // add_list()
    const needFields = debug || cull !== 0;
    let pid = 0;
    let tgid = 0;
    let comm = '';
    if (needFields) {
      pid = r.pid();
      tgid = r.tgid();
      comm = r.comm();
    }
    if (this.plan.stripTs) r.stripTs();
    let pageNum: number | undefined;
    let ts: bigint | undefined;
    let freeTs: bigint | undefined;
    if (debug) {
      pageNum = r.pageNum();
      ts = r.ts(is61);
      if (is61) freeTs = r.freeTs();
    }
    pageNum ??= this.slowPageNum(r);
    const rows = this.rows;
    const before = rows.length;
    const needTs = debug || this.sortKeys.has('ts');
    const needFreeTs = is61 && (debug || (cull & CULL_UNRELEASE) !== 0 || this.sortKeys.has('free_ts'));
    let row: number;
    if (cull === 0) {
      row = this.slowTextRow(r, r.allocator());
      if (rows.length > before) {
        // The first record of a new group: what the sort may read from it.
        if (!needFields) {
          if (this.needPid) pid = r.pid();
          if (this.needTgid) tgid = r.tgid();
          if (this.needComm) comm = r.comm();
        }
        if (rows.tmpl.get(row) === NONE) {
          rows.oddPageNum.set(row, pageNum);
          rows.oddFields.set(row, { pid, tgid, comm });
        }
        if (needTs) rows.rts.set(row, ts ?? r.ts(is61));
        if (needFreeTs) rows.rfreeTs.set(row, freeTs ?? r.freeTs());
        if (rows.tsCols) {
          // A slow row's ts is kept as a BigInt (rts): the comparator sort reads it.
          rows.tsCols[0].push(0);
          rows.tsCols[1].push(0);
          rows.tsCols[2].push(0);
        }
      }
    } else {
      let flag = 0;
      if (cull & CULL_UNRELEASE) {
        freeTs ??= r.freeTs();
        flag = freeTs !== 0n ? 1 : 2;
      }
      const allocator = cull & CULL_ALLOCATOR ? r.allocator() : 0;
      const restKey = cull & CULL_STACKTRACE ? this.dict.internRestText(r.rest) : NONE;
      const ck = this.cullKey;
      ck.rest = restKey;
      ck.kpid = cull & CULL_PID ? pid : 0;
      ck.ktgid = cull & CULL_TGID ? tgid : 0;
      ck.kcomm = cull & CULL_COMM ? this.dict.comms.internText(comm) : NONE;
      ck.kflag = flag;
      ck.kalloc = allocator;
      row = this.cullRow(ck, pageNum, pid, tgid, 0, allocator, restKey);
      if (rows.length > before) {
        if (!needFields) {
          if (this.needPid) rows.rpid.set(row, r.pid());
          if (this.needTgid) rows.rtgid.set(row, r.tgid());
          if (this.needComm) comm = r.comm();
        }
        rows.rcomm.set(row, this.dict.comms.internText(comm));
        if (!(cull & CULL_ALLOCATOR) && this.needAllocator) rows.alloc.set(row, r.allocator());
        if (restKey === NONE) rows.rrest.set(row, this.dict.internRestText(r.rest));
        if (this.sortKeys.has('txt')) rows.rhead.set(row, r.head);
        if (needTs) rows.rts.set(row, ts ?? r.ts(is61));
        if (needFreeTs) rows.rfreeTs.set(row, freeTs ?? r.freeTs());
      }
    }
    if (is61) {
      this.prevRow = row;
      this.prevKey = undefined;
      this.prevRaw = raw;
    }
    this.loaded();
  }

  /** The order is in the header's prefix: the same answer for the same prefix. */
  private slowPageNum(r: SlowRecord): number {
    const m = RE_ORDER.exec(r.head0);
    if (m && m.index === r.head0.indexOf('order')) return pageNumOf(m[1]!);
    return r.pageNum();
  }

  /** Text row of a slow record: the same row as a canonical record of the same text. */
  private slowTextRow(r: SlowRecord, allocator: number): number {
    const head = r.head;
    const rest = r.rest;
    const k = this.key;
    if (this.canonicalKey(head, rest, k)) return this.textRow(k, allocator);
    const text = head + rest;
    const rows = this.rows;
    const found = this.oddKeys.get(text);
    if (found !== undefined) {
      rows.num.set(found, rows.num.get(found) + 1);
      return found;
    }
    // Found by its text (oddKeys), never by hash: no template, and no ts fields of its own.
    const odd = { ...emptyTextKey(), tmpl: NONE, rest: this.dict.internRestText(rest) };
    const row = rows.addText(0, odd, allocator);
    this.oddKeys.set(text, row);
    rows.oddHead.set(row, head);
    return row;
  }

  /** Key fields of a stored text, when its header is one the fast path reads. */
  private canonicalKey(head: string, rest: string, k: TextKey): boolean {
    if (!head.endsWith('\n')) return false;
    const b = Buffer.from(head, 'latin1');
    const v = this.hv;
    if (!parseHeader(b, 0, b.length - 1, v, this.plan.stripTs)) return false;
    const d = this.dict;
    const prefix = d.prefixes.intern(b, 0, v.prefixE);
    const comm = d.comms.intern(b, v.commS, v.commE);
    if (!d.checkPrefix(prefix) || !d.checkComm(comm)) return false;
    const d3n = v.d3e - v.d3s;
    if (this.plan.stripTs && d3n > 0) return false;
    k.tmpl = this.template(prefix, comm);
    k.pid = digitValue(b, v.d1s, v.d1e);
    k.tgid = digitValue(b, v.d2s, v.d2e);
    k.rest = d.internRestText(rest);
    k.form = 0;
    k.d3hi = k.d3lo = k.d4hi = k.d4lo = 0;
    k.d3n = k.d4n = 0;
    if (d3n > 0) {
      k.form |= 1;
      k.d3hi = digitCode10(b, v.d3s, v.d3s + Math.min(d3n, 10));
      k.d3lo = d3n > 10 ? digitCode10(b, v.d3s + 10, v.d3e) : 0;
      k.d3n = d3n;
    }
    if (v.d4s >= 0) {
      const d4n = v.d4e - v.d4s;
      k.form |= 2;
      k.d4hi = digitCode10(b, v.d4s, v.d4s + Math.min(d4n, 10));
      k.d4lo = d4n > 10 ? digitCode10(b, v.d4s + 10, v.d4e) : 0;
      k.d4n = d4n;
    }
    return true;
  }

  /** Sort the groups and write them. */
  async finish(scan: ScanTotals): Promise<SortResult> {
    const io = this.io;
    io.progressOut(`loaded ${this.listSize}\nsorting ....\nculling\n`);
    if (this.headersSeen === 0) {
      // The C tool sorts anything; say when the input cannot be page_owner output.
      io.errOut(
        scan.bytes === 0
          ? 'memsleuth: warning: the input is empty\n'
          : 'memsleuth: warning: no record starts with "Page allocated via order": is this /sys/kernel/debug/page_owner output?\n',
      );
    }
    const order = this.sorted(this.rows.takeIndex());
    await io.beforeOutput?.((scan.threads ?? 0) > 0);
    this.output(order);
    return { records: this.records, loaded: this.listSize, groups: this.rows.length, bytes: scan.bytes };
  }

  // ---- sorting ----

  private ranks:
    | {
        prefix: Uint32Array;
        commTail: Uint32Array;
        commPlain: Uint32Array;
        rest: Uint32Array;
      }
    | undefined;

  private computeRanks(): NonNullable<SortEngine['ranks']> {
    if (this.ranks) return this.ranks;
    const d = this.dict;
    const prefix = ranksOf(d.prefixes.size, (i) => `${d.prefixes.text(i)}, pid `);
    const commTail = ranksOf(d.comms.size, (i) => `${d.comms.text(i)}), ts `);
    const commPlain = ranksOf(d.comms.size, (i) => d.comms.text(i));
    // Rests: line by line, each line ranked with its "\n" (so a rest that is a prefix of
    // another, line for line, comes first, as strcmp puts it).
    const lineRank = ranksOf(d.lines.size, (i) => `${d.lines.text(i)}\n`);
    const r = d.rests;
    const n = r.size;
    const ids = Array.from({ length: n }, (_, i) => i);
    ids.sort((a, b) => {
      const sa = r.lineStart.get(a);
      const sb = r.lineStart.get(b);
      const na = r.lineCount.get(a);
      const nb = r.lineCount.get(b);
      const m = Math.min(na, nb);
      for (let j = 0; j < m; j++) {
        const la = lineRank[r.lines.data[sa + j]!]!;
        const lb = lineRank[r.lines.data[sb + j]!]!;
        if (la !== lb) return la - lb;
      }
      return na - nb;
    });
    const rest = new Uint32Array(n);
    ids.forEach((id, i) => {
      rest[id] = i;
    });
    this.ranks = { prefix, commTail, commPlain, rest };
    return this.ranks;
  }

  /** Integer keys (most significant first) equal to the C order, or undefined when none are. */
  private radixKeys(): ((row: number) => number)[] | undefined {
    const rows = this.rows;
    const cfg = this.cfg;
    if (rows.oddHead.size > 0 || rows.rts.size > 0 || rows.rfreeTs.size > 0) return undefined;
    const rk = this.computeRanks();
    const tp = this.tmplPrefix;
    const tc = this.tmplComm;
    const keys: ((row: number) => number)[] = [];
    const textRows = cfg.cull === 0;
    for (const { key, sign } of cfg.sort) {
      const desc = sign < 0;
      const flip = (f: (r: number) => number) => (desc ? (r: number) => 0xffffffff - f(r) : f);
      switch (key) {
        case 'num':
          keys.push(flip((r) => rows.num.get(r)));
          break;
        case 'page_num':
          keys.push(
            flip(
              (r) =>
                ((textRows ? Math.imul(rows.num.get(r), this.rowPageNum(r)) : rows.pages.get(r)) +
                  0x80000000) >>>
                0,
            ),
          );
          break;
        case 'pid':
        case 'tgid': {
          const v = new Int32Array(rows.length);
          const col = textRows ? (key === 'pid' ? rows.pid : rows.tgid) : undefined;
          const rcol = key === 'pid' ? rows.rpid : rows.rtgid;
          for (let r = 0; r < rows.length; r++) v[r] = col ? col.get(r) : rcol.get(r);
          keys.push(flip((r) => (v[r]! + 0x80000000) >>> 0));
          break;
        }
        case 'comm':
          keys.push(flip((r) => rk.commPlain[textRows ? tc[rows.tmpl.get(r)]! : rows.rcomm.get(r)]!));
          break;
        case 'stacktrace': {
          const col = textRows ? rows.rest : rows.rrest;
          keys.push(flip((r) => rk.rest[col.get(r)]!));
          break;
        }
        case 'allocator':
          keys.push(flip((r) => rows.alloc.get(r)));
          break;
        case 'txt':
          if (!textRows) return undefined;
          for (const f of this.textKeys(rk, tp, tc)) keys.push(flip(f));
          break;
        case 'ts': {
          if (!textRows) return undefined;
          // ts as a number: digit count, then the digits (no leading zeros).
          const w = rows.wide;
          const tc3 = rows.tsCols;
          if (tc3) {
            keys.push(flip((r) => tc3[0].get(r)));
            keys.push(flip((r) => Math.floor(tc3[1].get(r) / 0x10000)));
            keys.push(flip((r) => tc3[1].get(r) % 0x10000));
            keys.push(flip((r) => Math.floor(tc3[2].get(r) / 0x10000)));
            keys.push(flip((r) => tc3[2].get(r) % 0x10000));
          } else if (w) {
            keys.push(flip((r) => w[4].get(r)));
            keys.push(flip((r) => Math.floor(w[0].get(r) / 0x10000)));
            keys.push(flip((r) => w[0].get(r) % 0x10000));
            keys.push(flip((r) => Math.floor(w[1].get(r) / 0x10000)));
            keys.push(flip((r) => w[1].get(r) % 0x10000));
          } else return undefined;
          break;
        }
        case 'free_ts':
          return undefined;
      }
    }
    // Then the cull order (a total order on the keys).
    if (textRows) keys.push(...this.textKeys(rk, tp, tc));
    else {
      const cull = cfg.cull;
      if (cull & CULL_STACKTRACE) keys.push((r) => rk.rest[rows.rest.get(r)]!);
      if (cull & CULL_PID) keys.push((r) => (rows.kpid.get(r) + 0x80000000) >>> 0);
      if (cull & CULL_TGID) keys.push((r) => (rows.ktgid.get(r) + 0x80000000) >>> 0);
      if (cull & CULL_COMM) keys.push((r) => rk.commPlain[rows.kcomm.get(r)]!);
      if (cull & CULL_UNRELEASE) return undefined;
      if (cull & CULL_ALLOCATOR) keys.push((r) => rows.alloc.get(r));
    }
    return keys;
  }

  /** compare_txt() as integer keys over canonical text rows. */
  private textKeys(
    rk: NonNullable<SortEngine['ranks']>,
    tp: readonly number[],
    tc: readonly number[],
  ): ((row: number) => number)[] {
    const rows = this.rows;
    const keys: ((row: number) => number)[] = [
      (r) => rk.prefix[tp[rows.tmpl.get(r)]!]!,
      (r) => lexCode(rows.pid.get(r)),
      (r) => lexCode(rows.tgid.get(r)),
      (r) => rk.commTail[tc[rows.tmpl.get(r)]!]!,
    ];
    const w = rows.wide;
    if (w) {
      // ts digits (lexical codes), then "\n" before ", free_ts", then free_ts digits.
      keys.push(
        (r) => Math.floor(w[0].get(r) / 0x10000),
        (r) => w[0].get(r) % 0x10000,
        (r) => Math.floor(w[1].get(r) / 0x10000),
        (r) => w[1].get(r) % 0x10000,
        (r) => rows.form.get(r) >>> 1,
        (r) => Math.floor(w[2].get(r) / 0x10000),
        (r) => w[2].get(r) % 0x10000,
        (r) => Math.floor(w[3].get(r) / 0x10000),
        (r) => w[3].get(r) % 0x10000,
      );
    }
    keys.push((r) => rk.rest[rows.rest.get(r)]!);
    return keys;
  }

  private rowPageNum(r: number): number {
    const t = this.rows.tmpl.get(r);
    if (t === NONE) return this.rows.oddPageNum.get(r)!;
    return this.pageNumOfPrefix(this.tmplPrefix[t]!);
  }

  /** The order of the rows; `scratch` (the lookup table, no longer needed) may be overwritten. */
  private sorted(scratch: Int32Array): Uint32Array {
    const n = this.rows.length;
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    const keys = this.radixKeys();
    if (keys) return radixSort(idx, keys, scratch);
    return this.comparatorSort(idx);
  }

  /** The general case: the C tool's comparators (texts built where ids cannot decide). */
  private comparatorSort(idx: Uint32Array): Uint32Array {
    const rows = this.rows;
    const cfg = this.cfg;
    const rk = this.computeRanks();
    const textRows = cfg.cull === 0;
    const is61 = this.plan.is61;
    const heads = new Map<number, string>();
    const head = (r: number): string => {
      let h = rows.oddHead.get(r) ?? heads.get(r);
      if (h === undefined) {
        const w = rows.wide;
        h = this.headText(
          rows.tmpl.get(r),
          rows.pid.get(r),
          rows.tgid.get(r),
          rows.form.get(r),
          w ? w[0].get(r) : 0,
          w ? w[1].get(r) : 0,
          w ? w[4].get(r) : 0,
          w ? w[2].get(r) : 0,
          w ? w[3].get(r) : 0,
          w ? w[5].get(r) : 0,
        );
        heads.set(r, h);
      }
      return h;
    };
    const restCol = textRows ? rows.rest : rows.rrest;
    const restCmp = (a: number, b: number) => rk.rest[restCol.get(a)]! - rk.rest[restCol.get(b)]!;
    const headOf = textRows ? head : (r: number) => rows.rhead.get(r) ?? '';
    const txt = (a: number, b: number) => strcmp(headOf(a), headOf(b)) || restCmp(a, b);
    const keyRestCmp = (a: number, b: number) => rk.rest[rows.rest.get(a)]! - rk.rest[rows.rest.get(b)]!;
    const pidOf = (r: number) => (textRows ? this.textField(r, 'pid') : rows.rpid.get(r));
    const tgidOf = (r: number) => (textRows ? this.textField(r, 'tgid') : rows.rtgid.get(r));
    const commOf = (r: number) => (textRows ? this.textComm(r) : this.dict.comms.text(rows.rcomm.get(r)));
    const pagesOf = (r: number) =>
      textRows ? Math.imul(rows.num.get(r), this.rowPageNum(r)) : rows.pages.get(r);
    const tsOf = (r: number): bigint => {
      const t = rows.rts.get(r);
      if (t !== undefined) return t;
      const c = rows.tsCols;
      if (c) return wideValue(c[1].get(r), c[2].get(r), c[0].get(r));
      const w = rows.wide!;
      return wideValue(w[0].get(r), w[1].get(r), w[4].get(r));
    };
    const freeTsOf = (r: number): bigint => rows.rfreeTs.get(r) ?? 0n;
    const keyCmp = (k: SortKeyName): ((a: number, b: number) => number) => {
      switch (k) {
        case 'num':
          return (a, b) => rows.num.get(a) - rows.num.get(b);
        case 'page_num':
          return (a, b) => pagesOf(a) - pagesOf(b);
        case 'pid':
          return (a, b) => pidOf(a) - pidOf(b);
        case 'tgid':
          return (a, b) => tgidOf(a) - tgidOf(b);
        case 'comm':
          return (a, b) => strcmp(commOf(a), commOf(b));
        case 'stacktrace':
          return restCmp;
        case 'txt':
          return txt;
        case 'allocator':
          return (a, b) => rows.alloc.get(a) - rows.alloc.get(b);
        case 'ts':
          // 6.6 and older never return 0 (an inconsistent comparator; glibc's merge sort
          // then decides, which glibcMsort reproduces).
          return is61
            ? (a, b) => (tsOf(a) < tsOf(b) ? -1 : 1)
            : (a, b) => {
                const x = tsOf(a);
                const y = tsOf(b);
                return x < y ? -1 : x > y ? 1 : 0;
              };
        case 'free_ts':
          return (a, b) => (freeTsOf(a) < freeTsOf(b) ? -1 : 1);
      }
    };
    const sortCmps = cfg.sort.map((k) => ({ cmp: keyCmp(k.key), sign: k.sign }));
    const bySort = (a: number, b: number) => {
      for (const { cmp, sign } of sortCmps) {
        const c = sign * cmp(a, b);
        if (c !== 0) return c;
      }
      return 0;
    };
    let byCull: (a: number, b: number) => number;
    if (textRows) byCull = txt;
    else {
      const cull = cfg.cull;
      const cmps: ((a: number, b: number) => number)[] = [];
      if (cull & CULL_STACKTRACE) cmps.push(keyRestCmp);
      if (cull & CULL_PID) cmps.push((a, b) => rows.kpid.get(a) - rows.kpid.get(b));
      if (cull & CULL_TGID) cmps.push((a, b) => rows.ktgid.get(a) - rows.ktgid.get(b));
      if (cull & CULL_COMM)
        cmps.push((a, b) => rk.commPlain[rows.kcomm.get(a)]! - rk.commPlain[rows.kcomm.get(b)]!);
      if (cull & CULL_UNRELEASE) cmps.push((a, b) => rows.kflag.get(b) - rows.kflag.get(a));
      if (cull & CULL_ALLOCATOR) cmps.push((a, b) => rows.alloc.get(a) - rows.alloc.get(b));
      byCull = (a, b) => {
        for (const cmp of cmps) {
          const c = cmp(a, b);
          if (c !== 0) return c;
        }
        return 0;
      };
    }
    const list = Array.from(idx);
    if (is61 && (this.sortKeys.has('ts') || this.sortKeys.has('free_ts'))) {
      // 6.6's ts comparators never return 0: replay glibc's two sorts exactly.
      list.sort(byCull);
      glibcMsort(list, bySort);
    } else {
      // Two stable sorts (cull order, then sort keys) equal one sort by both: the cull
      // keys are distinct, so this is a total order and any sort gives the same result.
      list.sort((a, b) => bySort(a, b) || byCull(a, b));
    }
    idx.set(list);
    return idx;
  }

  private textField(r: number, f: 'pid' | 'tgid'): number {
    const rows = this.rows;
    const odd = rows.oddFields.get(r);
    if (odd !== undefined) return odd[f];
    return f === 'pid' ? rows.pid.get(r) : rows.tgid.get(r);
  }

  private textComm(r: number): string {
    const rows = this.rows;
    const odd = rows.oddFields.get(r);
    if (odd !== undefined) return odd.comm;
    return this.dict.comms.text(this.tmplComm[rows.tmpl.get(r)]!);
  }

  // ---- output ----

  /**
   * Puts a rest's text (its lines, each with its "\n") at b[p...] and returns the position
   * after it; `bytes(id)` is room enough for it. A stack is written from one copy of its text
   * (a single copy into the output) or line by line from the distinct lines (one small copy a
   * line, about fifteen a record). The copies hold at most `restCopyBytes` (4 MiB; a limit of
   * 32 MiB, which copied every stack of a 1 GiB dump of 2 million records, took 30 MB more at
   * its peak for about 3% less time in an earlier session), given to the stacks of the most rows
   * (a stack of one row gains nothing): on the 1 GiB bench dump (63,694 stacks, 29.9 MB of
   * text) 4 MiB holds the stacks of 87% of the rows. Default sort of that dump to /dev/null,
   * one thread, 7 alternating runs: median 3.89 s (user 3.81) and 153 MB against 4.07 s
   * (user 4.04) and 147 MB with every stack line by line; copying every stack took 182 MB.
   */
  private restWriter(): { bytes: (id: number) => number; put: (b: Buffer, p: number, id: number) => number } {
    const d = this.dict;
    const r = d.rests;
    const lines = d.lines;
    const restLines = r.lines.data;
    let lineBytes = 0;
    for (let i = 0; i < lines.size; i++) lineBytes += lines.ends.data[i]! - lines.starts.data[i]! + 1;
    const withNl = Buffer.allocUnsafe(lineBytes);
    const lineViews: Uint8Array[] = new Array(lines.size);
    let at = 0;
    for (let i = 0; i < lines.size; i++) {
      const s = at;
      at += lines.arena.data.copy(withNl, at, lines.starts.data[i]!, lines.ends.data[i]!);
      withNl[at++] = 10;
      lineViews[i] = withNl.subarray(s, at);
    }
    const putLines = (b: Buffer, p: number, id: number): number => {
      const s = r.lineStart.get(id);
      const n = r.lineCount.get(id);
      for (let j = 0; j < n; j++) p = put(b, p, lineViews[restLines[s + j]!]!);
      return p;
    };
    // A rest's length counts its lines' "\n"s but one, when the last line has none.
    const bytes = (id: number) => r.len.get(id) + 1;
    let total = 0;
    for (let i = 0; i < r.size; i++) total += bytes(i);
    let copied: Uint32Array;
    if (total <= this.restCopyBytes) copied = Uint32Array.from({ length: r.size }, (_, i) => i);
    else {
      // Rows per stack (each row writes its stack once), the stacks by it, most first.
      const rowsOf = new Uint32Array(r.size);
      const rows = this.rows;
      for (let row = 0; row < rows.length; row++) {
        const id = rows.rest.get(row);
        if (id < rowsOf.length) rowsOf[id] = rowsOf[id]! + 1;
      }
      const ids = Uint32Array.from({ length: r.size }, (_, i) => i).sort(
        (a, b) => rowsOf[b]! - rowsOf[a]! || a - b,
      );
      let room = this.restCopyBytes;
      let n = 0;
      for (let i = 0; i < ids.length && room > 0; i++) {
        const id = ids[i]!;
        // A stack of one row gains nothing from a copy (the copy is made line by line).
        if (rowsOf[id]! < 2) break;
        if (bytes(id) > room) continue;
        room -= bytes(id);
        ids[n++] = id;
      }
      copied = ids.subarray(0, n);
    }
    if (copied.length === 0) return { bytes, put: putLines };
    let size = 0;
    for (let i = 0; i < copied.length; i++) size += bytes(copied[i]!);
    const arena = Buffer.allocUnsafe(size);
    const restViews: (Uint8Array | undefined)[] = new Array(r.size);
    at = 0;
    for (let i = 0; i < copied.length; i++) {
      const id = copied[i]!;
      const s = at;
      at = putLines(arena, at, id);
      restViews[id] = arena.subarray(s, at);
    }
    return {
      bytes,
      put: (b, p, id) => {
        const v = restViews[id];
        return v === undefined ? putLines(b, p, id) : put(b, p, v);
      },
    };
  }

  private output(order: Uint32Array): void {
    const rows = this.rows;
    const cfg = this.cfg;
    const { cull, filter } = cfg;
    const d = this.dict;
    const out = new Out(this.io.write, this.io.writeDone === true, this.io.buffers);
    const allocTexts = new Map<number, string>();
    const allocText = (a: number) => {
      let t = allocTexts.get(a);
      if (t === undefined) {
        t = allocatorText(a);
        allocTexts.set(a, t);
      }
      return t;
    };
    // Per template: "PREFIX, pid " and " (COMM), ts "; per allocator: " pages, allocated by ...:\n".
    const tmplHead: Uint8Array[] = [];
    const tmplComm: Uint8Array[] = [];
    for (let t = 0; t < this.tmplPrefix.length; t++) {
      tmplHead.push(Buffer.from(`${d.prefixes.text(this.tmplPrefix[t]!)}, pid `, 'latin1'));
      tmplComm.push(Buffer.from(` (${d.comms.text(this.tmplComm[t]!)}), ts `, 'latin1'));
    }
    const pagesAlloc = new Map<number, Buffer>();
    const pagesAllocView = (a: number) => {
      let v = pagesAlloc.get(a);
      if (v === undefined) {
        v = Buffer.from(` pages, ${allocatorText(a)}:\n`, 'latin1');
        pagesAlloc.set(a, v);
      }
      return v;
    };
    // The usual row's constant runs: " pages, ALLOCATOR:\nPREFIX, pid " per allocator and
    // template, " (COMM), ts  ns\n" per template (one copy each, not two).
    const allocHead: Uint8Array[][] = [];
    const allocHeadView = (a: number, t: number) => {
      let byTmpl = allocHead[a];
      if (byTmpl === undefined) {
        byTmpl = [];
        allocHead[a] = byTmpl;
      }
      let v = byTmpl[t];
      if (v === undefined) {
        v = Buffer.concat([pagesAllocView(a), tmplHead[t]!]);
        byTmpl[t] = v;
      }
      return v;
    };
    const commNs = tmplComm.map((c) => Buffer.concat([c, NS_NL]));
    const rest = this.restWriter();
    const writeRest = (id: number) => {
      out.room(rest.bytes(id));
      out.p = rest.put(out.buf, out.p, id);
    };
    const comms = d.comms;
    const table = rows.table;
    let touched = 0;
    for (let i = 0; i < order.length; i++) {
      // Rows come in sorted order, scattered over the table: bring the next ones in at once.
      if (i === touched) {
        touched = Math.min(order.length, i + TOUCH_ROWS);
        table.touch(order, i, touched);
      }
      const row = order[i]!;
      const num = rows.num.get(row);
      if (cull === 0) {
        const tmpl = rows.tmpl.get(row);
        const pages = Math.imul(num, this.rowPageNum(row));
        const form = tmpl === NONE ? 0 : rows.form.get(row);
        if (form === 0 && tmpl !== NONE && pages >= 0) {
          // The usual row, written in place after one check for room: its stack from one copy
          // of it, or line by line.
          const head = allocHeadView(rows.alloc.get(row), tmpl);
          const comm = commNs[tmpl]!;
          const restId = rows.rest.get(row);
          out.room(80 + head.length + comm.length + rest.bytes(restId));
          const b = out.buf;
          let p = putInt(b, out.p, num);
          p = put(b, p, TIMES);
          p = putInt(b, p, pages);
          p = put(b, p, head);
          p = putInt(b, p, rows.pid.get(row));
          p = put(b, p, TGID);
          p = putInt(b, p, rows.tgid.get(row));
          p = put(b, p, comm);
          p = rest.put(b, p, restId);
          b[p++] = 10;
          out.p = p;
          continue;
        }
        out.int(num);
        out.view(TIMES);
        out.int(pages);
        out.view(pagesAllocView(rows.alloc.get(row)));
        if (tmpl === NONE) out.ascii(rows.oddHead.get(row)!);
        else {
          out.view(tmplHead[tmpl]!);
          out.int(rows.pid.get(row));
          out.view(TGID);
          out.int(rows.tgid.get(row));
          out.view(tmplComm[tmpl]!);
          const w = rows.wide;
          if (form & 1) {
            const n3 = w![4].get(row);
            out.code(w![0].get(row), 10);
            if (n3 > 10) out.code(w![1].get(row), 10);
          }
          if (form & 2) {
            const n4 = w![5].get(row);
            out.view(NS_FREE_TS);
            out.code(w![2].get(row), 10);
            if (n4 > 10) out.code(w![3].get(row), 10);
          }
          out.view(NS_NL);
        }
        writeRest(rows.rest.get(row));
        out.byte(10);
      } else {
        let s = `${num} times, ${rows.pages.get(row)} pages`;
        if (cull & CULL_PID || filter & FILTER_PID) s += `, PID ${rows.rpid.get(row)}`;
        if (cull & CULL_TGID || filter & FILTER_TGID) s += `, TGID ${rows.rtgid.get(row)}`;
        if (cull & CULL_COMM || filter & FILTER_COMM)
          s += `, task_comm_name: ${comms.text(rows.rcomm.get(row))}`;
        if (cull & CULL_ALLOCATOR) s += `, ${allocText(rows.alloc.get(row))}`;
        if (cull & CULL_UNRELEASE)
          s += ` (${(rows.rfreeTs.get(row) ?? 0n) !== 0n ? 'UNRELEASED' : 'RELEASED'})`;
        if (cull & CULL_STACKTRACE) {
          out.ascii(`${s}:\n`);
          writeRest(rows.rest.get(row));
        } else out.ascii(s);
        out.byte(10);
      }
    }
    out.flush();
  }
}

/**
 * glibc 2.36's qsort (msort.c, msort_with_tmp): top-down merge sort, left half n/2,
 * taking from the left run while cmp(left, right) <= 0. Reproduced exactly so that
 * inconsistent comparators order records as the C tool does.
 */
export function glibcMsort<T>(items: T[], cmp: (a: T, b: T) => number): T[] {
  const tmp: T[] = new Array(items.length);
  const rec = (lo: number, n: number): void => {
    if (n <= 1) return;
    const n1 = n >>> 1;
    const n2 = n - n1;
    rec(lo, n1);
    rec(lo + n1, n2);
    let i = lo;
    let j = lo + n1;
    const iEnd = lo + n1;
    const jEnd = lo + n;
    let k = 0;
    while (i < iEnd && j < jEnd) {
      if (cmp(items[i]!, items[j]!) <= 0) tmp[k++] = items[i++]!;
      else tmp[k++] = items[j++]!;
    }
    while (i < iEnd) tmp[k++] = items[i++]!;
    for (let x = 0; x < k; x++) items[lo + x] = tmp[x]!;
  };
  rec(0, items.length);
  return items;
}
