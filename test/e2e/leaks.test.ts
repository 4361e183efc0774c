import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LeakReport } from '../../src/analysis/leaks.js';
import { REPO_FIXTURES } from '../paths.js';
import { cli } from '../run.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-leaks-e2e-'));
const kids: ChildProcess[] = [];
afterAll(() => {
  for (const k of kids) k.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

// A recording of the scenario suite on this machine (see docs/recording.md).
const BENCH_DB = join(REPO_FIXTURES, 'recordings', 'bench-linux-6.18.db');

describe('memsleuth leaks on a recording of the scenario suite', () => {
  it('ranks the leakers, with evidence and a next step, and exits 1', async () => {
    const r = await cli(['leaks', '--db', BENCH_DB]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      /^.*bench-linux-6\.18\.db\n\d+ ticks over [\d.]+ min, \d+ series analysed, \d+ suspects\n/,
    );
    expect(r.stdout).toMatch(/MemAvailable [\d.]+ GiB; suspects together [\d.]+ [MG]iB\/h: exhausted in/);
    expect(r.stdout).toMatch(/process-virtual +ms-thread-leak \(pid \d+\)/);
    expect(r.stdout).toMatch(/process-memory +ms-malloc-leak \(pid \d+\)/);
    expect(r.stdout).toMatch(/slab +slab TCP/);
    expect(r.stdout).toMatch(/shmem +meminfo Shmem/);
    expect(r.stdout).toMatch(/next: boot with slub_debug=U,TCP/);
    // The socket leaker owns the TCP growth: named beside the cache by its growing fds.
    expect(r.stdout).toMatch(
      /slab TCP: [^\n]*\n(?: {6}[^\n]*\n)* {3}related: python3 \(pid \d+\) open fds \+\d+\/h/,
    );
    expect(r.stdout).not.toMatch(/ms-(warmup|stable-big|spike|churn)/);
    // Everything but the database path (first line) fits 100 columns.
    for (const line of r.stdout.split('\n').slice(1)) expect(line.length, line).toBeLessThanOrEqual(100);
  });

  it('--json is the whole report', async () => {
    const r = await cli(['leaks', '--db', BENCH_DB, '--json']);
    expect(r.status).toBe(1);
    const rep = JSON.parse(r.stdout) as LeakReport;
    expect(rep.suspects.length).toBeGreaterThan(5);
    const t = rep.suspects.find((s) => s.name.startsWith('ms-thread-leak'))!;
    expect(t.kind).toBe('process-virtual');
    expect(t.unit).toBe('bytes');
    expect(t.sinceMs).toBeGreaterThanOrEqual(rep.firstMs!);
    // Page cache from the reader scenario is never a suspect.
    expect(rep.suspects.some((x) => x.id.startsWith('meminfo/Cached'))).toBe(false);
    expect(rep.reclaimable.every((x) => x.ratePerHour > 0)).toBe(true);
  });

  it('--since keeps only the end of the recording', async () => {
    const all = JSON.parse((await cli(['leaks', '--db', BENCH_DB, '--json'])).stdout) as LeakReport;
    const end = JSON.parse(
      (await cli(['leaks', '--db', BENCH_DB, '--json', '--since', '2m'])).stdout,
    ) as LeakReport;
    expect(end.ticks).toBeLessThan(all.ticks);
    expect(end.lastMs).toBe(all.lastMs);
    expect(end.lastMs! - end.firstMs!).toBeLessThanOrEqual(120_000);
  });

  it('a missing database is an error with a hint, exit 2', async () => {
    const r = await cli(['leaks', '--db', join(work, 'none.db')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no such recording\nhint: record one first/);
  });
});

describe('record then leaks on live processes', () => {
  it('names a Node process that retains 2 MiB/s as a process-memory leak at that rate, not a stable one', async () => {
    const leaker = spawn(
      process.execPath,
      ['-e', 'const k=[];setInterval(()=>k.push(Buffer.alloc(1<<20,1)),500);setTimeout(()=>{},60000)'],
      { stdio: 'ignore' },
    );
    const stable = spawn(
      process.execPath,
      ['-e', 'const b=Buffer.alloc(64<<20,1);setTimeout(()=>b.length,60000)'],
      { stdio: 'ignore' },
    );
    kids.push(leaker, stable);
    await new Promise((r) => setTimeout(r, 1500));
    const db = join(work, 'live.db');
    const rec = await cli([
      'record',
      '--db',
      db,
      '--interval',
      '500ms',
      '--duration',
      '15s',
      '--pss-every',
      '0',
    ]);
    expect(rec.status).toBe(0);
    const r = await cli(['leaks', '--db', db, '--json']);
    leaker.kill('SIGKILL');
    stable.kill('SIGKILL');
    const rep = JSON.parse(r.stdout) as LeakReport;
    // Other processes on a shared machine may leak too: find ours rather than assume rank 1.
    const hit = rep.suspects.find((s) => s.pid === leaker.pid);
    expect(hit?.kind).toBe('process-memory');
    const constructed = 2 * 1024 * 1024 * 3600; // 1 MiB every 500 ms
    expect(hit!.ratePerHour / constructed).toBeGreaterThan(0.7);
    expect(hit!.ratePerHour / constructed).toBeLessThan(1.3);
    expect(rep.suspects.filter((s) => s.pid === stable.pid)).toEqual([]);
  }, 60_000);
});
