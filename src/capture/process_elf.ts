import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MemsleuthError } from '../model/errors.js';
import { type ElfFile, parseElf } from '../sources/elf_symbols.js';
import { type MapsEntry, parseProcMaps } from '../sources/proc_maps.js';

/**
 * A traced process's mappings and the ELF files behind them, read the way the process
 * sees them: /proc/PID/maps, and each file through /proc/PID/root (its mount namespace
 * and chroot), so a containerised process gets its own libc.
 */
export async function readProcessMaps(pid: number, procRoot = '/proc'): Promise<MapsEntry[]> {
  const file = join(procRoot, String(pid), 'maps');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MemsleuthError(
      code === 'ENOENT' || code === 'ESRCH' ? 'USAGE' : 'IO',
      code === 'ENOENT' || code === 'ESRCH' ? `no process ${pid}` : `${file}: cannot read (${code})`,
      { file, cause: e },
    );
  }
  return parseProcMaps(text, { file });
}

/** The path a process's mapped file has for us (through its root), and the ELF in it. */
export class ElfCache {
  private readonly cache = new Map<string, ElfFile | undefined>();

  constructor(
    private readonly pid: number,
    private readonly procRoot = '/proc',
  ) {}

  /** The path memsleuth (and the kernel, for uprobes) can open for a mapped path. */
  hostPath(mapped: string): string {
    const viaRoot = join(this.procRoot, String(this.pid), 'root', mapped);
    try {
      statSync(viaRoot);
      return viaRoot;
    } catch {
      return mapped;
    }
  }

  /** The parsed ELF of a mapped file, or undefined when it is not readable ELF. */
  get(mapped: string): ElfFile | undefined {
    if (this.cache.has(mapped)) return this.cache.get(mapped);
    let elf: ElfFile | undefined;
    const path = this.hostPath(mapped.replace(/ \(deleted\)$/, ''));
    try {
      elf = parseElf(readFileSync(path), { file: path });
    } catch {
      elf = undefined;
    }
    this.cache.set(mapped, elf);
    return elf;
  }
}

const LIBC = /^(libc\.so(\.\d+)*|libc-[\d.]+\.so|ld-musl-[^/]+\.so\.1)$/;

/**
 * Where the process's `fn` comes from: the executable itself (static binaries), an
 * allocator preloaded or linked before libc (jemalloc, tcmalloc), else libc.
 */
export function findDefinition(
  maps: readonly MapsEntry[],
  elfs: ElfCache,
  fn: string,
): { mapped: string; elf: ElfFile } | undefined {
  const files: string[] = [];
  for (const m of maps) if (m.pathname.startsWith('/') && !files.includes(m.pathname)) files.push(m.pathname);
  const exe = files[0];
  const order = [
    ...files.filter((f) => f === exe),
    ...files.filter((f) => f !== exe && !LIBC.test(basename(f))),
    ...files.filter((f) => f !== exe && LIBC.test(basename(f))),
  ];
  for (const mapped of order) {
    const elf = elfs.get(mapped);
    const sym = elf?.byName.get(fn);
    if (elf && sym && (sym.type === 2 || sym.type === 10) && sym.shndx !== 0) return { mapped, elf };
  }
  return undefined;
}

/** True for the C library's file name (glibc, musl). */
export function isLibcPath(path: string): boolean {
  return LIBC.test(basename(path));
}
