import { parseError } from '../model/errors.js';
import { kernelLines, type ParseOptions, safeNumber } from './text.js';

/** One per-cpu pageset of a zone: pages on the per-cpu free lists are not in buddyinfo. */
export interface Pageset {
  cpu: number;
  /** `pcp: N` on kernels before 2.6.25, which had a hot (0) and a cold (1) list per cpu. */
  pcp?: number;
  /** count, high, batch, and low (2.6.1x) / high_min, high_max (6.7+): pages. */
  values: Record<string, number>;
}

export interface Zone {
  node: number;
  zone: string;
  /**
   * The watermark block, in pages: free, min, low, high, spanned, present, and when the kernel
   * prints them managed (3.8+), cma (4.x+), boost (5.0+), promo (6.x), scanned (until 4.7),
   * node_scanned (4.8), active/inactive/tscanned (2.6.1x).
   */
  pages: Record<string, number>;
  /** The zone's counters (nr_free_pages, nr_zone_*, numa_*...), in pages or events. */
  stats: Record<string, number>;
  /** `protection: (0, 3019, ...)`: lowmem_reserve against each higher zone, in pages. */
  protection?: number[];
  pagesets: Pageset[];
  /** Σ pagesets count: free pages held on per-cpu lists (counted as used by buddyinfo and MemFree). */
  pcpCountPages: number;
  /** Trailing `key: value` lines: start_pfn, node_unreclaimable, all_unreclaimable, prev_priority... */
  info: Record<string, number>;
  /** 1-based line of the `Node N, zone NAME` header. */
  line: number;
}

export interface Zoneinfo {
  zones: Zone[];
  /** The "per-node stats" block (4.8+), printed under the first zone of each node, by node. */
  nodeStats: Record<number, Record<string, number>>;
}

// mm/vmstat.c zoneinfo_show_print. Its layout over time:
//   2.6.1x: "  pages free N" / "        min N" ... "active", "inactive", "scanned N (a: N i: N)",
//           "tscanned", pagesets as "    cpu: N pcp: N" with count/low/high/batch;
//   2.6.2x: vm stats as "    nr_free_pages N" (4 spaces), "  vm stats threshold: N",
//           "  all_unreclaimable: N", "  prev_priority: N", "  start_pfn: N", "  inactive_ratio: N";
//   3.8: managed; 4.8: "  per-node stats" block (6 spaces), zone stats indented by 6,
//           "  node_unreclaimable: N", "node_inactive_ratio"; later boost, promo, cma, high_min/high_max.
// Zones without present pages print only the watermark block and protection (4.12+).
const ZONE = /^Node\s+(\d+),\s+zone\s+(\S+)\s*$/;
const KEY_VALUE = /^\s+([A-Za-z_][A-Za-z0-9_]*)\s+(-?\d+)\s*$/;
const KEY_COLON = /^\s+([A-Za-z_][A-Za-z0-9_ ]*?):\s+(-?\d+)\s*$/;
const WATERMARKS = new Set([
  'min',
  'low',
  'high',
  'boost',
  'promo',
  'spanned',
  'present',
  'managed',
  'cma',
  'scanned',
  'node_scanned',
  'active',
  'inactive',
  'tscanned',
]);
const EXPECTED =
  'a zoneinfo line: "Node N, zone NAME", "  pages free N", "    <counter> N", "  pagesets", "    cpu: N"';

type Mode = 'start' | 'node-stats' | 'watermarks' | 'stats' | 'pagesets' | 'tail';

/** Parse /proc/zoneinfo. Counts are pages. */
export function parseZoneinfo(text: string, opts: ParseOptions = {}): Zoneinfo {
  const file = opts.file ?? '/proc/zoneinfo';
  const zones: Zone[] = [];
  const nodeStats: Record<number, Record<string, number>> = {};
  let zone: Zone | undefined;
  let mode: Mode = 'start';
  let pageset: Pageset | undefined;
  const fail = (line: number, t: string, expected = EXPECTED): never => {
    throw parseError(file, line, expected, t);
  };
  const put = (rec: Record<string, number>, key: string, value: number, line: number, t: string) => {
    if (Object.hasOwn(rec, key)) fail(line, t, `each counter once per zone (${key} repeats)`);
    rec[key] = value;
  };

  const num = (token: string, line: number) => safeNumber(token, file, line, 'a number');
  for (const { text: t, line } of kernelLines(text, file, '"Node 0, zone      DMA"', opts)) {
    if (t.trim() === '') continue;
    let m = ZONE.exec(t);
    if (m) {
      finishZone(zone, file);
      const node = num(m[1]!, line);
      const name = m[2]!;
      if (zones.some((z) => z.node === node && z.zone === name))
        fail(line, t, `each node/zone once (node ${node} zone ${name} repeats)`);
      zone = { node, zone: name, pages: {}, stats: {}, pagesets: [], pcpCountPages: 0, info: {}, line };
      zones.push(zone);
      mode = 'start';
      pageset = undefined;
      continue;
    }
    if (!zone) fail(line, t, '"Node N, zone NAME" as the first line');
    const z = zone as Zone;
    if (/^\s+per-node stats\s*$/.test(t)) {
      if (mode !== 'start' || nodeStats[z.node] !== undefined)
        fail(line, t, 'one "per-node stats" block per node, right after its first zone header');
      nodeStats[z.node] = {};
      mode = 'node-stats';
      continue;
    }
    m = /^\s+pages free\s+(\d+)\s*$/.exec(t);
    if (m) {
      if (mode !== 'start' && mode !== 'node-stats')
        fail(line, t, '"pages free" once, at the start of a zone');
      z.pages.free = num(m[1]!, line);
      mode = 'watermarks';
      continue;
    }
    m = /^\s+protection: \(([-\d, ]*)\)\s*$/.exec(t);
    if (m) {
      if (mode !== 'watermarks' && mode !== 'stats')
        fail(line, t, '"protection: (...)" after the zone counters');
      z.protection = m[1]!.split(',').map((x) => {
        const s = x.trim();
        if (!/^-?\d+$/.test(s)) fail(line, t, '"protection: (N, N, ...)"');
        return num(s, line);
      });
      mode = 'stats';
      continue;
    }
    if (/^\s+pagesets\s*$/.test(t)) {
      if (mode !== 'watermarks' && mode !== 'stats') fail(line, t, '"pagesets" after the zone counters');
      mode = 'pagesets';
      continue;
    }
    m = /^\s+cpu: (\d+)(?: pcp: (\d+))?\s*$/.exec(t);
    if (m) {
      if (mode !== 'pagesets') fail(line, t, '"cpu: N" inside "pagesets"');
      pageset = { cpu: num(m[1]!, line), values: {} };
      if (m[2] !== undefined) pageset.pcp = num(m[2]!, line);
      z.pagesets.push(pageset);
      continue;
    }
    m = /^\s+scanned\s+(\d+) \(a: (\d+) i: (\d+)\)\s*$/.exec(t);
    if (m) {
      // 2.6.1x: "scanned  0 (a: 27 i: 24)": pages scanned, and the active/inactive scan counters.
      if (mode !== 'watermarks') fail(line, t, '"scanned N (a: N i: N)" among the watermarks');
      put(z.pages, 'scanned', num(m[1]!, line), line, t);
      put(z.info, 'nr_scan_active', num(m[2]!, line), line, t);
      put(z.info, 'nr_scan_inactive', num(m[3]!, line), line, t);
      continue;
    }
    m = KEY_COLON.exec(t);
    if (m) {
      const key = m[1]!;
      const value = num(m[2]!, line);
      if (mode === 'pagesets' && pageset && !key.includes(' ') && /^\s{8,}/.test(t)) {
        put(pageset.values, key, value, line, t);
        if (key === 'count') z.pcpCountPages += value;
      } else if (key === 'vm stats threshold') {
        if (mode !== 'pagesets') fail(line, t, '"vm stats threshold" inside "pagesets"');
        if (pageset) put(pageset.values, 'vm_stats_threshold', value, line, t);
        else put(z.info, 'vm_stats_threshold', value, line, t);
      } else {
        // Trailing zone lines: "  start_pfn:  4096", "  node_unreclaimable:  0"...
        if (mode === 'start' || mode === 'node-stats') fail(line, t);
        put(z.info, key.replace(/ /g, '_'), value, line, t);
        mode = 'tail';
      }
      continue;
    }
    m = KEY_VALUE.exec(t);
    if (m) {
      const key = m[1]!;
      const value = num(m[2]!, line);
      if (mode === 'node-stats') put(nodeStats[z.node]!, key, value, line, t);
      else if (mode === 'watermarks' && WATERMARKS.has(key)) put(z.pages, key, value, line, t);
      else if (mode === 'watermarks' || mode === 'stats') {
        put(z.stats, key, value, line, t);
        mode = 'stats';
      } else fail(line, t);
      continue;
    }
    fail(line, t);
  }
  finishZone(zone, file);
  return { zones, nodeStats };
}

/** A zone header with nothing after it is a truncated file. */
function finishZone(zone: Zone | undefined, file: string): void {
  if (zone && zone.pages.free === undefined) {
    throw parseError(
      file,
      zone.line,
      `"  pages free N" after "Node ${zone.node}, zone ${zone.zone}"`,
      '<no pages free line>',
    );
  }
}
