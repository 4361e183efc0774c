import { parseError } from '../model/errors.js';
import { kernelLines, MAX_LINE_BYTES, type ParseOptions, safeNumber } from './text.js';

/** One cache line of /proc/slabinfo, names as in the kernel's header. */
export interface SlabCache {
  name: string;
  activeObjs: number;
  numObjs: number;
  /** `<objsize>`: the object size including SLAB/SLUB metadata (s->size). */
  objSizeBytes: number;
  objPerSlab: number;
  pagesPerSlab: number;
  /** `tunables`: SLAB only; SLUB prints 0 0 0. */
  limit?: number;
  batchcount?: number;
  sharedFactor?: number;
  activeSlabs: number;
  numSlabs: number;
  sharedAvail?: number;
  /** `: globalstat ...` numbers of a "(statistics)" slabinfo (CONFIG_DEBUG_SLAB), in header order. */
  globalstat?: number[];
  /** `: cpustat ...` numbers of a "(statistics)" slabinfo. */
  cpustat?: number[];
  /** 1-based line in the file. */
  line: number;
}

export interface Slabinfo {
  /** `2.0` (SLAB of early 2.6 kernels) or `2.1` (SLAB after the NUMA rework, SLUB; the only one since 6.8). */
  version: string;
  /** True for "slabinfo - version: 2.x (statistics)". */
  statistics: boolean;
  caches: SlabCache[];
}

// mm/slab.c (2.6.x) / mm/slab_common.c print_slabinfo_header: "slabinfo - version: 2.1" or
// "2.1 (statistics)" with CONFIG_DEBUG_SLAB; early 2.6 printed "2.0" with the same main columns
// (2.1 added <nodeallocs> to the statistics).
// Version 1.x (2.4 kernels) had different columns and is not supported.
const VERSION = /^slabinfo - version: (2\.[01])( \(statistics\))?\s*$/;
// cache_show: "%-17s %6lu %6lu %6u %4u %4d" " : tunables %4u %4u %4u" " : slabdata %6lu %6lu %6lu".
// The data order is limit, batchcount, shared on every version, although the 2.0 header
// labelled them "<batchcount> <limit>" (e.g. "tunables 120 60 0": limit 120, batchcount 60).
const EXPECTED_LINE =
  '"<name> <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"';

function numbers(
  part: string,
  count: number | 'any',
  file: string,
  line: number,
  what: string,
  t: string,
): number[] {
  const tokens = part.trim() === '' ? [] : part.trim().split(/\s+/);
  if ((count !== 'any' && tokens.length !== count) || tokens.some((x) => !/^\d+$/.test(x))) {
    throw parseError(file, line, `${what} in ${EXPECTED_LINE}`, t);
  }
  return tokens.map((x) => safeNumber(x, file, line, what));
}

/** Parse /proc/slabinfo (versions 2.0 and 2.1, with or without statistics). */
export function parseSlabinfo(text: string, opts: ParseOptions = {}): Slabinfo {
  return slabinfoFast(text, opts.maxLineBytes ?? MAX_LINE_BYTES) ?? parseSlabinfoLines(text, opts);
}

const VERSION_21 = 'slabinfo - version: 2.1\n';

/**
 * slabinfo 2.1 without statistics (every SLUB kernel, SLAB ones without CONFIG_DEBUG_SLAB) as
 * mm/slab_common.c prints it, read with a character loop: no line objects, no regular
 * expression, no token arrays (the recorder reads it every 10 s, unoptimized: cli/daemon.ts).
 * Undefined for anything else (2.0, statistics, a blank line, a name with a space, 16 digits or
 * more, more active objects than objects, a repeated name, a cut or over-long line):
 * parseSlabinfoLines then reads it or names the error. Exported for the tests that hold it to
 * the line parser.
 */
export function slabinfoFast(text: string, maxLine: number): Slabinfo | undefined {
  const n = text.length;
  if (n > maxLine || text.charCodeAt(n - 1) !== 10 || !text.startsWith(VERSION_21)) return undefined;
  let i = VERSION_21.length;
  if (!text.startsWith('# name', i)) return undefined;
  i = text.indexOf('\n', i) + 1;
  const caches: SlabCache[] = [];
  const seen = new Set<string>();
  const v = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  let line = 2;
  // Spaces, then 1 to 15 digits into v[k]; the index after them, or -1.
  const num = (at: number, k: number): number => {
    let c = text.charCodeAt(at);
    if (c !== 32) return -1;
    while (c === 32) c = text.charCodeAt(++at);
    const d0 = at;
    let x = 0;
    while (c >= 48 && c <= 57) {
      x = x * 10 + (c - 48);
      c = text.charCodeAt(++at);
    }
    if (at === d0 || at - d0 > 15) return -1;
    v[k] = x;
    return at;
  };
  // v[from..to) from `at`; the index after them, or -1.
  const nums = (at: number, from: number, to: number): number => {
    for (let k = from; k < to && at >= 0; k++) at = num(at, k);
    return at;
  };
  while (i < n) {
    line++;
    const s = i;
    let c = text.charCodeAt(i);
    while (c > 32 && c < 127) c = text.charCodeAt(++i);
    if (i === s || c !== 32) return undefined;
    const name = text.slice(s, i);
    i = nums(i, 0, 5);
    if (i < 0 || !text.startsWith(' : tunables', i)) return undefined;
    i = nums(i + 11, 5, 8);
    if (i < 0 || !text.startsWith(' : slabdata', i)) return undefined;
    i = nums(i + 11, 8, 11);
    if (i < 0) return undefined;
    c = text.charCodeAt(i);
    while (c === 32) c = text.charCodeAt(++i);
    if (c !== 10 || v[0]! > v[1]! || seen.has(name)) return undefined;
    i++;
    seen.add(name);
    caches.push({
      name,
      activeObjs: v[0]!,
      numObjs: v[1]!,
      objSizeBytes: v[2]!,
      objPerSlab: v[3]!,
      pagesPerSlab: v[4]!,
      limit: v[5]!,
      batchcount: v[6]!,
      sharedFactor: v[7]!,
      activeSlabs: v[8]!,
      numSlabs: v[9]!,
      sharedAvail: v[10]!,
      line,
    });
  }
  return caches.length > 0 ? { version: '2.1', statistics: false, caches } : undefined;
}

function parseSlabinfoLines(text: string, opts: ParseOptions): Slabinfo {
  const file = opts.file ?? '/proc/slabinfo';
  const lines = kernelLines(text, file, '"slabinfo - version: 2.1"', opts);
  const first = lines[0]!;
  const v = VERSION.exec(first.text);
  if (!v)
    throw parseError(file, first.line, '"slabinfo - version: 2.0" or "slabinfo - version: 2.1"', first.text);
  const result: Slabinfo = { version: v[1]!, statistics: v[2] !== undefined, caches: [] };
  const header = lines[1];
  if (!header?.text.startsWith('# name')) {
    throw parseError(
      file,
      header?.line ?? 2,
      'the column header "# name <active_objs> ..."',
      header?.text ?? '<end of file>',
    );
  }
  const seen = new Set<string>();
  for (const { text: t, line } of lines.slice(2)) {
    if (t.trim() === '') continue;
    const parts = t.split(' : ');
    const [head, tunables, slabdata, ...rest] = parts;
    if (head === undefined || tunables === undefined || slabdata === undefined) {
      throw parseError(file, line, EXPECTED_LINE, t);
    }
    if (!tunables.startsWith('tunables ') || !slabdata.startsWith('slabdata ')) {
      throw parseError(file, line, EXPECTED_LINE, t);
    }
    // The name is padded with %-17s; a longer name is followed by one space. Take the last five
    // tokens as numbers and the rest as the name.
    const tokens = head.trim().split(/\s+/);
    if (tokens.length < 6) throw parseError(file, line, EXPECTED_LINE, t);
    const name = tokens.slice(0, tokens.length - 5).join(' ');
    const [activeObjs, numObjs, objSizeBytes, objPerSlab, pagesPerSlab] = numbers(
      tokens.slice(-5).join(' '),
      5,
      file,
      line,
      'five numbers after the name',
      t,
    ) as [number, number, number, number, number];
    const [limit, batchcount, sharedFactor] = numbers(
      tunables.slice('tunables '.length),
      3,
      file,
      line,
      'three tunables',
      t,
    ) as [number, number, number];
    const [activeSlabs, numSlabs, sharedAvail] = numbers(
      slabdata.slice('slabdata '.length),
      3,
      file,
      line,
      'three slabdata numbers',
      t,
    ) as [number, number, number];
    const cache: SlabCache = {
      name,
      activeObjs,
      numObjs,
      objSizeBytes,
      objPerSlab,
      pagesPerSlab,
      limit,
      batchcount,
      sharedFactor,
      activeSlabs,
      numSlabs,
      sharedAvail,
      line,
    };
    for (const section of rest) {
      const m = /^(globalstat|cpustat)\s+(.*)$/.exec(section);
      if (!m || !result.statistics)
        throw parseError(
          file,
          line,
          `${EXPECTED_LINE} (extra sections only in a "(statistics)" slabinfo)`,
          t,
        );
      cache[m[1] as 'globalstat' | 'cpustat'] = numbers(m[2]!, 'any', file, line, `${m[1]} numbers`, t);
    }
    if (activeObjs > numObjs) throw parseError(file, line, `<active_objs> <= <num_objs> for ${name}`, t);
    if (seen.has(name)) throw parseError(file, line, `each cache once (${name} repeats)`, t);
    seen.add(name);
    result.caches.push(cache);
  }
  if (result.caches.length === 0) {
    throw parseError(
      file,
      (lines[lines.length - 1]?.line ?? 2) + 1,
      'at least one cache line after the header',
      '<end of file>',
    );
  }
  return result;
}

/** What a cache uses: the live objects, and the slab pages it holds from the page allocator. */
export function slabCacheBytes(
  c: SlabCache,
  pageSizeBytes: number,
): { objectBytes: number; slabBytes: number } {
  return {
    objectBytes: c.activeObjs * c.objSizeBytes,
    slabBytes: c.numSlabs * c.pagesPerSlab * pageSizeBytes,
  };
}
