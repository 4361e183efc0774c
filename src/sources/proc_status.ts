import { parseError } from '../model/errors.js';
import { kernelLines, type ParseOptions, safeNumber } from './text.js';

/** /proc/PID/status, every field kept; sizes in bytes, counts as numbers. */
export interface ProcStatus {
  /** `Name:` (the comm, at most 15 bytes; the kernel escapes `\n` and `\\`). */
  name: string;
  /** `Tgid:` the process id (the thread-group leader's pid). */
  tgid: number;
  /** `Pid:` the id of the thread this file belongs to (equals tgid for /proc/PID/status). */
  pid: number;
  /** `PPid:`, 0 for init and kthreadd. */
  ppid: number;
  /** `Uid:` real, effective, saved set, filesystem. */
  uid?: number[];
  /** `Gid:` real, effective, saved set, filesystem. */
  gid?: number[];
  /** The state letter of `State:` (R, S, D, Z, T, t, X, I...). */
  state?: string;
  /** The words in parentheses after the state letter, e.g. `sleeping`. */
  stateName?: string;
  /**
   * Every `Key:\tN kB` field in bytes: VmPeak VmSize VmLck VmPin VmHWM VmRSS RssAnon RssFile
   * RssShmem VmData VmStk VmExe VmLib VmPTE VmSwap HugetlbPages ... (whatever this kernel prints).
   */
  bytes: Record<string, number | undefined>;
  /** Every plain decimal field: Threads, voluntary_ctxt_switches, FDSize, TracerPid, Kthread, ... */
  counts: Record<string, number | undefined>;
  /** Every field as the raw text after the colon (trimmed), in the kernel's names. */
  fields: Record<string, string>;
}

// fs/proc/array.c prints `Key:\tvalue` lines; task_mem() in fs/proc/task_mmu.c the `Vm*` and
// `Rss*` lines as `%8lu kB`. Fields come and go: VmSwap (2.6.34), HugetlbPages (4.4), RssAnon/
// RssFile/RssShmem (4.5), Kthread (6.x), so everything is kept by name and callers handle
// `undefined`. Keys are letters, digits and `_` (e.g. `Speculation_Store_Bypass`, `x86_Thread_features`).
const LINE = /^([A-Za-z0-9_]+):[ \t]*(.*)$/;
const KB = /^(\d+) kB$/;
const DECIMAL = /^\d+$/;
/** Decimal-looking fields that are not counts (Umask is octal). */
const NOT_COUNTS = new Set(['Umask']);
// Masks printed in hex (CapEff 0000000000000400, SigBlk, Cpus_allowed): all-digit ones are not counts.
const HEX_MASK = /^(Cap|Sig|Shd|Cpus_allowed$|Mems_allowed$)/;
const EXPECTED = '"Key:\\tvalue" (e.g. "VmRSS:\\t    1764 kB")';

function idList(value: string, file: string, line: number, key: string): number[] {
  const parts = value.split(/\s+/).filter((p) => p !== '');
  if (parts.length === 0 || !parts.every((p) => DECIMAL.test(p))) {
    throw parseError(file, line, `${key}: real, effective, saved and filesystem ids`, value);
  }
  return parts.map((p) => safeNumber(p, file, line, `${key}: an id`));
}

/** Parse /proc/PID/status (or /proc/PID/task/TID/status). */
export function parseProcStatus(text: string, opts: ParseOptions = {}): ProcStatus {
  const file = opts.file ?? '/proc/PID/status';
  const bytes: Record<string, number | undefined> = {};
  const counts: Record<string, number | undefined> = {};
  const fields: Record<string, string> = {};
  const lineOf: Record<string, number> = {};
  for (const { text: t, line } of kernelLines(text, file, EXPECTED, opts)) {
    if (t === '') continue;
    const m = LINE.exec(t);
    if (!m) throw parseError(file, line, EXPECTED, t);
    const key = m[1]!;
    // Name is printed raw after the tab (it may end in spaces); everything else is trimmed.
    const value = key === 'Name' ? m[2]! : m[2]!.trim();
    if (key in fields)
      throw parseError(file, line, `each field once (${key} already on line ${lineOf[key]})`, t);
    fields[key] = value;
    lineOf[key] = line;
    const kb = KB.exec(value);
    if (kb) {
      bytes[key] = safeNumber(kb[1]!, file, line, `${key}: N kB`) * 1024;
      if (!Number.isSafeInteger(bytes[key]))
        throw parseError(file, line, `${key}: a size below 2^53 bytes`, t);
    } else if (value.endsWith(' kB') || value.endsWith('\tkB')) {
      throw parseError(file, line, `${key}: "<number> kB"`, value);
    } else if (DECIMAL.test(value) && !NOT_COUNTS.has(key) && !HEX_MASK.test(key)) {
      counts[key] = safeNumber(value, file, line, key);
    }
  }
  const name = fields.Name;
  if (name === undefined)
    throw parseError(file, undefined, 'a "Name:" line (every status has one)', text.slice(0, 60));
  const need = (key: 'Tgid' | 'Pid' | 'PPid'): number => {
    const v = counts[key];
    if (v === undefined) {
      throw parseError(file, lineOf[key], `a "${key}:\\t<number>" line`, fields[key] ?? '<missing>');
    }
    return v;
  };
  const result: ProcStatus = {
    name,
    // Tgid appeared in 2.6.0; before that Pid is the only id.
    tgid: counts.Tgid ?? need('Pid'),
    pid: need('Pid'),
    ppid: need('PPid'),
    bytes,
    counts,
    fields,
  };
  if (fields.Uid !== undefined) result.uid = idList(fields.Uid, file, lineOf.Uid!, 'Uid');
  if (fields.Gid !== undefined) result.gid = idList(fields.Gid, file, lineOf.Gid!, 'Gid');
  if (fields.State !== undefined) {
    const s = /^(\S)(?:\s+\((.*)\))?$/.exec(fields.State);
    if (!s)
      throw parseError(file, lineOf.State, 'State: a letter and "(name)", e.g. "S (sleeping)"', fields.State);
    result.state = s[1]!;
    if (s[2] !== undefined) result.stateName = s[2];
  }
  return result;
}
