/**
 * How busy the CPUs are now, for commands that split work across threads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseLoadavg } from '../sources/loadavg.js';
import { parseProcStat } from '../sources/proc_stat.js';

/** Threads of this process running or runnable now (state R in /proc/self/task/TID/stat). */
function ownRunning(procRoot: string): number {
  let n = 0;
  for (const tid of readdirSync(`${procRoot}/self/task`)) {
    try {
      const file = `${procRoot}/self/task/${tid}/stat`;
      if (parseProcStat(readFileSync(file, 'latin1'), { file }).state === 'R') n++;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // the thread ended meanwhile
    }
  }
  return n;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Cores free now: the CPUs this process may use less the threads of other processes that
 * are runnable, from /proc/loadavg's running count (not its 1-minute average, which stays
 * near 1 for a minute after a single busy command ends). The count is of one instant and
 * includes this process's own threads: those are taken off, and the least of `samples`
 * reads `gapMs` apart is kept, so that a thread that ran for a moment is not taken for a
 * busy core. At least 1; all of them when /proc cannot be read.
 */
export async function idleCoresNow(procRoot = '/proc', samples = 3, gapMs = 1): Promise<number> {
  const cores = Math.max(1, availableParallelism());
  let others = Number.POSITIVE_INFINITY;
  try {
    for (let i = 0; i < samples; i++) {
      if (i > 0) await pause(gapMs);
      const mineBefore = ownRunning(procRoot);
      const file = `${procRoot}/loadavg`;
      const { running } = parseLoadavg(readFileSync(file, 'latin1'), { file });
      // Own threads counted on either side of the read: the larger, so that none is
      // counted as another process's.
      const mine = Math.max(mineBefore, ownRunning(procRoot));
      others = Math.min(others, Math.max(0, running - mine));
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EACCES') throw e;
    return cores;
  }
  return Math.max(1, Math.min(cores, cores - others));
}
