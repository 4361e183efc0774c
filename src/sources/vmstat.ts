import { parseError } from '../model/errors.js';
import { kernelLines, MAX_LINE_BYTES, type ParseOptions, safeNumber } from './text.js';

// mm/vmstat.c vmstat_show: `%s %lu` per counter (seq_put_decimal_ull since 4.x). The set of
// counters changes with every release and config (nr_zspages, pgdemote_*, numa_*...), so any
// name is accepted; the shape of the line is not negotiable.
const LINE = /^([A-Za-z0-9_]+) (-?\d+)\s*$/;
const EXPECTED = '"<counter> <number>" (e.g. "nr_free_pages 116314")';

/** Parse /proc/vmstat into `{ counter: value }` (pages for nr_* gauges, events for pg* counters). */
export function parseVmstat(text: string, opts: ParseOptions = {}): Record<string, number> {
  return vmstatFast(text, opts.maxLineBytes ?? MAX_LINE_BYTES) ?? parseVmstatLines(text, opts);
}

/**
 * The file as the kernel prints it (`name value\n` lines, nothing else), read with a character
 * loop: no line objects, no regular expression (the recorder reads vmstat every tick, unoptimized:
 * cli/daemon.ts). Undefined for anything else (a blank line, a sign, 16 digits or more, a cut or
 * over-long line, a repeated name): parseVmstatLines then reads it or names the error. Exported for
 * the tests that hold it to the line parser.
 */
export function vmstatFast(text: string, maxLine: number): Record<string, number> | undefined {
  const n = text.length;
  if (n === 0 || n > maxLine || text.charCodeAt(n - 1) !== 10) return undefined;
  const out: Record<string, number> = {};
  let i = 0;
  while (i < n) {
    const s = i;
    let c = text.charCodeAt(i);
    while ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || (c >= 65 && c <= 90))
      c = text.charCodeAt(++i);
    if (i === s || c !== 32) return undefined;
    const name = text.slice(s, i);
    const d0 = ++i;
    let v = 0;
    c = text.charCodeAt(i);
    while (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      c = text.charCodeAt(++i);
    }
    if (i === d0 || i - d0 > 15 || c !== 10 || Object.hasOwn(out, name)) return undefined;
    out[name] = v;
    i++;
  }
  return out;
}

function parseVmstatLines(text: string, opts: ParseOptions): Record<string, number> {
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
