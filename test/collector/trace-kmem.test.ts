/**
 * memsleuth-collect.sh --trace-kmem on this machine (root, tracefs): the Node-less way to
 * trace kernel allocations. It must capture a trace `memsleuth trace report` reads, put
 * it in the manifest, and leave tracefs as it found it, also when stopped by SIGTERM;
 * what a killed collector left is removed by the next one. Exact counts are checked in
 * the quiet lab guest (test/lab/trace-kmem-suite.ts); this busy machine can drop events.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutstandingRow } from '../../src/analysis/alloc_trace.js';
import { openTracefs, ownedTracing, pidAlive, tracefsMounts } from '../../src/capture/tracefs.js';
import type { Manifest } from '../../src/model/snapshot.js';
import { runCli } from '../e2e/cli.js';
import { REPO_ROOT } from '../paths.js';
import { buildProgram, startWorkload } from '../trace/programs.js';

const SCRIPT = join(REPO_ROOT, 'collector', 'memsleuth-collect.sh');
const owners = new Set<number>();
let tmp: string;

beforeAll(() => {
  if (process.geteuid?.() !== 0) throw new Error('the collector trace tests need root (tracefs)');
  tmp = mkdtempSync(join(tmpdir(), 'msl-collect-trace-'));
});

async function state(pids: Set<number>): Promise<string[]> {
  const tfs = await openTracefs();
  try {
    const o = ownedTracing(tfs.root);
    return [
      ...o.instances.filter((i) => pids.has(i.pid) || !pidAlive(i.pid)).map((i) => `instance ${i.name}`),
      ...o.mounts
        .filter((m) => m.path !== tfs.root && (pids.has(m.pid) || !pidAlive(m.pid)))
        .map((m) => `mount ${m.path}`),
      ...[...pids]
        .filter((p) => existsSync(join(tmpdir(), `memsleuth-tracefs-${p}`)))
        .map((p) => `directory of ${p}`),
    ];
  } finally {
    await tfs.release();
  }
}

afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  expect(await state(owners)).toEqual([]);
});

/** The instance directory a collector of `pid` records into, once it is recording. */
async function recording(pid: number): Promise<string> {
  for (let i = 0; i < 600; i++) {
    for (const m of tracefsMounts()) {
      const inst = join(m, 'instances', `memsleuth-${pid}`);
      try {
        if (
          // `1*`: enabled, with a trigger.
          readFileSync(join(inst, 'events/kmem/kmalloc/enable'), 'utf8').startsWith('1') &&
          readFileSync(join(inst, 'tracing_on'), 'utf8').trim() === '1'
        )
          return inst;
      } catch {}
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`collector ${pid} did not start tracing`);
}

function collector(out: string, seconds: number) {
  const child = spawn(
    '/bin/busybox',
    [
      'sh',
      SCRIPT,
      '-o',
      out,
      '--trace-kmem',
      String(seconds),
      '--no-processes',
      '--no-page-owner',
      '--no-slab-traces',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  owners.add(child.pid!);
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exit, err: () => err };
}

describe('memsleuth-collect.sh --trace-kmem', () => {
  it('captures a kmem trace that `memsleuth trace report` reads, and restores tracefs', {
    timeout: 180_000,
  }, async () => {
    const w = await startWorkload(buildProgram('kernel-hold'), ['300']);
    const out = join(tmp, 'snap');
    try {
      const c = collector(out, 3);
      await recording(c.child.pid!);
      w.go();
      await w.done();
      expect(await c.exit, c.err()).toBe(0);
      const man = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;
      expect(man.files).toEqual(expect.arrayContaining(['trace/kmem', 'trace/kmem.stats']));
      expect(c.err()).toMatch(/trace\/kmem: \d+ lines/);
      const r = runCli(['trace', 'report', out, '--json']);
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as {
        byCallSite: OutstandingRow[];
        counters: { lostEvents: number };
        events: Record<string, number>;
      };
      expect(j.events.kmalloc).toBeGreaterThan(0);
      expect(j.events.kmem_cache_free).toBeGreaterThan(0);
      // The pipes show (all of them unless this busy machine made the reader drop events).
      const pipes = j.byCallSite.find((x) => x.name === 'alloc_pipe_info')?.weights.count ?? 0;
      expect(pipes).toBeGreaterThan(0);
      if (j.counters.lostEvents === 0) expect(pipes).toBeGreaterThanOrEqual(600);
      else expect(runCli(['trace', 'report', out]).stdout).toMatch(/warning: \d+ events lost/);
      expect(await state(new Set([c.child.pid!]))).toEqual([]);
    } finally {
      w.stop();
    }
  });

  it('SIGTERM during the trace removes the instance (and a private mount) and exits 130', {
    timeout: 120_000,
  }, async () => {
    const c = collector(join(tmp, 'term'), 120);
    await recording(c.child.pid!);
    c.child.kill('SIGTERM');
    expect(await c.exit).toBe(130);
    expect(await state(new Set([c.child.pid!]))).toEqual([]);
  });

  it('an instance left by a killed collector is removed by the next one', { timeout: 120_000 }, async () => {
    const c = collector(join(tmp, 'killed'), 120);
    const inst = await recording(c.child.pid!);
    c.child.kill('SIGKILL');
    await c.exit;
    // The shell that would clean up is gone; its reader (cat) lives on, holding trace_pipe.
    expect(existsSync(inst)).toBe(true);
    const next = collector(join(tmp, 'next'), 1);
    expect(await next.exit, next.err()).toBe(0);
    expect(next.err()).toContain(`memsleuth-${c.child.pid} (pid ${c.child.pid} is gone)`);
    expect(existsSync(inst)).toBe(false);
    expect(await state(new Set([c.child.pid!, next.child.pid!]))).toEqual([]);
  });
});
