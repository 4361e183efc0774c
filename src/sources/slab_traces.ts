import { basename } from 'node:path';
import { parseError } from '../model/errors.js';
import { type Frame, FrameLines, parseFrame } from '../model/frame.js';
import {
  forEachKernelLine,
  KernelLineSplitter,
  type ParseOptions,
  type PieceSink,
  safeNumber,
} from './text.js';

/**
 * SLUB call-site listings: one record per (call site, stack) with how many live
 * objects of the cache carry that track. Four files print the same line format
 * (mm/slub.c):
 *
 * - `/sys/kernel/slab/<cache>/alloc_calls|free_calls` up to 5.13 (list_locations(),
 *   limited to one page of output);
 * - `/sys/kernel/debug/slab/<cache>/alloc_traces|free_traces` from 5.14
 *   (slab_debugfs_show()), which add the full stack below each line from 5.19
 *   (CONFIG_STACKDEPOT, 8-space indented `%pS` frames then a blank line) and
 *   ` waste=<total>/<per object>` from 6.1 (kmalloc objects larger than requested).
 *
 * Line: `%7ld ` count, `%pS` call site or `<not-available>`, then ` waste=T/P`,
 * ` age=min/avg/max` or ` age=N`, ` pid=min-max` or ` pid=N`, ` cpus=<cpulist>`
 * (more than one CPU online), ` nodes=<nodelist>` (more than one node). An empty
 * listing prints `No data`.
 *
 * Both alloc and free listings walk only ALLOCATED objects (process_slab() skips
 * the free map filled by __fill_map()): an alloc count is the number of live
 * objects from that call site; a free count says where the previous occupant of a
 * live object's slot was freed. They cannot be subtracted from each other.
 */
export interface SlabTraceLocation {
  /** Live objects carrying this track. */
  count: number;
  /** The call site (`%pS`); undefined for `<not-available>` (track never set). */
  caller?: Frame;
  /** `waste=` (6.1+): bytes wasted in total (count x per object) by kmalloc rounding. */
  wasteBytes?: number;
  wastePerObjectBytes?: number;
  /** `age=`: jiffies since the track was set (min, average, max; one value when equal). */
  ageMinJiffies: number;
  ageAvgJiffies: number;
  ageMaxJiffies: number;
  pidMin: number;
  pidMax: number;
  /** `cpus=` as printed (a cpulist such as `0-3,7`). */
  cpus?: string;
  /** `nodes=` as printed (a nodelist). */
  nodes?: string;
  /** Full stack, innermost first (debugfs, 5.19+ with CONFIG_STACKDEPOT). */
  stack?: Frame[];
  /** 1-based line of the count line. */
  line: number;
}

export interface SlabTraces {
  locations: SlabTraceLocation[];
  /** The file said `No data` (no live objects, or tracking off). */
  noData: boolean;
  /** At least one location carried a full stack (5.19+). */
  hasStacks: boolean;
}

const HEAD = /^\s*(\d+) (\S.*?)\s*$/;
const FIELD = /^(waste|age|pid|cpus|nodes)=(\S*)$/;

function parseAttrs(
  rest: string,
  file: string,
  line: number,
  found: string,
): Omit<SlabTraceLocation, 'count' | 'caller' | 'line' | 'stack'> & { callerText: string } {
  // The call site is `%pS` (`func+0x1/0x2 [mod]`, may contain one space before the
  // module) or `<not-available>`; everything after it is ` key=value` fields.
  const m = /^(<not-available>|\S+(?: \[[^\]\s]+\])?)((?: \S+)*)$/.exec(rest);
  if (!m) throw parseError(file, line, 'a call site followed by key=value fields', found);
  const out: Omit<SlabTraceLocation, 'count' | 'caller' | 'line' | 'stack'> & { callerText: string } = {
    callerText: m[1]!,
    ageMinJiffies: 0,
    ageAvgJiffies: 0,
    ageMaxJiffies: 0,
    pidMin: 0,
    pidMax: 0,
  };
  const num = (token: string) => safeNumber(token, file, line, 'a number');
  let sawAge = false;
  let sawPid = false;
  for (const tok of m[2]!.trim().split(' ').filter(Boolean)) {
    const f = FIELD.exec(tok);
    if (!f) throw parseError(file, line, 'waste=, age=, pid=, cpus= or nodes= after the call site', tok);
    const [, key, value] = f as unknown as [string, string, string];
    if (key === 'waste') {
      const w = /^(\d+)\/(\d+)$/.exec(value);
      if (!w) throw parseError(file, line, 'waste=<total>/<per object>', tok);
      out.wasteBytes = num(w[1]!);
      out.wastePerObjectBytes = num(w[2]!);
    } else if (key === 'age') {
      const a = /^(\d+)(?:\/(\d+)\/(\d+))?$/.exec(value);
      if (!a) throw parseError(file, line, 'age=<min>/<avg>/<max> or age=<n>', tok);
      out.ageMinJiffies = num(a[1]!);
      out.ageAvgJiffies = num((a[2] ?? a[1])!);
      out.ageMaxJiffies = num((a[3] ?? a[1])!);
      sawAge = true;
    } else if (key === 'pid') {
      // pids are printed with %ld: -1 is impossible but 0 (kernel threads) is common.
      const p = /^(-?\d+)(?:-(-?\d+))?$/.exec(value);
      if (!p) throw parseError(file, line, 'pid=<min>-<max> or pid=<n>', tok);
      out.pidMin = num(p[1]!);
      out.pidMax = num((p[2] ?? p[1])!);
      sawPid = true;
    } else if (key === 'cpus') out.cpus = value;
    else out.nodes = value;
  }
  if (!sawAge || !sawPid) throw parseError(file, line, 'age= and pid= fields on every call-site line', found);
  return out;
}

/** Parse any of alloc_traces, free_traces (debugfs) or alloc_calls, free_calls (sysfs). */
export function parseSlabTraces(text: string, opts: ParseOptions = {}): SlabTraces {
  const locations: SlabTraceLocation[] = [];
  const r = scanSlabTraces(text, opts, (l) => locations.push(l));
  return { locations, ...r };
}

const LISTING = '`<count> <call site> age=... pid=...` lines or `No data`';

/**
 * parseSlabTraces one location at a time: `onLocation` gets each when its last frame has been
 * read, in listing order, and nothing keeps it after. `frames`: the frame of each distinct
 * frame line, kept across calls (a listing repeats the same frames in thousands of stacks);
 * its frames are copies that hold no view of `text`, shared by every location that has them.
 */
export function scanSlabTraces(
  text: string,
  opts: ParseOptions,
  onLocation: (l: SlabTraceLocation) => void,
  frames: FrameLines = new FrameLines(),
): { noData: boolean; hasStacks: boolean } {
  const file = opts.file ?? 'alloc_traces';
  const s = new SlabTraceScanner(file, onLocation, frames);
  // Line by line, no array of them: a cache's listing can run to millions of lines.
  forEachKernelLine(text, file, LISTING, opts, (t, line) => s.line(t, line));
  return s.end();
}

/**
 * scanSlabTraces fed in pieces (KernelLineSplitter): text as it is read, or bytes, then end().
 * A listing is never held whole.
 */
export class SlabTraceReader implements PieceSink {
  private readonly scanner: SlabTraceScanner;
  private readonly lines: KernelLineSplitter;

  constructor(opts: ParseOptions, onLocation: (l: SlabTraceLocation) => void, frames = new FrameLines()) {
    const file = opts.file ?? 'alloc_traces';
    const s = new SlabTraceScanner(file, onLocation, frames);
    this.scanner = s;
    this.lines = new KernelLineSplitter(file, LISTING, opts, (t, line) => s.line(t, line));
  }

  text(piece: string): void {
    this.lines.text(piece);
  }

  bytes(chunk: Uint8Array): void {
    this.lines.bytes(chunk);
  }

  end(): { noData: boolean; hasStacks: boolean } {
    this.lines.end();
    return this.scanner.end();
  }
}

/** The lines of a listing, in order, into locations. */
class SlabTraceScanner {
  private noData = false;
  private hasStacks = false;
  private seen = 0;
  private current: SlabTraceLocation | undefined;

  constructor(
    private readonly file: string,
    private readonly onLocation: (l: SlabTraceLocation) => void,
    private readonly frames: FrameLines,
  ) {}

  /** The location being read is complete. */
  private done(): void {
    const c = this.current;
    if (c === undefined) return;
    if (c.stack) this.hasStacks = true;
    this.current = undefined;
    this.onLocation(c);
  }

  line(t: string, line: number): void {
    const file = this.file;
    if (t.trim() === '') {
      this.done();
      return;
    }
    if (t.trim() === 'No data') {
      if (this.seen) throw parseError(file, line, 'no `No data` after call sites', t);
      this.noData = true;
      return;
    }
    // Count lines start with `%7ld ` (a decimal then a space); stack frames are
    // 8-space indented `%pS` symbols or `0x...` addresses, never a bare number.
    const head = HEAD.exec(t);
    if (head) {
      if (this.noData) throw parseError(file, line, 'nothing after `No data`', t);
      this.done();
      const attrs = parseAttrs(head[2]!, file, line, t);
      const { callerText, ...rest } = attrs;
      const loc: SlabTraceLocation = { count: safeNumber(head[1]!, file, line, 'a count'), ...rest, line };
      if (callerText !== '<not-available>') {
        const caller = parseFrame(callerText);
        if (!caller) throw parseError(file, line, 'a call site like `func+0x2c/0x57 [mod]`', callerText);
        loc.caller = caller;
      }
      this.seen++;
      this.current = loc;
      return;
    }
    const current = this.current;
    if (current && /^\s+\S/.test(t)) {
      let from = 0;
      while (t.charCodeAt(from) === 32) from++;
      let frame = this.frames.get(t, from);
      if (frame === undefined) {
        const parsed = parseFrame(t);
        if (!parsed) throw parseError(file, line, 'a stack frame like `        func+0x2c/0x57`', t);
        frame = this.frames.keep(t, parsed, from);
      }
      if (!current.stack) current.stack = [];
      current.stack.push(frame);
      return;
    }
    throw parseError(file, line, '`<count> <call site> age=... pid=...`', t);
  }

  end(): { noData: boolean; hasStacks: boolean } {
    this.done();
    return { noData: this.noData, hasStacks: this.hasStacks };
  }
}

/** The cache a slab trace file belongs to, from its name: `kmalloc-96.alloc_traces` or `.../slab/kmalloc-96/alloc_traces`. */
export function slabTraceFileCache(file: string): { cache: string; kind: string } | undefined {
  const name = basename(file);
  const dotted = /^(.+)\.(alloc_traces|free_traces|alloc_calls|free_calls)$/.exec(name);
  if (dotted) return { cache: dotted[1]!, kind: dotted[2]! };
  const nested = /\/([^/]+)\/(alloc_traces|free_traces|alloc_calls|free_calls)$/.exec(file);
  return nested ? { cache: nested[1]!, kind: nested[2]! } : undefined;
}
