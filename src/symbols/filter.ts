/**
 * `memsleuth symbolize`: a streaming filter over any text. Each chunk's complete lines
 * are scanned for frames, the frames go to the symbolizer together (one batch per file),
 * and the lines are written back with ` file:line (inlined …)` after every frame that
 * resolved; all other text passes unchanged. Output follows input chunk by chunk, so
 * `dmesg -w | memsleuth symbolize` prints as the kernel logs.
 */
import type { Symbolizer } from './symbolizer.js';
import { annotateLine, formatResolution, framesInLine } from './text.js';

export interface FilterOptions {
  /** Append the inlined functions too (default true). */
  inlines?: boolean;
}

export interface FilterResult {
  lines: number;
  /** Frames seen, and how many were given a file:line. */
  frames: number;
  resolved: number;
}

/** Annotate complete lines (without their newlines). */
export async function symbolizeLines(
  lines: readonly string[],
  symbolizer: Symbolizer,
  opts: FilterOptions = {},
): Promise<{ lines: string[]; frames: number; resolved: number }> {
  const found = lines.map(framesInLine);
  const results = await Promise.all(found.map((fs) => symbolizer.resolveFrames(fs.map((f) => f.frame))));
  let frames = 0;
  let resolved = 0;
  const out = lines.map((line, i) => {
    const fs = found[i]!;
    if (fs.length === 0) return line;
    frames += fs.length;
    const notes = results[i]!.map((r) => {
      if (r.status !== 'resolved') return undefined;
      resolved++;
      return formatResolution(r, opts);
    });
    return annotateLine(line, fs, notes);
  });
  return { lines: out, frames, resolved };
}

export async function symbolizeStream(
  input: AsyncIterable<Buffer | string>,
  write: (text: string) => void | Promise<void>,
  symbolizer: Symbolizer,
  opts: FilterOptions = {},
): Promise<FilterResult> {
  const total: FilterResult = { lines: 0, frames: 0, resolved: 0 };
  let rest = '';
  const decoder = new TextDecoder('utf-8');
  const emit = async (lines: string[], tail: string) => {
    const r = await symbolizeLines(lines, symbolizer, opts);
    total.lines += lines.length;
    total.frames += r.frames;
    total.resolved += r.resolved;
    const text = r.lines.join('\n') + tail;
    if (text !== '') await write(text);
  };
  for await (const chunk of input) {
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      rest = text;
      continue;
    }
    rest = text.slice(cut + 1);
    await emit(text.slice(0, cut).split('\n'), '\n');
  }
  rest += decoder.decode();
  if (rest !== '') await emit([rest], '');
  return total;
}
