/**
 * Fast readers of the few fields the hot paths need from /proc/PID/status, stat and
 * smaps_rollup (`ps`, `report`, the recorder's every tick): one `indexOf` per field and a digit
 * loop, no line objects, no regular expressions. They define no format of their own: each returns
 * undefined as soon as what it reads is not exactly what the full parser (proc_status.ts,
 * proc_stat.ts, smaps.ts) would read the same way, and the caller then runs the full parser,
 * which reads the text or names the file and line of the error. They look only at the fields they
 * return: a malformed line elsewhere in the file is the full parser's to find. proc_fast.test.ts
 * checks that they agree with the full parsers on every capture in test/fixtures and on every
 * process of this machine.
 */

import type { ProcStatus } from './proc_status.js';
import { SHMEM_NAME_PREFIXES, type SmapsMapping, type SmapsNameSizes, smapsNameKey } from './smaps.js';

const NL = 10;
const CR = 13;
const SPACE = 32;
const TAB = 9;

/** The first `\n<key>:` of `text` (or `<key>:` at its start), as the index after the colon; -1 if none or repeated. */
function fieldAt(text: string, needle: string): number {
  let i: number;
  if (text.startsWith(needle.slice(1))) i = 0;
  else {
    i = text.indexOf(needle);
    if (i < 0) return -1;
    i++;
  }
  const after = i + needle.length - 1;
  // Each field once (the full parser rejects a repeated one).
  if (text.indexOf(needle, after) >= 0) return -2;
  return after;
}

function skipBlanks(text: string, i: number): number {
  let c = text.charCodeAt(i);
  while (c === SPACE || c === TAB) c = text.charCodeAt(++i);
  return i;
}

/** Digits from `i` to the end of the line (`\n` or the end of text), or -1. */
function decimalToEol(text: string, i: number): number {
  let v = 0;
  const d0 = i;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      i++;
    } else if (c === NL || Number.isNaN(c)) break;
    else return -1;
  }
  return i === d0 ? -1 : v;
}

/** `<spaces><digits> kB` to the end of the line, in bytes, or -1. */
function kbToEol(text: string, i: number): number {
  let v = 0;
  const d0 = i;
  for (;;) {
    const c = text.charCodeAt(i);
    if (!(c >= 48 && c <= 57)) break;
    v = v * 10 + (c - 48);
    i++;
  }
  if (
    i === d0 ||
    text.charCodeAt(i) !== SPACE ||
    text.charCodeAt(i + 1) !== 107 ||
    text.charCodeAt(i + 2) !== 66
  )
    return -1;
  const e = text.charCodeAt(i + 3);
  return e === NL || Number.isNaN(e) ? v * 1024 : -1;
}

const STATUS_KB = [
  'VmSize',
  'VmRSS',
  'VmSwap',
  'RssAnon',
  'RssFile',
  'RssShmem',
  'VmExe',
  'VmData',
  'VmStk',
] as const;
const STATUS_COUNTS = ['Threads', 'Kthread'] as const;
const needles = (keys: readonly string[]) => keys.map((k) => `\n${k}:`);
const STATUS_KB_NEEDLES = needles(STATUS_KB);
const STATUS_COUNT_NEEDLES = needles(STATUS_COUNTS);

/** What `statusFields` reads: the ProcStatus fields of a process's memory, name and state. */
export type StatusFields = Pick<ProcStatus, 'name' | 'ppid' | 'state' | 'bytes' | 'counts'>;

/**
 * Name, State, PPid, Threads, Kthread and the memory lines (VmSize, VmRSS, VmSwap, RssAnon,
 * RssFile, RssShmem, VmExe, VmData, VmStk) of /proc/PID/status, as parseProcStatus reads them
 * (`bytes` and `counts` hold only these keys); undefined when the full parser is needed.
 */
export function statusFields(text: string): StatusFields | undefined {
  // The kernel ends every line with a newline: a file cut mid-line is the full parser's.
  if (!text.startsWith('Name:') || text.charCodeAt(text.length - 1) !== NL) return undefined;
  const n0 = skipBlanks(text, 5);
  let nEnd = text.indexOf('\n', n0);
  if (nEnd < 0) nEnd = text.length;
  for (let i = n0; i < nEnd; i++) {
    const c = text.charCodeAt(i);
    // `.` in the full parser's line pattern stops at these.
    if (c === CR || c === 0x2028 || c === 0x2029) return undefined;
  }
  if (text.indexOf('\nName:', nEnd - 1) >= 0) return undefined;
  const p = fieldAt(text, '\nPPid:');
  if (p < 0) return undefined;
  const ppid = decimalToEol(text, skipBlanks(text, p));
  if (ppid < 0) return undefined;
  const bytes: Record<string, number | undefined> = {};
  for (let k = 0; k < STATUS_KB.length; k++) {
    const at = fieldAt(text, STATUS_KB_NEEDLES[k]!);
    if (at === -1) continue;
    if (at < 0) return undefined;
    const v = kbToEol(text, skipBlanks(text, at));
    if (v < 0) return undefined;
    bytes[STATUS_KB[k]!] = v;
  }
  const counts: Record<string, number | undefined> = { PPid: ppid };
  for (let k = 0; k < STATUS_COUNTS.length; k++) {
    const at = fieldAt(text, STATUS_COUNT_NEEDLES[k]!);
    if (at === -1) continue;
    if (at < 0) return undefined;
    const v = decimalToEol(text, skipBlanks(text, at));
    if (v < 0) return undefined;
    counts[STATUS_COUNTS[k]!] = v;
  }
  const out: StatusFields = { name: text.slice(n0, nEnd), ppid, bytes, counts };
  const s = fieldAt(text, '\nState:');
  if (s === -2) return undefined;
  if (s >= 0) {
    // "S (sleeping)": the letter, then blanks and the name in parentheses, or nothing.
    const i = skipBlanks(text, s);
    const c = text.charCodeAt(i);
    const after = text.charCodeAt(i + 1);
    if (Number.isNaN(c) || c === NL || c === SPACE || c === TAB || c === CR) return undefined;
    if (!(after === NL || after === SPACE || after === TAB || Number.isNaN(after))) return undefined;
    if (after === SPACE || after === TAB) {
      const j = skipBlanks(text, i + 1);
      let e = text.indexOf('\n', j);
      if (e < 0) e = text.length;
      if (text.charCodeAt(j) !== 40 || text.charCodeAt(e - 1) !== 41) return undefined;
    }
    out.state = text[i]!;
  }
  return out;
}

/** What `statFields` reads of /proc/PID/stat, under the names of ProcStat. */
export interface StatFields {
  comm: string;
  state: string;
  ppid: number;
  flags: number;
  minflt: number;
  majflt: number;
  numThreads: number;
  startTimeTicks: number;
  vsizeBytes: number;
  rssPages: number;
  startstack?: number;
}

/** Indexes (after the state) of the fields `statFields` keeps: proc(5) field number - 4. */
const STAT_PPID = 0;
const STAT_FLAGS = 5;
const STAT_MINFLT = 6;
const STAT_MAJFLT = 8;
const STAT_THREADS = 16;
const STAT_START = 18;
const STAT_VSIZE = 19;
const STAT_RSS = 20;
const STAT_STARTSTACK = 24;

/**
 * The fields of /proc/PID/stat a process's identity and size need, as parseProcStat reads
 * them (every number after the state is checked, as it checks them); undefined when the full
 * parser is needed.
 */
export function statFields(text: string): StatFields | undefined {
  // The kernel ends the line with a newline: without it the file was cut (parseProcStat says so).
  if (text.charCodeAt(text.length - 1) !== NL) return undefined;
  const end = text.length - 1;
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')', end - 1);
  if (open <= 0 || close < open || text.charCodeAt(close + 1) !== SPACE) return undefined;
  for (let i = 0; i < open; i++) {
    const c = text.charCodeAt(i);
    if (!(c >= 48 && c <= 57)) return undefined;
  }
  const st = text.charCodeAt(close + 2);
  if (!((st >= 65 && st <= 90) || (st >= 97 && st <= 122)) || text.charCodeAt(close + 3) !== SPACE)
    return undefined;
  const out: StatFields = {
    comm: text.slice(open + 2, close),
    state: text[close + 2]!,
    ppid: 0,
    flags: 0,
    minflt: 0,
    majflt: 0,
    numThreads: 0,
    startTimeTicks: 0,
    vsizeBytes: 0,
    rssPages: 0,
  };
  let i = close + 4;
  let k = 0;
  while (i <= end) {
    let neg = false;
    if (text.charCodeAt(i) === 45) {
      neg = true;
      i++;
    }
    let v = 0;
    const d0 = i;
    for (;;) {
      const c = text.charCodeAt(i);
      if (!(c >= 48 && c <= 57)) break;
      v = v * 10 + (c - 48);
      i++;
    }
    if (i === d0 || (i < end && text.charCodeAt(i) !== SPACE)) return undefined;
    if (neg) v = -v;
    switch (k) {
      case STAT_PPID:
        out.ppid = v;
        break;
      case STAT_FLAGS:
        out.flags = v;
        break;
      case STAT_MINFLT:
        out.minflt = v;
        break;
      case STAT_MAJFLT:
        out.majflt = v;
        break;
      case STAT_THREADS:
        out.numThreads = v;
        break;
      case STAT_START:
        out.startTimeTicks = v;
        break;
      case STAT_VSIZE:
        out.vsizeBytes = v;
        break;
      case STAT_RSS:
        out.rssPages = v;
        break;
      case STAT_STARTSTACK:
        out.startstack = v;
        break;
    }
    k++;
    i++;
  }
  // Up to rss at least (proc(5) field 24), as parseProcStat requires.
  return k > STAT_RSS ? out : undefined;
}

const ROLLUP_KB = [
  'Rss',
  'Pss',
  'Pss_Anon',
  'Pss_File',
  'Pss_Shmem',
  'Shared_Clean',
  'Shared_Dirty',
  'Private_Clean',
  'Private_Dirty',
  'Anonymous',
  'Swap',
  'SwapPss',
  'Shared_Hugetlb',
  'Private_Hugetlb',
] as const;
const ROLLUP_NEEDLES = needles(ROLLUP_KB);
/** The rollup header's address range and name: "start-end ---p 00000000 00:00 0   [rollup]". */
const ROLLUP_HEADER = /^[0-9a-f]+-[0-9a-f]+ [r-][w-][x-][ps] [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ \d+ +\[rollup\]\n/;

/**
 * The size fields of /proc/PID/smaps_rollup that process totals use (Rss, Pss and its split,
 * Shared/Private Clean/Dirty, Anonymous, Swap, SwapPss, the hugetlb pair), in bytes, as
 * parseSmapsRollup's `bytes` holds them; undefined when the full parser is needed (which also
 * rejects a rollup without Rss).
 */
export function rollupFields(text: string): Pick<SmapsMapping, 'bytes'> | undefined {
  if (!ROLLUP_HEADER.test(text) || text.charCodeAt(text.length - 1) !== NL) return undefined;
  const bytes: Record<string, number | undefined> = {};
  for (let k = 0; k < ROLLUP_KB.length; k++) {
    const at = fieldAt(text, ROLLUP_NEEDLES[k]!);
    if (at === -1) continue;
    if (at < 0) return undefined;
    // `%-16s%8lu kB` (4.20+) or `Key:  %8lu kB`: one or more spaces, then the digits.
    if (text.charCodeAt(at) !== SPACE) return undefined;
    const v = kbToEol(text, skipBlanksOnly(text, at));
    if (v < 0) return undefined;
    bytes[ROLLUP_KB[k]!] = v;
  }
  return bytes.Rss === undefined ? undefined : { bytes };
}

function skipBlanksOnly(text: string, i: number): number {
  while (text.charCodeAt(i) === SPACE) i++;
  return i;
}

/**
 * /proc/PID/statm as bytes (the recorder's every tick, from a reused buffer): `size resident
 * shared text lib data dt\n`, seven decimals, the first three into `out`. False for anything
 * else (parseProcStatm then names the file and what it expected).
 */
export function statmBytes(
  buf: Uint8Array,
  n: number,
  out: { sizePages: number; residentPages: number; sharedPages: number },
): boolean {
  let i = 0;
  let size = 0;
  let resident = 0;
  let shared = 0;
  for (let field = 0; field < 7; field++) {
    let v = 0;
    const d0 = i;
    for (; i < n; i++) {
      const c = buf[i]!;
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
    }
    // Sixteen digits and more may not be exact in a double: the full parser decides.
    if (i === d0 || i - d0 > 15 || i >= n) return false;
    if (buf[i] !== (field < 6 ? SPACE : NL)) return false;
    i++;
    if (field === 0) size = v;
    else if (field === 1) resident = v;
    else if (field === 2) shared = v;
  }
  if (i !== n) return false;
  out.sizePages = size;
  out.residentPages = resident;
  out.sharedPages = shared;
  return true;
}

const HEX = (c: number) => (c >= 48 && c <= 57) || (c >= 97 && c <= 102);

/** Hex digits from `i`; the index after them. */
function hexRun(text: string, i: number): number {
  while (HEX(text.charCodeAt(i))) i++;
  return i;
}

/** Hex text [a, ae) above [b, be) as numbers (leading zeros ignored), without parsing. */
function hexAbove(text: string, a: number, ae: number, b: number, be: number): boolean {
  while (a < ae - 1 && text.charCodeAt(a) === 48) a++;
  while (b < be - 1 && text.charCodeAt(b) === 48) b++;
  if (ae - a !== be - b) return ae - a > be - b;
  for (; a < ae; a++, b++) {
    const d = text.charCodeAt(a) - text.charCodeAt(b);
    if (d !== 0) return d > 0;
  }
  return false;
}

/** `Size:`, `Rss:`, `Anonymous:`, `Swap:` (the four sums) at line start `i`: 0-3, or -1. */
function sumField(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 83) {
    if (text.startsWith('Size:', i)) return 0;
    if (text.startsWith('Swap:', i)) return 3;
  } else if (c === 82) {
    if (text.startsWith('Rss:', i)) return 1;
  } else if (c === 65) {
    if (text.startsWith('Anonymous:', i)) return 2;
  }
  return -1;
}
const SUM_KEY_LENGTH = [5, 4, 10, 5];

/**
 * /proc/PID/smaps summed by mapping name (smapsNameKey), as smapsByName(parseSmaps(text)) sums it (the
 * recorder's per-mapping sizes of growing processes: a compiler's or a JVM's smaps is thousands
 * of lines, and the full parser builds an object per mapping and a string per line): one pass,
 * a string per mapping name. Header lines are read whole (the full parser's VMA_HEADER, by
 * hand); of the other lines only Size, Rss, Anonymous and Swap, which must be `Key: N kB`, once
 * per mapping, with Size and Rss in every mapping. Undefined for anything else (a header that
 * does not parse, an end below its start, a cut last line, a line that is neither a header nor
 * `Key:...`); the caller then runs the full parser, which reads the text or names the error.
 */
export function smapsSizes(text: string): Map<string, SmapsNameSizes> | undefined {
  const scan = new SmapsSizesScan();
  return scan.feed(text) ? scan.finish() : undefined;
}

/**
 * A name cut from a big text, as a string of its own: V8 makes a slice of 13 characters or more
 * a view of the text it was cut from, which then lives as long as the name does (a recording
 * keeps mapping names for many ticks: each would keep a whole smaps alive). Concatenating makes
 * a new string that V8 flattens into a copy before slicing it back.
 */
function detached(name: string): string {
  return name.length < 13 ? name : `${name} `.slice(0, -1);
}

/**
 * smapsSizes over a file read in pieces (Snapshot.readLines: whole lines, a few KiB each), so
 * the smaps of a process with thousands of mappings is never one string of megabytes. `feed`
 * returns false once the fast reader declines (the caller then reads the file whole and runs
 * the full parser, which names the error); `finish` gives the sums.
 */
export class SmapsSizesScan {
  private readonly out = new Map<string, SmapsNameSizes>();
  private cur: SmapsNameSizes | undefined;
  /** Size, Rss, Anonymous, Swap of the current mapping (-1: not seen). */
  private readonly v = [-1, -1, -1, -1];
  private declined = false;

  /** The sums so far, or undefined when the text was declined (or ended inside a mapping without Size or Rss). */
  finish(): Map<string, SmapsNameSizes> | undefined {
    return !this.declined && this.flush() ? this.out : undefined;
  }

  private flush(): boolean {
    const cur = this.cur;
    if (!cur) return true;
    const v = this.v;
    if (v[0]! < 0 || v[1]! < 0) return false;
    cur.size += v[0]!;
    cur.rss += v[1]!;
    if (v[2]! > 0) cur.anon += v[2]!;
    if (v[3]! > 0) cur.swap += v[3]!;
    return true;
  }

  /** One piece of the file: whole lines, the last ending in a newline (or nothing). */
  feed(text: string): boolean {
    if (this.declined) return false;
    if (!this.scan(text)) this.declined = true;
    return !this.declined;
  }

  private scan(text: string): boolean {
    const out = this.out;
    const n = text.length;
    if (n === 0) return true;
    if (text.charCodeAt(n - 1) !== NL) return false;
    const v = this.v;
    let cur = this.cur;
    let i = 0;
    while (i < n) {
      const eol = text.indexOf('\n', i);
      const c = text.charCodeAt(i);
      if (HEX(c)) {
        // start-end perms offset dev inode [ +name]
        const se = hexRun(text, i);
        if (se === i || text.charCodeAt(se) !== 45) return false;
        const e0 = se + 1;
        const ee = hexRun(text, e0);
        if (ee === e0 || text.charCodeAt(ee) !== SPACE || hexAbove(text, i, se, e0, ee)) return false;
        let p = ee + 1;
        const r = text.charCodeAt(p);
        const w = text.charCodeAt(p + 1);
        const x = text.charCodeAt(p + 2);
        const s = text.charCodeAt(p + 3);
        if (
          (r !== 114 && r !== 45) ||
          (w !== 119 && w !== 45) ||
          (x !== 120 && x !== 45) ||
          (s !== 112 && s !== 115) ||
          text.charCodeAt(p + 4) !== SPACE
        )
          return false;
        p += 5;
        let q = hexRun(text, p);
        if (q === p || text.charCodeAt(q) !== SPACE) return false;
        p = q + 1;
        q = hexRun(text, p);
        if (q === p || text.charCodeAt(q) !== 58) return false;
        p = q + 1;
        q = hexRun(text, p);
        if (q === p || text.charCodeAt(q) !== SPACE) return false;
        p = q + 1;
        q = p;
        while (text.charCodeAt(q) >= 48 && text.charCodeAt(q) <= 57) q++;
        // An inode of 16 digits or more: the full parser decides whether it is a safe number.
        if (q === p || q - p > 15) return false;
        if (q !== eol && text.charCodeAt(q) !== SPACE) return false;
        this.cur = cur;
        if (!this.flush()) return false;
        const name = detached(smapsNameKey(q === eol ? '' : text.slice(q + 1, eol)));
        cur = out.get(name);
        if (!cur) {
          cur = { size: 0, rss: 0, anon: 0, swap: 0 };
          out.set(name, cur);
        }
        v[0] = v[1] = v[2] = v[3] = -1;
      } else {
        // A field: `Key:` with a name the full parser accepts ([A-Za-z_][A-Za-z0-9_]*).
        if (!cur || !((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95)) return false;
        const k = sumField(text, i);
        if (k >= 0) {
          if (v[k]! >= 0) return false;
          let p = i + SUM_KEY_LENGTH[k]!;
          if (text.charCodeAt(p) !== SPACE) return false;
          p = skipBlanksOnly(text, p);
          const kb = kbToEol(text, p);
          // Not a size below 2^53 bytes (or not exact): the full parser's to refuse.
          if (kb < 0 || !Number.isSafeInteger(kb)) return false;
          v[k] = kb;
        } else {
          let p = i + 1;
          let d = text.charCodeAt(p);
          while ((d >= 65 && d <= 90) || (d >= 97 && d <= 122) || d === 95 || (d >= 48 && d <= 57))
            d = text.charCodeAt(++p);
          if (d !== 58 || p > eol) return false;
        }
      }
      i = eol + 1;
    }
    this.cur = cur;
    return true;
  }
}

/**
 * The header of a mapping whose page-cache pages smaps_rollup cannot place among the four
 * memory types: MAP_SHARED (perms `...s`; group 3 its name, if any), or MAP_PRIVATE with a
 * shmem name (group 4). Groups 1 and 2 are the addresses. The full parser's VMA_HEADER, by branch.
 */
const SPLIT_HEADER = new RegExp(
  '^([0-9a-f]+)-([0-9a-f]+) [r-][w-][x-](?:s [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ \\d+(?: +(.*))?|' +
    `p [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ \\d+ +((?:${SHMEM_NAME_PREFIXES.map((p) => p.replace(/[[\]/]/g, '\\$&')).join('|')}).*))$`,
  'gm',
);
/** The start of the next mapping: a line that begins with a hex digit (fields begin with a letter A-Z). */
const NEXT_HEADER = /\n[0-9a-f]/g;

/** The mappings of an smaps text that smaps_rollup's sums cannot split (see `smapsSplit`). */
export interface SmapsSplit {
  /** Each mapping's page cache (Rss less Anonymous) is added to one of these, by its name and perms. */
  mappings: { pathname: string; shared: boolean; cacheBytes: number }[];
}

/**
 * `Key:<spaces>N kB` once in [from, to) of `text`, in bytes: -1 when absent, -2 when it is
 * repeated, malformed or not a size below 2^53 bytes (the full parser rejects those).
 */
function kbFieldIn(text: string, needle: string, from: number, to: number): number {
  const at = text.indexOf(needle, from);
  if (at < 0 || at >= to) return -1;
  const again = text.indexOf(needle, at + 1);
  if (again >= 0 && again < to) return -2;
  const p = at + needle.length;
  if (text.charCodeAt(p) !== SPACE) return -2;
  const v = kbToEol(text, skipBlanksOnly(text, p));
  return v < 0 || !Number.isSafeInteger(v) ? -2 : v;
}

/**
 * From /proc/PID/smaps, only the mappings whose page cache smaps_rollup cannot place: those
 * mapped MAP_SHARED and those named as shmem, each with its name, whether it is shared, and its
 * Rss less Anonymous, as parseSmaps reads them (`ps` of a process that maps a file MAP_SHARED:
 * bash maps glibc's gconv-modules.cache so, and its smaps is a thousand lines the full parser
 * turns into objects, where a regular-expression search finds the few mappings that matter).
 * Undefined when what it reads is not what the full parser would read: a CR (the full parser
 * drops it), a last line cut, a last mapping without Rss, a matched header whose end is below
 * its start, an Rss missing or repeated, a size that is not `N kB`. The other mappings' lines
 * are not looked at: a malformed line there is the full parser's to find.
 */
export function smapsSplit(text: string): SmapsSplit | undefined {
  const n = text.length;
  if (n === 0) return { mappings: [] }; // no mm: a kernel thread, an exited process
  if (text.charCodeAt(n - 1) !== NL || text.indexOf('\r') >= 0) return undefined;
  // A read cut inside the last mapping (a process exiting meanwhile) leaves it without its Rss,
  // which the full parser rejects: the last mapping is looked at whatever it is.
  let last = text.lastIndexOf('\n', n - 2);
  while (last >= 0 && !HEX(text.charCodeAt(last + 1)))
    last = last > 0 ? text.lastIndexOf('\n', last - 1) : -1;
  if (!HEX(text.charCodeAt(last + 1)) || text.indexOf('\nRss:', last + 1) < 0) return undefined;
  const mappings: SmapsSplit['mappings'] = [];
  SPLIT_HEADER.lastIndex = 0;
  for (let h = SPLIT_HEADER.exec(text); h !== null; h = SPLIT_HEADER.exec(text)) {
    const start = h[1]!;
    const end = h[2]!;
    if (start.length > end.length || (start.length === end.length && start > end)) {
      // Leading zeros: compare as numbers before declining.
      if (BigInt(`0x${start}`) > BigInt(`0x${end}`)) return undefined;
    }
    const from = SPLIT_HEADER.lastIndex;
    NEXT_HEADER.lastIndex = from;
    const to = NEXT_HEADER.exec(text)?.index ?? n;
    const rss = kbFieldIn(text, '\nRss:', from, to);
    const anon = kbFieldIn(text, '\nAnonymous:', from, to);
    if (rss < 0 || anon === -2) return undefined;
    const shared = h[4] === undefined;
    mappings.push({
      pathname: (shared ? h[3] : h[4]) ?? '',
      shared,
      cacheBytes: rss - Math.min(anon < 0 ? 0 : anon, rss),
    });
    SPLIT_HEADER.lastIndex = to;
  }
  return { mappings };
}
