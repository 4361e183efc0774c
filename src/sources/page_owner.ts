/**
 * /sys/kernel/debug/page_owner: one record per allocated page block, separated by a
 * blank line. Record formats by kernel version (mm/page_owner.c, print_page_owner):
 *
 *   4.4:        Page allocated via order %u, mask 0x%x
 *               PFN %lu Block %lu type %d %s...            (flag letters)
 *   4.6-5.8:    Page allocated via order %u, mask %#x(%pGg)
 *               PFN %lu type %s Block %lu type %s Flags %#lx(%pGp)
 *   5.9-5.10:   ..., pid %d                                 (pid added)
 *   5.11-5.17:  ..., pid %d, ts %llu ns, free_ts %llu ns
 *   5.18:       ..., pid %d (%s), ts %llu ns, free_ts %llu ns (comm)
 *   5.19-6.6:   ..., pid %d, tgid %d (%s), ts %llu ns, free_ts %llu ns
 *   6.7+:       ..., pid %d, tgid %d (%s), ts %llu ns      (free_ts dropped)
 *   6.9+:       PFN 0x%lx type %s Block %lu type %s Flags %pGp (hex PFN)
 * then the stack (` %pS` per frame), and optionally
 *   Page has been migrated, last migrate reason: %s   (4.6+; `%d` before)
 *   Charged %sto %smemcg %s  /  Slab cache page        (6.8+ memcg lines)
 *
 * The scanner works on Buffer chunks in a reused buffer (no readline), and hands out
 * blocks as byte ranges; memory is bounded by the largest record (at most
 * MAX_RECORD_BYTES), not by the input.
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { type MemsleuthError, parseError } from '../model/errors.js';
import { type Frame, parseFrame } from '../model/frame.js';
import {
  formatLimit,
  kernelLines,
  PAGE_ORDER_LIMIT,
  type ParseOptions,
  safeHex,
  safeNumber,
  truncated,
} from './text.js';

/** Where bytes come from: a file path (read with a reused buffer) or a stream of chunks. */
export type PageOwnerInput = string | Readable | AsyncIterable<Buffer | string>;

/** One block: the bytes of a record without its terminating blank line. */
export interface RawBlock {
  buf: Buffer;
  /** First byte of the block. */
  start: number;
  /** One past the newline of the block's last line (== start for an empty block). */
  end: number;
  /** Byte offset of `start` in the whole input. */
  offset: number;
  /** True for the final block when the input did not end with a blank line. */
  unterminated: boolean;
  /** Changes whenever the buffer's contents move: positions from before are stale. */
  generation: number;
}

export interface ScanProgress {
  bytes: number;
  blocks: number;
}

/**
 * The longest page_owner record accepted: 1 MiB. A record is a header, a PFN line and at
 * most PAGE_OWNER_STACK_DEPTH (16) frames, a few KB; page_owner_sort stops at 128 KiB.
 * Input without blank lines (/dev/zero, a binary file) ends here with an error.
 */
export const MAX_RECORD_BYTES = 1 << 20;

/** The start of a page_owner dump: a file whose first bytes match it is one. */
export const PAGE_OWNER_HEAD = /^Page allocated via order \d+/;

export interface ScanOptions {
  /** Longest record (block) accepted, in bytes (default MAX_RECORD_BYTES). */
  maxRecordBytes?: number;
  /** Name of the input in the error for an over-long record. */
  file?: string;
  /** Called now and then (every few MB) with the bytes and blocks read so far. */
  onProgress?: (p: ScanProgress) => void;
  /** Size of the reused read buffer (default 4 MiB). */
  chunkBytes?: number;
  /** Called before the buffer's contents move (positions handed out become stale). */
  beforeShift?: () => void;
}

async function* chunksOf(input: PageOwnerInput, size: number): AsyncGenerator<Buffer> {
  if (typeof input === 'string') {
    const fh = await open(input, 'r');
    // One buffer for every read: the scanner copies each chunk before asking for the next.
    const b = Buffer.allocUnsafe(size);
    try {
      for (;;) {
        const { bytesRead } = await fh.read(b, 0, size, null);
        if (bytesRead === 0) return;
        yield b.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }
  for await (const c of input as AsyncIterable<Buffer | string>) {
    yield typeof c === 'string' ? Buffer.from(c, 'latin1') : c;
  }
}

/**
 * The error for a record longer than `max`, naming the input and the record's first byte.
 * Found is the same whether its blank line comes later or never, and however the input
 * was cut into chunks: no blank line within the limit.
 */
export function recordTooLong(file: string, offset: number, max = MAX_RECORD_BYTES): MemsleuthError {
  return parseError(
    file,
    undefined,
    `records of at most ${formatLimit(max)}, each followed by a blank line`,
    `no blank line within ${formatLimit(max)}`,
    { offset, hint: 'is this the output of /sys/kernel/debug/page_owner?' },
  );
}

/**
 * Split the input into blank-line-separated blocks exactly as page_owner_sort's
 * read_block() does: a block ends at a line that is only "\n"; an empty line at the
 * start of a block is an empty block. A block longer than `maxRecordBytes` (1 MiB; the C
 * tool stops at 128 KiB) is an error, also when its end was never found.
 */
export async function scanBlocks(
  input: PageOwnerInput,
  onBlock: (b: RawBlock) => void,
  opts: ScanOptions = {},
): Promise<ScanProgress> {
  const chunkBytes = opts.chunkBytes ?? 4 << 20;
  const maxRecord = opts.maxRecordBytes ?? MAX_RECORD_BYTES;
  // The working buffer holds the unfinished tail of the previous chunk plus the new one.
  let work = Buffer.allocUnsafe(chunkBytes * 2);
  let have = 0; // bytes in work
  let base = 0; // input offset of work[0]
  let blocks = 0;
  // Where the search for the unfinished block's end resumes: bytes before it hold no "\n\n".
  let resume = 0;
  let lastReport = 0;
  const block: RawBlock = { buf: work, start: 0, end: 0, offset: 0, unterminated: false, generation: 0 };
  for await (const chunk of chunksOf(input, chunkBytes)) {
    if (have + chunk.length > work.length) {
      const bigger = Buffer.allocUnsafe(Math.max(work.length * 2, have + chunk.length));
      work.copy(bigger, 0, 0, have);
      work = bigger;
    }
    chunk.copy(work, have);
    have += chunk.length;
    block.buf = work;
    block.generation++;
    let pos = 0;
    for (;;) {
      if (pos >= have) break;
      if (work[pos] === 10) {
        block.start = pos;
        block.end = pos;
        block.offset = base + pos;
        blocks++;
        onBlock(block);
        pos++;
        continue;
      }
      const e = work.indexOf('\n\n', Math.max(pos, resume));
      if (e < 0 || e + 1 >= have) {
        resume = have - 1;
        break;
      }
      if (e + 1 - pos > maxRecord) throw recordTooLong(opts.file ?? 'page_owner', base + pos, maxRecord);
      block.start = pos;
      block.end = e + 1;
      block.offset = base + pos;
      blocks++;
      onBlock(block);
      pos = e + 2;
    }
    // Keep the unfinished block at the start of the buffer.
    opts.beforeShift?.();
    if (pos > 0) {
      work.copy(work, 0, pos, have);
      have -= pos;
      base += pos;
      resume = Math.max(0, resume - pos);
    }
    if (have > maxRecord) throw recordTooLong(opts.file ?? 'page_owner', base, maxRecord);
    if (opts.onProgress && base - lastReport >= 8 << 20) {
      lastReport = base;
      opts.onProgress({ bytes: base + have, blocks });
    }
  }
  if (have > 0) {
    block.buf = work;
    block.generation++;
    block.start = 0;
    block.end = have;
    block.offset = base;
    block.unterminated = true;
    blocks++;
    onBlock(block);
  }
  const done = { bytes: base + have, blocks };
  opts.onProgress?.(done);
  return done;
}

/** One page_owner record, decoded. Fields absent in older kernels are undefined. */
export interface PageOwnerRecord {
  /** Allocation order: the block holds 2^order pages. */
  order: number;
  /** GFP mask as printed (`0x140cca`). */
  gfpMask: number;
  /** Flag names (`GFP_HIGHUSER_MOVABLE|__GFP_COMP`), 4.6+. */
  gfpFlags?: string;
  /** 5.9+. */
  pid?: number;
  /** 5.19+. */
  tgid?: number;
  /** Task command name, 5.18+. */
  comm?: string;
  /** Allocation time in ns since boot (5.11+); not exact beyond 2^53 ns (104 days of uptime). */
  tsNs?: number;
  /** Free time in ns of the previous use of this PFN (5.11-6.6). */
  freeTsNs?: number;
  /** Page frame number (decimal before 6.9, hex after). */
  pfn?: number;
  /** Migratetype of the allocation (`Unmovable`, `Movable`...). */
  migratetype?: string;
  /** Migratetype of the pageblock. */
  blockMigratetype?: string;
  /** Page flags as printed (`0x200(slab|zone=0)`). */
  pageFlags?: string;
  /** Allocation stack, innermost frame first (shared by records with the same stack: read-only). */
  frames: Frame[];
  /** Raw frame lines, as printed (without the leading space). */
  stackText: string;
  /** `Page has been migrated, last migrate reason: X` (4.6+). */
  migrateReason?: string;
  /** `Charged ... memcg NAME` / `Slab cache page` lines (6.8+). */
  memcg?: string;
  /** 2^order. */
  pages: number;
  /** Byte offset of the record in the input. */
  offset: number;
  /** 1-based line of the record's header. */
  line: number;
}

export interface PageOwnerParseOptions extends ParseOptions, ScanOptions {}

const HEADER =
  /^Page allocated via order (\d+), mask (0x[0-9a-fA-F]+|0|\d+)(?:\(([^)]*)\))?(?:, migratetype \d+)?(?:, pid (-?\d+)(?:, tgid (-?\d+))?(?: \((.*)\))?)?(?:, ts (\d+) ns)?(?:, free_ts (\d+) ns)?$/;
// 4.6+: `PFN 12434 type Unmovable Block 12 type Unmovable Flags 0x0(zone=0)`; 4.4 has no
// first `type` and prints the migratetype as a number followed by flag letters.
const PFN_LINE = /^PFN (0x[0-9a-fA-F]+|\d+) (?:type (\S+) )?Block (\d+) type (\S+)(?: Flags (.*)| (.*))?$/;
const HEADER_START = 'Page allocated via order ';

/**
 * Stream page_owner records to `onRecord`, in order. Memory is bounded by the largest
 * record. Garbage (a file that is not page_owner output, a record without its header
 * or PFN line, an unknown line) throws a parse error with byte offset and line.
 */
export async function parsePageOwner(
  input: PageOwnerInput,
  onRecord: (r: PageOwnerRecord) => void,
  opts: PageOwnerParseOptions = {},
): Promise<{ records: number; bytes: number }> {
  const file = opts.file ?? (typeof input === 'string' ? input : 'page_owner');
  const reader = new BlockReader(file, opts);
  const scan = await scanBlocks(
    input,
    (b) => {
      const r = reader.read(b);
      if (r) onRecord(r);
    },
    { ...opts, file },
  );
  if (scan.bytes === 0) throw parseError(file, 1, 'page_owner records', '<empty input>');
  return { records: reader.records, bytes: scan.bytes };
}

/**
 * Decodes blocks one after another (keeping the line count and a cache of parsed
 * stacks): what parsePageOwner does for each block, for callers with blocks of their own.
 */
export class BlockReader {
  /** 1-based line of the next block's first line. */
  line = 1;
  records = 0;
  // Records with the same stack share its parse: a dump has few distinct stacks.
  private readonly tails = new Map<string, Tail>();
  constructor(
    readonly file: string,
    private readonly opts: ParseOptions = {},
  ) {}

  /**
   * Decode a block (throws a parse error for anything that is not a page_owner record).
   * Undefined for a last record cut short, dropped with a warning under --lenient.
   */
  read(b: Pick<RawBlock, 'buf' | 'start' | 'end' | 'offset' | 'unterminated'>): PageOwnerRecord | undefined {
    const { file, tails } = this;
    const buf = b.buf;
    const startLine = this.line;
    const e = b.end;
    const extra = '';
    if (b.unterminated && buf.toString('latin1', b.start, b.start + HEADER_START.length) === HEADER_START) {
      // print_page_owner() ends every record with a blank line: without one, the dump was
      // cut short and the last record may miss frames. (Without a record header it is not
      // page_owner output at all: the header check below says so.)
      const text = buf.toString('latin1', b.start, Math.min(b.end, b.start + 200));
      truncated(
        file,
        startLine,
        'a blank line after the last record (page_owner ends every record with one)',
        text,
        this.opts,
        `dropped the last record (byte ${b.offset}, ${b.end - b.start} bytes): no blank line after it`,
      );
      return undefined;
    }
    if (e === b.start) {
      throw parseError(file, startLine, `a record header "${HEADER_START}N, mask ..."`, '<empty line>', {
        offset: b.offset,
      });
    }
    this.records++;
    let nl = buf.indexOf(10, b.start);
    if (nl < 0 || nl >= e) nl = e;
    const head = buf.toString('latin1', b.start, nl);
    const r = parseHeader(head, file, startLine, b.offset);
    let p = nl + 1;
    let lines = 1;
    if (p < e && buf[p] === 80 && buf[p + 1] === 70 && buf[p + 2] === 78 && buf[p + 3] === 32) {
      let nl2 = buf.indexOf(10, p);
      if (nl2 < 0 || nl2 >= e) nl2 = e;
      parsePfn(r, buf.toString('latin1', p, nl2), file, startLine + 1, b.offset);
      p = nl2 + 1;
      lines++;
    }
    const tailText = p < e ? buf.toString('latin1', p, e) + extra : extra;
    let t = tails.get(tailText);
    if (t === undefined) {
      t = parseTail(tailText, file, startLine + lines, b.offset);
      if (t.pfnLine === undefined) {
        if (tails.size >= 100_000) tails.clear();
        tails.set(tailText, t);
      }
    }
    if (t.pfnLine !== undefined) parsePfn(r, t.pfnLine, file, startLine + lines, b.offset);
    r.frames = t.frames;
    r.stackText = t.stackText;
    if (t.migrateReason !== undefined) r.migrateReason = t.migrateReason;
    if (t.memcg !== undefined) r.memcg = t.memcg;
    this.line += lines + t.lines + 1;
    return r;
  }
}

/**
 * Check the lines after a record's header and PFN line (`text`: lines each ending in
 * "\n"): stack frames and the lines kernels add. Returns the parsed frames; throws a parse
 * error naming the first line that is none of them (`firstLine` is its line number).
 */
export function checkRecordTail(text: string, file: string, firstLine: number, offset: number): Frame[] {
  return parseTail(text, file, firstLine, offset).frames;
}

/** What follows the header and PFN lines: the stack and the optional extra lines. */
interface Tail {
  frames: Frame[];
  stackText: string;
  migrateReason?: string;
  memcg?: string;
  /** A PFN line found among them (not where kernels print it): never cached. */
  pfnLine?: string;
  lines: number;
}

function parseHeader(head: string, file: string, line: number, offset: number): PageOwnerRecord {
  const m = HEADER.exec(head);
  if (!m) {
    throw parseError(
      file,
      line,
      `a page_owner record header "${HEADER_START}N, mask 0x..., pid N, tgid N (comm), ts N ns"`,
      head,
      { offset, hint: 'is this the output of /sys/kernel/debug/page_owner?' },
    );
  }
  const num = (token: string, what: string) => safeNumber(token, file, line, what);
  const order = num(m[1]!, 'the order');
  if (order > PAGE_ORDER_LIMIT)
    throw parseError(file, line, `an order of at most ${PAGE_ORDER_LIMIT}`, head, { offset });
  const r: PageOwnerRecord = {
    order,
    gfpMask: m[2]!.startsWith('0x') ? safeHex(m[2]!, file, line, 'the mask') : num(m[2]!, 'the mask'),
    frames: [],
    stackText: '',
    pages: 2 ** order,
    offset,
    line,
  };
  if (m[3] !== undefined) r.gfpFlags = m[3];
  if (m[4] !== undefined) r.pid = num(m[4], 'the pid');
  if (m[5] !== undefined) r.tgid = num(m[5], 'the tgid');
  if (m[6] !== undefined) r.comm = m[6];
  // Nanoseconds since boot pass 2^53 after 104 days of uptime: kept as the nearest double.
  if (m[7] !== undefined) r.tsNs = Number(m[7]);
  if (m[8] !== undefined) r.freeTsNs = Number(m[8]);
  return r;
}

function parsePfn(r: PageOwnerRecord, l: string, file: string, line: number, offset: number): void {
  const p = PFN_LINE.exec(l);
  if (!p) throw parseError(file, line, '"PFN N type T Block N type T Flags F"', l, { offset });
  r.pfn = p[1]!.startsWith('0x')
    ? safeHex(p[1]!, file, line, 'the PFN')
    : safeNumber(p[1]!, file, line, 'the PFN');
  if (p[2] !== undefined) r.migratetype = p[2];
  r.blockMigratetype = p[4]!;
  r.pageFlags = p[5] ?? p[6] ?? '';
}

function parseTail(text: string, file: string, firstLine: number, offset: number): Tail {
  const lines = text.split('\n');
  lines.pop(); // the block ends with "\n"
  const t: Tail = { frames: [], stackText: '', lines: lines.length };
  const stack: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const ln = firstLine + i;
    if (l.startsWith(' ')) {
      const f = parseFrame(l);
      if (!f) throw parseError(file, ln, 'a stack frame " func+0xOFF/0xLEN [module]"', l, { offset });
      t.frames.push(f);
      stack.push(l.slice(1));
    } else if (l.startsWith('PFN ')) {
      t.pfnLine = l;
    } else if (l.startsWith('Page has been migrated, last migrate reason: ')) {
      t.migrateReason = l.slice('Page has been migrated, last migrate reason: '.length);
    } else if (l.startsWith('Charged ') || l === 'Slab cache page') {
      t.memcg = l;
    } else if (l.startsWith('handle:') || l.startsWith('free_handle:')) {
      // Debug lines some vendor kernels add; carry no accounting information.
    } else {
      throw parseError(file, ln, 'a stack frame, PFN line or "Page has been migrated" line', l, {
        offset,
        hint: 'records must be separated by one blank line',
      });
    }
  }
  t.stackText = stack.join('\n');
  return t;
}

/** One entry of /sys/kernel/debug/page_owner_stacks/show_stacks (6.9+). */
export interface PageOwnerStack {
  frames: Frame[];
  /** Base pages currently allocated from this stack. */
  nrBasePages: number;
  line: number;
}

/**
 * Parse show_stacks (mm/page_owner.c stack_print(), 6.9+): frames as ` %pS`, then
 * `nr_base_pages: %d` and a blank line. Entries below page_owner_stacks/count_threshold
 * are not printed by the kernel.
 */
export function parsePageOwnerStacks(text: string, opts: ParseOptions = {}): PageOwnerStack[] {
  const file = opts.file ?? 'page_owner_stacks/show_stacks';
  const out: PageOwnerStack[] = [];
  // An empty file is valid: no stack holds more pages than count_threshold.
  if (text === '') return out;
  const lines = kernelLines(text, file, 'stack frames and "nr_base_pages: N"', opts).map((l) => l.text);
  let frames: Frame[] = [];
  let first = 0;
  let expectBlank = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const ln = i + 1;
    if (expectBlank) {
      if (l !== '') throw parseError(file, ln, 'a blank line after nr_base_pages', l);
      expectBlank = false;
      continue;
    }
    if (l.startsWith(' ')) {
      const f = parseFrame(l);
      if (!f) throw parseError(file, ln, 'a stack frame " func+0xOFF/0xLEN"', l);
      if (frames.length === 0) first = ln;
      frames.push(f);
    } else if (l.startsWith('nr_base_pages: ')) {
      const v = l.slice('nr_base_pages: '.length);
      if (!/^-?\d+$/.test(v)) throw parseError(file, ln, 'nr_base_pages: N', l);
      out.push({
        frames,
        nrBasePages: safeNumber(v, file, ln, 'nr_base_pages'),
        line: frames.length ? first : ln,
      });
      frames = [];
      expectBlank = true;
    } else {
      throw parseError(file, ln, 'a stack frame or "nr_base_pages: N"', l, {
        hint: 'is this /sys/kernel/debug/page_owner_stacks/show_stacks?',
      });
    }
  }
  if (frames.length)
    throw parseError(file, lines.length, 'nr_base_pages: N after the stack', '<end of input>');
  if (text.trim() === '') return out;
  return out;
}
