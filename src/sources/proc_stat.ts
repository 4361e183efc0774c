import { parseError } from '../model/errors.js';
import { type ParseOptions, safeNumber, singleKernelLine } from './text.js';

/**
 * /proc/PID/stat, every field proc(5) lists, by name (units in the name: clock ticks are
 * `sysconf(_SC_CLK_TCK)`, usually 100; pages are the snapshot's page size). Fields after `rss`
 * were added over the years and are undefined when an older kernel does not print them.
 * Values are doubles: the few that can exceed 2^53 (rsslim = RLIM_INFINITY, signal masks on
 * some architectures) are approximate.
 */
export interface ProcStat {
  pid: number;
  /** The comm between the first `(` and the LAST `)`: it may itself contain spaces and parens. */
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  ttyNr: number;
  tpgid: number;
  /** PF_* flags (PF_KTHREAD = 0x00200000 marks a kernel thread). */
  flags: number;
  minflt: number;
  cminflt: number;
  majflt: number;
  cmajflt: number;
  utimeTicks: number;
  stimeTicks: number;
  cutimeTicks: number;
  cstimeTicks: number;
  priority: number;
  nice: number;
  numThreads: number;
  itrealvalue: number;
  /** Time the process started after boot. */
  startTimeTicks: number;
  vsizeBytes: number;
  /**
   * get_mm_rss(): on 6.x the per-CPU mm counters read without summing, so it can differ from
   * the exact statm resident / status VmRSS (get_mm_counter_sum) by a batch per CPU. Prefer those.
   */
  rssPages: number;
  rsslimBytes?: number;
  startcode?: number;
  endcode?: number;
  /** Address of the bottom of the main stack (pmap uses it to label `[ stack ]`). */
  startstack?: number;
  kstkesp?: number;
  kstkeip?: number;
  signal?: number;
  blocked?: number;
  sigignore?: number;
  sigcatch?: number;
  wchan?: number;
  nswap?: number;
  cnswap?: number;
  /** 2.1.22 */
  exitSignal?: number;
  /** 2.2.8 */
  processor?: number;
  /** 2.5.19 */
  rtPriority?: number;
  policy?: number;
  /** 2.6.18 */
  delayacctBlkioTicks?: number;
  /** 2.6.24 */
  guestTimeTicks?: number;
  cguestTimeTicks?: number;
  /** 3.3 */
  startData?: number;
  endData?: number;
  startBrk?: number;
  /** 3.5 */
  argStart?: number;
  argEnd?: number;
  envStart?: number;
  envEnd?: number;
  exitCode?: number;
}

/** PF_KTHREAD in include/linux/sched.h (0x00200000 since 2.6.27). */
export const PF_KTHREAD = 0x00200000;

// Fields 4.. of proc(5), in order, after `pid (comm) state`.
const REQUIRED = [
  'ppid',
  'pgrp',
  'session',
  'ttyNr',
  'tpgid',
  'flags',
  'minflt',
  'cminflt',
  'majflt',
  'cmajflt',
  'utimeTicks',
  'stimeTicks',
  'cutimeTicks',
  'cstimeTicks',
  'priority',
  'nice',
  'numThreads',
  'itrealvalue',
  'startTimeTicks',
  'vsizeBytes',
  'rssPages',
] as const;
const OPTIONAL = [
  'rsslimBytes',
  'startcode',
  'endcode',
  'startstack',
  'kstkesp',
  'kstkeip',
  'signal',
  'blocked',
  'sigignore',
  'sigcatch',
  'wchan',
  'nswap',
  'cnswap',
  'exitSignal',
  'processor',
  'rtPriority',
  'policy',
  'delayacctBlkioTicks',
  'guestTimeTicks',
  'cguestTimeTicks',
  'startData',
  'endData',
  'startBrk',
  'argStart',
  'argEnd',
  'envStart',
  'envEnd',
  'exitCode',
] as const;

const EXPECTED = '"pid (comm) state ppid ..." (e.g. "1 (init) S 0 1 1 0 -1 4194560 ...")';

/** Parse /proc/PID/stat. */
export function parseProcStat(text: string, opts: ParseOptions = {}): ProcStat {
  const file = opts.file ?? '/proc/PID/stat';
  const body = singleKernelLine(text, file, EXPECTED, opts);
  const open = body.indexOf(' (');
  // fs/proc/array.c prints the comm raw inside parentheses, so the comm ends at the last ')'.
  const close = body.lastIndexOf(')');
  if (open < 0 || close < open) throw parseError(file, 1, EXPECTED, body);
  const pidStr = body.slice(0, open);
  if (!/^\d+$/.test(pidStr)) throw parseError(file, 1, `a pid before the comm; ${EXPECTED}`, body);
  const comm = body.slice(open + 2, close);
  if (body[close + 1] !== ' ') throw parseError(file, 1, `" " after ")"; ${EXPECTED}`, body.slice(close));
  const rest = body.slice(close + 2).split(' ');
  const state = rest[0];
  if (state === undefined || !/^[A-Za-z]$/.test(state))
    throw parseError(file, 1, `a state letter after ")"`, rest[0] ?? '');
  const nums = rest.slice(1);
  if (nums.length < REQUIRED.length) {
    throw parseError(file, 1, `at least ${REQUIRED.length + 3} fields (up to rss)`, body);
  }
  // A newer kernel with more fields is fine: the ones we know are kept. Non-numbers are not.
  const values: number[] = nums.map((tok, i) => {
    if (!/^-?\d+$/.test(tok)) throw parseError(file, 1, `a number for field ${i + 4} of proc(5)`, tok);
    return Number(tok);
  });
  const out: Record<string, number | string> = { pid: safeNumber(pidStr, file, 1, 'a pid'), comm, state };
  REQUIRED.forEach((name, i) => {
    // The fields proc(5) lists up to rss are counts, ticks and sizes: below 2^53. Later ones
    // hold addresses and limits (rsslim is RLIM_INFINITY, 2^64 - 1), kept as the nearest double.
    out[name] = safeNumber(nums[i]!, file, 1, `field ${i + 4} of proc(5) (${name})`);
  });
  OPTIONAL.forEach((name, i) => {
    const v = values[REQUIRED.length + i];
    if (v !== undefined) out[name] = v;
  });
  return out as unknown as ProcStat;
}
