import {
  type ProcessMemory,
  processMemory,
  type ReadProcessesOptions,
  readProcesses,
  smapsByName,
} from '../../analysis/process.js';
import type { EntitySample } from '../../model/samples.js';
import { type ProcCounters, procPath, type Snapshot, sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import {
  rollupFields,
  SmapsSizesScan,
  type StatusFields,
  smapsSizes,
  statFields,
  statusFields,
} from '../../sources/proc_fast.js';
import { PF_KTHREAD, parseProcStat } from '../../sources/proc_stat.js';
import { parseProcStatus } from '../../sources/proc_status.js';
import { parseSmaps, parseSmapsRollup } from '../../sources/smaps.js';
import { FamilyBuilder, nonEmpty, topN } from '../families.js';
import {
  type DiffRow,
  due,
  type Finding,
  type MetricFamilyDoc,
  type ReadOptions,
  type SampleContext,
  type SourceEntry,
} from '../types.js';
import { parseSettings } from './read.js';

export interface AnonCrossCheck {
  /**
   * What was summed over processes: Pss_Anon (smaps_rollup) shares copy-on-write pages
   * among their mappers; `Anonymous` (per-mapping smaps) and status `RssAnon` (`--no-smaps`:
   * no page table walked) count them in every sharer.
   */
  basis: 'Pss_Anon' | 'Anonymous' | 'RssAnon';
  processAnonBytes: number;
  anonPagesBytes: number;
  differenceBytes: number;
  /** difference / AnonPages × 100. */
  differencePercent: number;
  /** Processes with memory whose smaps_rollup could not be read (left out of the sum). */
  unreadableProcesses: number;
}

export interface ProcessesSection {
  /** Processes with memory (kernel threads have none and are counted apart). */
  count: number;
  kernelThreads: number;
  top: ProcessMemory[];
  sumRssBytes: number;
  sumPssBytes?: number;
  anonCrossCheck?: AnonCrossCheck;
  skipped: { pid: number; reason: string }[];
}

declare module '../types.js' {
  interface ReportSections {
    processes?: ProcessesSection;
  }
}

/** Every process of a snapshot, and those skipped because they exited while being read. */
export interface Processes {
  processes: ProcessMemory[];
  skipped: { pid: number; reason: string }[];
}

const MiB = 1024 * 1024;

/**
 * Sum of Pss_Anon over processes, from smaps_rollup (5.x+; per-mapping smaps never prints
 * it). Processes whose rollup cannot be read are counted apart; undefined when the kernel
 * prints no Pss_Anon at all.
 */
async function sumPssAnon(
  snap: Snapshot,
  list: ProcessMemory[],
  options: ReadOptions,
): Promise<{ bytes: number; unreadable: number } | undefined> {
  let bytes = 0;
  let seen = 0;
  let unreadable = 0;
  for (const p of list) {
    if (p.kernelThread || p.rssBytes === 0) continue;
    let v = p.pssAnonBytes;
    if (v === undefined) {
      const path = procPath(p.pid, 'smaps_rollup');
      const rollup = await snap.readText(path);
      if (rollup !== undefined && rollup.trim() !== '') {
        v = parseSmapsRollup(rollup, { ...parseSettings(options), file: snap.describe(path) }).bytes.Pss_Anon;
        if (v === undefined) return undefined;
      }
    }
    if (v === undefined) unreadable++;
    else {
      bytes += v;
      seen++;
    }
  }
  return seen > 0 ? { bytes, unreadable } : undefined;
}

/**
 * What the recording keeps of a live process between ticks: who it is (so stat is read only
 * for a new one) and what it weighed (to find the ones that grow). One object per process,
 * kept while it lives.
 */
interface ProcTrack {
  /** `pid:starttime`: the recording's key. */
  key: string;
  start: number | undefined;
  comm: string;
  ppid: number;
  /** Inode of /proc/PID/fd when the identity was last read from stat (-1: unknown). */
  ino: number;
  /** The tick it was last seen. */
  seen: number;
  firstRssBytes: number;
  lastRssBytes: number;
  /** RSS+swap and VSZ at the previous smaps tick. */
  markRssBytes: number;
  markVszBytes: number;
  lastVszBytes: number;
  /** RSS+swap when PSS was last read (-1: never). */
  pssRssBytes: number;
  /** The tick it was first seen. */
  firstTick: number;
  /** Kept files only: statm (pages) when status was last read, task/ links minus threads then. */
  statm: [number, number, number];
  linkBase: number;
  /** The values read from status then (carried while statm does not move). */
  values: Record<string, number> | undefined;
}

function tracked(ctx: SampleContext): Map<number, ProcTrack> {
  ctx.state.tracked ??= new Map<number, ProcTrack>();
  return ctx.state.tracked as Map<number, ProcTrack>;
}

/** The process whose RSS+swap grew most since it was first seen (the recorder's progress line). */
export function topGrower(
  state: Record<string, unknown>,
): { key: string; comm: string; growthBytes: number } | undefined {
  const t = state.tracked as Map<number, ProcTrack> | undefined;
  let top: ProcTrack | undefined;
  let growth = 0;
  // forEach, and one answer object: this runs every tick of the (unoptimized) recorder.
  t?.forEach((p) => {
    const g = p.lastRssBytes - p.firstRssBytes;
    if (!top || g > growth) {
      top = p;
      growth = g;
    }
  });
  const p = top as ProcTrack | undefined;
  return p && { key: p.key, comm: p.comm, growthBytes: growth };
}

/** status of a process: the fast reader, else the full parser (which throws on a malformed file). */
function readStatus(text: string, file: string): StatusFields {
  return statusFields(text) ?? parseProcStatus(text, { file });
}

/**
 * Ticks between two reads of status for a process whose statm has not moved (its name, parent,
 * swap and file/shmem split); each process on its own tick (by pid), so they do not all come due
 * at once.
 */
const STATUS_REFRESH_TICKS = 60;

interface Grower {
  key: string;
  pid: number;
  start: number | undefined;
  growth: number;
}

type SampledProcess = { tr: ProcTrack; values: Record<string, number> } | undefined;

/** The values a process sample carries, from status (and the fd count when known). */
function statusValues(status: StatusFields, fds: number | undefined): Record<string, number> {
  const b = status.bytes;
  const values: Record<string, number> = {
    rss_bytes: b.VmRSS ?? 0,
    anon_bytes: b.RssAnon ?? 0,
    file_bytes: b.RssFile ?? 0,
    shmem_bytes: b.RssShmem ?? 0,
    swap_bytes: b.VmSwap ?? 0,
    vsz_bytes: b.VmSize ?? 0,
  };
  const threads = status.counts.Threads;
  if (threads !== undefined) values.threads = threads;
  if (fds !== undefined) values.fds = fds;
  return values;
}

/** Status of a process: undefined when it vanished, is a kernel thread or a zombie, or is cut. */
async function readProcessStatus(
  snap: Snapshot,
  ctx: SampleContext,
  pid: number,
): Promise<StatusFields | undefined> {
  const statusText = await snap.readText(procPath(pid, 'status'));
  if (statusText === undefined || statusText === '') return undefined; // vanished
  let status: StatusFields;
  try {
    status = readStatus(statusText, snap.describe(procPath(pid, 'status')));
  } catch (e) {
    // A process exiting between two reads can leave a truncated file: skip it this tick.
    ctx.problem(`proc/${pid}`, e);
    return undefined;
  }
  // Kernel threads (and zombies) have no mm: no VmSize; 6.7+ also says Kthread.
  if (status.bytes.VmSize === undefined || status.counts.Kthread === 1) return undefined;
  return status;
}

/**
 * Who a process is (pid and start time, from stat), and its tracking record: the existing one
 * when the key is the same, a new one otherwise. `null` for a kernel thread; undefined when stat
 * is cut.
 */
async function identify(
  snap: Snapshot,
  ctx: SampleContext,
  pid: number,
  status: StatusFields,
  track: Map<number, ProcTrack>,
): Promise<ProcTrack | null | undefined> {
  const statText = await snap.readText(procPath(pid, 'stat'));
  let start: number | undefined;
  if (statText !== undefined && statText !== '') {
    try {
      const stat =
        statFields(statText) ?? parseProcStat(statText, { file: snap.describe(procPath(pid, 'stat')) });
      if (stat.flags & PF_KTHREAD) return null;
      start = stat.startTimeTicks;
    } catch (e) {
      ctx.problem(`proc/${pid}`, e);
      return undefined;
    }
  }
  // A capture without stat has only the pid.
  const key = `${pid}:${start ?? ''}`;
  let tr = track.get(pid);
  if (!tr || tr.key !== key) {
    const b = status.bytes;
    const resident = (b.VmRSS ?? 0) + (b.VmSwap ?? 0);
    const vsz = b.VmSize ?? 0;
    tr = {
      key,
      start,
      comm: status.name,
      ppid: status.ppid,
      ino: -1,
      seen: 0,
      firstRssBytes: resident,
      lastRssBytes: resident,
      markRssBytes: resident,
      markVszBytes: vsz,
      lastVszBytes: vsz,
      pssRssBytes: -1,
      firstTick: ctx.tick,
      statm: [-1, -1, -1],
      linkBase: -1,
      values: undefined,
    };
    track.set(pid, tr);
  }
  tr.comm = status.name;
  tr.ppid = status.ppid;
  return tr;
}

/**
 * A process from status every tick (snapshots without kept files: captures, a replayed tree).
 * One stat() of fd/ gives the open fds and whether this is still the process seen before; stat
 * (for the start time) is read only for a process not seen before, or when something says it
 * may be another one.
 */
async function sampleByStatus(
  snap: Snapshot,
  ctx: SampleContext,
  pid: number,
  track: Map<number, ProcTrack>,
): Promise<SampledProcess> {
  const fd = snap.fdInfo?.(pid);
  const status = await readProcessStatus(snap, ctx, pid);
  if (!status) return undefined;
  let tr: ProcTrack | null | undefined = track.get(pid);
  if (!tr || fd === undefined || fd.ino !== tr.ino || status.name !== tr.comm || status.ppid !== tr.ppid) {
    tr = await identify(snap, ctx, pid, status, track);
    if (!tr) return undefined;
    tr.ino = fd?.ino ?? -1;
  }
  let fds = fd?.fds;
  if (fd === undefined && !snap.fdInfo) fds = await snap.fdCount?.(pid);
  return { tr, values: statusValues(status, fds) };
}

/**
 * A live process from its kept-open files (Snapshot.procCounters): statm, the fd count and the
 * thread count every tick, status only when statm moved (or once every STATUS_REFRESH_TICKS
 * ticks, for the name, the parent and the swap and file/shmem split), stat only for a process whose
 * files were just opened. Kernel threads and zombies print a zero statm and are skipped there.
 * Synchronous for a process whose statm held still (nearly all of them, every tick: no promise
 * per process); `NEEDS_STATUS` when status must be read, by sampleKeptStatus with `keptRead`.
 */
function sampleKept(
  snap: Snapshot,
  ctx: SampleContext,
  pid: number,
  track: Map<number, ProcTrack>,
): SampledProcess | typeof NEEDS_STATUS {
  const tr = track.get(pid);
  const last = tr?.values;
  const statusDue = (ctx.tick + pid) % STATUS_REFRESH_TICKS === 0;
  // The fd and thread counts of a process whose statm holds still: every countsEvery ticks.
  const countsDue = statusDue || (ctx.tick + pid) % (ctx.options.countsEvery ?? 1) === 0;
  let c: ProcCounters | undefined;
  try {
    c = snap.procCounters!(pid, tr && last && !countsDue ? tr.statm : undefined);
  } catch (e) {
    ctx.problem(`proc/${pid}/statm`, e);
    return undefined;
  }
  if (!c || c.sizePages === 0) return undefined;
  const { sizePages, residentPages, sharedPages, taskLinks, opened } = c;
  const fds = c.fds >= 0 ? c.fds : undefined;
  if (
    tr &&
    last &&
    !opened &&
    tr.statm[0] === sizePages &&
    tr.statm[1] === residentPages &&
    tr.statm[2] === sharedPages &&
    !statusDue
  ) {
    // Not counted: the counts read last (the values are not changed by their readers).
    if (!c.counted) return { tr, values: last };
    const values = { ...last };
    if (taskLinks >= 0 && tr.linkBase >= 0) values.threads = taskLinks - tr.linkBase;
    if (fds !== undefined) values.fds = fds;
    else delete values.fds;
    tr.values = values;
    return { tr, values };
  }
  keptRead.sizePages = sizePages;
  keptRead.residentPages = residentPages;
  keptRead.sharedPages = sharedPages;
  keptRead.taskLinks = taskLinks;
  keptRead.fds = c.fds;
  keptRead.opened = opened;
  return NEEDS_STATUS;
}

/** sampleKept's answer for a process whose status must be read (its counters in keptRead). */
const NEEDS_STATUS = Symbol('needs status');
/** The counters sampleKept read for the process it answered NEEDS_STATUS for. */
const keptRead = { sizePages: 0, residentPages: 0, sharedPages: 0, taskLinks: -1, fds: -1, opened: false };

/** The rest of sampleKept for a process whose statm moved (or is new, or is due a status read). */
async function sampleKeptStatus(
  snap: Snapshot,
  ctx: SampleContext,
  pid: number,
  track: Map<number, ProcTrack>,
): Promise<SampledProcess> {
  const { sizePages, residentPages, sharedPages, taskLinks, opened } = keptRead;
  const fds = keptRead.fds >= 0 ? keptRead.fds : undefined;
  let tr: ProcTrack | null | undefined = track.get(pid);
  const status = await readProcessStatus(snap, ctx, pid);
  if (!status) return undefined;
  if (!tr || opened) {
    tr = await identify(snap, ctx, pid, status, track);
    if (!tr) return undefined;
  } else {
    tr.comm = status.name;
    tr.ppid = status.ppid;
  }
  const values = statusValues(status, fds);
  tr.statm = [sizePages, residentPages, sharedPages];
  tr.linkBase = taskLinks >= 0 && values.threads !== undefined ? taskLinks - values.threads : -1;
  tr.values = values;
  return { tr, values };
}

/** Per-mapping sizes of the processes that grew most since the previous smaps tick. */
async function sampleMappings(
  snap: Snapshot,
  ctx: SampleContext,
  track: Map<number, ProcTrack>,
  growers: Grower[],
): Promise<EntitySample[]> {
  const out: EntitySample[] = [];
  for (const t of track.values()) {
    t.markRssBytes = t.lastRssBytes;
    t.markVszBytes = t.lastVszBytes;
  }
  growers.sort((x, y) => y.growth - x.growth);
  for (const g of growers.slice(0, ctx.options.smapsMaxProcesses ?? 8)) {
    const path = procPath(g.pid, 'smaps');
    let byName: ReturnType<typeof smapsByName> | undefined;
    try {
      if (snap.readLines) {
        // Read in pieces (a browser's or a JVM's smaps is megabytes) by the fast reader.
        const scan = new SmapsSizesScan();
        let empty = true;
        const read = snap.readLines(path, (t) => {
          if (t !== '') empty = false;
          scan.feed(t);
        });
        if (!read || empty) continue;
        byName = scan.finish();
      }
      if (!byName) {
        // Whole: the fast reader, else the full parser (which reads it or names the error).
        const text = await snap.readText(path);
        if (text === undefined || text === '') continue;
        byName = smapsSizes(text) ?? smapsByName(parseSmaps(text, { file: snap.describe(path) }));
      }
    } catch (e) {
      ctx.problem(`proc/${g.pid}/smaps`, e);
      continue;
    }
    for (const [name, m] of byName) {
      const e: EntitySample = {
        layer: 'mapping',
        key: `${g.key}:${name}`,
        label: name,
        pid: g.pid,
        sparse: { size_bytes: m.size, rss_bytes: m.rss, anon_bytes: m.anon, swap_bytes: m.swap },
      };
      if (g.start !== undefined) e.startTicks = g.start;
      out.push(e);
    }
  }
  return out;
}

const PROC_LABELS = ['pid', 'comm'] as const;
/** Memory types of a process, as the `type` label says them, and where each comes from. */
const MEMORY_TYPES: readonly [string, keyof ProcessMemory][] = [
  ['rss_anon', 'rssAnonBytes'],
  ['rss_file', 'rssFileBytes'],
  ['rss_shmem', 'rssShmemBytes'],
  ['swap', 'swapBytes'],
  ['pss', 'pssBytes'],
  ['uss', 'ussBytes'],
  // The four types of smaps (--smaps): private/shared × anonymous/file.
  ['private_anon', 'privateAnonBytes'],
  ['shared_anon', 'sharedAnonBytes'],
  ['private_file', 'privateFileBytes'],
  ['shared_file', 'sharedFileBytes'],
];
const PROCESS_MEMORY: MetricFamilyDoc = {
  name: 'memsleuth_process_memory_bytes',
  help: 'Memory of each process by type: rss_anon, rss_file, rss_shmem and swap (status); pss and uss (smaps_rollup, with --pss or --smaps); private_anon, shared_anon, private_file and shared_file (per-mapping smaps, with --smaps). The top processes by resident + swap.',
  type: 'gauge',
  labels: [...PROC_LABELS, 'type'],
  cardinality: '--processes (default 20) × up to 10 types; `all` for every process',
};
const PROCESS_VIRTUAL: MetricFamilyDoc = {
  name: 'memsleuth_process_virtual_memory_bytes',
  help: 'Address space of each listed process (VmSize).',
  type: 'gauge',
  labels: PROC_LABELS,
  cardinality: '--processes (default 20)',
};
const PROCESS_THREADS: MetricFamilyDoc = {
  name: 'memsleuth_process_threads',
  help: 'Threads of each listed process.',
  type: 'gauge',
  labels: PROC_LABELS,
  cardinality: '--processes (default 20)',
};
const PROCESS_FDS: MetricFamilyDoc = {
  name: 'memsleuth_process_open_fds',
  help: 'Open file descriptors of each listed process (live machine only).',
  type: 'gauge',
  labels: PROC_LABELS,
  cardinality: '--processes (default 20)',
};
const PROCESSES: MetricFamilyDoc = {
  name: 'memsleuth_processes',
  help: 'User processes (kernel threads excluded).',
  type: 'gauge',
  labels: [],
  cardinality: '1',
};
const PROCESSES_MEMORY: MetricFamilyDoc = {
  name: 'memsleuth_processes_memory_bytes',
  help: 'Memory of all user processes together, by type (the types of memsleuth_process_memory_bytes read for every process: rss_anon, rss_file, rss_shmem, swap).',
  type: 'gauge',
  labels: ['type'],
  cardinality: '4 (the types status gives)',
};
const VM_RSS = /^VmRSS:\s+(\d+) kB/m;
const VM_SWAP = /^VmSwap:\s+(\d+) kB/m;
/** One `kB` line of a status file, 0 when absent. */
function statusKb(status: string, line: RegExp): number {
  return Number(line.exec(status)?.[1] ?? 0);
}

/** Process metrics that `leaks` reads, by the recording metric they stand for. */
const RECORDING_TYPES: Record<string, string> = {
  rss_anon: 'anon_bytes',
  swap: 'swap_bytes',
  rss_shmem: 'shmem_bytes',
};

/** proc/<pid>/*: every process's memory (statm, status, smaps), keyed by pid and start time. */
export const processes: SourceEntry<Processes> = {
  name: 'processes',
  location: sourceLocation('processes'),
  title: 'processes (/proc/<pid>/status, statm, stat, smaps)',
  command: 'ps',
  async load(snap, options) {
    if ((await snap.pids()).length === 0) return undefined;
    // --no-smaps: status alone, no page table walked (no PSS, USS or four types).
    const opts: ReadProcessesOptions = { memory: options.smaps === false ? 'status' : 'types' };
    // A live manifest probes every source: the caller's page size saves reading it again.
    if (options.pageSizeBytes !== undefined) opts.pageSizeBytes = options.pageSizeBytes;
    return readProcesses(snap, { ...opts, ...parseSettings(options) });
  },
  absentReason: () => 'no proc/<pid> files',

  async report(procs, ctx) {
    const list = procs.processes.filter((p) => !p.kernelThread);
    const havePss = list.some((p) => p.pssBytes !== undefined);
    const sorted = [...list].sort(
      (a, b) => (b.pssBytes ?? b.rssBytes) - (a.pssBytes ?? a.rssBytes) || a.pid - b.pid,
    );
    const section: ProcessesSection = {
      count: list.length,
      kernelThreads: procs.processes.length - list.length,
      top: sorted.slice(0, ctx.top),
      sumRssBytes: list.reduce((s, p) => s + p.rssBytes, 0),
      skipped: procs.skipped,
    };
    if (havePss) section.sumPssBytes = list.reduce((s, p) => s + (p.pssBytes ?? 0), 0);
    const anonPages = ctx.report.accounting?.parts.find((p) => p.name === 'AnonPages')?.bytes;
    const noSmaps = ctx.data.options.smaps === false;
    if (anonPages !== undefined) {
      const pssAnon = noSmaps ? undefined : await sumPssAnon(ctx.snap, list, ctx.options);
      const anonOf = (p: ProcessMemory) => (noSmaps ? p.rssAnonBytes : p.privateAnonBytes) ?? 0;
      const processAnon = pssAnon?.bytes ?? list.reduce((s, p) => s + anonOf(p), 0);
      const diff = processAnon - anonPages;
      section.anonCrossCheck = {
        basis: pssAnon !== undefined ? 'Pss_Anon' : noSmaps ? 'RssAnon' : 'Anonymous',
        processAnonBytes: processAnon,
        anonPagesBytes: anonPages,
        differenceBytes: diff,
        differencePercent: anonPages > 0 ? (diff / anonPages) * 100 : 0,
        unreadableProcesses: pssAnon?.unreadable ?? 0,
      };
    }
    return { processes: section };
  },

  findings(ctx) {
    const out: Finding[] = [];
    const cross = ctx.report.processes?.anonCrossCheck;
    if (cross && Math.abs(cross.differencePercent) > 10 && Math.abs(cross.differenceBytes) > 16 * MiB) {
      out.push({
        severity: 'info',
        title: `Process anonymous memory (${cross.basis}) differs from AnonPages by ${cross.differencePercent.toFixed(1)}%`,
        detail:
          cross.differenceBytes < 0
            ? 'Some anonymous memory is mapped by no process that could be read (processes skipped or unreadable, or anonymous pages the kernel still holds).'
            : cross.basis !== 'Pss_Anon'
              ? `Processes report more anonymous memory than the kernel counts: ${cross.basis === 'RssAnon' ? 'status RssAnon' : 'smaps Anonymous'} counts copy-on-write pages shared after fork in every sharer.`
              : 'Processes report more anonymous memory than AnonPages: processes started or grew between reading meminfo and their smaps (a busy machine).',
        next: [],
      });
    }
    const skipped = ctx.manifest.skippedPids;
    if (skipped && skipped.length > 0) {
      out.push({
        severity: 'info',
        title: `${skipped.length} process(es) exited during the capture`,
        detail: 'They are not in the process tables.',
        next: [],
      });
    }
    return out;
  },

  tables(r) {
    const p = r.processes;
    if (!p) return [];
    const opt = (n: number | undefined) => (n === undefined ? '-' : formatBytes(n));
    const sums = [`sum RSS ${formatBytes(p.sumRssBytes)}`];
    if (p.sumPssBytes !== undefined) sums.push(`sum PSS ${formatBytes(p.sumPssBytes)}`);
    const c = p.anonCrossCheck;
    if (c) {
      sums.push(
        `sum ${c.basis} ${formatBytes(c.processAnonBytes)} vs AnonPages ${formatBytes(c.anonPagesBytes)} (${c.differenceBytes >= 0 ? '+' : ''}${formatBytes(c.differenceBytes)}, ${c.differencePercent.toFixed(1)}%` +
          (c.unreadableProcesses ? `, ${c.unreadableProcesses} unreadable` : '') +
          ')',
      );
    }
    if (p.skipped.length) sums.push(`${p.skipped.length} skipped`);
    return [
      {
        source: 'processes',
        title: `Top processes by PSS (${p.count} processes${p.kernelThreads ? `, ${p.kernelThreads} kernel threads not shown` : ''})`,
        columns: [
          { header: 'PID', align: 'right' },
          { header: 'NAME', max: 12 },
          { header: 'RSS', align: 'right' },
          { header: 'PSS', align: 'right' },
          { header: 'USS', align: 'right' },
          { header: 'SWAP', align: 'right' },
          { header: 'PRIV-ANON', align: 'right' },
          { header: 'SHR-ANON', align: 'right' },
          { header: 'PRIV-FILE', align: 'right' },
          { header: 'SHR-FILE', align: 'right' },
        ],
        rows: p.top.map((x) => [
          String(x.pid),
          x.name,
          formatBytes(x.rssBytes),
          opt(x.pssBytes),
          opt(x.ussBytes),
          formatBytes(x.swapBytes),
          opt(x.privateAnonBytes),
          opt(x.sharedAnonBytes),
          opt(x.privateFileBytes),
          opt(x.sharedFileBytes),
        ]),
        notes: [sums.join('; ')],
      },
    ];
  },

  diff(b, a) {
    // A process is the same one when pid, name and (when known) start time agree.
    const key = (p: ProcessMemory) => `${p.pid}:${p.name}:${p.startTimeTicks ?? ''}`;
    const size = (p: ProcessMemory) => p.pssBytes ?? p.rssBytes;
    const mb = new Map(b.processes.map((p) => [key(p), p]));
    const ma = new Map(a.processes.map((p) => [key(p), p]));
    const rows: DiffRow[] = [...new Set([...mb.keys(), ...ma.keys()])].map((k) => {
      const pb = mb.get(k);
      const pa = ma.get(k);
      const p = (pa ?? pb)!;
      const vb = pb ? size(pb) : 0;
      const va = pa ? size(pa) : 0;
      return {
        source: 'processes',
        name: `${p.pid} ${p.name}`,
        detail: pa?.pssBytes !== undefined || pb?.pssBytes !== undefined ? 'PSS' : 'RSS',
        beforeBytes: vb,
        afterBytes: va,
        deltaBytes: va - vb,
      };
    });
    return { rows };
  },

  layers: ['process', 'mapping'],
  async sample(snap, ctx) {
    const out: EntitySample[] = [];
    const opts = ctx.options;
    const tick = ctx.tick;
    const pssNow = due(tick, opts.pssEvery ?? 6);
    const smapsNow = tick > 1 && due(tick, opts.smapsEvery ?? 12);
    const track = tracked(ctx);
    const growers: Grower[] = [];
    const pids = await snap.pids();
    // An index, not for-of: no iterator result per process in the unoptimized recorder.
    for (let k = 0; k < pids.length; k++) {
      const pid = pids[k]!;
      if (opts.pidFilter && !opts.pidFilter(pid)) continue;
      let got: SampledProcess;
      if (snap.procCounters) {
        const quick = sampleKept(snap, ctx, pid, track);
        got = quick === NEEDS_STATUS ? await sampleKeptStatus(snap, ctx, pid, track) : quick;
      } else got = await sampleByStatus(snap, ctx, pid, track);
      if (!got) continue;
      const { tr, values } = got;
      tr.seen = tick;
      const sample: EntitySample = { layer: 'process', key: tr.key, label: tr.comm, pid, values };
      if (tr.start !== undefined) sample.startTicks = tr.start;
      const resident = values.rss_bytes! + values.swap_bytes!;
      // PSS walks the page tables: read it for processes whose memory moved since their last
      // reading (a sleeping process's PSS moves only as others share its pages). Live, not for
      // a process that appeared since the last tick: a build's compilers come and go between two.
      const justStarted = snap.procCounters !== undefined && tick > 1 && tr.firstTick === tick;
      if (pssNow && !justStarted && resident !== tr.pssRssBytes) {
        const path = procPath(pid, 'smaps_rollup');
        const roll = await snap.readText(path);
        try {
          const pss =
            roll === undefined || roll === ''
              ? undefined
              : (rollupFields(roll) ?? parseSmapsRollup(roll, { file: snap.describe(path) })).bytes.Pss;
          if (pss !== undefined) {
            sample.sparse = { pss_bytes: pss };
            tr.pssRssBytes = resident;
          }
        } catch (e) {
          ctx.problem(`proc/${pid}/smaps_rollup`, e);
        }
      }
      out.push(sample);
      const vsz = values.vsz_bytes!;
      tr.lastRssBytes = resident;
      tr.lastVszBytes = vsz;
      const growth = Math.max(resident - tr.markRssBytes, vsz - tr.markVszBytes);
      if (growth >= (opts.smapsGrowthBytes ?? MiB))
        growers.push({ key: tr.key, pid, start: tr.start, growth });
    }
    // forEach: no entry array per process and tick (the recorder runs unoptimized, cli/daemon.ts).
    track.forEach((t, pid) => {
      if (t.seen !== tick) track.delete(pid);
    });
    if (smapsNow) out.push(...(await sampleMappings(snap, ctx, track, growers)));
    return out;
  },

  metrics: {
    families: [PROCESS_MEMORY, PROCESS_VIRTUAL, PROCESS_THREADS, PROCESS_FDS, PROCESSES, PROCESSES_MEMORY],
    // Every scrape: status of every process (to rank them and sum them); stat and statm of the
    // listed ones, and smaps_rollup or smaps only when asked (processDetail).
    async load(snap, ctx) {
      const pids = await snap.pids();
      if (pids.length === 0) return undefined;
      const page = ctx.pageSizeBytes;
      const skipped: Processes['skipped'] = [];
      const users: { pid: number; status: string; size: number }[] = [];
      for (const pid of pids) {
        const status = await snap.readText(procPath(pid, 'status'));
        if (status === undefined || status.trim() === '') {
          skipped.push({ pid, reason: 'exited while being read' });
          continue;
        }
        // Ranking needs two lines; processMemory parses the whole file once below.
        if (!/^VmSize:/m.test(status)) continue; // a kernel thread, or a zombie: no memory
        users.push({ pid, status, size: (statusKb(status, VM_RSS) + statusKb(status, VM_SWAP)) * 1024 });
      }
      users.sort((a, b) => b.size - a.size || a.pid - b.pid);
      const n = topN(users, ctx.options.processTop ?? 20).top.length;
      const detail = ctx.options.processDetail ?? 'status';
      const extra =
        detail === 'smaps' ? (['smaps'] as const) : detail === 'pss' ? (['smaps_rollup'] as const) : [];
      const processes: ProcessMemory[] = [];
      for (const [i, u] of users.entries()) {
        const files: Parameters<typeof processMemory>[1] = { status: u.status };
        if (i < n) {
          for (const f of ['stat', 'statm', ...extra] as const) {
            const t = await snap.readText(procPath(u.pid, f));
            if (t !== undefined) files[f] = t;
          }
        }
        try {
          processes.push(processMemory(u.pid, files, page, (p) => snap.describe(p)));
        } catch {
          skipped.push({ pid: u.pid, reason: 'exited while being read' });
        }
      }
      return { processes, skipped };
    },
    async collect(procs, ctx) {
      const user = procs.processes.filter((p) => !p.kernelThread);
      const size = (p: ProcessMemory) => p.rssBytes + p.swapBytes;
      const sorted = [...user].sort((a, b) => size(b) - size(a) || a.pid - b.pid);
      const { top } = topN(sorted, ctx.options.processTop ?? 20);
      const mem = FamilyBuilder.of(PROCESS_MEMORY);
      const virt = FamilyBuilder.of(PROCESS_VIRTUAL);
      const threads = FamilyBuilder.of(PROCESS_THREADS);
      const fds = FamilyBuilder.of(PROCESS_FDS);
      // Two processes of one name and pid cannot coexist; a pid reused by another name is a new series.
      for (const p of top) {
        const id = [p.pid, p.name];
        for (const [type, field] of MEMORY_TYPES) {
          const v = p[field];
          if (typeof v === 'number') mem.add([...id, type], v);
        }
        virt.add(id, p.vszBytes);
        if (p.threads !== undefined) threads.add(id, p.threads);
        const n = await ctx.snap.fdCount?.(p.pid);
        if (n !== undefined) fds.add(id, n);
      }
      const sums = FamilyBuilder.of(PROCESSES_MEMORY);
      // Only the types every process has (status's; PSS and USS are read for the listed ones).
      for (const [type, field] of MEMORY_TYPES) {
        if (user.length && user.every((p) => typeof p[field] === 'number'))
          sums.add(
            [type],
            user.reduce((s, p) => s + (p[field] as number), 0),
          );
      }
      const count = FamilyBuilder.of(PROCESSES).add([], user.length);
      return nonEmpty(mem, virt, threads, fds, count, sums);
    },
    recording: [
      {
        selector: 'memsleuth_process_memory_bytes{type=~"rss_anon|swap|rss_shmem"}',
        layer: 'process',
        key: (l) => `${l.pid}:${l.comm}`,
        metric: (l) => RECORDING_TYPES[l.type ?? ''],
        label: (l) => l.comm,
        pid: (l) => Number(l.pid),
      },
      ...(
        [
          ['memsleuth_process_virtual_memory_bytes', 'vsz_bytes'],
          ['memsleuth_process_threads', 'threads'],
          ['memsleuth_process_open_fds', 'fds'],
        ] as const
      ).map(([selector, metric]) => ({
        selector,
        layer: 'process' as const,
        key: (l: Readonly<Record<string, string>>) => `${l.pid}:${l.comm}`,
        metric: () => metric,
        label: (l: Readonly<Record<string, string>>) => l.comm,
        pid: (l: Readonly<Record<string, string>>) => Number(l.pid),
      })),
    ],
  },
};
