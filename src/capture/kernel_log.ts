/**
 * The kernel log of this machine, read-only: /dev/kmsg from the start of the ring (read
 * non-blocking, one record per read, until EAGAIN), or `journalctl -k` where /dev/kmsg
 * cannot be read (dmesg_restrict without CAP_SYSLOG) or an earlier boot is wanted.
 * Records come back as dmesg-style lines (`[  123.456789] message`), one per line of a
 * multi-line record, for src/sources/oom_report.ts.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { MemsleuthError } from '../model/errors.js';

export type KernelLogSource = 'auto' | 'kmsg' | 'journal';

export interface KernelLog {
  text: string;
  /** `/dev/kmsg` or `journalctl -k ...`. */
  origin: string;
  /** Records (kmsg) or lines (journal) read. */
  records: number;
  /** kmsg: records overwritten while reading (EPIPE), the ring moved on. */
  lost?: number;
  /**
   * kmsg: sequence numbers of the first and last record read. The ring keeps a boot's
   * records from 0 until it fills; a first sequence number above 0 means that many
   * earlier records of this boot were overwritten before the read began.
   */
  ring?: { firstSeq: number; lastSeq: number };
}

export interface ReadKernelLogOptions {
  source?: KernelLogSource;
  /** journalctl's `-b` argument (0 this boot, -1 the one before); implies the journal. */
  boot?: string;
  /** For tests: another kmsg-like device or file. */
  kmsgPath?: string;
  journalctl?: string;
}

const DMESG_TS = (usec: bigint) => {
  const s = usec / 1_000_000n;
  const u = usec % 1_000_000n;
  return `[${String(s).padStart(5)}.${String(u).padStart(6, '0')}]`;
};

/** Undo /dev/kmsg's escaping of non-printable bytes (`\x0a` in a multi-line record). */
function unescapeKmsg(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

/**
 * One /dev/kmsg record (`prio,seq,usec,flags;message` and ` KEY=value` lines): its sequence
 * number (undefined when that field is not a number) and its dmesg lines, without the
 * dictionary.
 */
export function parseKmsgRecord(record: string): { seq: number | undefined; lines: string[] } {
  const semi = record.indexOf(';');
  if (semi < 0) return { seq: undefined, lines: [] };
  const fields = record.slice(0, semi).split(',');
  const seq = fields[1] !== undefined && /^\d+$/.test(fields[1]) ? Number(fields[1]) : undefined;
  const usec = fields[2] !== undefined && /^\d+$/.test(fields[2]) ? BigInt(fields[2]) : 0n;
  const body = record.slice(semi + 1);
  // The dictionary follows the message after a newline, each line indented by a space.
  const nl = body.indexOf('\n');
  const message = unescapeKmsg(nl < 0 ? body : body.slice(0, nl));
  const ts = DMESG_TS(usec);
  return { seq, lines: message.split('\n').map((l) => `${ts} ${l}`) };
}

/** Read the whole /dev/kmsg ring without blocking. */
export function readKmsg(path = '/dev/kmsg'): KernelLog {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MemsleuthError(
      code === 'EACCES' || code === 'EPERM' ? 'PERMISSION' : 'IO',
      `${path}: cannot open the kernel log (${code ?? String(e)})`,
      {
        file: path,
        hint:
          code === 'EACCES' || code === 'EPERM'
            ? 'run as root (kernel.dmesg_restrict=1 needs CAP_SYSLOG), give a saved log as FILE, or use --source journal'
            : 'give a saved log as FILE (dmesg > FILE)',
        cause: e,
      },
    );
  }
  const buf = Buffer.alloc(64 * 1024);
  const lines: string[] = [];
  let records = 0;
  let lost = 0;
  let ring: KernelLog['ring'];
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        // The ring overwrote records we had not read yet: the next read goes on from the oldest left.
        if (code === 'EPIPE') {
          lost++;
          continue;
        }
        throw new MemsleuthError('IO', `${path}: read failed (${code ?? String(e)})`, {
          file: path,
          cause: e,
        });
      }
      if (n === 0) break;
      records++;
      const r = parseKmsgRecord(buf.toString('utf8', 0, n));
      if (r.seq !== undefined) {
        ring ??= { firstSeq: r.seq, lastSeq: r.seq };
        ring.lastSeq = r.seq;
      }
      lines.push(...r.lines);
    }
  } finally {
    closeSync(fd);
  }
  const log: KernelLog = { text: lines.length ? `${lines.join('\n')}\n` : '', origin: path, records };
  if (lost) log.lost = lost;
  if (ring) log.ring = ring;
  return log;
}

/** `journalctl -k` of one boot, in short-monotonic form (timestamps like dmesg). */
export async function readJournal(boot = '0', journalctl = 'journalctl'): Promise<KernelLog> {
  const args = ['-k', '-b', boot, '-o', 'short-monotonic', '--no-pager', '-q'];
  const origin = `${journalctl} ${args.join(' ')}`;
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }>(
    (resolve) => {
      let stdout = '';
      let stderr = '';
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(journalctl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        resolve({ code: null, stdout, stderr, error: e as Error });
        return;
      }
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.on('error', (e) => resolve({ code: null, stdout, stderr, error: e }));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    },
  );
  if (out.error) {
    throw new MemsleuthError(
      'UNAVAILABLE',
      `${journalctl}: cannot run (${(out.error as NodeJS.ErrnoException).code ?? out.error.message})`,
      {
        hint: 'no systemd journal here: read /dev/kmsg (--source kmsg) or give a saved log as FILE',
      },
    );
  }
  const lines = out.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('-- '));
  if (out.code !== 0 || lines.length === 0 || /No journal files were found/.test(out.stdout + out.stderr)) {
    const why = (out.stderr.trim() || out.stdout.trim() || `exit ${out.code}`).split('\n')[0];
    throw new MemsleuthError('UNAVAILABLE', `${origin}: no kernel messages (${why})`, {
      hint: 'journald keeps no kernel log here: read /dev/kmsg (--source kmsg) or give a saved log as FILE',
    });
  }
  return { text: `${lines.join('\n')}\n`, origin, records: lines.length };
}

/** This machine's kernel log: /dev/kmsg, else the journal (see ReadKernelLogOptions). */
export async function readKernelLog(opts: ReadKernelLogOptions = {}): Promise<KernelLog> {
  const source = opts.boot !== undefined ? 'journal' : (opts.source ?? 'auto');
  if (source === 'journal') return readJournal(opts.boot ?? '0', opts.journalctl);
  if (source === 'kmsg') return readKmsg(opts.kmsgPath);
  try {
    return readKmsg(opts.kmsgPath);
  } catch (e) {
    if (!(e instanceof MemsleuthError) || e.code !== 'PERMISSION') throw e;
    try {
      return await readJournal('0', opts.journalctl);
    } catch {
      throw e;
    }
  }
}
