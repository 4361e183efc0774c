import { parseError } from '../model/errors.js';
import { type ParseOptions, safeNumber, singleKernelLine } from './text.js';

/**
 * /proc/loadavg (fs/proc/loadavg.c): the 1, 5 and 15 minute load averages, then
 * "running/total" scheduling entities (nr_running() summed over CPUs at the moment of the
 * read, this reader's own thread included; nr_threads) and the last pid allocated.
 */
export interface Loadavg {
  load1: number;
  load5: number;
  load15: number;
  /** Threads runnable or running now, system-wide (the reader among them). */
  running: number;
  /** Threads in the system. */
  threads: number;
  lastPid: number;
}

const EXPECTED = 'three load averages, running/threads and the last pid (e.g. "0.52 0.58 0.59 2/186 4102")';

/** Parse /proc/loadavg. */
export function parseLoadavg(text: string, opts: ParseOptions = {}): Loadavg {
  const file = opts.file ?? '/proc/loadavg';
  const body = singleKernelLine(text, file, EXPECTED, opts);
  const m = /^(\d+\.\d\d) (\d+\.\d\d) (\d+\.\d\d) (\d+)\/(\d+) (-?\d+)$/.exec(body.trim());
  if (!m) throw parseError(file, 1, EXPECTED, body);
  const n = (i: number, what: string) => safeNumber(m[i]!, file, 1, what);
  return {
    load1: Number(m[1]),
    load5: Number(m[2]),
    load15: Number(m[3]),
    running: n(4, 'a running count'),
    threads: n(5, 'a thread count'),
    lastPid: n(6, 'a pid'),
  };
}
