import { parseError } from '../model/errors.js';
import { numberedLines, type ParseOptions } from './text.js';

/** One line of /proc/PID/maps. Addresses are bigints: user space reaches 2^56 with LA57. */
export interface MapsEntry {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /** `r-xp`: read, write, execute, then `p` private or `s` shared. */
  perms: string;
  /** File offset of `start`. */
  offset: bigint;
  dev: string;
  inode: number;
  /** File path, `[heap]`, `[stack]`, `[vdso]`, `[anon:name]`, `` for anonymous memory. */
  pathname: string;
  line: number;
}

// show_vma_header_prefix() in fs/proc/task_mmu.c, as smaps.ts reads it: the name follows
// padding spaces; a path can hold spaces and ends in ` (deleted)` once unlinked.
const LINE =
  /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/;

export function parseProcMaps(text: string, opts: ParseOptions = {}): MapsEntry[] {
  const file = opts.file ?? 'maps';
  const out: MapsEntry[] = [];
  for (const { text: t, line } of numberedLines(text)) {
    if (t === '') continue;
    const m = LINE.exec(t);
    if (!m) throw parseError(file, line, 'a mapping `start-end perms offset dev inode [path]`', t);
    out.push({
      start: BigInt(`0x${m[1]}`),
      end: BigInt(`0x${m[2]}`),
      perms: m[3]!,
      offset: BigInt(`0x${m[4]}`),
      dev: m[5]!,
      inode: Number(m[6]),
      pathname: m[7] ?? '',
      line,
    });
  }
  return out;
}

/** The mapping containing `address` (entries sorted by start, as the kernel prints them). */
export function mappingAt(maps: readonly MapsEntry[], address: bigint): MapsEntry | undefined {
  let lo = 0;
  let hi = maps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = maps[mid]!;
    if (address < m.start) hi = mid - 1;
    else if (address >= m.end) lo = mid + 1;
    else return m;
  }
  return undefined;
}
