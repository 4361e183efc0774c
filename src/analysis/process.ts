import { MemsleuthError } from '../model/errors.js';
import type { Snapshot } from '../model/snapshot.js';
import { parseCmdline } from '../sources/cmdline.js';
import {
  rollupFields,
  type SmapsSplit,
  type StatFields,
  type StatusFields,
  smapsSplit,
  statFields,
  statusFields,
} from '../sources/proc_fast.js';
import { PF_KTHREAD, parseProcStat } from '../sources/proc_stat.js';
import { type ProcStatm, parseProcStatm } from '../sources/proc_statm.js';
import { parseProcStatus } from '../sources/proc_status.js';
import {
  parseMaps,
  parseSmaps,
  parseSmapsRollup,
  SHMEM_NAME_PREFIXES,
  type SmapsMapping,
  type SmapsNameSizes,
  smapsNameKey,
} from '../sources/smaps.js';
import type { ParseSettings } from '../sources/text.js';
import { parseInt10 } from '../sources/text.js';

/** What one process uses, from whichever of its /proc files were readable. All sizes in bytes. */
export interface ProcessMemory {
  pid: number;
  name: string;
  cmdline: string[];
  startTimeTicks?: number;
  /** No mm: kthreadd and its children. Every size is 0. */
  kernelThread: boolean;
  /** State letter (R, S, D, Z, ...) from status or stat; a zombie (Z) has no memory left. */
  state?: string;
  /** Resident pages (statm resident = VmRSS = RssAnon + RssFile + RssShmem). */
  rssBytes: number;
  /** Proportional set size: each resident page divided by the number of processes mapping it. */
  pssBytes?: number;
  /** Unique set size: pages mapped by this process only (Private_Clean + Private_Dirty). */
  ussBytes?: number;
  swapBytes: number;
  /** status RssAnon, RssFile, RssShmem (4.5+): the resident set split by backing. */
  rssAnonBytes?: number;
  rssFileBytes?: number;
  rssShmemBytes?: number;
  swapPssBytes?: number;
  /** top's VIRT (statm size). */
  vszBytes: number;
  /** top's SHR (statm shared = RssFile + RssShmem). */
  sharedBytes?: number;
  /** top's CODE (statm text). */
  codeBytes?: number;
  /** top's DATA (statm data = VmData + VmStk). */
  dataBytes?: number;
  /** The four memory types (see `mappingMemoryTypes`); their sum is the smaps Rss. */
  privateAnonBytes?: number;
  sharedAnonBytes?: number;
  privateFileBytes?: number;
  sharedFileBytes?: number;
  /** Pss split by backing, from smaps_rollup (5.10+; per-mapping smaps does not print it). */
  pssAnonBytes?: number;
  pssFileBytes?: number;
  pssShmemBytes?: number;
  /** hugetlbfs pages (Shared_Hugetlb + Private_Hugetlb): never part of Rss, Pss or Uss. */
  hugetlbBytes?: number;
  threads?: number;
  /** Page faults that needed no I/O / that read from disk, since it started (stat minflt, majflt; pidstat -r). */
  minorFaults?: number;
  majorFaults?: number;
  /**
   * /proc/PID/oom_score: the kernel's oom badness scaled to 0..1000 (0..2000 with a positive
   * oom_score_adj since 5.x's normalisation); the OOM killer kills the highest first.
   */
  oomScore?: number;
  /** /proc/PID/oom_score_adj, -1000 (never killed) to 1000. */
  oomScoreAdj?: number;
  /** Which files it was computed from (`status`, `statm`, `stat`, `maps`, `smaps`, `smaps_rollup`, `cmdline`, `oom_score`, `oom_score_adj`). */
  sources: string[];
}

/** The raw texts of one process's files, as a snapshot holds them; any may be missing. */
export interface ProcessFiles {
  status?: string;
  statm?: string;
  stat?: string;
  smaps?: string;
  smaps_rollup?: string;
  /** /proc/PID/maps: with smaps_rollup and status, the four types without per-mapping smaps. */
  maps?: string;
  cmdline?: string;
  oom_score?: string;
  oom_score_adj?: string;
}

/** The four memory types of one mapping's resident pages (bytes). */
export interface MemoryTypes {
  privateAnonBytes: number;
  sharedAnonBytes: number;
  privateFileBytes: number;
  sharedFileBytes: number;
}

/**
 * Shared memory objects whose pages live in shmem (tmpfs), recognisable by name alone
 * (SHMEM_NAME_PREFIXES: /dev/zero, SysV, memfd, /dev/shm, `[anon_shmem:]`). Files on other tmpfs
 * mounts cannot be told from disk files by name; processMemory corrects for them with status
 * RssShmem.
 */
export function isShmemMapping(m: Pick<SmapsMapping, 'pathname'>): boolean {
  const p = m.pathname;
  return SHMEM_NAME_PREFIXES.some((prefix) => p.startsWith(prefix));
}

/**
 * The four memory types of a mapping, in the sense of mmap(2) (the seeds' "private/shared x
 * anonymous/file"), from what fs/proc/task_mmu.c counts:
 *
 * - `Anonymous` counts PageAnon pages: the heap, stacks, MAP_PRIVATE|MAP_ANONYMOUS, and the
 *   copy-on-write copies made in MAP_PRIVATE file mappings. They are only ever created by a
 *   private mapping, so all of them are **private anonymous**, even when a fork shares them for a
 *   while (that sharing is what Pss/Uss measure, not a different memory type).
 * - The rest of `Rss` (Rss - Anonymous) is page cache mapped into the process. In a shmem
 *   mapping (tmpfs, /dev/shm, SysV shm, memfd, MAP_SHARED|MAP_ANONYMOUS) those pages are
 *   swap-backed shmem: **shared anonymous** (meminfo Shmem, status RssShmem), even when mapped
 *   MAP_PRIVATE. Shmem pages are never PageAnon, so `Anonymous` is 0 there unless COW copies exist.
 * - Otherwise they are file pages: **shared file** in a MAP_SHARED mapping (perms `...s`),
 *   **private file** in a MAP_PRIVATE one (program text, libraries, read-only data).
 *
 * Hugetlb pages are not in Rss at all (smaps_hugetlb_range counts them only into
 * Shared_/Private_Hugetlb), so they are left out of the four types.
 */
export function mappingMemoryTypes(m: SmapsMapping): MemoryTypes {
  const rss = m.bytes.Rss ?? 0;
  const anon = Math.min(m.bytes.Anonymous ?? 0, rss);
  const cache = rss - anon;
  const t: MemoryTypes = {
    privateAnonBytes: anon,
    sharedAnonBytes: 0,
    privateFileBytes: 0,
    sharedFileBytes: 0,
  };
  if (isShmemMapping(m)) t.sharedAnonBytes = cache;
  else if (m.perms[3] === 's') t.sharedFileBytes = cache;
  else t.privateFileBytes = cache;
  return t;
}

interface SmapsTotals {
  rss: number;
  pss: number;
  uss: number;
  swap: number;
  swapPss: number;
  hugetlb: number;
  types?: MemoryTypes;
}

/** Process totals from smaps_rollup's sums (no four types: it has no mapping names or perms). */
function rollupTotals(b: SmapsMapping['bytes']): SmapsTotals {
  return {
    rss: b.Rss ?? 0,
    pss: b.Pss ?? 0,
    uss: (b.Private_Clean ?? 0) + (b.Private_Dirty ?? 0),
    swap: b.Swap ?? 0,
    swapPss: b.SwapPss ?? 0,
    hugetlb: (b.Shared_Hugetlb ?? 0) + (b.Private_Hugetlb ?? 0),
  };
}

function sumSmaps(maps: SmapsMapping[]): SmapsTotals {
  const r: SmapsTotals = {
    rss: 0,
    pss: 0,
    uss: 0,
    swap: 0,
    swapPss: 0,
    hugetlb: 0,
    types: { privateAnonBytes: 0, sharedAnonBytes: 0, privateFileBytes: 0, sharedFileBytes: 0 },
  };
  for (const m of maps) {
    const b = m.bytes;
    r.rss += b.Rss ?? 0;
    r.pss += b.Pss ?? 0;
    r.uss += (b.Private_Clean ?? 0) + (b.Private_Dirty ?? 0);
    r.swap += b.Swap ?? 0;
    r.swapPss += b.SwapPss ?? 0;
    r.hugetlb += (b.Shared_Hugetlb ?? 0) + (b.Private_Hugetlb ?? 0);
    const t = mappingMemoryTypes(m);
    r.types!.privateAnonBytes += t.privateAnonBytes;
    r.types!.sharedAnonBytes += t.sharedAnonBytes;
    r.types!.privateFileBytes += t.privateFileBytes;
    r.types!.sharedFileBytes += t.sharedFileBytes;
  }
  return r;
}

/**
 * Move pages of tmpfs files that `isShmemMapping` could not recognise by name from the file
 * types to shared anonymous, so the shared-anonymous total matches the kernel's own count of
 * shmem pages (status RssShmem, MM_SHMEMPAGES). Taken from shared file first (MAP_SHARED of a
 * tmpfs file is the common case), then private file (e.g. programs run from an initramfs).
 */
function reconcileShmem(types: MemoryTypes, rssShmemBytes: number): void {
  let missing = rssShmemBytes - types.sharedAnonBytes;
  if (missing <= 0) return;
  const fromShared = Math.min(missing, types.sharedFileBytes);
  types.sharedFileBytes -= fromShared;
  types.sharedAnonBytes += fromShared;
  missing -= fromShared;
  const fromPrivate = Math.min(missing, types.privateFileBytes);
  types.privateFileBytes -= fromPrivate;
  types.sharedAnonBytes += fromPrivate;
}

function isKernelThread(pid: number, status?: StatusFields, stat?: StatFields): boolean {
  if (stat) return (stat.flags & PF_KTHREAD) !== 0;
  const k = status?.counts.Kthread; // status "Kthread:" since 6.7
  if (k !== undefined) return k === 1;
  // Older status without stat: kernel threads have no Vm* lines and are kthreadd or its children.
  if (status) return status.bytes.VmSize === undefined && (pid === 2 || status.ppid === 2);
  return false;
}

/**
 * Does a process need its per-mapping smaps for the four memory types? Only when it maps a file
 * MAP_SHARED (shared file pages cannot be told from private ones by any total), or when status
 * does not print RssShmem (before 4.5). `shared` is its maps' MAP_SHARED lines.
 */
function typesNeedSmaps(shared: readonly { pathname: string }[], statusHasRssShmem: boolean): boolean {
  return !statusHasRssShmem || shared.some((m) => !isShmemMapping(m));
}

/**
 * The four types from smaps_rollup and status, for a process that maps no file MAP_SHARED (see
 * `typesNeedSmaps`): Anonymous is private anonymous (as in `mappingMemoryTypes`), status
 * RssShmem (the kernel's count of mapped shmem pages, MM_SHMEMPAGES) shared anonymous, and the
 * rest of Rss private file. Summed per mapping, smaps gives the same, up to the lag of the
 * kernel's per-CPU RSS counters (a few dozen pages at most, 6.2+).
 */
function rollupTypes(rollup: Pick<SmapsMapping, 'bytes'>, rssShmemBytes: number): MemoryTypes {
  const rss = rollup.bytes.Rss ?? 0;
  const anon = Math.min(rollup.bytes.Anonymous ?? 0, rss);
  const shmem = Math.min(rssShmemBytes, rss - anon);
  return {
    privateAnonBytes: anon,
    sharedAnonBytes: shmem,
    privateFileBytes: rss - anon - shmem,
    sharedFileBytes: 0,
  };
}

/**
 * The four types from smaps_rollup's sums and the mappings it cannot split (smapsSplit: the
 * MAP_SHARED ones and those named as shmem), as sumSmaps would add them up mapping by mapping:
 * Anonymous is private anonymous, a split mapping's page cache is shared anonymous (a shmem
 * name) or shared file (MAP_SHARED), and the rest of Rss is private file. Exact when both files
 * were read from one idle process (the same page walks); a process that changes between the
 * two reads gets the rest clamped at zero.
 */
function splitTypes(rollup: Pick<SmapsMapping, 'bytes'>, split: SmapsSplit): MemoryTypes {
  const rss = rollup.bytes.Rss ?? 0;
  const anon = Math.min(rollup.bytes.Anonymous ?? 0, rss);
  let shmem = 0;
  let sharedFile = 0;
  for (const m of split.mappings) {
    if (isShmemMapping(m)) shmem += m.cacheBytes;
    else sharedFile += m.cacheBytes;
  }
  shmem = Math.min(shmem, rss - anon);
  sharedFile = Math.min(sharedFile, rss - anon - shmem);
  return {
    privateAnonBytes: anon,
    sharedAnonBytes: shmem,
    privateFileBytes: rss - anon - shmem - sharedFile,
    sharedFileBytes: sharedFile,
  };
}

/**
 * Compute one process's memory from the raw texts a snapshot gives for it. Pure. Throws the
 * parse error of a malformed file, and a parse error when neither status nor stat is given
 * (nothing names the process). `pageSizeBytes` converts statm's pages (only statm needs it).
 */
export function processMemory(
  pid: number,
  files: ProcessFiles,
  pageSizeBytes: number | undefined,
  /** Names a snapshot path in error messages, e.g. `Snapshot.describe`. */
  describe: (path: string) => string = (path) => path,
  parse: ParseSettings = {},
): ProcessMemory {
  const label = (f: string) => describe(`proc/${pid}/${f}`);
  const sources: string[] = [];
  const has = (t: string | undefined): t is string => t !== undefined && t.trim() !== '';
  // The fast readers (sources/proc_fast.ts) read what is needed here; the full parsers read
  // whatever they decline, and name the file and line of an error.
  let status: StatusFields | undefined;
  let stat: StatFields | undefined;
  let statm: ProcStatm | undefined;
  if (has(files.status)) {
    status = statusFields(files.status) ?? parseProcStatus(files.status, { ...parse, file: label('status') });
    sources.push('status');
  }
  if (has(files.stat)) {
    stat = statFields(files.stat) ?? parseProcStat(files.stat, { ...parse, file: label('stat') });
    sources.push('stat');
  }
  if (!status && !stat) {
    // Reuse the status parser's error for an empty or missing file.
    parseProcStatus(files.status ?? '', { file: label('status') });
  }
  if (has(files.statm)) {
    statm = parseProcStatm(files.statm, { ...parse, file: label('statm') });
    sources.push('statm');
    if (pageSizeBytes === undefined) throw new Error('processMemory: statm needs the page size');
  }
  const cmdline = files.cmdline !== undefined ? parseCmdline(files.cmdline) : [];
  if (files.cmdline !== undefined) sources.push('cmdline');
  // One decimal number each (fs/proc/base.c proc_oom_score, oom_score_adj_read).
  const oomScore = has(files.oom_score)
    ? parseInt10(files.oom_score.trim(), label('oom_score'), 1, 'a whole number (oom_score)')
    : undefined;
  if (oomScore !== undefined) sources.push('oom_score');
  const oomScoreAdj = has(files.oom_score_adj)
    ? parseInt10(
        files.oom_score_adj.trim(),
        label('oom_score_adj'),
        1,
        'a whole number from -1000 to 1000 (oom_score_adj)',
      )
    : undefined;
  if (oomScoreAdj !== undefined) sources.push('oom_score_adj');

  const kernelThread = isKernelThread(pid, status, stat);
  const page = pageSizeBytes ?? 0;
  const sb = status?.bytes ?? {};
  const rssBytes = statm
    ? statm.residentPages * page
    : (sb.VmRSS ?? (stat ? stat.rssPages * page : undefined) ?? 0);
  const vszBytes = statm ? statm.sizePages * page : (sb.VmSize ?? stat?.vsizeBytes ?? 0);
  const p: ProcessMemory = {
    pid,
    name: status?.name ?? stat?.comm ?? '',
    cmdline,
    kernelThread,
    rssBytes,
    swapBytes: sb.VmSwap ?? 0,
    vszBytes,
    sources,
  };
  if (sb.RssAnon !== undefined) p.rssAnonBytes = sb.RssAnon;
  if (sb.RssFile !== undefined) p.rssFileBytes = sb.RssFile;
  if (sb.RssShmem !== undefined) p.rssShmemBytes = sb.RssShmem;
  if (stat) {
    p.startTimeTicks = stat.startTimeTicks;
    p.minorFaults = stat.minflt;
    p.majorFaults = stat.majflt;
  }
  const state = status?.state ?? stat?.state;
  if (state !== undefined) p.state = state;
  const threads = status?.counts.Threads ?? stat?.numThreads;
  if (threads !== undefined) p.threads = threads;
  if (oomScore !== undefined) p.oomScore = oomScore;
  if (oomScoreAdj !== undefined) p.oomScoreAdj = oomScoreAdj;
  if (statm) {
    p.sharedBytes = statm.sharedPages * page;
    p.codeBytes = statm.textPages * page;
    p.dataBytes = statm.dataPages * page;
  } else if (sb.RssFile !== undefined && sb.RssShmem !== undefined) {
    p.sharedBytes = sb.RssFile + sb.RssShmem;
    if (sb.VmExe !== undefined) p.codeBytes = sb.VmExe;
    if (sb.VmData !== undefined && sb.VmStk !== undefined) p.dataBytes = sb.VmData + sb.VmStk;
  }

  // smaps (per mapping) gives all four types; smaps_rollup (one record, no perms or names) gives
  // Pss, Uss and swap but not the four types. An empty smaps means no mm: a kernel thread or a
  // zombie.
  let totals: SmapsTotals | undefined;
  // A live read (maps is there) of a process that maps a file MAP_SHARED brings smaps_rollup
  // and smaps: the totals from the rollup, and from smaps only the mappings the rollup cannot
  // split. Snapshots keep no maps: their smaps is summed mapping by mapping.
  const split =
    files.maps !== undefined && has(files.smaps) && has(files.smaps_rollup)
      ? smapsSplit(files.smaps)
      : undefined;
  if (files.smaps !== undefined && !split && (has(files.smaps) || kernelThread || rssBytes === 0)) {
    totals = sumSmaps(parseSmaps(files.smaps, { ...parse, file: label('smaps') }));
    sources.push('smaps');
  } else if (has(files.smaps_rollup)) {
    const r =
      rollupFields(files.smaps_rollup) ??
      parseSmapsRollup(files.smaps_rollup, { ...parse, file: label('smaps_rollup') });
    // The rollup has no perms or names per mapping: the file/anon split of Rss is not known.
    totals = rollupTotals(r.bytes);
    sources.push('smaps_rollup');
    if (r.bytes.Pss_Anon !== undefined) p.pssAnonBytes = r.bytes.Pss_Anon;
    if (r.bytes.Pss_File !== undefined) p.pssFileBytes = r.bytes.Pss_File;
    if (r.bytes.Pss_Shmem !== undefined) p.pssShmemBytes = r.bytes.Pss_Shmem;
    if (split) {
      totals.types = splitTypes(r, split);
      sources.push('maps', 'smaps');
    } else if (files.maps !== undefined) {
      // With maps, the four types are known without per-mapping sizes unless a file is mapped
      // MAP_SHARED (then only smaps can split the file pages).
      const shared = parseMaps(files.maps, { file: label('maps'), onlyShared: true });
      sources.push('maps');
      if (!typesNeedSmaps(shared, sb.RssShmem !== undefined)) totals.types = rollupTypes(r, sb.RssShmem!);
    }
  }
  if (totals) {
    p.pssBytes = totals.pss;
    p.ussBytes = totals.uss;
    p.swapPssBytes = totals.swapPss;
    p.hugetlbBytes = totals.hugetlb;
    if (sb.VmSwap === undefined) p.swapBytes = totals.swap;
    if (totals.types) {
      if (sb.RssShmem !== undefined) reconcileShmem(totals.types, sb.RssShmem);
      Object.assign(p, totals.types);
    }
  }
  if (kernelThread) {
    // No mm: whatever the files said (seven zeros, empty smaps, ESRCH for smaps_rollup), every
    // size is zero.
    Object.assign(p, {
      rssBytes: 0,
      vszBytes: 0,
      swapBytes: 0,
      pssBytes: 0,
      ussBytes: 0,
      swapPssBytes: 0,
      hugetlbBytes: 0,
      privateAnonBytes: 0,
      sharedAnonBytes: 0,
      privateFileBytes: 0,
      sharedFileBytes: 0,
    });
  }
  return p;
}

/** One row of `pmap -x`, sizes in bytes (pmap prints them in kB: `formatPmapX`). */
export interface PmapRow {
  /** Start address padded to 16 hex digits, as 64-bit pmap prints it. */
  address: string;
  sizeBytes: number;
  rssBytes: number;
  /** Shared_Dirty + Private_Dirty. */
  dirtyBytes: number;
  /** perms with the private `p` shown as `-`, and a 5th column that procps always prints as `-`. */
  mode: string;
  /** The basename of the path, `  [ anon ]`, `  [ stack ]` or `  [ shmid=0x... ]`, as pmap -x prints. */
  mapping: string;
  /** The full smaps pathname. */
  pathname: string;
}

export interface PmapView {
  rows: PmapRow[];
  total: { sizeBytes: number; rssBytes: number; dirtyBytes: number };
}

/**
 * The mapping name pmap -x prints (procps-ng src/pmap.c, mapping_name): SysV segments as
 * `[ shmid=0x<inode> ]`; otherwise the text after the last `/` of the line; otherwise
 * `[ stack ]` for the mapping holding the main stack's start (stat startstack) and `[ anon ]`
 * for everything else, including [heap], [vdso] and [anon:name].
 */
function pmapName(m: SmapsMapping, startStack: bigint | undefined): string {
  const major = m.dev.split(':')[0];
  if (major !== undefined && /^0+$/.test(major) && m.pathname.startsWith('/SYSV')) {
    return `  [ shmid=0x${m.inode.toString(16)} ]`;
  }
  const slash = m.pathname.lastIndexOf('/');
  if (slash >= 0) {
    const base = m.pathname.slice(slash + 1);
    return base === '' ? '/' : base;
  }
  if (startStack !== undefined) {
    const start = BigInt(`0x${m.start}`);
    if (startStack >= start && startStack <= start + BigInt(m.rangeBytes)) return '  [ stack ]';
  } else if (m.pathname === '[stack]') {
    return '  [ stack ]';
  }
  return '  [ anon ]';
}

/**
 * The `pmap -x` view of a process's smaps. `startStack` (stat field 28) makes the `[ stack ]`
 * label exact; without it the kernel's own `[stack]` name is used.
 */
export function pmapRows(smaps: SmapsMapping[], opts: { startStack?: number } = {}): PmapRow[] {
  const stack = opts.startStack === undefined ? undefined : BigInt(opts.startStack);
  return smaps.map((m) => {
    const p = m.perms;
    return {
      address: m.start.padStart(16, '0'),
      sizeBytes: m.rangeBytes,
      rssBytes: m.bytes.Rss ?? 0,
      dirtyBytes: (m.bytes.Shared_Dirty ?? 0) + (m.bytes.Private_Dirty ?? 0),
      mode: `${p.slice(0, 3)}${p[3] === 'p' ? '-' : p[3]}-`,
      mapping: pmapName(m, stack),
      pathname: m.pathname,
    };
  });
}

/** Rows plus pmap's `total kB` line. */
export function pmapView(smaps: SmapsMapping[], opts: { startStack?: number } = {}): PmapView {
  const rows = pmapRows(smaps, opts);
  const total = { sizeBytes: 0, rssBytes: 0, dirtyBytes: 0 };
  for (const r of rows) {
    total.sizeBytes += r.sizeBytes;
    total.rssBytes += r.rssBytes;
    total.dirtyBytes += r.dirtyBytes;
  }
  return { rows, total };
}

/** Print rows exactly like procps-ng `pmap -x PID` (kB columns). */
export function formatPmapX(pid: number, cmdline: string[], name: string, view: PmapView): string {
  const kb = (b: number) => String(Math.floor(b / 1024));
  // procps shows a process without argv (kernel thread, zombie) as [comm].
  const lines = [`${pid}:   ${cmdline.length ? cmdline.join(' ') : `[${name}]`}`];
  lines.push(
    `${'Address'.padEnd(16)} ${'Kbytes'.padStart(7)} ${'RSS'.padStart(7)} ${'Dirty'.padStart(7)} Mode  Mapping`,
  );
  for (const r of view.rows) {
    lines.push(
      `${r.address} ${kb(r.sizeBytes).padStart(7)} ${kb(r.rssBytes).padStart(7)} ${kb(r.dirtyBytes).padStart(7)} ${r.mode} ${r.mapping}`,
    );
  }
  lines.push(`${'-'.repeat(16)} ${'-'.repeat(7)} ${'-'.repeat(7)} ${'-'.repeat(7)} `);
  const t = view.total;
  lines.push(
    `${'total kB'.padEnd(16)} ${kb(t.sizeBytes).padStart(7)} ${kb(t.rssBytes).padStart(7)} ${kb(t.dirtyBytes).padStart(7)}`,
  );
  return `${lines.join('\n')}\n`;
}

/** A status with an mm prints VmSize (task_mem); kernel threads and zombies do not. */
const HAS_MM = /^VmSize:/m;
/** status prints RssShmem (4.5+). */
const HAS_RSS_SHMEM = /^RssShmem:/m;

/** Process files read by `readProcesses` with `details` (the default), after status. */
const DETAIL_FILES = ['stat', 'statm', 'cmdline'] as const;
/** Read only when asked (`ps --oom`): two more files per process would slow every sampler tick. */
const OOM_FILES = ['oom_score', 'oom_score_adj'] as const;

/**
 * What `readProcesses` reads of each process beyond status (the one file always read: it names
 * the process and gives RSS, swap, VSZ, threads and RssAnon/RssFile/RssShmem).
 */
export interface ReadProcessesOptions {
  /**
   * - `types` (default): PSS, USS, swap PSS and the four memory types. A live machine's
   *   processes are read with maps (no page walk) and then smaps_rollup; only a process that maps
   *   a file MAP_SHARED has its per-mapping smaps read instead. A snapshot's smaps is read as
   *   it was captured (else its smaps_rollup).
   * - `pss`: PSS, USS and swap PSS from smaps_rollup; no four types.
   * - `status`: nothing more: no page table is walked (`report --no-smaps`).
   */
  memory?: 'types' | 'pss' | 'status';
  /** Older name of `memory`: true is `types`, false `pss`. */
  withSmaps?: boolean;
  /**
   * stat (start time, kernel-thread flag), statm (top's SHR, CODE, DATA) and cmdline: all of
   * them (true, the default), none (false), or the ones listed.
   */
  details?: boolean | readonly (typeof DETAIL_FILES)[number][];
  /** oom_score and oom_score_adj. */
  withOom?: boolean;
  /** The page size for statm, when the caller knows it (else the snapshot manifest's, read once). */
  pageSizeBytes?: number;
}

/**
 * Read every process of a snapshot. A process that exits while it is read (a file vanishes,
 * ESRCH, an empty status) is skipped and listed in `skipped`, never fatal: when a read after
 * status fails or comes back empty, status is read again, and if it is gone (or its memory was
 * released) the process is dropped. Files a snapshot simply does not have (the lab captures hold
 * no stat or cmdline) are left out of `sources`. See `ReadProcessesOptions` for what is read.
 */
export async function readProcesses(
  snap: Snapshot,
  opts: ReadProcessesOptions & ParseSettings = {},
): Promise<{ processes: ProcessMemory[]; skipped: { pid: number; reason: string }[] }> {
  const memory = opts.memory ?? (opts.withSmaps === false ? 'pss' : 'types');
  const details =
    opts.details === false ? [] : opts.details === true || !opts.details ? DETAIL_FILES : opts.details;
  const extra = [...details, ...(opts.withOom ? OOM_FILES : [])];
  const parse: ParseSettings = { lenient: opts.lenient, onWarning: opts.onWarning };
  let page = opts.pageSizeBytes;
  const processes: ProcessMemory[] = [];
  const skipped: { pid: number; reason: string }[] = [];
  for (const pid of await snap.pids()) {
    const path = (f: string) => `proc/${pid}/${f}`;
    const files: ProcessFiles = {};
    const status = await snap.readText(path('status'));
    if (status === undefined || status.trim() === '') {
      skipped.push({ pid, reason: `status: ${snap.whyMissing(path('status')) ?? 'empty (process exited)'}` });
      continue;
    }
    files.status = status;
    const mm = HAS_MM.test(status);
    // A read after status that fails or is empty may mean the process exited meanwhile.
    let doubt = false;
    const read = async (f: keyof ProcessFiles): Promise<string | undefined> => {
      const t = await snap.readText(path(f));
      if (t !== undefined) files[f] = t;
      if (mm && (t === undefined || t === '')) doubt = true;
      return t;
    };
    for (const f of extra) await read(f);
    // A kernel thread has no mm: its smaps is empty and its smaps_rollup fails (ESRCH), and
    // processMemory gives it zeros whatever they say.
    const kernelThread = !mm && isKernelThread(pid, statusFields(status));
    if (kernelThread) {
      // Its status (and the details asked for) is all there is.
    } else if (memory === 'pss') await read('smaps_rollup');
    else if (memory === 'types') {
      // maps lists the mappings without walking a page table: on a live machine it says whether
      // smaps_rollup (one walk, a few lines) is enough. Snapshots do not keep maps.
      const maps = mm ? await snap.readText(path('maps')) : undefined;
      if (maps !== undefined && maps !== '') {
        // A file mapped MAP_SHARED (or status without RssShmem): smaps too, for the mappings
        // the rollup cannot split (processMemory reads only those of it).
        const shared = parseMaps(maps, { file: snap.describe(path('maps')), onlyShared: true });
        files.maps = maps;
        if ((await read('smaps_rollup')) === undefined || typesNeedSmaps(shared, HAS_RSS_SHMEM.test(status)))
          await read('smaps');
      } else if ((await read('smaps')) === undefined) await read('smaps_rollup');
    }
    if (doubt) {
      // Still there? A process that exited mid-read leaves missing or empty files behind.
      const again = await snap.readText(path('status'));
      if (again === undefined || again.trim() === '') {
        skipped.push({
          pid,
          reason: `exited while being read (${snap.whyMissing(path('status')) ?? 'empty status'})`,
        });
        continue;
      }
      // Exiting releases the mm before the task is reaped: Vm lines gone = exited (now a zombie).
      if (!HAS_MM.test(again)) {
        skipped.push({ pid, reason: 'exited while being read (its memory was released)' });
        continue;
      }
    }
    if (files.statm !== undefined && page === undefined) page = (await snap.manifest()).pageSizeBytes;
    processes.push(processMemory(pid, files, page, (p) => snap.describe(p), parse));
  }
  return { processes, skipped };
}

/** One process's `pmap -x` view from a snapshot, with what names it. */
export interface ProcessMaps {
  pid: number;
  name: string;
  cmdline: string[];
  kernelThread: boolean;
  view: PmapView;
}

/**
 * Read one process's smaps (and stat, for the stack label) from a snapshot. Throws a
 * MemsleuthError (`BAD_INPUT`) when the snapshot has no such process or no readable smaps.
 */
export async function readProcessMaps(
  snap: Snapshot,
  pid: number,
  /** The reader runs as root: "run as root" would be no help. */
  reader: { asRoot?: boolean } & ParseSettings = {},
): Promise<ProcessMaps> {
  const path = (f: string) => `proc/${pid}/${f}`;
  const parse: ParseSettings = { lenient: reader.lenient, onWarning: reader.onWarning };
  const status = await snap.readText(path('status'));
  const stat = await snap.readText(path('stat'));
  if (status === undefined && stat === undefined) {
    throw new MemsleuthError(
      'BAD_INPUT',
      `no process ${pid} in ${snap.origin === 'live' ? 'this machine' : snap.origin}`,
      {
        hint:
          snap.origin === 'live'
            ? 'see `memsleuth ps` for the running processes'
            : 'see `memsleuth ps SNAPSHOT` for the processes it holds',
      },
    );
  }
  const smapsText = await snap.readText(path('smaps'));
  if (smapsText === undefined) {
    const why = snap.whyMissing(path('smaps')) ?? 'not present';
    const hint =
      snap.origin !== 'live'
        ? `the snapshot holds no smaps for pid ${pid}: it was captured without access to it (capture as root)`
        : why !== 'permission denied'
          ? undefined
          : reader.asRoot
            ? `even root may not read pid ${pid}'s smaps here: ptrace access is denied (Yama ptrace_scope, a security module, or a process of another user namespace)`
            : 'reading smaps needs ptrace access to the process: run as root or as its owner';
    throw new MemsleuthError(
      'BAD_INPUT',
      `${snap.describe(path('smaps'))}: cannot read (${why})`,
      hint ? { hint } : {},
    );
  }
  // smaps is parsed once, for the view; status, stat and cmdline name the process.
  const files: ProcessFiles = {};
  if (status !== undefined) files.status = status;
  if (stat !== undefined) files.stat = stat;
  const cmdline = await snap.readText(path('cmdline'));
  if (cmdline !== undefined) files.cmdline = cmdline;
  const p = processMemory(pid, files, undefined, (x) => snap.describe(x), parse);
  const parsedStat = p.sources.includes('stat')
    ? parseProcStat(stat!, { ...parse, file: snap.describe(path('stat')) })
    : undefined;
  const smaps = parseSmaps(smapsText, { ...parse, file: snap.describe(path('smaps')) });
  const opts = parsedStat?.startstack !== undefined ? { startStack: parsedStat.startstack } : {};
  return { pid, name: p.name, cmdline: p.cmdline, kernelThread: p.kernelThread, view: pmapView(smaps, opts) };
}

/**
 * Per-mapping sizes grouped by what the mapping is: its path, `[heap]`, `[stack]`, or
 * `[anon]` for nameless anonymous mappings (thread stacks, malloc arenas, mmap'd chunks).
 * Grouping by name, not address, keeps a series across munmap/mmap and merges of VMAs.
 */
export function smapsByName(mappings: readonly SmapsMapping[]): Map<string, SmapsNameSizes> {
  const out = new Map<string, SmapsNameSizes>();
  for (const m of mappings) {
    const key = smapsNameKey(m.pathname);
    let cur = out.get(key);
    if (!cur) {
      cur = { size: 0, rss: 0, anon: 0, swap: 0 };
      out.set(key, cur);
    }
    cur.size += m.bytes.Size ?? m.rangeBytes;
    cur.rss += m.bytes.Rss ?? 0;
    cur.anon += m.bytes.Anonymous ?? 0;
    cur.swap += m.bytes.Swap ?? 0;
  }
  return out;
}

/**
 * Processes in the order the OOM killer takes them: by oom_score, highest first, and
 * oom_score_adj -1000 (never killed) last; kernel threads left out. Without oom_score (a
 * snapshot from before it was collected) by RSS + swap, the bulk of the kernel's badness.
 */
export function oomOrder(processes: readonly ProcessMemory[]): {
  order: ProcessMemory[];
  by: 'oom_score' | 'rss+swap';
  unkillable: number;
} {
  const users = processes.filter((p) => !p.kernelThread);
  const scored = users.some((p) => p.oomScore !== undefined);
  const key = (p: ProcessMemory) => (scored ? (p.oomScore ?? -1) : p.rssBytes + p.swapBytes);
  const never = (p: ProcessMemory) => Number(p.oomScoreAdj === -1000);
  const order = [...users].sort(
    (a, b) => never(a) - never(b) || key(b) - key(a) || b.rssBytes - a.rssBytes || a.pid - b.pid,
  );
  return { order, by: scored ? 'oom_score' : 'rss+swap', unkillable: users.filter((p) => never(p)).length };
}
