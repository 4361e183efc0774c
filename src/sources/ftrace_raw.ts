/**
 * The binary ring buffer pages of per_cpu/cpuN/trace_pipe_raw (kernel/trace/ring_buffer.c),
 * decoded into the same records as the text parser gives (ftrace_text.ts), so the
 * analyses read either. Reading raw pages costs the kernel a page copy instead of
 * formatting every event and symbolising every stack frame, and is what makes tracing
 * a busy machine affordable.
 *
 * Page (events/header_page): `u64 timestamp` at 0, `local_t commit` at 8 (bytes of event
 * data; bit 31 RB_MISSED_EVENTS: events were lost before this page, bit 30
 * RB_MISSED_STORED: their count is stored as a long after the data), data at 16.
 *
 * Event header (events/header_event): one 32-bit word, `type_len:5` then `time_delta:27`:
 *   type_len 1..28   data of type_len*4 bytes follows; timestamp += time_delta
 *   type_len 0       array[0] holds the length (including itself), data at array[1]
 *   29 padding       time_delta 0: the rest of the page is empty; else skip array[0] + 4 bytes
 *   30 time_extend   timestamp += (array[0] << 27) + time_delta
 *   31 time_stamp    absolute: (array[0] << 27) + time_delta, upper bits from the page (6.1+)
 * All in the machine's byte order; deltas are in trace-clock units (ns for mono).
 *
 * Event data: `u16 common_type` (the event ID from its format file), `u8 common_flags`
 * (TRACE_FLAG_*: 0x08 hardirq, 0x10 softirq, 0x40 NMI), `u8 common_preempt_count`,
 * `int common_pid`, then the fields at the offsets its format file gives.
 */
import { parseError } from '../model/errors.js';
import type { Frame } from '../model/frame.js';
import type { FtraceField, FtraceFormat } from './ftrace_format.js';
import type { FtraceEvent, FtraceRecord } from './ftrace_text.js';

const TYPE_PADDING = 29;
const TYPE_TIME_EXTEND = 30;
const TYPE_TIME_STAMP = 31;
const RB_MISSED_EVENTS = 1 << 31;
const RB_MISSED_STORED = 1 << 30;
const TS_SHIFT = 27;

export interface PageLayout {
  /** Offset of the event data (16 on 64-bit). */
  dataOffset: number;
  /** Size of `commit` (8 on 64-bit, 4 on 32-bit). */
  commitSize: number;
  littleEndian: boolean;
}

export const DEFAULT_PAGE_LAYOUT: PageLayout = { dataOffset: 16, commitSize: 8, littleEndian: true };

/** One event of a page: its time (clock units) and where its data is. */
export interface RawEvent {
  ts: number;
  start: number;
  end: number;
}

/**
 * The events of one page, in order. `missed`: events lost before this page (-1 when the
 * kernel flagged a loss without counting it).
 */
export function ringBufferPageEvents(
  page: Buffer,
  layout: PageLayout = DEFAULT_PAGE_LAYOUT,
  where: { file?: string } = {},
): { events: RawEvent[]; missed: number } {
  const le = layout.littleEndian;
  const u32 = (o: number) => (le ? page.readUInt32LE(o) : page.readUInt32BE(o));
  if (page.length < layout.dataOffset) return { events: [], missed: 0 };
  let ts = Number(le ? page.readBigUInt64LE(0) : page.readBigUInt64BE(0));
  const commitWord = layout.commitSize === 8 ? u32(le ? 8 : 12) : u32(8);
  const flags = commitWord & (RB_MISSED_EVENTS | RB_MISSED_STORED);
  const commit = commitWord & ~(RB_MISSED_EVENTS | RB_MISSED_STORED) & 0x3fffffff;
  const start = layout.dataOffset;
  const end = start + commit;
  if (end > page.length)
    throw parseError(
      where.file ?? 'trace_pipe_raw',
      undefined,
      `a page commit of at most ${page.length - start} bytes`,
      String(commit),
    );
  let missed = 0;
  if (flags & RB_MISSED_EVENTS) {
    missed = -1;
    if (flags & RB_MISSED_STORED && end + layout.commitSize <= page.length)
      missed =
        layout.commitSize === 8
          ? Number(le ? page.readBigUInt64LE(end) : page.readBigUInt64BE(end))
          : u32(end);
  }
  const events: RawEvent[] = [];
  let p = start;
  while (p + 4 <= end) {
    const h = u32(p);
    const typeLen = h & 0x1f;
    const delta = h >>> 5;
    if (typeLen === TYPE_PADDING) {
      if (delta === 0) break;
      p += u32(p + 4) + 4;
      continue;
    }
    if (typeLen === TYPE_TIME_EXTEND) {
      ts += u32(p + 4) * 2 ** TS_SHIFT + delta;
      p += 8;
      continue;
    }
    if (typeLen === TYPE_TIME_STAMP) {
      const abs = u32(p + 4) * 2 ** TS_SHIFT + delta;
      // The stored stamp keeps 59 bits; the page's timestamp supplies the rest.
      const high = Math.floor(ts / 2 ** 59) * 2 ** 59;
      ts = high + abs;
      p += 8;
      continue;
    }
    ts += delta;
    let dataStart: number;
    let dataEnd: number;
    if (typeLen === 0) {
      const len = u32(p + 4);
      dataStart = p + 8;
      dataEnd = p + 4 + len;
    } else {
      dataStart = p + 4;
      dataEnd = dataStart + typeLen * 4;
    }
    if (dataEnd > end || dataEnd <= dataStart)
      throw parseError(
        where.file ?? 'trace_pipe_raw',
        undefined,
        'an event inside the page',
        `event at byte ${p} ending at ${dataEnd} > ${end}`,
        {
          offset: p,
        },
      );
    events.push({ ts, start: dataStart, end: dataEnd });
    p = dataEnd;
  }
  return { events, missed };
}

/** How a field is printed, from the event's print fmt: `name=%p`, `name=0x%lx`, `name=%pS`... */
type Style = 'hex' | 'ptr' | 'symbol' | 'string' | 'dec';

function fieldStyles(format: FtraceFormat): Map<string, Style> {
  const fmt = format.printFmt.startsWith('"')
    ? format.printFmt.slice(1, format.printFmt.indexOf('",'))
    : format.printFmt;
  const styles = new Map<string, Style>();
  for (const m of fmt.matchAll(/(\w+)=(0x)?%([-+ #0-9.]*)(ll|l|L|z|h|hh)?([a-zA-Z])(S|s|F|f)?/g)) {
    const [, name, zx, , , conv, ext] = m;
    let style: Style = 'dec';
    if (conv === 'p') style = ext === 'S' || ext === 's' || ext === 'F' || ext === 'f' ? 'symbol' : 'ptr';
    else if (conv === 'x' || conv === 'X') style = zx ? 'hex' : 'hex';
    else if (conv === 's') style = 'string';
    styles.set(name!, style);
  }
  return styles;
}

interface FieldReader {
  name: string;
  field: FtraceField;
  style: Style;
}

export interface RawDecoderOptions {
  /** Events to decode: their format files (kmem events, uprobes). */
  formats: FtraceFormat[];
  /** ftrace/kernel_stack and ftrace/user_stack formats (their IDs), when stacks are recorded. */
  kernelStack?: FtraceFormat;
  userStack?: FtraceFormat;
  /** Kernel code address to frame (kallsyms). */
  symbol: (addr: bigint) => Frame;
  /** Task name of a pid (raw events carry only the pid). */
  comm: (pid: number) => string;
  littleEndian?: boolean;
  /** Clock units per second (1e9 for the ns clocks). */
  unitsPerSecond?: number;
}

/** Turns raw events into the records the text parser produces. */
export class RawTraceDecoder {
  private readonly byId = new Map<number, { format: FtraceFormat; readers: FieldReader[] }>();
  /** Frames by address: high 32 bits, then low 32 bits (no BigInt on the hot path). */
  private readonly symbolCache = new Map<number, Map<number, Frame>>();
  private symbolCount = 0;
  private readonly le: boolean;
  private readonly perSecond: number;
  private readonly stackSize: FtraceField | undefined;
  private readonly stackCallers: FtraceField | undefined;
  private readonly userCallers: FtraceField | undefined;

  constructor(private readonly o: RawDecoderOptions) {
    this.le = o.littleEndian ?? true;
    this.perSecond = o.unitsPerSecond ?? 1e9;
    for (const f of o.formats) {
      const styles = fieldStyles(f);
      this.byId.set(f.id, {
        format: f,
        readers: f.fields.map((field) => ({
          name: field.name,
          field,
          style: styles.get(field.name) ?? 'dec',
        })),
      });
    }
    this.stackSize = o.kernelStack?.fields.find((f) => f.name === 'size');
    this.stackCallers = o.kernelStack?.fields.find((f) => f.name === 'caller');
    this.userCallers = o.userStack?.fields.find((f) => f.name === 'caller');
  }

  private u32(b: Buffer, o: number): number {
    return this.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  /** The two 32-bit halves of a 64-bit word. */
  private hiLo(b: Buffer, o: number): [number, number] {
    return this.le ? [b.readUInt32LE(o + 4), b.readUInt32LE(o)] : [b.readUInt32BE(o), b.readUInt32BE(o + 4)];
  }

  private sym(hi: number, lo: number): Frame {
    let m = this.symbolCache.get(hi);
    if (!m) {
      m = new Map();
      this.symbolCache.set(hi, m);
    }
    let f = m.get(lo);
    if (!f) {
      f = this.o.symbol((BigInt(hi) << 32n) | BigInt(lo));
      if (this.symbolCount++ < 500_000) m.set(lo, f);
    }
    return f;
  }

  private value(b: Buffer, o: number, f: FtraceField, style: Style): string {
    if (f.size === 8) {
      const [hi, lo] = this.hiLo(b, o);
      if (style === 'ptr') return hex64(hi, lo, 16);
      if (style === 'hex') return `0x${hex64(hi, lo, 0)}`;
      if (f.signed && hi >= 0x80000000)
        return (-((0xffffffff - hi) * 2 ** 32 + (0xffffffff - lo) + 1)).toString();
      // Exact as a double below 2^53 (user addresses): BigInt only above.
      return hi < 0x200000
        ? String(hi * 4294967296 + lo)
        : (BigInt(hi) * 4294967296n + BigInt(lo)).toString();
    }
    let v: number;
    const le = this.le;
    if (f.size === 4) v = f.signed ? (le ? b.readInt32LE(o) : b.readInt32BE(o)) : this.u32(b, o);
    else if (f.size === 2)
      v = f.signed ? (le ? b.readInt16LE(o) : b.readInt16BE(o)) : le ? b.readUInt16LE(o) : b.readUInt16BE(o);
    else v = f.signed ? b.readInt8(o) : b.readUInt8(o);
    if (style === 'ptr') return (v >>> 0).toString(16).padStart(f.size * 2, '0');
    if (style === 'hex') return `0x${(v >>> 0).toString(16)}`;
    return String(v);
  }

  /** One event of a page of `cpu`, or undefined for events we did not ask for. */
  decode(page: Buffer, e: RawEvent, cpu: number): FtraceRecord | undefined {
    if (e.end - e.start < 8) return undefined;
    const b = page;
    const s = e.start;
    const le = this.le;
    const id = le ? b.readUInt16LE(s) : b.readUInt16BE(s);
    const cflags = b[s + 2]!;
    const pid = le ? b.readInt32LE(s + 4) : b.readInt32BE(s + 4);
    // The context character of the text flags column (see contextLevel).
    const flags =
      cflags & 0x40
        ? cflags & 0x08
          ? '..Z..'
          : '..z..'
        : cflags & 0x08
          ? cflags & 0x10
            ? '..H..'
            : '..h..'
          : cflags & 0x10
            ? '..s..'
            : '.....';
    const timestamp = e.ts / this.perSecond;
    if (this.o.kernelStack && id === this.o.kernelStack.id) {
      const sizeField = this.stackSize;
      const callers = this.stackCallers;
      if (!sizeField || !callers) return undefined;
      const n =
        sizeField.size === 4
          ? le
            ? b.readInt32LE(s + sizeField.offset)
            : b.readInt32BE(s + sizeField.offset)
          : 0;
      const frames: Frame[] = [];
      for (let i = 0; i < n; i++) {
        const o = s + callers.offset + i * 8;
        if (o + 8 > e.end) break;
        const [hi, lo] = this.hiLo(b, o);
        if (hi === 0 && lo === 0) break;
        frames.push(this.sym(hi, lo));
      }
      return { type: 'kernel-stack', comm: this.o.comm(pid), pid, cpu, flags, timestamp, line: 0, frames };
    }
    if (this.o.userStack && id === this.o.userStack.id) {
      const callers = this.userCallers;
      if (!callers) return undefined;
      const frames: { address: string }[] = [];
      const count = Math.max(1, callers.size / 8);
      for (let i = 0; i < count; i++) {
        const o = s + callers.offset + i * 8;
        if (o + 8 > e.end) break;
        const [hi, lo] = this.hiLo(b, o);
        if ((hi === 0 && lo === 0) || (hi === 0xffffffff && lo === 0xffffffff)) break;
        frames.push({ address: hex64(hi, lo, 16) });
      }
      return { type: 'user-stack', comm: this.o.comm(pid), pid, cpu, flags, timestamp, line: 0, frames };
    }
    const dec = this.byId.get(id);
    if (!dec) return undefined;
    const fields: Record<string, string> = {};
    let callSite: Frame | undefined;
    for (const r of dec.readers) {
      const f = r.field;
      const o = s + f.offset;
      if (o + Math.min(f.size, 8) > e.end) continue;
      if (f.type.startsWith('__data_loc')) {
        const loc = this.u32(b, o);
        const off = loc & 0xffff;
        const len = loc >>> 16;
        let end = s + off + len;
        while (end > s + off && b[end - 1] === 0) end--;
        fields[r.name] = b.toString('latin1', s + off, end);
        continue;
      }
      if (f.size > 8 || f.size === 0) continue;
      if (r.style === 'symbol' && f.size === 8) {
        const [hi, lo] = this.hiLo(b, o);
        const fr = this.sym(hi, lo);
        fields[r.name] = fr.func;
        if (r.name === 'call_site') callSite = fr;
        continue;
      }
      fields[r.name] = this.value(b, o, f, r.style);
    }
    const ev: FtraceEvent = {
      type: 'event',
      comm: this.o.comm(pid),
      pid,
      cpu,
      flags,
      timestamp,
      line: 0,
      event: dec.format.name,
      body: '',
      fields,
    };
    if (callSite) ev.callSite = callSite;
    return ev;
  }
}

/** Hex of a 64-bit value from its halves, zero-padded to `width` digits. */
function hex64(hi: number, lo: number, width: number): string {
  const h = hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, '0');
  return width ? h.padStart(width, '0') : h;
}
