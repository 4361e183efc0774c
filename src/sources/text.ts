import { parseError } from '../model/errors.js';

/** Options every text parser accepts. */
export interface ParseOptions {
  /** Name used in error messages, e.g. `/proc/meminfo` or `bundle:proc/12/smaps`. */
  file?: string;
}

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

/** Parse a non-negative decimal integer or throw a parse error naming file and line. */
export function parseUint(token: string | undefined, file: string, line: number, what: string): number {
  if (token === undefined || !/^\d+$/.test(token)) {
    throw parseError(file, line, what, token ?? '<end of line>');
  }
  return Number(token);
}

/** Parse a signed decimal integer or throw. */
export function parseInt10(token: string | undefined, file: string, line: number, what: string): number {
  if (token === undefined || !/^-?\d+$/.test(token)) {
    throw parseError(file, line, what, token ?? '<end of line>');
  }
  return Number(token);
}

/** Throw if the input is empty: an empty file is never a valid kernel source. */
export function requireNonEmpty(text: string, file: string, expected: string): void {
  if (text.trim() === '') throw parseError(file, 1, expected, '<empty input>');
}
