import type { Manifest, MissingSource, Snapshot } from '../model/snapshot.js';
import { parseBuddyinfo } from '../sources/buddyinfo.js';
import { parseMeminfo } from '../sources/meminfo.js';
import { parseSlabinfo, slabCacheBytes } from '../sources/slabinfo.js';
import { parseSmapsRollup } from '../sources/smaps.js';
import { parseVmallocinfo } from '../sources/vmallocinfo.js';
import { parseVmstat } from '../sources/vmstat.js';
import { parseZoneinfo } from '../sources/zoneinfo.js';
import { type Accounting, computeAccounting, zoneTotals } from './accounting.js';
import { type ProcessMemory, readProcesses } from './process.js';

export interface ReportOptions {
  /** Rows per top list. */
  top?: number;
  /** Read smaps for PSS/USS and the four memory types (costly on big machines). */
  smaps?: boolean;
}

export interface SlabRow {
  name: string;
  activeObjs: number;
  numObjs: number;
  objSizeBytes: number;
  /** activeObjs × objSize: what the objects use. */
  objectBytes: number;
  /** numSlabs × pagesPerSlab × page size: what the cache holds from the page allocator. */
  slabBytes: number;
  /** From /sys/kernel/slab/<cache>/reclaim_account; undefined when not captured. */
  reclaimable: boolean | undefined;
}

export interface VmallocCallerRow {
  caller: string;
  module?: string;
  areas: number;
  /** Pages backing the areas × page size (ioremap and vmap areas own no pages). */
  bytes: number;
}

export interface BuddyZoneRow {
  node: number;
  zone: string;
  freeBlocks: number[];
  freePages: number;
  freeBytes: number;
}

export interface Finding {
  severity: 'info' | 'warning' | 'critical';
  title: string;
  detail: string;
  /** Commands or actions to take next. */
  next: string[];
}

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

export interface Report {
  snapshot: {
    origin: string;
    hostname: string;
    kernelRelease: string;
    time: string;
    uptimeSeconds: number;
    pageSizeBytes: number;
  };
  accounting?: Accounting;
  memAvailableBytes?: number;
  swap?: { totalBytes: number; freeBytes: number; usedBytes: number };
  processes?: {
    count: number;
    top: ProcessMemory[];
    sumRssBytes: number;
    sumPssBytes?: number;
    anonCrossCheck?: AnonCrossCheck;
    skipped: { pid: number; reason: string }[];
  };
  slab?: { caches: SlabRow[]; cacheCount: number; totalSlabBytes: number; reclaimKnown: boolean };
  vmalloc?: { byCaller: VmallocCallerRow[]; callerCount: number; totalBytes: number };
  buddy?: { zones: BuddyZoneRow[]; maxOrder: number; totalFreeBytes: number };
  findings: Finding[];
  /** Sources that could not be read, with why and how to enable them. */
  unavailable: MissingSource[];
}

const MiB = 1024 * 1024;

/** Build the report of one snapshot (or the live machine). Parse errors propagate. */
export async function buildReport(snap: Snapshot, opts: ReportOptions = {}): Promise<Report> {
  const top = opts.top ?? 10;
  const manifest: Manifest = await snap.manifest();
  const pageSize = manifest.pageSizeBytes;
  const unavailable: MissingSource[] = [...manifest.missing];
  const missingPaths = new Set(unavailable.map((m) => m.path));
  const note = (path: string, enable: string) => {
    if (missingPaths.has(path)) return;
    missingPaths.add(path);
    unavailable.push({ path, reason: snap.whyMissing(path) ?? 'not present', enable });
  };

  const report: Report = {
    snapshot: {
      origin: snap.origin,
      hostname: manifest.hostname,
      kernelRelease: manifest.kernelRelease,
      time: manifest.time,
      uptimeSeconds: manifest.uptimeSeconds,
      pageSizeBytes: pageSize,
    },
    findings: [],
    unavailable,
  };

  const meminfoText = await snap.readText('meminfo');
  const vmstatText = await snap.readText('vmstat');
  const vmstat =
    vmstatText === undefined ? undefined : parseVmstat(vmstatText, { file: snap.describe('vmstat') });
  if (meminfoText !== undefined) {
    const meminfo = parseMeminfo(meminfoText, { file: snap.describe('meminfo') });
    const zoneText = await snap.readText('zoneinfo');
    const zones =
      zoneText === undefined ? undefined : parseZoneinfo(zoneText, { file: snap.describe('zoneinfo') });
    report.accounting = computeAccounting(meminfo, vmstat, pageSize, zones && zoneTotals(zones, pageSize));
    report.memAvailableBytes = meminfo.bytes.MemAvailable;
    if (meminfo.bytes.SwapTotal !== undefined) {
      const total = meminfo.bytes.SwapTotal;
      const free = meminfo.bytes.SwapFree ?? 0;
      report.swap = { totalBytes: total, freeBytes: free, usedBytes: total - free };
    }
  } else {
    note('meminfo', 'always present on Linux: is this a snapshot of a Linux machine?');
  }

  // Processes, with the anonymous-memory cross-check.
  const procs = await readProcesses(snap, { withSmaps: opts.smaps !== false });
  if (procs.processes.length > 0) {
    const list = procs.processes;
    const havePss = list.some((p) => p.pssBytes !== undefined);
    const sorted = [...list].sort(
      (a, b) => (b.pssBytes ?? b.rssBytes) - (a.pssBytes ?? a.rssBytes) || a.pid - b.pid,
    );
    report.processes = {
      count: list.length,
      top: sorted.slice(0, top),
      sumRssBytes: list.reduce((s, p) => s + p.rssBytes, 0),
      skipped: procs.skipped,
    };
    if (havePss) report.processes.sumPssBytes = list.reduce((s, p) => s + (p.pssBytes ?? 0), 0);
    const anonPages = report.accounting?.parts.find((p) => p.name === 'AnonPages')?.bytes;
    if (anonPages !== undefined) {
      const pssAnon = await sumPssAnon(snap, list);
      const basis = pssAnon !== undefined ? 'Pss_Anon' : 'Anonymous';
      const processAnon = pssAnon?.bytes ?? list.reduce((s, p) => s + (p.privateAnonBytes ?? 0), 0);
      const diff = processAnon - anonPages;
      report.processes.anonCrossCheck = {
        basis,
        processAnonBytes: processAnon,
        anonPagesBytes: anonPages,
        differenceBytes: diff,
        differencePercent: anonPages > 0 ? (diff / anonPages) * 100 : 0,
        unreadableProcesses: pssAnon?.unreadable ?? 0,
      };
    }
  } else {
    note('proc/*', 'capture with `memsleuth snapshot` (processes are included by default)');
  }

  // Slab caches.
  const slabText = await snap.readText('slabinfo');
  if (slabText !== undefined) {
    const slab = parseSlabinfo(slabText, { file: snap.describe('slabinfo') });
    const rows: SlabRow[] = [];
    let reclaimKnown = false;
    for (const c of slab.caches) {
      const { objectBytes, slabBytes } = slabCacheBytes(c, pageSize);
      const ra = await snap.readText(`slab/${c.name}.reclaim_account`);
      const reclaimable = ra === undefined ? undefined : ra.trim() === '1';
      if (reclaimable !== undefined) reclaimKnown = true;
      rows.push({
        name: c.name,
        activeObjs: c.activeObjs,
        numObjs: c.numObjs,
        objSizeBytes: c.objSizeBytes,
        objectBytes,
        slabBytes,
        reclaimable,
      });
    }
    rows.sort((a, b) => b.slabBytes - a.slabBytes || (a.name < b.name ? -1 : 1));
    report.slab = {
      caches: rows.slice(0, top),
      cacheCount: rows.length,
      totalSlabBytes: rows.reduce((s, r) => s + r.slabBytes, 0),
      reclaimKnown,
    };
  } else if (!missingPaths.has('slabinfo')) {
    note('slabinfo', 'needs root (mode 0400)');
  }

  // vmalloc by caller.
  const vmText = await snap.readText('vmallocinfo');
  if (vmText !== undefined) {
    const vm = parseVmallocinfo(vmText, { file: snap.describe('vmallocinfo') });
    const byCaller = new Map<string, VmallocCallerRow>();
    let total = 0;
    for (const a of vm.areas) {
      if (a.pages === undefined || a.pages === 0) continue;
      const bytes = a.pages * pageSize;
      total += bytes;
      const caller = a.caller?.func ?? '(unknown)';
      const key = a.caller?.module ? `${caller} [${a.caller.module}]` : caller;
      let row = byCaller.get(key);
      if (!row) {
        row = { caller, areas: 0, bytes: 0 };
        if (a.caller?.module) row.module = a.caller.module;
        byCaller.set(key, row);
      }
      row.areas++;
      row.bytes += bytes;
    }
    const rows = [...byCaller.values()].sort((a, b) => b.bytes - a.bytes || (a.caller < b.caller ? -1 : 1));
    report.vmalloc = { byCaller: rows.slice(0, top), callerCount: rows.length, totalBytes: total };
  }

  // Buddy allocator free lists.
  const buddyText = await snap.readText('buddyinfo');
  if (buddyText !== undefined) {
    const buddy = parseBuddyinfo(buddyText, { file: snap.describe('buddyinfo') });
    const zones = buddy.zones.map((z) => ({
      node: z.node,
      zone: z.zone,
      freeBlocks: z.freeBlocks,
      freePages: z.freePages,
      freeBytes: z.freePages * pageSize,
    }));
    report.buddy = {
      zones,
      maxOrder: buddy.maxOrder,
      totalFreeBytes: zones.reduce((s, z) => s + z.freeBytes, 0),
    };
  }

  report.findings = findings(report, manifest);
  return report;
}

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
      const path = `proc/${p.pid}/smaps_rollup`;
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

function pct(part: number, total: number): string {
  return `${((part / total) * 100).toFixed(1)}%`;
}

function findings(r: Report, manifest: Manifest): Finding[] {
  const out: Finding[] = [];
  const a = r.accounting;
  const has = (path: string) => !r.unavailable.some((m) => m.path === path);
  if (a) {
    const total = a.memTotalBytes;
    const part = (n: string) => a.parts.find((p) => p.name === n)?.bytes ?? 0;
    const un = a.unaccountedBytes;
    if (un > total * 0.1) {
      out.push({
        severity: 'critical',
        title: `Unaccounted memory is ${pct(un, total)} of RAM`,
        detail:
          'No meminfo counter covers it: pages taken straight from the buddy allocator (drivers, DMA rings, network page pools). Only page_owner can name the code that holds them.',
        next: has('page_owner')
          ? [
              'memsleuth page-owner top --by function SNAPSHOT',
              'take a second snapshot later and run: memsleuth page-owner diff BEFORE AFTER',
            ]
          : [
              'boot with page_owner=on (needs CONFIG_PAGE_OWNER) and mount debugfs',
              'then: memsleuth snapshot -o before.tar.gz; wait; memsleuth snapshot -o after.tar.gz; memsleuth diff before.tar.gz after.tar.gz',
            ],
      });
    } else if (un < -total * 0.02) {
      out.push({
        severity: 'info',
        title: `Counters exceed MemTotal by ${pct(-un, total)}`,
        detail:
          'Some meminfo fields overlap on this kernel (e.g. VmallocUsed counting ioremap space before 4.4, or the counters were read at slightly different moments).',
        next: [],
      });
    }
    const sun = part('SUnreclaim');
    if (sun > total * 0.1) {
      out.push({
        severity: 'warning',
        title: `SUnreclaim (unreclaimable slab) is ${pct(sun, total)} of RAM`,
        detail: 'Unreclaimable slab this large is the usual sign of a kernel object leak.',
        next: [
          'memsleuth slab top SNAPSHOT  (which cache)',
          'boot with slub_debug=U,<cache> and run: memsleuth slab traces --cache <cache>',
          'with CONFIG_DEBUG_KMEMLEAK: memsleuth kmemleak scan',
        ],
      });
    }
    const vmalloc = part('VmallocUsed');
    if (vmalloc > total * 0.1) {
      out.push({
        severity: 'warning',
        title: `vmalloc holds ${pct(vmalloc, total)} of RAM`,
        detail: 'Large vmalloc use: look at which callers own the areas.',
        next: ['memsleuth vmalloc top SNAPSHOT', 'memsleuth vmalloc diff BEFORE AFTER'],
      });
    }
    const ptables = part('PageTables');
    if (ptables > total * 0.05) {
      out.push({
        severity: 'warning',
        title: `Page tables use ${pct(ptables, total)} of RAM`,
        detail: 'Many processes mapping large areas (or huge sparse mappings) without huge pages.',
        next: ['memsleuth ps --sort vsz SNAPSHOT'],
      });
    }
    if (r.memAvailableBytes !== undefined && r.memAvailableBytes < total * 0.1) {
      out.push({
        severity: 'critical',
        title: `MemAvailable is only ${pct(r.memAvailableBytes, total)} of RAM`,
        detail: 'The machine is close to reclaim storms and the OOM killer.',
        next: ['memsleuth record --interval 10  (then memsleuth leaks) to see what grows'],
      });
    }
    const cache = part('Cached-Shmem') + part('Buffers');
    if (cache > total * 0.5) {
      out.push({
        severity: 'info',
        title: `Page cache holds ${pct(cache, total)} of RAM`,
        detail: 'Page cache is reclaimable: it is not a leak and is given back under pressure.',
        next: [],
      });
    }
    const shmem = part('Shmem');
    if (shmem > total * 0.1) {
      out.push({
        severity: 'warning',
        title: `Shared memory (Shmem) is ${pct(shmem, total)} of RAM`,
        detail: 'tmpfs files, shared anonymous mappings and SysV/POSIX shm are not reclaimable without swap.',
        next: ['df -h -t tmpfs', 'ipcs -m', 'memsleuth ps --sort rss SNAPSHOT'],
      });
    }
  }
  const cross = r.processes?.anonCrossCheck;
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
  if (r.swap && r.swap.usedBytes > 0 && a && r.swap.usedBytes > a.memTotalBytes * 0.05) {
    out.push({
      severity: 'info',
      title: `${pct(r.swap.usedBytes, a.memTotalBytes)} of RAM's worth is swapped out`,
      detail: 'Swapped anonymous memory is not in any RAM counter above.',
      next: ['memsleuth ps --sort swap SNAPSHOT'],
    });
  }
  if (r.buddy && a) {
    const memFree = a.parts.find((p) => p.name === 'MemFree')?.bytes ?? 0;
    const buddyFree = r.buddy.totalFreeBytes;
    if (Math.abs(memFree - buddyFree) > Math.max(64 * MiB, memFree * 0.1)) {
      out.push({
        severity: 'info',
        title: `MemFree (${(memFree / MiB).toFixed(0)} MiB) and the buddy free lists (${(buddyFree / MiB).toFixed(0)} MiB) disagree`,
        detail:
          'Free pages are counted outside the buddyinfo free lists: per-CPU page lists, memory still being initialised (deferred struct page init), hot-plugged or ballooned memory, or free page reporting to a hypervisor.',
        next: ['grep -E "zone|free|managed|present" /proc/zoneinfo'],
      });
    }
    for (const z of r.buddy.zones) {
      const high = z.freeBlocks.slice(3).reduce((s, n, i) => s + n * 2 ** (i + 3), 0);
      if (z.freeBytes > 256 * MiB && high < z.freePages * 0.05) {
        out.push({
          severity: 'warning',
          title: `Node ${z.node} zone ${z.zone}: free memory is fragmented`,
          detail: `Less than 5% of its ${z.freePages} free pages are in blocks of order 3 or more; higher-order allocations may fail or stall.`,
          next: [
            'cat /proc/pagetypeinfo',
            'echo 1 > /proc/sys/vm/compact_memory  (if you decide to compact)',
          ],
        });
      }
    }
  }
  if (manifest.skippedPids && manifest.skippedPids.length > 0) {
    out.push({
      severity: 'info',
      title: `${manifest.skippedPids.length} process(es) exited during the capture`,
      detail: 'They are not in the process tables.',
      next: [],
    });
  }
  const order = { critical: 0, warning: 1, info: 2 } as const;
  return out.sort((x, y) => order[x.severity] - order[y.severity]);
}
