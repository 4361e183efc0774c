import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { SourceName } from '../model/snapshot.js';
import { slabTraceFileCache } from '../sources/slab_traces.js';

/**
 * Whether `path` is a regular file that starts as `head` says one kernel source starts (a
 * page_owner dump, a kmemleak report), and is not named as a slab trace: then openInput would
 * take it as that source, and a command that reads only it can skip loading the registry,
 * which tells every other input apart (60-70 ms of start-up here). Anything else (a snapshot,
 * a pipe, `-`, a file of another kind, one that cannot be read) is false: openInput decides,
 * and reports.
 */
export async function isRawSourceFile(path: string, head: RegExp): Promise<boolean> {
  if (path === '-' || slabTraceFileCache(path)) return false;
  try {
    if (!(await stat(path)).isFile()) return false;
    const fh = await open(path, 'r');
    try {
      const b = Buffer.alloc(128);
      const { bytesRead } = await fh.read(b, 0, b.length, 0);
      return head.test(b.toString('latin1', 0, bytesRead));
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

/**
 * openSourceInput (src/registry/open.ts) for one source, with the registry loaded only when
 * `path` is not a plain file of that source (isRawSourceFile): a saved page_owner dump or
 * kmemleak report, the usual input, opens as it is.
 */
export async function openSourceFile(
  path: string,
  name: SourceName,
  head: RegExp,
  opts: { stdin?: NodeJS.ReadableStream } = {},
): Promise<{ input: string | Readable; file: string; close(): Promise<void> }> {
  if (await isRawSourceFile(path, head)) return { input: path, file: path, close: async () => {} };
  const { openSourceInput } = await import('./open.js');
  return openSourceInput(path, name, opts);
}
