import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Kernel versions the lab builds, named after Debian's linux-source-<version> packages. */
export const LAB_KERNELS = ['6.1', '6.12'] as const;
export type LabKernelVersion = (typeof LAB_KERNELS)[number];

export const LAB_DIR = dirname(fileURLToPath(import.meta.url)).replace(/\/\.build$/, '');
const KERNEL_DIR = join(LAB_DIR, 'kernel');

/** Where built kernels and boot results are cached, outside the repository. */
export function labCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MEMSLEUTH_LAB_CACHE) return env.MEMSLEUTH_LAB_CACHE;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'memsleuth-lab');
}

export function sourceTarball(version: LabKernelVersion): string {
  return `/usr/src/linux-source-${version}.tar.xz`;
}

/**
 * The cache key of a kernel build: the source package (tarball size, which changes
 * with every Debian upload), the config fragments and the build script. Any change
 * to them builds a new kernel; old entries are left for the user to delete.
 */
export function kernelKey(version: LabKernelVersion): string {
  const h = createHash('sha256');
  h.update(`linux-source-${version}\0${statSync(sourceTarball(version)).size}\0`);
  for (const f of ['build-kernel.sh', 'config.fragment', `config-${version}.fragment`]) {
    const p = join(KERNEL_DIR, f);
    h.update(`${f}\0`);
    if (existsSync(p)) h.update(readFileSync(p));
  }
  return h.digest('hex').slice(0, 12);
}

export interface LabKernel {
  version: LabKernelVersion;
  /** The kernel build tree (M= target for the module). */
  tree: string;
  bzImage: string;
  /** `make kernelrelease` output, e.g. `6.12.117`. */
  release: string;
  /** The final .config. */
  config: string;
}

function kernelFromTree(version: LabKernelVersion, tree: string): LabKernel {
  const release = readFileSync(join(tree, 'include/config/kernel.release'), 'utf8').trim();
  return {
    version,
    tree,
    bzImage: join(tree, 'arch/x86/boot/bzImage'),
    release,
    config: join(tree, '.config'),
  };
}

/** Run a command, sending its output to a log file; reject with the log's tail. */
export async function runLogged(
  cmd: string,
  args: string[],
  opts: { log: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<void> {
  await mkdir(dirname(opts.log), { recursive: true });
  const out = createWriteStream(opts.log);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            // The whole process group: make spawns compilers, qemu may not exit on TERM.
            try {
              process.kill(-(child.pid ?? 0), 'SIGKILL');
            } catch {}
          }, opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      out.end(() => {
        if (code === 0 && !timedOut) return resolve();
        const tail = readFileSync(opts.log, 'utf8').split('\n').slice(-40).join('\n');
        const why = timedOut ? `timed out after ${opts.timeoutMs} ms` : `exit ${code ?? signal}`;
        reject(new Error(`${cmd} ${args.join(' ')}: ${why}; last lines of ${opts.log}:\n${tail}`));
      });
    });
  });
}

/**
 * A built lab kernel, from the cache or built now (about 4 minutes on 2 cores).
 * Concurrent callers in one process share one build.
 */
const building = new Map<string, Promise<LabKernel>>();
export function ensureKernel(
  version: LabKernelVersion,
  opts: { log?: (line: string) => void } = {},
): Promise<LabKernel> {
  const tarball = sourceTarball(version);
  if (!existsSync(tarball)) {
    return Promise.reject(
      new Error(`${tarball} is missing: apt-get install linux-source-${version} (scripts/ensure-deps.sh)`),
    );
  }
  const dest = join(labCacheRoot(), `kernel-${version}-${kernelKey(version)}`);
  if (existsSync(join(dest, 'arch/x86/boot/bzImage'))) return Promise.resolve(kernelFromTree(version, dest));
  let p = building.get(dest);
  if (!p) {
    p = withLock(`${dest}.lock`, async () => {
      if (existsSync(join(dest, 'arch/x86/boot/bzImage'))) return kernelFromTree(version, dest);
      opts.log?.(`lab: building kernel ${version} into ${dest} (a few minutes)`);
      const started = Date.now();
      await runLogged('sh', [join(KERNEL_DIR, 'build-kernel.sh'), version, dest], {
        log: `${dest}.build.log`,
        timeoutMs: 40 * 60_000,
      });
      opts.log?.(`lab: kernel ${version} built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      return kernelFromTree(version, dest);
    });
    building.set(dest, p);
    p.catch(() => building.delete(dest));
  }
  return p;
}

/** Serialise concurrent builds and boots across processes (vitest runs files in forks). */
export async function withLock<T>(lockDir: string, fn: () => Promise<T>, staleMs = 45 * 60_000): Promise<T> {
  // The cache root does not exist yet on a fresh machine.
  await mkdir(dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        const st = await stat(lockDir);
        if (Date.now() - st.mtimeMs > staleMs) await rm(lockDir, { recursive: true, force: true });
      } catch {}
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
