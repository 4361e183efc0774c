import { parseError } from '../model/errors.js';
import { type Frame, parseFrame } from '../model/frame.js';
import { numberedLines, type ParseOptions } from './text.js';

/**
 * What SLUB's per-cache `trace` flag (slub_debug=T,<cache>, or writing 1 to
 * /sys/kernel/slab/<cache>/trace before 5.9 made it read-only) prints in the kernel log
 * for every allocation and free of that cache (mm/slub.c trace()):
 *
 *   TRACE kmalloc-96 alloc 0x000000001f9b3c2a inuse=12 fp=0x0000000000000000
 *   CPU: 0 PID: 1 Comm: sh Not tainted 6.1.192 #1
 *   Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS ...
 *   Call Trace:
 *    <TASK>
 *    dump_stack_lvl+0x45/0x5e
 *    alloc_debug_processing+0x...
 *    ...
 *    </TASK>
 *
 * A free also prints the object (`Object 0x...: 6b 6b ...`, print_hex_dump) before its
 * stack. Lines come from `dmesg` (`[   12.345678] `), from /dev/kmsg (`6,1234,5678,-;`),
 * or bare. Frames print as `func+0x1d/0x60 [mod]`, with `? ` for unreliable ones (kept
 * out) and `[<ffffffff81234567>] ` before 4.x's; ` <TASK>`/` <IRQ>` markers are skipped.
 */
export interface SlubTraceRecord {
  cache: string;
  op: 'alloc' | 'free';
  /** The object's address as printed (`%p`: hashed since 4.15). */
  object: string;
  inuse: number;
  /** The call trace, innermost first, without dump_stack's own frames. */
  frames: Frame[];
  comm?: string;
  pid?: number;
  /** Frees: the object's size, from the hex dump of it the kernel prints (object_size). */
  objectBytes?: number;
  line: number;
}

const PREFIX = /^(?:\d+,\d+,\d+,[^;]*;|\[\s*\d+\.\d+\]\s?|<\d>\s*)/;
const TRACE = /^TRACE (\S+) (alloc|free) (0x[0-9a-fA-F]+|\(ptrval\)|\(null\)) inuse=(-?\d+) fp=\S+$/;
const CPU = /^CPU: \d+ (?:UID: \d+ )?PID: (\d+) Comm: (.+?) (?:Not tainted|Tainted)/;
// print_hex_dump(DUMP_PREFIX_ADDRESS, 16 bytes a row, groups of 1): `Object 0000000012345678: 6b 6b ...  kkkk`
const OBJECT_ROW = /^Object [0-9a-fA-F]+: ((?:[0-9a-fA-F]{2} ){0,15}[0-9a-fA-F]{2})(?:\s|$)/;
/** dump_stack's own frames and SLUB's debug path above the caller. */
const DUMP =
  /^(dump_stack|dump_stack_lvl|show_stack|trace|trace\.\w+|alloc_debug_processing|free_debug_processing|__dump_stack)$/;

export function parseSlubTraceLog(text: string, opts: ParseOptions = {}): SlubTraceRecord[] {
  const file = opts.file ?? 'kernel log';
  const out: SlubTraceRecord[] = [];
  let cur: SlubTraceRecord | undefined;
  let inTrace = false;
  for (const { text: raw, line } of numberedLines(text)) {
    const t = raw.replace(PREFIX, '');
    const m = TRACE.exec(t.trim());
    if (m) {
      cur = {
        cache: m[1]!,
        op: m[2] as 'alloc' | 'free',
        object: m[3]!,
        inuse: Number(m[4]),
        frames: [],
        line,
      };
      out.push(cur);
      inTrace = false;
      continue;
    }
    if (!cur) continue; // everything else the kernel logs
    const cpu = CPU.exec(t.trim());
    if (cpu && cur.frames.length === 0 && !inTrace) {
      cur.pid = Number(cpu[1]);
      cur.comm = cpu[2]!;
      continue;
    }
    if (t.trim() === 'Call Trace:') {
      if (cur.frames.length || inTrace) throw parseError(file, line, 'one call trace per TRACE line', t);
      inTrace = true;
      continue;
    }
    if (!inTrace) {
      const row = OBJECT_ROW.exec(t.trim());
      if (row && cur.op === 'free') cur.objectBytes = (cur.objectBytes ?? 0) + row[1]!.split(' ').length;
      continue; // Hardware name: and the like
    }
    const s = t.trim();
    if (s === '<TASK>' || s === '<IRQ>' || s === '</IRQ>' || s === '<NMI>' || s === '</NMI>') continue;
    if (s === '</TASK>' || s === '') {
      inTrace = false;
      cur = undefined;
      continue;
    }
    if (/^\?\s/.test(s) || /^\[<[0-9a-f]+>\]\s+\?\s/.test(s)) continue; // unreliable guess
    const f = parseFrame(s);
    if (!f) {
      // Before 4.x stacks had no </TASK>: the trace ends at the first line that is not a frame.
      inTrace = false;
      cur = undefined;
      continue;
    }
    if (cur.frames.length === 0 && DUMP.test(f.func)) continue;
    cur.frames.push(f);
  }
  return out;
}
