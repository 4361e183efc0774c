import type { MetricFamily, MetricFamilyDoc, MetricType } from './types.js';

/**
 * A metric family being filled: `add(labelValues, value)` in the label order of its doc. Entries
 * build their families with it; the exposition (src/metrics) encodes them.
 */
export class FamilyBuilder {
  readonly family: MetricFamily;

  constructor(name: string, help: string, type: MetricType, labels: readonly string[] = []) {
    this.family = { name, help, type, labels, samples: [] };
  }

  static of(doc: MetricFamilyDoc, name = doc.name, help = doc.help): FamilyBuilder {
    return new FamilyBuilder(name, help, doc.type, doc.labels);
  }

  add(labels: readonly (string | number)[], value: number): this {
    this.family.samples.push({ labels: labels.map(String), value });
    return this;
  }
}

/** Families that have samples, for an entry's `collect`. */
export function nonEmpty(...builders: FamilyBuilder[]): MetricFamily[] {
  return builders.filter((b) => b.family.samples.length > 0).map((b) => b.family);
}

/** The first `n` of `rows` (all of them for Infinity), and the rest. */
export function topN<T>(rows: readonly T[], n: number): { top: T[]; rest: T[] } {
  const k = Number.isFinite(n) ? Math.max(0, Math.floor(n)) : rows.length;
  return { top: rows.slice(0, k), rest: rows.slice(k) };
}
