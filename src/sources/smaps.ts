import { parseError } from '../model/errors.js';
import {
  lineTooLong,
  MAX_LINE_BYTES,
  type ParseOptions,
  requireNonEmpty,
  safeNumber,
  truncated,
} from './text.js';

/** One mapping (VMA) of /proc/PID/smaps, or the single `[rollup]` record of smaps_rollup. */
export interface SmapsMapping {
  /** Start address, hex as printed (no 0x). */
  start: string;
  /** End address (exclusive), hex as printed. */
  end: string;
  /** `rwxp` / `rw-s`: the 4th letter is `s` for VM_MAYSHARE (MAP_SHARED), `p` for private. */
  perms: string;
  /** File offset, hex as printed. */
  offset: string;
  /** `major:minor` of the backing device, hex as printed (`00:00` for anonymous memory). */
  dev: string;
  inode: number;
  /**
   * File path, `[heap]`, `[stack]`, `[vdso]`, `[vvar]`, `[vsyscall]`, `[anon:name]`,
   * `[anon_shmem:name]`, `[rollup]`, a path ending in ` (deleted)`, or `` for anonymous memory.
   */
  pathname: string;
  /** end - start in bytes (the `Size:` field where the kernel prints it). */
  rangeBytes: number;
  /**
   * Every `Key: N kB` field in bytes, in the kernel's names: Size KernelPageSize MMUPageSize Rss
   * Pss Pss_Dirty Pss_Anon Pss_File Pss_Shmem Shared_Clean Shared_Dirty Private_Clean
   * Private_Dirty Referenced Anonymous KSM LazyFree AnonHugePages ShmemPmdMapped FilePmdMapped
   * Shared_Hugetlb Private_Hugetlb Swap SwapPss Locked ... (whatever this kernel prints).
   */
  bytes: Record<string, number | undefined>;
  /** `VmFlags:` two-letter mnemonics (`rd wr mr mw me ac ...`), 3.8+. */
  vmFlags: string[];
  /** `THPeligible:` (4.20+; printed as `1`/`0`). */
  thpEligible?: boolean;
  /** `ProtectionKey:` (4.9+, x86 with memory protection keys). */
  protectionKey?: number;
  /** Fields that are not sizes, raw text after the colon: THPeligible, ProtectionKey, VmFlags, ... */
  fields: Record<string, string>;
  /** 1-based line number of the header line. */
  line: number;
}

// show_vma_header_prefix() in fs/proc/task_mmu.c: "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu "
// then, when the mapping has a name, padding spaces and the name. The offset and device widths
// are minimums, so any number of hex digits is accepted.
export const VMA_HEADER =
  /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/;
// "Rss:            %8lu kB" (4.x, fixed spaces) and "%-16s%8lu kB" via SEQ_PUT_DEC (4.20+):
// one or more spaces either way; 4.14's "Private_Hugetlb: %7lu kB" too.
const SIZE = /^([A-Za-z_][A-Za-z0-9_]*):\s+(\d+) kB$/;
const OTHER = /^([A-Za-z_][A-Za-z0-9_]*):(.*)$/;
/** Fields that are always sizes: a value without `kB` is garbage, not a new field. */
const SIZE_FIELDS = new Set([
  'Size',
  'KernelPageSize',
  'MMUPageSize',
  'Rss',
  'Pss',
  'Shared_Clean',
  'Shared_Dirty',
  'Private_Clean',
  'Private_Dirty',
  'Referenced',
  'Anonymous',
  'Swap',
  'SwapPss',
  'Locked',
]);
const EXPECTED_HEADER =
  'a mapping header "start-end perms offset dev inode [path]" (e.g. "00400000-00401000 r--p 00000000 00:02 12   /bin/busybox")';
const EXPECTED_FIELD = '"Key:   N kB", "VmFlags: ..." or a mapping header';

/** `Key:<spaces>digits kB` with a plain key, or undefined (the caller then tries the regexes). */
function sizeField(t: string): { key: string; kB: number } | undefined {
  const colon = t.indexOf(':');
  if (colon <= 0) return undefined;
  for (let i = 0; i < colon; i++) {
    const c = t.charCodeAt(i);
    // A-Z a-z _ and (not first) 0-9
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || (i > 0 && c >= 48 && c <= 57)))
      return undefined;
  }
  let i = colon + 1;
  const n = t.length;
  if (i >= n || t.charCodeAt(i) !== 32) return undefined;
  while (i < n && t.charCodeAt(i) === 32) i++;
  let v = 0;
  const d0 = i;
  while (i < n) {
    const c = t.charCodeAt(i);
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
    i++;
  }
  if (
    i === d0 ||
    i + 3 !== n ||
    t.charCodeAt(i) !== 32 ||
    t.charCodeAt(i + 1) !== 107 ||
    t.charCodeAt(i + 2) !== 66
  ) {
    return undefined;
  }
  return { key: t.slice(0, colon), kB: v };
}

function addressBytes(start: string, end: string): number {
  return Number(BigInt(`0x${end}`) - BigInt(`0x${start}`));
}

/** Sums of the mappings that share a name (per-mapping sizes of the recorder, `pmap`-style views). */
export interface SmapsNameSizes {
  size: number;
  rss: number;
  anon: number;
  swap: number;
}

/**
 * The name mappings are summed under: the path or `[tag]` as printed, `[anon]` for anonymous
 * memory, `[stack]` for 3.x's per-thread `[stack:TID]`.
 */
export function smapsNameKey(pathname: string): string {
  const name = pathname.trim() || '[anon]';
  return name.startsWith('[stack:') ? '[stack]' : name;
}

/**
 * Parse /proc/PID/smaps (or smaps_rollup, or task/TID/smaps). Linear in the input: one pass with
 * indexOf, one regex per line. Kernel threads and exited processes have an empty smaps: that is an
 * empty list here, not an error (callers decide what an empty file means).
 */
export function parseSmaps(text: string, opts: ParseOptions = {}): SmapsMapping[] {
  const file = opts.file ?? '/proc/PID/smaps';
  const out: SmapsMapping[] = [];
  let cur: SmapsMapping | undefined;
  let pos = 0;
  let line = 0;
  const n = text.length;
  const maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
  while (pos < n) {
    const eol = text.indexOf('\n', pos);
    if (eol < 0) {
      // No newline at the end: the read was cut in the middle of this line.
      truncated(file, line + 1, 'a last line ending in a newline', text.slice(pos, pos + 200), opts);
      break;
    }
    if (eol - pos > maxLine) throw lineTooLong(file, line + 1, eol - pos, maxLine);
    let t = text.slice(pos, eol);
    pos = eol + 1;
    line++;
    if (t.endsWith('\r')) t = t.slice(0, -1);
    if (t === '') throw parseError(file, line, EXPECTED_FIELD, '<empty line>');
    const c = t.charCodeAt(0);
    // Header lines start with a lower-case hex digit; field names with an upper-case letter.
    if ((c >= 48 && c <= 57) || (c >= 97 && c <= 102)) {
      const h = VMA_HEADER.exec(t);
      if (!h) throw parseError(file, line, EXPECTED_HEADER, t);
      const start = h[1]!;
      const end = h[2]!;
      cur = {
        start,
        end,
        perms: h[3]!,
        offset: h[4]!,
        dev: h[5]!,
        inode: safeNumber(h[6]!, file, line, 'an inode number'),
        pathname: h[7] ?? '',
        rangeBytes: addressBytes(start, end),
        bytes: {},
        vmFlags: [],
        fields: {},
        line,
      };
      if (cur.rangeBytes < 0) throw parseError(file, line, 'a start address below the end address', t);
      out.push(cur);
      continue;
    }
    if (!cur) throw parseError(file, line, EXPECTED_HEADER, t);
    // Fast path for `Key:   N kB` (almost every line): scan the digits by hand, no regex.
    const kb = sizeField(t);
    if (kb !== undefined) {
      const key = kb.key;
      if (cur.bytes[key] !== undefined) {
        throw parseError(
          file,
          line,
          `each field once per mapping (${key} repeats; mapping at line ${cur.line})`,
          t,
        );
      }
      cur.bytes[key] = kb.kB * 1024;
      if (!Number.isSafeInteger(cur.bytes[key]))
        throw parseError(file, line, `${key}: a size below 2^53 bytes`, t);
      continue;
    }
    const s = SIZE.exec(t);
    if (s) {
      const key = s[1]!;
      if (cur.bytes[key] !== undefined) {
        throw parseError(
          file,
          line,
          `each field once per mapping (${key} repeats; mapping at line ${cur.line})`,
          t,
        );
      }
      cur.bytes[key] = safeNumber(s[2]!, file, line, `${key}: N kB`) * 1024;
      if (!Number.isSafeInteger(cur.bytes[key]))
        throw parseError(file, line, `${key}: a size below 2^53 bytes`, t);
      continue;
    }
    const o = OTHER.exec(t);
    if (!o) throw parseError(file, line, EXPECTED_FIELD, t);
    const key = o[1]!;
    const value = o[2]!.trim();
    if (SIZE_FIELDS.has(key) || value.endsWith('kB'))
      throw parseError(file, line, `${key}: "<number> kB"`, t);
    if (key in cur.fields) {
      throw parseError(
        file,
        line,
        `each field once per mapping (${key} repeats; mapping at line ${cur.line})`,
        t,
      );
    }
    cur.fields[key] = value;
    if (key === 'VmFlags') {
      cur.vmFlags = value === '' ? [] : value.split(/ +/);
    } else if (key === 'THPeligible') {
      if (value !== '0' && value !== '1') throw parseError(file, line, 'THPeligible: 0 or 1', t);
      cur.thpEligible = value === '1';
    } else if (key === 'ProtectionKey') {
      if (!/^\d+$/.test(value)) throw parseError(file, line, 'ProtectionKey: a number', t);
      cur.protectionKey = safeNumber(value, file, line, 'ProtectionKey');
    }
  }
  for (const m of out) {
    // Every kernel since 2.6.14 prints Rss for each mapping; a record without it is truncated.
    if (m.bytes.Rss === undefined)
      throw parseError(file, m.line, `an "Rss:" line in the mapping`, `${m.start}-${m.end}`);
  }
  return out;
}

/**
 * Parse /proc/PID/smaps_rollup (4.14+): one `[rollup]` record whose address range spans the
 * first to the last mapping, with the sums of every size field (and, since 5.10, Pss_Anon,
 * Pss_File and Pss_Shmem, which per-mapping smaps does not print).
 */
export function parseSmapsRollup(text: string, opts: ParseOptions = {}): SmapsMapping {
  const file = opts.file ?? '/proc/PID/smaps_rollup';
  requireNonEmpty(text, file, 'a "[rollup]" header and its fields');
  const all = parseSmaps(text, { ...opts, file });
  const first = all[0]!;
  if (first.pathname !== '[rollup]') {
    throw parseError(
      file,
      first.line,
      'the "[rollup]" record of smaps_rollup',
      first.pathname || '<no name>',
    );
  }
  if (all.length > 1) {
    const second = all[1]!;
    throw parseError(
      file,
      second.line,
      'a single [rollup] record',
      `${second.start}-${second.end} ${second.pathname}`,
    );
  }
  return first;
}

/**
 * How a mapping of shmem (tmpfs) pages is named in maps and smaps, by what created it:
 * MAP_SHARED|MAP_ANONYMOUS is a shmem file called `/dev/zero (deleted)` (shmem_zero_setup),
 * SysV segments are `/SYSV<key> (deleted)`, memfd_create files `/memfd:<name> (deleted)`, POSIX
 * shm lives in /dev/shm, and a named shared anonymous mapping is `[anon_shmem:<name>]` (6.1+).
 * Files on other tmpfs mounts cannot be told from disk files by name.
 */
export const SHMEM_NAME_PREFIXES = ['/dev/zero', '/SYSV', '/memfd:', '/dev/shm/', '[anon_shmem:'] as const;

/** One line of /proc/PID/maps: the header smaps prints before each mapping's fields. */
export type MapsEntry = Pick<
  SmapsMapping,
  'start' | 'end' | 'perms' | 'offset' | 'dev' | 'inode' | 'pathname' | 'rangeBytes' | 'line'
>;

/**
 * Parse /proc/PID/maps: one `show_vma_header_prefix` line per mapping, the same header smaps
 * prints, with no fields (the kernel walks no page table for it, so it costs a fraction of
 * smaps). `onlyShared` keeps only MAP_SHARED mappings (perms ending in `s`) and skips every other
 * line after checking its perms, which is all a reader deciding whether it needs per-mapping
 * sizes looks at. An empty file (kernel thread, exited process) is an empty list.
 */
export function parseMaps(text: string, opts: ParseOptions & { onlyShared?: boolean } = {}): MapsEntry[] {
  const file = opts.file ?? '/proc/PID/maps';
  const out: MapsEntry[] = [];
  let pos = 0;
  let line = 0;
  const n = text.length;
  while (pos < n) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = n;
    line++;
    if (opts.onlyShared) {
      // "start-end perms ...": the perms are the four characters after the first space.
      const sp = text.indexOf(' ', pos);
      const p = sp + 4;
      if (sp > pos && p < eol) {
        const c = text.charCodeAt(p);
        if (c === 112 /* p */ && text.charCodeAt(p + 1) === 32) {
          pos = eol + 1;
          continue;
        }
      }
    }
    let t = text.slice(pos, eol);
    pos = eol + 1;
    if (t.endsWith('\r')) t = t.slice(0, -1);
    const h = VMA_HEADER.exec(t);
    if (!h) throw parseError(file, line, EXPECTED_HEADER, t === '' ? '<empty line>' : t);
    const start = h[1]!;
    const end = h[2]!;
    const m: MapsEntry = {
      start,
      end,
      perms: h[3]!,
      offset: h[4]!,
      dev: h[5]!,
      inode: Number(h[6]),
      pathname: h[7] ?? '',
      rangeBytes: addressBytes(start, end),
      line,
    };
    if (m.rangeBytes < 0) throw parseError(file, line, 'a start address below the end address', t);
    if (!opts.onlyShared || m.perms[3] === 's') out.push(m);
  }
  return out;
}
