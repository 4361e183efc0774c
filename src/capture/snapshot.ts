import { createRequire } from 'node:module';
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
import { lineTooLong } from '../sources/text.js';
import type { BundleLimits } from './archive.js';

// Node's built-ins through require, not `import`, on the everyday commands' start-up path: for an
// ES import Node builds a module that reads every export of the built-in, lazy getters too
// (node:fs's ReadStream loads Node's twenty stream modules): 1.3-3 ms of a 50 ms `ps`.
const nodeRequire = createRequire(import.meta.url);
const { closeSync, constants, createReadStream, fstatSync, openSync, readSync } = nodeRequire(
  'node:fs',
) as typeof import('node:fs');
const { access, readdir, stat } = nodeRequire('node:fs/promises') as typeof import('node:fs/promises');
const { join, resolve } = nodeRequire('node:path') as typeof import('node:path');

/**
 * The largest file read whole as text: 256 MiB. Kernel text sources are far smaller (the
 * largest, a big process's smaps, a few MB); page_owner and kmemleak, which can be larger,
 * are streamed. A JavaScript string cannot hold much more than 512 MiB anyway.
 */
export const MAX_TEXT_BYTES = 256 * 2 ** 20;

/** The buffer `readTextFile` reads a file into when it fits (the calls are synchronous). */
const SCRATCH = Buffer.allocUnsafe(65536);

/**
 * Read a file whole as UTF-8, at most `max` bytes: a larger regular file is refused after its
 * first 64 KiB (its size is looked up only then), and a device or pipe that keeps going
 * (/dev/zero) is stopped at the limit.
 * Synchronous: procfs and sysfs files are generated in memory and small, and a thread-pool
 * round trip per file costs more than the read (a recording tick reads three per process).
 */

/** A text source over the limit: `what` is its size, or `more` for a stream that kept going. */
function tooBigError(name: string, what: string, max: number): MemsleuthError {
  return new MemsleuthError(
    'BAD_INPUT',
    `${name}: ${what}: larger than ${max} bytes, not a kernel text source`,
    {
      file: name,
      hint: 'page_owner and kmemleak dumps are streamed by `memsleuth page-owner` and `memsleuth kmemleak`',
    },
  );
}

export function readTextFile(
  file: string,
  max = MAX_TEXT_BYTES,
  name = file,
  opts: { maxLineBytes?: number } = {},
): string {
  const tooBig = (what: string) => tooBigError(name, what, max);
  const fd = openSync(file, 'r');
  try {
    // procfs and sysfs files (nearly every read) fit in one read into a buffer kept for every
    // call and are decoded from there: no fstat() and nothing allocated but the string. A file
    // that fills that buffer is stat'ed once: a regular file larger than `max` is refused
    // without reading the rest, and one of known size gets one buffer for the rest of it.
    // procfs files report size 0: they are read until the end, never past the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    let buf = SCRATCH;
    let used = 0;
    let statted = false;
    const sizeCheck = (): { regular: boolean; size: number } => {
      const st = fstatSync(fd);
      statted = true;
      if (st.isFile() && st.size > max) throw tooBig(`${st.size} bytes`);
      return { regular: st.isFile(), size: st.size };
    };
    // With maxLineBytes, line lengths are checked while reading: a file of one 200 MB line
    // stops after its first MiB, before it is all in memory.
    let line = 1;
    let lineBytes = 0;
    for (;;) {
      const n = readSync(fd, buf, used, buf.length - used, null);
      if (n === 0) break;
      total += n;
      if (total > max) {
        if (!statted) sizeCheck();
        throw tooBig('more');
      }
      if (opts.maxLineBytes !== undefined) {
        let start = used;
        const end = used + n;
        for (;;) {
          const nl = buf.indexOf(10, start);
          if (nl < 0 || nl >= end) {
            lineBytes += end - start;
            break;
          }
          lineBytes += nl - start;
          if (lineBytes > opts.maxLineBytes) break;
          line++;
          lineBytes = 0;
          start = nl + 1;
        }
        if (lineBytes > opts.maxLineBytes) throw lineTooLong(name, line, lineBytes, opts.maxLineBytes);
      }
      used += n;
      if (used === buf.length) {
        let next = Math.min(buf.length * 2, 1 << 20);
        if (!statted) {
          const st = sizeCheck();
          // The rest of a regular file of known size in one buffer (one byte more sees its end).
          if (st.regular && st.size >= total && opts.maxLineBytes === undefined)
            next = Math.max(Math.min(st.size, max) + 1 - total, 4096);
        }
        chunks.push(buf === SCRATCH ? Buffer.from(buf) : buf);
        buf = Buffer.allocUnsafe(next);
        used = 0;
      }
    }
    if (chunks.length === 0) return buf.toString('utf8', 0, used);
    chunks.push(buf.subarray(0, used));
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The buffer `readTextPieces` reads into (its own: a sink may read other files meanwhile). */
const PIECES = Buffer.allocUnsafe(65536);

/**
 * Read a file in pieces of whole lines handed to `sink` as they come (up to 64 KiB each; a
 * longer line comes whole), never holding the file whole: for big files read often (the smaps
 * of a process with thousands of mappings is megabytes, and the recorder reads it every few
 * ticks). A last line without its newline comes last as it is. At most `max` bytes, as
 * readTextFile; the pieces already handed over stand.
 */
export function readTextPieces(
  file: string,
  sink: (text: string) => void,
  max = MAX_TEXT_BYTES,
  name = file,
): void {
  const fd = openSync(file, 'r');
  try {
    let buf = PIECES;
    let used = 0;
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, used, buf.length - used, null);
      if (n === 0) break;
      total += n;
      if (total > max) throw tooBigError(name, 'more', max);
      used += n;
      const cut = buf.lastIndexOf(10, used - 1);
      if (cut < 0) {
        // One line longer than the buffer: a bigger one, until the line ends.
        if (used === buf.length) {
          const bigger = Buffer.allocUnsafe(buf.length * 2);
          buf.copy(bigger, 0, 0, used);
          buf = bigger;
        }
        continue;
      }
      sink(buf.toString('utf8', 0, cut + 1));
      buf.copy(buf, 0, cut + 1, used);
      used -= cut + 1;
    }
    if (used > 0) sink(buf.toString('utf8', 0, used));
  } finally {
    closeSync(fd);
  }
}

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
    return this.readFile(path, (file, name) => readTextFile(file, MAX_TEXT_BYTES, name));
  }

  /**
   * Snapshot.readLines: the file read in pieces of whole lines (readTextPieces). What the sink
   * throws is the caller's and goes to it as it is, never taken for an unreadable file.
   */
  readLines(path: string, sink: (text: string) => void): boolean {
    let thrown: { error: unknown } | undefined;
    const read = this.readFile(
      path,
      (file, name) => {
        readTextPieces(
          file,
          (t) => {
            try {
              sink(t);
            } catch (error) {
              thrown = { error };
              throw error;
            }
          },
          MAX_TEXT_BYTES,
          name,
        );
        return true;
      },
      (e) => thrown !== undefined && e === thrown.error,
    );
    return read === true;
  }

  /**
   * `read` of the file behind a snapshot path (given the file and its name for errors), or
   * undefined when there is none or it cannot be read (why is kept for `whyMissing`). A
   * MemsleuthError (a file over the limit) is thrown: it is the input's fault, not absence.
   */
  protected readFile<T>(
    path: string,
    read: (file: string, name: string) => T,
    /** Errors that are not the file's (a reader's callback threw them): thrown as they are. */
    notTheFile?: (e: unknown) => boolean,
  ): T | undefined {
    const file = this.fileOf(path);
    if (file === undefined) {
      this.failures.set(path, 'not a source of this snapshot');
      return undefined;
    }
    try {
      return read(file, this.describeFile(path));
    } catch (e) {
      if (e instanceof MemsleuthError || notTheFile?.(e)) throw e;
      this.failures.set(path, errnoReason(e));
      return undefined;
    }
  }

  whyMissing(path: string): string | undefined {
    return this.failures.get(path);
  }

  /** Records why a path could not be read (for subclasses). */
  protected failed(path: string, why: string): void {
    this.failures.set(path, why);
  }

  /** How errors name a path (subclasses with `describe` use it). */
  protected describeFile(path: string): string {
    const d = (this as unknown as { describe?: (p: string) => string }).describe;
    return d ? d.call(this, path) : path;
  }

  /** Remember why a read of `path` failed (for readers that make their text themselves). */
  protected noteFailure(path: string, e: unknown): void {
    this.failures.set(path, errnoReason(e));
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

  /** Open fds of a process, from its `proc/<pid>/fd` listing when the capture has one. */
  async fdCount(pid: number): Promise<number | undefined> {
    const text = await this.readText(`proc/${pid}/fd`);
    if (text === undefined) return undefined;
    const { parseFdListing } = await import('../sources/fd_listing.js');
    try {
      return parseFdListing(text, { file: this.describe(`proc/${pid}/fd`) }).length;
    } catch {
      return undefined;
    }
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
      const { parseManifest } = await import('./manifest.js');
      this.cachedManifest = parseManifest(text, this.describe(MANIFEST_PATH));
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

/**
 * Members of a bundle read by streaming (page_owner, kmemleak): never unpacked, read from
 * the archive when asked for, so a dump of gigabytes costs no disk.
 */
export const STREAMED_MEMBERS: ReadonlySet<string> = new Set(['page_owner', 'kmemleak']);

/** An unpacked bundle: a directory snapshot whose streamed members stay in the archive. */
export class BundleSnapshot extends DirectorySnapshot {
  constructor(
    root: string,
    origin: string,
    readonly archive: string,
    private readonly streamed: ReadonlyMap<string, number>,
  ) {
    super(root, origin, async () => (await loadArchive()).removeTempDir(root));
  }

  override localFile(path: string): string | undefined {
    return STREAMED_MEMBERS.has(path) ? undefined : super.localFile(path);
  }

  /** A member streamed from the archive has no file to read in pieces: openStream. */
  override readLines(path: string, sink: (text: string) => void): boolean {
    if (STREAMED_MEMBERS.has(path))
      throw new Error(`BundleSnapshot.readLines: ${path} is streamed from the archive: use openStream`);
    return super.readLines(path, sink);
  }

  override async openStream(path: string): Promise<Readable | undefined> {
    if (!STREAMED_MEMBERS.has(path)) return super.openStream(path);
    if (!this.streamed.has(path)) {
      this.failed(path, 'not present');
      return undefined;
    }
    return (await loadArchive()).openBundleMember(this.archive, path, this.origin);
  }

  override async readText(path: string): Promise<string | undefined> {
    if (!STREAMED_MEMBERS.has(path)) return super.readText(path);
    const stream = await this.openStream(path);
    if (!stream) return undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const c of stream) {
      total += (c as Buffer).length;
      if (total > MAX_TEXT_BYTES) {
        stream.destroy();
        throw new MemsleuthError('BAD_INPUT', `${this.describe(path)}: larger than ${MAX_TEXT_BYTES} bytes`, {
          file: this.describe(path),
        });
      }
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

export interface OpenSnapshotOptions {
  /** Caps on unpacking a bundle (default: bundleLimits() from the environment). */
  limits?: Partial<BundleLimits>;
}

/**
 * Open a snapshot bundle (.tar.gz) or directory. A bundle is unpacked, within `limits`, into
 * a private temporary directory that `close()` removes (and exit, SIGINT or SIGTERM before
 * it); its manifest is checked before it is handed out.
 */
export async function openSnapshot(path: string, opts: OpenSnapshotOptions = {}): Promise<Snapshot> {
  const abs = resolve(path);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(abs);
  } catch (e) {
    throw new MemsleuthError('IO', `${path}: cannot open snapshot (${errnoReason(e)})`, {
      file: path,
      hint: 'give a bundle written by `memsleuth snapshot -o FILE` or a snapshot directory',
    });
  }
  if (st.isDirectory()) return new DirectorySnapshot(abs, path);
  if (!st.isFile()) {
    throw new MemsleuthError('BAD_INPUT', `${path}: not a snapshot bundle or directory`, {
      file: path,
      hint: 'give a bundle written by `memsleuth snapshot -o FILE` or a snapshot directory',
    });
  }
  const { bundleLimits, makeTempDir, removeTempDir, unpackBundle } = await loadArchive();
  const limits = bundleLimits(process.env, opts.limits);
  const dir = makeTempDir('memsleuth-bundle-');
  try {
    const { streamed } = await unpackBundle(abs, dir, { limits, stream: STREAMED_MEMBERS, name: path });
    const snap = new BundleSnapshot(dir, path, abs, streamed);
    await snap.manifest();
    return snap;
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
}

export { PROCESS_FILES };

/**
 * The bundle code (tar, streams), loaded when a bundle is opened: a live snapshot or a
 * directory never needs it, and loading it cost `ps` and every other command about 6 ms.
 */
function loadArchive(): Promise<typeof import('./archive.js')> {
  return import('./archive.js');
}
