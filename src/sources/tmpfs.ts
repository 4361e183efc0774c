import { parseError } from '../model/errors.js';
import { numberedLines, type ParseOptions, requireNonEmpty } from './text.js';

/**
 * The tmpfs listing of a snapshot: memsleuth's own two text files (the kernel has no file
 * for it), written the same way by `memsleuth snapshot`, the live reader and the sh collector
 * (busybox `stat -f`, `find -xdev`, `stat -c`), so every reader parses one format.
 *
 * `tmpfs/mounts`: one line per tmpfs mount of /proc/mounts, with statfs(2) of its mount point:
 *
 *     # memsleuth tmpfs mounts: mount size_bytes used_bytes inodes inodes_used
 *     /dev/shm 25275219968 65536 3085510 2
 *
 * `tmpfs/files`: the largest regular files of each mount by allocated bytes (st_blocks × 512:
 * what a tmpfs file holds in RAM and swap; a sparse file's size is not), without crossing into
 * other mounts. The path runs to the end of the line; names holding a newline are left out
 * (their bytes still count in the mount's used bytes):
 *
 *     # memsleuth tmpfs files: mount allocated_bytes size_bytes inode path
 *     /dev/shm 65536 65536 1042 /dev/shm/grow.bin
 *
 * The mount point is written as /proc/mounts escapes it (a space is `\040`), so it is one
 * word. Other lines starting with `#` are notes (a walk cut short) and are skipped.
 */

export const TMPFS_MOUNTS_HEADER = '# memsleuth tmpfs mounts: mount size_bytes used_bytes inodes inodes_used';
export const TMPFS_FILES_HEADER = '# memsleuth tmpfs files: mount allocated_bytes size_bytes inode path';

export interface TmpfsMount {
  /** Mount point, unescaped. */
  mount: string;
  /** The size= limit (blocks × block size; 0 for an unlimited tmpfs). */
  sizeBytes: number;
  /** (blocks − free blocks) × block size: every file's pages, deleted-but-open files included. */
  usedBytes: number;
  inodes: number;
  inodesUsed: number;
}

export interface TmpfsFile {
  /** The mount the file lives on, unescaped. */
  mount: string;
  path: string;
  /** st_blocks × 512. */
  allocatedBytes: number;
  /** st_size. */
  sizeBytes: number;
  inode: number;
}

export interface TmpfsListing {
  mounts: TmpfsMount[];
  files: TmpfsFile[];
  /** Notes of the writer (`# ...` lines after the header), e.g. a walk cut short. */
  notes: string[];
}

/** /proc/mounts's escaping of a mount point: space, tab, newline and backslash as `\ooo`. */
export function escapeMountPath(path: string): string {
  return path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function unescapeMountPath(token: string): string {
  return token.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

function header(text: string, file: string, expected: string): ReturnType<typeof numberedLines> {
  requireNonEmpty(text, file, `the header line "${expected}"`);
  const lines = numberedLines(text);
  if (lines[0]!.text !== expected) throw parseError(file, 1, `the header line "${expected}"`, lines[0]!.text);
  return lines;
}

function uint(tok: string | undefined, file: string, line: number, what: string, t: string): number {
  if (tok === undefined || !/^\d+$/.test(tok)) throw parseError(file, line, `${what}: a decimal number`, t);
  return Number(tok);
}

/** Parse `tmpfs/mounts`. */
export function parseTmpfsMounts(
  text: string,
  opts: ParseOptions = {},
): { mounts: TmpfsMount[]; notes: string[] } {
  const file = opts.file ?? 'tmpfs/mounts';
  const mounts: TmpfsMount[] = [];
  const notes: string[] = [];
  const seen = new Set<string>();
  for (const { text: t, line } of header(text, file, TMPFS_MOUNTS_HEADER).slice(1)) {
    if (t.startsWith('#')) {
      notes.push(t.slice(1).trim());
      continue;
    }
    if (t.trim() === '') continue;
    const f = t.split(' ');
    if (f.length !== 5)
      throw parseError(file, line, '"<mount> <size_bytes> <used_bytes> <inodes> <inodes_used>"', t);
    const mount = unescapeMountPath(f[0]!);
    if (seen.has(mount)) throw parseError(file, line, `each mount once (${mount} repeats)`, t);
    seen.add(mount);
    mounts.push({
      mount,
      sizeBytes: uint(f[1], file, line, 'size_bytes', t),
      usedBytes: uint(f[2], file, line, 'used_bytes', t),
      inodes: uint(f[3], file, line, 'inodes', t),
      inodesUsed: uint(f[4], file, line, 'inodes_used', t),
    });
  }
  return { mounts, notes };
}

/** Parse `tmpfs/files`. */
export function parseTmpfsFiles(
  text: string,
  opts: ParseOptions = {},
): { files: TmpfsFile[]; notes: string[] } {
  const file = opts.file ?? 'tmpfs/files';
  const files: TmpfsFile[] = [];
  const notes: string[] = [];
  for (const { text: t, line } of header(text, file, TMPFS_FILES_HEADER).slice(1)) {
    if (t.startsWith('#')) {
      notes.push(t.slice(1).trim());
      continue;
    }
    if (t.trim() === '') continue;
    const m = /^(\S+) (\d+) (\d+) (\d+) (\/.*)$/.exec(t);
    if (!m) throw parseError(file, line, '"<mount> <allocated_bytes> <size_bytes> <inode> </path>"', t);
    files.push({
      mount: unescapeMountPath(m[1]!),
      allocatedBytes: Number(m[2]),
      sizeBytes: Number(m[3]),
      inode: Number(m[4]),
      path: m[5]!,
    });
  }
  return { files, notes };
}

export function formatTmpfsMounts(mounts: readonly TmpfsMount[], notes: readonly string[] = []): string {
  const lines = [TMPFS_MOUNTS_HEADER];
  for (const m of mounts)
    lines.push(`${escapeMountPath(m.mount)} ${m.sizeBytes} ${m.usedBytes} ${m.inodes} ${m.inodesUsed}`);
  for (const n of notes) lines.push(`# ${n}`);
  return `${lines.join('\n')}\n`;
}

export function formatTmpfsFiles(files: readonly TmpfsFile[], notes: readonly string[] = []): string {
  const lines = [TMPFS_FILES_HEADER];
  for (const f of files) {
    if (f.path.includes('\n')) continue;
    lines.push(`${escapeMountPath(f.mount)} ${f.allocatedBytes} ${f.sizeBytes} ${f.inode} ${f.path}`);
  }
  for (const n of notes) lines.push(`# ${n}`);
  return `${lines.join('\n')}\n`;
}

/** The tmpfs mount a path lives on: the longest mount point that is the path or a parent of it. */
export function mountOf(path: string, mounts: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const m of mounts) {
    const under = m === '/' || path === m || path.startsWith(`${m}/`);
    if (under && (best === undefined || m.length > best.length)) best = m;
  }
  return best;
}
