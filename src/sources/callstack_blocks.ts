import { parseError } from '../model/errors.js';
import type { Frame } from '../model/frame.js';
import { parseFrame } from '../model/frame.js';
import { kernelLines, type ParseOptions, safeNumber } from './text.js';

/**
 * A generic "count + call trace" block format, for out-of-tree tools whose output is a
 * list of counted stacks: the vendor `slabtrace` patch (/proc/slabtrace, read before and
 * after a stress test and compared by count), page_owner_sort output, and scripts that
 * print the same shape. Blocks are separated by blank lines or start at the next header;
 * each is one header line with the count, then one frame per line:
 *
 *   400 times, 800 pages:                 (page_owner_sort: `%d times, %d pages:`)
 *   count: 400 cache: kmalloc-96 size: 96 (key: value labels)
 *   count=400 cache=kmalloc-96            (key=value labels)
 *   400 kmalloc-96                        (a leading count, the rest as a label)
 *    [<ffffffff8112c776>] __kmem_cache_alloc_node+0xe8/0xfc
 *    demo_cache_fill+0x1b/0x40 [leaky]
 *
 * Text lines between the header and the first frame are kept as a description.
 *
 * Numeric labels `size`, `bytes` and `pages` are read as bytes per object, total bytes
 * and pages; other labels are kept as text.
 */
export interface CallstackBlock {
  count: number;
  /** Total bytes: `bytes=` or count x `size=`. */
  bytes?: number;
  pages?: number;
  /** Other labels from the header (`cache`, `comm`...); `text` for free text after a bare count. */
  labels: Record<string, string>;
  /** Text lines between the header and the first frame (page_owner_sort's `Page allocated via ...`). */
  description: string[];
  frames: Frame[];
  /** 1-based header line. */
  line: number;
}

const TIMES = /^\s*(\d+) times(?:, (\d+) pages)?:?\s*$/;
const KV = /([A-Za-z_][\w-]*)\s*[:=]\s*(\S+)/g;
const BARE = /^(\d+)(?:\s+(.*?))?$/;

function parseHeader(
  t: string,
  num: (token: string) => number,
): Omit<CallstackBlock, 'frames' | 'line' | 'description'> | undefined {
  const times = TIMES.exec(t);
  if (times) {
    const b: Omit<CallstackBlock, 'frames' | 'line' | 'description'> = {
      count: num(times[1]!),
      labels: {},
    };
    if (times[2] !== undefined) b.pages = num(times[2]);
    return b;
  }
  const trimmed = t.trim();
  if (/^count\s*[:=]/i.test(trimmed)) {
    const labels: Record<string, string> = {};
    for (const m of trimmed.matchAll(KV)) labels[m[1]!.toLowerCase()] = m[2]!.replace(/,$/, '');
    const count = labels.count;
    if (count === undefined || !/^\d+$/.test(count)) return undefined;
    delete labels.count;
    const b: Omit<CallstackBlock, 'frames' | 'line' | 'description'> = { count: num(count), labels };
    const label = (k: string) => {
      const v = labels[k];
      if (v === undefined || !/^\d+$/.test(v)) return undefined;
      delete labels[k];
      return num(v);
    };
    const size = label('size');
    const bytes = label('bytes');
    const pages = label('pages');
    if (bytes !== undefined) b.bytes = bytes;
    else if (size !== undefined) {
      b.bytes = size * b.count;
      if (!Number.isSafeInteger(b.bytes)) b.bytes = num(String(BigInt(size) * BigInt(b.count)));
    }
    if (pages !== undefined) b.pages = pages;
    return b;
  }
  // A bare leading count (`%7ld ` right-aligned in slab listings): frames never start
  // with a decimal number followed by a space (addresses are `0x...`).
  const bare = BARE.exec(trimmed);
  if (bare) return { count: num(bare[1]!), labels: bare[2] ? { text: bare[2] } : {} };
  return undefined;
}

export function parseCallstackBlocks(text: string, opts: ParseOptions = {}): CallstackBlock[] {
  const file = opts.file ?? 'callstacks';
  const blocks: CallstackBlock[] = [];
  let cur: CallstackBlock | undefined;
  for (const { text: t, line } of kernelLines(
    text,
    file,
    'blocks of a count line followed by stack frames',
    opts,
  )) {
    if (t.trim() === '') {
      cur = undefined;
      continue;
    }
    const header = parseHeader(t, (token) => safeNumber(token, file, line, 'a count'));
    if (header) {
      cur = { ...header, description: [], frames: [], line };
      blocks.push(cur);
      continue;
    }
    if (!cur) throw parseError(file, line, 'a count line (`N times:`, `count: N`, or `N ...`)', t);
    const f = parseFrame(t);
    if (!f) {
      if (cur.frames.length === 0) {
        cur.description.push(t.trim());
        continue;
      }
      throw parseError(file, line, 'a stack frame like ` func+0x2c/0x57 [mod]`', t);
    }
    cur.frames.push(f);
  }
  for (const b of blocks)
    if (b.frames.length === 0) throw parseError(file, b.line, 'stack frames below the count line', '<none>');
  return blocks;
}
