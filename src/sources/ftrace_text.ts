import { StringDecoder } from 'node:string_decoder';
import { parseError } from '../model/errors.js';
import { type Frame, FrameLines, formatFrame, parseFrame } from '../model/frame.js';
import type { ParseOptions } from './text.js';

/**
 * The text tracefs prints in `trace` and `trace_pipe` (kernel/trace/trace_output.c), for
 * the events memsleuth enables: kmem tracepoints, uprobes, and the stacks recorded after
 * them. One record per entry:
 *
 *   kworker/0:1-42      [000] .....   123.456789: kmalloc: call_site=f+0x1d/0x60 [mod] ptr=...
 *   kworker/0:1-42      [000] .....   123.456801: <stack trace>
 *    => __kmalloc_noprof+0x244/0x6a0
 *    => msl_slab_leak+0x1d/0x60 [msl_leaky]
 *   t-25198             [001] DBZff  2849.299332: malloc_ret: (0x55f63260a182 <- 0x7f9976c36930) ptr=0x55f6...
 *   t-25198             [001] DBZff  2849.299333: <user stack trace>
 *    =>  <000055f63260a182>
 *   CPU:1 [LOST 5021 EVENTS]
 *
 * Format details by kernel version:
 * - `comm-pid`: the comm may hold spaces and dashes; the pid is the digits before the
 *   spaces that precede `[cpu]`. record-tgid adds `(  tgid)` (4.13+; `(-------)` unknown).
 * - The flags column (irq-info, on by default) has 4 characters before 4.19 and 5 after
 *   (migrate-disable, 5.13); any non-space characters are accepted, and it may be absent.
 *   Its third character is the context: `.` task, `s` softirq, `h`/`H` hardirq, `z`/`Z` NMI.
 * - Timestamps are `secs.usecs` for the time clocks (local, global, mono, boot, ...) and a
 *   plain count for `counter` and `x86-tsc`.
 * - Kernel stack frames print as `func` (sym-offset off, the default), `func+0x1d/0x60`
 *   (sym-offset on), with ` [module]`, with ` <ffffffff81234567>` (sym-addr), or as a bare
 *   `0xffffffffc0123456` when no symbol covers the address.
 * - User stack frames (userstacktrace) print as ` <00007f9976c36930>` and, with
 *   sym-userobj, as `/usr/lib/libc.so.6[+0x98930]` (offset from the mapping start).
 * - Lost events: `CPU:%d [LOST %lu EVENTS]`, or `CPU:%d [LOST EVENTS]` when the ring buffer
 *   could not count them (trace.c print_trace_line).
 * - The `trace` file starts with `#` comment lines and, in overwrite mode, has
 *   `##### CPU N buffer started ####` lines; both are skipped.
 */

/** What every trace line carries before the event. */
export interface FtraceHeader {
  comm: string;
  /** Thread id (the kernel's `pid`). */
  pid: number;
  /** Thread group id, when record-tgid was on and the kernel knew it. */
  tgid?: number;
  cpu: number;
  /** The flags column as printed (`d..1.`), or `` when irq-info was off. */
  flags: string;
  /** Seconds (or clock ticks for the counter clocks), as printed. */
  timestamp: number;
  /** 1-based line in the input. */
  line: number;
}

export interface FtraceEvent extends FtraceHeader {
  type: 'event';
  /** Event name as printed: `kmalloc`, `mm_page_alloc`, or a uprobe's name (`malloc_ret`). */
  event: string;
  /** Everything after `event: ` (see parseEventFields / parseUprobeBody); `` for raw events. */
  body: string;
  /** The fields, already decoded (raw events: ftrace_raw.ts), printed as the text would. */
  fields?: Record<string, string>;
  /** The `call_site` symbol, already resolved (raw events). */
  callSite?: Frame;
}

export interface FtraceKernelStack extends FtraceHeader {
  type: 'kernel-stack';
  /** Innermost first, as printed. */
  frames: Frame[];
}

/** One frame of a `<user stack trace>`. */
export interface UserStackFrame {
  /** Hex address as printed, without `0x`; absent when only the object and offset were printed. */
  address?: string;
  /** The mapped file, with sym-userobj. */
  object?: string;
  /** Offset from the start of the mapping, with sym-userobj. */
  objectOffset?: number;
}

export interface FtraceUserStack extends FtraceHeader {
  type: 'user-stack';
  /** Innermost first: the interrupted instruction, then return addresses. */
  frames: UserStackFrame[];
}

export interface FtraceLost {
  type: 'lost';
  cpu: number;
  /** Events the ring buffer dropped, when it could count them. */
  events: number | undefined;
  line: number;
}

export type FtraceRecord = FtraceEvent | FtraceKernelStack | FtraceUserStack | FtraceLost;

const TIMESTAMP = /^\d+(?:\.\d+)?$/;
const EVENT_NAME = /^[\w.-]+$/;
const LOST = /^CPU:(\d+) \[LOST (?:(\d+) )?EVENTS\]$/;
const USER_FRAME = /^\s*(?:(\S.*?)\[\+0x([0-9a-fA-F]+)\])?\s*(?:<([0-9a-fA-F]+)>)?\s*$/;
// ` <ffffffff81234567>` after a symbol (sym-addr).
const SYM_ADDR = /\s+<[0-9a-fA-F]+>\s*$/;

const EXPECTED =
  'a trace line (`comm-pid [cpu] flags timestamp: event: fields`), a ` => ` stack frame or `CPU:N [LOST N EVENTS]`';

/**
 * A streaming parser: feed chunks as they are read (`trace_pipe` or a saved file), get
 * records in input order. A stack record is emitted when the line after its last frame
 * arrives (or at `end()`). A kernel stack's frames are the parser's own objects, to be kept
 * as they are: copies that hold no view of the text read, one object for the repeats of a
 * frame's line while it has room for them (200,000 distinct lines).
 */
export class FtraceTextParser {
  private readonly file: string;
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';
  private lineNo = 0;
  private stack: FtraceKernelStack | FtraceUserStack | undefined;
  /** Kernel stack frames by line, each distinct line parsed once. */
  private readonly frameLines = new FrameLines();

  constructor(
    private readonly onRecord: (r: FtraceRecord) => void,
    opts: ParseOptions = {},
  ) {
    this.file = opts.file ?? 'trace';
  }

  /** Lines read so far. */
  get lines(): number {
    return this.lineNo;
  }

  push(chunk: Buffer | string): void {
    const text = this.rest + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.line(text.slice(start, end));
      start = nl + 1;
    }
    this.rest = text.slice(start);
  }

  /** The input is complete: parse a last unterminated line and emit a pending stack. */
  end(): void {
    const last = this.rest + this.decoder.end();
    this.rest = '';
    if (last !== '') this.line(last.endsWith('\r') ? last.slice(0, -1) : last);
    this.closeStack();
  }

  private closeStack(): void {
    if (this.stack) {
      const s = this.stack;
      this.stack = undefined;
      this.onRecord(s);
    }
  }

  private line(t: string): void {
    const line = ++this.lineNo;
    // ` => frame`: part of the open stack block.
    let i = 0;
    while (i < t.length && t.charCodeAt(i) === 32) i++;
    if (t.charCodeAt(i) === 61 /* = */ && t.charCodeAt(i + 1) === 62 /* > */) {
      this.frameLine(t, t.slice(i + 2), line);
      return;
    }
    this.closeStack();
    if (i === t.length || t.charCodeAt(0) === 35 /* # */) return;
    const h = parseHeaderLine(t, i);
    if (!h) {
      const lost = LOST.exec(t.trim());
      if (lost) {
        this.onRecord({
          type: 'lost',
          cpu: Number(lost[1]),
          events: lost[2] === undefined ? undefined : Number(lost[2]),
          line,
        });
        return;
      }
      throw parseError(this.file, line, EXPECTED, t);
    }
    const rest = h.rest;
    if (rest.charCodeAt(0) === 60 /* < */) {
      const type =
        rest === '<stack trace>' ? 'kernel-stack' : rest === '<user stack trace>' ? 'user-stack' : undefined;
      if (type !== undefined) {
        const stack: NonNullable<typeof this.stack> = {
          type,
          comm: h.comm,
          pid: h.pid,
          cpu: h.cpu,
          flags: h.flags,
          timestamp: h.timestamp,
          line,
          frames: [],
        };
        if (h.tgid !== undefined) stack.tgid = h.tgid;
        this.stack = stack;
        return;
      }
    }
    const colon = rest.indexOf(':');
    const name = colon > 0 ? rest.slice(0, colon) : '';
    if (
      name === '' ||
      !EVENT_NAME.test(name) ||
      (colon + 1 < rest.length && rest.charCodeAt(colon + 1) !== 32)
    )
      throw parseError(this.file, line, 'an event name and its fields after the timestamp', t);
    const e: FtraceEvent = {
      type: 'event',
      comm: h.comm,
      pid: h.pid,
      cpu: h.cpu,
      flags: h.flags,
      timestamp: h.timestamp,
      line,
      event: name,
      body: rest.slice(colon + 2),
    };
    if (h.tgid !== undefined) e.tgid = h.tgid;
    this.onRecord(e);
  }

  private frameLine(t: string, body: string, line: number): void {
    const s = this.stack;
    if (!s) throw parseError(this.file, line, `${EXPECTED} (a frame outside a stack block)`, t);
    if (s.type === 'kernel-stack') {
      // Stacks repeat: each distinct frame text is parsed once.
      let f = this.frameLines.get(body);
      if (f === undefined) {
        const parsed = parseFrame(body.replace(SYM_ADDR, ''));
        if (!parsed)
          throw parseError(this.file, line, 'a kernel stack frame like ` => func+0x1d/0x60 [mod]`', t);
        // A copy: the frame's names are views of the chunk read, which a kept one would keep
        // alive (every chunk where a new frame first appears).
        f = this.frameLines.keep(body, parsed);
      }
      s.frames.push(f);
      return;
    }
    const m = USER_FRAME.exec(body);
    if (!m || (m[3] === undefined && m[1] === undefined)) {
      // `??` and similar: an address the kernel could not print; keep the depth.
      if (body.trim() === '??') s.frames.push({});
      else throw parseError(this.file, line, 'a user stack frame like ` =>  <00007f9976c36930>`', t);
      return;
    }
    const f: UserStackFrame = {};
    if (m[3] !== undefined) f.address = m[3];
    if (m[1] !== undefined) {
      f.object = m[1];
      f.objectOffset = Number.parseInt(m[2]!, 16);
    }
    s.frames.push(f);
  }
}

interface HeaderFields {
  comm: string;
  pid: number;
  tgid?: number;
  cpu: number;
  flags: string;
  timestamp: number;
  rest: string;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * `comm-pid [(tgid)] [cpu] [flags] timestamp: rest`, scanned by hand: this runs once per
 * line of traces of hundreds of MB. The CPU field `[digits]` anchors it: the comm before
 * it may hold anything, including spaces, dashes and brackets.
 */
function parseHeaderLine(t: string, from: number): HeaderFields | undefined {
  let open = t.indexOf(' [', from);
  let close = -1;
  while (open >= 0) {
    let j = open + 2;
    while (j < t.length && isDigit(t.charCodeAt(j))) j++;
    if (j > open + 2 && t.charCodeAt(j) === 93 /* ] */ && t.charCodeAt(j + 1) === 32) {
      close = j;
      break;
    }
    open = t.indexOf(' [', open + 1);
  }
  if (close < 0) return undefined;
  let head = t.slice(from, open).trimEnd();
  let tgid: number | undefined;
  if (head.endsWith(')')) {
    const p = head.lastIndexOf('(');
    if (p < 0) return undefined;
    const v = head.slice(p + 1, -1).trim();
    if (/^\d+$/.test(v)) tgid = Number(v);
    else if (!/^-+$/.test(v)) return undefined;
    head = head.slice(0, p).trimEnd();
  }
  const dash = head.lastIndexOf('-');
  if (dash < 0 || dash === head.length - 1) return undefined;
  for (let k = dash + 1; k < head.length; k++) if (!isDigit(head.charCodeAt(k))) return undefined;
  let k = close + 1;
  while (t.charCodeAt(k) === 32) k++;
  let sp = t.indexOf(' ', k);
  if (sp < 0) return undefined;
  let tok = t.slice(k, sp);
  let flags = '';
  if (!tok.endsWith(':')) {
    flags = tok;
    k = sp + 1;
    while (t.charCodeAt(k) === 32) k++;
    sp = t.indexOf(' ', k);
    if (sp < 0) {
      // `...: <stack trace>` always follows the timestamp with a space; a bare end is not a header.
      return undefined;
    }
    tok = t.slice(k, sp);
  }
  if (!tok.endsWith(':')) return undefined;
  const ts = tok.slice(0, -1);
  if (!TIMESTAMP.test(ts)) return undefined;
  const h: HeaderFields = {
    comm: head.slice(0, dash).trim(),
    pid: Number(head.slice(dash + 1)),
    cpu: Number(t.slice(open + 2, close)),
    flags,
    timestamp: Number(ts),
    rest: t.slice(sp + 1),
  };
  if (tgid !== undefined) h.tgid = tgid;
  return h;
}

/** Parse a whole trace text (a saved `trace` or `trace_pipe` capture) into records. */
export function parseFtraceText(text: string, opts: ParseOptions = {}): FtraceRecord[] {
  const out: FtraceRecord[] = [];
  const p = new FtraceTextParser((r) => out.push(r), opts);
  p.push(text);
  p.end();
  return out;
}

/** Stream a trace from an async iterable of chunks (a file or pipe stream). */
export async function parseFtraceStream(
  input: AsyncIterable<Buffer | string>,
  onRecord: (r: FtraceRecord) => void,
  opts: ParseOptions = {},
): Promise<{ lines: number }> {
  const p = new FtraceTextParser(onRecord, opts);
  for await (const chunk of input) p.push(chunk);
  p.end();
  return { lines: p.lines };
}

/**
 * The `key=value` fields of a tracepoint's print format (`call_site=f+0x1d/0x60 [mod]
 * ptr=ffff888104fa2600 bytes_req=288`). A ` [module]` after a `%pS` value belongs to it.
 * Text before the first `key=` is returned under `''`.
 */
export function parseEventFields(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  let key = '';
  let val = '';
  let started = false;
  for (const tok of body.split(' ')) {
    if (tok === '') continue;
    const eq = tok.indexOf('=');
    // `[module]` continues a symbol value; `key=value` starts a field.
    if (eq > 0 && !(tok.startsWith('[') && tok.endsWith(']'))) {
      if (started || val !== '') out[key] = val;
      key = tok.slice(0, eq);
      val = tok.slice(eq + 1);
      started = true;
    } else {
      val = val === '' ? tok : `${val} ${tok}`;
    }
  }
  if (started || val !== '') out[key] = val;
  return out;
}

/**
 * A uprobe event's body (kernel/trace/trace_uprobe.c print_uprobe_event):
 * `(0x7f9976c36930) size=100` for an entry probe (the probed address) and
 * `(0x55f63260a182 <- 0x7f9976c36930) ptr=0x...` for a return probe (the return address
 * in the caller, then the function). Fetch-args follow as `name=value`; a failed fetch
 * prints `(fault)`.
 */
export interface UprobeBody {
  /** Entry probes: the probed instruction; return probes: the function. */
  funcAddress: string;
  /** Return probes: where the function returned to (an address in its caller). */
  returnAddress?: string;
  args: Record<string, string>;
}

const UPROBE_HEAD = /^\(0x([0-9a-fA-F]+)(?: <- 0x([0-9a-fA-F]+))?\)\s?(.*)$/;

export function parseUprobeBody(body: string, where: { file?: string; line?: number } = {}): UprobeBody {
  const m = UPROBE_HEAD.exec(body);
  if (!m) {
    throw parseError(
      where.file ?? 'trace',
      where.line,
      'a uprobe event body `(0xADDR) args` or `(0xRET <- 0xFUNC) args`',
      body,
    );
  }
  const args = parseEventFields(m[3]!);
  delete args[''];
  return m[2] === undefined
    ? { funcAddress: m[1]!, args }
    : { funcAddress: m[2], returnAddress: m[1]!, args };
}

/**
 * The interrupt context of an entry from its flags column: 0 task, 1 softirq, 2 hardirq,
 * 3 NMI. Entries of a higher context can come between an event and its stack.
 */
export function contextLevel(flags: string): number {
  const c = flags.charAt(2);
  if (c === 'z' || c === 'Z') return 3;
  if (c === 'h' || c === 'H') return 2;
  if (c === 's') return 1;
  return 0;
}

/**
 * A record as trace_pipe prints it (the inverse of the parser): how a trace read from the
 * binary buffers is saved as text that `memsleuth trace report` and the parser read back.
 */
export function formatFtraceRecord(r: FtraceRecord): string {
  if (r.type === 'lost') return `CPU:${r.cpu} [LOST ${r.events === undefined ? '' : `${r.events} `}EVENTS]\n`;
  const tgid = r.tgid === undefined ? '' : ` (${String(r.tgid).padStart(7)})`;
  const head = `${`${r.comm}-${r.pid}`.padStart(22)}${tgid} [${String(r.cpu).padStart(3, '0')}] ${r.flags || '.....'} ${r.timestamp.toFixed(6).padStart(12)}: `;
  if (r.type === 'kernel-stack')
    return `${head}<stack trace>\n${r.frames.map((f) => ` => ${formatFrame(f)}\n`).join('')}`;
  if (r.type === 'user-stack')
    return `${head}<user stack trace>\n${r.frames.map((f) => ` =>  <${f.address ?? '0'}>\n`).join('')}`;
  let body = r.body;
  if (body === '' && r.fields) {
    body = Object.entries(r.fields)
      .filter(([k]) => !k.startsWith('__probe'))
      .map(([k, v]) => `${k}=${k === 'call_site' && r.callSite ? formatFrame(r.callSite) : v}`)
      .join(' ');
    // Uprobes print their addresses first, as `(0xIP)` or `(0xRET <- 0xFUNC)`.
    const f = r.fields;
    if (f.__probe_ip !== undefined) body = `(0x${BigInt(f.__probe_ip).toString(16)}) ${body}`;
    else if (f.__probe_func !== undefined && f.__probe_ret_ip !== undefined)
      body = `(0x${BigInt(f.__probe_ret_ip).toString(16)} <- 0x${BigInt(f.__probe_func).toString(16)}) ${body}`;
  }
  return `${head}${r.event}: ${body}\n`;
}
