/**
 * A drop-in for the kernel's page_owner_sort (tools/vm/page_owner_sort.c in 5.18-6.6,
 * tools/mm/page_owner_sort.c in 6.7+): same options, same output bytes, but streaming,
 * in memory bounded by the distinct groups, with big inputs scanned by worker threads.
 * This file reads the command line as the C tool does; page_owner_sort_engine.ts groups,
 * sorts and writes.
 */
import type { PageOwnerInput } from '../sources/page_owner.js';
import { type ParallelOptions, releaseIdleWorkers, scanChunks } from './page_owner_parallel.js';
import { PageOwnerDict } from './page_owner_scan.js';
import {
  CULL_ALLOCATOR,
  CULL_COMM,
  CULL_PID,
  CULL_STACKTRACE,
  CULL_TGID,
  CULL_UNRELEASE,
  FILTER_COMM,
  FILTER_PID,
  FILTER_TGID,
  FILTER_UNRELEASE,
  type PresizeOptions,
  type SortCompat,
  type SortConfig,
  SortEngine,
  type SortIo,
  type SortKey,
  type SortKeyName,
  type SortResult,
  sortPlan,
} from './page_owner_sort_engine.js';

export {
  CULL_ALLOCATOR,
  CULL_COMM,
  CULL_PID,
  CULL_STACKTRACE,
  CULL_TGID,
  CULL_UNRELEASE,
  FILTER_COMM,
  FILTER_PID,
  FILTER_TGID,
  FILTER_UNRELEASE,
  glibcMsort,
  type SortCompat,
  type SortConfig,
  type SortIo,
  type SortKey,
  type SortResult,
} from './page_owner_sort_engine.js';

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

/**
 * Run the sort over the input and write the C tool's output (`io.write` gets the bytes).
 * A file of more than a few dozen MB is scanned by worker threads and this one (ParallelOptions),
 * unless it is culled.
 */
export async function runPageOwnerSort(
  cfg: SortConfig,
  input: PageOwnerInput,
  io: SortIo,
  opts: Omit<ParallelOptions, 'onProgress'> & {
    /** Stacks are written from one copy of their texts up to this many bytes in all (default 4 MiB), else line by line. */
    restCopyBytes?: number;
    /** When the rows' table is sized for a file's size (tests; default from 64 MiB of input). */
    presize?: PresizeOptions;
    /**
     * No other scan follows in this process (the CLI): the workers stop when this scan ends,
     * not IDLE_MS later, so that their memory is freed before the sort's and the output's.
     */
    lastScan?: boolean;
  } = {},
): Promise<SortResult> {
  const plan = sortPlan(cfg);
  const dict = new PageOwnerDict();
  const { restCopyBytes, presize, lastScan, ...parallel } = opts;
  // A cull keeps few rows and its scan is most of the work: a worker and this thread take a
  // 1 GiB dump's --cull=stacktrace -m from 2.3-2.5 to 2.0-2.1 s but from 80 to 150-159 MB
  // (2026-12-05), twice the memory for a sixth of the time: one thread unless asked, as
  // page-owner top.
  if (cfg.cull !== 0 && parallel.workers === undefined) parallel.workers = 0;
  const engine = new SortEngine(cfg, dict, io, restCopyBytes, presize);
  const scan = await scanChunks(
    input,
    dict,
    {
      ts: plan.scanTs,
      freeTs: true,
      allOdd: plan.slowOnly,
      // Records up to 1 MiB (the C tool stops at 128 KiB); a longer one is an error.
      file: cfg.input === '-' ? '<stdin>' : cfg.input,
    },
    (c) => engine.chunk(c),
    {
      ...parallel,
      ...(io.onProgress ? { onProgress: io.onProgress } : {}),
      onSize: (bytes) => engine.expectInput(bytes),
    },
  );
  // The 1 GiB default sort with a worker: peak 177,524-180,360 KiB against 185,432-205,840
  // when the worker stayed its 2 s (alternating runs; time in the spread).
  if (lastScan && (scan.threads ?? 0) > 0) await releaseIdleWorkers();
  return engine.finish(scan);
}
