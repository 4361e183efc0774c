/**
 * The output of `eu-addr2line -a -f -i` (elfutils 0.188), pure. For each address read on
 * stdin it prints the address, then pairs of lines (function, FILE:LINE[:COLUMN]),
 * innermost inlined function first, the function that holds the code last:
 *
 *   0xffffffff8113ae4b
 *   slab_post_alloc_hook inlined at mm/slub.c:4231:2 in __kmalloc_noprof
 *   mm/slub.c:4186:3
 *   slab_alloc_node
 *   mm/slub.c:4231:2
 *   __kmalloc_noprof
 *   mm/slub.c:4378:9
 *
 * Only the first function line says ` inlined at … in …`; how many pairs follow is not
 * printed. So an answer ends where the next address line starts, and the process
 * wrapper sends one more (sentinel) address after each batch to end its last answer.
 * An address without line information prints `??` and `??:0`.
 */

/** One source position: the function it is in (empty when DWARF does not name it), and where. */
export interface CodeLocation {
  function: string;
  file: string;
  line: number;
  column?: number;
}

/** `FILE:LINE[:COLUMN]` (elfutils prints the column when the line table has one). */
export function parseLocationLine(text: string): { file: string; line: number; column?: number } | undefined {
  const m = /^(.*?):(\d+)(?::(\d+))?$/.exec(text);
  if (!m || m[1] === '??' || m[1] === '' || m[2] === '0') return undefined;
  const loc: { file: string; line: number; column?: number } = { file: m[1]!, line: Number(m[2]) };
  if (m[3] !== undefined && m[3] !== '0') loc.column = Number(m[3]);
  return loc;
}

/** The lines of one answer after its address line, as an inline chain (innermost first). */
export function parseAnswer(lines: readonly string[]): CodeLocation[] {
  const chain: CodeLocation[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    let fn = lines[i]!;
    const at = fn.indexOf(' inlined at ');
    if (at >= 0) fn = fn.slice(0, at);
    const loc = parseLocationLine(lines[i + 1]!);
    if (loc) chain.push({ function: fn === '??' ? '' : fn, ...loc });
  }
  return chain;
}

const ADDRESS_LINE = /^0x[0-9a-fA-F]+$/;

/** Splits the output stream into answers: an address line closes the answer before it. */
export class Addr2lineReader {
  private lines: string[] | undefined;

  /**
   * Feed one line. When it starts an answer, returns the answer before it (undefined for
   * the first); returns undefined while an answer goes on.
   */
  push(line: string): { previous: CodeLocation[] | undefined } | undefined {
    if (ADDRESS_LINE.test(line)) {
      const prev = this.lines;
      this.lines = [];
      return { previous: prev ? parseAnswer(prev) : undefined };
    }
    if (!this.lines)
      throw new Error(`eu-addr2line: expected an address line first, found ${JSON.stringify(line)}`);
    this.lines.push(line);
    return undefined;
  }
}
