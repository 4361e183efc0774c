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
  /** What to run next. */
  next: string;
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
  meminfo: [],
  // Counters and free lists: context for the suspects, never a leak themselves.
  vmstat: [],
  buddy: [],
};

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
    case 'kernel':
      if (key === 'KernelStack')
        return 'threads keep being created: ps -eLf | wc -l; the processes whose threads grow';
      if (key === 'PageTables')
        return 'page tables grow with mapped memory: VmPTE in /proc/PID/status of the growing processes';
      if (key === 'Percpu')
        return 'per-cpu allocations grow: memory cgroups created and not removed (ls /sys/fs/cgroup)';
      return `meminfo ${key} grows: see the slab, vmalloc and process suspects that make it up`;
    case 'unaccounted':
      return 'memory no counter sees (alloc_pages from drivers): boot with page_owner=on and run `memsleuth page-owner top`';
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
  for (const c of candidates) {
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
      const sus: Suspect = {
        rank: 0,
        rankInKind: 0,
        kind: c.kind,
        id: `${s.layer}/${s.key}`,
        name,
        metric: c.metric,
        unit: c.unit,
        ratePerHour: tr.ratePerHour,
        confidence: tr.confidence,
        shape: tr.shape,
        sinceMs: tr.sinceMs,
        first: tr.first,
        last: tr.last,
        evidence: evidence(tr, c.unit, c.t, c.what),
        next: nextStep(c.kind, s.key, s.label, s.pid),
      };
      if (s.pid !== undefined) sus.pid = s.pid;
      if (isProc && (c.t[c.t.length - 1] ?? 0) < exitedCutoff) sus.exited = true;
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
