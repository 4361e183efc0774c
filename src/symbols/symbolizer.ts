/**
 * Kernel frames (`func+0x1b8/0x590 [module]`) and user-space addresses to file:line with
 * inlined functions. A frame names a symbol and an offset, not an address: the symbol
 * table of vmlinux or the module's .ko gives the symbol's address (an offset into its
 * section for a .ko), and eu-addr2line, one long-running process per file and section,
 * turns the address into the inline chain. Answers are cached per (build-id or file,
 * section, address) and per frame.
 *
 * Printed offsets are return addresses (the instruction after the call), so a frame is
 * looked up at offset - 1, the call itself, as gdb and perf do; `exact` frames (a
 * faulting RIP) and offset 0 are looked up as printed. The printed length must agree
 * with the symbol in the file: kallsyms prints the distance to the next symbol, which is
 * st_size or st_size plus alignment padding (checked on every frame of the lab's 6.1 and
 * 6.12 captures). A frame that does not fit rejects the file: it is not the code that
 * ran. Its frames are no longer answered from it (nor, in resolveFrames, the others of the
 * same batch), the next candidate file is tried, and a warning says so once.
 */
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative } from 'node:path';
import type { Frame } from '../model/frame.js';
import { Addr2Line } from './addr2line.js';
import type { CodeLocation } from './addr2line-output.js';
import type { CodeSymbol, ElfFile } from './elf-file.js';
import { DebugFiles, type DebugSearchOptions } from './locate.js';

export type { CodeLocation } from './addr2line-output.js';

export interface FrameQuery extends Frame {
  /** Build-id printed with a module frame (`[mod 1a2b…]`, CONFIG_STACKTRACE_BUILD_ID). */
  buildId?: string;
  /** The offset is the instruction itself (an `RIP:` line), not a return address. */
  exact?: boolean;
}

export interface ResolvedFrame {
  status: 'resolved';
  /** Innermost first: inlined functions, then the function that holds the code. */
  locations: CodeLocation[];
  /** Where the frame's own function is (the last location). */
  file: string;
  line: number;
  /** The ELF file it was resolved from, and its build-id. */
  elf: string;
  buildId?: string;
  /** The address looked up: a file address, or an offset into `section` for a .ko. */
  address: bigint;
  section?: string;
  /** The frame had no offset: this is where its function starts. */
  entry?: boolean;
}

export type UnresolvedReason = 'no-file' | 'no-symbol' | 'mismatch' | 'no-line' | 'not-a-symbol';

export interface UnresolvedFrame {
  status: 'unresolved';
  reason: UnresolvedReason;
  message: string;
}

export type FrameResolution = ResolvedFrame | UnresolvedFrame;

export interface SymbolizerOptions extends DebugSearchOptions {
  /** Build-ids of the code that ran (a live machine: /sys/kernel/notes, /sys/module/<m>/notes). */
  buildIds?: { kernel?: string; modules?: ReadonlyMap<string, string> };
  /** Each distinct warning once (a file that does not match, a module without debug info). */
  onWarning?: (message: string) => void;
  /** The addr2line program (default eu-addr2line). */
  tool?: string;
}

export interface SymbolizerStats {
  /** Frames asked for, and how many of them were answered from the cache. */
  frames: number;
  cachedFrames: number;
  /** Distinct addresses sent to eu-addr2line. */
  addresses: number;
  /** eu-addr2line processes started. */
  processes: number;
}

interface Batch {
  proc: Addr2Line;
  queue: { address: bigint; resolve(c: CodeLocation[]): void; reject(e: Error): void }[];
  scheduled: boolean;
}

/**
 * A path as a reader wants it: `./` dropped, and relative to the ELF's directory when
 * under it (an out-of-tree module's source). `elfDirs`: the directory as given and as
 * resolved (DWARF names the real path; the user may have given a symbolic link).
 */
export function tidySourcePath(file: string, elfDirs: readonly string[]): string {
  const f = file.replace(/^(?:\.\/)+/, '').replace(/\/(?:\.\/)+/g, '/');
  if (!isAbsolute(f)) return f;
  for (const dir of elfDirs) {
    const r = relative(dir, f);
    if (r !== '' && !r.startsWith('..') && !isAbsolute(r)) return r;
  }
  return f;
}

/** The directory of an ELF file, as given and with symbolic links resolved. */
function dirsOf(elfPath: string): string[] {
  const dir = dirname(elfPath);
  try {
    const real = realpathSync(dir);
    return real === dir ? [dir] : [dir, real];
  } catch {
    return [dir];
  }
}

const hex = (n: number) => `0x${n.toString(16)}`;

export class Symbolizer {
  private readonly frames = new Map<string, Promise<FrameResolution>>();
  private readonly addresses = new Map<string, Promise<CodeLocation[]>>();
  private readonly files = new Map<string, Promise<ElfFile | UnresolvedFrame>>();
  private readonly batches = new Map<string, Batch>();
  private readonly warned = new Set<string>();
  /** Files a frame showed not to be the code that ran: their frames are not resolved any more. */
  private readonly rejected = new Set<string>();
  private readonly stat: SymbolizerStats = { frames: 0, cachedFrames: 0, addresses: 0, processes: 0 };
  /** Every warning given, in order. */
  readonly warnings: string[] = [];

  private constructor(
    readonly debugFiles: DebugFiles,
    private readonly opts: SymbolizerOptions,
  ) {}

  /** Check the user's --symbols paths and set up the search (nothing is spawned yet). */
  static async create(opts: SymbolizerOptions = {}): Promise<Symbolizer> {
    return new Symbolizer(await DebugFiles.create(opts), opts);
  }

  stats(): SymbolizerStats {
    return { ...this.stat, processes: [...this.batches.values()].reduce((n, b) => n + b.proc.spawns, 0) };
  }

  /**
   * Resolve many frames at once (their addresses go to eu-addr2line together). A file one
   * of them shows to be another build is rejected for all of them.
   */
  async resolveFrames(frames: readonly FrameQuery[]): Promise<FrameResolution[]> {
    const rs = await Promise.all(frames.map((f) => this.resolveFrame(f)));
    return rs.map((r) => this.unlessRejected(r));
  }

  async resolveFrame(f: FrameQuery): Promise<FrameResolution> {
    let r = await this.resolveCached(f);
    if (r.status === 'resolved' && this.rejected.has(r.elf)) {
      // resolved from a file since rejected: once more, from the file chosen now
      this.frames.delete(frameKey(f));
      r = await this.resolveCached(f);
    }
    return this.unlessRejected(r);
  }

  private unlessRejected(r: FrameResolution): FrameResolution {
    if (r.status !== 'resolved' || !this.rejected.has(r.elf)) return r;
    return { status: 'unresolved', reason: 'mismatch', message: `${r.elf} is not the code that ran` };
  }

  private resolveCached(f: FrameQuery): Promise<FrameResolution> {
    this.stat.frames++;
    const key = frameKey(f);
    let p = this.frames.get(key);
    if (p) this.stat.cachedFrames++;
    else {
      p = this.resolveUncached(f);
      this.frames.set(key, p);
    }
    return p;
  }

  /**
   * User space: the inline chains of file addresses in an ELF file (a program or shared
   * library; `ElfFile.fileAddress` turns a run-time address and its /proc/PID/maps line
   * into one). `section` for a relocatable object.
   */
  async resolveAddresses(
    elfPath: string,
    addresses: readonly bigint[],
    opts: { section?: string } = {},
  ): Promise<CodeLocation[][]> {
    const elf = await this.debugFiles.open(elfPath);
    const key = elf?.buildId ?? elfPath;
    return Promise.all(addresses.map((a) => this.lookup(elfPath, key, opts.section, a)));
  }

  /** End every eu-addr2line process. */
  async close(): Promise<void> {
    await Promise.all([...this.batches.values()].map((b) => b.proc.close()));
  }

  private warn(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warnings.push(message);
    this.opts.onWarning?.(message);
  }

  private async resolveUncached(f: FrameQuery): Promise<FrameResolution> {
    if (/^0x[0-9a-f]+$/i.test(f.func))
      return {
        status: 'unresolved',
        reason: 'not-a-symbol',
        message: `${f.func} is an address, not a symbol`,
      };
    const where = f.module ?? 'vmlinux';
    let file: ElfFile;
    let sym: CodeSymbol | undefined;
    for (;;) {
      const chosen = await this.fileFor(f.module, f.buildId);
      if ('status' in chosen) return chosen;
      file = chosen;
      const candidates = (await file.symbols()).lookup(f.func);
      if (candidates.length === 0) {
        const message = `${f.func} is not a function in ${file.path}`;
        this.warn(
          `nosym\0${file.path}\0${f.func}`,
          `${where}: ${message}: the file is not the code that ran?`,
        );
        return { status: 'unresolved', reason: 'no-symbol', message };
      }
      sym = pickSymbol(candidates, f);
      if (sym) break;
      const c = candidates[0]!;
      const message = `${f.func} is ${hex(c.size)} bytes in ${file.path}, ${f.length === undefined ? '?' : hex(f.length)} in the frame`;
      this.warn(
        `mismatch\0${file.path}`,
        `${where}: ${message}: the file is not the code that ran (another build?); its frames are left unresolved`,
      );
      // another candidate (a second --symbols tree, /usr/lib/debug) may be the right build
      this.rejected.add(file.path);
      this.files.delete(this.fileKey(f.module, f.buildId));
    }
    const entry = f.offset === undefined;
    const offset = BigInt(f.offset ?? 0);
    const address = sym.value + offset - (entry || f.exact || offset === 0n ? 0n : 1n);
    const section = file.header.type === 'REL' ? sym.sectionName : undefined;
    const chain = await this.lookup(file.path, file.buildId ?? file.path, section, address);
    if (chain.length === 0) {
      const message = `no line information for ${f.func} in ${file.path}`;
      return { status: 'unresolved', reason: 'no-line', message };
    }
    const own = chain[chain.length - 1]!;
    const r: ResolvedFrame = {
      status: 'resolved',
      locations: chain,
      file: own.file,
      line: own.line,
      elf: file.path,
      address,
    };
    if (file.buildId) r.buildId = file.buildId;
    if (section) r.section = section;
    if (entry) r.entry = true;
    return r;
  }

  private expectedBuildId(module: string | undefined, printed: string | undefined): string | undefined {
    return printed ?? (module ? this.opts.buildIds?.modules?.get(module) : this.opts.buildIds?.kernel);
  }

  private fileKey(module: string | undefined, printedBuildId: string | undefined): string {
    return `${module ?? ''}\0${this.expectedBuildId(module, printedBuildId) ?? ''}`;
  }

  /** The file holding `module` (undefined: the kernel image), chosen once per module (again after a rejection). */
  private fileFor(
    module: string | undefined,
    printedBuildId: string | undefined,
  ): Promise<ElfFile | UnresolvedFrame> {
    const expected = this.expectedBuildId(module, printedBuildId);
    const key = this.fileKey(module, printedBuildId);
    let p = this.files.get(key);
    if (!p) {
      p = this.chooseFile(module, expected);
      this.files.set(key, p);
    }
    return p;
  }

  private async chooseFile(
    module: string | undefined,
    expected: string | undefined,
  ): Promise<ElfFile | UnresolvedFrame> {
    const d = this.debugFiles;
    const what = module ? `module ${module}` : 'the kernel (vmlinux)';
    const candidates = module ? d.moduleCandidates(module) : d.kernelCandidates();
    const usable: ElfFile[] = [];
    const stripped: string[] = [];
    let rejected = 0;
    const consider = async (p: string): Promise<ElfFile | undefined> => {
      const elf = await d.open(p);
      if (!elf) return undefined;
      if (this.rejected.has(elf.path)) {
        rejected++;
        return undefined;
      }
      if (module && elf.moduleName !== undefined && elf.moduleName !== module) return undefined;
      if (!elf.hasDebugInfo) {
        stripped.push(p);
        return undefined;
      }
      usable.push(elf);
      return elf;
    };
    if (expected) {
      const byId = await consider(d.byBuildId(expected));
      if (byId) return byId;
    }
    for await (const p of candidates) {
      const elf = await consider(p);
      // without a build-id to match, the first usable file is the one (the user's paths come first)
      if (elf && (!expected || elf.buildId === expected)) return elf;
    }
    const chosen = usable[0];
    if (!chosen && rejected > 0)
      return { status: 'unresolved', reason: 'mismatch', message: `no file for ${what} matches the frames` };
    if (!chosen) {
      const message = `no debug info for ${what}${stripped.length ? ` (${stripped.join(', ')} has none: stripped?)` : ''}; looked in ${d.describe(module)}`;
      this.warn(`nofile\0${module ?? ''}`, `${message}; give --symbols PATH`);
      return { status: 'unresolved', reason: 'no-file', message };
    }
    if (expected && chosen.buildId !== expected)
      this.warn(
        `buildid\0${chosen.path}`,
        `${chosen.path} has build-id ${chosen.buildId ?? 'none'}, the running ${module ? `module ${module}` : 'kernel'} ${expected}: lines may be wrong`,
      );
    return chosen;
  }

  /** One address through the file's eu-addr2line, cached; addresses asked in the same turn go in one write. */
  private lookup(
    elfPath: string,
    elfKey: string,
    section: string | undefined,
    address: bigint,
  ): Promise<CodeLocation[]> {
    const key = `${elfKey}\0${section ?? ''}\0${address}`;
    let p = this.addresses.get(key);
    if (p) return p;
    const bkey = `${elfPath}\0${section ?? ''}`;
    let b = this.batches.get(bkey);
    if (!b) {
      const opts: { section?: string; tool?: string } = {};
      if (section) opts.section = section;
      if (this.opts.tool) opts.tool = this.opts.tool;
      b = { proc: new Addr2Line(elfPath, opts), queue: [], scheduled: false };
      this.batches.set(bkey, b);
    }
    const batch = b;
    this.stat.addresses++;
    p = new Promise<CodeLocation[]>((resolve, reject) => {
      batch.queue.push({ address, resolve, reject });
      if (!batch.scheduled) {
        batch.scheduled = true;
        setImmediate(() => this.flush(batch));
      }
    }).then((chain) => {
      const dirs = dirsOf(elfPath);
      return chain.map((l) => ({ ...l, file: tidySourcePath(l.file, dirs) }));
    });
    this.addresses.set(key, p);
    return p;
  }

  private flush(b: Batch): void {
    b.scheduled = false;
    const queue = b.queue.splice(0);
    b.proc.lookup(queue.map((q) => q.address)).then(
      (chains) => {
        queue.forEach((q, i) => {
          q.resolve(chains[i]!);
        });
      },
      (e: Error) => {
        for (const q of queue) q.reject(e);
      },
    );
  }
}

function frameKey(f: FrameQuery): string {
  return [f.module ?? '', f.buildId ?? '', f.func, f.offset ?? '', f.length ?? '', f.exact ? 1 : 0].join(
    '\0',
  );
}

/**
 * The symbol a frame means among those of its name: its printed length must lie between
 * the symbol's size and the distance to the next symbol (the last of a section may run
 * further in a loaded module), and its offset inside. Exact size first, then exact span.
 */
export function pickSymbol(
  candidates: readonly CodeSymbol[],
  f: Pick<Frame, 'offset' | 'length'>,
): CodeSymbol | undefined {
  const fits = candidates.filter((s) => {
    const room = Math.max(s.size, s.span);
    if (f.offset !== undefined && f.offset > room && !s.last) return false;
    if (f.length === undefined) return true;
    return f.length >= s.size && (f.length <= s.span || s.last);
  });
  if (f.length === undefined) return fits[0];
  return fits.find((s) => s.size === f.length) ?? fits.find((s) => s.span === f.length) ?? fits[0];
}
