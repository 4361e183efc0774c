/**
 * The oracle for the differential tests: the kernel's own page_owner_sort, compiled
 * from Debian's linux-source-6.1 (tools/vm/, 5.18-6.6 behaviour) and linux-source-6.12
 * (tools/mm/, 6.7+ behaviour) packages, installed by scripts/ensure-deps.sh. Only the
 * one .c file is extracted from each tarball; binaries are cached outside the repo in
 * ~/.cache/memsleuth-pos/ keyed by the tarball's size and mtime.
 *
 * Linked statically (the same glibc, so the same regexec and qsort): nearly all of the
 * tool's time is malloc/free inside regexec, and a dynamically linked copy pays for
 * anything attached to the shared libc. On this machine a uprobe left on libc's malloc
 * by a killed tracing run made each run on a 3.6 MB lab dump take 45 s instead of 0.5 s
 * (perf: 284,000 uretprobe traps for a tenth of the dump).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type PosVersion = '6.1' | '6.12';

const CACHE = process.env.MEMSLEUTH_POS_CACHE ?? join(homedir(), '.cache', 'memsleuth-pos');

/** Path of the compiled C page_owner_sort for a kernel version; builds it on first use. */
export function pageOwnerSortBinary(version: PosVersion): string {
  const tarball = `/usr/src/linux-source-${version}.tar.xz`;
  if (!existsSync(tarball)) {
    throw new Error(
      `${tarball} is missing: install the Debian package linux-source-${version} (bash scripts/ensure-deps.sh as root)`,
    );
  }
  const st = statSync(tarball);
  const bin = join(CACHE, `page_owner_sort-${version}-static-${st.size}-${Math.floor(st.mtimeMs)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(CACHE, { recursive: true });
  const work = join(CACHE, `src-${version}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    execFileSync('tar', ['-xJf', tarball, '-C', work, '--wildcards', '*/page_owner_sort.c'], {
      stdio: 'pipe',
    });
    const top = readdirSync(work)[0]!;
    const sub = version === '6.1' ? 'tools/vm' : 'tools/mm';
    const src = join(work, top, sub, 'page_owner_sort.c');
    if (!existsSync(src)) throw new Error(`${src} not found in ${tarball}`);
    const tmp = `${bin}.tmp${process.pid}`;
    // The kernel's tools Makefile builds it with -O2 -Wall (dynamically linked).
    execFileSync('cc', ['-O2', '-w', '-static', '-o', tmp, src], { stdio: 'pipe' });
    renameSync(tmp, bin);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}
