import { parseError } from '../model/errors.js';
import { kernelLines, type ParseOptions, safeNumber } from './text.js';

// mm/vmstat.c vmstat_show: `%s %lu` per counter (seq_put_decimal_ull since 4.x). The set of
// counters changes with every release and config (nr_zspages, pgdemote_*, numa_*...), so any
// name is accepted; the shape of the line is not negotiable.
const LINE = /^([A-Za-z0-9_]+) (-?\d+)\s*$/;
const EXPECTED = '"<counter> <number>" (e.g. "nr_free_pages 116314")';

/** Parse /proc/vmstat into `{ counter: value }` (pages for nr_* gauges, events for pg* counters). */
export function parseVmstat(text: string, opts: ParseOptions = {}): Record<string, number> {
  const file = opts.file ?? '/proc/vmstat';
  const out: Record<string, number> = {};
  for (const { text: t, line } of kernelLines(text, file, EXPECTED, opts)) {
    if (t.trim() === '') continue;
    const m = LINE.exec(t);
    if (!m) throw parseError(file, line, EXPECTED, t);
    const name = m[1]!;
    if (Object.hasOwn(out, name)) throw parseError(file, line, `each counter once (${name} repeats)`, t);
    out[name] = safeNumber(m[2]!, file, line, `the value of ${name}`);
  }
  return out;
}
