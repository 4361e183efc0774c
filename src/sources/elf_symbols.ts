import { parseError } from '../model/errors.js';

/**
 * The symbol tables of an ELF file (executable or shared object), read from its bytes:
 * what uprobes need (the file offset of `malloc` in the libc a process maps) and what
 * turns a user-space return address into a function name. Pure: a Buffer in, tables out.
 *
 * Layout (System V gABI, "ELF-64 Object File Format" 1.5, and the 32-bit original):
 * - e_ident: magic 7f 'E' 'L' 'F', EI_CLASS 1 (32-bit) or 2 (64-bit), EI_DATA 1 (little
 *   endian) or 2 (big endian).
 * - Section headers (e_shoff, e_shentsize, e_shnum; e_shnum 0 with the real count in
 *   section 0's sh_size when there are 0xff00 or more) locate SHT_SYMTAB (2, stripped by
 *   distributions) and SHT_DYNSYM (11, always present in shared objects), each linked
 *   (sh_link) to its string table.
 * - Program headers (e_phoff) give the PT_LOAD segments: a symbol's value is a virtual
 *   address; uprobes take a file offset = value - p_vaddr + p_offset of its segment.
 */
export interface ElfSymbol {
  name: string;
  /** st_value: the virtual address in the file's own address space. */
  value: bigint;
  size: number;
  /** STT_*: 0 NOTYPE, 1 OBJECT, 2 FUNC, 10 GNU_IFUNC... */
  type: number;
  /** STB_*: 0 LOCAL, 1 GLOBAL, 2 WEAK, 10 GNU_UNIQUE. */
  bind: number;
  /** Section index; 0 (SHN_UNDEF) for symbols the file imports. */
  shndx: number;
  /** `symtab` or `dynsym`. */
  table: 'symtab' | 'dynsym';
}

export interface ElfSegment {
  /** PT_LOAD only. */
  offset: bigint;
  vaddr: bigint;
  fileSize: bigint;
  memSize: bigint;
  /** PF_X 1, PF_W 2, PF_R 4. */
  flags: number;
}

export interface ElfFile {
  class: 32 | 64;
  littleEndian: boolean;
  /** e_type: 2 ET_EXEC (fixed addresses), 3 ET_DYN (shared object or PIE). */
  type: number;
  machine: number;
  loads: ElfSegment[];
  /** Defined function symbols (FUNC and GNU_IFUNC), symtab first, sorted by address. */
  functions: ElfSymbol[];
  /** Every defined symbol by name (symtab wins over dynsym), without `@VERSION`. */
  byName: Map<string, ElfSymbol>;
  /** GNU build id (NT_GNU_BUILD_ID), hex, when the file has one. */
  buildId?: string;
}

const SHT_SYMTAB = 2;
const SHT_NOTE = 7;
const SHT_DYNSYM = 11;
const PT_LOAD = 1;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const NT_GNU_BUILD_ID = 3;

export interface ElfParseOptions {
  /** Name for error messages (the file path). */
  file?: string;
}

export function parseElf(buf: Buffer, opts: ElfParseOptions = {}): ElfFile {
  const file = opts.file ?? 'ELF file';
  const bad = (expected: string, found: string, offset?: number): never => {
    throw parseError(file, undefined, expected, found, offset === undefined ? {} : { offset });
  };
  if (buf.length < 16 || buf.readUInt32BE(0) !== 0x7f454c46) {
    bad('the ELF magic 7f 45 4c 46', buf.subarray(0, 4).toString('hex') || '<empty>', 0);
  }
  const cls = buf[4];
  const data = buf[5];
  if (cls !== 1 && cls !== 2) bad('EI_CLASS 1 (32-bit) or 2 (64-bit)', String(cls), 4);
  if (data !== 1 && data !== 2) bad('EI_DATA 1 (little endian) or 2 (big endian)', String(data), 5);
  const is64 = cls === 2;
  const le = data === 1;
  const need = (off: number, len: number, what: string) => {
    if (off < 0 || off + len > buf.length)
      bad(`${what} inside the file (${buf.length} bytes)`, `offset ${off}`, off);
  };
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number) => (le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  const addr = (o: number): bigint => (is64 ? u64(o) : BigInt(u32(o)));
  const off = (o: number): number => Number(addr(o));
  need(0, is64 ? 64 : 52, 'the ELF header');
  const type = u16(16);
  const machine = u16(18);
  const phoff = off(is64 ? 32 : 28);
  const shoff = off(is64 ? 40 : 32);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  const shentsize = u16(is64 ? 58 : 46);
  let shnum = u16(is64 ? 60 : 48);

  const loads: ElfSegment[] = [];
  if (phoff !== 0) {
    need(phoff, phentsize * phnum, 'the program headers');
    for (let i = 0; i < phnum; i++) {
      const p = phoff + i * phentsize;
      if (u32(p) !== PT_LOAD) continue;
      loads.push(
        is64
          ? {
              flags: u32(p + 4),
              offset: u64(p + 8),
              vaddr: u64(p + 16),
              fileSize: u64(p + 32),
              memSize: u64(p + 40),
            }
          : {
              offset: BigInt(u32(p + 4)),
              vaddr: BigInt(u32(p + 8)),
              fileSize: BigInt(u32(p + 16)),
              memSize: BigInt(u32(p + 20)),
              flags: u32(p + 24),
            },
      );
    }
  }

  interface Section {
    type: number;
    offset: number;
    size: number;
    link: number;
    entsize: number;
  }
  const sections: Section[] = [];
  if (shoff !== 0) {
    need(shoff, shentsize, 'the section headers');
    if (shnum === 0) shnum = Number(is64 ? u64(shoff + 32) : u32(shoff + 20));
    need(shoff, shentsize * shnum, 'the section headers');
    for (let i = 0; i < shnum; i++) {
      const s = shoff + i * shentsize;
      sections.push(
        is64
          ? {
              type: u32(s + 4),
              offset: Number(u64(s + 24)),
              size: Number(u64(s + 32)),
              link: u32(s + 40),
              entsize: Number(u64(s + 56)),
            }
          : {
              type: u32(s + 4),
              offset: u32(s + 16),
              size: u32(s + 20),
              link: u32(s + 24),
              entsize: u32(s + 36),
            },
      );
    }
  }

  const functions: ElfSymbol[] = [];
  const byName = new Map<string, ElfSymbol>();
  for (const kind of [SHT_SYMTAB, SHT_DYNSYM] as const) {
    const table = kind === SHT_SYMTAB ? 'symtab' : 'dynsym';
    for (const sec of sections.filter((s) => s.type === kind)) {
      const strtab = sections[sec.link];
      if (!strtab) bad(`a string table at section ${sec.link} (sh_link of .${table})`, 'none');
      need(sec.offset, sec.size, `.${table}`);
      need(strtab!.offset, strtab!.size, `the string table of .${table}`);
      const ent = sec.entsize || (is64 ? 24 : 16);
      const strEnd = strtab!.offset + strtab!.size;
      for (let p = sec.offset + ent; p + ent <= sec.offset + sec.size; p += ent) {
        const nameOff = u32(p);
        const info = is64 ? buf[p + 4]! : buf[p + 12]!;
        const shndx = is64 ? u16(p + 6) : u16(p + 14);
        const value = is64 ? u64(p + 8) : BigInt(u32(p + 4));
        const size = is64 ? Number(u64(p + 16)) : u32(p + 8);
        if (shndx === 0) continue; // imported
        const start = strtab!.offset + nameOff;
        if (start >= strEnd) continue;
        let end = buf.indexOf(0, start);
        if (end < 0 || end > strEnd) end = strEnd;
        let name = buf.toString('latin1', start, end);
        if (name === '') continue;
        const at = name.indexOf('@');
        if (at > 0) name = name.slice(0, at);
        const sym: ElfSymbol = { name, value, size, type: info & 0xf, bind: info >> 4, shndx, table };
        if (!byName.has(name)) byName.set(name, sym);
        if ((sym.type === STT_FUNC || sym.type === STT_GNU_IFUNC) && value !== 0n) functions.push(sym);
      }
    }
  }
  functions.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.table === 'symtab' ? -1 : 1));

  let buildId: string | undefined;
  for (const sec of sections.filter((s) => s.type === SHT_NOTE)) {
    if (sec.offset + sec.size > buf.length) continue;
    for (let p = sec.offset; p + 12 <= sec.offset + sec.size; ) {
      const namesz = u32(p);
      const descsz = u32(p + 4);
      const ntype = u32(p + 8);
      const nameStart = p + 12;
      const descStart = nameStart + ((namesz + 3) & ~3);
      if (descStart + descsz > sec.offset + sec.size) break;
      if (ntype === NT_GNU_BUILD_ID && buf.toString('latin1', nameStart, nameStart + 3) === 'GNU')
        buildId = buf.toString('hex', descStart, descStart + descsz);
      p = descStart + ((descsz + 3) & ~3);
    }
  }

  const out: ElfFile = { class: is64 ? 64 : 32, littleEndian: le, type, machine, loads, functions, byName };
  if (buildId !== undefined) out.buildId = buildId;
  return out;
}

/** The file offset of a virtual address (what uprobe_events takes), or undefined outside PT_LOAD. */
export function fileOffsetOf(elf: ElfFile, vaddr: bigint): bigint | undefined {
  for (const s of elf.loads) {
    if (vaddr >= s.vaddr && vaddr < s.vaddr + s.fileSize) return vaddr - s.vaddr + s.offset;
  }
  return undefined;
}

/** The virtual address of a file offset (the inverse, for addresses in /proc/PID/maps). */
export function vaddrOfFileOffset(elf: ElfFile, offset: bigint): bigint | undefined {
  for (const s of elf.loads) {
    if (offset >= s.offset && offset < s.offset + s.fileSize) return offset - s.offset + s.vaddr;
  }
  return undefined;
}

/**
 * The function containing `vaddr`: the last function starting at or below it, if the
 * address is within its size (or, for size-0 symbols, before the next function).
 */
export function functionAt(elf: ElfFile, vaddr: bigint): { symbol: ElfSymbol; offset: number } | undefined {
  const fns = elf.functions;
  let lo = 0;
  let hi = fns.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (fns[mid]!.value <= vaddr) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found < 0) return undefined;
  // Several symbols at one address (aliases): prefer symtab, then a global name.
  let best = fns[found]!;
  for (let i = found; i >= 0 && fns[i]!.value === best.value; i--) {
    const c = fns[i]!;
    if (c.size > best.size || (c.size === best.size && c.bind === 1 && best.bind !== 1)) best = c;
  }
  const offset = Number(vaddr - best.value);
  if (best.size > 0 && offset >= best.size) return undefined;
  if (best.size === 0) {
    const next = fns.find((f) => f.value > best.value);
    if (next && vaddr >= next.value) return undefined;
  }
  return { symbol: best, offset };
}
