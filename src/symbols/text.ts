/**
 * Kernel frames inside any text, and the annotation added after each, pure. A frame is
 * `symbol+0xOFF[/0xLEN][ [module[ build-id]]]` wherever it stands in a line:
 *
 *   page_owner, slab traces    ` __kmalloc_noprof+0x14f/0x1c5`
 *   kmemleak < 6.2, dump_stack `    [<ffffffffa0000021>] msl_slab_leak+0x10/0x3c [msl_leaky]`
 *   vmallocinfo                `0xffffc900… 12288 msl_vmalloc_leak+0x25/0x47 [msl_leaky] pages=2`
 *   dmesg                      `[ 12.3] ? msl_page_leak+0x21/0x43 [msl_leaky 19182e29…]`
 *                              `RIP: 0010:msl_oops+0x12/0x30 [msl_leaky]` (the instruction itself)
 *
 * The module's build-id is printed inside the brackets since 5.14 with
 * CONFIG_STACKTRACE_BUILD_ID. `RIP:`, `EIP:`, `pc :` and `PC is at` lines name the
 * faulting instruction; every other frame is a return address.
 */
import { type FrameSource, formatSource } from '../model/frame.js';
import type { FrameQuery, ResolvedFrame } from './symbolizer.js';

export interface FrameInText {
  /** Where the frame (with its module bracket) starts and ends in the line. */
  start: number;
  end: number;
  frame: FrameQuery;
}

const FRAME =
  /(?<![\w.$])([A-Za-z_$][\w.$]*)\+0x([0-9a-fA-F]+)(?:\/0x([0-9a-fA-F]+))?(?: \[([\w-]+)(?: ([0-9a-f]{16,64}))?\])?/g;
// what may stand between `RIP:` and the frame: `0010:`, `[<ffffffff81234567>]`, blanks
const EXACT = /(?:\b(?:RIP|EIP|IP):[\s:0-9a-fA-Fx[\]<>]*|\bpc\s*:\s*|\b(?:PC|EIP) is at\s+)$/;

/** Every frame in one line, left to right. */
export function framesInLine(line: string): FrameInText[] {
  const out: FrameInText[] = [];
  FRAME.lastIndex = 0;
  for (let m = FRAME.exec(line); m; m = FRAME.exec(line)) {
    const frame: FrameQuery = { func: m[1]!, offset: Number.parseInt(m[2]!, 16) };
    if (m[3] !== undefined) frame.length = Number.parseInt(m[3], 16);
    if (m[4] !== undefined) frame.module = m[4];
    if (m[5] !== undefined) frame.buildId = m[5];
    if (EXACT.test(line.slice(0, m.index))) frame.exact = true;
    out.push({ start: m.index, end: m.index + m[0].length, frame });
  }
  return out;
}

/** The source of a resolved frame as frames carry it (Frame.source): columns left out, since people and editors read the line. */
export function frameSource(r: Pick<ResolvedFrame, 'locations'>): FrameSource | undefined {
  const chain = r.locations;
  const own = chain[chain.length - 1];
  if (!own) return undefined;
  const src: FrameSource = { file: own.file, line: own.line };
  if (chain.length > 1)
    src.inlined = chain.slice(0, -1).map((l) => ({ function: l.function, file: l.file, line: l.line }));
  return src;
}

/**
 * What follows a resolved frame: its own `file:line`, then the functions inlined at that
 * point, innermost first, each with where it is:
 *
 *   msl_leaky.c:77 (inlined kmalloc_noprof include/linux/slab.h:898)
 */
export function formatResolution(
  r: Pick<ResolvedFrame, 'locations'>,
  opts: { inlines?: boolean } = {},
): string {
  const src = frameSource(r);
  return src ? formatSource(src, opts.inlines !== false) : '';
}

/** The line with ` ANNOTATION` inserted after each frame that has one (undefined: left as it is). */
export function annotateLine(
  line: string,
  found: readonly FrameInText[],
  annotations: readonly (string | undefined)[],
): string {
  let out = '';
  let at = 0;
  found.forEach((f, i) => {
    const a = annotations[i];
    if (a === undefined || a === '') return;
    out += `${line.slice(at, f.end)} ${a}`;
    at = f.end;
  });
  return out + line.slice(at);
}
