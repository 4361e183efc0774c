import { parseError } from '../model/errors.js';
import type { Frame } from '../model/frame.js';
import { parseFrame } from '../model/frame.js';
import { lineTooLong, MAX_LINE_BYTES, type ParseOptions, safeNumber, truncated } from './text.js';

/** The start of a kmemleak report: a file whose first bytes match it is one. */
export const KMEMLEAK_HEAD = /^unreferenced object 0x[0-9a-f]+ \(size \d+\):/;

/**
 * /sys/kernel/debug/kmemleak: one report per unreferenced object (mm/kmemleak.c
 * print_unreferenced()). Variants handled, by kernel version:
 *
 * - 2.6.31: every line of the seq file starts with `kmemleak: ` and there is no hex dump;
 * - header `unreferenced object 0x%08lx (size %zu):`; later kernels print the object
 *   type after `object`: ` (phys)` (kmemleak_alloc_phys objects) and ` (percpu)`;
 * - `  comm "%s", pid %d, jiffies %lu` followed by ` (age %d.%03ds)` in older kernels
 *   (gone by 6.1: the lab's 6.1.192 capture has no age);
 * - `  hex dump (first %zu bytes):` then `    <hex bytes>  <ascii>` rows; per-cpu objects
 *   print `(first N bytes on cpu C):`;
 * - `  backtrace:` (6.1.192 capture), `  backtrace (crc %x):` (stack checksum; 6.12.117);
 * - frames `    [<%p>] %pS` (hashed pointers since 4.15, zeros under kptr_restrict;
 *   6.1.192 capture), then `    %pS` alone (6.12.117); unsymbolised frames print a
 *   bare `0x...`.
 */
export type KmemleakObjectType = 'virt' | 'phys' | 'percpu';

export interface KmemleakReport {
  /** Object address as printed (`0x...`). */
  address: string;
  type: KmemleakObjectType;
  sizeBytes: number;
  /** Task that allocated it; `softirq`/`hardirq` with pid 0 for interrupt context. */
  comm: string;
  pid: number;
  jiffies: number;
  /** `(age N.NNNs)` before 6.1, in seconds. */
  ageSeconds?: number;
  /** Bytes the hex dump covers (`first N bytes`); absent without a hex dump. */
  hexDumpBytes?: number;
  /** The CPU whose copy was dumped, for per-cpu objects. */
  hexDumpCpu?: number;
  /** `backtrace (crc %x)` (6.6+). */
  crc?: string;
  /** Allocation stack, innermost first. */
  frames: Frame[];
  /** 1-based line of the header. */
  line: number;
}

export interface KmemleakFile {
  reports: KmemleakReport[];
}

const HEADER = /^unreferenced object(?: \((phys|percpu)\))? (0x[0-9a-fA-F]+) \(size (\d+)\):\s*$/;
const COMM = /^ {2}comm "(.*)", pid (-?\d+), jiffies (\d+)(?: \(age (\d+)\.(\d+)s\))?\s*$/;
const HEXDUMP = /^ {2}hex dump \(first (\d+) bytes(?: on cpu (\d+))?\):\s*$/;
const HEXROW = /^ {4}(?:[0-9a-f]{2}(?: |$))+/;
const BACKTRACE = /^ {2}backtrace(?: \(crc ([0-9a-f]+)\))?:\s*$/;

type State = 'start' | 'comm' | 'afterComm' | 'hex' | 'frames';

/**
 * The report state machine, fed one line at a time so huge files stream: memory holds
 * one report. `onReport` gets each report once its backtrace is complete.
 */
export class KmemleakScanner {
  private state: State = 'start';
  private cur: KmemleakReport | undefined;
  private line = 0;
  private readonly file: string;
  private readonly maxLine: number;

  constructor(
    private readonly onReport: (r: KmemleakReport) => void,
    private readonly opts: ParseOptions = {},
  ) {
    this.file = opts.file ?? 'kmemleak';
    this.maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
  }

  private flush(): void {
    if (this.cur) this.onReport(this.cur);
    this.cur = undefined;
  }

  /** One line without its newline. */
  push(raw: string): void {
    const line = ++this.line;
    const file = this.file;
    if (raw.length > this.maxLine) throw lineTooLong(file, line, raw.length, this.maxLine);
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    // 2.6.31 prefixed every line with "kmemleak: ".
    const t = text.startsWith('kmemleak: ') ? text.slice('kmemleak: '.length) : text;
    if (t.trim() === '') return;
    const h = HEADER.exec(t);
    if (h) {
      if (this.state === 'comm' || this.state === 'afterComm' || this.state === 'hex')
        throw parseError(file, line, 'a backtrace before the next object', t);
      this.flush();
      this.cur = {
        address: h[2]!,
        type: (h[1] as KmemleakObjectType | undefined) ?? 'virt',
        sizeBytes: safeNumber(h[3]!, file, line, 'the size'),
        comm: '',
        pid: 0,
        jiffies: 0,
        frames: [],
        line,
      };
      this.state = 'comm';
      return;
    }
    const cur = this.cur;
    if (!cur) throw parseError(file, line, '`unreferenced object 0x... (size N):`', t);
    if (this.state === 'comm') {
      const c = COMM.exec(t);
      if (!c) throw parseError(file, line, '`  comm "<task>", pid N, jiffies N`', t);
      cur.comm = c[1]!;
      cur.pid = safeNumber(c[2]!, file, line, 'the pid');
      cur.jiffies = safeNumber(c[3]!, file, line, 'jiffies');
      if (c[4] !== undefined) cur.ageSeconds = Number(c[4]) + Number(c[5]) / 10 ** c[5]!.length;
      this.state = 'afterComm';
      return;
    }
    if (this.state === 'afterComm' || this.state === 'hex') {
      const hd = HEXDUMP.exec(t);
      if (hd && this.state === 'afterComm') {
        cur.hexDumpBytes = safeNumber(hd[1]!, file, line, 'the hex dump size');
        if (hd[2] !== undefined) cur.hexDumpCpu = safeNumber(hd[2], file, line, 'the cpu');
        this.state = 'hex';
        return;
      }
      if (this.state === 'hex' && HEXROW.test(t)) return;
      const bt = BACKTRACE.exec(t);
      if (bt) {
        if (bt[1] !== undefined) cur.crc = bt[1];
        this.state = 'frames';
        return;
      }
      throw parseError(
        file,
        line,
        this.state === 'hex' ? 'hex dump rows or `  backtrace:`' : '`  hex dump` or `  backtrace:`',
        t,
      );
    }
    // state === 'frames'
    if (/^ {4}\S/.test(t)) {
      const f = parseFrame(t);
      if (!f) throw parseError(file, line, 'a frame like `    [<ffffffff81234567>] func+0x2c/0x57`', t);
      cur.frames.push(f);
      return;
    }
    throw parseError(file, line, 'a backtrace frame or the next `unreferenced object`', t);
  }

  /**
   * End of input: the last report must be complete. `cutLine` is the input's last line when
   * it did not end with a newline (kmemleak ends every line with one): the read was cut, and
   * the report it belongs to may miss frames. With `lenient` an incomplete last report is
   * dropped with a warning instead of an error.
   */
  end(cutLine?: string): void {
    if (cutLine !== undefined) {
      const line = this.line + 1;
      const header = this.cur
        ? `the report of object ${this.cur.address} (line ${this.cur.line})`
        : 'nothing';
      truncated(
        this.file,
        line,
        'a last line ending in a newline',
        cutLine,
        this.opts,
        `dropped ${header} and the cut line ${JSON.stringify(cutLine.slice(0, 60))}`,
      );
      this.cur = undefined;
      return;
    }
    if (this.cur && this.state !== 'frames') {
      truncated(
        this.file,
        this.cur.line,
        'a complete report ending in a backtrace',
        '<end of input>',
        this.opts,
        `dropped the incomplete report of object ${this.cur.address}`,
      );
      this.cur = undefined;
      return;
    }
    this.flush();
  }
}

/** Parse a whole kmemleak report file. An empty file is valid: no leaks reported. */
export function parseKmemleak(text: string, opts: ParseOptions = {}): KmemleakFile {
  const reports: KmemleakReport[] = [];
  const scanner = new KmemleakScanner((r) => reports.push(r), opts);
  const lines = text.split('\n');
  // The text after the last newline: '' for a complete file.
  const last = lines.pop()!;
  for (const l of lines) scanner.push(l);
  scanner.end(last === '' ? undefined : last);
  return { reports };
}

/**
 * Stream a kmemleak report (a file of any size, or debugfs) report by report.
 * Memory is bounded by one report plus one read chunk.
 */
export async function scanKmemleak(
  input: AsyncIterable<Buffer | string>,
  onReport: (r: KmemleakReport) => void,
  opts: ParseOptions = {},
): Promise<{ reports: number }> {
  let n = 0;
  const scanner = new KmemleakScanner((r) => {
    n++;
    onReport(r);
  }, opts);
  const decoder = new TextDecoder('utf-8');
  const maxLine = opts.maxLineBytes ?? MAX_LINE_BYTES;
  let rest = '';
  let lineNo = 0;
  for await (const chunk of input) {
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    lineNo += lines.length;
    for (const l of lines) scanner.push(l);
    // One line that never ends would be copied again with every chunk: stop at the limit.
    if (rest.length > maxLine) throw lineTooLong(opts.file ?? 'kmemleak', lineNo + 1, rest.length, maxLine);
  }
  rest += decoder.decode();
  scanner.end(rest === '' ? undefined : rest);
  return { reports: n };
}
