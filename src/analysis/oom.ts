/**
 * What an OOM-killer report says, in words: the constraint (the whole machine, a memory
 * cgroup, a cpuset, a memory policy), what was asked for (order and gfp flags), who was
 * killed and why (the largest oom badness, recomputed from the task table), and the
 * accounting at that moment by the same identity as `report` (accounting.ts):
 *
 *   MemTotal = user + shared + cache + kernel + free + unaccounted
 *
 * with the report's Mem-Info counters (pages) converted to bytes:
 *   MemTotal     = (pages RAM − pages reserved): the zones' managed pages
 *   AnonPages    ≈ active_anon + inactive_anon + isolated_anon − shmem (shmem pages sit on
 *                  the anon LRU; the report prints no NR_ANON_MAPPED)
 *   Shmem        = shmem
 *   Cached       = active_file + inactive_file + isolated_file + unevictable + shmem, so
 *                  user + shared + cache is exactly every page on an LRU list
 *   SReclaimable, SUnreclaim = slab_reclaimable, slab_unreclaimable
 *   KernelStack  = Σ node kernel_stack (4.8+; zone lines before), PageTables = pagetables,
 *   SecPageTables= sec_pagetables (6.0+), Bounce = bounce, Hugetlb = Σ hugepages_total × size
 *   MemFree      = free, pcp-free = free_pcp
 * The report prints no vmalloc, percpu or zsmalloc counters: those sit in `unaccounted`
 * here, beside the pages drivers take straight from the buddy allocator.
 */
import type { Frame } from '../model/frame.js';
import { formatBytes } from '../model/units.js';
import type {
  OomAllocation,
  OomKill,
  OomLog,
  OomReport,
  OomSlabCache,
  OomTask,
} from '../sources/oom_report.js';
import { type Accounting, computeAccounting } from './accounting.js';
import { culpritFrame } from './stacks.js';

const KIB = 1024;

const pct = (part: number, whole: number) => (whole > 0 ? `${((part / whole) * 100).toFixed(0)}%` : '?');

/**
 * The gfp flags `%pGg` prints (include/trace/events/mmflags.h, 4.5 to 6.12), in words.
 * Composite names (GFP_*) come first in the kernel's output and cover the bits they contain.
 */
export const GFP_WORDS: Record<string, string> = {
  GFP_TRANSHUGE: 'a transparent huge page (may compact, may fail)',
  GFP_TRANSHUGE_LIGHT: 'a transparent huge page, without direct reclaim or compaction',
  GFP_HIGHUSER_MOVABLE: 'a user-space page (page fault or page cache), movable',
  GFP_HIGHUSER: 'a user-space page that cannot be moved',
  GFP_USER: 'memory for user space or for hardware that user space maps',
  GFP_TEMPORARY: 'a short-lived kernel allocation (before 4.13)',
  GFP_KERNEL_ACCOUNT: 'a kernel allocation charged to the memory cgroup',
  GFP_KERNEL: 'an ordinary kernel allocation (may sleep, reclaim and start I/O)',
  GFP_NOFS: 'a kernel allocation that must not call into filesystems',
  GFP_ATOMIC: 'an atomic allocation (cannot sleep: interrupt context or under a lock)',
  GFP_NOIO: 'a kernel allocation that must not start I/O',
  GFP_NOWAIT: 'an allocation that does not wait for reclaim',
  GFP_DMA: 'from the DMA zone (the first 16 MiB)',
  GFP_DMA32: 'from the DMA32 zone (the first 4 GiB)',
  __GFP_HIGHMEM: 'may come from high memory',
  __GFP_HIGH: 'high priority: may dip into the reserves',
  __GFP_ATOMIC: 'atomic: cannot sleep (before 6.3)',
  __GFP_IO: 'may start I/O',
  __GFP_FS: 'may call into filesystems',
  __GFP_COLD: 'cache-cold page (before 4.15)',
  __GFP_NOWARN: 'no warning on failure',
  __GFP_REPEAT: 'retry hard (before 4.13)',
  __GFP_RETRY_MAYFAIL: 'retry hard, but may fail',
  __GFP_NOFAIL: 'must not fail: the kernel retries forever',
  __GFP_NORETRY: 'give up early',
  __GFP_COMP: 'a compound page',
  __GFP_ZERO: 'zeroed',
  __GFP_NOMEMALLOC: 'must not use the emergency reserves',
  __GFP_MEMALLOC: 'may use the emergency reserves',
  __GFP_HARDWALL: 'restricted to the cpuset',
  __GFP_THISNODE: 'from this NUMA node only',
  __GFP_RECLAIMABLE: 'reclaimable (shrinkable slab)',
  __GFP_MOVABLE: 'movable',
  __GFP_ACCOUNT: 'charged to the memory cgroup',
  __GFP_NOTRACK: 'not tracked by kmemcheck (before 4.15)',
  __GFP_WRITE: 'will be written to (dirty page cache)',
  __GFP_RECLAIM: 'may reclaim (direct and kswapd)',
  __GFP_DIRECT_RECLAIM: 'may reclaim directly',
  __GFP_KSWAPD_RECLAIM: 'may wake kswapd',
  __GFP_OTHER_NODE: 'on behalf of another node (before 4.10)',
  __GFP_ZEROTAGS: 'zeroed memory tags (arm64 MTE)',
  __GFP_SKIP_ZERO: 'KASAN: skip zeroing',
  __GFP_SKIP_KASAN: 'KASAN: skip poisoning',
  __GFP_NOLOCKDEP: 'no lockdep checks',
};

/** Where the allocation came from, in the call trace: the OOM killer's own frames left out. */
const OOM_MACHINERY =
  /^(?:dump_stack|show_stack|dump_backtrace|dump_header|oom_kill_process|out_of_memory|mem_cgroup_out_of_memory|mem_cgroup_oom|try_charge|charge_memcg|__mem_cgroup_charge|mem_cgroup_charge|obj_cgroup_charge|__memcg_kmem_charge|memcg_kmem_charge|__alloc_pages|__alloc_frozen_pages|alloc_pages|warn_alloc|pagefault_out_of_memory)/;

export type OomScope = 'global' | 'memcg' | 'cpuset' | 'mempolicy';

export interface OomRequest {
  comm: string;
  pid?: number;
  /** -1: no allocation (sysrq-f). */
  order: number;
  pages: number;
  bytes: number;
  gfpMask: number;
  gfpFlags: { name: string; meaning?: string }[];
  /** `a page fault`, `msl_page_leak [msl_leaky]`, ...: the first frame outside the OOM path and the allocators. */
  site?: string;
  workqueue?: string;
  summary: string;
}

export interface RankedTask {
  pid: number;
  name: string;
  uid: number;
  rssBytes: number;
  swapBytes: number;
  pgtablesBytes: number;
  oomScoreAdj: number;
  /** rss + swap + page tables in pages, plus oom_score_adj × total / 1000 (mm/oom_kill.c oom_badness). */
  badnessPages: number;
  /** oom_score_adj -1000: never chosen. */
  unkillable: boolean;
}

export interface OomVictim {
  pid: number;
  comm: string;
  uid?: number;
  anonRssBytes: number;
  fileRssBytes: number;
  shmemRssBytes?: number;
  pgtablesBytes?: number;
  oomScoreAdj?: number;
  /** Its place by badness among the killable tasks of the table (0 = largest). */
  rank?: number;
  badnessPages?: number;
  /** The memory killing it freed (anon + shmem it alone held; file pages stay cached). */
  freedBytes: number;
  why: string;
  reapedBytes?: number;
}

export type OomCulprit =
  | 'kernel-unaccounted'
  | 'kernel-slab'
  | 'kernel-other'
  | 'hugetlb'
  | 'user'
  | 'shmem'
  | 'page-cache'
  | 'memcg-limit'
  | 'fragmentation'
  | 'unknown';

export interface OomMemcgSummary {
  path?: string;
  usageBytes?: number;
  limitBytes?: number;
  failcnt?: number;
  swapUsageBytes?: number;
  anonBytes?: number;
  fileBytes?: number;
  kernelBytes?: number;
  shmemBytes?: number;
}

export interface OomExplanation {
  /** 1-based index in the log and the report's first line. */
  index: number;
  line: number;
  seconds?: number;
  scope: OomScope;
  /** The constraint in words. */
  constraint: string;
  request?: OomRequest;
  victim?: OomVictim;
  /** The killable tasks by badness, largest first (top 5). */
  candidates: RankedTask[];
  taskCount: number;
  /** The identity at the time of the report (global OOMs with Mem-Info). */
  accounting?: Accounting;
  memcg?: OomMemcgSummary;
  /** `Memory allocations:` (6.10+), largest first (top 5). */
  allocations: OomAllocation[];
  /** `Unreclaimable slab info:` by size (top 5). */
  slab: OomSlabCache[];
  culprit: OomCulprit;
  /** One sentence: what ate the memory. */
  headline: string;
  /** Further facts, in words. */
  notes: string[];
  nextSteps: string[];
  missing: string[];
}

/** The accounting identity of a global report, or undefined when it lacks Mem-Info. */
export function oomAccounting(r: OomReport, pageSizeBytes: number): Accounting | undefined {
  const m = r.memInfo;
  if (!m || m.free === undefined) return undefined;
  const page = pageSizeBytes;
  const managedKB = r.zones.reduce((s, z) => s + (z.kB.managed ?? 0), 0);
  const memTotal =
    r.ramPages !== undefined && r.reservedPages !== undefined
      ? (r.ramPages - r.reservedPages) * page
      : managedKB > 0
        ? managedKB * KIB
        : undefined;
  if (memTotal === undefined) return undefined;
  const v = (k: string) => m[k] ?? 0;
  const shmem = v('shmem');
  const anonLru = v('active_anon') + v('inactive_anon') + v('isolated_anon');
  const fileLru = v('active_file') + v('inactive_file') + v('isolated_file') + v('unevictable');
  // Kernel stacks: per node since 4.8, per zone before.
  const stackKB = r.nodes.some((n) => n.kB.kernel_stack !== undefined)
    ? r.nodes.reduce((s, n) => s + (n.kB.kernel_stack ?? 0), 0)
    : r.zones.reduce((s, z) => s + (z.kB.kernel_stack ?? 0), 0);
  const bytes: Record<string, number | undefined> = {
    MemTotal: memTotal,
    MemFree: v('free') * page,
    AnonPages: Math.max(0, anonLru - shmem) * page,
    Shmem: shmem * page,
    Buffers: 0,
    Cached: (fileLru + shmem) * page,
    SReclaimable: v('slab_reclaimable') * page,
    SUnreclaim: v('slab_unreclaimable') * page,
    KernelStack: stackKB * KIB,
    PageTables: v('pagetables') * page,
    // Not printed: left in `unaccounted`, said so by the presenter.
    VmallocUsed: 0,
  };
  if (m.sec_pagetables !== undefined) bytes.SecPageTables = m.sec_pagetables * page;
  if (m.bounce) bytes.Bounce = m.bounce * page;
  if (r.hugepages.length) bytes.Hugetlb = r.hugepages.reduce((s, h) => s + h.total * h.sizeKB * KIB, 0);
  const zones = m.free_pcp !== undefined ? { pcpFreeBytes: m.free_pcp * page } : undefined;
  return computeAccounting({ bytes, counts: {} }, undefined, page, zones);
}

/** The total the kernel scales oom_score_adj by: RAM + swap, or the cgroup's limit. */
function badnessTotalPages(r: OomReport, scope: OomScope, page: number): number | undefined {
  if (scope === 'memcg') {
    const lim = r.memcg?.memory?.limitKB;
    return lim === undefined ? undefined : Math.floor((lim * KIB) / page);
  }
  if (r.ramPages === undefined || r.reservedPages === undefined) return undefined;
  return r.ramPages - r.reservedPages + Math.floor(((r.totalSwapKB ?? 0) * KIB) / page);
}

/** oom_badness (mm/oom_kill.c) for every row of the task table. */
export function rankTasks(
  tasks: readonly OomTask[],
  totalPages: number | undefined,
  page: number,
): RankedTask[] {
  const ranked = tasks.map((t): RankedTask => {
    // Integer arithmetic as the kernel's: pgtables_bytes / PAGE_SIZE, adj *= totalpages / 1000.
    const pgtablesPages =
      t.pgtablesBytes !== undefined ? Math.floor(t.pgtablesBytes / page) : (t.nrPtes ?? 0) + (t.nrPmds ?? 0);
    let points = t.rssPages + t.swapents + pgtablesPages;
    // Before 4.17 root's processes got 3% off; tables with nr_ptes (before 4.15) are that old.
    if (t.nrPtes !== undefined && t.uid === 0) points -= Math.floor((points * 3) / 100);
    const adj = totalPages === undefined ? 0 : t.oomScoreAdj * Math.floor(totalPages / 1000);
    return {
      pid: t.pid,
      name: t.name,
      uid: t.uid,
      rssBytes: t.rssPages * page,
      swapBytes: t.swapents * page,
      pgtablesBytes: t.pgtablesBytes ?? ((t.nrPtes ?? 0) + (t.nrPmds ?? 0)) * page,
      oomScoreAdj: t.oomScoreAdj,
      badnessPages: points + adj,
      unkillable: t.oomScoreAdj === -1000,
    };
  });
  return ranked.filter((t) => !t.unkillable).sort((a, b) => b.badnessPages - a.badnessPages || a.pid - b.pid);
}

function scopeOf(r: OomReport): OomScope {
  const c = r.constraint?.constraint;
  if (c === 'CONSTRAINT_MEMCG' || r.memcg !== undefined) return 'memcg';
  if (c === 'CONSTRAINT_CPUSET') return 'cpuset';
  if (c === 'CONSTRAINT_MEMORY_POLICY') return 'mempolicy';
  return 'global';
}

function memcgPath(r: OomReport): string | undefined {
  return r.constraint?.oomMemcg ?? r.memcg?.limitOf ?? r.memcg?.path;
}

function frameName(f: Frame): string {
  return f.module ? `${f.func} [${f.module}]` : f.func;
}

function requestOf(r: OomReport, page: number): OomRequest | undefined {
  const t = r.trigger;
  if (!t) return undefined;
  const pages = t.order >= 0 ? 2 ** t.order : 0;
  const flags = (t.gfpFlags ?? []).map((name) => {
    const meaning = GFP_WORDS[name];
    return meaning === undefined ? { name } : { name, meaning };
  });
  const trace = r.callTrace.filter((f) => !OOM_MACHINERY.test(f.func));
  const fault = r.callTrace.some((f) =>
    /^(?:handle_mm_fault|__handle_mm_fault|exc_page_fault|do_page_fault)$/.test(f.func),
  );
  const culprit = culpritFrame(trace);
  const site = fault ? 'a page fault' : culprit ? frameName(culprit) : undefined;
  const size =
    t.order < 0
      ? 'no allocation (a forced OOM: sysrq-f)'
      : t.order === 0
        ? `one page (order 0, ${formatBytes(page)})`
        : `${pages} contiguous pages (order ${t.order}, ${formatBytes(pages * page)})`;
  const what =
    t.gfpFlags === undefined
      ? `gfp_mask 0x${t.gfpMask.toString(16)} (this kernel prints no flag names: before 4.5)`
      : t.gfpMask === 0
        ? 'gfp_mask 0 (no allocation context: a page fault that failed earlier)'
        : (flags[0]?.meaning ?? t.gfpFlags.join('|'));
  const from = [
    site === 'a page fault' ? `in a page fault of ${t.comm}` : site ? `from ${site}` : undefined,
    r.workqueue ? `(work item ${r.workqueue.replace(/^\S+\s+/, '')})` : undefined,
  ]
    .filter(Boolean)
    .join(' ');
  const req: OomRequest = {
    comm: t.comm,
    order: t.order,
    pages,
    bytes: pages * page,
    gfpMask: t.gfpMask,
    gfpFlags: flags,
    summary: `${t.comm}${r.task ? ` (pid ${r.task.pid})` : ''} asked for ${size}, ${what}${from ? `, ${from}` : ''}`,
  };
  if (r.task) req.pid = r.task.pid;
  if (site) req.site = site;
  if (r.workqueue) req.workqueue = r.workqueue;
  return req;
}

function victimOf(r: OomReport, k: OomKill, ranked: RankedTask[]): OomVictim {
  const v: OomVictim = {
    pid: k.pid,
    comm: k.comm,
    anonRssBytes: k.anonRssKB * KIB,
    fileRssBytes: k.fileRssKB * KIB,
    freedBytes: (k.anonRssKB + (k.shmemRssKB ?? 0)) * KIB,
    why: '',
  };
  if (k.uid !== undefined) v.uid = k.uid;
  if (k.shmemRssKB !== undefined) v.shmemRssBytes = k.shmemRssKB * KIB;
  if (k.pgtablesKB !== undefined) v.pgtablesBytes = k.pgtablesKB * KIB;
  if (k.oomScoreAdj !== undefined) v.oomScoreAdj = k.oomScoreAdj;
  if (r.reaped?.anonRssKB !== undefined) {
    v.reapedBytes =
      (k.anonRssKB - r.reaped.anonRssKB + (k.shmemRssKB ?? 0) - (r.reaped.shmemRssKB ?? 0)) * KIB;
  }
  const i = ranked.findIndex((t) => t.pid === k.pid);
  const adj = k.oomScoreAdj ?? ranked[i]?.oomScoreAdj;
  const adjText = adj ? `, oom_score_adj ${adj}` : '';
  if (r.chosen && r.chosen.pid !== k.pid) {
    v.why = `the kernel chose ${r.chosen.comm} (pid ${r.chosen.pid}, score ${r.chosen.score}) and killed its child ${k.comm} instead (before 5.3 a child with its own memory went first)`;
  } else if (ranked.length === 0) {
    v.why =
      r.tasks.length === 0 && r.taskColumns === undefined
        ? `the task table was not printed (vm.oom_dump_tasks=0), so the choice cannot be checked${adjText}`
        : `the task table lists no killable task${adjText}`;
  } else if (i < 0) {
    v.why = `it is not in the task table (it may have been exiting or sharing another process's memory)${adjText}`;
  } else {
    const t = ranked[i]!;
    // Equal badness: the kernel keeps the first it met; ties are not a misranking.
    const above = ranked.filter((x) => x.badnessPages > t.badnessPages).length;
    const tied = ranked.filter((x) => x.badnessPages === t.badnessPages).length - 1;
    v.rank = above;
    v.badnessPages = t.badnessPages;
    const parts = `rss ${formatBytes(t.rssBytes)} + swap ${formatBytes(t.swapBytes)} + page tables ${formatBytes(t.pgtablesBytes)}${adjText}`;
    const of = `${ranked.length} killable task${ranked.length === 1 ? '' : 's'}`;
    if (above === 0) {
      v.why = `the largest oom badness of the ${of}: ${parts} = ${t.badnessPages} pages${tied ? ` (tied with ${tied} other${tied === 1 ? '' : 's'})` : ''}`;
    } else {
      const top = ranked[0]!;
      v.why = `badness ${t.badnessPages} pages (${parts}), ${above + 1}. of the ${of}; ${top.name} (pid ${top.pid}) scored ${top.badnessPages}: it may have been exiting, already a victim, or its memory shared with an unkillable task`;
    }
  }
  if (k.score !== undefined) v.why += ` (the kernel's score: ${k.score} of 1000)`;
  return v;
}

/** memory.stat parts, from 6.x/5.x v2 names, v1 names, or 4.x per-cgroup lines. */
function memcgSummary(r: OomReport): OomMemcgSummary | undefined {
  const m = r.memcg;
  if (!m) return undefined;
  const out: OomMemcgSummary = {};
  const path = memcgPath(r);
  if (path !== undefined) out.path = path;
  if (m.memory) {
    out.usageBytes = m.memory.usageKB * KIB;
    out.limitBytes = m.memory.limitKB * KIB;
    out.failcnt = m.memory.failcnt;
  }
  if (m.swap) out.swapUsageBytes = m.swap.usageKB * KIB;
  // 4.x prints each cgroup's own (local) stats: add the children's.
  const all = [m.stats, ...m.children.map((c) => c.stats)];
  const sum = (...keys: string[]) => {
    let found = false;
    let total = 0;
    for (const s of all) {
      const k = keys.find((x) => s[x] !== undefined);
      if (k !== undefined) {
        found = true;
        total += s[k]!;
      }
    }
    return found ? total : undefined;
  };
  const anon = sum('anon', 'rss');
  const file = sum('file', 'cache');
  const shmem = sum('shmem');
  let kernel = sum('kernel');
  if (kernel === undefined) {
    const parts = ['kernel_stack', 'slab', 'sock', 'pagetables', 'percpu', 'vmalloc'].map((k) => sum(k));
    if (parts.some((p) => p !== undefined)) kernel = parts.reduce<number>((s, p) => s + (p ?? 0), 0);
    else if (m.kmem) kernel = m.kmem.usageKB * KIB;
  }
  if (anon !== undefined) out.anonBytes = anon;
  if (file !== undefined) out.fileBytes = file;
  if (kernel !== undefined) out.kernelBytes = kernel;
  if (shmem !== undefined) out.shmemBytes = shmem;
  return out;
}

/**
 * A requested order > 0 that no zone could serve although the zones were above their
 * high watermark: free memory in pieces too small (fragmentation), not exhaustion.
 */
function fragmented(r: OomReport): { freeBytes: number } | undefined {
  const order = r.trigger?.order ?? 0;
  if (order <= 0 || r.freeAreas.length === 0 || r.zones.length === 0) return undefined;
  if (r.freeAreas.some((a) => a.blocks.slice(order).some((n) => n > 0))) return undefined;
  const freeKB = r.zones.reduce((s, z) => s + (z.kB.free ?? 0), 0);
  const highKB = r.zones.reduce((s, z) => s + (z.kB.high ?? 0), 0);
  return freeKB > highKB ? { freeBytes: freeKB * KIB } : undefined;
}

const PAGE_OWNER_STEP =
  'see page_owner: boot with page_owner=on, then `memsleuth page-owner top --by module` (or `memsleuth diff` of two snapshots) names the code holding the pages';

/** Explain one report. `pageSizeBytes` from the log (free areas) or 4096. */
export function explainOom(r: OomReport, index: number, pageSizeBytes = 4096): OomExplanation {
  const page = pageSizeBytes;
  const scope = scopeOf(r);
  const path = memcgPath(r);
  const constraint =
    scope === 'memcg'
      ? `memory cgroup ${path ?? '(path not printed)'} reached its limit; the rest of the machine was not out of memory`
      : scope === 'cpuset'
        ? `cpuset ${r.constraint?.cpuset ?? ''} (mems_allowed=${r.constraint?.memsAllowed ?? '?'}): only its memory nodes were full`
        : scope === 'mempolicy'
          ? `a memory policy (nodemask=${r.constraint?.nodemask ?? '?'}): only the allowed nodes were full`
          : 'system-wide: the whole machine was out of memory';
  const total = badnessTotalPages(r, scope, page);
  const ranked = rankTasks(r.tasks, total, page);
  const ex: OomExplanation = {
    index,
    line: r.line,
    scope,
    constraint,
    candidates: ranked.slice(0, 5),
    taskCount: r.tasks.length,
    allocations: [...r.allocations].sort((a, b) => b.bytes - a.bytes).slice(0, 5),
    slab: [...r.unreclaimableSlab].sort((a, b) => b.totalKB - a.totalKB).slice(0, 5),
    culprit: 'unknown',
    headline: '',
    notes: [],
    nextSteps: [],
    missing: [...r.missing],
  };
  if (r.seconds !== undefined) ex.seconds = r.seconds;
  const req = requestOf(r, page);
  if (req) ex.request = req;
  if (r.killed) ex.victim = victimOf(r, r.killed, ranked);
  const acc = scope === 'memcg' ? undefined : oomAccounting(r, page);
  if (acc) ex.accounting = acc;
  const mc = memcgSummary(r);
  if (mc) ex.memcg = mc;

  const victimText = ex.victim ? `${ex.victim.comm} (pid ${ex.victim.pid})` : undefined;
  const topAlloc = ex.allocations[0];
  const allocText = (a: OomAllocation) =>
    `${a.func}${a.module ? ` [${a.module}]` : ''} (${a.file}:${a.line}) held ${a.sizeText} in ${a.calls} allocations`;

  if (scope === 'memcg') {
    ex.culprit = 'memcg-limit';
    const usage =
      mc?.usageBytes !== undefined
        ? `${formatBytes(mc.usageBytes)} of its ${formatBytes(mc.limitBytes ?? 0)} limit`
        : 'its limit';
    const parts = [
      mc?.anonBytes !== undefined ? `anon ${formatBytes(mc.anonBytes)}` : undefined,
      mc?.fileBytes !== undefined ? `file ${formatBytes(mc.fileBytes)}` : undefined,
      mc?.kernelBytes !== undefined ? `kernel ${formatBytes(mc.kernelBytes)}` : undefined,
      mc?.shmemBytes ? `shmem ${formatBytes(mc.shmemBytes)}` : undefined,
    ].filter(Boolean);
    ex.headline = `memory cgroup ${path ?? '?'} used ${usage}${mc?.failcnt !== undefined ? ` (failcnt ${mc.failcnt})` : ''}${parts.length ? `: ${parts.join(', ')}` : ''}${victimText ? `; the OOM killer killed ${victimText} inside it` : ''}`;
    if (mc?.kernelBytes !== undefined && mc.anonBytes !== undefined && mc.kernelBytes > mc.anonBytes) {
      ex.notes.push(
        `most of the cgroup's memory is kernel memory charged to it (slab, stacks, sockets, page tables): ${formatBytes(mc.kernelBytes)}`,
      );
    }
    ex.nextSteps.push(
      `raise memory.max of ${path ?? 'the cgroup'} (cgroup v2; memory.limit_in_bytes on v1) if the workload needs more, or find what grows inside it: \`memsleuth ps\` and \`memsleuth record\` on its processes`,
    );
  } else if (acc) {
    const part = (n: string) => acc.parts.find((p) => p.name === n)?.bytes ?? 0;
    const slab = part('SReclaimable') + part('SUnreclaim');
    const hugetlb = part('Hugetlb');
    const kernelOther = acc.layers.kernel - slab - hugetlb;
    const groups: [OomCulprit, number][] = [
      ['user', acc.layers.user],
      ['shmem', acc.layers.shared],
      ['page-cache', acc.layers.cache],
      ['kernel-slab', slab],
      ['hugetlb', hugetlb],
      ['kernel-other', kernelOther],
      ['kernel-unaccounted', acc.unaccountedBytes],
    ];
    groups.sort((a, b) => b[1] - a[1]);
    const [kind, bytes] = groups[0]!;
    const of = `${formatBytes(bytes)} (${pct(bytes, acc.memTotalBytes)} of ${formatBytes(acc.memTotalBytes)})`;
    const frag = fragmented(r);
    if (frag) {
      ex.culprit = 'fragmentation';
      ex.headline = `fragmentation: ${formatBytes(frag.freeBytes)} was free but no block of order ${r.trigger?.order} was left${r.compactionDisabled ? ' (compaction is not built into this kernel)' : ''}`;
      ex.nextSteps.push(
        'avoid high-order allocations, or enable compaction (CONFIG_COMPACTION) and vm.extfrag_threshold tuning',
      );
    } else if (kind === 'kernel-unaccounted') {
      ex.culprit = kind;
      ex.headline = `the kernel held ${of} that no counter accounts for: a driver or module taking pages straight from the buddy allocator`;
      if (topAlloc && topAlloc.bytes >= bytes * 0.5) {
        ex.headline += `; the largest allocation site, ${allocText(topAlloc)}`;
      } else if (r.workqueue || req?.site) {
        const site = req?.site && req.site !== 'a page fault' ? req.site : undefined;
        if (site) ex.notes.push(`the allocation that failed came from ${site}: a suspect, not a proof`);
      }
      ex.notes.push(
        'vmalloc, per-CPU and zsmalloc memory are not printed in an OOM report: they are in this remainder too (`memsleuth report` on a live machine separates them)',
      );
      ex.nextSteps.push(PAGE_OWNER_STEP);
    } else if (kind === 'kernel-slab') {
      ex.culprit = kind;
      const big = ex.slab[0];
      ex.headline = `the kernel's slab held ${of}${big ? `; the largest unreclaimable cache: ${big.name} ${formatBytes(big.totalKB * KIB)}` : ''}`;
      ex.nextSteps.push(
        'find the cache and its callers: `memsleuth slab top`, `memsleuth slab traces` (boot with slub_debug=U), `memsleuth kmemleak report`',
      );
    } else if (kind === 'user') {
      ex.culprit = kind;
      const top = ranked[0];
      ex.headline = `user space: processes held ${of} of anonymous memory${top ? `; the largest, ${top.name} (pid ${top.pid}), had ${formatBytes(top.rssBytes)} resident` : ''}`;
      ex.nextSteps.push(
        'watch the process grow: `memsleuth record` then `memsleuth leaks`, or `memsleuth ps` / `memsleuth pmap PID`',
      );
    } else if (kind === 'shmem') {
      ex.culprit = kind;
      ex.headline = `shared memory (tmpfs, /dev/shm, SysV shm, memfd) held ${of}: killing a process frees it only if it held the last reference`;
      ex.nextSteps.push('look at tmpfs mounts (`df -t tmpfs`), /dev/shm and `ipcs -m`');
    } else if (kind === 'hugetlb') {
      ex.culprit = kind;
      ex.headline = `preallocated huge pages held ${of}: they are never given back to the rest of the system`;
      ex.nextSteps.push('lower vm.nr_hugepages (or the hugepages= boot option)');
    } else if (kind === 'page-cache') {
      ex.culprit = kind;
      ex.headline = `page cache held ${of} that could not be reclaimed (dirty, under writeback, mlocked or unevictable)`;
      ex.nextSteps.push('check Dirty/Writeback in /proc/meminfo and mlocked mappings (`memsleuth pmap PID`)');
    } else {
      ex.culprit = kind;
      ex.headline = `kernel stacks and page tables held ${of}`;
      ex.nextSteps.push('many threads or processes: count them (`memsleuth ps`)');
    }
    if (ex.victim && bytes > 0 && ex.victim.freedBytes < bytes * 0.1 && ex.culprit !== 'user') {
      ex.notes.push(
        `killing ${victimText} freed only about ${formatBytes(ex.victim.freedBytes)}: the memory is held elsewhere, so the next allocation fails again`,
      );
    }
  } else {
    ex.headline = r.killed
      ? `${victimText} was killed; the report carries no Mem-Info to say what held the memory`
      : 'the report carries no Mem-Info to say what held the memory';
  }

  if (r.noKillableProcesses) {
    ex.notes.push(
      r.panic
        ? `no killable process was left, and the kernel panicked: "${r.panic}"`
        : 'no killable process was left',
    );
  } else if (r.panic) {
    ex.notes.push(`the kernel panicked: "${r.panic}" (vm.panic_on_oom)`);
  }
  if (r.trigger && r.trigger.oomScoreAdj === -1000) {
    ex.notes.push(
      `${r.trigger.comm}, which asked for the memory, has oom_score_adj -1000: it is never killed itself`,
    );
  }
  return ex;
}

/** Explain every report of a log. */
export function explainOomLog(log: OomLog): OomExplanation[] {
  const page = log.pageSizeBytes ?? 4096;
  return log.reports.map((r, i) => explainOom(r, i + 1, page));
}
