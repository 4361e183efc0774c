import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseProcStat } from '../sources/proc_stat.js';
import { idleCoresNow } from './cpu.js';

describe('idleCoresNow', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ms-cpu-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const cores = availableParallelism();

  /** A /proc with `running` in loadavg and own threads in the given states. */
  function fakeProc(name: string, running: number, states: string[]): string {
    const root = join(tmp, name);
    for (const [i, st] of states.entries()) {
      mkdirSync(join(root, 'self', 'task', String(100 + i)), { recursive: true });
      writeFileSync(
        join(root, 'self', 'task', String(100 + i), 'stat'),
        `${100 + i} (node) ${st} 1 100 100 0 -1 4194304 10 0 0 0 5 1 0 0 20 0 ${states.length} 0 100 1000000 500\n`,
      );
    }
    writeFileSync(join(root, 'loadavg'), `1.00 1.00 1.00 ${running}/200 999\n`);
    return root;
  }

  it("counts other processes' runnable threads, not this one's, nor the 1-minute average", async () => {
    // Two of our threads running, nobody else: every core is free.
    expect(await idleCoresNow(fakeProc('own', 2, ['R', 'R', 'S', 'S']))).toBe(cores);
    // One of ours, two others: two cores fewer (at least one).
    expect(await idleCoresNow(fakeProc('busy', 3, ['R', 'S']))).toBe(Math.max(1, cores - 2));
    // More runnable than cores: one.
    expect(await idleCoresNow(fakeProc('full', 50, ['R']))).toBe(1);
  });

  it('all cores when /proc cannot be read; an unreadable loadavg is an error', async () => {
    expect(await idleCoresNow(join(tmp, 'none'))).toBe(cores);
    const bad = fakeProc('bad', 1, ['R']);
    writeFileSync(join(bad, 'loadavg'), 'garbage\n');
    await expect(idleCoresNow(bad)).rejects.toThrow(/loadavg:1: expected three load averages/);
  });

  it('on this machine: a core fewer while another process spins', async () => {
    const before = await idleCoresNow();
    expect(before).toBeGreaterThanOrEqual(1);
    expect(before).toBeLessThanOrEqual(cores);
    const spin = spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' });
    try {
      // Wait until it spins (50 ms of CPU: past Node's start, which may wait for the disk;
      // runnable from then on).
      for (let i = 0; i < 300; i++) {
        const st = parseProcStat(readFileSync(`/proc/${spin.pid}/stat`, 'latin1'));
        if (st.utimeTicks + st.stimeTicks >= 5) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // Other tests may run meanwhile (vitest runs files in parallel): the spinner is
      // always among the busy, whatever else is. One reading can still miss it: a thread
      // of this process (a GC or libuv helper) runnable when our threads are counted but
      // not at the loadavg read is taken off in the spinner's place, and idleCoresNow keeps
      // the least busy of its samples by design. So read until one reading sees it; a
      // count that never takes other processes' threads into account still fails.
      const busy = Math.max(1, cores - 1);
      const readings: number[] = [];
      for (let i = 0; i < 20; i++) {
        const idle = await idleCoresNow();
        readings.push(idle);
        if (idle <= busy) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(Math.min(...readings), `readings ${readings.join(' ')}`).toBeLessThanOrEqual(busy);
    } finally {
      spin.kill();
    }
  });
});
