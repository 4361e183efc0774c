import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessMaps, ProcessMemory } from '../../src/analysis/process.js';
import { until } from '../children.js';
import { labFixture, REPO_FIXTURES } from '../paths.js';
import { cli } from '../run.js';

const MiB = 1 << 20;
const FOUR = join(REPO_FIXTURES, 'linux-6.18-four-types');

interface PsJson {
  origin: string;
  sort: string;
  totals: { processes: number; kernelThreads: number; rssBytes: number; pssBytes: number };
  processes: ProcessMemory[];
  skipped: { pid: number; reason: string }[];
}

async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  expect(r.stderr.replace(/^memsleuth: \d+ process\(es\) skipped.*\n/m, '')).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

async function userError(args: string[], message: RegExp): Promise<string> {
  const r = await cli(args);
  expect(r.status).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toContain('    at '); // no stack trace for user errors
  return r.stderr;
}

describe('memsleuth ps', () => {
  let child: ChildProcess;
  beforeAll(async () => {
    // A live process holding a touched 64 MiB Buffer.
    child = spawn(
      process.execPath,
      [
        '-e',
        "const b = Buffer.alloc(64 << 20); b.fill(1); console.log('ready'); setInterval(() => b[0]++, 1000);",
      ],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    await new Promise((r) => child.stdout!.once('data', r));
  });
  afterAll(() => {
    child.kill();
  });

  it('lists this machine’s processes with a 64 MiB child among them (--json, exact bytes)', async () => {
    const out = JSON.parse(await ok(['ps', '--json', '--limit', '0', '--sort', 'anon'])) as PsJson;
    expect(out.origin).toBe('live');
    expect(out.sort).toBe('anon');
    const me = out.processes.find((p) => p.pid === child.pid)!;
    expect(me).toBeDefined();
    expect(me.name).toBe('node');
    expect(me.privateAnonBytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(me.rssBytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(me.ussBytes).toBeGreaterThanOrEqual(64 * MiB);
    const anon = out.processes.map((p) => p.privateAnonBytes ?? 0);
    expect(anon).toEqual([...anon].sort((a, b) => b - a));
    expect(out.processes.every((p) => !p.kernelThread)).toBe(true);
    expect(out.totals.kernelThreads).toBeGreaterThan(0);
    expect(out.totals.processes).toBe(out.processes.length);
  });

  it('--sort minflt prints the fault counts of stat in the table (no --json)', async () => {
    const text = await ok(['ps', '--sort', 'minflt', '--limit', '0']);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\s*PID\s+MINFLT\s+RSS\s/);
    const rows = lines.slice(1, -2).map((l) => l.trim().split(/\s+/));
    const faults = rows.map((r) => Number(r[1]));
    expect(faults.every((f) => Number.isInteger(f))).toBe(true);
    expect(faults).toEqual([...faults].sort((a, b) => b - a));
    // The 64 MiB child faulted its Buffer in: at least 16,384 4 KiB pages, as its stat says.
    const mine = rows.find((r) => Number(r[0]) === child.pid)!;
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const minflt = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
    expect(Number(mine[1])).toBeGreaterThanOrEqual(16_384);
    expect(Number(mine[1])).toBeLessThanOrEqual(minflt);
  });

  it('prints a table that fits 100 columns, sorted by PSS, on a lab capture', async () => {
    const dir = labFixture('6.12', 'after');
    const text = await ok(['ps', dir]);
    const lines = text.trimEnd().split('\n');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
    expect(lines[0]).toMatch(
      /^\s*PID\s+RSS\s+PSS\s+USS\s+SWAP\s+ANON_PRV\s+ANON_SHR\s+FILE_PRV\s+FILE_SHR\s+NAME$/,
    );
    // The collector's shell, then init (the collector leaves kernel threads out), with RSS
    // as their status says (1848 and 1748 kB), most of it shmem: both run from the initramfs.
    const mib = (pid: number) => {
      const status = readFileSync(join(dir, `proc/${pid}/status`), 'utf8');
      return (Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024).toFixed(1);
    };
    expect(lines[1]).toMatch(new RegExp(`^2595\\s+${mib(2595)}MiB\\s+774\\.0KiB\\s.*\\s1\\.7MiB\\s.*\\ssh$`));
    expect(lines[2]).toMatch(new RegExp(`^\\s+1\\s+${mib(1)}MiB\\s+674\\.0KiB\\s.*\\s1\\.6MiB\\s.*\\sinit$`));
    expect(text).toMatch(/\n2 processes by pss\n/);
  });

  it('--limit and --sort on the four-types capture', async () => {
    const out = JSON.parse(await ok(['ps', FOUR, '--json', '--sort', 'uss', '--limit', '1'])) as PsJson;
    expect(out.processes).toHaveLength(1);
    expect(out.processes[0]!.pid).toBe(17695);
    expect(out.processes[0]!.sharedAnonBytes).toBe(7 * MiB);
    expect(out.totals.processes).toBe(2);
    // kthreadd is counted, not listed.
    expect(await ok(['ps', FOUR])).toMatch(/\n2 processes by pss \(1 kernel thread not shown\)\n/);
  });

  it('user errors: one line and a hint, exit 2', async () => {
    await userError(['ps', '--sort', 'bogus'], /--sort: expected one of pss, rss, uss, swap, vsz, anon/);
    await userError(['ps', '--limit', '-3'], /--limit/);
    await userError(['ps', '/nonexistent/snapshot'], /cannot open snapshot/);
    await userError(['ps', 'a', 'b'], /ps takes \[SNAPSHOT\], got 2 arguments \(b too many\)/);
  });

  it('a malformed process file names the file and line', async () => {
    const d = mkdtempSync(join(tmpdir(), 'memsleuth-ps-bad-'));
    try {
      cpSync(FOUR, d, { recursive: true });
      writeFileSync(join(d, 'proc/17695/statm'), '1 2 three 4 5 6 7\n');
      // The table prints nothing of statm and does not read it; --json prints every field.
      await userError(['ps', '--json', d], /proc\/17695\/statm:1: expected seven page counts/);
      writeFileSync(join(d, 'proc/17695/smaps'), 'garbage\n');
      await userError(['ps', d], /proc\/17695\/smaps:1: expected a mapping header/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('memsleuth pmap', () => {
  it('--kb prints exactly what procps pmap -x prints for a live process', async () => {
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await until(() => readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8').includes('(sleep) S '));
      const ours = await ok(['pmap', '--kb', String(sleeper.pid)]);
      const real = spawnSync('pmap', ['-x', String(sleeper.pid)], { encoding: 'utf8' });
      expect(real.status).toBe(0);
      expect(ours).toBe(real.stdout);
      // A kernel thread: header and a zero total, as procps prints it.
      expect(await ok(['pmap', '--kb', '2'])).toBe(
        spawnSync('pmap', ['-x', '2'], { encoding: 'utf8' }).stdout,
      );
    } finally {
      sleeper.kill();
    }
  });

  it('reads a snapshot: rows for every mapping, totals equal to status', async () => {
    const m = JSON.parse(await ok(['pmap', '17695', FOUR, '--json'])) as ProcessMaps;
    const smaps = readFileSync(join(FOUR, 'proc/17695/smaps'), 'utf8');
    const status = readFileSync(join(FOUR, 'proc/17695/status'), 'utf8');
    expect(m.view.rows).toHaveLength(smaps.split('\n').filter((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l)).length);
    expect(m.view.total.rssBytes).toBe(Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024);
    expect(m.view.rows.find((r) => r.pathname === '/dev/zero (deleted)')!.mapping).toBe('zero (deleted)');
    const human = await ok(['pmap', '17695', FOUR]);
    for (const l of human.trimEnd().split('\n')) expect(l.length).toBeLessThanOrEqual(100);
    expect(human).toMatch(/^17695: .*python3 make\.py \.\n/);
    expect(human).toMatch(
      /\n00007f283d179000\s+4\.0 MiB\s+4\.0 MiB\s+4\.0 MiB\s+rw-s-\s+\/dev\/zero \(deleted\)\n/,
    );
    expect(human).toMatch(/\ntotal\s+\S+ MiB\s+\S+ MiB\s+\S+ MiB\s+\d+ mappings\n$/);
  });

  it('user errors: no such process, bad PID, exit 2', async () => {
    await userError(['pmap', '999999', FOUR], /no process 999999 in/);
    await userError(['pmap', 'abc'], /expected PID/);
    await userError(['pmap'], /expected a PID/);
  });
});
