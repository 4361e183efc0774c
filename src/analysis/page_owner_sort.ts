/**
 * A drop-in for the kernel's page_owner_sort (tools/vm/page_owner_sort.c in 5.18-6.6,
 * tools/mm/page_owner_sort.c in 6.7+): same options, same output bytes, but streaming.
 *
 * What the C tool does: read every record into RAM, sort all of them by the cull key,
 * merge neighbours with equal keys (the first record of a run, in input order since
 * glibc's qsort is a stable merge sort, represents the group), then sort the groups.
 * The output therefore depends only on the groups: we keep one entry per distinct cull
 * key (its first record's fields, count and pages), never the records. With no --cull
 * the key is the whole record text (6.7+: minus the `ts` digits, unless sorting by
 * allocation time first; 6.6 and older keep ts and free_ts), so memory grows with the
 * distinct texts; in that case with `-a` (6.7+) or any 6.1-compatible run on a dump
 * with timestamps nearly every record is its own group and must be kept (compactly:
 * header line plus an interned stack id).
 *
 * Text is handled as latin1 so each byte is one UTF-16 unit: string comparison is then
 * strcmp's unsigned byte order and the output is byte-identical.
 */
import type { PageOwnerInput, RawBlock, ScanProgress } from '../sources/page_owner.js';
import { scanBlocks } from '../sources/page_owner.js';

export type SortCompat = '6.1' | '6.12';

type SortKeyName =
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

/** What the command line asked for, or what to print and the exit status. */
export type SortArgv =
  | { ok: true; config: SortConfig }
  | { ok: false; stdout: string; stderr: string; status: number };

const USAGE_6_12 =
  'Usage: ./page_owner_sort [OPTIONS] <input> <output>\n' +
  '-a\t\t\tSort by memory allocation time.\n' +
  '-m\t\t\tSort by total memory.\n' +
  '-n\t\t\tSort by task command name.\n' +
  '-p\t\t\tSort by pid.\n' +
  '-P\t\t\tSort by tgid.\n' +
  '-s\t\t\tSort by the stacktrace.\n' +
  '-t\t\t\tSort by number of times record is seen (default).\n\n' +
  '--pid <pidlist>\t\tSelect by pid. This selects the information of\n\t\t\tblocks whose process ID numbers appear in <pidlist>.\n' +
  '--tgid <tgidlist>\tSelect by tgid. This selects the information of\n\t\t\tblocks whose Thread Group ID numbers appear in <tgidlist>.\n' +
  '--name <cmdlist>\tSelect by command name. This selects the information\n\t\t\tof blocks whose command name appears in <cmdlist>.\n' +
  '--cull <rules>\t\tCull by user-defined rules. <rules> is a single\n\t\t\targument in the form of a comma-separated list with some\n\t\t\tcommon fields predefined (pid, tgid, comm, stacktrace, allocator)\n' +
  '--sort <order>\t\tSpecify sort order as: [+|-]key[,[+|-]key[,...]]\n';

const USAGE_6_1 =
  'Usage: ./page_owner_sort [OPTIONS] <input> <output>\n' +
  '-m\t\tSort by total memory.\n' +
  '-s\t\tSort by the stack trace.\n' +
  '-t\t\tSort by times (default).\n' +
  '-p\t\tSort by pid.\n' +
  '-P\t\tSort by tgid.\n' +
  '-n\t\tSort by task command name.\n' +
  '-a\t\tSort by memory allocate time.\n' +
  '-r\t\tSort by memory release time.\n' +
  '-f\t\tFilter out the information of blocks whose memory has been released.\n' +
  '-d\t\tPrint debug information.\n' +
  '--pid <pidlist>\tSelect by pid. This selects the information of blocks whose process ID numbers appear in <pidlist>.\n' +
  '--tgid <tgidlist>\tSelect by tgid. This selects the information of blocks whose Thread Group ID numbers appear in <tgidlist>.\n' +
  '--name <cmdlist>\n\t\tSelect by command name. This selects the information of blocks whose command name appears in <cmdlist>.\n' +
  '--cull <rules>\tCull by user-defined rules.<rules> is a single argument in the form of a comma-separated list with some common fields predefined\n' +
  '--sort <order>\tSpecify sort order as: [+|-]key[,[+|-]key[,...]]\n';

export function sortUsage(compat: SortCompat): string {
  return compat === '6.1' ? USAGE_6_1 : USAGE_6_12;
}

/** get_arg_type(): key names and their short forms. */
function argType(arg: string, compat: SortCompat): SortKeyName | 'free' | undefined {
  switch (arg) {
    case 'pid':
    case 'p':
      return 'pid';
    case 'tgid':
    case 'tg':
      return 'tgid';
    case 'name':
    case 'n':
      return 'comm';
    case 'stacktrace':
    case 'st':
      return 'stacktrace';
    case 'txt':
    case 'T':
      return 'txt';
    case 'alloc_ts':
    case 'at':
      return 'ts';
    case 'allocator':
    case 'ator':
      return 'allocator';
  }
  if (compat === '6.1') {
    if (arg === 'free' || arg === 'f') return 'free';
    if (arg === 'free_ts' || arg === 'ft') return 'free_ts';
  }
  return undefined;
}

const LONG_MAX = 9223372036854775807n;

/** strtol(s, &end, 10) with the C tool's checks; undefined when it rejects the text. */
function strtolStrict(s: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(s);
  if (!m) return undefined;
  let v = BigInt(m[2]!);
  if (m[1] === '-') v = -v;
  if (v > LONG_MAX || v < -LONG_MAX - 1n) return undefined; // ERANGE
  return Number(BigInt.asIntN(32, v)); // stored in an int
}

/**
 * Parse argv exactly as page_owner_sort's getopt_long loop does (GNU argument
 * permutation, clustered short options, `--opt=value` and unique prefixes of long
 * options), including its messages and exit status 1.
 */
export function parseSortArgv(argv: readonly string[], compat: SortCompat, argv0: string): SortArgv {
  const shortOpts = compat === '6.1' ? 'adfmnprstP' : 'admnpstP';
  const longOpts = ['pid', 'tgid', 'name', 'cull', 'sort'] as const;
  const usage = sortUsage(compat);
  let stderr = '';
  const fail = (msg: string, withUsage: boolean): SortArgv => ({
    ok: false,
    stdout: withUsage ? usage : '',
    stderr: stderr + msg,
    status: 1,
  });
  const cfg: SortConfig = {
    compat,
    cull: 0,
    filter: 0,
    pids: [],
    tgids: [],
    comms: [],
    sort: [],
    debug: false,
    input: '',
    output: '',
  };
  let compareFlag = 0; // 6.12: one bit per sort flag
  const single = (key: SortKeyName, sign: 1 | -1) => {
    cfg.sort = [{ key, sign }];
  };
  const positionals: string[] = [];
  const posixly = process.env.POSIXLY_CORRECT !== undefined;

  const applyLong = (name: (typeof longOpts)[number], val: string): SortArgv | undefined => {
    if (name === 'pid' || name === 'tgid') {
      cfg.filter |= name === 'pid' ? FILTER_PID : FILTER_TGID;
      const nums: number[] = [];
      for (const part of val.split(',')) {
        const n = strtolStrict(part);
        if (n === undefined) return fail(`wrong/invalid ${name} in from the command line:${val}\n`, false);
        nums.push(n);
      }
      if (name === 'pid') cfg.pids = nums;
      else cfg.tgids = nums;
    } else if (name === 'name') {
      cfg.filter |= FILTER_COMM;
      cfg.comms = val.split(',');
    } else if (name === 'cull') {
      for (const part of val.split(',')) {
        const t = argType(part, compat);
        if (t === 'pid') cfg.cull |= CULL_PID;
        else if (t === 'tgid') cfg.cull |= CULL_TGID;
        else if (t === 'comm') cfg.cull |= CULL_COMM;
        else if (t === 'stacktrace') cfg.cull |= CULL_STACKTRACE;
        else if (t === 'allocator') cfg.cull |= CULL_ALLOCATOR;
        else if (t === 'free') cfg.cull |= CULL_UNRELEASE;
        else return fail(`wrong argument after --cull option:${val}\n`, false);
      }
      if (cfg.sort.length === 0) single('num', -1);
    } else {
      const keys: SortKey[] = [];
      for (const part of val.split(',')) {
        let sign: 1 | -1 = 1;
        let off = 0;
        if (part[0] === '-' || part[0] === '+') {
          if (part[0] === '-') sign = -1;
          off = 1;
        }
        const t = argType(part.slice(off), compat);
        if (t === undefined || t === 'free') {
          cfg.sort = [];
          return fail(`wrong argument after --sort option:${val}\n`, false);
        }
        keys.push({ key: t, sign });
      }
      cfg.sort = keys;
    }
    return undefined;
  };

  const applyShort = (c: string): void => {
    if (compat === '6.1') {
      if (c === 'a') single('ts', 1);
      else if (c === 'd') cfg.debug = true;
      else if (c === 'f') cfg.filter |= FILTER_UNRELEASE;
      else if (c === 'm') single('page_num', -1);
      else if (c === 'p') single('pid', 1);
      else if (c === 'r') single('free_ts', 1);
      else if (c === 's') single('stacktrace', 1);
      else if (c === 't') single('num', -1);
      else if (c === 'P') single('tgid', 1);
      else if (c === 'n') single('comm', 1);
      return;
    }
    const bits: Record<string, number> = { a: 1, m: 2, p: 4, s: 8, t: 16, P: 32, n: 64 };
    if (c === 'd') cfg.debug = true;
    else compareFlag |= bits[c]!;
  };

  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.length < 2 || arg[0] !== '-') {
      if (posixly) {
        positionals.push(...argv.slice(i));
        break;
      }
      positionals.push(arg);
      i++;
      continue;
    }
    if (arg.startsWith('--')) {
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      let found = longOpts.find((o) => o === name);
      if (!found) {
        const cands = longOpts.filter((o) => o.startsWith(name));
        // Every long option has a distinct first letter, so a prefix is never ambiguous.
        if (cands.length === 1 && name !== '') found = cands[0];
      }
      if (!found) return fail(`${argv0}: unrecognized option '--${body}'\n`, true);
      i++;
      let val: string;
      if (eq >= 0) val = body.slice(eq + 1);
      else if (i < argv.length) val = argv[i++]!;
      else return fail(`${argv0}: option '--${found}' requires an argument\n`, true);
      const r = applyLong(found, val);
      if (r) return r;
      continue;
    }
    for (let k = 1; k < arg.length; k++) {
      const c = arg[k]!;
      if (!shortOpts.includes(c) || c === ':') return fail(`${argv0}: invalid option -- '${c}'\n`, true);
      applyShort(c);
    }
    i++;
  }
  if (positionals.length < 2) return fail('', true);
  if (compat === '6.12') {
    switch (compareFlag) {
      case 1:
        single('ts', 1);
        break;
      case 2:
        single('page_num', -1);
        break;
      case 4:
        single('pid', 1);
        break;
      case 8:
        single('stacktrace', 1);
        break;
      case 0:
      case 16:
        // Also replaces any --sort: the 6.7+ tool does this (bug-compatible).
        single('num', -1);
        break;
      case 32:
        single('tgid', 1);
        break;
      case 64:
        single('comm', 1);
        break;
      default:
        return fail('', true);
    }
  }
  cfg.input = positionals[0]!;
  cfg.output = positionals[1]!;
  stderr = '';
  return { ok: true, config: cfg };
}

/** One group: the fields of its first record, and the counts of all of its records. */
interface Group {
  /**
   * Header line with its "\n" (6.7+: ts digits removed unless sorting by ts first),
   * kept as an interned prefix (up to ", pid ": order and mask, few distinct) and the
   * rest of the line, so a group costs a few dozen bytes, not a copy of its text.
   */
  prefix: string;
  suffix: string;
  /** Everything after the header: frames and extra lines, each ending in "\n" (interned). */
  rest: string;
  prefixId: number;
  restId: number;
  num: number;
  pages: number;
  pid: number;
  tgid: number;
  comm: string;
  ts: bigint;
  freeTs: bigint;
  allocator: number;
}

const WS = '[ \\t\\n\\v\\f\\r]';
const RE_ORDER = new RegExp(`order${WS}*([0-9]*),`);
const RE_PID = new RegExp(`pid${WS}*([0-9]*),`);
const RE_TGID = new RegExp(`tgid${WS}*([0-9]*) `);
const RE_COMM = new RegExp(`tgid${WS}*[0-9]*${WS}*\\(([^\\n]*)\\),${WS}*ts`);
const RE_TS_612 = new RegExp(`ts${WS}*([0-9]*)${WS}*ns`);
const RE_TS_61 = new RegExp(`ts${WS}*([0-9]*)${WS}*ns,`);
const RE_FREE_TS = new RegExp(`free_ts${WS}*([0-9]*)${WS}*ns`);
const U64_MAX = (1n << 64n) - 1n;

export interface SortIo {
  /** The C tool's progress lines ("loaded N", "sorting ....", "culling") go here. */
  progressOut: (s: string) => void;
  /** Debug (-d) and warnings. */
  errOut: (s: string) => void;
  /** Output text (latin1 string, one byte per char). */
  write: (s: string) => void;
  onProgress?: (p: ScanProgress) => void;
}

export interface SortResult {
  records: number;
  loaded: number;
  groups: number;
  bytes: number;
}

/**
 * Run the sort over the input and write the C tool's output. The engine evaluates the
 * same regular expressions as the C tool, on the header line first (where they match
 * in every real dump) and on the whole record when the header has no match.
 */
export async function runPageOwnerSort(
  cfg: SortConfig,
  input: PageOwnerInput,
  io: SortIo,
): Promise<SortResult> {
  const is61 = cfg.compat === '6.1';
  const reTs = is61 ? RE_TS_61 : RE_TS_612;
  const firstIsTs = cfg.sort[0]?.key === 'ts';
  const stripTs = !is61 && !firstIsTs;
  const cull = cfg.cull;
  const filter = cfg.filter;
  const debug = cfg.debug;
  const groups = new Map<string, Group>();
  const restIds = new Map<string, number>();
  const restById: string[] = [];
  const prefixIds = new Map<string, number>();
  const prefixById: string[] = [];
  const prefixPages: (number | undefined)[] = [];
  const sortKeys = new Set(cfg.sort.map((k) => k.key));
  // Fields of a group's first record that the sort or the output reads.
  const needPid = debug || cull & CULL_PID || filter & FILTER_PID || sortKeys.has('pid');
  const needTgid = debug || cull & CULL_TGID || filter & FILTER_TGID || sortKeys.has('tgid');
  const needComm = debug || cull & CULL_COMM || filter & FILTER_COMM || sortKeys.has('comm');
  const needTs = debug || sortKeys.has('ts');
  const needFreeTs = is61 && (debug || cull & CULL_UNRELEASE || sortKeys.has('free_ts'));
  const needAllocator = cull === 0 || cull & CULL_ALLOCATOR || sortKeys.has('allocator');
  let listSize = 0;
  let records = 0;
  let headersSeen = 0;
  // ext_buf: the last PFN line seen, kept across records like the C tool's buffer.
  let extLine = '';
  // The PFN line of the current chunk not decoded yet (most records never need it).
  let extStart = -1;
  let extEnd = -1;
  let extBuf: Buffer | undefined;
  const ext = (): string => {
    if (extStart >= 0) {
      extLine = extBuf!.toString('latin1', extStart, extEnd);
      extStart = -1;
    }
    return extLine;
  };
  let prevRaw: string | undefined; // 6.1: text of the last record added to the list
  let prevGroup: Group | undefined;
  let nextPfn = -2; // cached position of the next "\nPFN" in the current buffer
  let generation = -1;
  // The previous record's stack bytes, while they are still in the buffer.
  let prevRestGen = -1;
  let prevRestStart = 0;
  let prevRestEnd = 0;
  let prevRestId = 0;

  const dbg = (s: string) => {
    if (debug) io.errOut(s);
  };

  const onBlock = (b: RawBlock): void => {
    if (b.unterminated) {
      // read_block() returns -1 at end of file: a record without its blank line is
      // dropped. Say so instead of dropping it silently.
      io.errOut(
        `memsleuth: warning: the input does not end with a blank line; ignored the last ${b.end - b.start} bytes from byte ${b.offset} (a truncated record?)\n`,
      );
      return;
    }
    records++;
    const buf = b.buf;
    if (b.generation !== generation) {
      generation = b.generation;
      nextPfn = -2;
    }
    // Split off PFN lines (read_block() copies them to ext_buf, not to the record).
    let head: string;
    let rest: string;
    let restIdHint: number | undefined;
    let restStart = -1;
    const s = b.start;
    const e = b.end;
    if (s === e) {
      head = '';
      rest = '';
    } else {
      if (nextPfn !== -1 && nextPfn < s - 1) nextPfn = buf.indexOf('\nPFN', s > 0 ? s - 1 : 0);
      const startsWithPfn = buf[s] === 80 && buf[s + 1] === 70 && buf[s + 2] === 78;
      const nl1 = buf.indexOf(10, s);
      let fast = false;
      head = '';
      rest = '';
      if (!startsWithPfn && (nextPfn < 0 || nextPfn >= e - 1)) {
        head = buf.toString('latin1', s, nl1 + 1);
        rest = nl1 + 1 < e ? buf.toString('latin1', nl1 + 1, e) : '';
        fast = true;
      } else if (!startsWithPfn && nextPfn === nl1) {
        // The usual shape: header, PFN line, frames.
        const pfnEnd = buf.indexOf(10, nl1 + 1) + 1;
        nextPfn = buf.indexOf('\nPFN', pfnEnd - 1);
        if (nextPfn < 0 || nextPfn >= e - 1) {
          extBuf = buf;
          extStart = nl1 + 1;
          extEnd = pfnEnd;
          head = buf.toString('latin1', s, nl1 + 1);
          // Neighbouring records usually share their stack: compare bytes before decoding.
          if (
            prevRestGen === generation &&
            prevRestEnd - prevRestStart === e - pfnEnd &&
            buf.compare(buf, pfnEnd, e, prevRestStart, prevRestEnd) === 0
          ) {
            rest = restById[prevRestId]!;
            restIdHint = prevRestId;
          } else {
            rest = pfnEnd < e ? buf.toString('latin1', pfnEnd, e) : '';
          }
          restStart = pfnEnd;
          fast = true;
        }
      }
      if (!fast) {
        // General case: drop every line that starts with "PFN", keep the last one.
        const kept: string[] = [];
        let p = s;
        while (p < e) {
          const nl = buf.indexOf(10, p);
          const lineEnd = nl < 0 || nl >= e ? e : nl + 1;
          if (buf[p] === 80 && buf[p + 1] === 70 && buf[p + 2] === 78) {
            extLine = buf.toString('latin1', p, lineEnd);
            extStart = -1;
          } else kept.push(buf.toString('latin1', p, lineEnd));
          p = lineEnd;
        }
        if (nextPfn >= 0 && nextPfn < e - 1) nextPfn = buf.indexOf('\nPFN', e - 1);
        const txt = kept.join('');
        const nl = txt.indexOf('\n');
        head = nl < 0 ? txt : txt.slice(0, nl + 1);
        rest = nl < 0 ? '' : txt.slice(nl + 1);
      }
    }
    if (head.startsWith('Page allocated via order ')) headersSeen++;
    // The C buffer the regexes see: the record text followed by the blank line's "\n"
    // (the ts digits are removed from the stored copy only, never from this one).
    const head0 = head;
    const rest0 = rest;
    let whole: string | undefined;
    const full = () => {
      whole ??= `${head0}${rest0}\n`;
      return whole;
    };
    const search = (re: RegExp): string | undefined => {
      const m = re.exec(head0) ?? re.exec(full());
      if (!m) {
        dbg(`no matching pattern in ${full()}\n`);
        return undefined;
      }
      return m[1];
    };
    const getInt = (re: RegExp, what: string): number => {
      const d = search(re) ?? '';
      if (d === '') {
        dbg(`wrong/invalid ${what} in follow buf:\n${full()}\n`);
        return -1;
      }
      if (d.length <= 9) return Number(d);
      const v = BigInt(d);
      if (v > LONG_MAX) {
        dbg(`wrong/invalid ${what} in follow buf:\n${full()}\n`);
        return -1;
      }
      return Number(BigInt.asIntN(32, v));
    };
    const getPid = () => getInt(RE_PID, 'pid');
    const getTgid = () => getInt(RE_TGID, 'tgid');
    const getComm = () => search(RE_COMM) ?? '';
    const getU64 = (re: RegExp, what: string): bigint => {
      const d = search(re) ?? '';
      const v = d === '' ? -1n : BigInt(d);
      if (v < 0n || v > U64_MAX) {
        dbg(`wrong ${what} in follow buf:\n${full()}\n`);
        return U64_MAX;
      }
      return v;
    };
    const getTs = () => getU64(reTs, 'ts_nsec');
    const getFreeTs = () => getU64(RE_FREE_TS, 'free_ts_nsec');
    const getPageNum = (): number => {
      const d = search(RE_ORDER) ?? '';
      let order: number | undefined;
      if (d.length > 0 && d.length <= 9) order = Number(d);
      else if (d !== '') {
        const v = BigInt(d);
        if (v <= LONG_MAX) order = Number(BigInt.asIntN(32, v));
      }
      if (order === undefined || order > 64) {
        dbg(`wrong order in follow buf:\n${full()}\n`);
        return 0;
      }
      return 1 << order;
    };
    const getAllocator = (): number => {
      let a = 0;
      const pfnLine = ext();
      if (pfnLine.includes('CMA')) a |= ALLOCATOR_CMA;
      if (pfnLine.includes('slab')) a |= ALLOCATOR_SLAB;
      const t = full();
      const at = t.indexOf('__vmalloc_node_range');
      if (at >= 0) {
        // The line before the one naming __vmalloc_node_range must call alloc_pages.
        const lineStart = t.lastIndexOf('\n', at);
        const prevStart = lineStart <= 0 ? 0 : t.lastIndexOf('\n', lineStart - 1) + 1;
        const ap = t.indexOf('alloc_pages', prevStart);
        if (ap >= 0 && ap < at) a |= ALLOCATOR_VMALLOC;
      }
      return a === 0 ? ALLOCATOR_OTHERS : a;
    };

    if (is61) {
      // add_list(): a record identical to the previous one is counted on it at once.
      if (prevGroup !== undefined && prevRaw === head + rest) {
        prevGroup.num++;
        prevGroup.pages = (prevGroup.pages + getPageNum()) | 0;
        return;
      }
      // is_need()
      if (debug || filter & FILTER_UNRELEASE) {
        const ts = getTs();
        const freeTs = getFreeTs();
        if (filter & FILTER_UNRELEASE && freeTs !== 0n && ts < freeTs) return;
      }
    }
    if (filter & FILTER_PID && !cfg.pids.includes(getPid())) return;
    if (filter & FILTER_TGID && !cfg.tgids.includes(getTgid())) return;
    if (debug || filter & FILTER_COMM) {
      const comm = getComm();
      if (filter & FILTER_COMM && !cfg.comms.includes(comm)) return;
    }
    // add_list()
    const needFields = debug || cull !== 0;
    let pid = 0;
    let tgid = 0;
    let comm = '';
    if (needFields) {
      pid = getPid();
      tgid = getTgid();
      comm = getComm();
    }
    const raw = is61 ? head + rest : undefined;
    let stripAt = -1;
    if (stripTs) {
      const fast = fastTsDigits(head);
      const m = fast === undefined ? RE_TS_612.exec(head) : null;
      if (fast !== undefined) {
        if (fast[1] > fast[0]) {
          stripAt = fast[0];
          head = head.slice(0, fast[0]) + head.slice(fast[1]);
        }
      } else if (m) {
        const at = m.index + m[0].indexOf(m[1]!, 2);
        if (m[1]!.length) {
          stripAt = at;
          head = head.slice(0, at) + head.slice(at + m[1]!.length);
        }
      } else if (!RE_TS_612.test(full())) {
        // no ts anywhere: nothing to remove
      } else {
        const t = full().slice(0, -1);
        const m2 = RE_TS_612.exec(t)!;
        const at = m2.index + m2[0].indexOf(m2[1]!, 2);
        const stripped = t.slice(0, at) + t.slice(at + m2[1]!.length);
        const nl = stripped.indexOf('\n');
        head = nl < 0 ? stripped : stripped.slice(0, nl + 1);
        rest = nl < 0 ? '' : stripped.slice(nl + 1);
        restIdHint = undefined;
        restStart = -1;
      }
    }
    let pageNum: number | undefined;
    let ts: bigint | undefined;
    let freeTs: bigint | undefined;
    let allocator: number | undefined;
    if (debug) {
      pageNum = getPageNum();
      ts = getTs();
      if (is61) freeTs = getFreeTs();
    }
    let restId = restIdHint ?? restIds.get(rest);
    if (restId === undefined) {
      restId = restById.length;
      restIds.set(rest, restId);
      restById.push(rest);
    }
    if (restStart >= 0) {
      prevRestGen = generation;
      prevRestStart = restStart;
      prevRestEnd = e;
      prevRestId = restId;
    } else prevRestGen = -1;
    const cut = head.indexOf(', pid ');
    const prefixText = cut < 0 ? '' : head.slice(0, cut);
    const suffix = cut < 0 ? head : head.slice(cut);
    let prefixId = prefixIds.get(prefixText);
    if (prefixId === undefined) {
      prefixId = prefixById.length;
      prefixIds.set(prefixText, prefixId);
      prefixById.push(prefixText);
    }
    let key: string;
    if (cull === 0) {
      key = `${restId},${prefixId},${suffix}`;
    } else {
      key = cull & CULL_STACKTRACE ? `${restId}` : '';
      if (cull & CULL_PID) key += `,${pid}`;
      if (cull & CULL_TGID) key += `,${tgid}`;
      if (cull & CULL_COMM) key += `,${comm}`;
      if (cull & CULL_UNRELEASE) {
        freeTs ??= getFreeTs();
        key += freeTs !== 0n ? ',u' : ',r';
      }
      if (cull & CULL_ALLOCATOR) {
        allocator = getAllocator();
        key += `,${allocator}`;
      }
    }
    if (pageNum === undefined) {
      // The order is in the prefix ("Page allocated via order N, mask ..."): one regex
      // per distinct prefix, unless the ts digits were cut inside it.
      if (stripAt < 0 || stripAt > cut) {
        pageNum = prefixPages[prefixId];
        if (pageNum === undefined) {
          const m = RE_ORDER.exec(prefixText);
          // Only when it is the first "order" of the header: then it is the leftmost match.
          if (m && m.index === head0.indexOf('order')) {
            pageNum = pageNumOf(m[1]!);
            prefixPages[prefixId] = pageNum;
          } else pageNum = getPageNum();
        }
      } else pageNum = getPageNum();
    }
    let g = groups.get(key);
    if (g === undefined) {
      if (!needFields) {
        if (needPid) pid = getPid();
        if (needTgid) tgid = getTgid();
        if (needComm) comm = getComm();
      }
      g = {
        prefix: prefixById[prefixId]!,
        suffix,
        rest: restById[restId]!,
        prefixId,
        restId,
        num: 1,
        pages: pageNum,
        pid,
        tgid,
        comm,
        ts: ts ?? (needTs ? getTs() : 0n),
        freeTs: freeTs ?? (needFreeTs ? getFreeTs() : 0n),
        allocator: allocator ?? (needAllocator ? getAllocator() : 0),
      };
      groups.set(key, g);
    } else {
      g.num++;
      g.pages = (g.pages + pageNum) | 0;
    }
    if (is61) {
      prevRaw = raw;
      prevGroup = g;
    }
    listSize++;
    if (listSize % 1000 === 0) io.progressOut(`loaded ${listSize}\r`);
  };

  const scan = await scanBlocks(input, onBlock, {
    file: cfg.input === '-' ? '<stdin>' : cfg.input,
    ...(io.onProgress ? { onProgress: io.onProgress } : {}),
    // Decode the pending PFN line before the buffer moves: a next record without one
    // would use it (read_block() leaves ext_buf as it was).
    beforeShift: () => void ext(),
  });
  io.progressOut(`loaded ${listSize}\nsorting ....\nculling\n`);
  if (headersSeen === 0) {
    // The C tool sorts anything; say when the input cannot be page_owner output.
    io.errOut(
      scan.bytes === 0
        ? 'memsleuth: warning: the input is empty\n'
        : 'memsleuth: warning: no record starts with "Page allocated via order": is this /sys/kernel/debug/page_owner output?\n',
    );
  }

  // The C tool's first sort: by the cull condition, a total order on distinct keys.
  const list = [...groups.values()];
  groups.clear();
  const cmp = textComparators(prefixById, restById);
  const byCull = cullCompare(cull, cmp);
  const bySort = sortCompare(cfg.sort, cfg.compat, cmp);
  let sorted: Group[];
  if (is61 && (sortKeys.has('ts') || sortKeys.has('free_ts'))) {
    // 6.6's ts comparators never return 0: replay glibc's two sorts exactly.
    list.sort(byCull);
    sorted = glibcMsort(list, bySort);
  } else {
    // Two stable sorts (cull order, then sort keys) equal one sort by both: the cull
    // keys are distinct, so this is a total order and any sort gives the same result.
    sorted = list.sort((a, b) => bySort(a, b) || byCull(a, b));
  }

  const out: string[] = [];
  let outLen = 0;
  const emit = (s: string) => {
    out.push(s);
    outLen += s.length;
    if (outLen >= 1 << 20) {
      io.write(out.join(''));
      out.length = 0;
      outLen = 0;
    }
  };
  for (const g of sorted) {
    if (cull === 0) {
      emit(
        `${g.num} times, ${g.pages} pages, ${allocatorText(g.allocator)}:\n${g.prefix}${g.suffix}${g.rest}\n`,
      );
    } else {
      let s = `${g.num} times, ${g.pages} pages`;
      if (cull & CULL_PID || filter & FILTER_PID) s += `, PID ${g.pid}`;
      if (cull & CULL_TGID || filter & FILTER_TGID) s += `, TGID ${g.tgid}`;
      if (cull & CULL_COMM || filter & FILTER_COMM) s += `, task_comm_name: ${g.comm}`;
      if (cull & CULL_ALLOCATOR) s += `, ${allocatorText(g.allocator)}`;
      if (cull & CULL_UNRELEASE) s += ` (${g.freeTs !== 0n ? 'UNRELEASED' : 'RELEASED'})`;
      if (cull & CULL_STACKTRACE) s += `:\n${g.rest}`;
      emit(`${s}\n`);
    }
  }
  if (out.length) io.write(out.join(''));
  return { records, loaded: listSize, groups: sorted.length, bytes: scan.bytes };
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

function allocatorText(a: number): string {
  let s = 'allocated by ';
  if (a & ALLOCATOR_CMA) s += 'CMA ';
  if (a & ALLOCATOR_SLAB) s += 'SLAB ';
  if (a & ALLOCATOR_VMALLOC) s += 'VMALLOC ';
  if (a & ALLOCATOR_OTHERS) s += 'OTHERS ';
  return s;
}

const strcmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** strcmp(a1 + a2, b1 + b2) without building the strings when a1 and b1 decide. */
function strcmp2(a1: string, a2: string, b1: string, b2: string): number {
  if (a1 === b1) return strcmp(a2, b2);
  if (!a1.startsWith(b1) && !b1.startsWith(a1)) return strcmp(a1, b1);
  return strcmp(a1 + a2, b1 + b2);
}

interface TextComparators {
  /** compare_txt(): the whole record text (header, then the rest). */
  txt: (a: Group, b: Group) => number;
  /** compare_stacktrace(). */
  stack: (a: Group, b: Group) => number;
}

/**
 * strcmp over interned texts by rank: the distinct stacks and header prefixes are sorted
 * once, so sorting the groups compares integers. When one prefix is a prefix of another
 * (headers without ", pid "), the header falls back to comparing text.
 */
function textComparators(prefixById: readonly string[], restById: readonly string[]): TextComparators {
  const rank = (texts: readonly string[]) => {
    const order = texts.map((_, i) => i).sort((x, y) => strcmp(texts[x]!, texts[y]!));
    const r = new Int32Array(texts.length);
    order.forEach((id, i) => {
      r[id] = i;
    });
    let nested = false;
    for (let i = 1; i < order.length; i++)
      if (texts[order[i]!]!.startsWith(texts[order[i - 1]!]!)) nested = true;
    return { r, nested };
  };
  const rest = rank(restById).r;
  const pre = rank(prefixById);
  const stack = (a: Group, b: Group) => rest[a.restId]! - rest[b.restId]!;
  const txt = pre.nested
    ? (a: Group, b: Group) => strcmp2(a.prefix, a.suffix, b.prefix, b.suffix) || stack(a, b)
    : (a: Group, b: Group) =>
        a.prefixId !== b.prefixId
          ? pre.r[a.prefixId]! - pre.r[b.prefixId]!
          : strcmp(a.suffix, b.suffix) || stack(a, b);
  return { txt, stack };
}

function cullCompare(cull: number, t: TextComparators): (a: Group, b: Group) => number {
  if (cull === 0) return t.txt;
  const cmps: ((a: Group, b: Group) => number)[] = [];
  if (cull & CULL_STACKTRACE) cmps.push(t.stack);
  if (cull & CULL_PID) cmps.push((a, b) => a.pid - b.pid);
  if (cull & CULL_TGID) cmps.push((a, b) => a.tgid - b.tgid);
  if (cull & CULL_COMM) cmps.push((a, b) => strcmp(a.comm, b.comm));
  if (cull & CULL_UNRELEASE) cmps.push(compareRelease);
  if (cull & CULL_ALLOCATOR) cmps.push((a, b) => a.allocator - b.allocator);
  return (a, b) => {
    for (const cmp of cmps) {
      const c = cmp(a, b);
      if (c !== 0) return c;
    }
    return 0;
  };
}

function compareRelease(a: Group, b: Group): number {
  const fa = a.freeTs !== 0n;
  const fb = b.freeTs !== 0n;
  if (fa === fb) return 0;
  return fa ? 1 : -1;
}

function keyCompare(k: SortKeyName, compat: SortCompat, t: TextComparators): (a: Group, b: Group) => number {
  switch (k) {
    case 'num':
      return (a, b) => a.num - b.num;
    case 'page_num':
      return (a, b) => a.pages - b.pages;
    case 'pid':
      return (a, b) => a.pid - b.pid;
    case 'tgid':
      return (a, b) => a.tgid - b.tgid;
    case 'comm':
      return (a, b) => strcmp(a.comm, b.comm);
    case 'stacktrace':
      return t.stack;
    case 'txt':
      return t.txt;
    case 'allocator':
      return (a, b) => a.allocator - b.allocator;
    case 'ts':
      // 6.6 and older never return 0 (an inconsistent comparator; glibc's merge sort
      // then decides, which glibcMsort reproduces).
      return compat === '6.1'
        ? (a, b) => (a.ts < b.ts ? -1 : 1)
        : (a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0);
    case 'free_ts':
      return (a, b) => (a.freeTs < b.freeTs ? -1 : 1);
  }
}

function sortCompare(
  keys: readonly SortKey[],
  compat: SortCompat,
  t: TextComparators,
): (a: Group, b: Group) => number {
  const cmps = keys.map((k) => ({ cmp: keyCompare(k.key, compat, t), sign: k.sign }));
  return (a, b) => {
    for (const { cmp, sign } of cmps) {
      const c = sign * cmp(a, b);
      if (c !== 0) return c;
    }
    return 0;
  };
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
