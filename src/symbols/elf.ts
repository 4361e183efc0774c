/**
 * A small ELF reader, pure over buffers: the header, the section and program headers
 * and the symbol table, which is what symbolization needs (a frame names a symbol and an
 * offset; the symbol table gives its address and size). ELF32 and ELF64, either byte
 * order. DWARF is left to eu-addr2line. The I/O around it is elf-file.ts.
 */
import { excerpt, MemsleuthError } from '../model/errors.js';

export type ElfType = 'REL' | 'EXEC' | 'DYN' | 'CORE' | 'OTHER';

export interface ElfHeader {
  bits: 32 | 64;
  littleEndian: boolean;
  type: ElfType;
  machine: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  shoff: number;
  shentsize: number;
  /** Section count; 0 in the header with the real count in section 0 (more than 0xff00). */
  shnum: number;
  shstrndx: number;
}

export interface ElfSection {
  index: number;
  name: string;
  /** sh_name: offset of the name in the section-name string table. */
  nameOffset: number;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  filesz: number;
  memsz: number;
}

export interface ElfSymbol {
  name: string;
  /** st_value: an address (EXEC, DYN) or an offset into its section (REL). */
  value: bigint;
  size: number;
  /** STT_*: 0 NOTYPE, 1 OBJECT, 2 FUNC, ... */
  type: number;
  /** STB_*: 0 LOCAL, 1 GLOBAL, 2 WEAK. */
  bind: number;
  /** Section index (st_shndx, SHN_XINDEX resolved). */
  section: number;
}

export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;
export const SHT_SYMTAB_SHNDX = 18;
export const SHF_ALLOC = 0x2n;
export const SHF_EXECINSTR = 0x4n;
export const STT_NOTYPE = 0;
export const STT_FUNC = 2;
export const PT_LOAD = 1;
const SHN_UNDEF = 0;
const SHN_LORESERVE = 0xff00;
const SHN_XINDEX = 0xffff;

const TYPES: Record<number, ElfType> = { 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' };

/** Bytes of the ELF64 header (the ELF32 one is 52): read this much to parse a header. */
export const ELF_HEADER_BYTES = 64;

function badInput(file: string, expected: string, found: string): MemsleuthError {
  return new MemsleuthError('BAD_INPUT', `${file}: expected ${expected}, found ${found}`, {
    file,
    expected,
    found,
    hint: 'give --symbols a vmlinux, a .ko, or a directory holding them',
  });
}

/** A reader of the fields of one ELF class and byte order. */
class Fields {
  constructor(
    readonly buf: Buffer,
    readonly le: boolean,
    readonly bits: 32 | 64,
  ) {}
  u8(at: number): number {
    return this.buf.readUInt8(at);
  }
  u16(at: number): number {
    return this.le ? this.buf.readUInt16LE(at) : this.buf.readUInt16BE(at);
  }
  u32(at: number): number {
    return this.le ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at);
  }
  u64(at: number): bigint {
    return this.le ? this.buf.readBigUInt64LE(at) : this.buf.readBigUInt64BE(at);
  }
  /** A word (address or size) as bigint. */
  word(at: number): bigint {
    return this.bits === 64 ? this.u64(at) : BigInt(this.u32(at));
  }
  /** A word that is a file offset or size, as number. */
  size(at: number): number {
    return Number(this.word(at));
  }
}

export function parseElfHeader(buf: Buffer, file: string): ElfHeader {
  if (buf.length < 16 || buf.readUInt32BE(0) !== 0x7f454c46)
    throw badInput(file, 'an ELF file (\\x7fELF)', excerpt(buf.subarray(0, 4).toString('latin1')));
  const cls = buf[4];
  const data = buf[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2))
    throw badInput(file, 'ELF class 1 or 2 and data 1 or 2', `class ${cls}, data ${data}`);
  const bits = cls === 2 ? 64 : 32;
  if (buf.length < (bits === 64 ? 64 : 52))
    throw badInput(file, `an ELF${bits} header`, `${buf.length} bytes`);
  const f = new Fields(buf, data === 1, bits);
  const w = bits === 64 ? 8 : 4;
  // e_entry at 24, then e_phoff, e_shoff (words), e_flags (u32), then the u16 fields
  const phoff = f.size(24 + w);
  const shoff = f.size(24 + 2 * w);
  const h = 24 + 3 * w + 4; // e_ehsize
  return {
    bits,
    littleEndian: data === 1,
    type: TYPES[f.u16(16)] ?? 'OTHER',
    machine: f.u16(18),
    phoff,
    phentsize: f.u16(h + 2),
    phnum: f.u16(h + 4),
    shoff,
    shentsize: f.u16(h + 6),
    shnum: f.u16(h + 8),
    shstrndx: f.u16(h + 10),
  };
}

/** Size in bytes of one section header of this class. */
export function sectionHeaderSize(h: ElfHeader): number {
  return h.bits === 64 ? 64 : 40;
}

/** Parse one raw section header (names are filled by `nameSections`). */
function sectionAt(f: Fields, at: number, index: number): ElfSection {
  if (f.bits === 64) {
    return {
      index,
      name: '',
      nameOffset: f.u32(at),
      type: f.u32(at + 4),
      flags: f.u64(at + 8),
      addr: f.u64(at + 16),
      offset: f.size(at + 24),
      size: f.size(at + 32),
      link: f.u32(at + 40),
      info: f.u32(at + 44),
      addralign: f.size(at + 48),
      entsize: f.size(at + 56),
    };
  }
  return {
    index,
    name: '',
    nameOffset: f.u32(at),
    type: f.u32(at + 4),
    flags: BigInt(f.u32(at + 8)),
    addr: BigInt(f.u32(at + 12)),
    offset: f.u32(at + 16),
    size: f.u32(at + 20),
    link: f.u32(at + 24),
    info: f.u32(at + 28),
    addralign: f.u32(at + 32),
    entsize: f.u32(at + 36),
  };
}

/**
 * The section header table (`buf` holds the whole table, read from `h.shoff`). With more
 * than 0xff00 sections the header's counts are 0 / SHN_XINDEX and the real ones sit in
 * section 0's size and link: `sectionCount` and `stringTableIndex` resolve that.
 */
export function parseSectionHeaders(buf: Buffer, h: ElfHeader, file: string): ElfSection[] {
  const f = new Fields(buf, h.littleEndian, h.bits);
  const size = sectionHeaderSize(h);
  const n = Math.floor(buf.length / size);
  const out: ElfSection[] = [];
  for (let i = 0; i < n; i++) out.push(sectionAt(f, i * size, i));
  if (out.length === 0 && h.shoff !== 0) throw badInput(file, 'section headers', 'none');
  return out;
}

/** The real section count (header, or section 0's sh_size when the header says 0). */
export function sectionCount(h: ElfHeader, section0: ElfSection | undefined): number {
  return h.shnum === 0 && h.shoff !== 0 ? (section0?.size ?? 0) : h.shnum;
}

/** The real index of the section-name string table. */
export function stringTableIndex(h: ElfHeader, section0: ElfSection | undefined): number {
  return h.shstrndx === SHN_XINDEX ? (section0?.link ?? 0) : h.shstrndx;
}

/** A NUL-terminated string at `at` in a string table. */
export function stringAt(strtab: Buffer, at: number): string {
  if (at >= strtab.length) return '';
  const end = strtab.indexOf(0, at);
  return strtab.toString('latin1', at, end < 0 ? strtab.length : end);
}

/** Fill in section names from the section-name string table. */
export function nameSections(sections: ElfSection[], shstrtab: Buffer): void {
  for (const s of sections) s.name = stringAt(shstrtab, s.nameOffset);
}

export function parseProgramHeaders(buf: Buffer, h: ElfHeader): ElfSegment[] {
  const f = new Fields(buf, h.littleEndian, h.bits);
  const size = h.bits === 64 ? 56 : 32;
  const out: ElfSegment[] = [];
  for (let at = 0; at + size <= buf.length; at += size) {
    if (h.bits === 64) {
      out.push({
        type: f.u32(at),
        flags: f.u32(at + 4),
        offset: f.size(at + 8),
        vaddr: f.u64(at + 16),
        filesz: f.size(at + 32),
        memsz: f.size(at + 40),
      });
    } else {
      out.push({
        type: f.u32(at),
        offset: f.u32(at + 4),
        vaddr: BigInt(f.u32(at + 8)),
        filesz: f.u32(at + 16),
        memsz: f.u32(at + 20),
        flags: f.u32(at + 24),
      });
    }
  }
  return out;
}

/**
 * The symbols of a SHT_SYMTAB (or SHT_DYNSYM) section. `shndx` is the section's
 * SHT_SYMTAB_SHNDX companion when the file has more than 0xff00 sections. `keep` decides
 * from type and section index, before the name is decoded (vmlinux has 10^5 symbols).
 */
export function parseSymbols(
  symtab: Buffer,
  strtab: Buffer,
  h: ElfHeader,
  opts: { shndx?: Buffer | undefined; keep?: (type: number, section: number) => boolean } = {},
): ElfSymbol[] {
  const f = new Fields(symtab, h.littleEndian, h.bits);
  const size = h.bits === 64 ? 24 : 16;
  const x = opts.shndx ? new Fields(opts.shndx, h.littleEndian, h.bits) : undefined;
  const out: ElfSymbol[] = [];
  for (let at = 0, i = 0; at + size <= symtab.length; at += size, i++) {
    const info = f.u8(at + (h.bits === 64 ? 4 : 12));
    let section = f.u16(at + (h.bits === 64 ? 6 : 14));
    if (section === SHN_XINDEX && x && i * 4 + 4 <= x.buf.length) section = x.u32(i * 4);
    const type = info & 0xf;
    if (opts.keep && !opts.keep(type, section)) continue;
    const name = stringAt(strtab, f.u32(at));
    const value = h.bits === 64 ? f.u64(at + 8) : BigInt(f.u32(at + 4));
    const sz = h.bits === 64 ? f.size(at + 16) : f.u32(at + 8);
    out.push({ name, value, size: sz, type, bind: info >> 4, section });
  }
  return out;
}

/** Whether a symbol of this type in this section is code: a function (or an untyped label, as assembly entry points are) in an executable section. */
export function isCodeSymbolIn(type: number, section: number, sections: readonly ElfSection[]): boolean {
  if (section === SHN_UNDEF || section >= SHN_LORESERVE) return false;
  if (type !== STT_FUNC && type !== STT_NOTYPE) return false;
  const sec = sections[section];
  return sec !== undefined && (sec.flags & SHF_EXECINSTR) !== 0n;
}

/** Symbols that are code (see isCodeSymbolIn), with a name. */
export function isCodeSymbol(s: ElfSymbol, sections: readonly ElfSection[]): boolean {
  return s.name !== '' && isCodeSymbolIn(s.type, s.section, sections);
}
