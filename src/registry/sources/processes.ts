import { type ProcessMemory, readProcesses, smapsByName } from '../../analysis/process.js';
import type { EntitySample } from '../../model/samples.js';
import { procPath, type Snapshot, sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { PF_KTHREAD, parseProcStat } from '../../sources/proc_stat.js';
import { parseProcStatus } from '../../sources/proc_status.js';
import { parseSmaps, parseSmapsRollup } from '../../sources/smaps.js';
import { type DiffRow, due, type Finding, type SampleContext, type SourceEntry } from '../types.js';
import { parseSettings } from './read.js';

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

/** proc/<pid>/*: every process's memory (statm, status, smaps), keyed by pid and start time. */
export const processes: SourceEntry<Processes> = {
  name: 'processes',
  location: sourceLocation('processes'),
  title: 'processes (/proc/<pid>/status, statm, stat, smaps)',
  command: 'ps',
  async load(snap, options) {
    if ((await snap.pids()).length === 0) return undefined;
    return readProcesses(snap, { withSmaps: options.smaps !== false, ...parseSettings(options) });
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
};
