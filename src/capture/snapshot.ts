import { constants, createReadStream, readFileSync } from 'node:fs';
import { access, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { errnoReason, MemsleuthError } from '../model/errors.js';
import type { Snapshot } from '../model/snapshot.js';
import {
  MANIFEST_FORMAT,
  MANIFEST_PATH,
  type Manifest,
  PROCESS_FILES,
  SLAB_TRACE_KINDS,
  SYSTEM_SOURCES,
} from '../model/snapshot.js';

/**
 * Reading by snapshot path from files (a directory or the live kernel): each failed read
 * remembers why, for `whyMissing`. Subclasses only say which file is behind a path.
 */
export abstract class FileSnapshot {
  private readonly failures = new Map<string, string>();

  /** The file behind a snapshot path, or undefined when the path is not one of its sources. */
  protected abstract fileOf(path: string): string | undefined;

  localFile(path: string): string | undefined {
    return this.fileOf(path);
  }

  async readText(path: string): Promise<string | undefined> {
    const file = this.fileOf(path);
    if (file === undefined) {
      this.failures.set(path, 'not a source of this snapshot');
      return undefined;
    }
    try {
      // Synchronous: procfs and sysfs files are generated in memory and small, and a
      // thread-pool round trip per file costs more than the read (a recording tick reads
      // three files per process).
      return readFileSync(file, 'utf8');
    } catch (e) {
      this.failures.set(path, errnoReason(e));
      return undefined;
    }
  }

  whyMissing(path: string): string | undefined {
    return this.failures.get(path);
  }

  async openStream(path: string): Promise<Readable | undefined> {
    const file = this.fileOf(path);
    if (file === undefined) return undefined;
    try {
      await access(file, constants.R_OK);
    } catch (e) {
      this.failures.set(path, errnoReason(e));
      return undefined;
    }
    return createReadStream(file, { highWaterMark: 1 << 20 });
  }
}

/** A snapshot laid out as a directory (unpacked bundle, lab capture, fixture). */
export class DirectorySnapshot extends FileSnapshot implements Snapshot {
  private cachedManifest: Manifest | undefined;

  constructor(
    readonly root: string,
    readonly origin: string = root,
    private readonly onClose?: () => Promise<void>,
  ) {
    super();
  }

  describe(path: string): string {
    return `${this.origin}:${path}`;
  }

  protected fileOf(path: string): string {
    return join(this.root, path);
  }

  async pids(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(join(this.root, 'proc'));
    } catch {
      return [];
    }
    return names
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  }

  async slabTraceFiles(): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    let names: string[];
    try {
      names = await readdir(join(this.root, 'slab'));
    } catch {
      return out;
    }
    for (const n of names) {
      const dot = n.lastIndexOf('.');
      const kind = n.slice(dot + 1);
      if (dot <= 0 || !(SLAB_TRACE_KINDS as readonly string[]).includes(kind)) continue;
      const cache = n.slice(0, dot);
      let set = out.get(cache);
      if (!set) {
        set = new Set();
        out.set(cache, set);
      }
      set.add(kind);
    }
    return out;
  }

  async manifest(): Promise<Manifest> {
    if (this.cachedManifest) return this.cachedManifest;
    const text = await this.readText(MANIFEST_PATH);
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new MemsleuthError(
          'BAD_INPUT',
          `${this.describe(MANIFEST_PATH)}: not valid JSON (${String(e)})`,
          {
            file: this.describe(MANIFEST_PATH),
          },
        );
      }
      const m = parsed as Partial<Manifest>;
      if (m.format !== MANIFEST_FORMAT) {
        throw new MemsleuthError(
          'BAD_INPUT',
          `${this.describe(MANIFEST_PATH)}: expected format "${MANIFEST_FORMAT}", found ${JSON.stringify(m.format)}`,
          { file: this.describe(MANIFEST_PATH), hint: 'was this written by a newer memsleuth?' },
        );
      }
      this.cachedManifest = m as Manifest;
      return this.cachedManifest;
    }
    this.cachedManifest = await this.synthesiseManifest();
    return this.cachedManifest;
  }

  /** Directories without a manifest (older lab captures): list what is there. */
  private async synthesiseManifest(): Promise<Manifest> {
    const files: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      const entries = await readdir(join(this.root, rel), { withFileTypes: true });
      for (const e of entries) {
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(p);
        else files.push(p);
      }
    };
    await walk('');
    files.sort();
    const present = new Set(files);
    return {
      format: MANIFEST_FORMAT,
      tool: 'unknown (no manifest.json)',
      hostname: 'unknown',
      kernelRelease: 'unknown',
      pageSizeBytes: 4096,
      time: new Date(0).toISOString(),
      uptimeSeconds: 0,
      files,
      missing: SYSTEM_SOURCES.filter((s) => !present.has(s.path)).map((s) => ({
        path: s.path,
        reason: 'not in snapshot',
        enable: s.enable,
      })),
    };
  }

  async close(): Promise<void> {
    await this.onClose?.();
  }
}

/** True when `path` names a tar.gz bundle rather than a directory. */
async function isBundleFile(path: string): Promise<boolean> {
  const st = await stat(path);
  return st.isFile();
}

/**
 * Open a snapshot bundle (.tar.gz) or directory. A bundle is unpacked into a private
 * temporary directory that `close()` removes.
 */
export async function openSnapshot(path: string): Promise<Snapshot> {
  const abs = resolve(path);
  let bundle: boolean;
  try {
    bundle = await isBundleFile(abs);
  } catch (e) {
    throw new MemsleuthError('IO', `${path}: cannot open snapshot (${errnoReason(e)})`, {
      file: path,
      hint: 'give a bundle written by `memsleuth snapshot -o FILE` or a snapshot directory',
    });
  }
  if (!bundle) return new DirectorySnapshot(abs, path);
  const { extract } = await import('tar');
  const dir = await mkdtemp(join(tmpdir(), 'memsleuth-bundle-'));
  try {
    await extract({ file: abs, cwd: dir, strict: true });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new MemsleuthError(
      'BAD_INPUT',
      `${path}: not a memsleuth snapshot bundle (${(e as Error).message})`,
      {
        file: path,
        hint: 'bundles are .tar.gz files written by `memsleuth snapshot -o FILE`',
      },
    );
  }
  const snap = new DirectorySnapshot(dir, path, () => rm(dir, { recursive: true, force: true }));
  await snap.manifest();
  return snap;
}

export { PROCESS_FILES };
