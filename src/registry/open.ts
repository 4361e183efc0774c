import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { openBundleMember } from '../capture/archive.js';
import { openLiveSnapshot } from '../capture/live.js';
import { openSnapshot, STREAMED_MEMBERS } from '../capture/snapshot.js';
import { SourceFileSnapshot } from '../capture/source_file.js';
import { errnoReason, MemsleuthError } from '../model/errors.js';
import type { Snapshot, SourceName } from '../model/snapshot.js';
import { slabTraceFileCache } from '../sources/slab_traces.js';
import { SnapshotData, type SourceValue } from './data.js';
import { ENTRIES, ENTRY_BY_NAME } from './index.js';
import type { ReadOptions } from './types.js';

export interface OpenInputOptions {
  /** The one source the command reads: a raw file that is not recognised is read as this. */
  expect?: SourceName;
  /** Standard input, for `-` (only with `expect`). */
  stdin?: NodeJS.ReadableStream;
}

/** Bytes of a raw file looked at to tell which kernel source it is. */
const HEAD_BYTES = 64 * 1024;

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A regular file starting with the gzip magic (a bundle). */
async function isGzip(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    const head = await readHead(path);
    return head[0] === 0x1f && head[1] === 0x8b;
  } catch {
    return false;
  }
}

/** Which kernel source a raw file is, from its first bytes and its name. */
export function recogniseSource(head: string, file: string): SourceName | undefined {
  if (slabTraceFileCache(file)) return 'slab_traces';
  return ENTRIES.find((e) => e.recognise?.(head, basename(file)))?.name;
}

function sourceFile(path: string, name: SourceName, stdin?: NodeJS.ReadableStream): Snapshot {
  if (name === 'slab_traces') {
    const s = slabTraceFileCache(path);
    if (!s) {
      throw new MemsleuthError('USAGE', `${path}: which slab cache is this?`, {
        hint: 'name a saved trace file <cache>.alloc_traces (or .alloc_calls), or give a snapshot',
      });
    }
    return new SourceFileSnapshot(path, `slab/${s.cache}.${s.kind}`, name, stdin);
  }
  return new SourceFileSnapshot(path, ENTRY_BY_NAME[name].location.path, name, stdin);
}

function readerOf(name: SourceName): string {
  const cmd = ENTRY_BY_NAME[name].command;
  return cmd ? `\`memsleuth ${cmd}\` reads it` : `${name} is read with meminfo, in a snapshot`;
}

const KNOWN = () =>
  ENTRIES.filter((e) => e.recognise)
    .map((e) => e.name)
    .join(', ');

/**
 * What a user has at hand, as a Snapshot: a bundle (.tar.gz) or directory from `memsleuth
 * snapshot` or the collector, or one raw kernel file (a saved /proc/vmallocinfo, a page_owner
 * dump, a FIFO, `-`), recognised by its content. A file that is none of them is an error that
 * says what was expected.
 */
export async function openInput(path: string, opts: OpenInputOptions = {}): Promise<Snapshot> {
  const { expect } = opts;
  if (path === '-') {
    if (!expect || !opts.stdin) {
      throw new MemsleuthError('USAGE', '-: this command does not read standard input', {
        hint: 'give a snapshot, a snapshot directory or a saved kernel file',
      });
    }
    return sourceFile('-', expect, opts.stdin);
  }
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (e) {
    throw new MemsleuthError('IO', `${path}: cannot open snapshot (${errnoReason(e)})`, {
      file: path,
      hint: 'give a bundle written by `memsleuth snapshot -o FILE`, a snapshot directory or a saved kernel file',
    });
  }
  if (st.isDirectory()) return openSnapshot(path);
  if (!st.isFile()) {
    // A FIFO or a device: its bytes cannot be peeked at without consuming them.
    if (expect) return sourceFile(path, expect);
    throw new MemsleuthError('USAGE', `${path}: not a regular file or directory`, {
      hint: 'pipes work with commands that read one source (page-owner, kmemleak)',
    });
  }
  let head: Buffer;
  try {
    head = await readHead(path);
  } catch (e) {
    throw new MemsleuthError('IO', `${path}: cannot read (${errnoReason(e)})`, { file: path });
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return openSnapshot(path);
  const text = head.toString('utf8');
  const found = recogniseSource(text, path);
  if (found && expect && found !== expect) {
    throw new MemsleuthError('BAD_INPUT', `${path}: this is ${found}, not ${expect}`, {
      file: path,
      hint: `${readerOf(found)}; ${expect} comes from ${ENTRY_BY_NAME[expect].location.livePath}`,
    });
  }
  if (found || expect) return sourceFile(path, found ?? expect!);
  throw new MemsleuthError(
    'BAD_INPUT',
    `${path}: not a snapshot bundle, a snapshot directory or a kernel memory file memsleuth knows`,
    {
      file: path,
      hint: `raw files it reads: ${KNOWN()}; bundles come from \`memsleuth snapshot -o FILE\``,
    },
  );
}

/** INPUT (see openInput), or this machine now when it is absent. */
export async function openInputOrLive(
  path: string | undefined,
  opts: OpenInputOptions = {},
): Promise<Snapshot> {
  return path === undefined ? openLiveSnapshot() : openInput(path, opts);
}

/**
 * Open every input, run `fn`, and close them all — also when a later one fails to open or
 * `fn` throws, so no unpacked bundle is left in the temporary directory.
 */
export async function withInputs<P extends string[], T>(
  paths: [...P],
  fn: (snaps: { [K in keyof P]: Snapshot }) => Promise<T>,
  opts: OpenInputOptions = {},
): Promise<T> {
  const snaps: Snapshot[] = [];
  try {
    for (const p of paths) snaps.push(await openInput(p, opts));
    return await fn(snaps as { [K in keyof P]: Snapshot });
  } finally {
    for (const s of snaps) await s.close();
  }
}

/**
 * One source of an input (a raw file, a pipe, `-`, a snapshot) for the commands that stream one
 * big source (page_owner, kmemleak): `input` is the file's path when the bytes are a file on
 * disk (its reader may then split it), else a stream. `close` releases the snapshot.
 */
export async function openSourceInput(
  path: string,
  name: SourceName,
  opts: { stdin?: NodeJS.ReadableStream } = {},
): Promise<{ input: string | Readable; file: string; close(): Promise<void> }> {
  const loc = ENTRY_BY_NAME[name].location;
  if (STREAMED_MEMBERS.has(loc.path) && path !== '-' && (await isGzip(path))) {
    // A bundle: stream the member out of the archive, nothing is unpacked.
    const stream = await openBundleMember(path, loc.path);
    if (!stream) {
      throw new MemsleuthError('UNAVAILABLE', `${path}:${loc.path}: not present`, {
        hint: `the snapshot has no ${name}. To capture it: ${loc.enable}`,
      });
    }
    return { input: stream, file: `${path}:${loc.path}`, close: async () => void stream.destroy() };
  }
  const snap = await openInput(path, { expect: name, ...opts });
  const local = snap.localFile?.(loc.path);
  if (local !== undefined) {
    try {
      await access(local, constants.R_OK);
    } catch {
      const err = await unavailableError(snap, name);
      await snap.close();
      throw err;
    }
    return { input: local, file: snap.describe(loc.path), close: () => snap.close() };
  }
  const stream = await snap.openStream(loc.path);
  if (!stream) {
    const err = await unavailableError(snap, name);
    await snap.close();
    throw err;
  }
  return { input: stream, file: snap.describe(loc.path), close: () => snap.close() };
}

/** The uid this process runs as (undefined where the platform has none). */
function euid(): number | undefined {
  return process.geteuid?.();
}

/**
 * The error for a source a command needs and the input lacks, with the hint that fits who
 * asks and where: on this machine as a user, "run as root"; as root, how to enable it in the
 * kernel; in a snapshot, that it was captured without it and how to capture it.
 */
export async function unavailableError(snap: Snapshot, name: SourceName): Promise<MemsleuthError> {
  const entry = ENTRY_BY_NAME[name];
  const loc = entry.location;
  const manifest = await snap.manifest().catch(() => undefined);
  const listed = manifest?.missing.find((m) => m.path === loc.path);
  const why = listed?.reason ?? snap.whyMissing(loc.path) ?? entry.absentReason?.(snap) ?? 'not present';
  let hint: string;
  if (snap.origin !== 'live') {
    hint = `this snapshot was captured without ${name}. To capture it: ${listed?.enable ?? loc.enable}`;
  } else if (why === 'permission denied' && euid() !== 0) {
    hint = `run as root: ${loc.livePath} is readable by root only`;
  } else {
    hint = `To enable: ${listed?.enable ?? loc.enable}`;
  }
  return new MemsleuthError('UNAVAILABLE', `${snap.describe(loc.path)}: ${why}`, { hint });
}

/** One source of an input, loaded (read and parsed), or the error that says why it is not there. */
export async function requireSource<N extends SourceName>(
  snap: Snapshot,
  name: N,
  options: ReadOptions = {},
): Promise<SourceValue<N>> {
  const value = await new SnapshotData(snap, options, ENTRY_BY_NAME).get(name);
  if (value === undefined) throw await unavailableError(snap, name);
  return value;
}
