/**
 * OOM-killer reports in a kernel log: every report, typed, across kernel versions.
 *
 * A report is what mm/oom_kill.c dump_header() and oom_kill_process() print, in order:
 *
 *   <comm> invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0
 *   <comm> cpuset=/ mems_allowed=0                           (4.x: its own line; 5.0+: in oom-kill:)
 *   CPU: 0 UID: 0 PID: 40 Comm: msl_hog Not tainted 6.12.117 #1   (UID: since 6.10)
 *   Hardware name: ... / Workqueue: events msl_work_fn [msl_leaky]
 *   Call Trace: / <TASK> / frames / register lines / </TASK>
 *   Mem-Info: global counters in pages, `Node N ...` per-node kB counters (4.8+; zones before),
 *     per-zone lines, lowmem_reserve[], free areas per order, hugepages per node,
 *     N total pagecache pages, swap lines, N pages RAM / HighMem/MovableOnly / reserved / cma reserved
 *   Memory allocations: (6.10+, CONFIG_MEM_ALLOC_PROFILING): the top 10 allocation sites
 *   Unreclaimable slab info: (4.15+, when unreclaimable slab exceeds the LRU pages)
 *   or, for a memory cgroup: memory:/swap:/memory+swap:/kmem: usage, limit, failcnt;
 *     `Memory cgroup stats for /path:` then memory.stat lines (5.x+; 4.x: one line of key:NKB);
 *     4.x also `Task in /a killed as a result of limit of /b`
 *   Tasks state (memory values in pages): (4.19+) and the task table, whose columns changed:
 *     4.x-4.14 `[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name`
 *     4.15-6.8 `[  pid  ] ... rss pgtables_bytes swapents oom_score_adj name` (`[ pid ]` before 4.19)
 *     6.9+     `... rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name`
 *   oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,
 *     task_memcg=/,task=msl_hog,pid=40,uid=0                 (5.0+)
 *   4.x: `Out of memory: Kill process 40 (msl_hog) score 912 or sacrifice child`, then
 *   `[Out of memory: ]Killed process 40 (msl_hog) total-vm:...kB, anon-rss:...kB, file-rss:...kB,
 *     shmem-rss:...kB[, UID:0 pgtables:...kB oom_score_adj:0]` (shmem-rss 4.5+, the message
 *     prefix and UID/pgtables/oom_score_adj 5.x+; "Memory cgroup out of memory" for a memcg)
 *   oom_reaper: reaped process 40 (msl_hog), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB (4.6+)
 *   or `Out of memory and no killable processes...` and `Kernel panic - not syncing: ...`
 *
 * Lines may carry any of the prefixes kernel logs get: dmesg `[  123.456789] ` (and
 * `[T123]` caller ids), `dmesg -T`, `dmesg -x` `kern  :warn  : `, raw `<4>`, /dev/kmsg
 * `6,1234,5678,-;`, syslog and journalctl `Dec  2 03:04:17 host kernel: `. Other kernel
 * messages may be interleaved with a report and are skipped. A line that starts like a
 * report line but does not parse is an error naming the line: never a silently partial
 * report.
 */
import { parseError } from '../model/errors.js';
import { type Frame, parseFrame } from '../model/frame.js';
import { numberedLines, type ParseOptions } from './text.js';

/** One line of a kernel log without its prefixes. */
export interface LogLine {
  /** The message, with its own leading spaces (trace frames keep theirs). */
  text: string;
  /** Seconds since boot, when the prefix carried it. */
  seconds?: number;
}

// /dev/kmsg: `<prio>,<seq>,<usec>,<flags>[,more];message` (Documentation/ABI/testing/dev-kmsg).
const KMSG = /^(\d+),(\d+),(\d+),[^;]*;/;
// Continuation lines of a /dev/kmsg record's dictionary: ` SUBSYSTEM=...`, ` DEVICE=...`.
const KMSG_DICT = /^ [A-Z_]+=/;
// syslog (rsyslog traditional and RFC 3339) and journalctl (short, short-precise, short-iso).
const SYSLOG =
  /^(?:<\d+>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) \S+ kernel: ?/;
// `dmesg -x`: facility and level.
const DMESG_X = /^[a-z]+\s*:[a-z]+\s*: /;
const LEVEL = /^<\d+>/;
const TIMESTAMP = /^\[\s*(\d+)\.(\d+)\] ?/;
// `dmesg -T` / `--time-format ctime`.
const CTIME = /^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?/;
// CONFIG_PRINTK_CALLER: `[ T1234]` or `[   C1]`, right after the timestamp.
const CALLER = /^\[\s*[TC]\d+\] ?/;
// `journalctl -o short-monotonic`: `[  123.456789] host kernel: message`.
const JOURNAL_HOST = /^\S+ kernel: ?/;

/**
 * Strip the prefixes a kernel log line may carry. Returns undefined for a /dev/kmsg
 * dictionary line (only when `kmsg` is set: such lines follow kmsg records).
 */
export function stripLogPrefix(raw: string, kmsg = false): LogLine | undefined {
  let text = raw;
  let seconds: number | undefined;
  const k = KMSG.exec(text);
  if (k) {
    seconds = Number(k[3]) / 1e6;
    text = text.slice(k[0].length);
  } else if (kmsg && KMSG_DICT.test(text)) {
    return undefined;
  } else {
    const s = SYSLOG.exec(text);
    if (s) text = text.slice(s[0].length);
    else {
      const x = DMESG_X.exec(text);
      if (x) text = text.slice(x[0].length);
    }
    const l = LEVEL.exec(text);
    if (l) text = text.slice(l[0].length);
  }
  const t = TIMESTAMP.exec(text);
  if (t) {
    seconds ??= Number(`${t[1]}.${t[2]}`);
    text = text.slice(t[0].length);
    const j = JOURNAL_HOST.exec(text);
    if (j && !text.startsWith(' ')) text = text.slice(j[0].length);
  } else {
    const c = CTIME.exec(text);
    if (c) text = text.slice(c[0].length);
  }
  const caller = CALLER.exec(text);
  if (caller) text = text.slice(caller[0].length);
  return seconds === undefined ? { text } : { text, seconds };
}

/** The `invoked oom-killer` line. */
export interface OomTrigger {
  /** The task whose allocation failed. */
  comm: string;
  gfpMask: number;
  /** The flag names the kernel printed (4.5+ `%pGg`), e.g. `GFP_KERNEL`, `__GFP_COMP`. */
  gfpFlags?: string[];
  /** 2^order pages were asked for; -1 for a forced OOM (sysrq-f). */
  order: number;
  oomScoreAdj: number;
  /** 4.9-4.19 print the nodemask in the header. */
  nodemask?: string;
}

/** The `CPU: N PID: N Comm: ...` line of the stack dump. */
export interface OomTaskLine {
  cpu: number;
  pid: number;
  uid?: number;
  comm: string;
  tainted: boolean;
  kernelRelease?: string;
}

/** `oom-kill:constraint=...` (5.0+), or its 4.x parts. */
export interface OomConstraint {
  /** CONSTRAINT_NONE, CONSTRAINT_CPUSET, CONSTRAINT_MEMORY_POLICY or CONSTRAINT_MEMCG. */
  constraint?: string;
  nodemask?: string;
  cpuset?: string;
  memsAllowed?: string;
  /** The cgroup whose limit was hit (`oom_memcg=`); absent for a global OOM. */
  oomMemcg?: string;
  /** The victim's memory cgroup. */
  taskMemcg?: string;
  task?: string;
  pid?: number;
  uid?: number;
}

/** A per-node (4.8+) or per-zone line: its `key:NkB` counters. */
export interface OomNodeCounters {
  node: number;
  kB: Record<string, number>;
  allUnreclaimable?: boolean;
}

export interface OomZone {
  /** Absent on kernels without CONFIG_NUMA, which print no `Node N ` before zones. */
  node?: number;
  zone: string;
  /** `free`, `min`, `low`, `high`, `managed`, `present`, `free_pcp`, ... in kB. */
  kB: Record<string, number>;
  /** `pages_scanned` (4.x) and other plain counters. */
  counts: Record<string, number>;
  allUnreclaimable?: boolean;
  lowmemReserve?: number[];
}

/** `Node 0 DMA32: 7*4kB (UM) 4*8kB (M) ... = 4348kB`. */
export interface OomFreeArea {
  node?: number;
  zone: string;
  /** Free blocks per order. */
  blocks: number[];
  /** Block size per order in kB (order 0 is the page size). */
  blockKB: number[];
  /** Migrate types with free blocks per order (`UMEHCI`), empty when none. */
  types: string[];
  totalKB: number;
}

export interface OomHugepages {
  node: number;
  total: number;
  free: number;
  surplus: number;
  sizeKB: number;
}

/** One row of `Unreclaimable slab info:`. */
export interface OomSlabCache {
  name: string;
  usedKB: number;
  totalKB: number;
}

/** One row of `Memory allocations:` (6.10+): an allocation site from /proc/allocinfo. */
export interface OomAllocation {
  /** From the kernel's rounded `string_get_size` text, e.g. `193 MiB`. */
  bytes: number;
  sizeText: string;
  calls: number;
  file: string;
  line: number;
  module?: string;
  func: string;
}

/** `memory: usage NkB, limit NkB, failcnt N` and its swap / memory+swap / kmem siblings. */
export interface OomCounter {
  usageKB: number;
  limitKB: number;
  failcnt: number;
}

export interface OomMemcg {
  /** From `Memory cgroup stats for PATH:`. */
  path?: string;
  /** 4.x: `Task in A killed as a result of limit of B`. */
  taskIn?: string;
  limitOf?: string;
  memory?: OomCounter;
  swap?: OomCounter;
  memsw?: OomCounter;
  kmem?: OomCounter;
  /** memory.stat lines (5.x+: bytes, events as counts) or 4.x `key:NKB` (converted to bytes). */
  stats: Record<string, number>;
  /** 4.x prints the stats of every cgroup below the one at its limit: the others. */
  children: { path: string; stats: Record<string, number> }[];
}

/** A row of the task table. Memory values are pages, except pgtables in bytes. */
export interface OomTask {
  pid: number;
  uid: number;
  tgid: number;
  totalVmPages: number;
  rssPages: number;
  rssAnonPages?: number;
  rssFilePages?: number;
  rssShmemPages?: number;
  pgtablesBytes?: number;
  /** 4.x before 4.15: page-table pages. */
  nrPtes?: number;
  nrPmds?: number;
  swapents: number;
  oomScoreAdj: number;
  name: string;
  line: number;
}

/** `Killed process` (and 4.x's `Kill process ... score N or sacrifice child`). */
export interface OomKill {
  /** `Out of memory`, `Memory cgroup out of memory`, `Out of memory (oom_kill_allocating_task)`. */
  message?: string;
  pid: number;
  comm: string;
  totalVmKB: number;
  anonRssKB: number;
  fileRssKB: number;
  shmemRssKB?: number;
  uid?: number;
  pgtablesKB?: number;
  oomScoreAdj?: number;
  /** 4.x: the badness the kernel computed (0..1000). */
  score?: number;
  line: number;
}

export interface OomReaped {
  pid: number;
  comm: string;
  /** Absent for `oom_reaper: unable to reap`. */
  anonRssKB?: number;
  fileRssKB?: number;
  shmemRssKB?: number;
  line: number;
}

export interface OomReport {
  /** 1-based lines in the input: the first and last line that belong to the report. */
  line: number;
  endLine: number;
  /** Seconds since boot of the first line, when the log has timestamps. */
  seconds?: number;
  /** Parts of a full report that are missing (the log began mid-report, or was rate-limited). */
  missing: string[];
  trigger?: OomTrigger;
  task?: OomTaskLine;
  hardware?: string;
  /** `Workqueue: events msl_work_fn [msl_leaky]`: the work item that was running. */
  workqueue?: string;
  /** Reliable frames of the call trace (`? ` guesses left out), innermost first. */
  callTrace: Frame[];
  compactionDisabled?: boolean;
  constraint?: OomConstraint;
  /** Mem-Info global counters, in pages (`active_anon`, ..., `free`, `free_pcp`, `free_cma`). */
  memInfo?: Record<string, number>;
  nodes: OomNodeCounters[];
  zones: OomZone[];
  freeAreas: OomFreeArea[];
  hugepages: OomHugepages[];
  pagecachePages?: number;
  swapCachePages?: number;
  freeSwapKB?: number;
  totalSwapKB?: number;
  ramPages?: number;
  highmemPages?: number;
  reservedPages?: number;
  cmaReservedPages?: number;
  hwpoisonedPages?: number;
  unreclaimableSlab: OomSlabCache[];
  allocations: OomAllocation[];
  memcg?: OomMemcg;
  tasks: OomTask[];
  /** Column names of the task table as printed (without `[ pid ]`). */
  taskColumns?: string[];
  /** 4.x `Kill process N (comm) score S or sacrifice child`: the one chosen first. */
  chosen?: { pid: number; comm: string; score: number; message: string };
  killed?: OomKill;
  reaped?: OomReaped;
  noKillableProcesses?: boolean;
  /** `Kernel panic - not syncing: ...` right after the report. */
  panic?: string;
  /** Other kernel messages interleaved with the report (skipped). */
  interleavedLines: number;
}

export interface OomLog {
  reports: OomReport[];
  /** Lines read. */
  lines: number;
  /** Page size from the free-area lines (order 0 block), when present. */
  pageSizeBytes?: number;
}

type Section = 'none' | 'trace' | 'meminfo' | 'memcg-stats' | 'slab' | 'allocations' | 'tasks';

const HEADER =
  /^(.*) invoked oom-killer: gfp_mask=(0x[0-9a-fA-F]+|0)(?:\(([^)]*)\))?, (?:nodemask=(\S+), )?order=(-?\d+), oom_score_adj=(-?\d+)\s*$/;
const CPU_LINE =
  /^CPU: (\d+) (?:UID: (\d+) )?PID: (\d+) Comm: (.*?) (Not tainted|Tainted: [A-Z ]*?)\s*(\S+)? #/;
const CPU_START = /^CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: /;
const CPUSET_4X = /^(.*) cpuset=(\S*) mems_allowed=(\S*)\s*$/;
const CALL_TRACE = /^Call [Tt]race:\s*$/;
// Register dump and markers inside a call trace (x86 user-mode faults print RIP..R15, Code).
const TRACE_NOISE =
  /^(?:<\/?(?:TASK|IRQ|NMI|SOFTIRQ|EOI)>|(?:RIP|RSP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R\d+|Code|FS|GS|CS|DS|ES|CR0|CR2|CR3|CR4|DR0|DR3|DR6|PKRU|EIP|ESP|EAX|EBX|ECX|EDX|ESI|EDI|EBP|pc|lr|sp|x\d+|Exception stack|---\[ end trace)\b)/;
const KV = /([A-Za-z_()]+\??):\s?(-?\d+)(kB|KB)?(?=\s|$)/g;
const GLOBAL_COUNTERS = /^(?:[a-z_]+:\d+\s*)+$/;
const NODE_LINE = /^Node (\d+) (active_anon:.*)$/;
const ZONE_LINE = /^(?:Node (\d+) )?([A-Za-z0-9_]+) free:\d+kB /;
const LOWMEM = /^lowmem_reserve\[\]:((?:\s+-?\d+)*)\s*$/;
const FREE_AREA_START = /^(?:Node (\d+) )?([A-Za-z0-9_]+): (?=\d+\*\d+kB)/;
const FREE_AREA_ITEM = /^(\d+)\*(\d+)kB (?:\(([A-Z]*)\) )?/;
const FREE_AREA_END = /^= (\d+)kB\s*$/;
const HUGEPAGES =
  /^Node (\d+) hugepages_total=(\d+) hugepages_free=(\d+) hugepages_surp=(\d+) hugepages_size=(\d+)kB\s*$/;
const PAGES_LINE =
  /^(\d+) (total pagecache pages|pages in swap cache|pages RAM|pages HighMem\/MovableOnly|pages reserved|pages cma reserved|pages hwpoisoned|pages in pagetable cache|pages shared|pages non-shared)\s*$/;
const SWAP_KB = /^(Free|Total) swap\s+= (-?\d+)kB\s*$/;
const SLAB_HEADER = /^Name\s+Used\s+Total\s*$/;
const SLAB_ROW = /^(\S+)\s+(\d+)KB\s+(\d+)KB\s*$/;
const ALLOC_ROW = /^\s*(\d+(?:\.\d+)?) ([KMGTPE]?i?B)\s+(\d+) (\S+):(\d+)(?: \[(\S+)\])? func:(\S+)\s*$/;
const MEMCG_COUNTER = /^(memory|swap|memory\+swap|kmem): usage (\d+)kB, limit (\d+)kB, failcnt (\d+)\s*$/;
const MEMCG_COUNTER_START = /^(?:memory|swap|memory\+swap|kmem): usage /;
const MEMCG_STATS = /^Memory cgroup stats for (.*?):(.*)$/;
const MEMCG_STAT_LINE = /^([a-z_]+) (\d+)\s*$/;
const TASK_IN = /^Task in (.*) killed as a result of limit of (.*?)\s*$/;
const LIMIT_REACHED = /^Memory limit reached of cgroup (.*?)\s*$/;
const TASKS_HEADER = /^\[\s*pid\s*\]\s+(.*?)\s*$/;
const TASK_ROW_START = /^\[\s*\d+\]/;
const CONSTRAINT = /^oom-kill:(.*)$/;
const KILLED =
  /^(?:(.+?): )?Killed process (\d+) \((.*)\),? total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB(?:, shmem-rss:(\d+)kB)?(?:,? UID:(\d+) pgtables:(\d+)kB oom_score_adj:(-?\d+))?\s*$/;
const KILLED_START = /(?:^|: )Killed process \d+ /;
const CHOSEN = /^(.+?): Kill process (\d+) \((.*)\) score (\d+) or sacrifice child\s*$/;
const REAPED =
  /^oom_reaper: reaped process (\d+) \((.*)\), now anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB\s*$/;
const UNABLE_TO_REAP = /^oom_reaper: unable to reap pid:(\d+) \((.*)\)\s*$/;
const NO_KILLABLE = /^Out of memory and no killable processes\.\.\./;
const PANIC = /^Kernel panic - not syncing: (.*?)\s*$/;
const UNITS: Record<string, number> = {
  B: 1,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
  PiB: 2 ** 50,
};

const EXPECT = {
  header: '"<comm> invoked oom-killer: gfp_mask=0x<hex>(<flags>), order=<n>, oom_score_adj=<n>"',
  killed:
    '"[<message>: ]Killed process <pid> (<comm>) total-vm:<n>kB, anon-rss:<n>kB, file-rss:<n>kB[, shmem-rss:<n>kB][, UID:<n> pgtables:<n>kB oom_score_adj:<n>]"',
  chosen: '"<message>: Kill process <pid> (<comm>) score <n> or sacrifice child"',
  reaped: '"oom_reaper: reaped process <pid> (<comm>), now anon-rss:<n>kB, file-rss:<n>kB, shmem-rss:<n>kB"',
  cpu: '"CPU: <n> [UID: <n> ]PID: <n> Comm: <comm> Not tainted|Tainted: <flags> <release> #<n>"',
  constraint: '"oom-kill:constraint=<c>,nodemask=<list>,...,task=<comm>,pid=<n>,uid=<n>"',
  memcg: '"<memory|swap|memory+swap|kmem>: usage <n>kB, limit <n>kB, failcnt <n>"',
  freeArea: '"[Node <n> ]<zone>: <n>*<size>kB [(<types>)] ... = <n>kB"',
  zone: '"[Node <n> ]<zone> free:<n>kB min:<n>kB ..."',
  task: (cols: number) => `a task row "[<pid>]" with ${cols} numbers and a name`,
  alloc: '"<size> <unit> <calls> <file>:<line> [<module>] func:<function>"',
};

function newReport(line: number, seconds: number | undefined): OomReport {
  const r: OomReport = {
    line,
    endLine: line,
    missing: [],
    callTrace: [],
    nodes: [],
    zones: [],
    freeAreas: [],
    hugepages: [],
    unreclaimableSlab: [],
    allocations: [],
    tasks: [],
    interleavedLines: 0,
  };
  if (seconds !== undefined) r.seconds = seconds;
  return r;
}

/** `key:NkB` / `key:N` / `key: NkB` counters of a node or zone line. */
function counters(text: string): { kB: Record<string, number>; counts: Record<string, number> } {
  const kB: Record<string, number> = {};
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(KV)) {
    if (m[3] !== undefined) kB[m[1]!] = Number(m[2]);
    else counts[m[1]!] = Number(m[2]);
  }
  return { kB, counts };
}

function allUnreclaimable(text: string): boolean | undefined {
  const m = /all_unreclaimable\? (yes|no)/.exec(text);
  return m ? m[1] === 'yes' : undefined;
}

/** Split `oom-kill:` fields on the commas that start a known key (nodemask lists have commas too). */
function parseConstraint(body: string, file: string, line: number, raw: string): OomConstraint {
  // The victim's comm may hold anything: take task/pid/uid from the end.
  const tail = /,task=(.*),pid=(\d+),uid=(\d+)\s*$/.exec(body);
  if (!tail) throw parseError(file, line, EXPECT.constraint, raw);
  const head = body.slice(0, tail.index);
  const c: OomConstraint = { task: tail[1]!, pid: Number(tail[2]), uid: Number(tail[3]) };
  const parts = head.split(
    /,(?=(?:constraint|nodemask|cpuset|mems_allowed|oom_memcg|task_memcg)=|global_oom\b)/,
  );
  for (const p of parts) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    const value = eq < 0 ? '' : p.slice(eq + 1);
    if (key === 'constraint') c.constraint = value;
    else if (key === 'nodemask') c.nodemask = value;
    else if (key === 'cpuset') c.cpuset = value;
    else if (key === 'mems_allowed') c.memsAllowed = value;
    else if (key === 'oom_memcg') c.oomMemcg = value;
    else if (key === 'task_memcg') c.taskMemcg = value;
    else if (key === 'global_oom') continue;
    else throw parseError(file, line, EXPECT.constraint, raw);
  }
  if (c.constraint === undefined) throw parseError(file, line, EXPECT.constraint, raw);
  return c;
}

function parseFreeArea(text: string, file: string, line: number): OomFreeArea {
  const start = FREE_AREA_START.exec(text)!;
  let rest = text.slice(start[0].length);
  const area: OomFreeArea = { zone: start[2]!, blocks: [], blockKB: [], types: [], totalKB: 0 };
  if (start[1] !== undefined) area.node = Number(start[1]);
  for (;;) {
    const item = FREE_AREA_ITEM.exec(rest);
    if (!item) break;
    area.blocks.push(Number(item[1]));
    area.blockKB.push(Number(item[2]));
    area.types.push(item[3] ?? '');
    rest = rest.slice(item[0].length);
  }
  const end = FREE_AREA_END.exec(rest);
  if (!end) throw parseError(file, line, EXPECT.freeArea, text);
  area.totalKB = Number(end[1]);
  return area;
}

/** Parse the task table's header into the numeric columns between pid and name. */
function taskColumns(rest: string): string[] {
  const cols = rest.split(/\s+/);
  if (cols[cols.length - 1] === 'name') cols.pop();
  return cols;
}

const TASK_ROWS = new Map<number, RegExp>();

function parseTaskRow(text: string, columns: string[], file: string, line: number): OomTask {
  let re = TASK_ROWS.get(columns.length);
  if (!re) {
    re = new RegExp(`^\\[\\s*(\\d+)\\]((?:\\s+-?\\d+){${columns.length}})\\s+(.*?)\\s*$`);
    TASK_ROWS.set(columns.length, re);
  }
  const m = re.exec(text);
  if (!m) throw parseError(file, line, EXPECT.task(columns.length), text);
  const values = m[2]!.trim().split(/\s+/).map(Number);
  const v: Record<string, number> = {};
  columns.forEach((c, i) => {
    v[c] = values[i]!;
  });
  const t: OomTask = {
    pid: Number(m[1]),
    uid: v.uid ?? 0,
    tgid: v.tgid ?? Number(m[1]),
    totalVmPages: v.total_vm ?? 0,
    rssPages: v.rss ?? 0,
    swapents: v.swapents ?? 0,
    oomScoreAdj: v.oom_score_adj ?? 0,
    name: m[3]!,
    line,
  };
  if (v.rss_anon !== undefined) t.rssAnonPages = v.rss_anon;
  if (v.rss_file !== undefined) t.rssFilePages = v.rss_file;
  if (v.rss_shmem !== undefined) t.rssShmemPages = v.rss_shmem;
  if (v.pgtables_bytes !== undefined) t.pgtablesBytes = v.pgtables_bytes;
  if (v.nr_ptes !== undefined) t.nrPtes = v.nr_ptes;
  if (v.nr_pmds !== undefined) t.nrPmds = v.nr_pmds;
  return t;
}

/** 4.x memcg stats on one line: ` cache:0KB rss:1024KB ...` (converted to bytes). */
function inlineStats(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/([a-z_]+):(\d+)KB/g)) out[m[1]!] = Number(m[2]) * 1024;
  return out;
}

/**
 * A line that means the same wherever it stands in a report. Returns the section it
 * opens (`same` when it opens none), or undefined for a line that is not part of a report.
 */
function standalone(cur: OomReport, t: string, file: string, line: number): Section | 'same' | undefined {
  if (CPU_START.test(t)) {
    const m = CPU_LINE.exec(t);
    if (!m) throw parseError(file, line, EXPECT.cpu, t);
    cur.task = { cpu: Number(m[1]), pid: Number(m[3]), comm: m[4]!, tainted: m[5] !== 'Not tainted' };
    if (m[2] !== undefined) cur.task.uid = Number(m[2]);
    if (m[6] !== undefined) cur.task.kernelRelease = m[6];
    return 'same';
  }
  if (t.startsWith('Hardware name: ')) {
    cur.hardware = t.slice('Hardware name: '.length);
    return 'same';
  }
  if (t.startsWith('Workqueue: ')) {
    cur.workqueue = t.slice('Workqueue: '.length);
    return 'same';
  }
  if (CALL_TRACE.test(t)) return 'trace';
  if (t === 'COMPACTION is disabled!!!') {
    cur.compactionDisabled = true;
    return 'same';
  }
  if (t === 'Mem-Info:') return 'meminfo';
  if (t === 'Unreclaimable slab info:') return 'slab';
  if (t === 'Memory allocations:') return 'allocations';
  if (t === 'Tasks state (memory values in pages):') return 'same';
  const node = NODE_LINE.exec(t);
  if (node) {
    const n: OomNodeCounters = { node: Number(node[1]), kB: counters(node[2]!).kB };
    const u = allUnreclaimable(t);
    if (u !== undefined) n.allUnreclaimable = u;
    cur.nodes.push(n);
    return 'same';
  }
  const huge = HUGEPAGES.exec(t);
  if (huge) {
    cur.hugepages.push({
      node: Number(huge[1]),
      total: Number(huge[2]),
      free: Number(huge[3]),
      surplus: Number(huge[4]),
      sizeKB: Number(huge[5]),
    });
    return 'same';
  }
  if (FREE_AREA_START.test(t)) {
    cur.freeAreas.push(parseFreeArea(t, file, line));
    return 'same';
  }
  const zone = ZONE_LINE.exec(t);
  if (zone) {
    const c = counters(t);
    if (c.kB.managed === undefined && c.kB.present === undefined)
      throw parseError(file, line, EXPECT.zone, t);
    const z: OomZone = { zone: zone[2]!, kB: c.kB, counts: c.counts };
    if (zone[1] !== undefined) z.node = Number(zone[1]);
    const u = allUnreclaimable(t);
    if (u !== undefined) z.allUnreclaimable = u;
    cur.zones.push(z);
    return 'same';
  }
  const lowmem = LOWMEM.exec(t);
  if (lowmem) {
    const z = cur.zones[cur.zones.length - 1];
    if (z) z.lowmemReserve = lowmem[1]!.trim() === '' ? [] : lowmem[1]!.trim().split(/\s+/).map(Number);
    return 'same';
  }
  const pages = PAGES_LINE.exec(t);
  if (pages) {
    const n = Number(pages[1]);
    const what = pages[2]!;
    if (what === 'total pagecache pages') cur.pagecachePages = n;
    else if (what === 'pages in swap cache') cur.swapCachePages = n;
    else if (what === 'pages RAM') cur.ramPages = n;
    else if (what === 'pages HighMem/MovableOnly') cur.highmemPages = n;
    else if (what === 'pages reserved') cur.reservedPages = n;
    else if (what === 'pages cma reserved') cur.cmaReservedPages = n;
    else if (what === 'pages hwpoisoned') cur.hwpoisonedPages = n;
    return 'same';
  }
  const swap = SWAP_KB.exec(t);
  if (swap) {
    if (swap[1] === 'Free') cur.freeSwapKB = Number(swap[2]);
    else cur.totalSwapKB = Number(swap[2]);
    return 'same';
  }
  if (t.startsWith('Swap cache stats: ')) return 'same';
  if (MEMCG_COUNTER_START.test(t)) {
    const m = MEMCG_COUNTER.exec(t);
    if (!m) throw parseError(file, line, EXPECT.memcg, t);
    cur.memcg ??= { stats: {}, children: [] };
    const counter = { usageKB: Number(m[2]), limitKB: Number(m[3]), failcnt: Number(m[4]) };
    if (m[1] === 'memory') cur.memcg.memory = counter;
    else if (m[1] === 'swap') cur.memcg.swap = counter;
    else if (m[1] === 'memory+swap') cur.memcg.memsw = counter;
    else cur.memcg.kmem = counter;
    return 'same';
  }
  const stats = MEMCG_STATS.exec(t);
  if (stats) {
    cur.memcg ??= { stats: {}, children: [] };
    const inline = stats[2]!.trim();
    if (cur.memcg.path === undefined) {
      cur.memcg.path = stats[1]!;
      if (inline === '') return 'memcg-stats';
      cur.memcg.stats = inlineStats(inline);
    } else {
      // 4.x: the stats of each cgroup below the one at its limit follow.
      cur.memcg.children.push({ path: stats[1]!, stats: inlineStats(inline) });
    }
    return 'same';
  }
  const taskIn = TASK_IN.exec(t);
  if (taskIn) {
    cur.memcg ??= { stats: {}, children: [] };
    cur.memcg.taskIn = taskIn[1]!;
    cur.memcg.limitOf = taskIn[2]!;
    return 'same';
  }
  const reached = LIMIT_REACHED.exec(t);
  if (reached) {
    cur.memcg ??= { stats: {}, children: [] };
    cur.memcg.limitOf = reached[1]!;
    return 'same';
  }
  const header = TASKS_HEADER.exec(t);
  if (header) {
    cur.taskColumns = taskColumns(header[1]!);
    return 'tasks';
  }
  const constraint = CONSTRAINT.exec(t);
  if (constraint) {
    cur.constraint = parseConstraint(constraint[1]!, file, line, t);
    return 'same';
  }
  const cpuset = CPUSET_4X.exec(t);
  if (cpuset && cur.constraint === undefined) {
    cur.constraint = { cpuset: cpuset[2]!, memsAllowed: cpuset[3]! };
    return 'same';
  }
  return undefined;
}

/**
 * Parse every OOM-killer report in a kernel log (dmesg, /dev/kmsg, syslog, journalctl,
 * a serial console). Returns no reports for a log without any.
 */
export function parseOomReports(text: string, opts: ParseOptions = {}): OomLog {
  const file = opts.file ?? 'kernel log';
  const raw = numberedLines(text);
  const kmsg = raw.some((l) => KMSG.test(l.text));
  // A saved /dev/kmsg keeps a multi-line record (5.x memcg stats) on one line, its newlines
  // escaped as \x0a: one line each, with the record's prefix.
  const lines = kmsg
    ? raw.flatMap((l) => {
        const k = KMSG.exec(l.text);
        if (!k || !l.text.includes('\\x0a')) return [l];
        return l.text
          .slice(k[0].length)
          .split('\\x0a')
          .filter((t, i, all) => t !== '' || i < all.length - 1)
          .map((t) => ({ text: `${k[0]}${t}`, line: l.line }));
      })
    : raw;
  const reports: OomReport[] = [];
  let r: OomReport | undefined;
  let section: Section = 'none';
  let columns: string[] = [];
  /** After the victim line: a report may still get its panic; nothing else. */
  let closed = false;

  const open = (line: number, seconds: number | undefined): OomReport => {
    const nr = newReport(line, seconds);
    reports.push(nr);
    r = nr;
    closed = false;
    section = 'none';
    return nr;
  };
  /** The report a body line belongs to, or undefined when no report is open. */
  const current = (): OomReport | undefined => (r && !closed ? r : undefined);

  for (const { text: rawText, line } of lines) {
    const stripped = stripLogPrefix(rawText, kmsg);
    if (!stripped) continue;
    const raw = stripped.text;
    const t = raw.trim();
    if (t === '') continue;

    // Lines that start or end a report, or attach to an earlier one, come first.
    if (t.includes(' invoked oom-killer: ')) {
      const m = HEADER.exec(t);
      if (!m) throw parseError(file, line, EXPECT.header, t);
      const nr = open(line, stripped.seconds);
      nr.trigger = {
        comm: m[1]!,
        gfpMask: Number.parseInt(m[2]!, 16),
        order: Number(m[5]),
        oomScoreAdj: Number(m[6]),
      };
      if (m[3] !== undefined) nr.trigger.gfpFlags = m[3] === '' ? [] : m[3].split('|');
      if (m[4] !== undefined) nr.trigger.nodemask = m[4];
      continue;
    }
    if (t.startsWith('oom_reaper: ')) {
      const m = REAPED.exec(t);
      const u = m ? undefined : UNABLE_TO_REAP.exec(t);
      if (!m && !u) throw parseError(file, line, EXPECT.reaped, t);
      const pid = Number((m ?? u)![1]);
      const target = [...reports].reverse().find((x) => x.killed?.pid === pid && !x.reaped);
      if (target) {
        target.reaped = m
          ? {
              pid,
              comm: m[2]!,
              anonRssKB: Number(m[3]),
              fileRssKB: Number(m[4]),
              shmemRssKB: Number(m[5]),
              line,
            }
          : { pid, comm: u![2]!, line };
      }
      continue;
    }
    if (t.includes(' Kill process ') && t.includes(' or sacrifice child')) {
      const chosen = CHOSEN.exec(t);
      if (!chosen) throw parseError(file, line, EXPECT.chosen, t);
      let target = current();
      if (!target) {
        target = open(line, stripped.seconds);
        target.missing.push('header');
      }
      target.chosen = {
        message: chosen[1]!,
        pid: Number(chosen[2]),
        comm: chosen[3]!,
        score: Number(chosen[4]),
      };
      target.endLine = line;
      section = 'none';
      continue;
    }
    if (KILLED_START.test(t) && t.includes('total-vm:')) {
      const m = KILLED.exec(t);
      if (!m) throw parseError(file, line, EXPECT.killed, t);
      // Without an open report (the log began mid-report, or the header was rate-limited),
      // or when 4.x chose a child of the process it first picked, this line starts or ends one.
      let target = current();
      if (!target || target.killed) {
        target = open(line, stripped.seconds);
        target.missing.push('header');
      }
      const k: OomKill = {
        pid: Number(m[2]),
        comm: m[3]!,
        totalVmKB: Number(m[4]),
        anonRssKB: Number(m[5]),
        fileRssKB: Number(m[6]),
        line,
      };
      if (m[1] !== undefined) k.message = m[1];
      else if (target.chosen) k.message = target.chosen.message;
      if (m[7] !== undefined) k.shmemRssKB = Number(m[7]);
      if (m[8] !== undefined) {
        k.uid = Number(m[8]);
        k.pgtablesKB = Number(m[9]);
        k.oomScoreAdj = Number(m[10]);
      }
      if (target.chosen?.pid === k.pid) k.score = target.chosen.score;
      target.killed = k;
      target.endLine = line;
      closed = true;
      section = 'none';
      continue;
    }
    if (NO_KILLABLE.test(t)) {
      const target = current();
      if (target) {
        target.noKillableProcesses = true;
        target.endLine = line;
        closed = true;
        section = 'none';
      }
      continue;
    }
    if (PANIC.test(t)) {
      // The panic that ends a report: nothing left to kill, or panic_on_oom.
      const why = PANIC.exec(t)![1]!;
      const last = reports[reports.length - 1];
      if (
        last &&
        last.panic === undefined &&
        !last.killed &&
        (last.noKillableProcesses || /Out of memory|deadlocked on memory/.test(why))
      ) {
        last.panic = why;
        last.endLine = line;
        closed = true;
      }
      continue;
    }

    const cur = current();
    if (!cur) continue;

    // Section bodies: lines whose meaning depends on the heading above them.
    if (section === 'trace') {
      if (TRACE_NOISE.test(t)) continue;
      const f = parseFrame(raw);
      if (f && (f.offset !== undefined || f.address !== undefined)) {
        if (!t.startsWith('?') && !/^\[<[0-9a-fx]+>\]\s+\?/.test(t)) cur.callTrace.push(f);
        cur.endLine = line;
        continue;
      }
      section = 'none';
    } else if (section === 'meminfo') {
      if (GLOBAL_COUNTERS.test(t)) {
        cur.memInfo = { ...cur.memInfo, ...counters(t).counts };
        cur.endLine = line;
        continue;
      }
      section = 'none';
    } else if (section === 'memcg-stats') {
      const m = MEMCG_STAT_LINE.exec(t);
      if (m) {
        cur.memcg!.stats[m[1]!] = Number(m[2]);
        cur.endLine = line;
        continue;
      }
      section = 'none';
    } else if (section === 'slab') {
      if (SLAB_HEADER.test(t)) continue;
      const m = SLAB_ROW.exec(t);
      if (m) {
        cur.unreclaimableSlab.push({ name: m[1]!, usedKB: Number(m[2]), totalKB: Number(m[3]) });
        cur.endLine = line;
        continue;
      }
      section = 'none';
    } else if (section === 'allocations') {
      const m = ALLOC_ROW.exec(raw);
      if (m) {
        const a: OomAllocation = {
          bytes: Math.round(Number(m[1]) * UNITS[m[2]!]!),
          sizeText: `${m[1]} ${m[2]}`,
          calls: Number(m[3]),
          file: m[4]!,
          line: Number(m[5]),
          func: m[7]!,
        };
        if (m[6] !== undefined) a.module = m[6];
        cur.allocations.push(a);
        cur.endLine = line;
        continue;
      }
      if (/ func:\S+\s*$/.test(t)) throw parseError(file, line, EXPECT.alloc, t);
      section = 'none';
    } else if (section === 'tasks') {
      if (TASK_ROW_START.test(t)) {
        cur.tasks.push(parseTaskRow(t, columns, file, line));
        cur.endLine = line;
        continue;
      }
      section = 'none';
    }

    // Lines that stand on their own.
    const next = standalone(cur, t, file, line);
    if (next === undefined) {
      cur.interleavedLines++;
      continue;
    }
    if (next === 'tasks') columns = cur.taskColumns ?? [];
    if (next !== 'same') section = next;
    cur.endLine = line;
  }

  for (const rep of reports) {
    if (rep.trigger === undefined && !rep.missing.includes('header')) rep.missing.push('header');
    if (rep.trigger !== undefined) {
      if (!rep.killed && !rep.noKillableProcesses && !rep.panic) rep.missing.push('victim');
      if (rep.memcg === undefined && rep.memInfo === undefined) rep.missing.push('Mem-Info');
    }
  }
  const log: OomLog = { reports, lines: raw.length };
  const area = reports.flatMap((x) => x.freeAreas)[0];
  if (area?.blockKB[0] !== undefined) log.pageSizeBytes = area.blockKB[0] * 1024;
  return log;
}
