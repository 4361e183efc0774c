import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8 settings for a process that wakes once a tick for a few milliseconds, for days: `record`
 * (docs/recording.md, "Cost"). Set before the command's modules load (CommandEntry.prepare):
 * Node's module loader warms up while it resolves them, and code the optimizing compiler made
 * then would keep 4 MB of the compiler resident in the node binary (measured here: file-backed
 * RSS 40.6 MiB with the flags set before loading, 44.4 MiB after).
 *
 * - Without the optimizing compiler: V8 otherwise recompiles the tick's functions in
 *   background threads again and again, which measured here as half the recorder's CPU (10.5
 *   against 5.4 ms per tick, with the same time spent in the tick itself).
 * - Without young generation growth: V8 would grow it to 16 MiB per semi-space on the
 *   allocation rate alone and keep it; at its initial size the heap stays near what is live.
 * - Regular expressions interpreted: compiling them to machine code touches V8's compiler in
 *   the node binary, which then stays resident, for patterns that run a few times a tick.
 * - A full collection on demand (`fullCollection`): V8 collects the old generation when it
 *   has grown by a factor of its live size, so between its collections the garbage of ticks
 *   accumulates for minutes.
 */
export function daemonFlags(): void {
  setFlagsFromString('--no-opt');
  noYoungGenerationGrowth();
  setFlagsFromString('--regexp-interpret-all');
  // `gc` is installed in the contexts made after the flag is set: a new one hands it over.
  setFlagsFromString('--expose-gc');
  const f: unknown = runInNewContext('gc');
  if (typeof f === 'function') gc = f as () => void;
}

/**
 * Keep V8's young generation at its initial size (1 MiB per semi-space) instead of letting the
 * allocation rate grow it to 16 MiB per semi-space, which then stays resident. Besides the
 * recorder, the page_owner commands use it (their main thread interns every distinct stack or
 * record): with 120,828 distinct stacks `top` peaked at 91-93 MiB against 106-112 and `diff` at
 * 110-112 against 143-151 MiB; on a 1 GiB dump `sort --cull=stacktrace -m` at 108-110 against
 * 139-147 MiB and the default sort at 221 against 232, in the same time (docs/page-owner.md).
 * Must run before the heap has grown (CommandEntry.prepare): it stops growth, it does not
 * shrink.
 */
export function noYoungGenerationGrowth(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

let gc: (() => void) | undefined;

/** A full, compacting collection of the heap, when daemonFlags made one available. */
export function fullCollection(): boolean {
  if (!gc) return false;
  gc();
  return true;
}

/** Bytes of V8's heap in use now (live and not yet collected), for CollectionSchedule. */
export function heapUsed(): number {
  return getHeapStatistics().used_heap_size;
}

/**
 * When the recorder asks for a full collection: every `every` ticks (the garbage of 30 ticks
 * collected: median RSS 61 against 67 MiB, docs/recording.md), at once when the number of
 * processes a tick sampled moved by `moved` or more from the count at the last collection,
 * either way (a build's processes arriving leave the texts of their first reads behind, and
 * what was kept for them is garbage once they exit), and when the heap in use grew by `grown`
 * bytes over the lowest it was since the last collection. Processes, not all entities: those
 * move with the slower cadences (235 slab caches every 10 ticks made two collections of 7-8 ms
 * out of every ten ticks, 17 in a minute instead of 2). The heap: with 1,125 processes a tick
 * reads for 70 ms, the young generation's scavenges promote what the tick still holds, and that
 * garbage grew the old generation by 0.4 MB a tick, 8 MB between two collections 30 ticks apart;
 * V8's own full collection then freed it but kept the pages (RSS 64 against 52 MB before
 * the processes came), where the forced one gives them back.
 */
export class CollectionSchedule {
  private last = -1;
  private low = Number.POSITIVE_INFINITY;
  constructor(
    private readonly every = 30,
    private readonly moved = 200,
    private readonly grown = 2 * 1024 * 1024,
  ) {}
  /**
   * Whether to collect after tick `tick`, which sampled `processes` processes and left
   * `heap` bytes of V8's heap in use (heapUsed()).
   */
  due(tick: number, processes: number, heap: number): boolean {
    if (this.last < 0) this.last = processes;
    if (heap < this.low) this.low = heap;
    if (
      tick % this.every !== 0 &&
      Math.abs(processes - this.last) < this.moved &&
      heap - this.low < this.grown
    )
      return false;
    this.last = processes;
    this.low = Number.POSITIVE_INFINITY;
    return true;
  }
}
