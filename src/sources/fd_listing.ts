import { parseError } from '../model/errors.js';
import { VMA_HEADER } from './smaps.js';
import { numberedLines, type ParseOptions, requireNonEmpty } from './text.js';

/**
 * `proc/<pid>/fd` of a snapshot: what /proc/PID/fd holds, as text (the kernel's is a directory
 * of magic links). Written by the live reader, `memsleuth snapshot` and the sh collector
 * (`ls -l /proc/PID/fd`, then `stat -L` for the few targets that need it):
 *
 *     # memsleuth fd listing: fd mode allocated_bytes inode target
 *     0 r - - /dev/null
 *     3 w - - /dev/shm/ms-shm-append.dat
 *     4 rw 1048576 2071 /memfd:ring (deleted)
 *     5 - - - socket:[91823]
 *
 * - `mode` is the open mode of a file as the link's permission bits show it (fs/proc/fd.c sets
 *   S_IRUSR and S_IWUSR from FMODE_READ and FMODE_WRITE): `r`, `w`, `rw`; `-` for targets that
 *   are not paths (sockets, pipes, anonymous inodes).
 * - `allocated_bytes` (st_blocks × 512 of the open file) and `inode` are given for the files no
 *   directory lists: memfds (`/memfd:NAME (deleted)`) and deleted files (`PATH (deleted)`),
 *   whose memory only the fd shows; `-` otherwise.
 * - the target (readlink) runs to the end of the line; a target holding a newline is left out.
 */

export const FD_LISTING_HEADER = '# memsleuth fd listing: fd mode allocated_bytes inode target';

export interface OpenFd {
  fd: number;
  mode: 'r' | 'w' | 'rw' | '-';
  allocatedBytes?: number;
  inode?: number;
  target: string;
}

/** Targets whose size only the open fd can tell: memfds and deleted files. */
export function fdTargetNeedsStat(target: string): boolean {
  return target.startsWith('/memfd:') || target.endsWith(' (deleted)');
}

const LINE = /^(\d+) (r|w|rw|-) (\d+|-) (\d+|-) (.+)$/;

export function parseFdListing(text: string, opts: ParseOptions = {}): OpenFd[] {
  const file = opts.file ?? 'proc/PID/fd';
  requireNonEmpty(text, file, `the header line "${FD_LISTING_HEADER}"`);
  const lines = numberedLines(text);
  if (lines[0]!.text !== FD_LISTING_HEADER)
    throw parseError(file, 1, `the header line "${FD_LISTING_HEADER}"`, lines[0]!.text);
  const out: OpenFd[] = [];
  for (const { text: t, line } of lines.slice(1)) {
    if (t.trim() === '' || t.startsWith('#')) continue;
    const m = LINE.exec(t);
    if (!m) throw parseError(file, line, '"<fd> <r|w|rw|-> <allocated_bytes|-> <inode|-> <target>"', t);
    const fd: OpenFd = { fd: Number(m[1]), mode: m[2] as OpenFd['mode'], target: m[5]! };
    if (m[3] !== '-') fd.allocatedBytes = Number(m[3]);
    if (m[4] !== '-') fd.inode = Number(m[4]);
    out.push(fd);
  }
  return out;
}

export function formatFdListing(fds: readonly OpenFd[]): string {
  const lines = [FD_LISTING_HEADER];
  for (const f of fds) {
    if (f.target.includes('\n')) continue;
    lines.push(`${f.fd} ${f.mode} ${f.allocatedBytes ?? '-'} ${f.inode ?? '-'} ${f.target}`);
  }
  return `${lines.join('\n')}\n`;
}

/** One line of /proc/PID/maps. */
export interface MapsEntry {
  start: string;
  end: string;
  perms: string;
  inode: number;
  dev: string;
  /** Path, `[heap]`, `/SYSV0000abcd (deleted)`, `/memfd:x (deleted)`, or `` for anonymous memory. */
  pathname: string;
  sizeBytes: number;
}

/**
 * Parse /proc/PID/maps (fs/proc/task_mmu.c show_map_vma: the header line of each smaps
 * record, nothing else). Empty for kernel threads and exited processes.
 */
export function parseMaps(text: string, opts: ParseOptions = {}): MapsEntry[] {
  const file = opts.file ?? '/proc/PID/maps';
  const out: MapsEntry[] = [];
  for (const { text: t, line } of numberedLines(text)) {
    const h = VMA_HEADER.exec(t);
    if (!h) throw parseError(file, line, 'a mapping line "start-end perms offset dev inode [path]"', t);
    out.push({
      start: h[1]!,
      end: h[2]!,
      perms: h[3]!,
      dev: h[5]!,
      inode: Number(h[6]),
      pathname: h[7] ?? '',
      sizeBytes: Number(BigInt(`0x${h[2]}`) - BigInt(`0x${h[1]}`)),
    });
  }
  return out;
}
