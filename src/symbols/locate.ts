/**
 * Where debug info for a kernel lives. First what the user gave (`--symbols PATH`:
 * vmlinux, a .ko, a directory of them, a kernel build tree), in that order; then, for a
 * known kernel release R, the usual places:
 *
 *   /usr/lib/debug/.build-id/xx/yyyy.debug   by build-id (Debian, Fedora debuginfo)
 *   /usr/lib/debug/boot/vmlinux-R            Debian/Ubuntu linux-image-*-dbg
 *   /usr/lib/debug/lib/modules/R/vmlinux     Fedora kernel-debuginfo
 *   /lib/modules/R/build/vmlinux             the build tree (`make modules_install` links it)
 *   /boot/vmlinux-R
 *   /usr/lib/debug/lib/modules/R/ and /lib/modules/R/   modules (.ko, .ko.debug)
 *
 * Directories are walked once, on first need, for `vmlinux*` and `*.ko` / `*.ko.debug`
 * (compressed modules, .ko.xz / .ko.zst, carry no usable DWARF and are not read).
 */
import { type Dirent, existsSync, readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MemsleuthError } from '../model/errors.js';
import { ElfFile, moduleNameOfPath } from './elf-file.js';

export interface DebugSearchOptions {
  /** Files and directories from the user, searched first, in order. */
  paths?: readonly string[];
  /** Kernel release (`uname -r`, or a snapshot's) whose standard places are searched after `paths`. */
  kernelRelease?: string;
  /** Prefix of the standard places (tests point it at a fixture tree). Default `/`. */
  root?: string;
}

const VMLINUX = /^vmlinux(?:-[^/]+)?$/;
const NOT_AN_IMAGE = /\.(?:o|a|lds|map|py|h|c|S|cmd|symvers|order|gz|xz|zst|bz2|lzma|lz4|sig)$/;

/** What a walk of one directory found. */
interface Found {
  images: string[];
  modules: Map<string, string[]>;
}

/** Walk a tree (synchronously: several times faster than a promise per directory on a 10^5-file build tree). */
function walk(dir: string, found: Found): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return; // unreadable parts of a tree are not an error
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    // symbolic links to directories are not followed (build/ and source/ point back up)
    if (e.isDirectory()) {
      if (!e.name.startsWith('.')) walk(p, found);
    } else if (e.isFile() || e.isSymbolicLink()) {
      const mod = moduleNameOfPath(p);
      if (mod) {
        const list = found.modules.get(mod);
        if (list) list.push(p);
        else found.modules.set(mod, [p]);
      } else if (VMLINUX.test(e.name) && !NOT_AN_IMAGE.test(e.name)) found.images.push(p);
    }
  }
}

export class DebugFiles {
  private readonly elves = new Map<string, Promise<ElfFile | undefined>>();
  private readonly walks = new Map<string, Found>();

  private constructor(
    /** User paths, resolved and checked to exist, with whether each is a directory. */
    private readonly given: readonly { path: string; dir: boolean }[],
    private readonly release: string | undefined,
    private readonly root: string,
  ) {}

  /** Check the user's paths (a missing one is a usage error) and set up the search. */
  static async create(opts: DebugSearchOptions = {}): Promise<DebugFiles> {
    const given: { path: string; dir: boolean }[] = [];
    for (const p of opts.paths ?? []) {
      const path = resolve(p);
      let dir: boolean;
      try {
        dir = (await stat(path)).isDirectory();
      } catch (e) {
        throw new MemsleuthError(
          'USAGE',
          `--symbols ${p}: ${(e as NodeJS.ErrnoException).code ?? 'cannot read'}`,
          {
            file: p,
            hint: 'give a vmlinux, a .ko, or a directory holding them (a kernel build tree, /usr/lib/debug)',
          },
        );
      }
      if (!dir) {
        // a file the user named must be ELF: say so now rather than resolve nothing
        await ElfFile.open(path);
      }
      given.push({ path, dir });
    }
    return new DebugFiles(given, opts.kernelRelease, opts.root ?? '/');
  }

  /** The paths the user gave, for messages. */
  get userPaths(): string[] {
    return this.given.map((g) => g.path);
  }

  /** Where a file would be looked for, for the hint of a warning. */
  describe(module: string | undefined): string {
    const places = this.given.map((g) => g.path);
    if (this.release) {
      const r = this.release;
      places.push(
        ...(module
          ? [`/usr/lib/debug/lib/modules/${r}`, `/lib/modules/${r}`]
          : [`/usr/lib/debug/boot/vmlinux-${r}`, `/lib/modules/${r}/build/vmlinux`, `/boot/vmlinux-${r}`]),
      );
    }
    places.push('/usr/lib/debug/.build-id');
    return places.join(', ');
  }

  /** An ELF file, opened once; undefined when it is not ELF or cannot be read. */
  open(path: string): Promise<ElfFile | undefined> {
    let p = this.elves.get(path);
    if (!p) {
      p = ElfFile.open(path).catch(() => undefined);
      this.elves.set(path, p);
    }
    return p;
  }

  private walked(dir: string): Found {
    let found = this.walks.get(dir);
    if (!found) {
      found = { images: [], modules: new Map() };
      walk(dir, found);
      this.walks.set(dir, found);
    }
    return found;
  }

  private std(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /** `/usr/lib/debug/.build-id/ab/cdef….debug` for a build-id. */
  byBuildId(buildId: string): string {
    return this.std('usr/lib/debug/.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`);
  }

  /**
   * Candidate files for the kernel image, best first. Lazy: a directory's own `vmlinux`
   * comes before the directory is walked, and it is walked only if the caller reads on.
   */
  async *kernelCandidates(): AsyncGenerator<string> {
    const seen = new Set<string>();
    const fresh = (p: string) => !seen.has(p) && seen.add(p) !== undefined;
    for (const g of this.given) {
      if (!g.dir) {
        const elf = await this.open(g.path);
        if (elf && elf.moduleName === undefined && elf.header.type === 'EXEC' && fresh(g.path)) yield g.path;
        continue;
      }
      const top = join(g.path, 'vmlinux');
      if (existsSync(top) && fresh(top)) yield top;
      for (const p of this.walked(g.path).images) if (fresh(p)) yield p;
    }
    if (this.release) {
      const r = this.release;
      for (const p of [
        this.std('usr/lib/debug/boot', `vmlinux-${r}`),
        this.std('usr/lib/debug/lib/modules', r, 'vmlinux'),
        this.std('lib/modules', r, 'build', 'vmlinux'),
        this.std('boot', `vmlinux-${r}`),
      ])
        if (existsSync(p) && fresh(p)) yield p;
    }
  }

  /** Candidate files for a module, best first; lazy like kernelCandidates. */
  async *moduleCandidates(module: string): AsyncGenerator<string> {
    const seen = new Set<string>();
    const fresh = (p: string) => !seen.has(p) && seen.add(p) !== undefined;
    const dirs: string[] = [];
    for (const g of this.given) {
      if (!g.dir) {
        const elf = await this.open(g.path);
        if (elf?.moduleName === module && fresh(g.path)) yield g.path;
        continue;
      }
      for (const name of [`${module}.ko`, `${module.replace(/_/g, '-')}.ko`]) {
        const p = join(g.path, name);
        if (existsSync(p) && fresh(p)) yield p;
      }
      dirs.push(g.path);
    }
    if (this.release)
      dirs.push(this.std('usr/lib/debug/lib/modules', this.release), this.std('lib/modules', this.release));
    for (const d of dirs) for (const p of this.walked(d).modules.get(module) ?? []) if (fresh(p)) yield p;
  }
}
