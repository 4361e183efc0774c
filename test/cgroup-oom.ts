/**
 * A real memory-cgroup OOM on this machine, for tests: a cgroup of our own with a small
 * limit and a hog inside (`tail /dev/zero` keeps reading without a newline, so its buffer
 * grows until the OOM killer kills it). cgroup v2 where the memory controller is on a
 * cgroup2 mount, else v1 (this project's VM binds memory to a v1 hierarchy). Everything
 * is undone, also on failure; a cgroup left by a killed test run is removed at the next
 * start (its name carries the pid that made it).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PREFIX = 'memsleuth-oom-test-';

export interface MemcgRoot {
  version: 1 | 2;
  /** Mount point of the hierarchy with the memory controller. */
  mount: string;
}

/** Where the memory controller lives: a cgroup2 mount that offers it, else the v1 memory mount. */
export function findMemcgRoot(mounts = readFileSync('/proc/mounts', 'utf8')): MemcgRoot | undefined {
  let v1: string | undefined;
  for (const line of mounts.split('\n')) {
    const [, mount, type, opts] = line.split(' ');
    if (!mount) continue;
    if (type === 'cgroup2') {
      const ctl = join(mount, 'cgroup.controllers');
      if (existsSync(ctl) && readFileSync(ctl, 'utf8').split(/\s+/).includes('memory')) {
        return { version: 2, mount };
      }
    }
    if (type === 'cgroup' && opts?.split(',').includes('memory')) v1 = mount;
  }
  return v1 ? { version: 1, mount: v1 } : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function procsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kill what is left inside and remove the cgroup; retries while the last task exits. */
async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0; i < 100 && existsSync(dir); i++) {
    for (const pid of procsOf(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    try {
      rmdirSync(dir);
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (existsSync(dir)) throw new Error(`could not remove ${dir}`);
}

/** Remove cgroups of earlier runs whose process is gone. */
export async function removeStaleCgroups(root: MemcgRoot): Promise<void> {
  for (const name of readdirSync(root.mount)) {
    const m = new RegExp(`^${PREFIX}(\\d+)$`).exec(name);
    if (m && !alive(Number(m[1]))) await removeCgroup(join(root.mount, name));
  }
}

export interface CgroupOom {
  /** The cgroup's path as the kernel prints it (relative to the hierarchy's root). */
  path: string;
  version: 1 | 2;
  limitBytes: number;
  /** How the hog ended: `SIGKILL` when the OOM killer took it. */
  signal: NodeJS.Signals | null;
  code: number | null;
}

/**
 * Make one memcg OOM and clean up. The v2 root's subtree_control gets `+memory` only if
 * it lacked it, and loses it again afterwards.
 */
export async function memcgOom(limitBytes = 16 << 20): Promise<CgroupOom> {
  const root = findMemcgRoot();
  if (!root) throw new Error('no memory cgroup controller mounted (neither cgroup2 nor v1 memory)');
  await removeStaleCgroups(root);
  const name = `${PREFIX}${process.pid}`;
  const dir = join(root.mount, name);
  const subtree = join(root.mount, 'cgroup.subtree_control');
  let enabledMemory = false;
  try {
    if (root.version === 2 && !readFileSync(subtree, 'utf8').split(/\s+/).includes('memory')) {
      writeFileSync(subtree, '+memory');
      enabledMemory = true;
    }
    if (!existsSync(dir)) {
      const { mkdirSync } = await import('node:fs');
      mkdirSync(dir);
    }
    if (root.version === 2) {
      writeFileSync(join(dir, 'memory.max'), String(limitBytes));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
    } else {
      writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
    }
    const child = spawn('sh', ['-c', `echo $$ > '${join(dir, 'cgroup.procs')}' && exec tail /dev/zero`], {
      stdio: 'ignore',
    });
    const end = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`the hog in ${dir} was not OOM-killed within 60 s`));
        }, 60_000);
        child.on('error', reject);
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal });
        });
      },
    );
    return { path: `/${name}`, version: root.version, limitBytes, ...end };
  } finally {
    await removeCgroup(dir);
    if (enabledMemory) writeFileSync(subtree, '-memory');
  }
}
