import { parseError } from '../model/errors.js';
import { kernelLines, type NumberedLine, PAGE_ORDER_LIMIT, type ParseOptions, safeNumber } from './text.js';

export interface PagetypeFree {
  node: number;
  zone: string;
  /** Migrate type as printed: Unmovable, Movable, Reclaimable, HighAtomic, CMA, Isolate, Reserve (before 4.4). */
  type: string;
  /** Free blocks per order (index = order). */
  freeBlocks: number[];
  /**
   * Orders whose count the kernel stopped at 100000 and printed as `>100000` (5.4+, to bound the
   * time spent under zone->lock): the real count is at least freeBlocks[order].
   */
  cappedOrders?: number[];
}

export interface PagetypeBlocks {
  node: number;
  zone: string;
  /** Page blocks per migrate type. */
  counts: Record<string, number>;
}

export interface Pagetypeinfo {
  /** `Page block order: 9`: a page block is 2^order pages. */
  pageBlockOrder: number;
  /** `Pages per block:  512`. */
  pagesPerBlock: number;
  free: PagetypeFree[];
  blocks: PagetypeBlocks[];
  /** "Number of mixed blocks" (CONFIG_PAGE_OWNER with page_owner=on): blocks holding pages of other types. */
  mixedBlocks?: PagetypeBlocks[];
}

// mm/vmstat.c pagetypeinfo_show (2.6.24+):
//   "Page block order: %d\n" "Pages per block:  %lu\n\n"
//   "%-43s " "Free pages count per migrate type at order" + "%6d " per order
//   "Node %4d, zone %8s, type %12s " + "%6lu " per order ("%s%6lu " with ">" when capped, 5.4+)
//   "\n%-23s" "Number of blocks type " + "%12s " per type, then "Node %d, zone %8s " + "%12lu " per type
//   the same table again under "Number of mixed blocks " with page_owner (3.x+).
const FREE_HEADER = /^Free pages count per migrate type at order((?:\s+\d+)+)\s*$/;
const FREE_LINE = /^Node\s+(\d+),\s+zone\s+(\S+),\s+type\s+(\S+)((?:\s+>?\d+)+)\s*$/;
// The mixed table's title has no "type": "Number of mixed blocks    Unmovable ...".
const BLOCKS_HEADER = /^Number of (blocks type|mixed blocks)((?:\s+\S+)+)\s*$/;
const BLOCKS_LINE = /^Node\s+(\d+),\s+zone\s+(\S+)((?:\s+\d+)+)\s*$/;

/** Parse /proc/pagetypeinfo. */
export function parsePagetypeinfo(text: string, opts: ParseOptions = {}): Pagetypeinfo {
  const file = opts.file ?? '/proc/pagetypeinfo';
  const all = kernelLines(text, file, '"Page block order: 9"', opts);
  const lines = all.filter((l) => l.text.trim() !== '');
  let i = 0;
  const next = (): NumberedLine | undefined => lines[i++];
  const lastLine = all.length;

  const readHeaderNumber = (label: string, example: string): number => {
    const l = next();
    const m = l && new RegExp(`^${label}:\\s+(\\d+)\\s*$`).exec(l.text);
    if (!l || !m) throw parseError(file, l?.line ?? lastLine + 1, `"${example}"`, l?.text ?? '<end of file>');
    return safeNumber(m[1]!, file, l.line, label);
  };
  const pageBlockOrder = readHeaderNumber('Page block order', 'Page block order: 9');
  if (pageBlockOrder > PAGE_ORDER_LIMIT)
    throw parseError(
      file,
      lines[0]!.line,
      `a page block order of at most ${PAGE_ORDER_LIMIT}`,
      lines[0]!.text,
    );
  const pagesPerBlock = readHeaderNumber('Pages per block', 'Pages per block:  512');
  if (pagesPerBlock !== 2 ** pageBlockOrder) {
    throw parseError(
      file,
      lines[1]!.line,
      `Pages per block = 2^${pageBlockOrder} = ${2 ** pageBlockOrder}`,
      lines[1]!.text,
    );
  }

  const fh = next();
  const fm = fh && FREE_HEADER.exec(fh.text);
  if (!fh || !fm) {
    throw parseError(
      file,
      fh?.line ?? lastLine + 1,
      '"Free pages count per migrate type at order 0 1 2 ..."',
      fh?.text ?? '<end of file>',
    );
  }
  const orders = fm[1]!
    .trim()
    .split(/\s+/)
    .map((x) => safeNumber(x, file, fh.line, 'an order'));
  if (orders.length > PAGE_ORDER_LIMIT + 1)
    throw parseError(file, fh.line, `at most ${PAGE_ORDER_LIMIT + 1} orders`, fh.text);
  orders.forEach((o, idx) => {
    if (o !== idx) throw parseError(file, fh.line, 'orders 0, 1, 2, ... in the header', fh.text);
  });

  const result: Pagetypeinfo = { pageBlockOrder, pagesPerBlock, free: [], blocks: [] };
  for (let l = lines[i]; l && !BLOCKS_HEADER.test(l.text); l = lines[++i]) {
    const m = FREE_LINE.exec(l.text);
    if (!m)
      throw parseError(file, l.line, '"Node N, zone NAME, type TYPE <free blocks per order...>"', l.text);
    const tokens = m[4]!.trim().split(/\s+/);
    if (tokens.length !== orders.length) {
      throw parseError(
        file,
        l.line,
        `${orders.length} orders as in the header`,
        `${tokens.length} in ${JSON.stringify(l.text)}`,
      );
    }
    const entry: PagetypeFree = {
      node: safeNumber(m[1]!, file, l.line, 'a node number'),
      zone: m[2]!,
      type: m[3]!,
      freeBlocks: [],
    };
    tokens.forEach((tok, order) => {
      if (tok.startsWith('>')) {
        entry.cappedOrders = [...(entry.cappedOrders ?? []), order];
      }
      entry.freeBlocks.push(safeNumber(tok.replace('>', ''), file, l.line, 'a count of free blocks'));
    });
    result.free.push(entry);
  }
  if (result.free.length === 0) {
    const l = lines[i];
    throw parseError(
      file,
      l?.line ?? lastLine + 1,
      '"Node N, zone NAME, type TYPE ..." free lines',
      l?.text ?? '<end of file>',
    );
  }

  // One or two block tables follow.
  while (i < lines.length) {
    const h = lines[i++]!;
    const hm = BLOCKS_HEADER.exec(h.text);
    if (!hm)
      throw parseError(
        file,
        h.line,
        '"Number of blocks type <types...>" or "Number of mixed blocks <types...>"',
        h.text,
      );
    const types = hm[2]!.trim().split(/\s+/);
    const rows: PagetypeBlocks[] = [];
    for (let l = lines[i]; l && !BLOCKS_HEADER.test(l.text); l = lines[++i]) {
      const m = BLOCKS_LINE.exec(l.text);
      if (!m) throw parseError(file, l.line, `"Node N, zone NAME" and ${types.length} block counts`, l.text);
      const counts = m[3]!
        .trim()
        .split(/\s+/)
        .map((x) => safeNumber(x, file, l.line, 'a count of page blocks'));
      if (counts.length !== types.length) {
        throw parseError(
          file,
          l.line,
          `${types.length} counts (${types.join(' ')})`,
          `${counts.length} in ${JSON.stringify(l.text)}`,
        );
      }
      const rec: Record<string, number> = {};
      types.forEach((t, k) => {
        rec[t] = counts[k]!;
      });
      rows.push({ node: safeNumber(m[1]!, file, l.line, 'a node number'), zone: m[2]!, counts: rec });
    }
    if (rows.length === 0) {
      throw parseError(
        file,
        lines[i]?.line ?? lastLine + 1,
        `"Node N, zone NAME" rows under "${h.text.trim()}"`,
        lines[i]?.text ?? '<end of file>',
      );
    }
    if (hm[1] === 'blocks type') {
      if (result.blocks.length > 0)
        throw parseError(file, h.line, 'one "Number of blocks type" table', h.text);
      result.blocks = rows;
    } else {
      if (result.mixedBlocks) throw parseError(file, h.line, 'one "Number of mixed blocks" table', h.text);
      result.mixedBlocks = rows;
    }
  }
  if (result.blocks.length === 0) {
    throw parseError(file, lastLine + 1, '"Number of blocks type ..." table', '<end of file>');
  }
  // Each zone with free lines must have a blocks row: a shorter table is a truncated file.
  for (const f of result.free) {
    if (!result.blocks.some((b) => b.node === f.node && b.zone === f.zone)) {
      throw parseError(
        file,
        lastLine + 1,
        `a "Number of blocks" row for node ${f.node} zone ${f.zone}`,
        '<end of file>',
      );
    }
  }
  return result;
}
