import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMeminfo } from '../../src/sources/meminfo.js';
import { CLI_BIN } from '../paths.js';
import { cli } from '../run.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-record-e2e-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function ticksIn(db: string): number {
  const d = new Database(db, { readonly: true });
  try {
    return (d.prepare('SELECT count(*) AS n FROM ticks').get() as { n: number }).n;
  } finally {
    d.close();
  }
}

function startRecorder(db: string, interval: string): ChildProcess {
  return spawn(process.execPath, [CLI_BIN, 'record', '--db', db, '--interval', interval], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
}

async function waitForTicks(db: string, n: number, timeoutMs = 20_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (existsSync(db)) {
      try {
        const k = ticksIn(db);
        if (k >= n) return k;
      } catch {
        // the schema is being created
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${n} ticks in ${db}`);
}

describe('memsleuth record', () => {
  const db = join(work, 'short.db');
  /** Ticks of the short recording: 4 on schedule (0, 0.3, 0.6, 0.9 s); fewer when the machine is so loaded that a tick overruns the next (the recorder skips overdue ticks rather than bursting). */
  let n = 0;

  it('records for a duration, prints the database path and a summary', async () => {
    const r = await cli(['record', '--db', db, '--interval', '300ms', '--duration', '1s']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${db}\n`);
    expect(r.stderr).toMatch(/^recording into .* every 0\.3s for 1s/);
    const m = /\n(\d) ticks, [\d.]+ KiB; per tick: read [\d.]+ ms, write [\d.]+ ms\n/.exec(r.stderr);
    n = Number(m?.[1]);
    expect(n).toBeGreaterThanOrEqual(2);
    expect(n).toBeLessThanOrEqual(4);
    expect(ticksIn(db)).toBe(n);
  });

  it('series exports MemTotal as CSV with one row per tick, equal to /proc/meminfo', async () => {
    const r = await cli(['series', '--db', db, '--layer', 'meminfo', '--key', 'MemTotal']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('time,layer,key,label,metric,unit,value');
    expect(lines.length).toBe(n + 1);
    const total = parseMeminfo(readFileSync('/proc/meminfo', 'utf8')).bytes.MemTotal;
    for (const l of lines.slice(1))
      expect(l).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT.*Z,meminfo,MemTotal,,bytes,bytes,${total}$`));
  });

  it('series --json and --list describe the same series', async () => {
    const list = JSON.parse(
      (await cli(['series', '--db', db, '--list', '--json', '--layer', 'slab'])).stdout,
    ) as {
      key: string;
      metric: string;
    }[];
    expect(list.length).toBeGreaterThan(100);
    const data = JSON.parse((await cli(['series', '--db', db, '--json', '--layer', 'slab'])).stdout) as {
      key: string;
      points: [number, number][];
    }[];
    expect(data.length).toBe(list.length);
    expect(data.every((d) => d.points.length === n)).toBe(true);
  });

  it('Ctrl-C (SIGINT) finishes the tick, closes the database and exits 0', async () => {
    const file = join(work, 'sigint.db');
    const child = startRecorder(file, '200ms');
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitForTicks(file, 3);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    // Closed cleanly: the WAL is checkpointed away and every process has an end tick.
    expect(existsSync(`${file}-wal`)).toBe(false);
    const d = new Database(file, { readonly: true });
    const open = d
      .prepare("SELECT count(*) AS n FROM entities WHERE layer = 'process' AND last_tick IS NULL")
      .get() as {
      n: number;
    };
    d.close();
    expect(open.n).toBe(0);
  });

  it('kill -9 loses at most the tick being written', async () => {
    const file = join(work, 'sigkill.db');
    const child = startRecorder(file, '200ms');
    const exited = new Promise((r) => child.on('exit', r));
    const seen = await waitForTicks(file, 5);
    child.kill('SIGKILL');
    await exited;
    const after = ticksIn(file);
    expect(after).toBeGreaterThanOrEqual(seen);
    // Still a readable recording: `series` and `leaks` work on it.
    const r = await cli(['series', '--db', file, '--layer', 'meminfo', '--key', 'MemTotal']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').length).toBe(after + 1);
    // Appending resumes the same recording.
    const again = await cli(['record', '--db', file, '--interval', '200ms', '--duration', '400ms']);
    expect(again.status).toBe(0);
    const added = Number(/\n(\d+) ticks,/.exec(again.stderr)?.[1]);
    expect(added).toBeGreaterThanOrEqual(1);
    expect(ticksIn(file)).toBe(after + added);
  });

  it('usage errors exit 2 with the option named', async () => {
    const r = await cli(['record', '--db', join(work, 'x.db'), '--interval', 'soon']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--interval: expected a duration like 10s/);
    const s = await cli(['series', '--db', db, '--layer', 'nope']);
    expect(s.status).toBe(2);
    expect(s.stderr).toMatch(/--layer: expected one of meminfo/);
  });
});
