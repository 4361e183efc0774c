import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { computeAccounting } from '../analysis/accounting.js';
import type { Frame } from '../model/frame.js';
import type { EntitySample, TickSample } from '../model/samples.js';
import { allocTagKey, parseAllocinfo } from '../sources/allocinfo.js';
import { parseBuddyinfo } from '../sources/buddyinfo.js';
import { parseKmemleak } from '../sources/kmemleak.js';
import { parseMeminfo } from '../sources/meminfo.js';
import { PF_KTHREAD, parseProcStat } from '../sources/proc_stat.js';
import { parseProcStatus } from '../sources/proc_status.js';
import { parseSlabinfo, slabCacheBytes } from '../sources/slabinfo.js';
import { parseSmaps, parseSmapsRollup, type SmapsMapping } from '../sources/smaps.js';
import { parseVmallocinfo } from '../sources/vmallocinfo.js';
import { parseVmstat } from '../sources/vmstat.js';

/**
 * The per-tick live reads of `memsleuth record`. Everything a tick needs is read here and
 * turned into entity samples for the store; the parsers are the shared pure ones.
 *
 * Per tick: meminfo (+ unaccounted from the accounting identity), selected vmstat counters,
 * every slab cache, buddyinfo, vmalloc bytes by caller and allocinfo per call site (every
 * `vmallocEvery` ticks), kmemleak groups when asked, and per process the cheap fields of
 * stat/status plus the number of open fds. Every `pssEvery` ticks
 * PSS from smaps_rollup; every `smapsEvery` ticks per-mapping sizes from smaps for the few
 * processes that grew since they were first seen.
 */
export interface SamplerOptions {
  procRoot?: string;
  sysRoot?: string;
  debugfsRoot?: string;
  pageSizeBytes?: number;
  /** Read smaps_rollup every N ticks (0: never). Default 6. */
  pssEvery?: number;
  /** Read smaps of growing processes every N ticks (0: never). Default 12. */
  smapsEvery?: number;
  /**
   * A process "grows" when RSS+swap or VSZ rose by this much since the previous smaps tick
   * (recent growth: a warm-up that ended long ago does not take a leaker's place). Default 1 MiB.
   */
  smapsGrowthBytes?: number;
  /** At most this many processes get per-mapping sizes per smaps tick. Default 8. */
  smapsMaxProcesses?: number;
  /**
   * Read vmallocinfo every N ticks (0: never). Default 6: the file lists every area (3,000 lines
   * here) and costs more CPU than all processes together; callers carry the totals forward.
   */
  vmallocEvery?: number;
  /** Read /sys/kernel/debug/kmemleak (no scan is triggered). Default false. */
  kmemleak?: boolean;
  /** Only processes whose pid passes (tests). */
  pidFilter?: (pid: number) => boolean;
}

/** vmstat counters kept: reclaim pressure, faults, swap, OOM kills. */
export const VMSTAT_COUNTERS = [
  'nr_free_pages',
  'pgfault',
  'pgmajfault',
  'pswpin',
  'pswpout',
  'oom_kill',
  'compact_stall',
  'pgscan_kswapd',
  'pgscan_direct',
  'pgsteal_kswapd',
  'pgsteal_direct',
  'workingset_refault_file',
  'workingset_refault_anon',
  'nr_zspages',
] as const;

interface ProcTrack {
  firstRssBytes: number;
  firstVszBytes: number;
  lastRssBytes: number;
  lastVszBytes: number;
  /** RSS+swap and VSZ at the previous smaps tick. */
  markRssBytes: number;
  markVszBytes: number;
  comm: string;
}

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Open fds of a process. Since Linux 6.2 stat() of /proc/PID/fd reports the count as its size
 * (fs/proc/fd.c proc_fd_getattr), which is O(1) where listing a socket leaker's 10,000 fds is
 * not; older kernels report 0 and the directory is listed.
 */
function countFds(dir: string): number | undefined {
  try {
    const size = statSync(dir).size;
    return size > 0 ? size : readdirSync(dir).length;
  } catch {
    return undefined; // not permitted, or exited
  }
}

/** `func [module]` for a caller frame: offsets differ per call site, the function is the unit. */
export function callerKey(f: Frame | undefined): string {
  if (!f) return '(no caller)';
  return f.module ? `${f.func} [${f.module}]` : f.func;
}

/**
 * Per-mapping sizes grouped by what the mapping is: its path, `[heap]`, `[stack]`, or
 * `[anon]` for nameless anonymous mappings (thread stacks, malloc arenas, mmap'd chunks).
 * Grouping by name, not address, keeps a series across munmap/mmap and merges of VMAs.
 */
export function smapsByName(
  mappings: readonly SmapsMapping[],
): Map<string, { size: number; rss: number; anon: number; swap: number }> {
  const out = new Map<string, { size: number; rss: number; anon: number; swap: number }>();
  for (const m of mappings) {
    const name = m.pathname.trim() || '[anon]';
    const key = name.startsWith('[stack:') ? '[stack]' : name;
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

export class Sampler {
  private readonly proc: string;
  private readonly sys: string;
  private readonly debugfs: string;
  private readonly pageSize: number;
  private readonly opts: SamplerOptions;
  private readonly tracked = new Map<string, ProcTrack>();
  private tick = 0;
  /** Sources that failed to read or parse, with the reason (reported once by the recorder). */
  readonly problems = new Map<string, string>();

  constructor(opts: SamplerOptions = {}) {
    this.opts = opts;
    this.proc = opts.procRoot ?? '/proc';
    this.sys = opts.sysRoot ?? '/sys';
    this.debugfs = opts.debugfsRoot ?? join(this.sys, 'kernel', 'debug');
    this.pageSize = opts.pageSizeBytes ?? 4096;
  }

  /** Slab caches the kernel accounts as reclaimable (SLAB_RECLAIM_ACCOUNT), from sysfs. */
  reclaimableSlabCaches(): string[] {
    const dir = join(this.sys, 'kernel', 'slab');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    return names.filter((n) => tryRead(join(dir, n, 'reclaim_account'))?.trim() === '1');
  }

  private problem(source: string, e: unknown): void {
    if (!this.problems.has(source)) this.problems.set(source, (e as Error).message ?? String(e));
  }

  /** Read one tick. Never throws for a source that is missing or vanishes mid-read. */
  sample(nowMs = Date.now()): TickSample {
    const started = performance.now();
    this.tick++;
    const entities: EntitySample[] = [];
    this.sampleMeminfo(entities);
    this.sampleSlab(entities);
    this.sampleBuddy(entities);
    const vmallocEvery = this.opts.vmallocEvery ?? 6;
    if (vmallocEvery > 0 && (this.tick - 1) % vmallocEvery === 0) {
      this.sampleVmalloc(entities);
      this.sampleAllocinfo(entities);
    }
    if (this.opts.kmemleak) this.sampleKmemleak(entities);
    this.sampleProcesses(entities);
    return { tMs: nowMs, readMs: performance.now() - started, entities };
  }

  private sampleMeminfo(out: EntitySample[]): void {
    const text = tryRead(join(this.proc, 'meminfo'));
    if (text === undefined) {
      this.problem('meminfo', new Error('unreadable'));
      return;
    }
    let vmstat: Record<string, number> | undefined;
    const vtext = tryRead(join(this.proc, 'vmstat'));
    try {
      if (vtext !== undefined) {
        vmstat = parseVmstat(vtext);
        const values: Record<string, number> = {};
        for (const c of VMSTAT_COUNTERS) if (vmstat[c] !== undefined) values[c] = vmstat[c]!;
        for (const [k, v] of Object.entries(values))
          out.push({ layer: 'vmstat', key: k, values: { count: v } });
      }
    } catch (e) {
      this.problem('vmstat', e);
    }
    try {
      const m = parseMeminfo(text);
      for (const [k, v] of Object.entries(m.bytes))
        if (v !== undefined) out.push({ layer: 'meminfo', key: k, values: { bytes: v } });
      for (const [k, v] of Object.entries(m.counts))
        if (v !== undefined) out.push({ layer: 'meminfo', key: k, values: { count: v } });
      const cached = m.bytes.Cached;
      if (cached !== undefined)
        out.push({
          layer: 'meminfo',
          key: 'Cached-Shmem',
          values: { bytes: Math.max(0, cached - (m.bytes.Shmem ?? 0)) },
        });
      const acc = computeAccounting(m, vmstat, this.pageSize);
      out.push({ layer: 'unaccounted', key: 'unaccounted', values: { bytes: acc.unaccountedBytes } });
    } catch (e) {
      this.problem('meminfo', e);
    }
  }

  private sampleSlab(out: EntitySample[]): void {
    const text = tryRead(join(this.proc, 'slabinfo'));
    if (text === undefined) {
      this.problem('slabinfo', new Error('unreadable (root needed)'));
      return;
    }
    try {
      for (const c of parseSlabinfo(text).caches) {
        const b = slabCacheBytes(c, this.pageSize);
        out.push({ layer: 'slab', key: c.name, values: { bytes: b.slabBytes, active_objs: c.activeObjs } });
      }
    } catch (e) {
      this.problem('slabinfo', e);
    }
  }

  private sampleBuddy(out: EntitySample[]): void {
    const text = tryRead(join(this.proc, 'buddyinfo'));
    if (text === undefined) return;
    try {
      for (const z of parseBuddyinfo(text).zones) {
        const values: Record<string, number> = { free_bytes: z.freePages * this.pageSize };
        z.freeBlocks.forEach((n, order) => {
          values[`order${order}`] = n;
        });
        out.push({ layer: 'buddy', key: `Node ${z.node} ${z.zone}`, values });
      }
    } catch (e) {
      this.problem('buddyinfo', e);
    }
  }

  private sampleVmalloc(out: EntitySample[]): void {
    const text = tryRead(join(this.proc, 'vmallocinfo'));
    if (text === undefined) return;
    try {
      const by = new Map<string, { bytes: number; areas: number }>();
      for (const a of parseVmallocinfo(text).areas) {
        if (a.kind !== 'area') continue;
        const k = callerKey(a.caller);
        const g = by.get(k) ?? { bytes: 0, areas: 0 };
        // Backed pages when printed (vmalloc); else the reserved range (ioremap, vmap).
        g.bytes += a.pages !== undefined ? a.pages * this.pageSize : a.sizeBytes;
        g.areas++;
        by.set(k, g);
      }
      for (const [k, g] of by)
        out.push({ layer: 'vmalloc', key: k, values: { bytes: g.bytes, areas: g.areas } });
    } catch (e) {
      this.problem('vmallocinfo', e);
    }
  }

  /** /proc/allocinfo (6.10+, CONFIG_MEM_ALLOC_PROFILING): bytes and live calls per call site. */
  private sampleAllocinfo(out: EntitySample[]): void {
    const file = join(this.proc, 'allocinfo');
    const text = tryRead(file);
    if (text === undefined) return; // not built in: nothing to record
    try {
      for (const t of parseAllocinfo(text, { file }).tags) {
        if (t.bytes === 0 && t.calls === 0) continue;
        out.push({ layer: 'allocinfo', key: allocTagKey(t), values: { bytes: t.bytes, calls: t.calls } });
      }
    } catch (e) {
      this.problem('allocinfo', e);
    }
  }

  private sampleKmemleak(out: EntitySample[]): void {
    const file = join(this.debugfs, 'kmemleak');
    const text = tryRead(file);
    if (text === undefined) {
      this.problem('kmemleak', new Error(`${file} unreadable`));
      return;
    }
    try {
      const by = new Map<string, { bytes: number; objects: number }>();
      for (const r of parseKmemleak(text, { file }).reports) {
        // The innermost frame that is not the allocator itself names the group.
        const f = r.frames.find(
          (x) =>
            !/^(kmemleak_|__kmalloc|kmalloc|kmem_cache_alloc|slab_|__slab|alloc_pages|__alloc)/.test(x.func),
        );
        const k = callerKey(f ?? r.frames[0]);
        const g = by.get(k) ?? { bytes: 0, objects: 0 };
        g.bytes += r.sizeBytes;
        g.objects++;
        by.set(k, g);
      }
      for (const [k, g] of by)
        out.push({ layer: 'kmemleak', key: k, values: { bytes: g.bytes, objects: g.objects } });
    } catch (e) {
      this.problem('kmemleak', e);
    }
  }

  private sampleProcesses(out: EntitySample[]): void {
    let pids: number[];
    try {
      pids = readdirSync(this.proc)
        .filter((n) => /^\d+$/.test(n))
        .map(Number);
    } catch (e) {
      this.problem('processes', e);
      return;
    }
    const pssNow = (this.opts.pssEvery ?? 6) > 0 && (this.tick - 1) % (this.opts.pssEvery ?? 6) === 0;
    const smapsEvery = this.opts.smapsEvery ?? 12;
    const smapsNow = smapsEvery > 0 && this.tick > 1 && (this.tick - 1) % smapsEvery === 0;
    const alive = new Set<string>();
    const growers: { key: string; pid: number; start: number; growth: number }[] = [];
    for (const pid of pids) {
      if (this.opts.pidFilter && !this.opts.pidFilter(pid)) continue;
      const dir = join(this.proc, String(pid));
      const statText = tryRead(join(dir, 'stat'));
      const statusText = tryRead(join(dir, 'status'));
      if (statText === undefined || statusText === undefined) continue; // vanished
      let stat: ReturnType<typeof parseProcStat>;
      let status: ReturnType<typeof parseProcStatus>;
      try {
        stat = parseProcStat(statText);
        status = parseProcStatus(statusText);
      } catch (e) {
        // A process exiting between two reads can leave a truncated file: skip it this tick.
        this.problem(`proc/${pid}`, e);
        continue;
      }
      if (stat.flags & PF_KTHREAD || status.bytes.VmSize === undefined) continue;
      const key = `${pid}:${stat.startTimeTicks}`;
      alive.add(key);
      const b = status.bytes;
      const values: Record<string, number> = {
        rss_bytes: b.VmRSS ?? 0,
        anon_bytes: b.RssAnon ?? 0,
        file_bytes: b.RssFile ?? 0,
        shmem_bytes: b.RssShmem ?? 0,
        swap_bytes: b.VmSwap ?? 0,
        vsz_bytes: b.VmSize ?? 0,
        threads: status.counts.Threads ?? stat.numThreads,
      };
      const fds = countFds(join(dir, 'fd'));
      if (fds !== undefined) values.fds = fds;
      const sample: EntitySample = {
        layer: 'process',
        key,
        label: status.name,
        pid,
        startTicks: stat.startTimeTicks,
        values,
      };
      if (pssNow) {
        const roll = tryRead(join(dir, 'smaps_rollup'));
        try {
          const pss = roll === undefined || roll === '' ? undefined : parseSmapsRollup(roll).bytes.Pss;
          if (pss !== undefined) sample.sparse = { pss_bytes: pss };
        } catch (e) {
          this.problem(`proc/${pid}/smaps_rollup`, e);
        }
      }
      out.push(sample);
      const resident = values.rss_bytes! + values.swap_bytes!;
      let tr = this.tracked.get(key);
      if (!tr) {
        tr = {
          firstRssBytes: resident,
          firstVszBytes: values.vsz_bytes!,
          lastRssBytes: resident,
          lastVszBytes: values.vsz_bytes!,
          markRssBytes: resident,
          markVszBytes: values.vsz_bytes!,
          comm: status.name,
        };
        this.tracked.set(key, tr);
      }
      tr.lastRssBytes = resident;
      tr.lastVszBytes = values.vsz_bytes!;
      const growth = Math.max(resident - tr.markRssBytes, values.vsz_bytes! - tr.markVszBytes);
      if (growth >= (this.opts.smapsGrowthBytes ?? 1 << 20))
        growers.push({ key, pid, start: stat.startTimeTicks, growth });
    }
    for (const k of this.tracked.keys()) if (!alive.has(k)) this.tracked.delete(k);
    if (!smapsNow) return;
    for (const t of this.tracked.values()) {
      t.markRssBytes = t.lastRssBytes;
      t.markVszBytes = t.lastVszBytes;
    }
    growers.sort((a, b) => b.growth - a.growth);
    for (const g of growers.slice(0, this.opts.smapsMaxProcesses ?? 8)) {
      const text = tryRead(join(this.proc, String(g.pid), 'smaps'));
      if (text === undefined || text === '') continue;
      let mappings: SmapsMapping[];
      try {
        mappings = parseSmaps(text);
      } catch (e) {
        this.problem(`proc/${g.pid}/smaps`, e);
        continue;
      }
      for (const [name, m] of smapsByName(mappings)) {
        out.push({
          layer: 'mapping',
          key: `${g.key}:${name}`,
          label: name,
          pid: g.pid,
          startTicks: g.start,
          sparse: { size_bytes: m.size, rss_bytes: m.rss, anon_bytes: m.anon, swap_bytes: m.swap },
        });
      }
    }
  }

  /** The process whose RSS+swap grew most since it was first seen. */
  topGrower(): { key: string; comm: string; growthBytes: number } | undefined {
    let best: { key: string; comm: string; growthBytes: number } | undefined;
    for (const [key, t] of this.tracked) {
      const g = t.lastRssBytes - t.firstRssBytes;
      if (!best || g > best.growthBytes) best = { key, comm: t.comm, growthBytes: g };
    }
    return best;
  }
}
