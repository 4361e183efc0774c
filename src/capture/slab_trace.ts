/**
 * SLUB's per-cache `trace` switch (/sys/kernel/slab/<cache>/trace) and the kernel log it
 * writes to. The switch is writable only before 5.9 (later kernels made it read-only:
 * slub_debug=T,<cache> at boot is the only way on); memsleuth turns it on only when asked
 * (`memsleuth slab trace`), off again at the end, on Ctrl-C and SIGTERM, and a journal
 * under the temporary directory lets the next start turn off what a killed run left on.
 */
import { closeSync, constants, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemsleuthError } from '../model/errors.js';
import { pidAlive } from './tracefs.js';

export interface SlabTraceSwitch {
  path: string;
  /** Whether it is on now (1). */
  on: boolean;
}

/** The trace switch of a cache, or an error naming what is missing. */
export async function slabTraceSwitch(cache: string, sysSlab = '/sys/kernel/slab'): Promise<SlabTraceSwitch> {
  const dir = join(sysSlab, cache);
  const path = join(dir, 'trace');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const cacheExists = await readdir(dir).then(
      () => true,
      () => false,
    );
    if (!cacheExists)
      throw new MemsleuthError('USAGE', `no slab cache ${JSON.stringify(cache)} in ${sysSlab}`, {
        hint: 'see `memsleuth slab top` for the cache names',
      });
    throw new MemsleuthError(
      'UNAVAILABLE',
      `${path}: cannot read (${code}): the kernel has no SLUB debugging (CONFIG_SLUB_DEBUG)`,
    );
  }
  return { path, on: text.trim() === '1' };
}

const JOURNAL_PREFIX = 'memsleuth-slab-trace-';

function journalPath(tmp: string, pid = process.pid): string {
  return join(tmp, `${JOURNAL_PREFIX}${pid}`);
}

/**
 * Turn a cache's trace switch on (and note it in the journal first). Returns false when
 * the kernel does not let it be written (5.9+: read-only).
 */
export async function switchSlabTraceOn(sw: SlabTraceSwitch, tmp = tmpdir()): Promise<boolean> {
  await writeFile(journalPath(tmp), `${sw.path}\n`);
  try {
    await writeFile(sw.path, '1\n');
    return true;
  } catch (e) {
    await rm(journalPath(tmp), { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'EINVAL') return false;
    throw new MemsleuthError('IO', `${sw.path}: cannot write (${code})`, { cause: e });
  }
}

/** Turn it off again and drop the journal entry (synchronous: also runs on process exit). */
export function switchSlabTraceOff(sw: SlabTraceSwitch, tmp = tmpdir()): void {
  try {
    writeFileSync(sw.path, '0\n');
  } catch {}
  rmSync(journalPath(tmp), { force: true });
}

/** Turn off what killed runs left on. Returns the switches turned off. */
export async function cleanupStaleSlabTrace(tmp = tmpdir()): Promise<string[]> {
  const done: string[] = [];
  for (const name of await readdir(tmp).catch(() => [] as string[])) {
    if (!name.startsWith(JOURNAL_PREFIX)) continue;
    const pid = Number(name.slice(JOURNAL_PREFIX.length));
    if (!Number.isInteger(pid) || pidAlive(pid)) continue;
    const path = (await readFile(join(tmp, name), 'utf8').catch(() => '')).trim();
    if (path.startsWith('/') && path.endsWith('/trace')) {
      await writeFile(path, '0\n').catch(() => {});
      done.push(`${path} (left on by pid ${pid})`);
    }
    await rm(join(tmp, name), { force: true });
  }
  return done;
}

/**
 * /dev/kmsg from now on: one record per read; the records already in the buffer are
 * skipped at open. Non-blocking, so a poll never parks a thread.
 */
export class KmsgReader {
  private readonly buf = Buffer.alloc(8192);

  private constructor(private fd: number) {}

  static open(path = '/dev/kmsg'): KmsgReader {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      throw new MemsleuthError('UNAVAILABLE', `${path}: cannot open (${(e as NodeJS.ErrnoException).code})`, {
        hint: 'reading the kernel log needs root (or kernel.dmesg_restrict=0)',
      });
    }
    const r = new KmsgReader(fd);
    r.read(); // what is already there is not ours
    return r;
  }

  /** The messages logged since the last read, one line each (`prio,seq,ts,flags;text`). */
  read(): string {
    const out: string[] = [];
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        if (code === 'EPIPE') continue; // records were overwritten before we read them
        throw new MemsleuthError('IO', `/dev/kmsg: read failed (${code})`, { cause: e });
      }
      if (n === 0) break;
      // A record: header;message, continuation lines (` KEY=value`) dropped.
      const rec = this.buf.toString('utf8', 0, n);
      out.push(rec.split('\n')[0]!);
    }
    return out.length ? `${out.join('\n')}\n` : '';
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {}
  }
}
