import type { Snapshot, SourceName } from '../model/snapshot.js';
import type { REGISTRY } from './index.js';
import type { ReadOptions, SourceEntry } from './types.js';

/** What an entry's `load` gives, by source name. */
export type SourceValue<N extends SourceName> = (typeof REGISTRY)[N] extends SourceEntry<infer T> ? T : never;

/**
 * Every source of one snapshot, each loaded (read and parsed) at most once, whoever asks
 * first: the report's accounting asks for vmstat and zoneinfo, the diff for processes.
 * A parse error is kept and thrown to every asker.
 */
export class SnapshotData {
  private readonly loaded = new Map<SourceName, Promise<unknown>>();

  constructor(
    readonly snap: Snapshot,
    readonly options: ReadOptions,
    private readonly entries: Readonly<Record<SourceName, SourceEntry<unknown>>>,
  ) {}

  get<N extends SourceName>(name: N): Promise<SourceValue<N> | undefined> {
    let p = this.loaded.get(name);
    if (!p) {
      p = this.entries[name].load(this.snap, this.options, this);
      this.loaded.set(name, p);
      // Callers that never await a failed load must not turn it into an unhandled rejection.
      p.catch(() => {});
    }
    return p as Promise<SourceValue<N> | undefined>;
  }
}
