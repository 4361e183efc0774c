import { type Frame, ownString } from '../model/frame.js';
import {
  type KmemleakFile,
  type KmemleakObjectType,
  type KmemleakReport,
  scanKmemleak,
} from '../sources/kmemleak.js';
import type { ParseOptions } from '../sources/text.js';
import { hashInts } from './intern.js';
import {
  culpritFrame,
  InternedStackGroup,
  moduleOf,
  StackAggregator,
  type StackGroup,
  StackTable,
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
    super(stacks, stackId, weights, undefined, { emptyKey: '<no backtrace>' });
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

/** A typed array at least `n` long (doubled), its contents kept. */
function grown<T extends Int32Array | Uint32Array>(a: T, n: number): T {
  if (n <= a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(n, a.length * 2));
  b.set(a);
  if (b instanceof Int32Array && a instanceof Int32Array) b.fill(-1, a.length);
  return b;
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
  // By group index: types seen (2 bits each, in order), culprit frame id and module (-1: none).
  private types = new Uint32Array(256);
  private culprit = new Int32Array(256).fill(-1);
  private module = new Int32Array(256).fill(-1);
  private readonly modules = new Names();
  private readonly comms = new Names();
  // (group, task) entries: a group's are chained in the order first seen.
  private first = new Int32Array(256).fill(-1);
  private last = new Int32Array(256).fill(-1);
  private entGroup = new Uint32Array(1024);
  private entComm = new Uint32Array(1024);
  private entCount = new Uint32Array(1024);
  private entNext = new Int32Array(1024).fill(-1);
  private entries = 0;
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
        if (c) g.culprit = this.ownFrame(c);
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
    let w = this.types[g]!;
    let k = 0;
    while (k < 3 && ((w >>> (2 * k)) & 3) !== 0 && ((w >>> (2 * k)) & 3) !== t) k++;
    if (k < 3 && ((w >>> (2 * k)) & 3) === 0) {
      w |= t << (2 * k);
      this.types[g] = w;
    }
    this.countComm(g, this.comms.id(r.comm));
  }

  /** A new group `g`: its culprit and module, from the whole backtrace as the report gave it. */
  private open(g: number, r: KmemleakReport): void {
    if (g >= this.types.length) {
      const n = g + 1;
      this.types = grown(this.types, n);
      this.culprit = grown(this.culprit, n);
      this.module = grown(this.module, n);
      this.first = grown(this.first, n);
      this.last = grown(this.last, n);
    }
    const c = culpritFrame(r.frames);
    if (c) this.culprit[g] = this.stacks.frames.intern(c);
    const m = moduleOf(r.frames);
    if (m !== undefined) this.module[g] = this.modules.id(m);
  }

  /** The table's copy of a frame (the report's is a view of the text read). */
  private ownFrame(f: Frame): Frame {
    return this.stacks.frames.frames[this.stacks.frames.intern(f)]!;
  }

  /** One more object of task `comm` in group `g`. */
  private countComm(g: number, comm: number): void {
    const h = hashInts(g, comm, 0, 0);
    let mask = this.slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const e = this.slots[slot]!;
      if (e === 0) break;
      if (this.entGroup[e - 1] === g && this.entComm[e - 1] === comm) {
        this.entCount[e - 1]!++;
        return;
      }
      slot = (slot + 1) & mask;
    }
    const e = this.entries++;
    if (e >= this.entGroup.length) {
      this.entGroup = grown(this.entGroup, e + 1);
      this.entComm = grown(this.entComm, e + 1);
      this.entCount = grown(this.entCount, e + 1);
      this.entNext = grown(this.entNext, e + 1);
    }
    this.entGroup[e] = g;
    this.entComm[e] = comm;
    this.entCount[e] = 1;
    if (this.first[g] === -1) this.first[g] = e;
    else this.entNext[this.last[g]!] = e;
    this.last[g] = e;
    if (this.entries * 2 > this.slots.length) {
      // Doubled, every entry placed again.
      this.slots = new Uint32Array(this.slots.length * 2);
      mask = this.slots.length - 1;
      for (let i = 0; i < this.entries; i++) {
        let sl = hashInts(this.entGroup[i]!, this.entComm[i]!, 0, 0) & mask;
        while (this.slots[sl] !== 0) sl = (sl + 1) & mask;
        this.slots[sl] = i + 1;
      }
      return;
    }
    this.slots[slot] = e + 1;
  }

  /** Group `g`'s objects per task, in the order the tasks were first seen. */
  commsOf(g: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (let e = this.first[g]!; e !== -1; e = this.entNext[e]!)
      out[this.comms.names[this.entComm[e]!]!] = this.entCount[e]!;
    return out;
  }

  /** Group `g`'s object types, in the order first seen. */
  typesOf(g: number): string[] {
    const out: string[] = [];
    const w = this.types[g]!;
    for (let k = 0; k < 3; k++) {
      const t = TYPE_NAMES[(w >>> (2 * k)) & 3];
      if (t !== undefined) out.push(t);
    }
    return out;
  }

  /** Most objects first, then most bytes, then by key (stacks' keys compared unspelled). */
  result(): KmemleakGroup[] {
    const byWeight = (a: KmemleakGroup, b: KmemleakGroup) =>
      b.weights.count - a.weights.count || b.weights.bytes - a.weights.bytes;
    if (this.by === 'comm') {
      const groups = [...this.byComm.values()];
      return groups.sort((a, b) => byWeight(a, b) || (a.key < b.key ? -1 : 1));
    }
    const t = this.stacks;
    const agg = this.agg;
    const out: KmemleakStackGroup[] = new Array(agg.size);
    for (let g = 0; g < agg.size; g++) {
      const grp = new KmemleakStackGroup(this, g, t, agg.stackAt(g), {
        count: agg.weightAt(g, 'count'),
        bytes: agg.weightAt(g, 'bytes'),
        pages: 0,
      });
      const c = this.culprit[g]!;
      if (c !== -1) grp.culprit = t.frames.frames[c]!;
      const m = this.module[g]!;
      if (m !== -1) grp.module = this.modules.names[m]!;
      out[g] = grp;
    }
    return out.sort((a, b) => byWeight(a, b) || keyOrder(t, a, b));
  }
}

/**
 * Order of two groups' keys. The empty stack's key is `<no backtrace>`, which sorts after a key
 * that starts with a lower character; otherwise the table compares stacks without spelling them.
 */
function keyOrder(t: StackTable, a: KmemleakStackGroup, b: KmemleakStackGroup): number {
  if (t.depth(a.stackId) === 0 || t.depth(b.stackId) === 0) return a.key < b.key ? -1 : 1;
  return t.compareKeys(a.stackId, b.stackId) < 0 ? -1 : 1;
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
