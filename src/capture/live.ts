import { createRequire } from 'node:module';
import { errnoReason } from '../model/errors.js';
import {
  MANIFEST_FORMAT,
  type Manifest,
  type MissingSource,
  type ProcCounters,
  SLAB_ATTRS,
  SLAB_TRACE_KINDS,
  type Snapshot,
  SYSTEM_SOURCES,
  type SystemSourceSpec,
  sourceLocation,
  TMPFS_FILES_PATH,
  TMPFS_MOUNTS_PATH,
} from '../model/snapshot.js';
import type { KernelConfig } from '../sources/kconfig.js';
import type { ProcWatch } from './proc_watch.js';
import { FileSnapshot } from './snapshot.js';

// Node's built-ins through require, not `import`, on the everyday commands' start-up path: for an
// ES import Node builds a module that reads every export of the built-in, lazy getters too
// (node:fs's ReadStream loads Node's twenty stream modules): 1.3-3 ms of a 50 ms `ps`.
const nodeRequire = createRequire(import.meta.url);
const { accessSync, constants, readdirSync, statSync } = nodeRequire('node:fs') as typeof import('node:fs');
const { access, readdir, readFile } = nodeRequire('node:fs/promises') as typeof import('node:fs/promises');
const { arch, hostname, release, version } = nodeRequire('node:os') as typeof import('node:os');

/** Where the live kernel keeps each family of files. Overridable for tests. */
export interface LiveRoots {
  /** Usually `/proc`. */
  proc: string;
  /** Usually `/sys/kernel/debug`. */
  debugfs: string;
  /** Usually `/sys/kernel/slab`. */
  sysSlab: string;
}

export const DEFAULT_LIVE_ROOTS: LiveRoots = {
  proc: '/proc',
  debugfs: '/sys/kernel/debug',
  sysSlab: '/sys/kernel/slab',
};

/**
 * This machine, now, read through snapshot paths. The only reader of the live kernel
 * used by analyses; `writeSnapshot` copies it into a bundle.
 */
export class LiveSnapshot extends FileSnapshot implements Snapshot {
  readonly origin = 'live';
  private readonly systemByPath: Map<string, SystemSourceSpec>;

  private readonly watch: ProcWatch | undefined;
  private watchRead = false;

  /**
   * `watch`: kept-open process files shared by successive snapshots (the recorder's ticks): this
   * snapshot answers `procCounters` from it, and at close lets go of the processes it did not
   * ask about (they exited).
   */
  constructor(
    readonly roots: LiveRoots = DEFAULT_LIVE_ROOTS,
    opts: { watch?: ProcWatch } = {},
  ) {
    super();
    this.watch = opts.watch;
    if (!this.watch) this.procCounters = undefined;
    this.systemByPath = new Map(SYSTEM_SOURCES.map((s) => [s.path, this.rebase(s)]));
  }

  private rebase(s: SystemSourceSpec): SystemSourceSpec {
    let livePath = s.livePath;
    if (livePath.startsWith('/proc/')) livePath = this.roots.proc + livePath.slice('/proc'.length);
    else if (livePath.startsWith('/sys/kernel/debug/'))
      livePath = this.roots.debugfs + livePath.slice('/sys/kernel/debug'.length);
    return { ...s, livePath };
  }

  /** The live path behind a snapshot path, or undefined for paths outside the layout. */
  livePath(path: string): string | undefined {
    const sys = this.systemByPath.get(path);
    if (sys) return sys.livePath;
    const proc = /^proc\/(\d+)\/([a-z_]+)$/.exec(path);
    if (proc) return `${this.roots.proc}/${proc[1]}/${proc[2]}`;
    const slab = /^slab\/(.+)\.([a-z_]+)$/.exec(path);
    if (slab) {
      const [, cache, kind] = slab;
      // alloc_traces/free_traces live in debugfs (5.14+); the older alloc_calls and
      // free_calls, and every attribute, in sysfs.
      if (kind === 'alloc_traces' || kind === 'free_traces')
        return `${this.roots.debugfs}/slab/${cache}/${kind}`;
      return `${this.roots.sysSlab}/${cache}/${kind}`;
    }
    return undefined;
  }

  /**
   * Snapshot paths whose text this reader makes itself: the tmpfs listing (statfs and a walk
   * of each mount) and a process's fd directory as a listing (src/capture/tmpfs.ts, fds.ts).
   * Their modules load with the first such read: `ps` and the recorder's ticks never ask.
   */
  private generated(path: string): (() => Promise<string>) | undefined {
    const proc = this.roots.proc;
    if (path === TMPFS_MOUNTS_PATH) return async () => (await import('./tmpfs.js')).liveTmpfsMounts(proc);
    if (path === TMPFS_FILES_PATH) return async () => (await import('./tmpfs.js')).liveTmpfsFiles(proc);
    const fd = /^proc\/(\d+)\/fd$/.exec(path);
    if (fd) return async () => (await import('./fds.js')).liveFdListing(proc, Number(fd[1]));
    return undefined;
  }

  describe(path: string): string {
    if (path === TMPFS_MOUNTS_PATH) return `${this.roots.proc}/mounts (tmpfs) and statfs`;
    if (path === TMPFS_FILES_PATH) return 'the files of each tmpfs mount';
    return this.livePath(path) ?? path;
  }

  protected fileOf(path: string): string | undefined {
    return this.generated(path) ? undefined : this.livePath(path);
  }

  /** Files only: a text this reader makes (the tmpfs listing, an fd listing) comes whole from readText. */
  override readLines(path: string, sink: (text: string) => void): boolean {
    if (this.generated(path))
      throw new Error(
        `LiveSnapshot.readLines: ${path} is made by this reader, not read from a file: use readText`,
      );
    return super.readLines(path, sink);
  }

  override async readText(path: string): Promise<string | undefined> {
    const make = this.generated(path);
    return make ? this.generatedText(path, make) : super.readText(path);
  }

  /** A text this reader makes itself, or undefined (and why) when making it failed. */
  private async generatedText(path: string, make: () => Promise<string>): Promise<string | undefined> {
    try {
      return await make();
    } catch (e) {
      this.noteFailure(path, e);
      return undefined;
    }
  }

  async pids(): Promise<number[]> {
    const pids: number[] = [];
    for (const n of readdirSync(this.roots.proc)) {
      const c = n.charCodeAt(0);
      if (c >= 48 && c <= 57 && /^\d+$/.test(n)) pids.push(Number(n));
    }
    return pids.sort((a, b) => a - b);
  }

  private traceFiles: Map<string, Set<string>> | undefined;

  /**
   * The caches with readable slab trace files, by kind. Synchronous syscalls: a thread-pool
   * round trip for each of hundreds of caches took 63 ms of a 390 ms `report`. Read once per
   * snapshot (the manifest and the slab_traces source both ask).
   */
  async slabTraceFiles(): Promise<Map<string, Set<string>>> {
    if (this.traceFiles) return this.traceFiles;
    const out = new Map<string, Set<string>>();
    const readable = (file: string): boolean => {
      try {
        accessSync(file, constants.R_OK);
        return true;
      } catch {
        return false;
      }
    };
    const list = (dir: string): string[] => {
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    };
    const scan = (dir: string, kinds: readonly string[], caches: readonly string[]) => {
      for (const cache of caches) {
        for (const kind of kinds) {
          if (!readable(`${dir}/${cache}/${kind}`)) continue;
          let set = out.get(cache);
          if (!set) {
            set = new Set();
            out.set(cache, set);
          }
          set.add(kind);
        }
      }
    };
    // 5.14+: debugfs slab/<cache>/{alloc,free}_traces, made only for caches with slub_debug=U.
    const debug = `${this.roots.debugfs}/slab`;
    scan(debug, ['alloc_traces', 'free_traces'], list(debug));
    // <= 5.13: sysfs slab/<cache>/{alloc,free}_calls (readable only with user tracking). Every
    // cache has the same attributes, so when the first has neither file (5.14+, no
    // CONFIG_SLUB_DEBUG, or not root) no cache has one.
    const sys = list(this.roots.sysSlab);
    const kinds = ['alloc_calls', 'free_calls'] as const;
    if (sys.length > 0 && kinds.some((k) => readable(`${this.roots.sysSlab}/${sys[0]}/${k}`)))
      scan(this.roots.sysSlab, kinds, sys);
    this.traceFiles = out;
    return out;
  }

  /**
   * Open fds of a process. Since Linux 6.2 stat() of /proc/PID/fd reports the count as its
   * size (fs/proc/fd.c proc_fd_getattr), which is O(1) where listing a socket leaker's
   * 10,000 fds is not; older kernels report 0 and the directory is listed.
   */
  async fdCount(pid: number): Promise<number | undefined> {
    return this.fdInfo(pid)?.fds;
  }

  fdInfo(pid: number): { fds: number; ino: number } | undefined {
    const dir = `${this.roots.proc}/${pid}/fd`;
    try {
      const st = statSync(dir);
      return { fds: st.size > 0 ? st.size : readdirSync(dir).length, ino: st.ino };
    } catch {
      return undefined; // not permitted, or exited
    }
  }

  procCounters?(pid: number, unlessStatm?: readonly number[]): ProcCounters | undefined {
    this.watchRead = true;
    return this.watch!.read(pid, unlessStatm);
  }

  /**
   * Caches by name in /sys/kernel/slab. Merged caches also appear as `:0000024`-style
   * directories that the named entries link to; slabinfo uses the names, so those are skipped.
   */
  async slabCaches(): Promise<string[]> {
    try {
      return (await readdir(this.roots.sysSlab)).filter((n) => !n.startsWith(':')).sort();
    } catch {
      return [];
    }
  }

  private config: Promise<KernelConfig | undefined> | undefined;

  /** The running kernel's build configuration: /proc/config.gz (CONFIG_IKCONFIG_PROC), else /boot/config-<release>. */
  kernelConfig(): Promise<KernelConfig | undefined> {
    this.config ??= (async () => {
      try {
        const gz = await readFile(`${this.roots.proc}/config.gz`);
        // Loaded here: zlib costs a long-lived recorder 1.4 MiB of RSS it never uses.
        const { gunzipSync } = await import('node:zlib');
        const { parseKernelConfig } = await import('../sources/kconfig.js');
        return parseKernelConfig(gunzipSync(gz).toString('utf8'), { file: `${this.roots.proc}/config.gz` });
      } catch {}
      const boot = `/boot/config-${release()}`;
      try {
        const { parseKernelConfig } = await import('../sources/kconfig.js');
        return parseKernelConfig(await readFile(boot, 'utf8'), { file: boot });
      } catch {
        return undefined;
      }
    })();
    return this.config;
  }

  /** How to enable a source, or that this kernel cannot have it (its config option is not set). */
  private async enableHint(loc: Pick<SystemSourceSpec, 'enable' | 'config'>): Promise<string> {
    if (!loc.config) return loc.enable;
    const config = await this.kernelConfig();
    if (!config || (await import('../sources/kconfig.js')).configEnabled(config, loc.config) !== false)
      return loc.enable;
    return `this kernel is built without ${loc.config}: rebuild it with ${loc.config}=y (no boot option enables it); then ${loc.enable}`;
  }

  async manifest(): Promise<Manifest> {
    const missing: MissingSource[] = [];
    for (const s of this.systemByPath.values()) {
      const reason = await this.probe(s.livePath);
      if (reason) missing.push({ path: s.path, reason, enable: await this.enableHint(s) });
    }
    const traces = await this.slabTraceFiles();
    if (traces.size === 0) {
      const slab = sourceLocation('slab_traces');
      missing.push({
        path: slab.path,
        reason: (await this.debugfsMounted()) ? 'no slab caches with user tracking' : 'debugfs not mounted',
        enable: await this.enableHint(slab),
      });
    }
    return {
      format: MANIFEST_FORMAT,
      tool: 'memsleuth (live)',
      hostname: hostname(),
      kernelRelease: release(),
      kernelVersion: version(),
      machine: arch() === 'x64' ? 'x86_64' : arch(),
      pageSizeBytes: await livePageSize(this.roots.proc),
      time: new Date().toISOString(),
      uptimeSeconds: await liveUptime(this.roots.proc),
      files: [],
      missing,
    };
  }

  private async debugfsMounted(): Promise<boolean> {
    try {
      const mounts = await readFile(`${this.roots.proc}/mounts`, 'utf8');
      return mounts.split('\n').some((l) => l.split(' ')[1] === this.roots.debugfs);
    } catch {
      return false;
    }
  }

  /** Why a live file cannot be read, or undefined when it can. */
  private async probe(path: string): Promise<string | undefined> {
    try {
      await access(path, constants.R_OK);
      return undefined;
    } catch (e) {
      const reason = errnoReason(e);
      if (reason === 'not present' && path.startsWith(this.roots.debugfs) && !(await this.debugfsMounted())) {
        return 'debugfs not mounted';
      }
      if (reason === 'not present') return 'not present in this kernel (feature not built in or not enabled)';
      return reason;
    }
  }

  async close(): Promise<void> {
    if (this.watchRead) this.watch!.sweep();
  }
}

/** The kernel page size, from KernelPageSize in our own smaps (no getconf in Node). */
export async function livePageSize(procRoot = '/proc'): Promise<number> {
  try {
    const text = await readFile(`${procRoot}/self/smaps`, 'utf8');
    const m = /^KernelPageSize:\s+(\d+) kB/m.exec(text);
    if (m) return Number(m[1]) * 1024;
  } catch {}
  return 4096;
}

export async function liveUptime(procRoot = '/proc'): Promise<number> {
  try {
    const text = await readFile(`${procRoot}/uptime`, 'utf8');
    const n = Number(text.split(/\s+/)[0]);
    return Number.isFinite(n) ? n : 0;
  } catch {
    return 0;
  }
}

export async function openLiveSnapshot(
  roots?: LiveRoots,
  opts?: { watch?: ProcWatch },
): Promise<LiveSnapshot> {
  return new LiveSnapshot(roots, opts);
}

export { SLAB_ATTRS, SLAB_TRACE_KINDS };
