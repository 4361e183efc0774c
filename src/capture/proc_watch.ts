import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readvSync } from 'node:fs';
import type { ProcCounters } from '../model/snapshot.js';
import { statmBytes } from '../sources/proc_fast.js';
import { parseProcStatm } from '../sources/proc_statm.js';

/** One watched process: its kept-open files (fd numbers, -1 when not opened). */
interface Watched {
  statm: number;
  fdDir: number;
  taskDir: number;
  pid: number;
  /** The sweep generation it was last read in. */
  gen: number;
}

/**
 * The recorder's every-tick view of live processes, from /proc files kept open between ticks:
 * `statm` (sizes in pages), the `fd` directory (its size is the number of open fds, Linux 6.2+)
 * and the `task` directory (its link count is 2 + the number of threads, fs/proc/base.c
 * `proc_task_getattr`). A tick then costs one pread and two fstat() per process, without a path
 * lookup or a file to open. A kept file belongs to the process that was there when it was
 * opened: once that process exits, reading it fails (ESRCH), even after its pid is reused, so
 * an entry that still reads is the same process as when it was opened, and `opened` says when
 * the files were (re)opened at this read (a process not seen before, or a new one on an old pid).
 *
 * Files stay open for at most `maxProcesses` processes (a third of the fd limit by default);
 * beyond that `read` answers from files opened and closed at each call, with `opened` true.
 * `sweep()` closes the files of processes not read since the previous sweep (they exited);
 * `close()` closes everything.
 */
export class ProcWatch {
  private readonly watched = new Map<number, Watched>();
  private readonly buf = Buffer.allocUnsafe(256);
  /** readvSync of [buf]: pread(2) with two argument checks where readSync makes five (and garbage of each). */
  private readonly bufs = [this.buf];
  private readonly out: ProcCounters = {
    sizePages: 0,
    residentPages: 0,
    sharedPages: 0,
    fds: -1,
    taskLinks: -1,
    opened: false,
    counted: false,
  };
  private gen = 0;
  private closed = false;

  private readonly maxProcesses: number;

  /** `maxProcesses`: default a third of this process's fd limit, less 300 for everything else. */
  constructor(
    private readonly procRoot = '/proc',
    maxProcesses?: number,
  ) {
    this.maxProcesses = maxProcesses ?? Math.max(0, Math.floor((openFileLimit(procRoot) - 300) / 3));
  }

  /** Processes whose files are kept open now. */
  get size(): number {
    return this.watched.size;
  }

  /**
   * The counters of `pid`, or undefined when it is gone (or statm is unreadable). The returned
   * object is reused by the next call: copy what you keep. `unlessStatm`: see
   * Snapshot.procCounters (fd/ and task/ are not looked at when statm reads these numbers).
   */
  read(pid: number, unlessStatm?: readonly number[]): ProcCounters | undefined {
    if (this.closed) throw new Error('ProcWatch is closed');
    const w = this.watched.get(pid);
    if (w) {
      if (this.fill(w, false, unlessStatm)) {
        w.gen = this.gen;
        return this.out;
      }
      // Gone (or a new process on its pid): forget the old files, then try afresh.
      this.forget(pid, w);
    }
    const fresh = this.open(pid);
    if (!fresh) return undefined;
    const ok = this.fill(fresh, true);
    if (ok && this.watched.size < this.maxProcesses) {
      fresh.gen = this.gen;
      this.watched.set(pid, fresh);
    } else closeAll(fresh);
    return ok ? this.out : undefined;
  }

  /** Close the files of processes not read since the previous sweep. */
  sweep(): void {
    // forEach: no entry array per process (the recorder runs unoptimized, cli/daemon.ts).
    this.watched.forEach((w, pid) => {
      if (w.gen !== this.gen) this.forget(pid, w);
    });
    this.gen++;
  }

  close(): void {
    for (const [pid, w] of this.watched) this.forget(pid, w);
    this.closed = true;
  }

  private forget(pid: number, w: Watched): void {
    closeAll(w);
    this.watched.delete(pid);
  }

  private open(pid: number): Watched | undefined {
    const dir = `${this.procRoot}/${pid}`;
    const statm = tryOpen(`${dir}/statm`);
    if (statm < 0) return undefined;
    return { statm, fdDir: tryOpen(`${dir}/fd`), taskDir: tryOpen(`${dir}/task`), pid, gen: 0 };
  }

  /** Read statm and stat the directories into `out`; false when the process is gone. */
  private fill(w: Watched, opened: boolean, unlessStatm?: readonly number[]): boolean {
    let n: number;
    try {
      n = readvSync(w.statm, this.bufs, 0);
    } catch {
      return false; // ESRCH: the process this file was opened for has exited
    }
    const o = this.out;
    // The fast reader declines anything but seven numbers; the full parser then names the error.
    if (!statmBytes(this.buf, n, o)) {
      const text = this.buf.toString('latin1', 0, n);
      Object.assign(o, parseProcStatm(text, { file: `${this.procRoot}/${w.pid}/statm` }));
    }
    o.opened = opened;
    o.fds = -1;
    o.taskLinks = -1;
    o.counted = false;
    // No mm (a kernel thread, a zombie): nothing more to read.
    if (o.sizePages === 0) return true;
    if (
      !opened &&
      unlessStatm !== undefined &&
      unlessStatm[0] === o.sizePages &&
      unlessStatm[1] === o.residentPages &&
      unlessStatm[2] === o.sharedPages
    )
      return true;
    o.counted = true;
    if (w.fdDir >= 0) {
      try {
        const size = fstatSync(w.fdDir).size;
        // Before 6.2 the size is 0: list the directory (by path: Node reads no directory by fd).
        o.fds = size > 0 ? size : readdirSync(`${this.procRoot}/${w.pid}/fd`).length;
      } catch {}
    }
    if (w.taskDir >= 0) {
      try {
        o.taskLinks = fstatSync(w.taskDir).nlink;
      } catch {}
    }
    return true;
  }
}

function tryOpen(path: string): number {
  try {
    return openSync(path, 'r');
  } catch {
    return -1;
  }
}

function closeAll(w: Watched): void {
  for (const fd of [w.statm, w.fdDir, w.taskDir]) {
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
  w.statm = w.fdDir = w.taskDir = -1;
}

/** The soft limit on open files (RLIMIT_NOFILE) of this process, from /proc/self/limits; 1024 if unknown. */
function openFileLimit(procRoot: string): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(readFileSync(`${procRoot}/self/limits`, 'latin1'));
    if (m) return m[1] === 'unlimited' ? 1 << 20 : Number(m[1]);
  } catch {}
  return 1024;
}
