import type { Frame } from '../model/frame.js';
import { type KmemleakFile, type KmemleakReport, scanKmemleak } from '../sources/kmemleak.js';
import type { ParseOptions } from '../sources/text.js';
import { culpritFrame, InternedStackGroup, moduleOf, type StackGroup, StackTable } from './stacks.js';

/** How kmemleak reports are grouped. */
export type KmemleakGroupBy = 'backtrace' | 'culprit' | 'comm';

/** One group of unreferenced objects. Weights: count = objects, bytes = their sizes. */
export interface KmemleakGroup extends StackGroup {
  /** The first frame outside the allocators (who leaked it). */
  culprit?: Frame;
  module?: string;
  /** Objects per allocating task name. */
  comms: Record<string, number>;
  /** Object types seen (virt, phys, percpu). */
  types: string[];
}

/** A group of a backtrace or culprit: its stack interned, its key spelled on demand. */
class KmemleakStackGroup extends InternedStackGroup implements KmemleakGroup {
  culprit?: Frame;
  module?: string;
  comms: Record<string, number> = {};
  types: string[] = [];
  override toJSON(): KmemleakGroup {
    const { culprit, module, comms, types } = this;
    return {
      ...super.toJSON(),
      ...(culprit ? { culprit } : {}),
      ...(module !== undefined ? { module } : {}),
      comms,
      types,
    };
  }
}

/**
 * Groups reports one at a time: memory is bounded by distinct groups, not reports. Stacks
 * are interned once (StackTable); a group holds its frames, never a key string.
 */
export class KmemleakGrouper {
  private readonly stacks = new StackTable();
  private readonly byStack = new Map<number, KmemleakGroup>();
  private readonly byComm = new Map<string, KmemleakGroup>();
  reports = 0;
  constructor(private readonly by: KmemleakGroupBy = 'backtrace') {}

  add(r: KmemleakReport): void {
    this.reports++;
    let g: KmemleakGroup | undefined;
    if (this.by === 'comm') {
      const key = `comm:${r.comm}`;
      g = this.byComm.get(key);
      if (!g) {
        g = { key, frames: r.frames, weights: { count: 0, bytes: 0, pages: 0 }, comms: {}, types: [] };
        this.describe(g, r);
        this.byComm.set(key, g);
      }
    } else {
      let frames = r.frames;
      if (this.by === 'culprit') {
        const c = culpritFrame(r.frames);
        frames = c ? [c] : [];
      }
      const id = this.stacks.internFrames(frames);
      g = this.byStack.get(id);
      if (!g) {
        g = new KmemleakStackGroup(this.stacks, id, { count: 0, bytes: 0, pages: 0 }, undefined, {
          emptyKey: '<no backtrace>',
        });
        this.describe(g, r);
        this.byStack.set(id, g);
      }
    }
    g.weights.count += 1;
    g.weights.bytes += r.sizeBytes;
    g.comms[r.comm] = (g.comms[r.comm] ?? 0) + 1;
    if (!g.types.includes(r.type)) g.types.push(r.type);
  }

  private describe(g: KmemleakGroup, r: KmemleakReport): void {
    const c = culpritFrame(r.frames);
    if (c) g.culprit = c;
    const m = moduleOf(r.frames);
    if (m) g.module = m;
  }

  /** Most objects first, then most bytes. */
  result(): KmemleakGroup[] {
    const groups = [...this.byStack.values(), ...this.byComm.values()];
    const keys = new Map(groups.map((g) => [g, g.key]));
    return groups.sort(
      (a, b) =>
        b.weights.count - a.weights.count ||
        b.weights.bytes - a.weights.bytes ||
        (keys.get(a)! < keys.get(b)! ? -1 : 1),
    );
  }
}

/** Group reports by backtrace (default), by culprit function, or by allocating task. */
export function groupKmemleak(file: KmemleakFile, by: KmemleakGroupBy = 'backtrace'): KmemleakGroup[] {
  const g = new KmemleakGrouper(by);
  for (const r of file.reports) g.add(r);
  return g.result();
}

/** Stream a report (file, debugfs, snapshot stream) straight into groups. */
export async function groupKmemleakStream(
  input: AsyncIterable<Buffer | string>,
  by: KmemleakGroupBy = 'backtrace',
  opts: ParseOptions = {},
): Promise<{ reports: number; groups: KmemleakGroup[] }> {
  const g = new KmemleakGrouper(by);
  await scanKmemleak(input, (r) => g.add(r), opts);
  return { reports: g.reports, groups: g.result() };
}

/**
 * A group's fate over a series of reports (one per scan, oldest first):
 * - `growing`: more objects at the end than at the start, rising in at least half of
 *   the steps, and either seen in two reports or up by `minGrowth` at once: the pattern
 *   of a real leak (one vendor driver went from ~200 to ~1700 reports in 12 hours);
 * - `new`: seen only in the last report with fewer than `minGrowth` objects (too early);
 * - `one-off`: seen in a single earlier report and gone since: typical false positive;
 * - `stable`: seen repeatedly without net growth;
 * - `gone`: reported before, absent from the last report (freed or cleared).
 */
export type KmemleakTrend = 'growing' | 'new' | 'one-off' | 'stable' | 'gone';

export interface KmemleakSeriesRow {
  key: string;
  frames: Frame[];
  culprit?: Frame;
  module?: string;
  /** Objects per report, oldest first (0 when absent). */
  counts: number[];
  bytes: number[];
  trend: KmemleakTrend;
  /** Objects gained from the first to the last report. */
  growth: number;
}

export interface KmemleakSeries {
  labels: string[];
  rows: KmemleakSeriesRow[];
  growing: KmemleakSeriesRow[];
  oneOff: KmemleakSeriesRow[];
}

export function classifyTrend(counts: readonly number[], minGrowth = 2): KmemleakTrend {
  const n = counts.length;
  const first = counts[0] ?? 0;
  const last = counts[n - 1] ?? 0;
  const seen = counts.filter((c) => c > 0).length;
  let rises = 0;
  for (let i = 1; i < n; i++) if (counts[i]! > counts[i - 1]!) rises++;
  if (n >= 2 && last > first && rises * 2 >= n - 1 && (seen >= 2 || last - first >= minGrowth))
    return 'growing';
  if (last > 0 && seen === 1) return 'new';
  if (last === 0) return seen === 1 ? 'one-off' : 'gone';
  return 'stable';
}

const TREND_ORDER: Record<KmemleakTrend, number> = { growing: 0, new: 1, stable: 2, 'one-off': 3, gone: 4 };

/**
 * Follow every backtrace across reports taken one after another (kmemleak watch, or
 * saved reports). Pure: the same input always classifies the same way.
 */
export function classifyKmemleakSeries(
  series: readonly { label: string; groups: readonly KmemleakGroup[] }[],
  opts: { minGrowth?: number } = {},
): KmemleakSeries {
  const rows = new Map<string, KmemleakSeriesRow>();
  series.forEach((s, i) => {
    for (const g of s.groups) {
      let row = rows.get(g.key);
      if (!row) {
        row = {
          key: g.key,
          frames: g.frames,
          counts: new Array(series.length).fill(0),
          bytes: new Array(series.length).fill(0),
          trend: 'stable',
          growth: 0,
        };
        if (g.culprit) row.culprit = g.culprit;
        if (g.module) row.module = g.module;
        rows.set(g.key, row);
      }
      row.counts[i] = (row.counts[i] ?? 0) + g.weights.count;
      row.bytes[i] = (row.bytes[i] ?? 0) + g.weights.bytes;
    }
  });
  const out = [...rows.values()];
  for (const r of out) {
    r.trend = classifyTrend(r.counts, opts.minGrowth);
    r.growth = (r.counts[r.counts.length - 1] ?? 0) - (r.counts[0] ?? 0);
  }
  out.sort(
    (a, b) => TREND_ORDER[a.trend] - TREND_ORDER[b.trend] || b.growth - a.growth || (a.key < b.key ? -1 : 1),
  );
  return {
    labels: series.map((s) => s.label),
    rows: out,
    growing: out.filter((r) => r.trend === 'growing'),
    oneOff: out.filter((r) => r.trend === 'one-off'),
  };
}
