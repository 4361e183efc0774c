import { constants } from 'node:fs';
import { type FileHandle, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MemsleuthError } from '../model/errors.js';
import { type FtraceCpuStats, parseFtraceCpuStats } from '../sources/ftrace_format.js';

/**
 * A non-blocking reader of an instance's trace_pipe: reads what the kernel has formatted
 * so far and returns, never parks a thread in read() (a blocked read of trace_pipe would
 * keep the process from exiting). Reading consumes the events, merged across CPUs in
 * time order; an entry is never split across two reads of one buffer.
 */
export class TracePipeReader {
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  bytes = 0;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
  ) {}

  static async open(path: string): Promise<TracePipeReader> {
    try {
      return new TracePipeReader(await open(path, constants.O_RDONLY | constants.O_NONBLOCK), path);
    } catch (e) {
      throw new MemsleuthError('IO', `${path}: cannot open (${(e as NodeJS.ErrnoException).code})`, {
        cause: e,
      });
    }
  }

  /** Everything available now (up to `max` bytes), or an empty array. */
  async readAvailable(max = 64 << 20): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let total = 0;
    while (total < max) {
      let n: number;
      try {
        n = (await this.fh.read(this.buf, 0, this.buf.length, null)).bytesRead;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
        if (code === 'EINTR') continue;
        throw new MemsleuthError('IO', `${this.path}: read failed (${code})`, { cause: e });
      }
      if (n === 0) break;
      out.push(Buffer.from(this.buf.subarray(0, n)));
      total += n;
    }
    this.bytes += total;
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/** Per-CPU buffer statistics of an instance (summed, and per CPU). */
/**
 * One read() of a tracefs file the kernel formats afresh on every read (per_cpu/cpuN/stats):
 * a second read at the first one's length returns the tail of a newer, longer text (": 0"
 * when a counter gained a digit in between), so the whole text must come from one call.
 */
async function readOnce(file: string): Promise<string> {
  const fh = await open(file, constants.O_RDONLY);
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.toString('utf8', 0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function readBufferStats(instanceDir: string): Promise<{ total: FtraceCpuStats; cpus: number }> {
  const total: FtraceCpuStats = {
    entries: 0,
    overrun: 0,
    commitOverrun: 0,
    bytes: 0,
    droppedEvents: 0,
    readEvents: 0,
  };
  let cpus = 0;
  const dir = join(instanceDir, 'per_cpu');
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!/^cpu\d+$/.test(name)) continue;
    const file = join(dir, name, 'stats');
    const text = await readOnce(file).catch(() => undefined);
    if (text === undefined) continue;
    const s = parseFtraceCpuStats(text, { file });
    cpus++;
    for (const k of Object.keys(total) as (keyof FtraceCpuStats)[]) total[k] += s[k];
  }
  return { total, cpus };
}
