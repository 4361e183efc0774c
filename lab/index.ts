/**
 * The kernel lab: builds small kernels (kernel.ts), the msl_leaky module and a
 * busybox initramfs, boots them under qemu (TCG) and leaves three snapshot
 * directories written by collector/memsleuth-collect.sh inside the guest:
 * `before` (module not loaded), `mid` (while it runs) and `after` (finished, kmemleak
 * scanned). Used by test/lab-captures.ts and `npm run lab`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  ensureKernel,
  kernelKey,
  LAB_DIR,
  type LabKernel,
  type LabKernelVersion,
  labCacheRoot,
  runLogged,
  withLock,
} from './kernel.js';

export {
  ensureKernel,
  kernelKey,
  LAB_KERNELS,
  type LabKernel,
  type LabKernelVersion,
  labCacheRoot,
  withLock,
} from './kernel.js';

export const REPO_ROOT = resolve(LAB_DIR, '..');
export const COLLECTOR_SCRIPT = join(REPO_ROOT, 'collector', 'memsleuth-collect.sh');
export const MODULE_DIR = join(LAB_DIR, 'module');
export const MODULE_SOURCE = join(MODULE_DIR, 'msl_leaky.c');
const GUEST_INIT = join(LAB_DIR, 'guest', 'init');
/** A scenario is lab/guest/scenario-<name>.sh, sourced by /init instead of the default run. */
export function scenarioScript(name: string): string {
  return join(LAB_DIR, 'guest', `scenario-${name}.sh`);
}
const BUSYBOX = '/bin/busybox';

/** msl_leaky's parameters (see lab/module/msl_leaky.c). */
export interface ModuleParams {
  steps: number;
  /** Steps per second. */
  rate: number;
  slab_size: number;
  page_order: number;
  page_every: number;
  vmalloc_pages: number;
  vmalloc_every: number;
  churn_size: number;
  churn_every: number;
}

export const DEFAULT_MODULE_PARAMS: ModuleParams = {
  steps: 400,
  // Slow enough that `mid` (3 s after insmod; a capture takes ~30 s under TCG) sees a run in progress.
  rate: 10,
  slab_size: 96,
  page_order: 1,
  page_every: 4,
  vmalloc_pages: 2,
  vmalloc_every: 10,
  churn_size: 512,
  churn_every: 3,
};

/** The kmalloc cache a size lands in (x86_64, SLUB: power-of-two caches plus 96 and 192). */
export function kmallocCacheFor(bytes: number): string {
  const sizes = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];
  const s = sizes.find((x) => bytes <= x);
  if (s === undefined) throw new Error(`kmalloc(${bytes}) is not served by a kmalloc-N slab cache`);
  return `kmalloc-${s}`;
}

/** What msl_leaky leaves behind after all steps, computed from its parameters. */
export interface ExpectedLeaks {
  /** msl_slab_leak: objects of slab_size bytes in `slabCache`. */
  slabObjects: number;
  slabObjectBytes: number;
  slabCache: string;
  /** msl_page_leak: blocks of 2^page_order pages. */
  pageBlocks: number;
  pageOrder: number;
  pages: number;
  /** msl_vmalloc_leak: areas of vmalloc_pages pages each (vmallocinfo adds a guard page). */
  vmallocAreas: number;
  vmallocBytesEach: number;
}

export function expectedLeaks(p: ModuleParams): ExpectedLeaks {
  // Step i leaks a page block when i % page_every == 0: ceil(steps / page_every) times.
  const every = (n: number) => (n === 0 ? 0 : Math.ceil(p.steps / n));
  const pageBlocks = every(p.page_every);
  return {
    slabObjects: p.steps,
    slabObjectBytes: p.slab_size,
    slabCache: kmallocCacheFor(p.slab_size),
    pageBlocks,
    pageOrder: p.page_order,
    pages: pageBlocks * 2 ** p.page_order,
    vmallocAreas: every(p.vmalloc_every),
    vmallocBytesEach: p.vmalloc_pages * 4096,
  };
}

/** 1-based line in msl_leaky.c of the first line containing `needle` (allocinfo names file:line). */
export function moduleSourceLine(needle: string): number {
  const lines = readFileSync(MODULE_SOURCE, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${MODULE_SOURCE}: no line contains ${JSON.stringify(needle)}`);
  return i + 1;
}

/** The allocation call of each pattern, for allocinfo's `file:line func:NAME`. */
export const MODULE_ALLOC_SITES = {
  msl_slab_leak: 'kmalloc(slab_size, GFP_KERNEL)',
  msl_page_leak: 'alloc_pages(GFP_KERNEL, page_order)',
  msl_vmalloc_leak: 'vmalloc(vmalloc_pages * PAGE_SIZE)',
} as const;

function sha(parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    h.update('\0');
  }
  return h.digest('hex').slice(0, 12);
}

/** Build msl_leaky.ko against a lab kernel (cached by kernel and module source). */
export async function buildModule(kernel: LabKernel): Promise<string> {
  const src = [readFileSync(MODULE_SOURCE), readFileSync(join(MODULE_DIR, 'Kbuild'))];
  const dir = join(
    labCacheRoot(),
    `module-${kernel.version}-${kernelKey(kernel.version)}-${sha([...src, kernel.release])}`,
  );
  const ko = join(dir, 'msl_leaky.ko');
  if (existsSync(ko)) return ko;
  return withLock(`${dir}.lock`, async () => {
    if (existsSync(ko)) return ko;
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await copyFile(MODULE_SOURCE, join(dir, 'msl_leaky.c'));
    await copyFile(join(MODULE_DIR, 'Kbuild'), join(dir, 'Kbuild'));
    await runLogged('make', ['-C', kernel.tree, `M=${dir}`, 'ARCH=x86_64', 'modules'], {
      log: join(dir, 'build.log'),
      timeoutMs: 10 * 60_000,
    });
    if (!existsSync(ko)) throw new Error(`module build left no ${ko}`);
    return ko;
  });
}

function paramString(p: ModuleParams): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

export interface GuestOptions {
  /** Seconds between insmod and the `mid` capture. */
  midDelaySeconds?: number;
  /** Seconds to wait after the module finished before `after` (kmemleak needs > 5 s). */
  kmemleakAgeSeconds?: number;
  /** Run lab/guest/scenario-<name>.sh instead of the before/mid/after captures. */
  scenario?: string;
  /** Extra NAME=value lines for /lab.conf (the scenario's settings). */
  conf?: Record<string, string | number>;
  /** The slub_debug boot option (default `U`: store user, for alloc_traces). */
  slubDebug?: string;
}

/** A newc initramfs: busybox, /init, the collector, the module and /lab.conf. */
export async function buildInitramfs(
  ko: string,
  params: ModuleParams,
  out: string,
  opts: GuestOptions = {},
): Promise<string> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} missing: apt-get install busybox-static`);
  const root = `${out}.root`;
  await rm(root, { recursive: true, force: true });
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(root, 'bin', 'busybox'));
  await symlink('busybox', join(root, 'bin', 'sh'));
  await copyFile(GUEST_INIT, join(root, 'init'));
  await copyFile(COLLECTOR_SCRIPT, join(root, 'memsleuth-collect.sh'));
  await copyFile(ko, join(root, 'msl_leaky.ko'));
  if (opts.scenario)
    await copyFile(scenarioScript(opts.scenario), join(root, `scenario-${opts.scenario}.sh`));
  await chmod(join(root, 'init'), 0o755);
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  await writeFile(
    join(root, 'lab.conf'),
    `MODULE_PARAMS='${paramString(params)}'\nMID_DELAY=${opts.midDelaySeconds ?? 3}\nKMEMLEAK_AGE=${opts.kmemleakAgeSeconds ?? 6}\n` +
      (opts.scenario ? `SCENARIO=${opts.scenario}\n` : '') +
      Object.entries(opts.conf ?? {})
        .map(([k, v]) => `${k}='${v}'\n`)
        .join(''),
  );
  // cpio from the staged tree, owned by root whoever builds it.
  await runLogged(
    'sh',
    ['-c', `cd "${root}" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > "${out}"`],
    {
      log: `${out}.log`,
    },
  );
  await rm(root, { recursive: true, force: true });
  return out;
}

export interface RunLabOptions {
  kernel: LabKernelVersion;
  moduleParams?: Partial<ModuleParams>;
  /** Where `before`, `mid`, `after`, `console.log` and the counters go. Must not exist or be empty. */
  outDir: string;
  /** Kill qemu after this long (default 10 minutes). */
  timeoutMs?: number;
  guest?: GuestOptions;
  log?: (line: string) => void;
}

export type LabMoment = 'before' | 'mid' | 'after';
export const LAB_MOMENTS: readonly LabMoment[] = ['before', 'mid', 'after'];

export interface LabRun {
  kernel: LabKernel;
  params: ModuleParams;
  expected: ExpectedLeaks;
  outDir: string;
  /** Snapshot directories by moment. */
  captures: Record<LabMoment, string>;
  /** msl_leaky's read-only counters (/sys/module/msl_leaky/parameters) at each moment. */
  counters: Record<LabMoment, Record<string, number>>;
  console: string;
  bootSeconds: number;
}

function parseCounters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)=(\d+)$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Read a finished lab output directory. */
export async function readLabRun(
  outDir: string,
  kernel: LabKernel,
  params: ModuleParams,
  bootSeconds = 0,
): Promise<LabRun> {
  const captures = {} as Record<LabMoment, string>;
  const counters = {} as Record<LabMoment, Record<string, number>>;
  for (const m of LAB_MOMENTS) {
    captures[m] = join(outDir, m);
    const c = join(outDir, `${m}.counters`);
    counters[m] = existsSync(c) ? parseCounters(await readFile(c, 'utf8')) : {};
  }
  return {
    kernel,
    params,
    expected: expectedLeaks(params),
    outDir,
    captures,
    counters,
    console: join(outDir, 'console.log'),
    bootSeconds,
  };
}

/** The kernel command line: the debugging sources memsleuth reads, on from boot. */
export function bootArgs(version: LabKernelVersion, guest: GuestOptions = {}): string {
  const args = [
    'console=ttyS0',
    'page_owner=on',
    `slub_debug=${guest.slubDebug ?? 'U'}`,
    'panic=-1',
    'rdinit=/init',
  ];
  // MEM_ALLOC_PROFILING_ENABLED_BY_DEFAULT is set in config-6.12.fragment; the sysctl
  // keeps profiling on should that default ever be dropped.
  if (version === '6.12') args.push('sysctl.vm.mem_profiling=1');
  return args.join(' ');
}

/**
 * Build what is missing, boot the guest once and return the three captures. qemu
 * runs without KVM (TCG), 512 MiB, 2 CPUs, console on a file; it is killed after
 * `timeoutMs` and the error carries the console's tail.
 */
export async function runLab(opts: RunLabOptions): Promise<LabRun> {
  const log = opts.log ?? (() => {});
  const params: ModuleParams = { ...DEFAULT_MODULE_PARAMS, ...opts.moduleParams };
  const kernel = await ensureKernel(opts.kernel, { log });
  const ko = await buildModule(kernel);
  const outDir = resolve(opts.outDir);
  await mkdir(outDir, { recursive: true });
  if ((await readdir(outDir)).length > 0) throw new Error(`${outDir} is not empty`);
  const work = join(outDir, '.work');
  await mkdir(work, { recursive: true });
  const initrd = await buildInitramfs(ko, params, join(work, 'initrd.cpio'), opts.guest);
  const share = join(work, 'share');
  await mkdir(share, { recursive: true });
  const consoleLog = join(outDir, 'console.log');
  const args = [
    '-machine',
    'pc',
    '-accel',
    'tcg',
    '-m',
    '512',
    '-smp',
    '2',
    '-kernel',
    kernel.bzImage,
    '-initrd',
    initrd,
    '-append',
    bootArgs(opts.kernel, opts.guest),
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    `file:${consoleLog}`,
    '-no-reboot',
    // No NIC: the default one needs an option ROM package, and the lab has no network.
    '-nic',
    'none',
    '-fsdev',
    `local,id=msl,path=${share},security_model=none`,
    '-device',
    'virtio-9p-pci,fsdev=msl,mount_tag=msl',
  ];
  log(`lab: booting ${opts.kernel} (${kernel.release}) with ${paramString(params)}`);
  const started = Date.now();
  const consoleTail = async () => {
    try {
      return (await readFile(consoleLog, 'utf8')).split('\n').slice(-40).join('\n');
    } catch {
      return '(no console output)';
    }
  };
  try {
    await runLogged('qemu-system-x86_64', args, {
      log: join(work, 'qemu.log'),
      timeoutMs: opts.timeoutMs ?? 10 * 60_000,
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}\nconsole tail (${consoleLog}):\n${await consoleTail()}`);
  }
  const bootSeconds = (Date.now() - started) / 1000;
  const guestOut = join(share, 'out');
  if (!existsSync(join(guestOut, 'done'))) {
    const failed = existsSync(join(guestOut, 'failed'))
      ? (await readFile(join(guestOut, 'failed'), 'utf8')).trim()
      : 'the guest powered off without finishing';
    throw new Error(`lab guest failed: ${failed}\nconsole tail (${consoleLog}):\n${await consoleTail()}`);
  }
  for (const name of await readdir(guestOut)) {
    if (name === 'done') continue;
    await cp(join(guestOut, name), join(outDir, name), { recursive: true });
  }
  await rm(work, { recursive: true, force: true });
  log(`lab: ${opts.kernel} boot with captures took ${bootSeconds.toFixed(0)} s; captures in ${outDir}`);
  return readLabRun(outDir, kernel, params, bootSeconds);
}

/** The cache key of one lab boot: everything that changes what the captures hold. */
export function labRunKey(version: LabKernelVersion, params: ModuleParams, guest: GuestOptions = {}): string {
  return sha([
    version,
    kernelKey(version),
    readFileSync(MODULE_SOURCE),
    readFileSync(join(MODULE_DIR, 'Kbuild')),
    readFileSync(COLLECTOR_SCRIPT),
    readFileSync(GUEST_INIT),
    JSON.stringify(params),
    JSON.stringify(guest),
    guest.scenario ? readFileSync(scenarioScript(guest.scenario)) : '',
    bootArgs(version, guest),
    // This file decides the qemu command line.
    readFileSync(join(LAB_DIR, 'index.ts')),
  ]);
}

/**
 * A lab boot's captures, from the cache when an identical boot already ran (several
 * test files share one boot), else booted now.
 */
export async function cachedLabRun(
  version: LabKernelVersion,
  moduleParams: Partial<ModuleParams> = {},
  opts: { log?: (line: string) => void; guest?: GuestOptions } = {},
): Promise<LabRun> {
  const params: ModuleParams = { ...DEFAULT_MODULE_PARAMS, ...moduleParams };
  const guest = opts.guest ?? {};
  const name = guest.scenario ? `${guest.scenario}-` : '';
  const dir = join(labCacheRoot(), `captures-${version}-${name}${labRunKey(version, params, guest)}`);
  const ok = join(dir, '.complete');
  const kernel = await ensureKernel(version, opts);
  if (existsSync(ok)) return readLabRun(dir, kernel, params, Number(readFileSync(ok, 'utf8')) || 0);
  return withLock(`${dir}.lock`, async () => {
    if (existsSync(ok)) return readLabRun(dir, kernel, params, Number(readFileSync(ok, 'utf8')) || 0);
    await rm(dir, { recursive: true, force: true });
    const run = await runLab({
      kernel: version,
      moduleParams: params,
      outDir: dir,
      log: opts.log ?? (() => {}),
      ...(opts.guest ? { guest: opts.guest } : {}),
    });
    await writeFile(ok, String(run.bootSeconds));
    return run;
  });
}
