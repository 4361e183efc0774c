import type { Snapshot } from '../../model/snapshot.js';
import type { ParseOptions, ParseSettings } from '../../sources/text.js';

/** Read one file of a snapshot and parse it, naming the file in errors; undefined when absent. */
export async function readParsed<T>(
  snap: Snapshot,
  path: string,
  parse: (text: string, opts: ParseOptions) => T,
  settings: ParseSettings = {},
): Promise<T | undefined> {
  const text = await snap.readText(path);
  return text === undefined
    ? undefined
    : parse(text, { ...parseSettings(settings), file: snap.describe(path) });
}

/** The parse settings of read options (lenient, onWarning), nothing else. */
export function parseSettings(o: ParseSettings): ParseSettings {
  return {
    ...(o.lenient !== undefined ? { lenient: o.lenient } : {}),
    ...(o.onWarning ? { onWarning: o.onWarning } : {}),
  };
}
