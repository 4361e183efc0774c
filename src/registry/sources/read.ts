import type { Snapshot } from '../../model/snapshot.js';
import type { ParseOptions } from '../../sources/text.js';

/** Read one file of a snapshot and parse it, naming the file in errors; undefined when absent. */
export async function readParsed<T>(
  snap: Snapshot,
  path: string,
  parse: (text: string, opts: ParseOptions) => T,
): Promise<T | undefined> {
  const text = await snap.readText(path);
  return text === undefined ? undefined : parse(text, { file: snap.describe(path) });
}
