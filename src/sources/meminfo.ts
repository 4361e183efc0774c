import { parseError } from '../model/errors.js';
import { numberedLines, type ParseOptions, requireNonEmpty } from './text.js';

/** One `Key: value [kB]` line of /proc/meminfo. */
export interface MeminfoField {
  /** The kernel's name, e.g. `MemTotal`, `Active(anon)`, `HugePages_Total`. */
  name: string;
  /** Bytes for `kB` fields (kB × 1024), the raw number for unitless ones. */
  value: number;
  unit: 'bytes' | 'count';
  /** 1-based line number in the file. */
  line: number;
}

export interface Meminfo {
  /** Every field, in file order. */
  fields: MeminfoField[];
  /** Every `kB` field converted to bytes, e.g. `bytes.MemTotal`. */
  bytes: Record<string, number | undefined>;
  /** Unitless fields: HugePages_Total/Free/Rsvd/Surp (and ReverseMaps on 2.5). */
  counts: Record<string, number | undefined>;
  /** Node number, for /sys/devices/system/node/nodeN/meminfo (`Node 0 MemTotal: ...`). */
  node?: number;
}

// fs/proc/meminfo.c prints `%-*s%8lu kB` (show_val_kb since 4.12, `"MemTotal: %8lu kB\n"` before);
// hugetlb_report_meminfo prints the HugePages_* counts without a unit.
// drivers/base/node.c prints the same names behind `Node %d `.
// Names are letters, digits, `_` and parentheses (`Active(anon)`).
// Values are `%lu`; a 2.6.29 DirectMap line printed a wrapped-negative 18446744073709551613, which
// is kept (as the nearest double) rather than rejected, because real kernels printed it.
const LINE = /^(?:Node (\d+) )?([A-Za-z0-9_()]+):\s+(\d+)(?: (kB))?\s*$/;
const EXPECTED = '"Name:   <number> kB" or "Name:   <number>" (e.g. "MemTotal:  494436 kB")';

/**
 * Parse /proc/meminfo or a per-node /sys/devices/system/node/nodeN/meminfo. Fields that come and
 * go across kernel versions (MemAvailable since 3.14, Shmem since 2.6.32, KReclaimable since 4.20,
 * Percpu since 4.0...) are whatever the file holds: callers read `bytes.X` and handle `undefined`.
 */
export function parseMeminfo(text: string, opts: ParseOptions = {}): Meminfo {
  const file = opts.file ?? '/proc/meminfo';
  requireNonEmpty(text, file, EXPECTED);
  const result: Meminfo = { fields: [], bytes: {}, counts: {} };
  const seen = new Set<string>();
  for (const { text: t, line } of numberedLines(text)) {
    if (t.trim() === '') continue;
    const m = LINE.exec(t);
    if (!m) throw parseError(file, line, EXPECTED, t);
    const [, nodeStr, name, valueStr, kb] = m as unknown as [
      string,
      string | undefined,
      string,
      string,
      string | undefined,
    ];
    if (nodeStr !== undefined) {
      const node = Number(nodeStr);
      if (result.node === undefined && result.fields.length === 0) result.node = node;
      else if (result.node !== node) {
        throw parseError(
          file,
          line,
          result.node === undefined ? 'a line without "Node N "' : `"Node ${result.node} ${name}: ..."`,
          t,
        );
      }
    } else if (result.node !== undefined) {
      throw parseError(file, line, `"Node ${result.node} ${name}: ..."`, t);
    }
    if (seen.has(name))
      throw parseError(file, line, `each field once (${name} already on an earlier line)`, t);
    seen.add(name);
    const raw = Number(valueStr);
    if (kb !== undefined) {
      const value = raw * 1024;
      result.bytes[name] = value;
      result.fields.push({ name, value, unit: 'bytes', line });
    } else {
      result.counts[name] = raw;
      result.fields.push({ name, value: raw, unit: 'count', line });
    }
  }
  if (result.bytes.MemTotal === undefined) {
    throw parseError(file, undefined, 'a MemTotal line (every meminfo has one)', text.slice(0, 60));
  }
  return result;
}
