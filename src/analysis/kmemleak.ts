import { type Frame, ownString } from '../model/frame.js';
import { placeAll } from '../model/hash.js';
import {
  type KmemleakFile,
  type KmemleakObjectType,
  type KmemleakReport,
  scanKmemleak,
} from '../sources/kmemleak.js';
import type { ParseOptions } from '../sources/text.js';
import { hashInts, U32Column, U32SmallBlocks } from './intern.js';
import {
  culpritFrame,
  InternedStackGroup,
  moduleOf,
  StackAggregator,
  type StackGroup,
  StackTable,
  selectTop,
  type Weights,
} from './stacks.js';

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

/** The key of the group of reports without a backtrace. */
const NO_BACKTRACE = '<no backtrace>';

/** The object types, coded in 2 bits (0: none). */
const TYPE_NAMES: readonly (KmemleakObjectType | undefined)[] = [undefined, 'virt', 'phys', 'percpu'];
const typeCode = (t: KmemleakObjectType): number => (t === 'virt' ? 1 : t === 'phys' ? 2 : 3);

/**
 * A group of a backtrace or culprit: its stack interned, its key spelled on demand, and what
 * it counted (tasks, types) read from the grouper's columns when first asked.
 */
class KmemleakStackGroup extends InternedStackGroup implements KmemleakGroup {
  readonly #of: KmemleakGrouper;
  readonly #g: number;
  #comms: Record<string, number> | undefined;
  #types: string[] | undefined;
  culprit?: Frame;
  module?: string;
  constructor(of: KmemleakGrouper, g: number, stacks: StackTable, stackId: number, weights: Weights) {
    super(stacks, stackId, weights, undefined, { emptyKey: NO_BACKTRACE });
    this.#of = of;
    this.#g = g;
  }
  get comms(): Record<string, number> {
    if (this.#comms === undefined) this.#comms = this.#of.commsOf(this.#g);
    return this.#comms;
  }
  get types(): string[] {
    if (this.#types === undefined) this.#types = this.#of.typesOf(this.#g);
    return this.#types;
  }
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

/** Names (tasks, modules) by id, each kept once as a string of its own. */
class Names {
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  id(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      const own = ownString(name);
      this.names.push(own);
      this.ids.set(own, id);
    }
    return id;
  }
}

/**
 * Groups reports one at a time: memory is bounded by distinct groups, not reports. Stacks
 * are interned once (StackTable) and a group is a row of columns: its weights in a
 * StackAggregator, the types it saw in a word, its tasks as (task id, count) entries in
 * order, found through a hash table of (group, task). Group objects are built by result().
 */
export class KmemleakGrouper {
  private readonly stacks = new StackTable();
  private readonly agg = new StackAggregator(this.stacks);
  /** Comm mode only: a handful of groups, one per task. */
  private readonly byComm = new Map<string, KmemleakGroup>();
  // By group index: types seen (2 bits each, in order); culprit frame id + 1 and module id + 1
  // (0: none); its first and last (group, task) entry + 1 (0: none yet).
  private readonly types = new U32SmallBlocks();
  private readonly culprit = new U32SmallBlocks();
  private readonly module = new U32SmallBlocks();
  private readonly first = new U32SmallBlocks();
  private readonly last = new U32SmallBlocks();
  private readonly modules = new Names();
  private readonly comms = new Names();
  // (group, task) entries: a group's are chained (next entry + 1, 0: the last) in the order first seen.
  private readonly entGroup = new U32Column();
  private readonly entComm = new U32Column();
  private readonly entCount = new U32Column();
  private readonly entNext = new U32Column();
  /** Open addressing over entries: entry + 1, 0 empty. */
  private slots = new Uint32Array(2048);
  reports = 0;
  constructor(private readonly by: KmemleakGroupBy = 'backtrace') {}

  add(r: KmemleakReport): void {
    this.reports++;
    if (this.by === 'comm') {
      const key = `comm:${r.comm}`;
      let g = this.byComm.get(key);
      if (!g) {
        // The table's frames, not the report's: those are views of the text read.
        const frames = this.stacks.framesOf(this.stacks.internFrames(r.frames));
        g = { key, frames, weights: { count: 0, bytes: 0, pages: 0 }, comms: {}, types: [] };
        const c = culpritFrame(r.frames);
        if (c) g.culprit = this.stacks.frames.frameOf(c);
        const m = moduleOf(r.frames);
        if (m) g.module = ownString(m);
        this.byComm.set(ownString(key), g);
      }
      g.weights.count += 1;
      g.weights.bytes += r.sizeBytes;
      g.comms[r.comm] = (g.comms[r.comm] ?? 0) + 1;
      if (!g.types.includes(r.type)) g.types.push(r.type);
      return;
    }
    let frames = r.frames;
    if (this.by === 'culprit') {
      const c = culpritFrame(r.frames);
      frames = c ? [c] : [];
    }
    const id = this.stacks.internFrames(frames);
    const before = this.agg.size;
    this.agg.addStack(id, 1, r.sizeBytes, 0);
    const g = this.agg.indexOf(id);
    if (this.agg.size > before) this.open(g, r);
    // Types in the order seen, each once.
    const t = typeCode(r.type);
    const w = this.types.get(g);
    let k = 0;
    while (k < 3 && ((w >>> (2 * k)) & 3) !== 0 && ((w >>> (2 * k)) & 3) !== t) k++;
    if (k < 3 && ((w >>> (2 * k)) & 3) === 0) this.types.set(g, w | (t << (2 * k)));
    this.countComm(g, this.comms.id(r.comm));
  }

  /** A new group `g`: its culprit and module, from the whole backtrace as the report gave it. */
  private open(g: number, r: KmemleakReport): void {
    // Groups are opened in index order: each column's next row is group g's.
    this.types.push(0);
    this.culprit.push(0);
    this.module.push(0);
    this.first.push(0);
    this.last.push(0);
    const c = culpritFrame(r.frames);
    if (c) this.culprit.set(g, this.stacks.frames.intern(c) + 1);
    const m = moduleOf(r.frames);
    if (m !== undefined) this.module.set(g, this.modules.id(m) + 1);
  }

  /** One more object of task `comm` in group `g`. */
  private countComm(g: number, comm: number): void {
    const h = hashInts(g, comm, 0, 0);
    const mask = this.slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const e = this.slots[slot]!;
      if (e === 0) break;
      if (this.entGroup.data[e - 1] === g && this.entComm.data[e - 1] === comm) {
        this.entCount.data[e - 1]!++;
        return;
      }
      slot = (slot + 1) & mask;
    }
    this.entGroup.push(g);
    this.entComm.push(comm);
    this.entCount.push(1);
    const e = this.entNext.push(0);
    const last = this.last.get(g);
    if (last === 0) this.first.set(g, e + 1);
    else this.entNext.data[last - 1] = e + 1;
    this.last.set(g, e + 1);
    const entries = e + 1;
    if (entries * 2 > this.slots.length) {
      // Doubled, every entry placed again.
      this.slots = placeAll(this.slots.length * 2, entries, (k) =>
        hashInts(this.entGroup.data[k]!, this.entComm.data[k]!, 0, 0),
      );
      return;
    }
    this.slots[slot] = e + 1;
  }

  /** Group `g`'s objects per task, in the order the tasks were first seen. */
  commsOf(g: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (let e = this.first.get(g); e !== 0; e = this.entNext.data[e - 1]!)
      out[this.comms.names[this.entComm.data[e - 1]!]!] = this.entCount.data[e - 1]!;
    return out;
  }

  /** Group `g`'s object types, in the order first seen. */
  typesOf(g: number): string[] {
    const out: string[] = [];
    const w = this.types.get(g);
    for (let k = 0; k < 3; k++) {
      const t = TYPE_NAMES[(w >>> (2 * k)) & 3];
      if (t !== undefined) out.push(t);
    }
    return out;
  }

  /** Groups so far. */
  get size(): number {
    return this.by === 'comm' ? this.byComm.size : this.agg.size;
  }

  /** Bytes of every object grouped so far. */
  get bytes(): number {
    let sum = 0;
    if (this.by === 'comm') for (const g of this.byComm.values()) sum += g.weights.bytes;
    else for (let g = 0; g < this.agg.size; g++) sum += this.agg.weightAt(g, 'bytes');
    return sum;
  }

  /** Group index `g`, built. */
  private group(g: number): KmemleakStackGroup {
    const t = this.stacks;
    const agg = this.agg;
    const grp = new KmemleakStackGroup(this, g, t, agg.stackAt(g), {
      count: agg.weightAt(g, 'count'),
      bytes: agg.weightAt(g, 'bytes'),
      pages: 0,
    });
    const c = this.culprit.get(g);
    if (c !== 0) grp.culprit = t.frames.frames[c - 1]!;
    const m = this.module.get(g);
    if (m !== 0) grp.module = this.modules.names[m - 1]!;
    return grp;
  }

  /** Most objects first, then most bytes, then by key (stacks' keys compared unspelled). */
  result(): KmemleakGroup[] {
    return this.top(Infinity);
  }

  /**
   * The first `limit` groups of result(), building only those (a report of a hundred thousand
   * backtraces prints twenty).
   */
  top(limit: number): KmemleakGroup[] {
    if (this.by === 'comm') {
      const groups = [...this.byComm.values()].sort(
        (a, b) =>
          b.weights.count - a.weights.count || b.weights.bytes - a.weights.bytes || (a.key < b.key ? -1 : 1),
      );
      return limit < groups.length ? groups.slice(0, limit) : groups;
    }
    const t = this.stacks;
    const agg = this.agg;
    const before = (a: number, b: number): boolean => {
      const d = agg.weightAt(b, 'count') - agg.weightAt(a, 'count');
      if (d !== 0) return d < 0;
      const e = agg.weightAt(b, 'bytes') - agg.weightAt(a, 'bytes');
      if (e !== 0) return e < 0;
      return keyOrder(t, agg.stackAt(a), agg.stackAt(b)) < 0;
    };
    return selectTop(agg.size, limit, before).map((g) => this.group(g));
  }
}

/**
 * Order of two stacks' keys. The empty stack's key is `<no backtrace>`, which sorts after a key
 * that starts with a lower character; otherwise the table compares stacks without spelling them.
 */
function keyOrder(t: StackTable, a: number, b: number): number {
  if (a === b) return 0;
  if (t.depth(a) === 0 || t.depth(b) === 0) {
    const ka = t.depth(a) === 0 ? NO_BACKTRACE : t.keyOf(a);
    const kb = t.depth(b) === 0 ? NO_BACKTRACE : t.keyOf(b);
    return ka < kb ? -1 : 1;
  }
  return t.compareKeys(a, b) < 0 ? -1 : 1;
}

/** Group reports by backtrace (default), by culprit function, or by allocating task. */
export function groupKmemleak(file: KmemleakFile, by: KmemleakGroupBy = 'backtrace'): KmemleakGroup[] {
  const g = new KmemleakGrouper(by);
  for (const r of file.reports) g.add(r);
  return g.result();
}

/**
 * Stream a report (file, debugfs, snapshot stream) into a grouper: its groups built when asked
 * (all with result(), the first few with top()).
 */
export async function scanKmemleakGroups(
  input: AsyncIterable<Buffer | string>,
  by: KmemleakGroupBy = 'backtrace',
  opts: ParseOptions = {},
): Promise<KmemleakGrouper> {
  const g = new KmemleakGrouper(by);
  await scanKmemleak(input, (r) => g.add(r), opts);
  return g;
}

/** Stream a report (file, debugfs, snapshot stream) straight into groups. */
export async function groupKmemleakStream(
  input: AsyncIterable<Buffer | string>,
  by: KmemleakGroupBy = 'backtrace',
  opts: ParseOptions = {},
): Promise<{ reports: number; groups: KmemleakGroup[] }> {
  const g = await scanKmemleakGroups(input, by, opts);
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
