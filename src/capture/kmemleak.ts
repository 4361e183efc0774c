import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MemsleuthError } from '../model/errors.js';

/**
 * The only code that writes to kmemleak's control file. `scan` and `clear` change the
 * detector's state, so they run only when the user asked for exactly that command.
 *
 * mm/kmemleak.c kmemleak_write(): `scan` runs a scan synchronously (the write returns
 * when it is done), `clear` marks every reported object as gray so it is not reported
 * again; writes fail with EPERM/EBUSY once kmemleak is disabled (kmemleak=off, or it
 * switched itself off after an internal error).
 */
export interface KmemleakControlOptions {
  /** debugfs mount point (default /sys/kernel/debug). */
  debugfsRoot?: string;
  /** /proc, for mounts and filesystems (default /proc). */
  procRoot?: string;
  /** Effective uid (default process.geteuid()). */
  uid?: number;
}

const DEFAULT_DEBUGFS = '/sys/kernel/debug';

function kmemleakPath(o: KmemleakControlOptions): string {
  return join(o.debugfsRoot ?? DEFAULT_DEBUGFS, 'kmemleak');
}

/** Throw a clear error when kmemleak cannot be used here; return the control file path. */
export async function checkKmemleak(o: KmemleakControlOptions = {}): Promise<string> {
  const root = o.debugfsRoot ?? DEFAULT_DEBUGFS;
  const proc = o.procRoot ?? '/proc';
  const uid = o.uid ?? process.geteuid?.() ?? 0;
  if (uid !== 0) {
    throw new MemsleuthError('PERMISSION', 'kmemleak needs root: debugfs is readable by root only', {
      hint: 'run as root, e.g. `sudo memsleuth kmemleak scan`',
    });
  }
  const filesystems = await readFile(join(proc, 'filesystems'), 'utf8').catch(() => '');
  if (filesystems && !/\bdebugfs\b/.test(filesystems)) {
    throw new MemsleuthError(
      'UNAVAILABLE',
      'this kernel has no debugfs (CONFIG_DEBUG_FS is not set), so no kmemleak',
      {
        hint: 'kmemleak needs a kernel built with CONFIG_DEBUG_FS and CONFIG_DEBUG_KMEMLEAK',
      },
    );
  }
  const mounts = await readFile(join(proc, 'mounts'), 'utf8').catch(() => '');
  const mounted = mounts.split('\n').some((l) => {
    const [, dir, type] = l.split(' ');
    return type === 'debugfs' && dir === root;
  });
  if (!mounted) {
    throw new MemsleuthError('UNAVAILABLE', `debugfs is not mounted at ${root}`, {
      hint: `mount it with \`mount -t debugfs none ${root}\` (kmemleak also needs CONFIG_DEBUG_KMEMLEAK)`,
    });
  }
  const path = kmemleakPath(o);
  try {
    await access(path);
  } catch {
    throw new MemsleuthError(
      'UNAVAILABLE',
      `${path} does not exist: this kernel was built without CONFIG_DEBUG_KMEMLEAK`,
      {
        hint: 'rebuild with CONFIG_DEBUG_KMEMLEAK=y (and boot with kmemleak=on if CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF=y)',
      },
    );
  }
  return path;
}

function writeFailure(path: string, what: string, e: unknown): MemsleuthError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EPERM' || code === 'EBUSY') {
    return new MemsleuthError(
      'UNAVAILABLE',
      `${path}: kmemleak refused \`${what}\` (${code}): it is disabled`,
      {
        hint: 'booted with kmemleak=off, or kmemleak turned itself off after an error (see `dmesg | grep kmemleak`)',
        cause: e,
      },
    );
  }
  if (code === 'EACCES') {
    return new MemsleuthError('PERMISSION', `${path}: permission denied writing \`${what}\``, {
      hint: 'run as root',
      cause: e,
    });
  }
  return new MemsleuthError('IO', `${path}: cannot write \`${what}\` (${code ?? String(e)})`, { cause: e });
}

async function control(path: string, command: 'scan' | 'clear'): Promise<void> {
  try {
    await writeFile(path, `${command}\n`);
  } catch (e) {
    throw writeFailure(path, command, e);
  }
}

/** Read the current report without writing anything. */
export async function readKmemleakReport(o: KmemleakControlOptions = {}): Promise<string> {
  const path = await checkKmemleak(o);
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw writeFailure(path, 'read', e);
  }
}

export interface KmemleakScanResult {
  /** The report after the scan. */
  text: string;
  /** When the scan finished. */
  time: string;
  scanSeconds: number;
  /** True when `clear` was written after reading. */
  cleared: boolean;
}

/** Write `scan` (returns when the scan is done), read the report, then `clear` only if asked. */
export async function kmemleakScan(
  o: KmemleakControlOptions & { clear?: boolean } = {},
): Promise<KmemleakScanResult> {
  const path = await checkKmemleak(o);
  const t0 = Date.now();
  await control(path, 'scan');
  const scanSeconds = (Date.now() - t0) / 1000;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw writeFailure(path, 'read', e);
  }
  if (o.clear) await control(path, 'clear');
  return { text, time: new Date().toISOString(), scanSeconds, cleared: Boolean(o.clear) };
}

/** Write `clear`: reported objects are not reported again. */
export async function kmemleakClear(o: KmemleakControlOptions = {}): Promise<void> {
  await control(await checkKmemleak(o), 'clear');
}
