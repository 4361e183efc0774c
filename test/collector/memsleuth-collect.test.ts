/**
 * The POSIX sh collector on this machine's live /proc and /sys, under dash, bash
 * and busybox sh with nothing but busybox applets on PATH. Its output must be a
 * snapshot that `openSnapshot` reads, with a manifest that matches the files on disk
 * and the `memsleuth snapshot` conventions (missing reasons and enable hints).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSnapshot } from '../../src/capture/snapshot.js';
import { MANIFEST_FORMAT, type Manifest, PROCESS_FILES, SYSTEM_SOURCES } from '../../src/model/snapshot.js';
import { configEnabled, parseKernelConfig } from '../../src/sources/kconfig.js';
import { parseMeminfo } from '../../src/sources/meminfo.js';
import { REPO_ROOT } from '../paths.js';
import { cli } from '../run.js';

const SCRIPT = join(REPO_ROOT, 'collector', 'memsleuth-collect.sh');
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;
const BUSYBOX = '/bin/busybox';

let tmp: string;
let busyboxPath: string;

beforeAll(() => {
  for (const p of ['/usr/bin/dash', BUSYBOX, '/bin/bash']) {
    if (!existsSync(p)) throw new Error(`${p} missing: run scripts/ensure-deps.sh (dash, busybox-static)`);
  }
  tmp = mkdtempSync(join(tmpdir(), 'msl-collect-'));
  // A PATH with only busybox applets, so the script cannot lean on GNU tools.
  busyboxPath = join(tmp, 'bb');
  mkdirSync(busyboxPath);
  const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of applets) symlinkSync(BUSYBOX, join(busyboxPath, a));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function collect(shell: string[], args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const r = spawnSync(shell[0]!, [...shell.slice(1), SCRIPT, ...args], { encoding: 'utf8', env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

/** Checks every collector output must pass. */
async function checkSnapshotDir(dir: string): Promise<Manifest> {
  const m = readManifest(dir);
  expect(m.format).toBe(MANIFEST_FORMAT);
  expect(m.tool).toBe(`memsleuth-collect.sh ${VERSION}`);
  expect(m.hostname).toBe(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim());
  expect(m.kernelRelease).toBe(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
  expect(m.kernelVersion).toBe(readFileSync('/proc/sys/kernel/version', 'utf8').trim());
  expect(m.machine).toBe(spawnSync('uname', ['-m'], { encoding: 'utf8' }).stdout.trim());
  expect(m.pageSizeBytes).toBe(4096);
  expect(m.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  expect(Math.abs(Date.parse(m.time) - Date.now())).toBeLessThan(10 * 60_000);
  const uptimeNow = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  expect(m.uptimeSeconds).toBeGreaterThan(0);
  expect(m.uptimeSeconds).toBeLessThanOrEqual(uptimeNow);
  expect(m.durationSeconds).toBeGreaterThanOrEqual(0);

  // The manifest lists exactly the files on disk: none missing, none unlisted, and no
  // bookkeeping files left behind.
  expect(filesUnder(dir)).toEqual([...m.files, 'manifest.json'].sort());
  // A process directory is complete or absent: status always, no empty directories.
  const procDirs = readdirSync(join(dir, 'proc'));
  expect(procDirs.length).toBeGreaterThan(0);
  for (const pid of procDirs) {
    expect(m.files).toContain(`proc/${pid}/status`);
    for (const f of readdirSync(join(dir, 'proc', pid)))
      expect(PROCESS_FILES as readonly string[]).toContain(f);
  }
  // Kernel threads own no user memory and are left out, as `memsleuth snapshot` does (kthreadd is pid 2).
  expect(procDirs).not.toContain('2');

  // This kernel's config says which options are not set: their hint says a rebuild is needed.
  const config = parseKernelConfig(gunzipSync(readFileSync('/proc/config.gz')).toString('utf8'));
  const expectedHint = (s: { enable: string; config?: string }) =>
    s.config && configEnabled(config, s.config) === false
      ? `this kernel is built without ${s.config}: rebuild it with ${s.config}=y (no boot option enables it); then ${s.enable}`
      : s.enable;
  // Every system source is either captured or listed as missing with the same hint as
  // SYSTEM_SOURCES, never both.
  for (const s of SYSTEM_SOURCES) {
    const captured = m.files.includes(s.path);
    const miss = m.missing.find((x) => x.path === s.path);
    expect(captured !== (miss !== undefined), s.path).toBe(true);
    if (miss && !miss.reason.startsWith('skipped')) expect(miss.enable).toBe(expectedHint(s));
    if (captured) expect(existsSync(s.livePath), s.livePath).toBe(true);
    if (miss && miss.reason === 'debugfs not mounted') {
      expect(readFileSync('/proc/mounts', 'utf8')).not.toMatch(/ \/sys\/kernel\/debug debugfs /);
    }
  }

  // openSnapshot reads it, and the text is this machine's.
  const snap = await openSnapshot(dir);
  try {
    expect((await snap.manifest()).files).toEqual(m.files);
    const meminfo = parseMeminfo((await snap.readText('meminfo'))!);
    const live = parseMeminfo(readFileSync('/proc/meminfo', 'utf8'));
    expect(meminfo.bytes.MemTotal).toBe(live.bytes.MemTotal);
    expect((await snap.pids()).length).toBe(procDirs.length);
    expect(await snap.pids()).toContain(process.pid);
  } finally {
    await snap.close();
  }
  // reclaim_account for every named slab cache in sysfs.
  const caches = readdirSync('/sys/kernel/slab').filter((c) => !c.startsWith(':'));
  const got = m.files.filter((f) => f.endsWith('.reclaim_account')).map((f) => f.slice(5, -16));
  expect(got.length).toBeGreaterThan(0);
  for (const c of got) expect(caches).toContain(c);
  expect(got.length).toBeGreaterThan(caches.length * 0.9);
  return m;
}

describe('memsleuth-collect.sh on the live machine', () => {
  it('writes a valid snapshot directory under dash', { timeout: 180_000 }, async () => {
    const out = join(tmp, 'dash');
    const r = collect(['/usr/bin/dash'], ['-o', out]);
    expect(r.stderr).toContain('memsleuth-collect: reading /proc/meminfo');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(out);
    const m = await checkSnapshotDir(out);
    // The process's own files are real: our own status names node.
    expect(readFileSync(join(out, 'proc', String(process.pid), 'status'), 'utf8')).toMatch(/^Name:\s+node/m);
    expect(m.files).toContain(`proc/${process.pid}/smaps`);
  });

  it('runs under busybox sh with only busybox applets on PATH', { timeout: 180_000 }, async () => {
    const out = join(tmp, 'busybox');
    const r = collect([BUSYBOX, 'sh'], ['-o', out], { PATH: busyboxPath, LC_ALL: 'C' });
    expect(r.stderr).not.toMatch(/not found/);
    expect(r.status).toBe(0);
    await checkSnapshotDir(out);
  });

  it('runs under bash and agrees with `memsleuth snapshot` on sources, caches and processes', {
    timeout: 180_000,
  }, async () => {
    const out = join(tmp, 'bash');
    const r = collect(['/bin/bash'], ['-o', out, '--no-smaps']);
    expect(r.status).toBe(0);
    const m = await checkSnapshotDir(out);
    expect(m.files.some((f) => f.endsWith('/smaps'))).toBe(false);
    expect(m.files.some((f) => f.endsWith('/smaps_rollup'))).toBe(true);

    const nodeOut = join(tmp, 'node-snapshot');
    const n = await cli(['snapshot', '-d', nodeOut, '--no-smaps']);
    expect(n.status, n.stderr).toBe(0);
    const nm = readManifest(nodeOut);
    const system = (x: Manifest) => x.files.filter((f) => !f.includes('/')).sort();
    expect(system(m)).toEqual(system(nm));
    const missingOf = (x: Manifest) =>
      x.missing.filter((e) => !e.path.startsWith('proc/')).map((e) => [e.path, e.reason, e.enable]);
    expect(missingOf(m)).toEqual(missingOf(nm));
    const slab = (x: Manifest) => x.files.filter((f) => f.startsWith('slab/')).sort();
    expect(slab(m)).toEqual(slab(nm));
    // Long-lived processes (pid 1, this test runner) are in both; per-process file sets match.
    const filesOf = (x: Manifest, pid: number) => x.files.filter((f) => f.startsWith(`proc/${pid}/`)).sort();
    for (const pid of [1, process.pid]) {
      expect(filesOf(m, pid).length).toBeGreaterThan(0);
      expect(filesOf(m, pid)).toEqual(filesOf(nm, pid));
    }
  });

  it('skips processes that exit mid-capture and keeps the manifest exact', { timeout: 180_000 }, async () => {
    // A churn of short-lived processes (10-30 ms each, a few alive at any moment) while the
    // collector walks /proc: pids listed by the walk vanish before their files are read.
    // Whether a given walk meets one is a race, so up to three walks run; every walk's
    // manifest must be exact, and at least one must have seen an exit.
    const churn: ChildProcess = spawn(
      'sh',
      ['-c', 'while :; do sleep 0.01 & sleep 0.02 & sleep 0.03 & wait; done'],
      { stdio: 'ignore' },
    );
    try {
      let skipped = 0;
      for (let attempt = 0; attempt < 3 && skipped === 0; attempt++) {
        const out = join(tmp, `churn-${attempt}`);
        const r = collect(['/usr/bin/dash'], ['-o', out, '--no-smaps']);
        expect(r.status).toBe(0);
        const m = await checkSnapshotDir(out);
        for (const s of m.skippedPids ?? []) {
          expect(s.reason).toBe('exited during capture');
          expect(m.files.some((f) => f.startsWith(`proc/${s.pid}/`))).toBe(false);
        }
        skipped += m.skippedPids?.length ?? 0;
      }
      expect(skipped).toBeGreaterThan(0);
    } finally {
      churn.kill('SIGKILL');
    }
  });

  it('packs a bundle with -z that openSnapshot opens, and removes the directory', {
    timeout: 180_000,
  }, async () => {
    const out = join(tmp, 'bundle');
    const r = collect(['/usr/bin/dash'], ['-o', out, '-z', '--no-processes', '-q']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`${out}.tar.gz`);
    expect(existsSync(out)).toBe(false);
    expect(statSync(`${out}.tar.gz`).size).toBeGreaterThan(1000);
    const snap = await openSnapshot(`${out}.tar.gz`);
    try {
      const m = await snap.manifest();
      expect(m.tool).toBe(`memsleuth-collect.sh ${VERSION}`);
      expect(m.files).toContain('meminfo');
      expect(m.files.some((f) => f.startsWith('proc/'))).toBe(false);
      expect(await snap.readText('meminfo')).toMatch(/^MemTotal:/);
      expect(await snap.pids()).toEqual([]);
    } finally {
      await snap.close();
    }
  });

  it('records skipped page_owner with its own reason', { timeout: 180_000 }, async () => {
    const out = join(tmp, 'no-po');
    const r = collect(
      ['/usr/bin/dash'],
      ['-o', out, '--no-page-owner', '--no-processes', '--no-slab-traces'],
    );
    expect(r.status).toBe(0);
    const m = readManifest(out);
    expect(m.missing).toContainEqual({
      path: 'page_owner',
      reason: 'skipped (--no-page-owner)',
      enable: 'omit --no-page-owner',
    });
    expect(m.files.some((f) => f.endsWith('_traces') || f.endsWith('_calls'))).toBe(false);
  });
});

describe('memsleuth-collect.sh usage errors', () => {
  it('needs -o, refuses an existing directory and unknown options', async () => {
    let r = collect(['/usr/bin/dash'], []);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('-o DIR is required');
    const existing = join(tmp, 'exists');
    mkdirSync(existing, { recursive: true });
    r = collect(['/usr/bin/dash'], ['-o', existing]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('already exists');
    expect(readdirSync(existing)).toEqual([]);
    r = collect(['/usr/bin/dash'], ['-o', join(tmp, 'x'), '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown option: --bogus');
    expect(existsSync(join(tmp, 'x'))).toBe(false);
    r = collect(['/usr/bin/dash'], ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--kmemleak-scan');
  });

  it('writes to the kernel only in the --kmemleak-scan branch and the --trace-kmem functions', async () => {
    // Every output redirection targets the snapshot, its bookkeeping files, stderr or
    // /dev/null, except `echo scan` into kmemleak inside the flag's branch and the
    // tracefs writes of the trace functions, which only --trace-kmem runs.
    const lines = readFileSync(SCRIPT, 'utf8').split('\n');
    const allowed =
      /^"?(\$out|\$manifest|\$files_list|\$missing_list|\$skipped_list|\$config_list|\$proc_failures|&2|\/dev\/null)/;
    const writes: { line: number; target: string }[] = [];
    lines.forEach((l, i) => {
      if (/^\s*#/.test(l)) return;
      for (const m of l.matchAll(/(^|[^0-9&<])>>?\s*("?[^\s;|)]+)/g)) {
        // Only shell paths (`"$VAR...`, `/...`): `NR > 1` in awk programs is not a redirection.
        if (/^"?[$/]/.test(m[2]!) && !allowed.test(m[2]!)) writes.push({ line: i, target: m[2]! });
      }
    });
    const kmemleak = writes.filter((w) => w.target.includes('kmemleak'));
    expect(kmemleak.map((w) => w.target)).toEqual(['"$DEBUGFS/kmemleak"', '"$DEBUGFS/kmemleak"']);
    const branch = lines.findIndex((l) => l.includes('if [ "$kmemleak_scan" = 1 ]'));
    const branchEnd = lines.findIndex((l, i) => i > branch && l === 'fi');
    for (const w of kmemleak) {
      expect(w.line).toBeGreaterThan(branch);
      expect(w.line).toBeLessThan(branchEnd);
    }
    // The rest go into tracefs (our instance, a dead run's instance, uprobe_events),
    // from the trace functions, which are called only under `if [ -n "$trace_kmem" ]`.
    const traced = writes.filter((w) => !w.target.includes('kmemleak'));
    expect(traced.length).toBeGreaterThan(5);
    const first = lines.findIndex((l) => l === 'trace_cleanup() {');
    const last = lines.findIndex((l) => l === 'trace_kmem_run() {');
    const lastEnd = lines.findIndex((l, i) => i > last && l === '}');
    for (const w of traced) {
      expect(w.target).toMatch(/^"\$(trace_inst|d|trace_tfs)\//);
      expect(w.line).toBeGreaterThan(first);
      expect(w.line).toBeLessThan(lastEnd);
    }
    const calls = lines.flatMap((l, i) => (/^\s*trace_kmem_run\s*$/.test(l) ? [i] : []));
    expect(calls.length).toBe(1);
    expect(lines[calls[0]! - 2]).toBe('if [ -n "$trace_kmem" ]; then');
  });
});

describe('memsleuth collector', () => {
  it('prints the shipped script stamped with this version, and the printed script runs', {
    timeout: 180_000,
  }, async () => {
    const r = await cli(['collector']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^#!\/bin\/sh\n/);
    expect(r.stdout).toContain(`MSL_VERSION=${VERSION}\n`);
    // The shipped file carries the package version too, so both manifests agree.
    expect(readFileSync(SCRIPT, 'utf8')).toContain(`MSL_VERSION=${VERSION}\n`);
    const printed = join(tmp, 'printed.sh');
    writeFileSync(printed, r.stdout);
    const out = join(tmp, 'printed');
    const run = spawnSync(BUSYBOX, ['sh', printed, '-o', out, '--no-processes', '-q'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(readManifest(out).files).toContain('meminfo');
  });
});
