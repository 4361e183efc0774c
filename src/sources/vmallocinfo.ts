import { parseError } from '../model/errors.js';
import { type Frame, parseFrame } from '../model/frame.js';
import { kernelLines, type ParseOptions, safeNumber } from './text.js';

/**
 * What a line describes:
 * - `area`: a vm_struct (vmalloc, vmap, ioremap...): caller, pages=, phys=, flags;
 * - `vm_map_ram`: a vmap_area from vm_map_ram() (no vm_struct, no caller; 4.13+);
 * - `unpurged`: a lazily freed area awaiting a TLB flush, "unpurged vm_area" (4.13+). Its pages are
 *   already freed; only the virtual range is still reserved.
 */
export type VmallocKind = 'area' | 'vm_map_ram' | 'unpurged';

export interface VmallocArea {
  /** Start address as printed (`0x%pK`: hashed or zero unless kptr_restrict allows). */
  startAddr: string;
  endAddr: string;
  /**
   * Printed size: end - start. For `area` lines it includes one guard page unless the area was
   * made with VM_NO_GUARD (not shown in the file): vmalloc(8 KiB) prints 12288 with pages=2 on
   * every kernel from 2.6 to 6.18 (see mm/vmalloc.c __get_vm_area_node, `size += PAGE_SIZE`).
   */
  sizeBytes: number;
  kind: VmallocKind;
  /** The caller (`%pS`), e.g. `demo_vbuf_grow+0x20/0x37 [leaky]`; absent when none was recorded. */
  caller?: Frame;
  /** `pages=N`: pages backing the area (vmalloc only; counted in small pages even for huge mappings). */
  pages?: number;
  /** `phys=...`: physical address of an ioremap, as printed (`0x...` since %pa in 3.x; bare hex before). */
  physAddr?: string;
  /** Type words in file order: ioremap, vmalloc, vmap, user, dma-coherent, vpages, sparse. */
  flags: string[];
  /** `N<node>=<pages>` on NUMA kernels. */
  nodePages: Record<number, number>;
  /** 1-based line in the file. */
  line: number;
}

export interface Vmallocinfo {
  areas: VmallocArea[];
}

// mm/vmalloc.c s_show / vmalloc_info_show: "0x%pK-0x%pK %7ld" then " %pS" caller, " pages=%d",
// " phys=%pa" (" phys=%llx" before 3.x), then one word per flag: ioremap, vmalloc, vmap, user,
// dma-coherent (4.x+ on some arches), vpages, sparse (VM_SPARSE, 6.9+), then " N%u=%u" per node.
// Since 4.13 areas without a vm_struct print "... vm_map_ram" or "... unpurged vm_area".
const HEAD = /^0x([0-9a-fA-F]+)-0x([0-9a-fA-F]+)\s+(\d+)(?:\s+(.*?))?\s*$/;
const FLAGS = new Set(['ioremap', 'vmalloc', 'vmap', 'user', 'dma-coherent', 'vpages', 'sparse']);
const EXPECTED = '"0x<start>-0x<end> <size> [caller] [pages=N] [phys=ADDR] [flags...] [N<node>=N...]"';

/**
 * Parse /proc/vmallocinfo. Checked beyond the line format, where the kernel guarantees it:
 * no line repeats (every area has its own address; addresses are printed with %pK, hashed
 * since 4.15 or all zero under kptr_restrict=2, so only a whole line at a non-zero address
 * counts as a repeat) and an area holds at most size / 4 KiB pages.
 */
export function parseVmallocinfo(text: string, opts: ParseOptions = {}): Vmallocinfo {
  const file = opts.file ?? '/proc/vmallocinfo';
  const areas: VmallocArea[] = [];
  const starts = new Map<string, number>();
  for (const { text: t, line } of kernelLines(text, file, EXPECTED, opts)) {
    if (t.trim() === '') continue;
    const m = HEAD.exec(t);
    if (!m) throw parseError(file, line, EXPECTED, t);
    const sizeBytes = safeNumber(m[3]!, file, line, 'the size');
    if (/[1-9a-f]/i.test(m[1]!)) {
      const other = starts.get(t);
      if (other !== undefined)
        throw parseError(file, line, `each area once (the same line is line ${other})`, t);
      starts.set(t, line);
    }
    const area: VmallocArea = {
      startAddr: `0x${m[1]!}`,
      endAddr: `0x${m[2]!}`,
      sizeBytes,
      kind: 'area',
      flags: [],
      nodePages: {},
      line,
    };
    const rest = m[4] ?? '';
    if (rest === 'unpurged vm_area') area.kind = 'unpurged';
    else if (rest === 'vm_map_ram') area.kind = 'vm_map_ram';
    else parseAreaTail(rest, area, file, line, t);
    if (area.pages !== undefined && area.pages * 4096 > sizeBytes)
      throw parseError(file, line, `pages=N within the size (${sizeBytes} bytes)`, t);
    areas.push(area);
  }
  return { areas };
}

function parseAreaTail(rest: string, area: VmallocArea, file: string, line: number, t: string): void {
  const tokens = rest === '' ? [] : rest.split(/\s+/);
  let i = 0;
  const first = tokens[0];
  if (first !== undefined && !FLAGS.has(first) && !first.includes('=')) {
    // The caller: `func+0x1a/0x40`, optionally followed by `[module]`, or a raw address.
    const next = tokens[1];
    const withModule = next !== undefined && /^\[[^\]\s]+\]$/.test(next);
    const frame = parseFrame(withModule ? `${first} ${next}` : first);
    if (!frame) throw parseError(file, line, `a caller like "func+0x1a/0x40 [module]" in ${EXPECTED}`, t);
    area.caller = frame;
    i = withModule ? 2 : 1;
  }
  for (; i < tokens.length; i++) {
    const tok = tokens[i]!;
    const pages = /^pages=(\d+)$/.exec(tok);
    const phys = /^phys=((?:0x)?[0-9a-fA-F]+)$/.exec(tok);
    const node = /^N(\d+)=(\d+)$/.exec(tok);
    if (pages) area.pages = safeNumber(pages[1]!, file, line, 'pages=N');
    else if (phys) area.physAddr = phys[1]!;
    else if (node)
      area.nodePages[safeNumber(node[1]!, file, line, 'a node')] = safeNumber(
        node[2]!,
        file,
        line,
        'N<node>=N',
      );
    else if (FLAGS.has(tok)) area.flags.push(tok);
    else {
      throw parseError(
        file,
        line,
        `pages=N, phys=ADDR, N<node>=N or one of ${[...FLAGS].join(', ')}`,
        `${JSON.stringify(tok)} in ${t}`,
      );
    }
  }
}
