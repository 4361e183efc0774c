/**
 * tracefs control: the only code that writes to the kernel's tracing files. Everything
 * memsleuth changes lives in its own instance (instances/memsleuth-<pid>), its own uprobe
 * group (memsleuth_<pid>) and, when nothing had tracefs mounted, its own mount point
 * (<tmp>/memsleuth-tracefs-<pid>); the global buffer and the global options are never
 * touched. All three carry the owner's pid, so what a killed run left behind is found and
 * removed at the next start (cleanupStale), and the collector (memsleuth-collect.sh) uses
 * the same names.
 */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { access, appendFile, mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemsleuthError } from '../model/errors.js';
import {
  formatUprobeDefinition,
  formatUprobeRemoval,
  parseUprobeEvents,
  type UprobeDefinition,
} from '../sources/uprobe_events.js';

/** Instances, uprobe groups and mount points memsleuth creates: name, then the owner's pid. */
export const INSTANCE_PREFIX = 'memsleuth-';
export const UPROBE_GROUP_PREFIX = 'memsleuth_';
export const MOUNT_PREFIX = 'memsleuth-tracefs-';

const OWNED_INSTANCE = /^memsleuth-(\d+)(?:-\d+)?$/;
const OWNED_GROUP = /^memsleuth_(\d+)(?:_\d+)?$/;
const OWNED_MOUNT = /\/memsleuth-tracefs-(\d+)$/;

export interface TracefsOptions {
  /** /proc (mounts, filesystems). */
  procRoot?: string;
  /** Where a private mount point is made (default os.tmpdir()). */
  tmpDir?: string;
  /** Effective uid (default process.geteuid()). */
  uid?: number;
}

/** A tracefs mount memsleuth can use. */
export interface Tracefs {
  root: string;
  /** True when memsleuth mounted it for this process (unmounted when the last user releases it). */
  mountedHere: boolean;
  release(): Promise<void>;
  releaseSync(): void;
}

/** A live process (EPERM: alive, someone else's). */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `\040`-style escapes in /proc/mounts paths. */
function unescapeMount(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** tracefs mount points, in /proc/mounts order. */
export function tracefsMounts(procRoot = '/proc'): string[] {
  let text = '';
  try {
    text = readFileSync(join(procRoot, 'mounts'), 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const [, dir, type] = line.split(' ');
    if (type === 'tracefs' && dir) out.push(unescapeMount(dir));
  }
  return out;
}

// One private mount per process, shared by every session in it.
let privateMount: { root: string; users: number } | undefined;

function unmount(dir: string): void {
  const r = spawnSync('umount', [dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    // Busy (a reader still has a file open): detach it now, the kernel finishes later.
    spawnSync('umount', ['-l', dir], { encoding: 'utf8' });
  }
  try {
    rmdirSync(dir);
  } catch {
    // left for cleanupStale
  }
}

/**
 * A usable tracefs: the mounted one (/sys/kernel/tracing first), or a private mount
 * that is unmounted again when released. Throws a clear error when tracing cannot work.
 */
export async function openTracefs(o: TracefsOptions = {}): Promise<Tracefs> {
  const proc = o.procRoot ?? '/proc';
  const uid = o.uid ?? process.geteuid?.() ?? 0;
  if (uid !== 0) {
    throw new MemsleuthError('PERMISSION', 'tracing needs root: tracefs is writable by root only', {
      hint: 'run as root, e.g. `sudo memsleuth trace kernel`',
    });
  }
  const filesystems = await readFile(join(proc, 'filesystems'), 'utf8').catch(() => '');
  if (filesystems && !/\btracefs\b/.test(filesystems)) {
    throw new MemsleuthError('UNAVAILABLE', 'this kernel has no tracefs (built without CONFIG_TRACING)', {
      hint: 'allocation tracing needs CONFIG_FTRACE and CONFIG_EVENT_TRACING (every distribution kernel has them)',
    });
  }
  const mounts = tracefsMounts(proc).filter((m) => !OWNED_MOUNT.test(m) || m === privateMount?.root);
  mounts.sort((a, b) => rank(a) - rank(b));
  for (const root of mounts) {
    if (existsSync(join(root, 'instances'))) {
      return { root, mountedHere: false, release: async () => {}, releaseSync: () => {} };
    }
  }
  if (privateMount) {
    privateMount.users++;
  } else {
    const root = join(o.tmpDir ?? tmpdir(), `${MOUNT_PREFIX}${process.pid}`);
    mkdirSync(root, { recursive: true });
    const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', root], { encoding: 'utf8' });
    if (r.status !== 0) {
      try {
        rmdirSync(root);
      } catch {}
      throw new MemsleuthError(
        'UNAVAILABLE',
        `tracefs is not mounted and mounting it at ${root} failed: ${(r.stderr || r.error?.message || '').trim()}`,
        { hint: 'mount it yourself: mount -t tracefs nodev /sys/kernel/tracing' },
      );
    }
    privateMount = { root, users: 1 };
  }
  const pm = privateMount;
  let released = false;
  const releaseSync = () => {
    if (released) return;
    released = true;
    pm.users--;
    if (pm.users === 0) {
      if (privateMount === pm) privateMount = undefined;
      unmount(pm.root);
    }
  };
  return { root: pm.root, mountedHere: true, release: async () => releaseSync(), releaseSync };
}

function rank(mount: string): number {
  if (mount === '/sys/kernel/tracing') return 0;
  if (mount === '/sys/kernel/debug/tracing') return 1;
  return OWNED_MOUNT.test(mount) ? 3 : 2;
}

/** The error a tracefs write failed with, in words a user can act on. */
function writeError(path: string, value: string, e: unknown, log: string | undefined): MemsleuthError {
  const code = (e as NodeJS.ErrnoException).code ?? String(e);
  const what = `${path}: writing ${JSON.stringify(value.trim())} failed (${code})`;
  if (code === 'EACCES' || code === 'EPERM')
    return new MemsleuthError('PERMISSION', what, { hint: 'run as root', cause: e });
  if (code === 'ENOENT')
    return new MemsleuthError('UNAVAILABLE', what, {
      hint: 'this kernel does not have that event or option (see available_events)',
      cause: e,
    });
  return new MemsleuthError('UNAVAILABLE', log ? `${what}: ${log}` : what, { cause: e });
}

/** The last error tracefs logged (error_log, 5.2+), for messages. */
function lastError(dir: string): string | undefined {
  try {
    const lines = readFileSync(join(dir, 'error_log'), 'utf8').trim().split('\n');
    return lines.slice(-3).join(' ').replace(/\s+/g, ' ').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A tracing instance of our own: instances/memsleuth-<pid>[-n]. */
export class TraceInstance {
  private removed = false;

  private constructor(
    readonly tracefs: Tracefs,
    readonly name: string,
    readonly dir: string,
  ) {}

  /** Create the next free instance name for this process. */
  static async create(tracefs: Tracefs): Promise<TraceInstance> {
    for (let n = 1; n < 100; n++) {
      const name = n === 1 ? `${INSTANCE_PREFIX}${process.pid}` : `${INSTANCE_PREFIX}${process.pid}-${n}`;
      const dir = join(tracefs.root, 'instances', name);
      try {
        await mkdir(dir);
        return new TraceInstance(tracefs, name, dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw writeError(dir, 'mkdir', e, undefined);
      }
    }
    throw new MemsleuthError('UNAVAILABLE', `${tracefs.root}/instances: no free memsleuth instance name`);
  }

  path(rel: string): string {
    return join(this.dir, rel);
  }

  exists(rel: string): boolean {
    return existsSync(this.path(rel));
  }

  async read(rel: string): Promise<string> {
    return readFile(this.path(rel), 'utf8');
  }

  /** Write a control file (truncating, as `echo > file` does). */
  async write(rel: string, value: string): Promise<void> {
    const p = this.path(rel);
    try {
      await writeFile(p, value.endsWith('\n') ? value : `${value}\n`);
    } catch (e) {
      throw writeError(p, value, e, lastError(this.dir) ?? lastError(this.tracefs.root));
    }
  }

  /** Write, returning false instead of throwing (optional options and events). */
  async tryWrite(rel: string, value: string): Promise<boolean> {
    try {
      await this.write(rel, value);
      return true;
    } catch {
      return false;
    }
  }

  /** Stop recording, then remove the instance (its events, triggers and buffer go with it). */
  async remove(): Promise<void> {
    if (this.removed) return;
    await this.tryWrite('tracing_on', '0');
    for (let i = 0; i < 50; i++) {
      try {
        await rmdir(this.dir);
        this.removed = true;
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          this.removed = true;
          return;
        }
        // EBUSY while a reader of trace_pipe is still closing.
        if (code !== 'EBUSY') throw writeError(this.dir, 'rmdir', e, undefined);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    throw new MemsleuthError('IO', `${this.dir}: still busy, cannot remove it`, {
      hint: `remove it by hand: rmdir ${this.dir}`,
    });
  }

  /** The last-resort removal from an exit handler (no promises there). */
  removeSync(): void {
    if (this.removed) return;
    try {
      writeFileSync(this.path('tracing_on'), '0\n');
    } catch {}
    try {
      rmdirSync(this.dir);
      this.removed = true;
    } catch {}
  }
}

/** A group of uprobes of our own in the global uprobe_events: memsleuth_<pid>[_n]. */
export class UprobeGroup {
  private readonly events: string[] = [];
  private removed = false;

  private constructor(
    readonly tracefs: Tracefs,
    readonly group: string,
  ) {}

  static async create(tracefs: Tracefs): Promise<UprobeGroup> {
    const file = join(tracefs.root, 'uprobe_events');
    try {
      await access(file, constants.W_OK);
    } catch {
      throw new MemsleuthError(
        'UNAVAILABLE',
        `${file} is missing: this kernel was built without CONFIG_UPROBE_EVENTS`,
        {
          hint: 'user-space tracing needs CONFIG_UPROBES and CONFIG_UPROBE_EVENTS',
        },
      );
    }
    const taken = new Set(parseUprobeEvents(await readFile(file, 'utf8'), { file }).map((d) => d.group));
    for (let n = 1; n < 100; n++) {
      const group =
        n === 1 ? `${UPROBE_GROUP_PREFIX}${process.pid}` : `${UPROBE_GROUP_PREFIX}${process.pid}_${n}`;
      if (!taken.has(group)) return new UprobeGroup(tracefs, group);
    }
    throw new MemsleuthError('UNAVAILABLE', 'no free memsleuth uprobe group name');
  }

  /** Define one probe. uprobe_events is always appended to: truncating it deletes every probe. */
  async add(def: Omit<UprobeDefinition, 'line' | 'group'>): Promise<void> {
    const file = join(this.tracefs.root, 'uprobe_events');
    const line = formatUprobeDefinition({ ...def, group: this.group });
    try {
      await appendFile(file, `${line}\n`);
    } catch (e) {
      throw writeError(file, line, e, lastError(this.tracefs.root));
    }
    this.events.push(def.event);
  }

  /** Remove every probe of the group (after the instances using them are gone). */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await removeUprobeGroup(this.tracefs.root, this.group);
  }

  removeSync(): void {
    if (this.removed) return;
    this.removed = true;
    removeUprobeGroupSync(this.tracefs.root, this.group);
  }
}

async function removeUprobeGroup(root: string, group: string): Promise<void> {
  const file = join(root, 'uprobe_events');
  const defs = parseUprobeEvents(await readFile(file, 'utf8'), { file }).filter((d) => d.group === group);
  for (const d of defs) {
    try {
      await appendFile(file, `${formatUprobeRemoval(d.group, d.event)}\n`);
    } catch (e) {
      throw writeError(file, formatUprobeRemoval(d.group, d.event), e, lastError(root));
    }
  }
}

function removeUprobeGroupSync(root: string, group: string): void {
  const file = join(root, 'uprobe_events');
  try {
    const defs = parseUprobeEvents(readFileSync(file, 'utf8'), { file }).filter((d) => d.group === group);
    for (const d of defs) appendFileSync(file, `${formatUprobeRemoval(d.group, d.event)}\n`);
  } catch {}
}

/** What memsleuth finds of its own in tracefs: instances, uprobe groups, mount points. */
export interface OwnedTracing {
  instances: { name: string; pid: number }[];
  uprobeGroups: { group: string; pid: number }[];
  mounts: { path: string; pid: number }[];
}

export function ownedTracing(tracefsRoot: string, procRoot = '/proc'): OwnedTracing {
  const out: OwnedTracing = { instances: [], uprobeGroups: [], mounts: [] };
  try {
    for (const name of readdirSync(join(tracefsRoot, 'instances'))) {
      const m = OWNED_INSTANCE.exec(name);
      if (m) out.instances.push({ name, pid: Number(m[1]) });
    }
  } catch {}
  try {
    const file = join(tracefsRoot, 'uprobe_events');
    const seen = new Set<string>();
    for (const d of parseUprobeEvents(readFileSync(file, 'utf8'), { file })) {
      const m = OWNED_GROUP.exec(d.group);
      if (m && !seen.has(d.group)) {
        seen.add(d.group);
        out.uprobeGroups.push({ group: d.group, pid: Number(m[1]) });
      }
    }
  } catch {}
  for (const path of tracefsMounts(procRoot)) {
    const m = OWNED_MOUNT.exec(path);
    if (m) out.mounts.push({ path, pid: Number(m[1]) });
  }
  return out;
}

/**
 * Remove what runs that no longer exist left behind (a SIGKILL, a power cut of the
 * collector's shell): instances first (they hold the uprobes), then uprobe groups, then
 * mount points. Returns one line per thing removed.
 */
export async function cleanupStale(
  tracefs: Tracefs,
  o: { procRoot?: string; tmpDir?: string } = {},
): Promise<string[]> {
  const owned = ownedTracing(tracefs.root, o.procRoot);
  const done: string[] = [];
  for (const i of owned.instances) {
    if (pidAlive(i.pid)) continue;
    const dir = join(tracefs.root, 'instances', i.name);
    try {
      await writeFile(join(dir, 'tracing_on'), '0\n').catch(() => {});
      await rmdir(dir);
      done.push(`instance ${i.name} (pid ${i.pid} is gone)`);
    } catch (e) {
      throw new MemsleuthError(
        'IO',
        `${dir}: left by pid ${i.pid}, cannot remove it (${(e as NodeJS.ErrnoException).code})`,
        {
          hint: `rmdir ${dir}`,
        },
      );
    }
  }
  for (const g of owned.uprobeGroups) {
    if (pidAlive(g.pid)) continue;
    await removeUprobeGroup(tracefs.root, g.group);
    done.push(`uprobe group ${g.group} (pid ${g.pid} is gone)`);
  }
  for (const m of owned.mounts) {
    if (pidAlive(m.pid) || m.path === tracefs.root) continue;
    unmount(m.path);
    done.push(`tracefs mount ${m.path} (pid ${m.pid} is gone)`);
  }
  for (const dir of await staleMountDirs(o.tmpDir, o.procRoot)) {
    try {
      await rmdir(dir);
      done.push(`mount point ${dir} (its pid is gone)`);
    } catch {}
  }
  return done;
}

/** Leftover private mount points that are no longer mounted (directories only). */
export async function staleMountDirs(tmp?: string, procRoot = '/proc'): Promise<string[]> {
  const mounted = new Set(tracefsMounts(procRoot));
  const out: string[] = [];
  for (const n of await readdir(tmp ?? tmpdir()).catch(() => [] as string[])) {
    const m = new RegExp(`^${MOUNT_PREFIX}(\\d+)$`).exec(n);
    const p = join(tmp ?? tmpdir(), n);
    if (m && !mounted.has(p) && !pidAlive(Number(m[1]))) out.push(p);
  }
  return out;
}
