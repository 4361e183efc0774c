/**
 * `memsleuth trace` on this machine's kernel (root, tracefs with kmem events and
 * uprobe_events): known user and kernel workloads must be named with their outstanding
 * memory; a tracer stopped by SIGINT or SIGTERM restores tracefs, one killed with SIGKILL
 * is cleaned up by the next run; and the suite leaves nothing behind (afterAll).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutstandingGroup, OutstandingRow } from '../../src/analysis/alloc_trace.js';
import { openTracefs, ownedTracing, pidAlive } from '../../src/capture/tracefs.js';
import { runCommand } from '../../src/cli/main.js';
import { CLI_BIN } from '../paths.js';
import { buildProgram, startWorkload } from '../trace/programs.js';
import { runCli } from './cli.js';

/** Pids whose tracing state this file is responsible for (itself and the CLIs it spawned). */
const owners = new Set<number>([process.pid]);
let tmp: string;

beforeAll(() => {
  if (process.geteuid?.() !== 0) throw new Error('the trace tests need root (tracefs, uprobes)');
  tmp = mkdtempSync(join(tmpdir(), 'msl-trace-e2e-'));
});

/** Nothing of ours, and nothing of a dead memsleuth run, is left in tracefs or mounted. */
async function leftovers(): Promise<string[]> {
  const tfs = await openTracefs();
  try {
    const o = ownedTracing(tfs.root);
    return [
      ...o.instances.filter((i) => owners.has(i.pid) || !pidAlive(i.pid)).map((i) => `instance ${i.name}`),
      ...o.uprobeGroups
        .filter((g) => owners.has(g.pid) || !pidAlive(g.pid))
        .map((g) => `uprobe group ${g.group}`),
      ...o.mounts
        .filter((m) => m.path !== tfs.root && (owners.has(m.pid) || !pidAlive(m.pid)))
        .map((m) => `mount ${m.path}`),
      ...readdirSync(tmpdir())
        .filter((n) => /^memsleuth-tracefs-\d+$/.test(n))
        .filter((n) => join(tmpdir(), n) !== tfs.root && !pidAlive(Number(n.split('-').pop())))
        .map((n) => `directory ${join(tmpdir(), n)}`),
    ];
  } finally {
    await tfs.release();
  }
}

afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  expect(await leftovers()).toEqual([]);
});

/** A command run in this process, with its output readable while it runs. */
function inProcess(argv: string[]) {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(c, _e, cb) {
        add(String(c));
        cb();
      },
    });
  const code = runCommand(argv, {
    stdout: sink((s) => {
      out += s;
    }),
    stderr: sink((s) => {
      err += s;
    }),
    stdin: process.stdin,
    cwd: process.cwd(),
    env: { NO_COLOR: '1' },
    stdoutIsTTY: false,
    stderrIsTTY: false,
  });
  return { code, stdout: () => out, stderr: () => err };
}

async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface TraceJson {
  byStack: OutstandingGroup[];
  byCallSite: OutstandingRow[];
  counters: { lostEvents: number; allocs: number; frees: number; missingStacks: number };
  outstanding: { count: number; bytes: number };
  overhead?: { hits: number; tracedSystemShare?: number };
  readMode: string;
}

describe('trace user: a C program that leaks from one function', () => {
  it('names leak_records with its outstanding bytes (within 10%), not the functions that free', {
    timeout: 120_000,
  }, async () => {
    const w = await startWorkload(buildProgram('user-leak'), ['2000', '1000', '5000']);
    try {
      const run = inProcess([
        'trace',
        'user',
        '--pid',
        String(w.pid),
        '--duration',
        '6',
        '--baseline',
        '0.5',
        '--json',
      ]);
      await until(
        () => run.stderr().includes('memsleuth: tracing allocations of process'),
        'tracing to start',
      );
      w.go();
      const leaked = await w.done();
      expect(await run.code, run.stderr()).toBe(0);
      const j = JSON.parse(run.stdout()) as TraceJson;
      expect(j.readMode).toBe('raw');
      const leak = j.byStack.filter((g) => g.culprit?.func === 'leak_records');
      const bytes = leak.reduce((n, g) => n + g.weights.bytes, 0);
      expect(Math.abs(bytes - leaked) / leaked).toBeLessThanOrEqual(0.1);
      expect(leak[0]!.culprit!.module).toBe('user-leak');
      expect(leak[0]!.frames.map((f) => f.func)).toContain('main');
      for (const fn of ['release_records', 'balanced_churn'])
        expect(
          j.byStack.some((g) => g.culprit?.func === fn),
          fn,
        ).toBe(false);
      // The probes saw the whole run: 2000 + 5000 mallocs, 1000 + 5000 frees.
      expect(j.counters.allocs).toBeGreaterThanOrEqual(7001);
      expect(j.counters.frees).toBeGreaterThanOrEqual(6000);
      expect(j.overhead!.hits).toBeGreaterThanOrEqual(2 * 7001 + 6000);
      expect(run.stderr()).toMatch(/overhead: \d+ probe hits/);
    } finally {
      w.stop();
    }
  });

  it('reading trace_pipe text instead gives the same', { timeout: 120_000 }, async () => {
    const { traceUser } = await import('../../src/trace/user.js');
    const w = await startWorkload(buildProgram('user-leak'), ['500', '300', '100']);
    try {
      let started = false;
      const r = traceUser({
        pid: w.pid,
        durationSeconds: 4,
        baselineSeconds: 0,
        readMode: 'text',
        onStart: () => (started = true),
      });
      await until(() => started, 'tracing to start');
      w.go();
      const leaked = await w.done();
      const res = await r;
      expect(res.readMode).toBe('text');
      const bytes = res.report.byStack
        .filter((g) => g.culprit?.func === 'leak_records')
        .reduce((n, g) => n + g.weights.bytes, 0);
      expect(bytes).toBe(leaked);
    } finally {
      w.stop();
    }
  });

  it('refuses a pid that does not exist, before touching tracefs', async () => {
    const r = runCli(['trace', 'user', '--pid', '999999999', '--duration', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no process 999999999/);
  });
});

describe('trace kernel: a program that keeps pipes open', () => {
  it('names the growing kmalloc and kmem_cache call sites with their counts', {
    timeout: 120_000,
  }, async () => {
    const pipes = 2000;
    const w = await startWorkload(buildProgram('kernel-hold'), [String(pipes)]);
    const saved = join(tmp, 'kernel.trace');
    try {
      // --pid: only the program's own allocations, so nothing else can fill the buffer.
      const run = inProcess([
        'trace',
        'kernel',
        '--pid',
        String(w.pid),
        '--duration',
        '5',
        '--json',
        '--save',
        saved,
      ]);
      await until(() => run.stderr().includes('memsleuth: tracing kernel allocations'), 'tracing to start');
      w.go();
      await w.done();
      expect(await run.code, run.stderr()).toBe(0);
      const j = JSON.parse(run.stdout()) as TraceJson;
      expect(j.counters.lostEvents).toBe(0);
      const site = (n: string) => j.byCallSite.find((r) => r.name === n)?.weights.count ?? 0;
      expect(site('alloc_pipe_info')).toBe(2 * pipes); // pipe_inode_info and its buffers (kmalloc)
      expect(site('alloc_empty_file')).toBe(2 * pipes); // two files (filp cache)
      expect(site('alloc_inode')).toBe(pipes);
      const pipeInfo = j.byStack.find((g) => g.culprit?.func === 'alloc_pipe_info');
      expect(pipeInfo?.frames.map((f) => f.func)).toContain('do_pipe2');
      expect(Object.keys(pipeInfo!.comms)).toEqual(['kernel-hold']);
      // The saved text gives the same to `trace report`.
      const rep = runCli(['trace', 'report', saved, '--json']);
      expect(rep.status, rep.stderr).toBe(0);
      const again = JSON.parse(rep.stdout) as TraceJson;
      expect(again.byCallSite.find((r) => r.name === 'alloc_pipe_info')?.weights.count).toBe(2 * pipes);
    } finally {
      w.stop();
    }
  });

  it('machine-wide (no --pid), the program’s pipes are among what grew', { timeout: 120_000 }, async () => {
    const pipes = 2000;
    const w = await startWorkload(buildProgram('kernel-hold'), [String(pipes)]);
    try {
      const run = inProcess(['trace', 'kernel', '--duration', '5', '--json']);
      await until(() => run.stderr().includes('memsleuth: tracing kernel allocations'), 'tracing to start');
      w.go();
      await w.done();
      expect(await run.code, run.stderr()).toBe(0);
      const j = JSON.parse(run.stdout()) as TraceJson & { sample: number };
      // On a busy machine the rate cap may sample: counts are then estimates.
      const n = j.byCallSite.find((r) => r.name === 'alloc_pipe_info')?.weights.count ?? 0;
      expect(n).toBeGreaterThan(2 * pipes * (j.sample > 1 ? 0.3 : 0.9));
    } finally {
      w.stop();
    }
  });

  it('--cache filp --events cache traces only that cache', { timeout: 120_000 }, async () => {
    const w = await startWorkload(buildProgram('kernel-hold'), ['500']);
    try {
      const run = inProcess([
        'trace',
        'kernel',
        '--duration',
        '4',
        '--events',
        'cache',
        '--cache',
        'filp',
        '--json',
      ]);
      await until(() => run.stderr().includes('memsleuth: tracing kernel allocations'), 'tracing to start');
      w.go();
      await w.done();
      expect(await run.code, run.stderr()).toBe(0);
      const j = JSON.parse(run.stdout()) as TraceJson;
      expect(new Set(j.byStack.flatMap((g) => g.caches))).toEqual(new Set(['filp']));
      expect(j.byCallSite.find((r) => r.name === 'alloc_empty_file')?.weights.count).toBeGreaterThanOrEqual(
        1000,
      );
    } finally {
      w.stop();
    }
  });

  it('--sample 4 traces about a quarter of the objects and scales the counts', {
    timeout: 120_000,
  }, async () => {
    const w = await startWorkload(buildProgram('kernel-hold'), ['4000']);
    try {
      const run = inProcess([
        'trace',
        'kernel',
        '--duration',
        '4',
        '--events',
        'kmalloc',
        '--sample',
        '4',
        '--json',
      ]);
      await until(() => run.stderr().includes('memsleuth: tracing kernel allocations'), 'tracing to start');
      w.go();
      await w.done();
      expect(await run.code, run.stderr()).toBe(0);
      const j = JSON.parse(run.stdout()) as TraceJson & { sample: number };
      expect(j.sample).toBe(4);
      const n = j.byCallSite.find((r) => r.name === 'alloc_pipe_info')?.weights.count ?? 0;
      // 8000 objects in 1 KiB and smaller slabs, sampled by 4 KiB page: an estimate.
      expect(n % 4).toBe(0);
      expect(n).toBeGreaterThan(8000 * 0.5);
      expect(n).toBeLessThan(8000 * 1.5);
    } finally {
      w.stop();
    }
  });
});

describe('slab trace CACHE on a 5.9+ kernel', () => {
  it('the switch is read-only here: the cache’s kmem tracepoints name what keeps its objects', {
    timeout: 120_000,
  }, async () => {
    const w = await startWorkload(buildProgram('kernel-hold'), ['500']);
    try {
      const run = inProcess(['slab', 'trace', 'filp', '--seconds', '4', '--json']);
      await until(() => run.stderr().includes('memsleuth: tracing slab cache filp'), 'tracing to start');
      w.go();
      await w.done();
      expect(await run.code, run.stderr()).toBe(0);
      expect(run.stderr()).toMatch(/\/sys\/kernel\/slab\/filp\/trace is read-only on this kernel/);
      const j = JSON.parse(run.stdout()) as TraceJson & { method: string };
      expect(j.method).toBe('tracefs');
      expect(new Set(j.byStack.flatMap((g) => g.caches))).toEqual(new Set(['filp']));
      expect(j.byCallSite.find((r) => r.name === 'alloc_empty_file')?.weights.count).toBeGreaterThanOrEqual(
        1000,
      );
      // The switch was never written: still off.
      expect((await import('node:fs')).readFileSync('/sys/kernel/slab/filp/trace', 'utf8').trim()).toBe('0');
    } finally {
      w.stop();
    }
  });
});

/** Spawn the built CLI and wait for the line that says tracing is on. */
async function spawnTracer(
  args: string[],
): Promise<{ child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  owners.add(child.pid!);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await until(() => /memsleuth: tracing /.test(err) || child.exitCode !== null, 'the tracer to start');
  if (child.exitCode !== null) throw new Error(`tracer exited early: ${err}`);
  return { child, out: () => out, err: () => err, exit };
}

async function stateOf(pid: number): Promise<string[]> {
  const tfs = await openTracefs();
  try {
    const o = ownedTracing(tfs.root);
    return [
      ...o.instances.filter((i) => i.pid === pid).map((i) => `instance ${i.name}`),
      ...o.uprobeGroups.filter((g) => g.pid === pid).map((g) => `uprobe group ${g.group}`),
      ...o.mounts.filter((m) => m.pid === pid).map(() => 'mount'),
    ];
  } finally {
    await tfs.release();
  }
}

describe('restoring tracefs', () => {
  it('SIGINT and SIGTERM stop the trace, report, and remove the instance', { timeout: 120_000 }, async () => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const t = await spawnTracer(['trace', 'kernel', '--duration', '120', '--events', 'kmalloc']);
      expect(await stateOf(t.child.pid!)).toContain(`instance memsleuth-${t.child.pid}`);
      t.child.kill(sig);
      expect(await t.exit).toBe(0);
      expect(t.err()).toContain(`stopped by ${sig}`);
      expect(t.out()).toMatch(/^trace kernel: .* traced/);
      expect(await stateOf(t.child.pid!)).toEqual([]);
    }
  });

  it('SIGTERM of `trace user` removes its uprobes too', { timeout: 120_000 }, async () => {
    const w = await startWorkload(buildProgram('user-leak'), ['10', '10']);
    try {
      const t = await spawnTracer([
        'trace',
        'user',
        '--pid',
        String(w.pid),
        '--duration',
        '120',
        '--baseline',
        '0',
      ]);
      const pid = t.child.pid!;
      expect(await stateOf(pid)).toEqual(
        expect.arrayContaining([`instance memsleuth-${pid}`, `uprobe group memsleuth_${pid}`]),
      );
      t.child.kill('SIGTERM');
      expect(await t.exit).toBe(0);
      expect(await stateOf(pid)).toEqual([]);
    } finally {
      w.stop();
    }
  });

  it('a tracer killed with SIGKILL is cleaned up by the next run', { timeout: 120_000 }, async () => {
    const w = await startWorkload(buildProgram('user-leak'), ['10', '10']);
    try {
      const k = await spawnTracer(['trace', 'kernel', '--duration', '120', '--events', 'kmalloc']);
      const u = await spawnTracer([
        'trace',
        'user',
        '--pid',
        String(w.pid),
        '--duration',
        '120',
        '--baseline',
        '0',
      ]);
      for (const t of [k, u]) {
        t.child.kill('SIGKILL');
        expect(await t.exit).toBe(null);
      }
      // Left behind: nothing ran on the way out.
      expect(await stateOf(k.child.pid!)).toContain(`instance memsleuth-${k.child.pid}`);
      expect(await stateOf(u.child.pid!)).toEqual(
        expect.arrayContaining([
          `instance memsleuth-${u.child.pid}`,
          `uprobe group memsleuth_${u.child.pid}`,
        ]),
      );
      const next = runCli(['trace', 'kernel', '--duration', '1', '--events', 'kmalloc']);
      expect(next.status, next.stderr).toBe(0);
      expect(next.stderr).toContain(
        `removed what a killed run left: instance memsleuth-${k.child.pid} (pid ${k.child.pid} is gone)`,
      );
      expect(next.stderr).toContain(`uprobe group memsleuth_${u.child.pid} (pid ${u.child.pid} is gone)`);
      expect(await stateOf(k.child.pid!)).toEqual([]);
      expect(await stateOf(u.child.pid!)).toEqual([]);
      expect(existsSync(join(tmpdir(), `memsleuth-tracefs-${k.child.pid}`))).toBe(false);
    } finally {
      w.stop();
    }
  });
});
