import type { Layer, LoadedRecording, SeriesData } from '../model/samples.js';
import { formatBytes, formatDuration } from '../model/units.js';
import { analyzeTrend, type Shape, type Trend, type TrendOptions, theilSen, thin } from './trend.js';

/**
 * Leak verdicts across every layer of a recording: each series gets a shape-aware trend
 * (analysis/trend.ts), and the ones that keep growing become suspects, ranked by rate.
 */

export type SuspectKind =
  /** A process's anonymous memory (heap, mmap'd chunks), resident or swapped. */
  | 'process-memory'
  /** A process's address space grows while its resident memory does not (threads, mmap). */
  | 'process-virtual'
  /** Shared memory mapped by a process. */
  | 'process-shmem'
  /** Open file descriptors (sockets, files) of a process. */
  | 'process-fds'
  /** Threads of a process. */
  | 'process-threads'
  /** One mapping (by name) of a growing process. */
  | 'mapping'
  | 'slab'
  | 'vmalloc'
  | 'allocinfo'
  | 'kmemleak'
  /** tmpfs and shared memory system-wide (meminfo Shmem). */
  | 'shmem'
  /** The used bytes of one tmpfs mount (its growing files are suspects of their own). */
  | 'tmpfs'
  /** One file on a tmpfs mount (POSIX shm lives in /dev/shm), named with its holders. */
  | 'tmpfs-file'
  /** One System V shared memory segment, named with its creator and attached processes. */
  | 'sysv-shm'
  /** A memfd or a deleted tmpfs file that only its holder's open fd shows. */
  | 'shm-object'
  /** A kernel meminfo field (KernelStack, PageTables, SUnreclaim, Percpu...). */
  | 'kernel'
  /** Memory no counter accounts for (pages taken straight from the buddy allocator). */
  | 'unaccounted';

export interface Suspect {
  /** 1-based, across all suspects. */
  rank: number;
  /** 1-based among suspects of the same kind. */
  rankInKind: number;
  kind: SuspectKind;
  /** `layer/key`, e.g. `slab/kmalloc-96`, `process/1234:56789`. */
  id: string;
  /** What to call it: `node (pid 1234)`, `slab kmalloc-96`. */
  name: string;
  pid?: number;
  metric: string;
  unit: 'bytes' | 'count';
  /** Growth per hour in `unit`. */
  ratePerHour: number;
  confidence: number;
  shape: Shape;
  /** When the growth began (ms since epoch). */
  sinceMs: number | undefined;
  first: number;
  last: number;
  /** The process exited before the end of the window (then it is in `exitedGrowing`). */
  exited?: boolean;
  /** One line of evidence. */
  evidence: string;
  /** Processes whose fds or threads grew over the same time (a kernel object's likely owners). */
  related?: string[];
  /**
   * Who holds a shared memory suspect (a tmpfs file, a segment, a memfd): the processes seen
   * with it open or mapped, a segment's creator and last attacher. Most recent first.
   */
  owners?: Owner[];
  /** What to run next. */
  next: string;
}

/** A process holding a shared memory object. */
export interface Owner {
  pid: number;
  /** comm, as recorded. */
  name: string;
  /** `fd 3 open for writing`, `mapped 64.0 MiB`, `created it`, `attached last`. */
  how: string;
}

/** Growth that is real but reclaimable (page cache, reclaimable slab): not a leak. */
export interface ReclaimableGrowth {
  id: string;
  name: string;
  ratePerHour: number;
  first: number;
  last: number;
}

export interface LeakReport {
  file: string;
  firstMs: number | undefined;
  lastMs: number | undefined;
  ticks: number;
  seriesAnalysed: number;
  suspects: Suspect[];
  /** Processes that grew and then exited before the end of the window (memory given back). */
  exitedGrowing: Suspect[];
  /** Growth of the recording process itself (meta `recorder_pid`). */
  recorder: Suspect[];
  reclaimable: ReclaimableGrowth[];
  memAvailableBytes: number | undefined;
  /** Theil–Sen slope of MemAvailable, bytes per hour (negative when it shrinks). */
  memAvailableSlopePerHour: number | undefined;
  /** Sum of the byte rates of suspects that do not count the same pages twice. */
  combinedRatePerHour: number;
  /** MemAvailable / combined rate; undefined without growth. */
  hoursToExhaustion: number | undefined;
}

export interface LeakOptions {
  /** Smallest byte growth rate that is a leak, bytes/hour. Default 2 MiB/h. */
  minBytesPerHour?: number;
  /** Smallest net byte growth over the window. Default 1 MiB. */
  minGrowthBytes?: number;
  /** Smallest fd/thread growth rate, per hour. Default 60. */
  minCountPerHour?: number;
  /** Smallest net fd/thread growth. Default 20. */
  minGrowthCount?: number;
  /** Suspects below this confidence are not reported. Default 0.4. */
  minConfidence?: number;
  /** Mann–Kendall significance level. Default 0.01. */
  alpha?: number;
  /** Called now and then (every 256 series and at the end) with the series analysed so far. */
  onProgress?: (done: number, total: number) => void;
}

/** meminfo fields that can hold a leak, and the kind they report as. */
const MEMINFO_SUSPECTS: Record<string, SuspectKind> = {
  Shmem: 'shmem',
  SUnreclaim: 'kernel',
  KernelStack: 'kernel',
  PageTables: 'kernel',
  SecPageTables: 'kernel',
  VmallocUsed: 'kernel',
  Percpu: 'kernel',
  AnonPages: 'kernel',
  Unevictable: 'kernel',
};
/** Which series of an entity can be a leak: its metric (plus another, summed), kind and words. */
interface SuspectSpec {
  kind: SuspectKind;
  metric: string;
  plus?: string;
  what: string | ((s: SeriesData) => string);
}

/**
 * Every recording layer and what `leaks` reads of it (meminfo goes by field, MEMINFO_SUSPECTS).
 * Keyed by the layer list (model/samples.ts LAYERS): a new layer does not compile until it
 * says here what can leak in it.
 */
const LAYER_SUSPECTS: Record<Layer, readonly SuspectSpec[]> = {
  process: [
    { kind: 'process-memory', metric: 'anon_bytes', plus: 'swap_bytes', what: 'anon+swap' },
    { kind: 'process-virtual', metric: 'vsz_bytes', what: 'VSZ' },
    { kind: 'process-shmem', metric: 'shmem_bytes', what: 'RssShmem' },
    { kind: 'process-fds', metric: 'fds', what: 'open fds' },
    { kind: 'process-threads', metric: 'threads', what: 'threads' },
  ],
  mapping: [{ kind: 'mapping', metric: 'rss_bytes', what: (s) => `mapping ${s.label} Rss` }],
  slab: [{ kind: 'slab', metric: 'bytes', what: 'slab pages' }],
  vmalloc: [{ kind: 'vmalloc', metric: 'bytes', what: 'vmalloc bytes' }],
  allocinfo: [{ kind: 'allocinfo', metric: 'bytes', what: 'allocated bytes' }],
  kmemleak: [{ kind: 'kmemleak', metric: 'bytes', what: 'unreferenced bytes' }],
  unaccounted: [{ kind: 'unaccounted', metric: 'bytes', what: 'unaccounted' }],
  tmpfs: [{ kind: 'tmpfs', metric: 'used_bytes', what: 'tmpfs used' }],
  'tmpfs-file': [{ kind: 'tmpfs-file', metric: 'allocated_bytes', what: 'file allocated' }],
  // rss + swap: a segment's size is fixed at shmget; what grows is what its users touch.
  'sysv-shm': [{ kind: 'sysv-shm', metric: 'rss_bytes', plus: 'swap_bytes', what: 'segment rss+swap' }],
  // Only memfds and deleted files carry object_bytes: listed files and segments are the
  // suspects of their own layers.
  'shm-holder': [{ kind: 'shm-object', metric: 'object_bytes', what: 'bytes held open' }],
  meminfo: [],
  // Counters and free lists: context for the suspects, never a leak themselves.
  vmstat: [],
  buddy: [],
};

/**
 * Layers read whole: meminfo (by field), and the small shared memory layers whose other
 * metrics name holders and creators (fds, first_fd, lpid, size_bytes).
 */
const READ_WHOLE: ReadonlySet<Layer> = new Set(['meminfo', 'tmpfs', 'tmpfs-file', 'sysv-shm', 'shm-holder']);

/**
 * Does analyzeLeaks read this series? A loader can leave the others out (RecordingReader.load's
 * `filter`) for the same report: a process's rss_bytes and file_bytes, mapping sizes, vmstat
 * and buddyinfo are context for people, never a verdict. On a week at 10 s that is a third of
 * the samples.
 */
export function readByLeaks(layer: Layer, metric: string): boolean {
  if (READ_WHOLE.has(layer)) return true;
  return LAYER_SUSPECTS[layer].some((spec) => spec.metric === metric || spec.plus === metric);
}

/** meminfo growth the kernel gives back under pressure. */
const MEMINFO_RECLAIMABLE = new Set(['Cached-Shmem', 'Buffers', 'SReclaimable']);
/**
 * Suspects whose bytes are already in another suspect: AnonPages holds every process's
 * anon, SUnreclaim every unreclaimable slab cache, VmallocUsed every vmalloc caller.
 */
const AGGREGATES = new Set(['meminfo/AnonPages', 'meminfo/SUnreclaim', 'meminfo/VmallocUsed']);

/** Caches marked SLAB_RECLAIM_ACCOUNT that open sockets pin: not reclaimable while the fd lives. */
const PINNED_BY_FDS = new Set(['sock_inode_cache']);

function fmtValue(v: number, unit: 'bytes' | 'count'): string {
  return unit === 'bytes' ? formatBytes(v) : String(Math.round(v));
}

function evidence(tr: Trend, unit: 'bytes' | 'count', t: readonly number[], what: string): string {
  const span = (t[t.length - 1] ?? 0) - (t[0] ?? 0);
  const p = tr.mannKendall.pIncreasing;
  return (
    `${what} ${fmtValue(tr.first, unit)} → ${fmtValue(tr.last, unit)} over ${formatDuration(span)}; ` +
    `${tr.shape}, Mann–Kendall p=${p < 1e-4 ? p.toExponential(0) : p.toFixed(4)}, ` +
    `tail ${fmtValue(tr.tailSlopePerHour, unit)}/h`
  );
}

function nextStep(
  kind: SuspectKind,
  key: string,
  label: string | undefined,
  pid: number | undefined,
): string {
  const comm = label ?? '';
  switch (kind) {
    case 'process-memory': {
      const lang = /^node|nodejs/.test(comm)
        ? `; Node: node --heapsnapshot-signal=SIGUSR2, compare two heap snapshots`
        : /python/.test(comm)
          ? '; Python: tracemalloc snapshots compared with compare_to()'
          : '; C/C++: heaptrack or valgrind --leak-check=full';
      return `find the growing mapping: memsleuth series --layer mapping --key ${key}: (or pmap -x ${pid})${lang}`;
    }
    case 'process-virtual':
      return `address space grows, RSS does not: count threads (ls /proc/${pid}/task | wc -l) and look for repeated [anon] stacks in pmap -x ${pid}: threads never joined, or mmap without munmap`;
    case 'process-shmem':
      return `shared memory mapped by pid ${pid} grows: ls -l /proc/${pid}/map_files, ipcs -m, ls -l /dev/shm`;
    case 'process-fds':
      return `open fds grow: ls -l /proc/${pid}/fd | awk '{print $NF}' | sort | uniq -c | sort -n; sockets: ss -tanp | grep pid=${pid}`;
    case 'process-threads':
      return `threads grow: ls /proc/${pid}/task | wc -l; a thread pool without a bound, or threads never joined`;
    case 'mapping':
      return `pmap -x ${pid} and the smaps entry of ${label}; for [heap]/[anon]: heaptrack or the language's heap profiler`;
    case 'slab':
      return /^kmalloc|^dma-kmalloc/.test(key)
        ? `boot with slub_debug=U,${key} and run \`memsleuth slab traces ${key}\` to see who allocates without freeing`
        : `boot with slub_debug=U,${key} and run \`memsleuth slab traces ${key}\`; socket caches (TCP, UDP, sock_inode_cache): ss -s and the related processes' fds`;
    case 'vmalloc':
      // With CONFIG_VMAP_STACK (x86_64 default) every thread's kernel stack is a vmalloc area
      // allocated under kernel_clone → dup_task_struct → alloc_thread_stack_node.
      if (/^(kernel_clone|copy_process|dup_task_struct|alloc_thread_stack_node)\b/.test(key))
        return 'vmalloc-backed kernel stacks (CONFIG_VMAP_STACK): threads are created and kept; see the process-threads suspects';
      return `\`memsleuth vmalloc\` by caller: ${key} keeps allocating; check its module and kmemleak`;
    case 'allocinfo':
      return `\`memsleuth allocinfo diff\` between two snapshots; the site ${key} is the code that allocates`;
    case 'kmemleak':
      return 'cat /sys/kernel/debug/kmemleak and `memsleuth kmemleak` to group the reports by backtrace';
    case 'shmem':
      return 'tmpfs or shared memory grows: df -h -t tmpfs; du -xsh on each tmpfs; ipcs -m; ls -l /dev/shm';
    case 'tmpfs':
      return `tmpfs ${key} grows: du -ax ${key} | sort -n | tail (many small files), and deleted files still open: ls -l /proc/*/fd 2>/dev/null | grep '${key}/.*(deleted)'`;
    case 'tmpfs-file':
      return pid !== undefined
        ? `${key} keeps growing while pid ${pid} holds it: see what it writes (strace -f -e trace=write -p ${pid}); rotate or truncate it, or delete it and restart the holder (tmpfs frees it at the last close)`
        : `${key} keeps growing and no process held it open when looked: a short-lived writer appends to it (a shell loop, a cron job): inotifywait -m ${key} or auditctl -w ${key} -p w`;
    case 'sysv-shm':
      return `segment ${key} grows as its users touch more of it: ipcs -m -i ${key} and ipcs -m -p (creator and last pid); it is freed after ipcrm -m ${key} once every user detaches`;
    case 'shm-object':
      return `held open by pid ${pid}: ls -l /proc/${pid}/fd | grep -e memfd -e deleted; it is freed when that fd closes (close it, or restart the holder)`;
    case 'kernel':
      if (key === 'KernelStack')
        return 'threads keep being created: ps -eLf | wc -l; the processes whose threads grow';
      if (key === 'PageTables')
        return 'page tables grow with mapped memory: VmPTE in /proc/PID/status of the growing processes';
      if (key === 'Percpu')
        return 'per-cpu allocations grow: memory cgroups created and not removed (ls /sys/fs/cgroup)';
      return `meminfo ${key} grows: see the slab, vmalloc and process suspects that make it up`;
    case 'unaccounted':
      return (
        'memory no counter sees (alloc_pages by drivers): with page_owner=on (CONFIG_PAGE_OWNER), take two ' +
        'snapshots and run `memsleuth page-owner diff BEFORE AFTER`; without it, trace the page allocator: ' +
        'perf record -a -g -e kmem:mm_page_alloc -e kmem:mm_page_free -- sleep 60'
      );
  }
}

interface Candidate {
  kind: SuspectKind;
  series: SeriesData;
  t: number[];
  v: number[];
  unit: 'bytes' | 'count';
  metric: string;
  what: string;
}

function addSeries(
  a: SeriesData | undefined,
  b: SeriesData | undefined,
): { t: number[]; v: number[] } | undefined {
  if (!a) return undefined;
  if (!b || b.t.length !== a.t.length) return { t: a.t, v: a.v };
  return { t: a.t, v: a.v.map((x, i) => x + b.v[i]!) };
}

/** The last value of a series, and when. */
function lastOf(s: SeriesData | undefined): { v: number; t: number } | undefined {
  if (!s || s.v.length === 0) return undefined;
  return { v: s.v[s.v.length - 1]!, t: s.t[s.t.length - 1]! };
}

interface HolderSeen extends Owner {
  lastMs: number;
  writable: boolean;
}

/**
 * The holders recorded for each shared memory object (layer shm-holder: entity key
 * `OBJECT PID:START`), most recently seen first, writers before readers.
 */
function holdersByObject(entities: Map<string, Map<string, SeriesData>>): Map<string, HolderSeen[]> {
  const out = new Map<string, HolderSeen[]>();
  for (const [id, m] of entities) {
    if (!id.startsWith('shm-holder/')) continue;
    const any = m.values().next().value as SeriesData;
    const cut = any.key.lastIndexOf(' ');
    if (cut < 0 || any.pid === undefined) continue;
    const object = any.key.slice(0, cut);
    const fds = lastOf(m.get('fds'));
    const writable = lastOf(m.get('fds_writable'))?.v ?? 0;
    const mapped = lastOf(m.get('mapped_bytes'))?.v ?? 0;
    const firstFd = lastOf(m.get('first_fd'))?.v;
    const how: string[] = [];
    if (fds && fds.v > 0)
      how.push(
        `fd ${firstFd ?? '?'}${fds.v > 1 ? ` (+${fds.v - 1})` : ''} open${writable > 0 ? ' for writing' : ''}`,
      );
    if (mapped > 0) how.push(`mapped ${formatBytes(mapped)}`);
    const seen: HolderSeen = {
      pid: any.pid,
      name: any.label ?? '?',
      how: how.join(', ') || 'held',
      lastMs: fds?.t ?? lastOf(m.get('mapped_bytes'))?.t ?? 0,
      writable: writable > 0,
    };
    let list = out.get(object);
    if (!list) {
      list = [];
      out.set(object, list);
    }
    list.push(seen);
  }
  for (const list of out.values())
    list.sort((a, b) => Number(b.writable) - Number(a.writable) || b.lastMs - a.lastMs || a.pid - b.pid);
  return out;
}

/** A shm-holder object key in words: `/memfd:ring`, `/dev/shm/x (deleted)`. */
function objectName(objectKey: string): string {
  const m = /^(memfd|deleted):[^:]*:(.*)$/.exec(objectKey);
  if (m) return m[1] === 'memfd' ? `/memfd:${m[2]}` : `${m[2]} (deleted)`;
  return objectKey.replace(/^tmpfs:/, '').replace(/^sysv:/, 'SysV shm ');
}

/** The order of suspects, highest first: bytes before counts, then rate × confidence. */
export function suspectScore(s: Pick<Suspect, 'unit' | 'ratePerHour' | 'confidence'>): number {
  return (s.unit === 'bytes' ? 1e18 : 0) + s.ratePerHour * (0.5 + s.confidence / 2);
}

/** Rank suspects across all layers of a recording. */
export function analyzeLeaks(rec: LoadedRecording, opts: LeakOptions = {}): LeakReport {
  const bytesOpts: TrendOptions = {
    minRatePerHour: opts.minBytesPerHour ?? 2 * 1024 * 1024,
    minGrowth: opts.minGrowthBytes ?? 1024 * 1024,
    alpha: opts.alpha ?? 0.01,
  };
  const countOpts: TrendOptions = {
    minRatePerHour: opts.minCountPerHour ?? 60,
    minGrowth: opts.minGrowthCount ?? 20,
    alpha: opts.alpha ?? 0.01,
  };
  let reclaimableSlab: Set<string>;
  try {
    reclaimableSlab = new Set(JSON.parse(rec.meta.slab_reclaimable ?? '[]') as string[]);
  } catch {
    reclaimableSlab = new Set();
  }
  const lastMs = rec.lastMs ?? 0;

  // Group series by entity.
  const entities = new Map<string, Map<string, SeriesData>>();
  for (const s of rec.series) {
    const id = `${s.layer}/${s.key}`;
    let m = entities.get(id);
    if (!m) {
      m = new Map();
      entities.set(id, m);
    }
    m.set(s.metric, s);
  }

  const candidates: Candidate[] = [];
  const reclaimable: ReclaimableGrowth[] = [];
  let analysed = 0;
  const push = (
    kind: SuspectKind,
    s: SeriesData | undefined,
    metric: string,
    what: string,
    tv?: { t: number[]; v: number[] },
  ) => {
    if (!s) return;
    const d = tv ?? { t: s.t, v: s.v };
    candidates.push({ kind, series: s, t: d.t, v: d.v, unit: s.unit, metric, what });
  };
  for (const [, m] of entities) {
    const any = m.values().next().value as SeriesData;
    const bytes = m.get('bytes');
    const isReclaimable =
      (any.layer === 'slab' && reclaimableSlab.has(any.key) && !PINNED_BY_FDS.has(any.key)) ||
      (any.layer === 'meminfo' && MEMINFO_RECLAIMABLE.has(any.key));
    if (isReclaimable) {
      if (!bytes) continue;
      const tr = analyzeTrend(bytes.t, bytes.v, bytesOpts);
      analysed++;
      if (tr.growing)
        reclaimable.push({
          id: `${any.layer}/${any.key}`,
          name: any.layer === 'slab' ? `slab ${any.key} (reclaimable)` : `meminfo ${any.key}`,
          ratePerHour: tr.ratePerHour,
          first: tr.first,
          last: tr.last,
        });
      continue;
    }
    const specs: readonly SuspectSpec[] =
      any.layer === 'meminfo'
        ? MEMINFO_SUSPECTS[any.key]
          ? [{ kind: MEMINFO_SUSPECTS[any.key]!, metric: 'bytes', what: any.key }]
          : []
        : LAYER_SUSPECTS[any.layer];
    for (const spec of specs) {
      const s = m.get(spec.metric);
      const what = typeof spec.what === 'string' ? spec.what : spec.what(any);
      if (spec.plus) push(spec.kind, s, `${spec.metric}+${spec.plus}`, what, addSeries(s, m.get(spec.plus)));
      else push(spec.kind, s, spec.metric, what);
    }
  }

  interface Found {
    c: Candidate;
    tr: Trend;
  }
  const found: Found[] = [];
  const byEntity = new Map<string, Map<SuspectKind, Found>>();
  for (const [i, c] of candidates.entries()) {
    if (opts.onProgress && (i % 256 === 0 || i === candidates.length - 1))
      opts.onProgress(i + 1, candidates.length);
    const tr = analyzeTrend(c.t, c.v, c.unit === 'bytes' ? bytesOpts : countOpts);
    analysed++;
    if (!tr.growing) continue;
    const f = { c, tr };
    found.push(f);
    const id = `${c.series.layer}/${c.series.key}`;
    let m = byEntity.get(id);
    if (!m) {
      m = new Map();
      byEntity.set(id, m);
    }
    m.set(c.kind, f);
  }

  // One process, one memory verdict: VSZ growth is a virtual-memory leak only when resident
  // memory does not grow with it (threads never joined: 8 MiB stacks, a few KiB touched).
  const drop = new Set<Found>();
  for (const m of byEntity.values()) {
    const mem = m.get('process-memory');
    const virt = m.get('process-virtual');
    // Runtimes reserve address space ahead of use (V8, the JVM, glibc arenas): VSZ growing a few
    // times faster than a growing RSS is still one memory leak, not two.
    if (mem && virt && 4 * mem.tr.ratePerHour >= virt.tr.ratePerHour) drop.add(virt);
  }

  const exitedCutoff = lastMs;
  const growingFds = found.filter((f) => f.c.kind === 'process-fds' || f.c.kind === 'process-threads');
  const holders = holdersByObject(entities);
  // Names of processes by pid (the latest entity of a pid), for a segment's creator.
  const procNames = new Map<number, string>();
  for (const sd of rec.series)
    if (sd.layer === 'process' && sd.pid !== undefined && sd.label) procNames.set(sd.pid, sd.label);
  const all: Suspect[] = found
    .filter((f) => !drop.has(f))
    .map(({ c, tr }) => {
      const s = c.series;
      const isProc = s.layer === 'process' || s.layer === 'mapping';
      const name =
        s.layer === 'process'
          ? `${s.label ?? '?'} (pid ${s.pid})`
          : s.layer === 'mapping'
            ? `${s.label} of pid ${s.pid}`
            : s.layer === 'meminfo'
              ? `meminfo ${s.key}`
              : s.layer === 'unaccounted'
                ? 'unaccounted memory'
                : `${s.layer} ${s.key}`;
      const shm = shmOwnership(c.kind, s, entities.get(`${s.layer}/${s.key}`), holders, procNames);
      const pid = shm?.pid ?? s.pid;
      const sus: Suspect = {
        rank: 0,
        rankInKind: 0,
        kind: c.kind,
        id: `${s.layer}/${s.key}`,
        name: shm?.name ?? name,
        metric: c.metric,
        unit: c.unit,
        ratePerHour: tr.ratePerHour,
        confidence: tr.confidence,
        shape: tr.shape,
        sinceMs: tr.sinceMs,
        first: tr.first,
        last: tr.last,
        evidence: evidence(tr, c.unit, c.t, c.what),
        next: nextStep(c.kind, c.kind === 'shm-object' ? (shm?.name ?? s.key) : s.key, s.label, pid),
      };
      if (pid !== undefined) sus.pid = pid;
      if (shm?.owners.length) sus.owners = shm.owners;
      if (isProc && (c.t[c.t.length - 1] ?? 0) < exitedCutoff) sus.exited = true;
      // A file deleted, a segment removed, a tmpfs unmounted: its memory went with it.
      if (!isProc && s.endedMs !== undefined && s.endedMs < exitedCutoff) sus.exited = true;
      if (c.kind === 'slab' || c.kind === 'kernel' || c.kind === 'unaccounted' || c.kind === 'vmalloc') {
        // Kernel objects have no owner in a counter: name the processes whose fds (sockets,
        // files: slab) or threads (kernel stacks, vmalloc'd stacks) grew over the same time.
        const wants: SuspectKind[] =
          c.kind === 'slab'
            ? ['process-fds']
            : s.key === 'KernelStack' || c.kind === 'vmalloc'
              ? ['process-threads']
              : ['process-fds', 'process-threads'];
        const rel = growingFds
          .filter((g) => wants.includes(g.c.kind))
          .sort((a, b) => b.tr.ratePerHour - a.tr.ratePerHour)
          .map(
            (g) =>
              `${g.c.series.label} (pid ${g.c.series.pid}) ${g.c.what} +${Math.round(g.tr.ratePerHour)}/h`,
          );
        if (rel.length) sus.related = rel.slice(0, 3);
      }
      return sus;
    });
  // Shmem is made of the tmpfs files, segments and memfds above: name the growing ones (and the
  // segments created while recording, which no single series shows growing).
  const shmParts = all.filter(
    (x) =>
      !x.exited &&
      (x.kind === 'tmpfs-file' ||
        x.kind === 'sysv-shm' ||
        x.kind === 'shm-object' ||
        x.kind === 'process-shmem'),
  );
  const newSegments = segmentsCreated(entities, rec.firstMs ?? 0, procNames);
  for (const x of all) {
    if (x.id !== 'meminfo/Shmem') continue;
    const rel = shmParts
      .sort((a, b) => b.ratePerHour - a.ratePerHour)
      .map((p) => `${p.name} +${formatBytes(p.ratePerHour)}/h`)
      .concat(newSegments);
    if (rel.length) {
      x.related = rel.slice(0, 4);
      x.next = 'the growing shared memory is named above; each has its own verdict with its holders';
    }
  }

  // A process that grew and then exited gave its memory back: listed apart, not ranked.
  const recorderPid = rec.meta.recorder_pid === undefined ? undefined : Number(rec.meta.recorder_pid);
  const minConfidence = opts.minConfidence ?? 0.4;
  const exitedGrowing = all.filter((x) => x.exited);
  // The recorder is a Node process whose heap warms up over its first minutes: shown apart.
  const recorder = all.filter((x) => !x.exited && recorderPid !== undefined && x.pid === recorderPid);
  const suspects = all.filter((x) => !x.exited && !recorder.includes(x) && x.confidence >= minConfidence);
  suspects.sort((a, b) => suspectScore(b) - suspectScore(a));
  const kindRank = new Map<SuspectKind, number>();
  suspects.forEach((s, i) => {
    s.rank = i + 1;
    const k = (kindRank.get(s.kind) ?? 0) + 1;
    kindRank.set(s.kind, k);
    s.rankInKind = k;
  });
  reclaimable.sort((a, b) => b.ratePerHour - a.ratePerHour);

  // Projection: MemAvailable now, and the rate at which the suspects eat it. Per-process
  // anon is inside AnonPages, slab caches inside SUnreclaim: count each page once.
  const avail = entities.get('meminfo/MemAvailable')?.get('bytes');
  let memAvailableBytes: number | undefined;
  let memAvailableSlopePerHour: number | undefined;
  if (avail && avail.v.length > 1) {
    memAvailableBytes = avail.v[avail.v.length - 1];
    const th = thin(avail.t, avail.v, 240);
    memAvailableSlopePerHour = theilSen(
      th.t.map((x) => (x - th.t[0]!) / 3_600_000),
      th.v,
    ).slope;
  }
  // Shmem counts every tmpfs file, segment and memfd once: its parts are not added again.
  const counted = new Set<SuspectKind>([
    'process-memory',
    'slab',
    'vmalloc',
    'shmem',
    'kernel',
    'unaccounted',
  ]);
  let combined = 0;
  for (const s of suspects) {
    if (s.unit !== 'bytes' || !counted.has(s.kind) || AGGREGATES.has(s.id)) continue;
    combined += s.ratePerHour;
  }
  return {
    file: rec.file,
    firstMs: rec.firstMs,
    lastMs: rec.lastMs,
    ticks: rec.tickCount,
    seriesAnalysed: analysed,
    suspects,
    exitedGrowing,
    recorder,
    reclaimable,
    memAvailableBytes,
    memAvailableSlopePerHour,
    combinedRatePerHour: combined,
    hoursToExhaustion:
      combined > 0 && memAvailableBytes !== undefined ? memAvailableBytes / combined : undefined,
  };
}

/**
 * The name, owners and pid to show for a shared memory suspect: a tmpfs file with the
 * processes seen holding it, a SysV segment with its creator, last attacher and attached
 * processes, a memfd or deleted file with the process whose fd shows it.
 */
function shmOwnership(
  kind: SuspectKind,
  s: SeriesData,
  m: Map<string, SeriesData> | undefined,
  holders: Map<string, HolderSeen[]>,
  procNames: Map<number, string>,
): { name: string; owners: Owner[]; pid: number | undefined } | undefined {
  const strip = (h: HolderSeen): Owner => ({ pid: h.pid, name: h.name, how: h.how });
  if (kind === 'tmpfs-file') {
    const owners = (holders.get(`tmpfs:${s.key}`) ?? []).map(strip);
    const o = owners[0];
    return { name: o ? `${s.key} (${o.name} pid ${o.pid})` : s.key, owners, pid: o?.pid };
  }
  if (kind === 'sysv-shm') {
    const owners: Owner[] = [];
    const cpid = s.pid;
    if (cpid) owners.push({ pid: cpid, name: procNames.get(cpid) ?? '?', how: 'created it' });
    const lpid = lastOf(m?.get('lpid'))?.v;
    if (lpid && lpid !== cpid)
      owners.push({ pid: lpid, name: procNames.get(lpid) ?? '?', how: 'attached or detached last' });
    for (const h of holders.get(`sysv:${s.key}`) ?? [])
      if (!owners.some((o) => o.pid === h.pid)) owners.push(strip(h));
      else {
        const o = owners.find((x) => x.pid === h.pid)!;
        o.how = `${o.how}, ${h.how}`;
      }
    const who = owners[0];
    return {
      name: `SysV shm ${s.key}${who ? ` (${who.name} pid ${who.pid})` : ''}`,
      owners,
      pid: cpid,
    };
  }
  if (kind === 'shm-object') {
    const cut = s.key.lastIndexOf(' ');
    const object = objectName(cut < 0 ? s.key : s.key.slice(0, cut));
    const h = (holders.get(cut < 0 ? s.key : s.key.slice(0, cut)) ?? []).find((x) => x.pid === s.pid);
    const owners = h ? [strip(h)] : [];
    return { name: `${object} (${s.label ?? '?'} pid ${s.pid})`, owners, pid: s.pid };
  }
  if (kind === 'tmpfs') return { name: `tmpfs ${s.key}`, owners: [], pid: undefined };
  return undefined;
}

/**
 * SysV segments created while recording and still there at the end, by creator: a program
 * that creates segments and never removes them grows Shmem with no single segment growing.
 */
function segmentsCreated(
  entities: Map<string, Map<string, SeriesData>>,
  firstMs: number,
  procNames: Map<number, string>,
): string[] {
  const byCreator = new Map<number, { n: number; bytes: number }>();
  for (const [id, m] of entities) {
    if (!id.startsWith('sysv-shm/')) continue;
    const size = m.get('rss_bytes') ?? m.get('size_bytes');
    if (!size || size.endedMs !== undefined || (size.t[0] ?? 0) <= firstMs) continue;
    const pid = size.pid ?? 0;
    const e = byCreator.get(pid) ?? { n: 0, bytes: 0 };
    e.n++;
    e.bytes += size.v[size.v.length - 1] ?? 0;
    byCreator.set(pid, e);
  }
  return [...byCreator]
    .filter(([, e]) => e.n >= 2 && e.bytes >= 1024 * 1024)
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(
      ([pid, e]) =>
        `${e.n} SysV segments created while recording (${formatBytes(e.bytes)}) by ${procNames.get(pid) ?? '?'} (pid ${pid})`,
    );
}
