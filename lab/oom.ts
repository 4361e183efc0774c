/**
 * The lab's OOM boot: a separate boot of a lab kernel (the capture boot of index.ts is
 * untouched) that runs out of memory three ways — a user-space hog, a memory cgroup
 * with a small memory.max, and msl_leaky's page leak until the kernel panics — and
 * keeps the console log with every OOM-killer report. lab/guest/oom.sh is the guest
 * side; msl_hog (lab/guest/hog.c) is built here with `gcc -static`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  buildModule,
  ensureKernel,
  kernelKey,
  type LabKernel,
  type LabKernelVersion,
  labCacheRoot,
  MODULE_DIR,
  MODULE_SOURCE,
  withLock,
} from './index.js';
import { LAB_DIR, runLogged } from './kernel.js';

const GUEST_DIR = join(LAB_DIR, 'guest');
const GUEST_INIT = join(GUEST_DIR, 'init');
const SCENARIO = join(GUEST_DIR, 'oom.sh');
const HOG_SOURCE = join(GUEST_DIR, 'hog.c');
const BUSYBOX = '/bin/busybox';

/** What the OOM boot does; every field goes into the cache key. */
export interface OomScenario {
  /** Guest RAM (MiB): small, so the hog and the leak finish in seconds under TCG. */
  memoryMiB: number;
  /** memory.max of the cgroup v2 child `msl-oom` (MiB). */
  memcgMaxMiB: number;
  /** Resident size of the bystander that the first kernel-leak OOM kills (MiB). */
  bystanderMiB: number;
  /** msl_leaky's parameters for the leak: order-0 pages only, in bursts. */
  leakParams: string;
}

export const DEFAULT_OOM_SCENARIO: OomScenario = {
  memoryMiB: 256,
  memcgMaxMiB: 32,
  bystanderMiB: 8,
  // 64 order-0 pages per step at up to HZ (250) steps a second: ~64 MiB/s. No vmalloc
  // leak, churn freed every step: what no counter sees is the page leak alone.
  leakParams:
    'steps=4000000 rate=1000 slab_size=64 page_order=0 page_every=1 page_burst=64 vmalloc_every=0 churn_every=1',
};

/** The kernel command line of the OOM boot (no page_owner or slub_debug: their memory is not the point). */
export function oomBootArgs(): string {
  return ['console=ttyS0', 'panic=-1', 'rdinit=/init'].join(' ');
}

function sha(parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    h.update('\0');
  }
  return h.digest('hex').slice(0, 12);
}

/** msl_hog, statically linked for the busybox guest (cached by source). */
export async function buildHog(): Promise<string> {
  const src = readFileSync(HOG_SOURCE);
  const dir = join(labCacheRoot(), `hog-${sha([src])}`);
  const bin = join(dir, 'msl_hog');
  if (existsSync(bin)) return bin;
  return withLock(`${dir}.lock`, async () => {
    if (existsSync(bin)) return bin;
    await mkdir(dir, { recursive: true });
    await runLogged('gcc', ['-static', '-O2', '-Wall', '-o', `${bin}.tmp`, HOG_SOURCE], {
      log: join(dir, 'build.log'),
      timeoutMs: 5 * 60_000,
    });
    await rename(`${bin}.tmp`, bin);
    return bin;
  });
}

async function buildOomInitramfs(ko: string, hog: string, s: OomScenario, out: string): Promise<string> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} missing: apt-get install busybox-static`);
  const root = `${out}.root`;
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(root, 'bin', 'busybox'));
  await symlink('busybox', join(root, 'bin', 'sh'));
  await copyFile(GUEST_INIT, join(root, 'init'));
  await copyFile(SCENARIO, join(root, 'scenario.sh'));
  await copyFile(ko, join(root, 'msl_leaky.ko'));
  // Two names, so the reports tell the global hog from the one in the cgroup.
  await copyFile(hog, join(root, 'msl_hog'));
  await copyFile(hog, join(root, 'msl_memcg_hog'));
  for (const f of ['init', 'bin/busybox', 'msl_hog', 'msl_memcg_hog']) await chmod(join(root, f), 0o755);
  await writeFile(
    join(root, 'lab.conf'),
    `MODULE_PARAMS='(OOM boot) ${s.leakParams}'\nMEMCG_MAX_MIB=${s.memcgMaxMiB}\nBYSTANDER_MIB=${s.bystanderMiB}\nLEAK_PARAMS='${s.leakParams}'\n`,
  );
  await runLogged(
    'sh',
    ['-c', `cd "${root}" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > "${out}"`],
    { log: `${out}.log` },
  );
  await rm(root, { recursive: true, force: true });
  return out;
}

/** A finished OOM boot. */
export interface OomRun {
  kernel: LabKernel;
  scenario: OomScenario;
  outDir: string;
  /** The serial console: every report of (a), (b) and (c), up to the panic. */
  console: string;
  /** `dmesg` inside the guest after (a) and (b), before the leak started. */
  dmesgUser: string;
  bootSeconds: number;
}

export interface RunOomOptions {
  kernel: LabKernelVersion;
  /** Where console.log and dmesg-user.txt go. Must not exist or be empty. */
  outDir: string;
  scenario?: Partial<OomScenario>;
  timeoutMs?: number;
  log?: (line: string) => void;
}

/** Build what is missing, boot the OOM scenario once, and keep its logs. */
export async function runOomLab(opts: RunOomOptions): Promise<OomRun> {
  const log = opts.log ?? (() => {});
  const scenario: OomScenario = { ...DEFAULT_OOM_SCENARIO, ...opts.scenario };
  const kernel = await ensureKernel(opts.kernel, { log });
  const ko = await buildModule(kernel);
  const hog = await buildHog();
  const outDir = resolve(opts.outDir);
  await mkdir(outDir, { recursive: true });
  if ((await readdir(outDir)).length > 0) throw new Error(`${outDir} is not empty`);
  const work = join(outDir, '.work');
  const share = join(work, 'share');
  await mkdir(share, { recursive: true });
  const initrd = await buildOomInitramfs(ko, hog, scenario, join(work, 'initrd.cpio'));
  const consoleLog = join(outDir, 'console.log');
  // biome-ignore format: qemu options read best in pairs
  const args = [
    '-machine', 'pc', '-accel', 'tcg', '-m', String(scenario.memoryMiB), '-smp', '2',
    '-kernel', kernel.bzImage, '-initrd', initrd, '-append', oomBootArgs(),
    '-display', 'none', '-monitor', 'none', '-serial', `file:${consoleLog}`,
    // The panic at the end reboots; -no-reboot turns that into qemu's exit.
    '-no-reboot', '-nic', 'none',
    '-fsdev', `local,id=msl,path=${share},security_model=none`,
    '-device', 'virtio-9p-pci,fsdev=msl,mount_tag=msl',
  ];
  log(`lab: OOM boot of ${opts.kernel} (${kernel.release}), ${scenario.memoryMiB} MiB`);
  const started = Date.now();
  const consoleText = async () => {
    try {
      return await readFile(consoleLog, 'utf8');
    } catch {
      return '';
    }
  };
  const tail = async () => (await consoleText()).split('\n').slice(-40).join('\n');
  try {
    await runLogged('qemu-system-x86_64', args, {
      log: join(work, 'qemu.log'),
      timeoutMs: opts.timeoutMs ?? 10 * 60_000,
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}\nconsole tail (${consoleLog}):\n${await tail()}`);
  }
  const bootSeconds = (Date.now() - started) / 1000;
  const guestOut = join(share, 'out');
  const failed = join(guestOut, 'failed');
  if (existsSync(failed)) {
    throw new Error(
      `lab OOM guest failed: ${(await readFile(failed, 'utf8')).trim()}\nconsole tail:\n${await tail()}`,
    );
  }
  const text = await consoleText();
  if (!existsSync(join(guestOut, 'leak-started')) || !existsSync(join(guestOut, 'dmesg-user.txt'))) {
    throw new Error(`lab OOM guest stopped before the kernel leak started\nconsole tail:\n${await tail()}`);
  }
  if (!/Kernel panic - not syncing: System is deadlocked on memory/.test(text)) {
    throw new Error(`lab OOM guest ended without the out-of-memory panic\nconsole tail:\n${await tail()}`);
  }
  await copyFile(join(guestOut, 'dmesg-user.txt'), join(outDir, 'dmesg-user.txt'));
  await rm(work, { recursive: true, force: true });
  log(`lab: OOM boot of ${opts.kernel} took ${bootSeconds.toFixed(0)} s; logs in ${outDir}`);
  return readOomRun(outDir, kernel, scenario, bootSeconds);
}

export function readOomRun(
  outDir: string,
  kernel: LabKernel,
  scenario: OomScenario,
  bootSeconds = 0,
): OomRun {
  return {
    kernel,
    scenario,
    outDir,
    console: join(outDir, 'console.log'),
    dmesgUser: join(outDir, 'dmesg-user.txt'),
    bootSeconds,
  };
}

/** The cache key of an OOM boot: kernel, module source, guest scripts, hog, scenario, this file. */
export function oomRunKey(version: LabKernelVersion, scenario: OomScenario): string {
  return sha([
    version,
    kernelKey(version),
    readFileSync(MODULE_SOURCE),
    readFileSync(join(MODULE_DIR, 'Kbuild')),
    readFileSync(GUEST_INIT),
    readFileSync(SCENARIO),
    readFileSync(HOG_SOURCE),
    JSON.stringify(scenario),
    oomBootArgs(),
    readFileSync(join(LAB_DIR, 'oom.ts')),
  ]);
}

/** The OOM boot's logs, from the cache when an identical boot already ran, else booted now. */
export async function cachedOomRun(
  version: LabKernelVersion,
  opts: { scenario?: Partial<OomScenario>; log?: (line: string) => void } = {},
): Promise<OomRun> {
  const scenario: OomScenario = { ...DEFAULT_OOM_SCENARIO, ...opts.scenario };
  const dir = join(labCacheRoot(), `oom-${version}-${oomRunKey(version, scenario)}`);
  const ok = join(dir, '.complete');
  const kernel = await ensureKernel(version, opts);
  if (existsSync(ok)) return readOomRun(dir, kernel, scenario, Number(readFileSync(ok, 'utf8')) || 0);
  return withLock(`${dir}.lock`, async () => {
    if (existsSync(ok)) return readOomRun(dir, kernel, scenario, Number(readFileSync(ok, 'utf8')) || 0);
    await rm(dir, { recursive: true, force: true });
    const run = await runOomLab({ kernel: version, outDir: dir, scenario, log: opts.log });
    await writeFile(ok, String(run.bootSeconds));
    return run;
  });
}
