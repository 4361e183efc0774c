import { type ProcessMemory, processMemory, readProcesses, smapsByName } from '../../analysis/process.js';
import type { EntitySample } from '../../model/samples.js';
import { procPath, type Snapshot, sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { PF_KTHREAD, parseProcStat } from '../../sources/proc_stat.js';
import { parseProcStatus } from '../../sources/proc_status.js';
import { parseSmaps, parseSmapsRollup } from '../../sources/smaps.js';
import { FamilyBuilder, nonEmpty, topN } from '../families.js';
import {
  type DiffRow,
  due,
  type Finding,
  type MetricFamilyDoc,
  type SampleContext,
  type SourceEntry,
} from '../types.js';

export interface AnonCrossCheck {
  /**
   * What was summed over processes: Pss_Anon (smaps_rollup) shares copy-on-write pages
   * among their mappers; `Anonymous` (per-mapping smaps) counts them in every sharer.
   */
  basis: 'Pss_Anon' | 'Anonymous';
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
        v = parseSmapsRollup(rollup, { file: snap.describe(path) }).bytes.Pss_Anon;
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

/** What the recording keeps of a process between ticks, to find the ones that grow. */
interface ProcTrack {
  firstRssBytes: number;
  lastRssBytes: number;
  /** RSS+swap and VSZ at the previous smaps tick. */
  markRssBytes: number;
  markVszBytes: number;
  lastVszBytes: number;
  comm: string;
}

function tracked(ctx: SampleContext): Map<string, ProcTrack> {
  ctx.state.tracked ??= new Map<string, ProcTrack>();
  return ctx.state.tracked as Map<string, ProcTrack>;
}

/** The process whose RSS+swap grew most since it was first seen (the recorder's progress line). */
export function topGrower(
  state: Record<string, unknown>,
): { key: string; comm: string; growthBytes: number } | undefined {
  const t = state.tracked as Map<string, ProcTrack> | undefined;
  let best: { key: string; comm: string; growthBytes: number } | undefined;
  for (const [key, p] of t ?? []) {
    const g = p.lastRssBytes - p.firstRssBytes;
    if (!best || g > best.growthBytes) best = { key, comm: p.comm, growthBytes: g };
  }
  return best;
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
    const opts: { withSmaps: boolean; pageSizeBytes?: number } = { withSmaps: options.smaps !== false };
    if (options.pageSizeBytes !== undefined) opts.pageSizeBytes = options.pageSizeBytes;
    return readProcesses(snap, opts);
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
    if (anonPages !== undefined) {
      const pssAnon = await sumPssAnon(ctx.snap, list);
      const processAnon = pssAnon?.bytes ?? list.reduce((s, p) => s + (p.privateAnonBytes ?? 0), 0);
      const diff = processAnon - anonPages;
      section.anonCrossCheck = {
        basis: pssAnon !== undefined ? 'Pss_Anon' : 'Anonymous',
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
            : cross.basis === 'Anonymous'
              ? 'Processes report more anonymous memory than the kernel counts: smaps Anonymous counts copy-on-write pages shared after fork in every sharer.'
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
    const pssNow = due(ctx.tick, opts.pssEvery ?? 6);
    const smapsNow = ctx.tick > 1 && due(ctx.tick, opts.smapsEvery ?? 12);
    const track = tracked(ctx);
    const alive = new Set<string>();
    const growers: { key: string; pid: number; start: number | undefined; growth: number }[] = [];
    for (const pid of await snap.pids()) {
      if (opts.pidFilter && !opts.pidFilter(pid)) continue;
      const statText = await snap.readText(procPath(pid, 'stat'));
      const statusText = await snap.readText(procPath(pid, 'status'));
      if (statusText === undefined || statusText === '') continue; // vanished
      let stat: ReturnType<typeof parseProcStat> | undefined;
      let status: ReturnType<typeof parseProcStatus>;
      try {
        stat = statText === undefined || statText === '' ? undefined : parseProcStat(statText);
        status = parseProcStatus(statusText);
      } catch (e) {
        // A process exiting between two reads can leave a truncated file: skip it this tick.
        ctx.problem(`proc/${pid}`, e);
        continue;
      }
      // Kernel threads have no mm: no VmSize (and PF_KTHREAD in stat's flags).
      if ((stat && stat.flags & PF_KTHREAD) || status.bytes.VmSize === undefined) continue;
      const start = stat?.startTimeTicks;
      // pid and start time name a process for good; a capture without stat has only the pid.
      const key = `${pid}:${start ?? ''}`;
      alive.add(key);
      const b = status.bytes;
      const values: Record<string, number> = {
        rss_bytes: b.VmRSS ?? 0,
        anon_bytes: b.RssAnon ?? 0,
        file_bytes: b.RssFile ?? 0,
        shmem_bytes: b.RssShmem ?? 0,
        swap_bytes: b.VmSwap ?? 0,
        vsz_bytes: b.VmSize ?? 0,
      };
      const threads = status.counts.Threads ?? stat?.numThreads;
      if (threads !== undefined) values.threads = threads;
      const fds = await snap.fdCount?.(pid);
      if (fds !== undefined) values.fds = fds;
      const sample: EntitySample = { layer: 'process', key, label: status.name, pid, values };
      if (start !== undefined) sample.startTicks = start;
      if (pssNow) {
        const roll = await snap.readText(procPath(pid, 'smaps_rollup'));
        try {
          const pss = roll === undefined || roll === '' ? undefined : parseSmapsRollup(roll).bytes.Pss;
          if (pss !== undefined) sample.sparse = { pss_bytes: pss };
        } catch (e) {
          ctx.problem(`proc/${pid}/smaps_rollup`, e);
        }
      }
      out.push(sample);
      const resident = values.rss_bytes! + values.swap_bytes!;
      const vsz = values.vsz_bytes!;
      let tr = track.get(key);
      if (!tr) {
        tr = {
          firstRssBytes: resident,
          lastRssBytes: resident,
          markRssBytes: resident,
          markVszBytes: vsz,
          lastVszBytes: vsz,
          comm: status.name,
        };
        track.set(key, tr);
      }
      tr.lastRssBytes = resident;
      tr.lastVszBytes = vsz;
      const growth = Math.max(resident - tr.markRssBytes, vsz - tr.markVszBytes);
      if (growth >= (opts.smapsGrowthBytes ?? MiB)) growers.push({ key, pid, start, growth });
    }
    for (const k of track.keys()) if (!alive.has(k)) track.delete(k);
    if (!smapsNow) return out;
    for (const t of track.values()) {
      t.markRssBytes = t.lastRssBytes;
      t.markVszBytes = t.lastVszBytes;
    }
    growers.sort((x, y) => y.growth - x.growth);
    for (const g of growers.slice(0, opts.smapsMaxProcesses ?? 8)) {
      const path = procPath(g.pid, 'smaps');
      const text = await snap.readText(path);
      if (text === undefined || text === '') continue;
      let byName: ReturnType<typeof smapsByName>;
      try {
        byName = smapsByName(parseSmaps(text, { file: snap.describe(path) }));
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
