/**
 * One ELF file on disk (vmlinux, a module's .ko, a user program or library, or their
 * separate debug files): what is needed to choose it for a frame (build-id, module name,
 * whether it carries DWARF line tables) and its code symbols by name. Reads only the
 * headers, the notes, .modinfo and the symbol table, never the whole file.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { MemsleuthError } from '../model/errors.js';
import { buildIdOf, parseElfNotes } from '../sources/elf_notes.js';
import {
  ELF_HEADER_BYTES,
  type ElfHeader,
  type ElfSection,
  type ElfSegment,
  type ElfSymbol,
  isCodeSymbolIn,
  nameSections,
  PT_LOAD,
  parseElfHeader,
  parseProgramHeaders,
  parseSectionHeaders,
  parseSymbols,
  SHT_DYNSYM,
  SHT_NOBITS,
  SHT_NOTE,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
  sectionCount,
  sectionHeaderSize,
  stringTableIndex,
} from './elf.js';

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === length ? buf : buf.subarray(0, done);
  } finally {
    await fh.close();
  }
}

/** The module name a .ko's file name implies (`msl-leaky.ko.debug` -> `msl_leaky`), as the kernel spells it. */
export function moduleNameOfPath(path: string): string | undefined {
  const m = /^(.+?)\.ko(?:\.debug)?$/.exec(basename(path));
  return m ? m[1]!.replace(/-/g, '_') : undefined;
}

/** A function's place in the symbol table. */
export interface CodeSymbol extends ElfSymbol {
  /** Bytes to the next code symbol of its section (or the section's end): the kernel's `/0x...` length. */
  span: number;
  /** Name of its section (`.text`, `.init.text`, ...). */
  sectionName: string;
  /** The last symbol of its section: in a loaded module the kernel measures it up to the next section's first symbol. */
  last: boolean;
}

export class SymbolTable {
  private readonly byName = new Map<string, CodeSymbol[]>();
  constructor(readonly symbols: readonly CodeSymbol[]) {
    for (const s of symbols) {
      const list = this.byName.get(s.name);
      if (list) list.push(s);
      else this.byName.set(s.name, [s]);
    }
  }
  /** Every code symbol of that name (static functions repeat across files). */
  lookup(name: string): readonly CodeSymbol[] {
    return this.byName.get(name) ?? [];
  }
  get size(): number {
    return this.symbols.length;
  }
}

export class ElfFile {
  private table: Promise<SymbolTable> | undefined;

  private constructor(
    readonly path: string,
    readonly header: ElfHeader,
    readonly sections: readonly ElfSection[],
    readonly segments: readonly ElfSegment[],
    /** GNU build-id, lowercase hex. */
    readonly buildId: string | undefined,
    /** The kernel module this file is (from .modinfo `name=`, else the file name); undefined for others. */
    readonly moduleName: string | undefined,
  ) {}

  /** Open and read the headers; throws BAD_INPUT for a file that is not ELF. */
  static async open(path: string): Promise<ElfFile> {
    let head: Buffer;
    try {
      head = await readRange(path, 0, ELF_HEADER_BYTES);
    } catch (e) {
      throw new MemsleuthError('IO', `${path}: cannot read (${(e as NodeJS.ErrnoException).code})`, {
        file: path,
        cause: e,
      });
    }
    const h = parseElfHeader(head, path);
    let sections: ElfSection[] = [];
    if (h.shoff !== 0) {
      const size = sectionHeaderSize(h);
      const first = parseSectionHeaders(await readRange(path, h.shoff, size), h, path)[0];
      const n = sectionCount(h, first);
      sections = parseSectionHeaders(await readRange(path, h.shoff, n * size), h, path);
      const strIndex = stringTableIndex(h, first);
      const shstr = sections[strIndex];
      if (shstr) nameSections(sections, await readRange(path, shstr.offset, shstr.size));
    }
    const segments =
      h.phoff !== 0 && h.phnum > 0
        ? parseProgramHeaders(await readRange(path, h.phoff, h.phnum * h.phentsize), h)
        : [];
    let buildId: string | undefined;
    for (const s of sections) {
      if (s.type !== SHT_NOTE || s.size === 0 || s.size > 1 << 20) continue;
      try {
        buildId = buildIdOf(
          parseElfNotes(await readRange(path, s.offset, s.size), {
            file: `${path} ${s.name}`,
            littleEndian: h.littleEndian,
          }),
        );
      } catch {
        // a malformed note section is no reason to refuse the file's line tables
      }
      if (buildId) break;
    }
    let moduleName: string | undefined;
    const modinfo = sections.find((s) => s.name === '.modinfo' && s.type !== SHT_NOBITS);
    if (modinfo && modinfo.size < 1 << 20) {
      const text = (await readRange(path, modinfo.offset, modinfo.size)).toString('latin1');
      moduleName = /(?:^|\0)name=([^\0]+)/.exec(text)?.[1];
    }
    if (moduleName === undefined && h.type === 'REL' && sections.some((s) => s.name === '.modinfo'))
      moduleName = moduleNameOfPath(path);
    return new ElfFile(path, h, sections, segments, buildId, moduleName);
  }

  /** Whether the file carries DWARF line tables (not stripped, not a build without debug info). */
  get hasDebugInfo(): boolean {
    const has = (name: string) =>
      this.sections.some(
        (s) =>
          (s.name === name || s.name === name.replace('.debug', '.zdebug')) &&
          s.type !== SHT_NOBITS &&
          s.size > 0,
      );
    return has('.debug_info') && has('.debug_line');
  }

  /** The code symbols, read on first use. */
  symbols(): Promise<SymbolTable> {
    this.table ??= this.readSymbols();
    return this.table;
  }

  private async readSymbols(): Promise<SymbolTable> {
    const sym =
      this.sections.find((s) => s.type === SHT_SYMTAB) ?? this.sections.find((s) => s.type === SHT_DYNSYM);
    if (!sym || sym.size === 0) return new SymbolTable([]);
    const str = this.sections[sym.link];
    if (!str) return new SymbolTable([]);
    const shndxSec = this.sections.find((s) => s.type === SHT_SYMTAB_SHNDX && s.link === sym.index);
    const [symtab, strtab, shndx] = await Promise.all([
      readRange(this.path, sym.offset, sym.size),
      readRange(this.path, str.offset, str.size),
      shndxSec ? readRange(this.path, shndxSec.offset, shndxSec.size) : Promise.resolve(undefined),
    ]);
    const sections = this.sections;
    const code = parseSymbols(symtab, strtab, this.header, {
      shndx,
      keep: (type, section) => isCodeSymbolIn(type, section, sections),
    }).filter((s) => s.name !== '');
    // span: distance to the next distinct start in the same section, as kallsyms measures
    // a symbol. Offsets from the section start fit a double; sort those, not bigints.
    const rel = this.header.type === 'REL';
    const base = (s: ElfSymbol) => (rel ? 0n : sections[s.section]!.addr);
    const bySection = new Map<number, number[]>();
    for (const s of code) {
      const off = Number(s.value - base(s));
      const list = bySection.get(s.section);
      if (list) list.push(off);
      else bySection.set(s.section, [off]);
    }
    const sorted = new Map<number, Float64Array>();
    for (const [k, list] of bySection) sorted.set(k, Float64Array.from(list).sort());
    const out: CodeSymbol[] = code.map((s) => {
      const sec = sections[s.section]!;
      const starts = sorted.get(s.section)!;
      const off = Number(s.value - base(s));
      const next = upperBound(starts, off);
      const nextStart = next < starts.length ? starts[next]! : sec.size;
      return {
        name: s.name,
        value: s.value,
        size: s.size,
        type: s.type,
        bind: s.bind,
        section: s.section,
        span: nextStart - off,
        sectionName: sec.name,
        last: next >= starts.length,
      };
    });
    return new SymbolTable(out);
  }

  /**
   * The file address (the one DWARF and eu-addr2line use) of a run-time address in a
   * mapping of this file that starts at `mapStart` and maps file offset `mapOffset`
   * (a line of /proc/PID/maps): for user-space stacks.
   */
  fileAddress(runtime: bigint, mapStart: bigint, mapOffset: bigint): bigint | undefined {
    const fileOffset = runtime - mapStart + mapOffset;
    const seg = this.segments.find(
      (p) => p.type === PT_LOAD && fileOffset >= BigInt(p.offset) && fileOffset < BigInt(p.offset + p.filesz),
    );
    return seg ? seg.vaddr + (fileOffset - BigInt(seg.offset)) : undefined;
  }
}

/** First index whose value is greater than `v` in an ascending list. */
function upperBound(list: Float64Array, v: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
