import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PF_KTHREAD, parseProcStat } from '../sources/proc_stat.js';
import { ProcWatch } from './proc_watch.js';

/** This process's open files under /proc/PID/ (the watch's kept files for that pid). */
function keptFor(pid: number): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(`/proc/${pid}/`)) n++;
    } catch {} // the directory listing's own fd, closed by now
  }
  return n;
}

/** A Python child with `threads` extra threads, sleeping; it prints "ready" once they run. */
async function sleeper(threads: number): Promise<ChildProcess> {
  const code = [
    'import threading, time, sys',
    `for _ in range(${threads}): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()`,
    'print("ready", flush=True)',
    'time.sleep(60)',
  ].join('\n');
  const child = spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', () => resolve());
  });
  return child;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

describe('ProcWatch on this machine', () => {
  it('reads statm, open fds and threads of a live process, as its own files say', async () => {
    const child = await sleeper(3);
    const pid = child.pid!;
    const w = new ProcWatch();
    try {
      const c = w.read(pid)!;
      expect(c.opened).toBe(true);
      const statm = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ').map(Number);
      expect([c.sizePages, c.residentPages, c.sharedPages]).toEqual(statm.slice(0, 3));
      expect(c.fds).toBe(readdirSync(`/proc/${pid}/fd`).length);
      const threads = Number(/^Threads:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
      expect(threads).toBe(4);
      // fs/proc/base.c proc_task_getattr: the task directory's links are 2 + threads.
      expect(c.taskLinks).toBe(threads + 2);
      const again = w.read(pid)!;
      expect(again.opened).toBe(false);
      expect(w.size).toBe(1);
    } finally {
      w.close();
    }
  });

  it('skips fd/ and task/ when statm reads as the caller says, unless the files were just opened', async () => {
    const child = await sleeper(1);
    const pid = child.pid!;
    const w = new ProcWatch();
    try {
      const first = w.read(pid, [0, 0, 0])!;
      // Just opened: counted whatever the caller says.
      expect(first.opened).toBe(true);
      expect(first.counted).toBe(true);
      const fds = first.fds;
      const links = first.taskLinks;
      const statm = [first.sizePages, first.residentPages, first.sharedPages];
      expect(fds).toBeGreaterThan(0);
      const same = w.read(pid, statm)!;
      expect(same.counted).toBe(false);
      expect([same.fds, same.taskLinks]).toEqual([-1, -1]);
      expect([same.sizePages, same.residentPages, same.sharedPages]).toEqual(statm);
      // Another statm than the caller's (it moved since): counted.
      const moved = w.read(pid, [statm[0]! + 1, statm[1]!, statm[2]!])!;
      expect(moved.counted).toBe(true);
      expect([moved.fds, moved.taskLinks]).toEqual([fds, links]);
      const asked = w.read(pid)!;
      expect(asked.counted).toBe(true);
      expect(asked.taskLinks).toBe(links);
    } finally {
      w.close();
    }
  });

  it('answers undefined once the process exited, and lets go of its files at the next sweep', async () => {
    const child = await sleeper(0);
    const pid = child.pid!;
    const w = new ProcWatch();
    try {
      expect(w.read(pid)?.opened).toBe(true);
      expect(keptFor(pid)).toBe(3); // statm, fd/, task/
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // Reaped: the kept statm now fails (ESRCH) and the pid is gone.
      expect(w.read(pid)).toBeUndefined();
      expect(w.size).toBe(0);
      expect(keptFor(pid)).toBe(0);
      // A process not asked about in a round is let go at the sweep after it.
      const other = await sleeper(0);
      expect(w.read(other.pid!)?.opened).toBe(true);
      w.sweep();
      expect(w.size).toBe(1);
      w.sweep();
      expect(w.size).toBe(0);
      expect(keptFor(other.pid!)).toBe(0);
      expect(w.read(other.pid!)?.opened).toBe(true);
    } finally {
      w.close();
    }
  });

  it('keeps no files beyond its budget: each read then opens afresh', async () => {
    const child = await sleeper(0);
    const w = new ProcWatch('/proc', 0);
    try {
      expect(w.read(child.pid!)?.opened).toBe(true);
      expect(w.read(child.pid!)?.opened).toBe(true);
      expect(w.size).toBe(0);
      expect(keptFor(child.pid!)).toBe(0);
    } finally {
      w.close();
    }
    expect(() => w.read(child.pid!)).toThrow(/closed/);
  });

  it('reads a kernel thread as a zero statm without its fd and task counts', () => {
    const kthread = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .find((p) => {
        try {
          const stat = parseProcStat(readFileSync(`/proc/${p}/stat`, 'utf8'));
          return (stat.flags & PF_KTHREAD) !== 0;
        } catch {
          return false;
        }
      });
    expect(kthread).toBeDefined();
    const w = new ProcWatch();
    try {
      const c = w.read(Number(kthread))!;
      expect(c.sizePages).toBe(0);
      expect(c.fds).toBe(-1);
      expect(c.taskLinks).toBe(-1);
    } finally {
      w.close();
    }
  });
});
