import { parseError } from '../model/errors.js';
import { kernelLines, PAGE_ORDER_LIMIT, type ParseOptions, safeNumber } from './text.js';

export interface BuddyZone {
  node: number;
  /** Zone name: DMA, DMA32, Normal, HighMem, Movable, Device. */
  zone: string;
  /** Free blocks per order: index = order, a block of order n is 2^n pages. */
  freeBlocks: number[];
  /** Σ freeBlocks[n] × 2^n: free pages in the buddy allocator (per-cpu lists excluded). */
  freePages: number;
}

export interface Buddyinfo {
  zones: BuddyZone[];
  /**
   * Number of order columns, i.e. orders 0 .. maxOrder-1. This is MAX_ORDER as kernels before 6.4
   * defined it (11 on x86: orders 0..10); 6.4 renamed the inclusive bound MAX_PAGE_ORDER (10).
   */
  maxOrder: number;
}

// mm/vmstat.c frag_show_print: `Node %d, zone %8s ` then `%6lu ` per order (unchanged since 2.6.0).
// Only populated zones are listed.
const LINE = /^Node\s+(\d+),\s+zone\s+(\S+)((?:\s+\d+)+)\s*$/;
const EXPECTED = '"Node <n>, zone <name> <free blocks per order...>" (e.g. "Node 0, zone DMA32 4 3 ...")';

/** Parse /proc/buddyinfo. Every line must have the same number of orders. */
export function parseBuddyinfo(text: string, opts: ParseOptions = {}): Buddyinfo {
  const file = opts.file ?? '/proc/buddyinfo';
  const zones: BuddyZone[] = [];
  let maxOrder: number | undefined;
  const seen = new Set<string>();
  for (const { text: t, line } of kernelLines(text, file, EXPECTED, opts)) {
    if (t.trim() === '') continue;
    const m = LINE.exec(t);
    if (!m) throw parseError(file, line, EXPECTED, t);
    const node = safeNumber(m[1]!, file, line, 'a node number');
    const zone = m[2]!;
    const freeBlocks = m[3]!
      .trim()
      .split(/\s+/)
      .map((x) => safeNumber(x, file, line, 'a count of free blocks'));
    if (freeBlocks.length > PAGE_ORDER_LIMIT + 1)
      throw parseError(file, line, `at most ${PAGE_ORDER_LIMIT + 1} orders`, `${freeBlocks.length} orders`);
    if (maxOrder === undefined) maxOrder = freeBlocks.length;
    else if (freeBlocks.length !== maxOrder) {
      throw parseError(
        file,
        line,
        `${maxOrder} orders like the lines above`,
        `${freeBlocks.length} orders in ${JSON.stringify(t)}`,
      );
    }
    const key = `${node}/${zone}`;
    if (seen.has(key))
      throw parseError(file, line, `each node/zone once (node ${node} zone ${zone} repeats)`, t);
    seen.add(key);
    const freePages = freePagesOf(freeBlocks);
    if (!Number.isSafeInteger(freePages)) throw parseError(file, line, 'free pages below 2^53', t);
    zones.push({ node, zone, freeBlocks, freePages });
  }
  return { zones, maxOrder: maxOrder ?? 0 };
}

/** Σ blocks[order] × 2^order. */
export function freePagesOf(freeBlocks: readonly number[]): number {
  let pages = 0;
  for (let order = 0; order < freeBlocks.length; order++) pages += (freeBlocks[order] ?? 0) * 2 ** order;
  return pages;
}
