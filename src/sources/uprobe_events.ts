import { parseError } from '../model/errors.js';
import { numberedLines, type ParseOptions } from './text.js';

/**
 * uprobe_events, the tracefs file that defines uprobes (Documentation/trace/uprobetracer.rst):
 *
 *   p[:[GRP/]EVENT] PATH:OFFSET [FETCHARGS]     entry probe
 *   r[:[GRP/]EVENT] PATH:OFFSET [FETCHARGS]     return probe (uretprobe)
 *   -:[GRP/]EVENT                               remove
 *
 * Reading it lists the defined probes as `p:GRP/EVENT PATH:0x%016lx ARGS` (the offset is
 * printed zero-padded since 4.x; `PATH:0x...(0x...)` with a reference counter, 4.20+).
 * FETCHARGS used by memsleuth: `%di`/`%si` (x86_64 argument registers), `$retval`,
 * `+0(%sp)` (the return address at function entry), with `:u64`/`:x64` types.
 */
export interface UprobeDefinition {
  kind: 'p' | 'r';
  group: string;
  event: string;
  path: string;
  /** File offset of the probed instruction. */
  offset: bigint;
  /** `name=FETCHARG[:type]` as written. */
  args: string[];
  line: number;
}

const DEF = /^([pr]):([^/\s]+)\/(\S+)\s+(\S+):0x([0-9a-fA-F]+)(?:\(0x[0-9a-fA-F]+\))?((?:\s+\S+)*)\s*$/;

export function parseUprobeEvents(text: string, opts: ParseOptions = {}): UprobeDefinition[] {
  const file = opts.file ?? 'uprobe_events';
  const out: UprobeDefinition[] = [];
  for (const { text: t, line } of numberedLines(text)) {
    if (t.trim() === '' || t.startsWith('#')) continue;
    const m = DEF.exec(t);
    if (!m) throw parseError(file, line, 'a probe `p:GROUP/EVENT PATH:0xOFFSET [ARGS]`', t);
    out.push({
      kind: m[1] as 'p' | 'r',
      group: m[2]!,
      event: m[3]!,
      path: m[4]!,
      offset: BigInt(`0x${m[5]}`),
      args: m[6]!.trim() === '' ? [] : m[6]!.trim().split(/\s+/),
      line,
    });
  }
  return out;
}

/** The line that defines a probe (what is appended to uprobe_events). */
export function formatUprobeDefinition(d: Omit<UprobeDefinition, 'line'>): string {
  if (/\s/.test(d.path)) throw new Error(`uprobe path with white space cannot be probed: ${d.path}`);
  return `${d.kind}:${d.group}/${d.event} ${d.path}:0x${d.offset.toString(16)}${d.args.length ? ` ${d.args.join(' ')}` : ''}`;
}

/** The line that removes a probe. */
export function formatUprobeRemoval(group: string, event: string): string {
  return `-:${group}/${event}`;
}

/** The frame pointer register, by ELF e_machine (a frame record is [saved fp, return address]). */
export const FRAME_POINTER: Record<number, string> = { 62: '%bp', 183: '%x29' };

/**
 * Fetch-args that walk the frame-pointer chain at a function's return: `s1=+8(%bp)` is
 * the return address into the caller's caller, `s2=+8(+0(%bp))` the next one, and so on.
 * With the return address the event itself carries (`(0xRET <- 0xFUNC)`), that is the
 * allocation's stack, in the event, at the cost of a few 8-byte user reads: no
 * userstacktrace walk and no stack record after every event. A broken chain (code built
 * without frame pointers) ends in 0 or `(fault)`.
 */
export function frameChainArgs(machine: number, depth: number): string[] {
  const fp = FRAME_POINTER[machine];
  if (!fp) throw new Error(`no frame pointer register known for ELF machine ${machine}`);
  const out: string[] = [];
  for (let i = 1; i <= depth; i++) out.push(`s${i}=+8(${'+0('.repeat(i - 1)}${fp}${')'.repeat(i - 1)}):x64`);
  return out;
}

/** Argument registers of the C calling convention, by ELF e_machine. */
export const ARG_REGISTERS: Record<number, readonly string[]> = {
  // EM_X86_64: System V AMD64 ABI (rdi, rsi, rdx, rcx, r8, r9).
  62: ['%di', '%si', '%dx', '%cx', '%r8', '%r9'],
  // EM_AARCH64: AAPCS64 (x0..x5).
  183: ['%x0', '%x1', '%x2', '%x3', '%x4', '%x5'],
};

/**
 * The libc functions memsleuth probes in `trace user`, with the arguments read at entry
 * (by position) and whether a return probe reads the result. Event names are the
 * function (`malloc`) and `<function>_ret`.
 */
export interface LibcProbe {
  fn: 'malloc' | 'calloc' | 'realloc' | 'free' | 'mmap' | 'munmap';
  /** Argument names and fetch types, in call order. */
  args: readonly (readonly [string, string])[];
  /** A uretprobe reads `$retval` as `ptr`. */
  ret: boolean;
}

export const LIBC_PROBES: readonly LibcProbe[] = [
  { fn: 'malloc', args: [['size', 'u64']], ret: true },
  {
    fn: 'calloc',
    args: [
      ['nmemb', 'u64'],
      ['size', 'u64'],
    ],
    ret: true,
  },
  {
    fn: 'realloc',
    args: [
      ['ptr', 'x64'],
      ['size', 'u64'],
    ],
    ret: true,
  },
  { fn: 'free', args: [['ptr', 'x64']], ret: false },
  {
    fn: 'mmap',
    args: [
      ['addr', 'x64'],
      ['len', 'u64'],
      ['prot', 'x32'],
      ['flags', 'x32'],
    ],
    ret: true,
  },
  {
    fn: 'munmap',
    args: [
      ['addr', 'x64'],
      ['len', 'u64'],
    ],
    ret: false,
  },
];

/** The uprobe_events lines for one probe: the entry probe and, if it has one, the return probe. */
export function libcProbeDefinitions(
  p: LibcProbe,
  group: string,
  path: string,
  offset: bigint,
  machine: number,
  /** Frames to read from the frame-pointer chain at the return (0: none, use userstacktrace). */
  stackDepth = 0,
): Omit<UprobeDefinition, 'line'>[] {
  const regs = ARG_REGISTERS[machine];
  if (!regs) throw new Error(`no argument registers known for ELF machine ${machine}`);
  const out: Omit<UprobeDefinition, 'line'>[] = [
    { kind: 'p', group, event: p.fn, path, offset, args: p.args.map(([n, t], i) => `${n}=${regs[i]}:${t}`) },
  ];
  if (p.ret)
    out.push({
      kind: 'r',
      group,
      event: `${p.fn}_ret`,
      path,
      offset,
      args: ['ptr=$retval:x64', ...(stackDepth > 0 ? frameChainArgs(machine, stackDepth) : [])],
    });
  return out;
}
