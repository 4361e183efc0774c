import { parseError } from '../model/errors.js';
import { numberedLines, type ParseOptions, requireNonEmpty } from './text.js';

/**
 * /proc/sysvipc/shm: one line per System V shared memory segment (ipc/shm.c
 * sysvipc_shm_proc_show). Format details by kernel version:
 *
 * - 2.4 – 2.6.x: `key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime`.
 * - later kernels append `rss swap`, both in bytes (pages << PAGE_SHIFT) of the segment's
 *   shmem file: what the segment holds in RAM and in swap, whoever has it attached.
 * - column widths differ between 32- and 64-bit kernels (`%*d` with widths by BITS_PER_LONG),
 *   so columns are read by the header's names, never by position.
 * - `key` is printed as a signed decimal (`%10d`); /proc/PID/maps names the segment's
 *   mapping `/SYSV%08x (deleted)` with the same key in hex, and its inode column is the shmid.
 * - `perms` is `%4o` of the mode: the low 9 bits are the permissions, 01000 is SHM_DEST
 *   (IPC_RMID while still attached: destroyed at the last detach, its key already 0) and
 *   02000 SHM_LOCKED (SHM_LOCK).
 */
export interface SysvShmSegment {
  /** The IPC key (0 = IPC_PRIVATE, or a removed segment still attached). */
  key: number;
  shmid: number;
  /** Mode as printed (octal digits read as octal): permissions and SHM_DEST / SHM_LOCKED. */
  mode: number;
  /** Size requested at shmget (bytes). */
  sizeBytes: number;
  /** Creator pid, and the pid of the last shmat/shmdt (0 when none yet). */
  cpid: number;
  lpid: number;
  /** Attached mappings. */
  nattch: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** Seconds since the epoch of the last attach, detach and change (0: never). */
  atime: number;
  dtime: number;
  ctime: number;
  /** Resident bytes of the segment (kernels that print the column). */
  rssBytes?: number;
  /** Swapped-out bytes of the segment (kernels that print the column). */
  swapBytes?: number;
  /** 1-based line number. */
  line: number;
}

export interface SysvShm {
  segments: SysvShmSegment[];
  /** The kernel prints rss and swap (newer kernels). */
  hasRss: boolean;
}

/** SHM_DEST: marked for removal while attached (include/linux/shm.h). */
export const SHM_DEST = 0o1000;
/** SHM_LOCKED: locked in RAM with SHM_LOCK. */
export const SHM_LOCKED = 0o2000;

const REQUIRED = [
  'key',
  'shmid',
  'perms',
  'size',
  'cpid',
  'lpid',
  'nattch',
  'uid',
  'gid',
  'cuid',
  'cgid',
  'atime',
  'dtime',
  'ctime',
] as const;
const HEADER_EXPECTED = `a header naming the columns (${REQUIRED.join(' ')} [rss swap])`;

/** The segment's name in /proc/PID/maps: `/SYSV` and the key as 8 hex digits. */
export function sysvMapName(key: number): string {
  return `/SYSV${(key >>> 0).toString(16).padStart(8, '0')}`;
}

/** Parse /proc/sysvipc/shm. A header without lines is no segments, not an error. */
export function parseSysvipcShm(text: string, opts: ParseOptions = {}): SysvShm {
  const file = opts.file ?? '/proc/sysvipc/shm';
  requireNonEmpty(text, file, HEADER_EXPECTED);
  const lines = numberedLines(text);
  const head = lines[0]!;
  const cols = head.text.trim().split(/\s+/);
  for (const c of REQUIRED)
    if (!cols.includes(c)) throw parseError(file, head.line, HEADER_EXPECTED, head.text);
  if (new Set(cols).size !== cols.length)
    throw parseError(file, head.line, 'each column name once', head.text);
  const at = (name: string) => cols.indexOf(name);
  const hasRss = cols.includes('rss') && cols.includes('swap');
  const segments: SysvShmSegment[] = [];
  const seen = new Set<number>();
  for (const { text: t, line } of lines.slice(1)) {
    if (t.trim() === '') continue;
    const f = t.trim().split(/\s+/);
    if (f.length !== cols.length) throw parseError(file, line, `${cols.length} columns like the header`, t);
    const num = (name: string, signed = false): number => {
      const tok = f[at(name)]!;
      if (!(signed ? /^-?\d+$/ : /^\d+$/).test(tok))
        throw parseError(file, line, `${name}: a ${signed ? '' : 'non-negative '}decimal number`, t);
      return Number(tok);
    };
    const perms = f[at('perms')]!;
    if (!/^[0-7]+$/.test(perms)) throw parseError(file, line, 'perms: octal digits', t);
    const seg: SysvShmSegment = {
      key: num('key', true),
      shmid: num('shmid'),
      mode: Number.parseInt(perms, 8),
      sizeBytes: num('size'),
      cpid: num('cpid'),
      lpid: num('lpid'),
      nattch: num('nattch'),
      uid: num('uid'),
      gid: num('gid'),
      cuid: num('cuid'),
      cgid: num('cgid'),
      atime: num('atime'),
      dtime: num('dtime'),
      ctime: num('ctime'),
      line,
    };
    if (hasRss) {
      seg.rssBytes = num('rss');
      seg.swapBytes = num('swap');
    }
    if (seen.has(seg.shmid)) throw parseError(file, line, `each shmid once (${seg.shmid} repeats)`, t);
    seen.add(seg.shmid);
    segments.push(seg);
  }
  return { segments, hasRss };
}
