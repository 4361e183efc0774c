/**
 * Reading snapshot bundles (.tar.gz) safely: unpacking is bounded (bytes and entries,
 * checked at each entry's header, before its bytes are written), only regular files and
 * directories are accepted, the temporary directory goes away on every path (errors,
 * `close()`, exit, SIGINT, SIGTERM), and one member can be streamed without unpacking.
 */
import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MemsleuthError } from '../model/errors.js';
import { formatBytes } from '../model/units.js';

export interface BundleLimits {
  /** Bytes written to the temporary directory, all members together. */
  maxBytes: number;
  /** Entries (files and directories) in the archive. */
  maxEntries: number;
}

/**
 * Far above a real snapshot: the lab's bundles unpack to 4-6 MB in 342-404 entries, this
 * project's VM to 0.9 MB in 902 entries; a machine with 10,000 processes has about 60,000.
 * Streamed members (page_owner, kmemleak) are not written and do not count. Overridden by
 * MEMSLEUTH_BUNDLE_MAX_BYTES and MEMSLEUTH_BUNDLE_MAX_ENTRIES.
 */
export const DEFAULT_BUNDLE_LIMITS: BundleLimits = { maxBytes: 2 ** 30, maxEntries: 200_000 };

/**
 * The largest member written: what is read whole as text (MAX_TEXT_BYTES in snapshot.ts).
 * A bigger one could not be read anyway, so it is refused at its header.
 */
export const MAX_MEMBER_BYTES = 256 * 2 ** 20;

/** Free space left on the temporary directory's filesystem while unpacking: 5% or 256 MiB, whichever is more. */
const RESERVE_FRACTION = 0.05;
const RESERVE_MIN_BYTES = 256 * 2 ** 20;

export function bundleLimits(
  env: NodeJS.ProcessEnv = process.env,
  given: Partial<BundleLimits> = {},
): BundleLimits {
  const fromEnv = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1)
      throw new MemsleuthError('USAGE', `${name}: expected a whole number >= 1, found ${JSON.stringify(v)}`);
    return n;
  };
  return {
    maxBytes: given.maxBytes ?? fromEnv('MEMSLEUTH_BUNDLE_MAX_BYTES') ?? DEFAULT_BUNDLE_LIMITS.maxBytes,
    maxEntries:
      given.maxEntries ?? fromEnv('MEMSLEUTH_BUNDLE_MAX_ENTRIES') ?? DEFAULT_BUNDLE_LIMITS.maxEntries,
  };
}

// ---- temporary directories, removed on every way out ---------------------------------------

const live = new Set<string>();
let hooked = false;

/** Sleep this thread (no callback runs meanwhile; libuv's threads go on). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Remove every live directory; one that fails stays listed (the exit handler tries again).
 * On a signal (`settle`), writes the unpacker queued before it can still be landing (they run
 * on libuv's threads): a file created during the walk made rmSync throw ENOTEMPTY (the process
 * then died of that exception, exit status 1, instead of the signal: once in a full suite,
 * 2026-12-04), and a queued mkdir could make the directory again after it was removed (a bundle
 * directory left behind under load, 2026-12-06). So each is removed, this thread sleeps 20 ms
 * (no callback runs, so nothing new is queued, while the queued writes land), and it is removed
 * again until it stays gone, for up to 2 s.
 */
function removeAll(settle = false): void {
  for (const d of [...live]) {
    const until = Date.now() + 2000;
    for (;;) {
      try {
        rmSync(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 10 });
      } catch {
        // Still there: tried again below, or left listed.
      }
      if (settle) sleepSync(20);
      if (!existsSync(d)) {
        live.delete(d);
        break;
      }
      if (!settle || Date.now() > until) break;
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  removeAll(true);
  unhook();
  // Die of the signal as if no handler had been installed (exit status 128 + n).
  process.kill(process.pid, signal);
}

const removeAtExit = (): void => removeAll();

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', removeAtExit);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', removeAtExit);
}

/** A private temporary directory that is removed at exit or on SIGINT/SIGTERM if nothing removed it before. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  live.add(dir);
  hook();
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
  if (live.size === 0) unhook();
}

/** Temporary directories made and not yet removed (for tests). */
export function liveTempDirs(): string[] {
  return [...live];
}

// ---- unpacking -----------------------------------------------------------------------------

/** A member's name as a snapshot path: `./meminfo` and `meminfo` are the same. */
export function memberPath(p: string): string {
  return posix.normalize(p.replace(/^(\.\/)+/, '')).replace(/\/$/, '');
}

const REGULAR = new Set(['File', 'OldFile', 'ContiguousFile']);

function badBundle(file: string, why: string, hint?: string): MemsleuthError {
  return new MemsleuthError('BAD_INPUT', `${file}: not a usable snapshot bundle: ${why}`, {
    file,
    hint: hint ?? 'bundles are .tar.gz files written by `memsleuth snapshot -o FILE` or memsleuth-collect.sh',
  });
}

export interface Unpacked {
  entries: number;
  bytes: number;
  /** Members left in the archive (streamed on demand), with their sizes. */
  streamed: Map<string, number>;
}

/**
 * Unpack `file` into `dir`: regular files and directories only, at most `limits` (and never
 * so much that the filesystem of `dir` would keep less than 5% or 256 MiB free). Members in
 * `stream` are not written: they are read from the archive when asked for.
 */
export async function unpackBundle(
  file: string,
  dir: string,
  opts: { limits: BundleLimits; stream: ReadonlySet<string>; name?: string },
): Promise<Unpacked> {
  const name = opts.name ?? file;
  const { Unpack } = await import('tar');
  let room = opts.limits.maxBytes;
  let roomWhy = `the limit of ${formatBytes(opts.limits.maxBytes)} (MEMSLEUTH_BUNDLE_MAX_BYTES)`;
  try {
    const fs = await statfs(dir);
    const total = fs.blocks * fs.bsize;
    const free = fs.bavail * fs.bsize - Math.max(RESERVE_MIN_BYTES, total * RESERVE_FRACTION);
    if (free < room) {
      room = Math.max(0, free);
      roomWhy = `the free space of ${dir}'s filesystem (keeping 5% or 256 MiB free)`;
    }
  } catch {
    // statfs is not everywhere: the configured limit stands.
  }
  const done: Unpacked = { entries: 0, bytes: 0, streamed: new Map() };
  let failure: MemsleuthError | undefined;
  const unpack = new Unpack({
    cwd: dir,
    strict: true,
    // Never trust the archive's owners or times (modes are set in the filter).
    preserveOwner: false,
    noMtime: true,
    filter: (path, entry) => {
      if (failure) return false;
      const e = entry as { type: string; size: number; mode?: number };
      const fail = (err: MemsleuthError) => {
        failure = err;
        unpack.abort(err);
        return false;
      };
      done.entries++;
      if (done.entries > opts.limits.maxEntries) {
        return fail(
          badBundle(
            name,
            `more than ${opts.limits.maxEntries} entries (MEMSLEUTH_BUNDLE_MAX_ENTRIES)`,
            'a real snapshot has one entry per captured file; raise MEMSLEUTH_BUNDLE_MAX_ENTRIES if this one is real',
          ),
        );
      }
      const p = memberPath(path);
      // Readable by us whatever the archive says (a mode of 000 would hide a file).
      e.mode = e.type === 'Directory' ? 0o755 : 0o644;
      if (e.type === 'Directory') return true;
      if (!REGULAR.has(e.type)) {
        return fail(
          badBundle(name, `${JSON.stringify(p)} is a ${e.type}: only regular files and directories`),
        );
      }
      if (opts.stream.has(p)) {
        done.streamed.set(p, e.size);
        return false;
      }
      if (e.size > MAX_MEMBER_BYTES) {
        return fail(
          badBundle(
            name,
            `${JSON.stringify(p)} is ${formatBytes(e.size)}: larger than any kernel text source (${formatBytes(MAX_MEMBER_BYTES)})`,
          ),
        );
      }
      done.bytes += e.size;
      if (done.bytes > room) {
        return fail(
          badBundle(
            name,
            `unpacking it takes more than ${formatBytes(room)}, ${roomWhy}`,
            'a real snapshot is far smaller; raise MEMSLEUTH_BUNDLE_MAX_BYTES if this one is real',
          ),
        );
      }
      return true;
    },
  });
  try {
    await pipeline(createReadStream(file), unpack);
  } catch (e) {
    if (failure) throw failure;
    throw badBundle(name, (e as Error).message);
  }
  if (failure) throw failure;
  return done;
}

/**
 * Stream one member of a bundle without unpacking anything: undefined when it is not
 * there. Reading stops at the end of the member; destroying the stream stops it early.
 */
export async function openBundleMember(
  file: string,
  member: string,
  name = file,
): Promise<Readable | undefined> {
  const { Parser } = await import('tar');
  const want = memberPath(member);
  const src = createReadStream(file);
  const parser = new Parser({ strict: true, filter: (p) => memberPath(p) === want });
  return new Promise<Readable | undefined>((resolve, reject) => {
    let out: PassThrough | undefined;
    const stop = () => {
      src.unpipe(parser);
      src.destroy();
    };
    parser.on('entry', (entry) => {
      if (out) {
        entry.resume();
        return;
      }
      if (!REGULAR.has(entry.type)) {
        stop();
        reject(
          badBundle(name, `${JSON.stringify(want)} is a ${entry.type}: only regular files and directories`),
        );
        return;
      }
      const o = new PassThrough({ highWaterMark: 1 << 20 });
      out = o;
      entry.on('end', () => {
        o.end();
        stop();
      });
      o.on('close', stop);
      entry.pipe(o);
      resolve(o);
    });
    const failed = (e: Error) => {
      stop();
      const err = e instanceof MemsleuthError ? e : badBundle(name, e.message);
      if (out) out.destroy(err);
      else reject(err);
    };
    parser.on('error', failed);
    src.on('error', failed);
    parser.on('end', () => {
      if (!out) resolve(undefined);
    });
    src.pipe(parser);
  });
}
