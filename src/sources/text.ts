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

/** The line of `text` from `start` to the newline at `nl`, without a `\r` before it. */
function lineBefore(text: string, start: number, nl: number): string {
  return text.slice(start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);
}

/** A last line `last` (line `line`) without its newline: an error, or with `lenient` a warning. */
function cutLastLine(file: string, line: number, expected: string, last: string, opts: ParseOptions): void {
  truncated(
    file,
    line,
    `a last line ending in a newline (${expected})`,
    last.endsWith('\r') ? last.slice(0, -1) : last,
    opts,
  );
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
    cutLastLine(file, line, expected, text.slice(end), opts);
  }
  let line = 1;
  for (let start = 0; start < end; line++) {
    const nl = text.indexOf('\n', start);
    const t = lineBefore(text, start, nl);
    start = nl + 1;
    each(t, line);
  }
}

/** Bytes decoded at a time by KernelLineSplitter: its strings stay below V8's large objects. */
const STREAM_PIECE = 1 << 16;

/**
 * forEachKernelLine fed in pieces (a listing too big to hold whole as one text): the same lines
 * with the same numbers and the same checks, each made where it can be. A line over the limit
 * fails when it is met, an input without text and a cut last line at end(), after the lines
 * before them were given (with `lenient`, the warning comes last).
 */
export class KernelLineSplitter implements PieceSink {
  private readonly max: number;
  private readonly decoder = new TextDecoder('utf-8');
  private rest = '';
  private line = 1;
  private blank = true;
  /** Characters of a line already over the limit, not kept (-1: none): its error waits for its end. */
  private overlong = -1;

  constructor(
    private readonly file: string,
    private readonly expected: string,
    private readonly opts: ParseOptions,
    private readonly each: (text: string, line: number) => void,
  ) {
    this.max = opts.maxLineBytes ?? MAX_LINE_BYTES;
  }

  /** The next piece of text, cut anywhere. */
  text(piece: string): void {
    if (this.overlong >= 0) {
      const nl = piece.indexOf('\n');
      this.overlong += nl < 0 ? piece.length : nl;
      if (nl >= 0) throw lineTooLong(this.file, this.line, this.overlong, this.max);
      return;
    }
    const text = this.rest + piece;
    this.rest = text.slice(this.lines(text));
    // A line over the limit is not kept (one that never ends would be copied again with every
    // piece): its length is counted to its end, for the error forEachKernelLine gives.
    if (this.rest.length > this.max) {
      this.overlong = this.rest.length;
      this.rest = '';
    }
  }

  /**
   * The next bytes (UTF-8, cut anywhere), decoded 64 KiB at a time: a string of a 1 MiB read is
   * a large object, which V8 frees only at a full collection (tens of them waiting for one held
   * 70 MB of RSS while a 55 MB listing was read).
   */
  bytes(chunk: Uint8Array): void {
    for (let at = 0; at < chunk.length; at += STREAM_PIECE)
      this.text(this.decoder.decode(chunk.subarray(at, at + STREAM_PIECE), { stream: true }));
  }

  /** The input has ended: its checks, and a last line without its newline reported. */
  end(): void {
    if (this.overlong >= 0) {
      this.text(this.decoder.decode());
      throw lineTooLong(this.file, this.line, this.overlong, this.max);
    }
    const tail = this.rest + this.decoder.decode();
    const rest = tail.slice(this.lines(tail));
    this.rest = '';
    if (this.blank && rest.trim() === '') throw parseError(this.file, 1, this.expected, '<empty input>');
    if (rest !== '') cutLastLine(this.file, this.line, this.expected, rest, this.opts);
  }

  /** Every complete line of `text`, given; where the rest starts. */
  private lines(text: string): number {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      if (nl - start > this.max) throw lineTooLong(this.file, this.line, nl - start, this.max);
      const t = lineBefore(text, start, nl);
      if (this.blank && t.trim() !== '') this.blank = false;
      start = nl + 1;
      this.each(t, this.line++);
    }
    return start;
  }
}

/** What takes an input in pieces: text, or bytes (a KernelLineSplitter, or a reader over one). */
export interface PieceSink {
  text(piece: string): void;
  bytes(chunk: Uint8Array): void;
}

/** Every chunk of a stream to `sink`, as text or bytes, as it comes (the caller ends it). */
export async function feedChunks(input: AsyncIterable<Buffer | string>, sink: PieceSink): Promise<void> {
  for await (const chunk of input) {
    if (typeof chunk === 'string') sink.text(chunk);
    else sink.bytes(chunk);
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
