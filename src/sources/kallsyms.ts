import { parseError } from '../model/errors.js';
import type { Frame } from '../model/frame.js';
import { numberedLines, type ParseOptions } from './text.js';

/**
 * /proc/kallsyms: `ffffffff81000000 T _stext` and `ffffffffc0123000 t msl_slab_leak
 * [msl_leaky]`, one symbol a line. Addresses print as zeros to readers without
 * CAP_SYSLOG (kptr_restrict), which makes the table useless: that is an error here.
 * Only text symbols (t, T, w, W) are kept: stacks hold return addresses into code.
 */
export class KernelSymbols {
  private constructor(
    private readonly addrs: BigUint64Array,
    private readonly names: string[],
    private readonly modules: (string | undefined)[],
  ) {}

  get size(): number {
    return this.names.length;
  }

  static parse(text: string, opts: ParseOptions = {}): KernelSymbols {
    const file = opts.file ?? '/proc/kallsyms';
    const rows: { addr: bigint; name: string; module: string | undefined }[] = [];
    let nonzero = false;
    for (const { text: t, line } of numberedLines(text)) {
      if (t === '') continue;
      const sp1 = t.indexOf(' ');
      const sp2 = t.indexOf(' ', sp1 + 1);
      if (sp1 <= 0 || sp2 !== sp1 + 2) throw parseError(file, line, '`ADDRESS TYPE NAME [MODULE]`', t);
      const type = t.charAt(sp1 + 1);
      if (type !== 't' && type !== 'T' && type !== 'w' && type !== 'W') continue;
      const hex = t.slice(0, sp1);
      if (!/^[0-9a-fA-F]+$/.test(hex)) throw parseError(file, line, 'a hex address', t);
      let rest = t.slice(sp2 + 1);
      let module: string | undefined;
      const tab = rest.indexOf('\t');
      if (tab >= 0) {
        module = rest.slice(tab + 1).replace(/^\[|\]$/g, '');
        rest = rest.slice(0, tab);
      }
      const addr = BigInt(`0x${hex}`);
      if (addr !== 0n) nonzero = true;
      rows.push({ addr, name: rest, module });
    }
    if (rows.length > 0 && !nonzero)
      throw parseError(
        file,
        undefined,
        'symbol addresses',
        'all addresses are 0 (kptr_restrict hides them)',
        {
          hint: 'read it as root, or set kernel.kptr_restrict to 0 or 1',
        },
      );
    rows.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
    const addrs = new BigUint64Array(rows.length);
    rows.forEach((r, i) => {
      addrs[i] = r.addr;
    });
    return new KernelSymbols(
      addrs,
      rows.map((r) => r.name),
      rows.map((r) => r.module),
    );
  }

  /**
   * The frame of a code address: `func+0xOFF/0xLEN [module]`, the length being the
   * distance to the next symbol. Unknown addresses give `0xADDRESS`.
   */
  frame(addr: bigint): Frame {
    const a = this.addrs;
    let lo = 0;
    let hi = a.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid]! <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return { func: `0x${addr.toString(16)}` };
    // Aliases at one address: the last one sorted is as good as any; take the next distinct start.
    let next = found + 1;
    while (next < a.length && a[next] === a[found]) next++;
    const f: Frame = { func: this.names[found]!, offset: Number(addr - a[found]!) };
    if (next < a.length) {
      const len = Number(a[next]! - a[found]!);
      // Past the end of the last symbol of a region (a gap before the next): unknown.
      if (f.offset! >= len && this.modules[found] !== this.modules[next])
        return { func: `0x${addr.toString(16)}` };
      f.length = len;
    }
    const m = this.modules[found];
    if (m !== undefined) f.module = m;
    return f;
  }
}
