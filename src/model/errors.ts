/**
 * One small error taxonomy. Every error the user can cause carries a stable `code`;
 * the CLI prints `message` (and `hint`) on one line without a stack. Anything that is
 * not a MemsleuthError is a bug and is printed with its stack.
 */
export type ErrorCode =
  /** A source file did not have the expected format (file and line are set). */
  | 'PARSE'
  /** A file or directory could not be read. */
  | 'IO'
  /** The command line was wrong. */
  | 'USAGE'
  /** A kernel feature is not available (not built in, not enabled, not mounted). */
  | 'UNAVAILABLE'
  /** The operation needs privileges the process does not have. */
  | 'PERMISSION'
  /** A snapshot bundle or recording database is not usable. */
  | 'BAD_INPUT';

export interface ErrorDetails {
  /** Path (or logical source name) of the input. */
  file?: string;
  /** 1-based line number in `file`. */
  line?: number;
  /** Byte offset in `file`, for streamed inputs. */
  offset?: number;
  /** What the parser expected, e.g. `"Key:   123 kB"`. */
  expected?: string;
  /** What it found instead (shortened). */
  found?: string;
  /** What the user can do about it. */
  hint?: string;
  cause?: unknown;
}

export class MemsleuthError extends Error {
  readonly code: ErrorCode;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly offset: number | undefined;
  readonly expected: string | undefined;
  readonly found: string | undefined;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'MemsleuthError';
    this.code = code;
    this.file = details.file;
    this.line = details.line;
    this.offset = details.offset;
    this.expected = details.expected;
    this.found = details.found;
    this.hint = details.hint;
  }
}

/** Shorten a found value for an error message. */
export function excerpt(text: string, max = 80): string {
  const oneLine = JSON.stringify(text);
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 4)}..."`;
}

/**
 * A parse error: `<file>:<line>: expected <expected>, found <found>`.
 * Parsers throw this for garbage; they never return a silently partial result.
 */
export function parseError(
  file: string,
  line: number | undefined,
  expected: string,
  found: string,
  extra: Omit<ErrorDetails, 'file' | 'line' | 'expected' | 'found'> = {},
): MemsleuthError {
  const where = line === undefined ? file : `${file}:${line}`;
  const at = extra.offset === undefined ? '' : ` (byte ${extra.offset})`;
  return new MemsleuthError('PARSE', `${where}${at}: expected ${expected}, found ${excerpt(found)}`, {
    ...extra,
    file,
    line,
    expected,
    found,
  });
}

export function isMemsleuthError(e: unknown): e is MemsleuthError {
  return e instanceof MemsleuthError;
}

/** A failed read's errno, in words a report can show. */
export function errnoReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'not present';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ESRCH') return 'process exited';
  if (code === 'EINVAL') return 'not readable (EINVAL)';
  return code ?? String(e);
}

/** strerror(3) texts of the errors a file open meets, as C tools print them with perror(). */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EMFILE: 'Too many open files',
  ENXIO: 'No such device or address',
  ETXTBSY: 'Text file busy',
};

/** What perror() would print for a failed open: the C library's text, else Node's message. */
export function strerror(e: NodeJS.ErrnoException): string {
  return ERRNO_TEXT[e.code ?? ''] ?? e.message;
}
