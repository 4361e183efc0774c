import { excerpt, type MemsleuthError, parseError } from '../model/errors.js';

/** Options every text parser accepts. */
export interface ParseOptions {
  /** Name used in error messages, e.g. `/proc/meminfo` or `bundle:proc/12/smaps`. */
  file?: string;
  /**
   * Read what is complete of a truncated input (no final newline, a record cut short):
   * the cut part is dropped and `onWarning` says what, instead of a parse error.
   */
  lenient?: boolean;
  /** Where a lenient parse reports what it dropped (file, line and what). */
  onWarning?: (message: string) => void;
  /** Longest line accepted, in bytes (default MAX_LINE_BYTES). */
  maxLineBytes?: number;
}

/** What a command passes down to every parser: lenient reading, and where its warnings go. */
export type ParseSettings = Pick<ParseOptions, 'lenient' | 'onWarning'>;

/**
 * The longest line a text parser accepts: 1 MiB. Kernel text lines are short; the longest
 * real one is /proc/PID/status `Groups:` with up to 65536 group ids (NGROUPS_MAX), about
 * 720 KB. A longer line is not kernel output.
 */
export const MAX_LINE_BYTES = 1 << 20;

/**
 * The largest page order memsleuth accepts in buddyinfo, pagetypeinfo and page_owner.
 * MAX_PAGE_ORDER is 10 by default and ARCH_FORCE_MAX_ORDER raises it into the teens on arm64
 * and powerpc; gigantic pages from alloc_contig reach PUD_ORDER (18 for 1 GiB on x86-64).
 * An order above 20 is not kernel output, and 2^order pages must stay a real count.
 */
export const PAGE_ORDER_LIMIT = 20;

/** A line with its 1-based number. */
export interface NumberedLine {
  text: string;
  line: number;
}

/** Split text into lines with numbers; a trailing newline does not make an empty last line. */
export function numberedLines(text: string): NumberedLine[] {
  const parts = text.split('\n');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.map((t, i) => ({ text: t.endsWith('\r') ? t.slice(0, -1) : t, line: i + 1 }));
}

/** The error for a line over the limit: named by number, never printed whole. */
export function lineTooLong(file: string, line: number, bytes: number, max: number): MemsleuthError {
  return parseError(file, line, `a line of at most ${formatLimit(max)}`, `a line of ${bytes} bytes`, {
    hint: 'this is not kernel text output (or the file is corrupted)',
  });
}

export function formatLimit(bytes: number): string {
  return bytes % (1 << 20) === 0 ? `${bytes / (1 << 20)} MiB` : `${bytes} bytes`;
}

/** Throw when any line of `text` is longer than the limit (checked without splitting). */
export function checkLineLengths(text: string, file: string, max = MAX_LINE_BYTES): void {
  if (text.length <= max) return;
  let start = 0;
  let line = 1;
  for (;;) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    if (end - start > max) throw lineTooLong(file, line, end - start, max);
    if (nl < 0) return;
    start = nl + 1;
    line++;
  }
}

/**
 * The lines of a kernel text file (procfs, sysfs, debugfs), checked for what the kernel
 * guarantees: the file is not empty, no line is longer than MAX_LINE_BYTES, and the last
 * line ends with a newline (every seq_file show routine ends its lines with one; a missing
 * one means the read was cut short). A cut last line is a parse error, or with `lenient`
 * a warning naming the file, the line and what was dropped.
 */
export function kernelLines(
  text: string,
  file: string,
  expected: string,
  opts: ParseOptions = {},
): NumberedLine[] {
  const lines: NumberedLine[] = [];
  forEachKernelLine(text, file, expected, opts, (t, line) => lines.push({ text: t, line }));
  return lines;
}

/**
 * kernelLines without the array: its checks, up front (a cut last line is reported before any
 * line is given), then `each(text, line)` for every complete line in order. For listings of
 * millions of lines, whose line objects would outweigh what is kept of them.
 */
export function forEachKernelLine(
  text: string,
  file: string,
  expected: string,
  opts: ParseOptions,
  each: (text: string, line: number) => void,
): void {
  requireNonEmpty(text, file, expected);
  checkLineLengths(text, file, opts.maxLineBytes);
  let end = text.length;
  if (!text.endsWith('\n')) {
    end = text.lastIndexOf('\n') + 1;
    let line = 1;
    for (let nl = text.indexOf('\n'); nl >= 0 && nl < end; nl = text.indexOf('\n', nl + 1)) line++;
    const last = text.slice(end);
    truncated(
      file,
      line,
      `a last line ending in a newline (${expected})`,
      last.endsWith('\r') ? last.slice(0, -1) : last,
      opts,
    );
  }
  let line = 1;
  for (let start = 0; start < end; line++) {
    const nl = text.indexOf('\n', start);
    const t = text.slice(start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);
    start = nl + 1;
    each(t, line);
  }
}

/** The one line of a single-line file (/proc/PID/stat, statm, /proc/loadavg), checked as kernelLines does. */
export function singleKernelLine(
  text: string,
  file: string,
  expected: string,
  opts: ParseOptions = {},
): string {
  const lines = kernelLines(text, file, expected, opts);
  if (lines.length === 0) throw parseError(file, 1, expected, '<nothing before the cut>');
  if (lines.length > 1) throw parseError(file, 2, 'a single line', lines[1]!.text);
  return lines[0]!.text;
}

/**
 * A cut input: throw a parse error (expected `expected`, found `found`), or with `lenient`
 * warn instead: `dropped ...` names what was left out.
 */
export function truncated(
  file: string,
  line: number,
  expected: string,
  found: string,
  opts: ParseOptions,
  dropped = `dropped ${excerpt(found)}`,
): void {
  if (!opts.lenient) {
    throw parseError(file, line, expected, found, {
      hint: 'the input was cut short: capture it again, or pass --lenient to read what is complete',
    });
  }
  opts.onWarning?.(`${file}:${line}: input cut short (--lenient): ${dropped}`);
}

/**
 * A decimal token as a number, or a parse error when it is not a whole number below 2^53
 * (the kernel prints unsigned 64-bit values; anything above 2^53 is not a real count of
 * pages, bytes or objects and would lose precision).
 */
export function safeNumber(token: string, file: string, line: number | undefined, what: string): number {
  const n = Number(token);
  if (!/^-?\d+$/.test(token) || !Number.isSafeInteger(n)) {
    throw parseError(file, line, `${what} (a whole number below 2^53)`, token);
  }
  return n;
}

/** Like safeNumber for hexadecimal tokens (`0x...` or bare hex). */
export function safeHex(token: string, file: string, line: number | undefined, what: string): number {
  const n = Number.parseInt(token.replace(/^0x/i, ''), 16);
  if (!/^(0x)?[0-9a-f]+$/i.test(token) || !Number.isSafeInteger(n)) {
    throw parseError(file, line, `${what} (a number below 2^53)`, token);
  }
  return n;
}

/** Parse a non-negative decimal integer or throw a parse error naming file and line. */
export function parseUint(token: string | undefined, file: string, line: number, what: string): number {
  if (token === undefined || !/^\d+$/.test(token)) {
    throw parseError(file, line, what, token ?? '<end of line>');
  }
  return safeNumber(token, file, line, what);
}

/** Parse a signed decimal integer or throw. */
export function parseInt10(token: string | undefined, file: string, line: number, what: string): number {
  if (token === undefined || !/^-?\d+$/.test(token)) {
    throw parseError(file, line, what, token ?? '<end of line>');
  }
  return safeNumber(token, file, line, what);
}

/** Throw if the input is empty: an empty file is never a valid kernel source. */
export function requireNonEmpty(text: string, file: string, expected: string): void {
  if (text.trim() === '') throw parseError(file, 1, expected, '<empty input>');
}
