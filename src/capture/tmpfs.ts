import { type Dirent, lstatSync, readdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import {
  formatTmpfsFiles,
  formatTmpfsMounts,
  type TmpfsFile,
  type TmpfsMount,
  unescapeMountPath,
} from '../sources/tmpfs.js';

/**
 * The live half of the tmpfs listing (format in src/sources/tmpfs.ts): tmpfs mounts from
 * /proc/mounts with statfs(2) of each, and a walk of each mount for its largest files. The
 * sh collector writes the same text with busybox (collector/memsleuth-collect.sh).
 */

/** Largest files kept per mount. */
export const TMPFS_TOP_FILES = 50;
/** Entries a walk visits per mount before it stops (a /tmp on tmpfs can hold millions). */
export const TMPFS_WALK_LIMIT = 20_000;

interface LiveMount {
  mount: string;
  dev: number;
}

/**
 * tmpfs mount points in /proc/mounts order. A path mounted over (the same path twice) counts
 * once, as its top mount; a tmpfs bind-mounted in several places (one device) once, at the
 * first place.
 */
function tmpfsMountPoints(procRoot: string): LiveMount[] {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/mounts`, 'utf8');
  } catch {
    return [];
  }
  // The recorder asks every tick and the mount table rarely changes: the same text, the same
  // mount points (no split of the table and no stat() of each mount again).
  const last = lastMountPoints;
  if (last && last.procRoot === procRoot && last.text === text) return last.points;
  const points = mountPointsOf(text);
  lastMountPoints = { procRoot, text, points };
  return points;
}

/** The mount table the last call of tmpfsMountPoints read, and what it made of it. */
let lastMountPoints: { procRoot: string; text: string; points: LiveMount[] } | undefined;

function mountPointsOf(text: string): LiveMount[] {
  const paths: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[2] !== 'tmpfs' || f[1] === undefined) continue;
    const p = unescapeMountPath(f[1]);
    if (!paths.includes(p)) paths.push(p);
  }
  const out: LiveMount[] = [];
  const devs = new Set<number>();
  for (const mount of paths) {
    try {
      const dev = statSync(mount).dev;
      if (devs.has(dev)) continue;
      devs.add(dev);
      out.push({ mount, dev });
    } catch {
      // not reachable from here (another mount namespace's path, or permissions)
    }
  }
  return out;
}

/** `tmpfs/mounts` of this machine now. */
export function liveTmpfsMounts(procRoot = '/proc'): string {
  const mounts: TmpfsMount[] = [];
  const notes: string[] = [];
  for (const m of tmpfsMountPoints(procRoot)) {
    try {
      const s = statfsSync(m.mount);
      mounts.push({
        mount: m.mount,
        sizeBytes: s.blocks * s.bsize,
        usedBytes: (s.blocks - s.bfree) * s.bsize,
        inodes: s.files,
        inodesUsed: s.files - s.ffree,
      });
    } catch (e) {
      notes.push(`${m.mount}: statfs failed (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  }
  return formatTmpfsMounts(mounts, notes);
}

/** The largest files of one mount, without crossing into other file systems (`find -xdev`). */
function largestFiles(m: LiveMount, notes: string[]): TmpfsFile[] {
  const files: TmpfsFile[] = [];
  const stack = [m.mount];
  let visited = 0;
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue; // removed meanwhile, or not readable
    }
    for (const e of entries) {
      if (++visited > TMPFS_WALK_LIMIT) {
        notes.push(`${m.mount}: walk stopped after ${TMPFS_WALK_LIMIT} entries`);
        stack.length = 0;
        break;
      }
      const path = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
      if (e.isDirectory()) {
        try {
          if (lstatSync(path).dev === m.dev) stack.push(path);
        } catch {}
      } else if (e.isFile()) {
        try {
          const st = lstatSync(path);
          if (st.dev !== m.dev) continue; // a file bind-mounted over this one
          files.push({
            mount: m.mount,
            path,
            allocatedBytes: st.blocks * 512,
            sizeBytes: st.size,
            inode: st.ino,
          });
        } catch {}
      }
    }
  }
  files.sort((a, b) => b.allocatedBytes - a.allocatedBytes || (a.path < b.path ? -1 : 1));
  return files.slice(0, TMPFS_TOP_FILES);
}

/** `tmpfs/files` of this machine now: the largest files of every tmpfs mount. */
export function liveTmpfsFiles(procRoot = '/proc'): string {
  const notes: string[] = [];
  const files = tmpfsMountPoints(procRoot).flatMap((m) => largestFiles(m, notes));
  return formatTmpfsFiles(files, notes);
}
