/**
 * User-space allocations from uprobes on a process's libc (malloc, calloc, realloc, free,
 * mmap, munmap: sources/uprobe_events.ts LIBC_PROBES), paired by address, with the user
 * stack the kernel recorded after each return probe (the userstacktrace option), turned
 * into function names from /proc/PID/maps and the ELF symbol tables.
 *
 * Why the return probe's stack: at a function's first instruction the frame-pointer walk
 * starts from the caller's frame pointer, so it skips the caller itself (the return
 * address is on the stack, not in a frame record). After the return the interrupted
 * address *is* the caller, and the walk continues from its frame: the whole stack.
 *
 * Nesting: glibc's realloc(NULL, n) calls malloc, its free of a large chunk calls munmap,
 * its malloc of a large block calls mmap: calls made inside a traced call are that call's
 * business and are not counted again.
 */
import { basename } from 'node:path';
import type { Frame } from '../model/frame.js';
import { type ElfFile, functionAt, vaddrOfFileOffset } from '../sources/elf_symbols.js';
import { type FtraceEvent, type FtraceRecord, parseUprobeBody } from '../sources/ftrace_text.js';
import { type MapsEntry, mappingAt } from '../sources/proc_maps.js';
import type { AllocationTracker, AllocKind, TracedAllocation, TraceStack } from './alloc_trace.js';

const MAP_ANONYMOUS = 0x20;
const MAP_FAILED = 0xffffffffffffffffn;

/** Turns user addresses into frames: `function [binary]`, or `0xADDR [binary]` without a symbol. */
export class UserSymbolizer {
  private readonly cache = new Map<string, Frame>();

  constructor(
    private maps: readonly MapsEntry[],
    private readonly elfOf: (path: string) => ElfFile | undefined,
  ) {}

  /** A newer /proc/PID/maps (after dlopen or new mappings); symbols already resolved stay. */
  update(maps: readonly MapsEntry[]): void {
    this.maps = maps;
  }

  /**
   * Return addresses to frames. `returnAddresses`: every address is where a call returns
   * to, so the symbol is looked up one byte before it (a call can be a function's last
   * instruction); offsets are shown from the address itself.
   */
  frames(addresses: readonly string[], returnAddresses = true): Frame[] {
    return addresses.map((a) => this.frame(a, returnAddresses));
  }

  frame(hex: string, returnAddress = true): Frame {
    const k = `${returnAddress ? 'r' : 'i'}${hex}`;
    const hit = this.cache.get(k);
    if (hit) return hit;
    const addr = BigInt(`0x${hex}`);
    const f = this.lookup(addr, returnAddress);
    this.cache.set(k, f);
    return f;
  }

  private lookup(addr: bigint, returnAddress: boolean): Frame {
    const raw: Frame = { func: `0x${addr.toString(16)}` };
    const m = mappingAt(this.maps, addr);
    if (!m) return raw;
    const mod = m.pathname === '' ? '[anon]' : m.pathname.startsWith('[') ? m.pathname : basename(m.pathname);
    if (!m.pathname.startsWith('/')) return { ...raw, module: mod };
    const elf = this.elfOf(m.pathname);
    if (!elf) return { ...raw, module: mod };
    const look = returnAddress && addr > 0n ? addr - 1n : addr;
    const vaddr = vaddrOfFileOffset(elf, look - m.start + m.offset);
    const hit = vaddr === undefined ? undefined : functionAt(elf, vaddr);
    if (!hit) return { ...raw, module: mod };
    return { func: hit.symbol.name, offset: hit.offset + (look === addr ? 0 : 1), module: mod };
  }
}

interface OpenCall {
  fn: string;
  args: Record<string, string>;
}

export interface UserTraceOptions {
  /** Bytes per page, for mmap lengths (default 4096). */
  pageSizeBytes?: number;
}

function hexKey(v: string | undefined): bigint | undefined {
  if (v === undefined || !/^(0x)?[0-9a-fA-F]+$/.test(v)) return undefined;
  return BigInt(v.startsWith('0x') ? v : `0x${v}`);
}

/**
 * A hex value as a key without BigInt (this runs for every event): lower case, no `0x`,
 * no leading zeros; `0` for zero; undefined for what is not hex (`(fault)`).
 */
function hexNorm(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  let i = v.charCodeAt(0) === 48 && (v.charCodeAt(1) | 32) === 120 ? 2 : 0;
  if (i === v.length) return undefined;
  for (let k = i; k < v.length; k++) {
    const c = v.charCodeAt(k) | 32;
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return undefined;
  }
  while (i < v.length - 1 && v.charCodeAt(i) === 48) i++;
  return v.slice(i).toLowerCase();
}

function num(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = v.startsWith('0x') ? Number.parseInt(v.slice(2), 16) : Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** Feeds uprobe events and user stacks into an AllocationTracker. */
export class UserTraceAnalyzer {
  private readonly threads = new Map<number, OpenCall[]>();
  /** The allocation each thread's next user stack belongs to. */
  private readonly awaiting = new Map<number, TracedAllocation>();
  private readonly pageSize: number;
  /** Probe hits seen, by event name. */
  readonly events: Record<string, number> = {};

  constructor(
    readonly tracker: AllocationTracker,
    readonly opts: UserTraceOptions = {},
  ) {
    this.pageSize = opts.pageSizeBytes ?? 4096;
  }

  onRecord = (r: FtraceRecord): void => {
    if (r.type === 'lost') {
      this.tracker.lost(r.events);
      return;
    }
    if (r.type === 'kernel-stack') return;
    this.tracker.tick(r.timestamp);
    if (r.type === 'user-stack') {
      const a = this.awaiting.get(r.pid);
      if (!a) return;
      this.awaiting.delete(r.pid);
      const addresses = r.frames.map((f) => f.address).filter((x): x is string => x !== undefined);
      a.stackId = this.tracker.internAddresses(addresses);
      return;
    }
    this.events[r.event] = (this.events[r.event] ?? 0) + 1;
    if (this.awaiting.delete(r.pid)) this.tracker.counters.missingStacks++;
    const ret = r.event.endsWith('_ret');
    const fn = ret ? r.event.slice(0, -4) : r.event;
    const args = r.fields ?? parseUprobeBody(r.body, { line: r.line }).args;
    let calls = this.threads.get(r.pid);
    if (!calls) {
      calls = [];
      this.threads.set(r.pid, calls);
    }
    if (!ret) {
      if (fn === 'free' || fn === 'munmap') {
        if (calls.length === 0) this.onRelease(fn, args, r.timestamp);
        return;
      }
      calls.push({ fn, args });
      return;
    }
    // A return: close the matching call (entries of calls whose return was lost are dropped).
    let i = calls.length - 1;
    while (i >= 0 && calls[i]!.fn !== fn) i--;
    if (i < 0) return;
    const call = calls[i]!;
    calls.length = i;
    if (calls.length > 0) return; // made inside another traced call
    const a = this.onReturn(fn, call.args, args.ptr, r);
    if (!a) return;
    // The stack in the event (frame-chain fetch-args s1..sN after the return address),
    // else the user stack record that follows it.
    const inline = inlineStack(r, args);
    if (inline) a.stackId = this.tracker.internAddresses(inline);
    else this.awaiting.set(r.pid, a);
  };

  private onRelease(fn: string, args: Record<string, string>, time: number): void {
    if (fn === 'free') {
      const p = hexNorm(args.ptr);
      if (p !== undefined && p !== '0') this.tracker.free(`h:${p}`, time);
      return;
    }
    const addr = hexKey(args.addr);
    if (addr === undefined) return;
    const key = `m:${addr.toString(16)}`;
    const region = this.tracker.get(key);
    const len = this.roundUp(num(args.len));
    if (!region) return; // not an mmap we saw (or part of one: left as it is)
    this.tracker.free(key, time);
    if (len < region.bytes) {
      // munmap of the head of a mapping: the rest stays outstanding.
      const rest: TracedAllocation = {
        ...region,
        bytes: region.bytes - len,
        pages: (region.bytes - len) / this.pageSize,
      };
      this.tracker.alloc(`m:${(addr + BigInt(len)).toString(16)}`, rest);
      this.tracker.counters.allocs--;
    }
  }

  private roundUp(n: number): number {
    return Math.ceil(n / this.pageSize) * this.pageSize;
  }

  private onReturn(
    fn: string,
    args: Record<string, string>,
    retval: string | undefined,
    r: { timestamp: number; pid: number; comm: string },
  ): TracedAllocation | undefined {
    const base = { time: r.timestamp, pid: r.pid, comm: r.comm };
    if (fn === 'mmap') {
      const ptr = hexKey(retval);
      if (ptr === undefined || ptr === MAP_FAILED || (num(args.flags) & MAP_ANONYMOUS) === 0)
        return undefined;
      const bytes = this.roundUp(num(args.len));
      const a: TracedAllocation = { kind: 'mmap', bytes, pages: bytes / this.pageSize, ...base };
      this.tracker.alloc(`m:${ptr.toString(16)}`, a);
      return a;
    }
    const ptr = hexNorm(retval);
    if (fn === 'realloc') {
      const old = hexNorm(args.ptr);
      if (old !== undefined && old !== '0' && (ptr !== '0' || num(args.size) === 0))
        this.tracker.free(`h:${old}`, r.timestamp);
    }
    if (ptr === undefined || ptr === '0') return undefined;
    const bytes = fn === 'calloc' ? num(args.nmemb) * num(args.size) : num(args.size);
    const a: TracedAllocation = { kind: fn as AllocKind, bytes, pages: 0, ...base };
    this.tracker.alloc(`h:${ptr}`, a);
    return a;
  }
}

/**
 * The stack a return event carries itself: the return address (text: `(0xRET <- ...)`,
 * raw: `__probe_ret_ip`) and the frame-chain args s1, s2, ... up to the first 0 or fault.
 */
function inlineStack(r: FtraceEvent, args: Record<string, string>): string[] | undefined {
  if (args.s1 === undefined) return undefined;
  // Text prints the return address in hex; a raw event's __probe_ret_ip is decimal.
  const raw = r.fields?.__probe_ret_ip;
  const ret = raw !== undefined ? BigInt(raw).toString(16) : hexNorm(parseUprobeBody(r.body).returnAddress);
  const out: string[] = [];
  // The chain ends at an absent arg, a 0, or `(fault)` (an address it could not read).
  for (let i = 0, a = ret; a !== undefined && a !== '0'; a = hexNorm(args[`s${++i}`]))
    out.push(a.padStart(16, '0'));
  return out;
}

/** Resolve user stacks with a symbolizer (the tracker's `resolve` option). */
export function userStackResolver(sym: UserSymbolizer): (s: TraceStack) => Frame[] {
  return (s) => s.frames ?? sym.frames(s.addresses ?? []);
}

/**
 * The culprit of a user stack: the first frame outside the C library (a strdup or fopen
 * inside libc is its caller's allocation), else the first frame.
 */
export function userCulprit(libcName: string | undefined): (frames: readonly Frame[]) => Frame | undefined {
  return (frames) => frames.find((f) => f.module !== libcName) ?? frames[0];
}
