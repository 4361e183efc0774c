/**
 * The snapshot layout: one relative path per kernel source. A bundle (tar.gz), a
 * snapshot directory, the lab's captures and the POSIX sh collector all use it, and a
 * live machine is read through the same names. Raw kernel text is stored unchanged so
 * later versions of memsleuth can re-parse it.
 *
 *   manifest.json                    host, kernel, page size, time, what was missing
 *   meminfo buddyinfo slabinfo vmallocinfo zoneinfo vmstat pagetypeinfo allocinfo
 *   page_owner                       /sys/kernel/debug/page_owner
 *   page_owner_stacks                /sys/kernel/debug/page_owner_stacks/show_stacks (6.9+)
 *   kmemleak                         /sys/kernel/debug/kmemleak
 *   slab/<cache>.alloc_traces        /sys/kernel/debug/slab/<cache>/alloc_traces (5.14+)
 *   slab/<cache>.free_traces
 *   slab/<cache>.alloc_calls         /sys/kernel/slab/<cache>/alloc_calls (<= 5.13)
 *   slab/<cache>.free_calls
 *   slab/<cache>.reclaim_account    /sys/kernel/slab/<cache>/reclaim_account (1: SReclaimable)
 *   sysvipc_shm                      /proc/sysvipc/shm
 *   tmpfs/mounts, tmpfs/files        tmpfs mounts with statfs used bytes, their largest files
 *                                    (memsleuth's own format: src/sources/tmpfs.ts)
 *   proc/<pid>/{status,statm,stat,smaps,smaps_rollup,cmdline,oom_score,oom_score_adj}
 *   proc/<pid>/fd                    the fd directory as text (src/sources/fd_listing.ts)
 *   trace/kmem                       raw kmem trace text (memsleuth-collect.sh --trace-kmem)
 *   trace/kmem.stats                 its per-CPU buffer statistics
 */

import type { Readable } from 'node:stream';

export type SystemSourceName =
  | 'meminfo'
  | 'buddyinfo'
  | 'slabinfo'
  | 'vmallocinfo'
  | 'zoneinfo'
  | 'vmstat'
  | 'pagetypeinfo'
  | 'allocinfo'
  | 'page_owner'
  | 'page_owner_stacks'
  | 'kmemleak'
  | 'sysvipc_shm';

export interface SystemSourceSpec {
  name: SystemSourceName;
  /** Path inside a snapshot. */
  path: string;
  /** Path on a live machine. */
  livePath: string;
  /** Large sources are streamed, never read whole into memory. */
  large: boolean;
  /** How to make the source available when it is missing. */
  enable: string;
  /** The capture option that leaves it out (`no-page-owner`), for sources that can be huge. */
  skipOption?: string;
  /**
   * The kernel build option it needs. When the running kernel's config says it is not set,
   * no boot option or sysctl helps: the hint says so (a new kernel is needed).
   */
  config?: string;
}

export const SYSTEM_SOURCES: readonly SystemSourceSpec[] = [
  { name: 'meminfo', path: 'meminfo', livePath: '/proc/meminfo', large: false, enable: 'always present' },
  {
    name: 'buddyinfo',
    path: 'buddyinfo',
    livePath: '/proc/buddyinfo',
    large: false,
    enable: 'always present with CONFIG_PROC_FS',
  },
  {
    name: 'slabinfo',
    path: 'slabinfo',
    livePath: '/proc/slabinfo',
    large: false,
    enable: 'needs root (mode 0400) and CONFIG_SLUB_DEBUG or CONFIG_SLAB',
  },
  {
    name: 'vmallocinfo',
    path: 'vmallocinfo',
    livePath: '/proc/vmallocinfo',
    large: false,
    enable: 'needs root (mode 0400); callers are hidden without CAP_SYSLOG (kptr_restrict)',
  },
  { name: 'zoneinfo', path: 'zoneinfo', livePath: '/proc/zoneinfo', large: false, enable: 'always present' },
  { name: 'vmstat', path: 'vmstat', livePath: '/proc/vmstat', large: false, enable: 'always present' },
  {
    name: 'pagetypeinfo',
    path: 'pagetypeinfo',
    livePath: '/proc/pagetypeinfo',
    large: false,
    enable: 'needs root (mode 0400 since 5.6)',
  },
  {
    name: 'allocinfo',
    path: 'allocinfo',
    livePath: '/proc/allocinfo',
    large: false,
    enable:
      'kernel 6.10+ with CONFIG_MEM_ALLOC_PROFILING; enable with sysctl vm.mem_profiling=1 or boot with sysctl.vm.mem_profiling=1',
    config: 'CONFIG_MEM_ALLOC_PROFILING',
  },
  {
    name: 'page_owner',
    path: 'page_owner',
    livePath: '/sys/kernel/debug/page_owner',
    large: true,
    enable:
      'boot with page_owner=on (needs CONFIG_PAGE_OWNER), mount debugfs (mount -t debugfs none /sys/kernel/debug), run as root',
    skipOption: 'no-page-owner',
    config: 'CONFIG_PAGE_OWNER',
  },
  {
    name: 'page_owner_stacks',
    path: 'page_owner_stacks',
    livePath: '/sys/kernel/debug/page_owner_stacks/show_stacks',
    large: true,
    enable: 'kernel 6.9+ booted with page_owner=on, debugfs mounted, run as root',
    config: 'CONFIG_PAGE_OWNER',
  },
  {
    name: 'kmemleak',
    path: 'kmemleak',
    livePath: '/sys/kernel/debug/kmemleak',
    large: true,
    enable:
      'needs CONFIG_DEBUG_KMEMLEAK (and kmemleak=on if CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF), debugfs mounted, run as root; `memsleuth kmemleak scan` triggers a scan',
    config: 'CONFIG_DEBUG_KMEMLEAK',
  },
  {
    name: 'sysvipc_shm',
    path: 'sysvipc_shm',
    livePath: '/proc/sysvipc/shm',
    large: false,
    enable: 'needs CONFIG_SYSVIPC (and CONFIG_PROC_FS); run as root to see segments of other IPC namespaces',
  },
];

/** Sources that are families of files rather than one file. */
export type FamilySourceName = 'processes' | 'slab_traces' | 'tmpfs' | 'shm_holders';
/** Every source the registry knows. */
export type SourceName = SystemSourceName | FamilySourceName;

/** Where any source lives: one file, or for a family the pattern of its files. */
export interface SourceLocation extends Omit<SystemSourceSpec, 'name'> {
  name: SourceName;
}

export const FAMILY_SOURCES: readonly SourceLocation[] = [
  {
    name: 'processes',
    path: 'proc/*',
    livePath: '/proc/<pid>/{status,statm,stat,smaps,smaps_rollup,cmdline,oom_score,oom_score_adj}',
    large: false,
    enable:
      'capture with `memsleuth snapshot` (processes are included by default); run as root for every process',
  },
  {
    name: 'slab_traces',
    path: 'slab/*.alloc_traces',
    livePath:
      '/sys/kernel/debug/slab/<cache>/alloc_traces (5.14+), /sys/kernel/slab/<cache>/alloc_calls (<= 5.13)',
    large: false,
    enable:
      'boot with slub_debug=U (all caches) or slub_debug=U,<cache> (needs CONFIG_SLUB_DEBUG), mount debugfs, run as root',
    config: 'CONFIG_SLUB_DEBUG',
  },
  {
    name: 'tmpfs',
    path: 'tmpfs/mounts',
    livePath: '/proc/mounts (type tmpfs), statfs of each mount point, the largest files under each',
    large: false,
    enable:
      'captured by `memsleuth snapshot` and the sh collector (captures written before they listed tmpfs have no tmpfs/)',
  },
  {
    name: 'shm_holders',
    path: 'proc/*/fd',
    livePath: '/proc/<pid>/fd (readlink, stat) and /proc/<pid>/maps',
    large: false,
    enable:
      'captured by `memsleuth snapshot` and the sh collector (older captures have no proc/<pid>/fd); run as root for every process',
  },
];

/** The location of a source by name. */
export function sourceLocation(name: SourceName): SourceLocation {
  const loc = SYSTEM_SOURCES.find((s) => s.name === name) ?? FAMILY_SOURCES.find((s) => s.name === name);
  if (!loc) throw new Error(`unknown source ${name}`);
  return loc;
}

// oom_score and oom_score_adj (for `ps --oom`) since memsleuth 0.1 after issue 15: older
// snapshots lack them, and readers treat them as optional (the manifest format is unchanged).
export const PROCESS_FILES = [
  'status',
  'statm',
  'stat',
  'smaps',
  'smaps_rollup',
  'cmdline',
  'oom_score',
  'oom_score_adj',
  // The fd directory as text (src/sources/fd_listing.ts), since issue 16: older snapshots lack it.
  'fd',
] as const;
export type ProcessFileName = (typeof PROCESS_FILES)[number];

export const SLAB_TRACE_KINDS = ['alloc_traces', 'free_traces', 'alloc_calls', 'free_calls'] as const;
/** Per-cache sysfs attributes kept beside the traces (`slab/<cache>.reclaim_account`). */
export const SLAB_ATTRS = ['reclaim_account'] as const;
export type SlabTraceKind = (typeof SLAB_TRACE_KINDS)[number];

export const MANIFEST_PATH = 'manifest.json';
/** The raw kmem trace a collector captured (`memsleuth trace report SNAPSHOT` reads it). */
export const TRACE_KMEM_PATH = 'trace/kmem';
export const MANIFEST_FORMAT = 'memsleuth-snapshot/1';

/** A source the capture could not read, and what to do about it. */
export interface MissingSource {
  /** Snapshot path (or a glob-like name for families such as `slab/*.alloc_traces`). */
  path: string;
  reason: string;
  enable: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  /** The tool that wrote it: `memsleuth <version>` or `memsleuth-collect.sh <version>`. */
  tool: string;
  hostname: string;
  kernelRelease: string;
  /** `uname -v`, when known. */
  kernelVersion?: string;
  machine?: string;
  pageSizeBytes: number;
  /** ISO 8601 wall-clock time when the capture started. */
  time: string;
  /** Seconds since boot at capture start, from /proc/uptime. */
  uptimeSeconds: number;
  /** Files captured (snapshot paths). */
  files: string[];
  missing: MissingSource[];
  /** Processes that exited (or could not be read) during the capture. */
  skippedPids?: { pid: number; reason: string }[];
  /** Wall-clock seconds the capture took. */
  durationSeconds?: number;
  /** Set when the "snapshot" is one raw kernel file: which source it is (nothing else is known). */
  source?: string;
}

export const TMPFS_MOUNTS_PATH = 'tmpfs/mounts';
export const TMPFS_FILES_PATH = 'tmpfs/files';

export function procPath(pid: number, file: ProcessFileName | 'maps'): string {
  return `proc/${pid}/${file}`;
}

export function slabTracePath(cache: string, kind: SlabTraceKind | (typeof SLAB_ATTRS)[number]): string {
  return `slab/${cache}.${kind}`;
}

/** See `Snapshot.procCounters`. */
export interface ProcCounters {
  /** /proc/PID/statm: VmSize, VmRSS and RssFile + RssShmem, in pages (kernel threads: 0). */
  sizePages: number;
  residentPages: number;
  sharedPages: number;
  /** Open fds (the size of /proc/PID/fd); -1 when not permitted. */
  fds: number;
  /** Link count of /proc/PID/task: 2 + threads on the kernels that add them; -1 when unknown. */
  taskLinks: number;
  /** The files were opened at this call: a process not seen before, or a new one on an old pid. */
  opened: boolean;
  /** fd/ and task/ were looked at (false when statm read as the caller's `unlessStatm`). */
  counted: boolean;
}

/**
 * Read access to one moment of a machine's memory sources, by snapshot path (see
 * layout.ts). Implemented by a live machine, a snapshot directory and a bundle, so
 * every analysis reads all three the same way.
 */
export interface Snapshot {
  /** `live` or the path given by the user. */
  readonly origin: string;
  /** For error messages: where a snapshot path really lives. */
  describe(path: string): string;
  /** The whole text of a source, or undefined when it is absent or unreadable. */
  readText(path: string): Promise<string | undefined>;
  /**
   * The text of a source in pieces of whole lines handed to `sink` as they are read (a few KiB
   * each), for big files read often that are not to be held whole (the recorder's smaps of a
   * process with thousands of mappings, a slab listing of a hundred thousand stacks). False
   * when absent or unreadable, as readText's undefined. Only where files are read directly (the
   * live kernel, a snapshot directory, a bundle's unpacked members).
   */
  readLines?(path: string, sink: (text: string) => void): boolean;
  /** Why the last read of `path` failed (ENOENT, EACCES, ...), when it did. */
  whyMissing(path: string): string | undefined;
  /**
   * The file on disk behind a path, when there is one (a directory snapshot, a raw file, the
   * live kernel's file): big sources can then be read by their own readers, in parallel
   * byte ranges where the file allows it. Undefined when the bytes only come as a stream.
   */
  localFile?(path: string): string | undefined;
  /** A byte stream of a (possibly huge) source, or undefined when absent. */
  openStream(path: string): Promise<Readable | undefined>;
  /** Process ids present. */
  pids(): Promise<number[]>;
  /** Slab caches with trace files, and which kinds each has. */
  slabTraceFiles(): Promise<Map<string, Set<string>>>;
  /**
   * Open file descriptors of a process, when the snapshot can tell (a live machine, or a
   * capture with `proc/<pid>/fd` listings).
   */
  fdCount?(pid: number): Promise<number | undefined>;
  /**
   * A live process's open fds and the inode number of its /proc/PID/fd, from one stat() (the
   * recorder's every tick). A process that reuses a pid gets a new inode (its /proc entries
   * are made anew), so an unchanged inode is the same process; a changed one may still be
   * (the kernel can drop and remake an unused entry). Undefined when not permitted or gone.
   */
  fdInfo?(pid: number): { fds: number; ino: number } | undefined;
  /**
   * A live process's memory counters for the recorder's every tick, from /proc files kept open
   * across ticks (statm, fd/, task/): a file kept open belongs to one process for good, so
   * `opened` false means the same process as at the previous call for this pid. Undefined when
   * the process is gone. The object is reused by the next call. `unlessStatm`: when statm still
   * reads these three numbers (size, resident, shared) and the files were not just opened, fd/
   * and task/ are not looked at (`fds` and `taskLinks` then say -1): the caller keeps what it had.
   */
  procCounters?(pid: number, unlessStatm?: readonly number[]): ProcCounters | undefined;
  /** The manifest (synthesised for directories that have none). */
  manifest(): Promise<Manifest>;
  close(): Promise<void>;
}
