import { parseError } from '../model/errors.js';
import { kernelLines, MAX_LINE_BYTES, type ParseOptions, safeNumber, truncated } from './text.js';

/** One `Key: value [kB]` line of /proc/meminfo. */
export interface MeminfoField {
  /** The kernel's name, e.g. `MemTotal`, `Active(anon)`, `HugePages_Total`. */
  name: string;
  /** Bytes for `kB` fields (kB × 1024), the raw number for unitless ones. */
  value: number;
  unit: 'bytes' | 'count';
  /** 1-based line number in the file. */
  line: number;
}

export interface Meminfo {
  /** Every field, in file order. */
  fields: MeminfoField[];
  /** Every `kB` field converted to bytes, e.g. `bytes.MemTotal`. */
  bytes: Record<string, number | undefined>;
  /** Unitless fields: HugePages_Total/Free/Rsvd/Surp (and ReverseMaps on 2.5). */
  counts: Record<string, number | undefined>;
  /** Node number, for /sys/devices/system/node/nodeN/meminfo (`Node 0 MemTotal: ...`). */
  node?: number;
}

// fs/proc/meminfo.c prints `%-*s%8lu kB` (show_val_kb since 4.12, `"MemTotal: %8lu kB\n"` before);
// hugetlb_report_meminfo prints the HugePages_* counts without a unit.
// drivers/base/node.c prints the same names behind `Node %d `.
// Names are letters, digits, `_` and parentheses (`Active(anon)`).
// Values are `%lu`; a 2.6.29 DirectMap line printed a wrapped-negative 18446744073709551613
// (a counter gone below zero, printed unsigned): values of 2^64 - 2^53 and above are read as
// the negative number they encode. Anything else above 2^53 is not a size and is refused.
const LINE = /^(?:Node (\d+) )?([A-Za-z0-9_()]+):\s+(\d+)(?: (kB))?\s*$/;
const EXPECTED = '"Name:   <number> kB" or "Name:   <number>" (e.g. "MemTotal:  494436 kB")';

/**
 * Fields every /proc/meminfo prints, from 2.5 to 6.18 on every architecture and config
 * (fs/proc/meminfo.c prints them unconditionally; checked against the 2.5, 2.6.8, 2.6.29,
 * 3.6, 6.1, 6.12 and 6.18 captures in test/fixtures). A file without one of them was cut
 * short at a line boundary.
 */
export const MEMINFO_ALWAYS = [
  'MemTotal',
  'MemFree',
  'Buffers',
  'Cached',
  'SwapCached',
  'Active',
  'Inactive',
  'SwapTotal',
  'SwapFree',
  'Dirty',
  'Writeback',
  'Mapped',
  'Slab',
  'Committed_AS',
  'PageTables',
  'VmallocTotal',
  'VmallocUsed',
  'VmallocChunk',
] as const;

/** The same for a node's meminfo (drivers/base/node.c node_read_meminfo, 2.6 to 6.18). */
export const NODE_MEMINFO_ALWAYS = [
  'MemTotal',
  'MemFree',
  'MemUsed',
  'Active',
  'Inactive',
  'Dirty',
  'Writeback',
  'Mapped',
  'Slab',
] as const;

/**
 * Fields that count pages of RAM the kernel manages, so never more than MemTotal (itself
 * totalram_pages). Left out on purpose: swap, commit and vmalloc address-space sizes,
 * DirectMap (the linear map covers reserved memory too), Hugetlb (boot-time gigantic pages
 * are outside MemTotal) and Zswapped (the uncompressed size of compressed pages).
 */
const WITHIN_MEMTOTAL = new Set([
  'MemFree',
  'MemAvailable',
  'MemUsed',
  'Buffers',
  'Cached',
  'SwapCached',
  'Active',
  'Inactive',
  'Active(anon)',
  'Inactive(anon)',
  'Active(file)',
  'Inactive(file)',
  'Unevictable',
  'Mlocked',
  'Dirty',
  'Writeback',
  'AnonPages',
  'Mapped',
  'Shmem',
  'KReclaimable',
  'Slab',
  'SReclaimable',
  'SUnreclaim',
  'KernelStack',
  'PageTables',
  'SecPageTables',
  'FilePages',
]);

const U64_WRAP = 2n ** 64n;
const WRAP_FLOOR = U64_WRAP - BigInt(Number.MAX_SAFE_INTEGER);

/** A `%lu` value: below 2^53 as it is, a wrapped negative as the negative, else an error. */
function lu(token: string, file: string, line: number, t: string): number {
  const n = Number(token);
  if (Number.isSafeInteger(n)) return n;
  const big = BigInt(token);
  if (big >= WRAP_FLOOR && big < U64_WRAP) return Number(big - U64_WRAP);
  throw parseError(file, line, 'a value below 2^53 (or a wrapped negative 64-bit value)', t);
}

/**
 * Parse /proc/meminfo or a per-node /sys/devices/system/node/nodeN/meminfo. Fields that come and
 * go across kernel versions (MemAvailable since 3.14, Shmem since 2.6.32, KReclaimable since 4.20,
 * Percpu since 4.0...) are whatever the file holds: callers read `bytes.X` and handle `undefined`.
 * What every kernel guarantees is checked: each field once, a final newline, the fields every
 * meminfo prints (MEMINFO_ALWAYS), sizes of RAM within MemTotal.
 */
export function parseMeminfo(text: string, opts: ParseOptions = {}): Meminfo {
  const file = opts.file ?? '/proc/meminfo';
  let result: Meminfo = { fields: [], bytes: {}, counts: {} };
  let seen = new Set<string>();
  let lastLine = meminfoFast(text, opts.maxLineBytes ?? MAX_LINE_BYTES, result, seen);
  if (lastLine < 0) {
    result = { fields: [], bytes: {}, counts: {} };
    seen = new Set<string>();
    lastLine = meminfoLines(text, file, opts, result, seen);
  }
  const total = result.bytes.MemTotal;
  if (total === undefined) {
    throw parseError(file, undefined, 'a MemTotal line (every meminfo has one)', text.slice(0, 60));
  }
  for (const f of result.fields) {
    if (f.unit === 'bytes' && WITHIN_MEMTOTAL.has(f.name) && f.value > total) {
      throw parseError(
        file,
        f.line,
        `${f.name} at most MemTotal (${total / 1024} kB): it counts pages of RAM`,
        `${f.name}: ${f.value / 1024} kB`,
      );
    }
  }
  const always = result.node === undefined ? MEMINFO_ALWAYS : NODE_MEMINFO_ALWAYS;
  const absent = always.filter((n) => !seen.has(n));
  if (absent.length > 0) {
    truncated(
      file,
      lastLine + 1,
      `the fields every meminfo prints (${absent.join(', ')} missing)`,
      '<end of file>',
      opts,
      `${absent.join(', ')} missing (every meminfo prints them): read as absent`,
    );
  }
  return result;
}

/** The lines of a meminfo into `result` and `seen`, with every check of a line; the last line's number. */
function meminfoLines(
  text: string,
  file: string,
  opts: ParseOptions,
  result: Meminfo,
  seen: Set<string>,
): number {
  const lines = kernelLines(text, file, EXPECTED, opts);
  for (const { text: t, line } of lines) {
    if (t.trim() === '') continue;
    const m = LINE.exec(t);
    if (!m) throw parseError(file, line, EXPECTED, t);
    const [, nodeStr, name, valueStr, kb] = m as unknown as [
      string,
      string | undefined,
      string,
      string,
      string | undefined,
    ];
    if (nodeStr !== undefined) {
      const node = safeNumber(nodeStr, file, line, 'a node number');
      if (result.node === undefined && result.fields.length === 0) result.node = node;
      else if (result.node !== node) {
        throw parseError(
          file,
          line,
          result.node === undefined ? 'a line without "Node N "' : `"Node ${result.node} ${name}: ..."`,
          t,
        );
      }
    } else if (result.node !== undefined) {
      throw parseError(file, line, `"Node ${result.node} ${name}: ..."`, t);
    }
    if (seen.has(name))
      throw parseError(file, line, `each field once (${name} already on an earlier line)`, t);
    seen.add(name);
    const raw = lu(valueStr, file, line, t);
    if (kb !== undefined) {
      const value = raw * 1024;
      if (!Number.isSafeInteger(value)) throw parseError(file, line, 'a size below 2^53 bytes', t);
      result.bytes[name] = value;
      result.fields.push({ name, value, unit: 'bytes', line });
    } else {
      result.counts[name] = raw;
      result.fields.push({ name, value: raw, unit: 'count', line });
    }
  }
  return lines[lines.length - 1]?.line ?? 0;
}

/**
 * /proc/meminfo as the kernel prints it (`Name:` padded with spaces, the number, ` kB` or not,
 * `\n`; no `Node N `), read with a character loop into `result` and `seen`: no line objects, no
 * regular expression (the recorder reads it every tick, unoptimized: cli/daemon.ts). The number
 * of the last line, or -1 for anything else (a blank or per-node line, 16 digits or more, a cut
 * or over-long line, a repeated name): meminfoLines then reads it or names the error. Exported
 * for the tests that hold it to the line parser.
 */
export function meminfoFast(text: string, maxLine: number, result: Meminfo, seen: Set<string>): number {
  const n = text.length;
  if (n === 0 || n > maxLine || text.charCodeAt(n - 1) !== 10) return -1;
  let i = 0;
  let line = 0;
  while (i < n) {
    line++;
    const s = i;
    let c = text.charCodeAt(i);
    while (
      (c >= 97 && c <= 122) ||
      (c >= 65 && c <= 90) ||
      (c >= 48 && c <= 57) ||
      c === 95 ||
      c === 40 ||
      c === 41
    )
      c = text.charCodeAt(++i);
    if (i === s || c !== 58) return -1;
    const name = text.slice(s, i);
    const sp = ++i;
    c = text.charCodeAt(i);
    while (c === 32) c = text.charCodeAt(++i);
    const d0 = i;
    let v = 0;
    while (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      c = text.charCodeAt(++i);
    }
    if (d0 === sp || i === d0 || i - d0 > 15 || seen.has(name)) return -1;
    // "Node 0 MemTotal:" never gets here: the space stops the name before the colon.
    if (c === 32 && text.charCodeAt(i + 1) === 107 && text.charCodeAt(i + 2) === 66) {
      i += 3;
      c = text.charCodeAt(i);
      const value = v * 1024;
      if (c !== 10 || !Number.isSafeInteger(value)) return -1;
      result.bytes[name] = value;
      result.fields.push({ name, value, unit: 'bytes', line });
    } else {
      if (c !== 10) return -1;
      result.counts[name] = v;
      result.fields.push({ name, value: v, unit: 'count', line });
    }
    seen.add(name);
    i++;
  }
  return line;
}
