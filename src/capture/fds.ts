import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { fdTargetNeedsStat, formatFdListing, type OpenFd } from '../sources/fd_listing.js';

/**
 * `proc/<pid>/fd` of a live process (format in src/sources/fd_listing.ts): every fd's target,
 * the open mode of files from the link's permission bits (`-` for sockets, pipes and other
 * anonymous inodes), and for memfds and deleted files the size of the open file (stat follows
 * the magic link to the file itself). Throws when the directory cannot be read (the process
 * exited, or permission).
 */
export function liveFdListing(procRoot: string, pid: number): string {
  const dir = `${procRoot}/${pid}/fd`;
  const names = readdirSync(dir);
  const fds: OpenFd[] = [];
  for (const name of names) {
    const path = `${dir}/${name}`;
    let target: string;
    let mode: OpenFd['mode'] = '-';
    try {
      target = readlinkSync(path);
      // The open mode matters for files; a socket leaker's 16,000 sockets skip the lstat.
      if (!target.startsWith('/')) {
        fds.push({ fd: Number(name), mode, target });
        continue;
      }
      // fs/proc/fd.c tid_fd_update_inode: S_IRUSR for FMODE_READ, S_IWUSR for FMODE_WRITE.
      const m = lstatSync(path).mode;
      const r = (m & 0o400) !== 0;
      const w = (m & 0o200) !== 0;
      mode = r && w ? 'rw' : r ? 'r' : w ? 'w' : '-';
    } catch (e) {
      // ptrace access checks refuse every link (even to root): the listing is unreadable then.
      if ((e as NodeJS.ErrnoException).code === 'EACCES' && fds.length === 0) throw e;
      continue; // closed meanwhile
    }
    const fd: OpenFd = { fd: Number(name), mode, target };
    if (fdTargetNeedsStat(target)) {
      try {
        const st = statSync(path);
        fd.allocatedBytes = st.blocks * 512;
        fd.inode = st.ino;
      } catch {}
    }
    fds.push(fd);
  }
  fds.sort((a, b) => a.fd - b.fd);
  return formatFdListing(fds);
}
