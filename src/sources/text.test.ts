import { describe, expect, it } from 'vitest';
import { rng } from '../../test/rng.js';
import {
  checkLineLengths,
  forEachKernelLine,
  kernelLines,
  numberedLines,
  type ParseOptions,
  requireNonEmpty,
  truncated,
} from './text.js';

/** kernelLines as it was written before it went through forEachKernelLine: the reference. */
function splitLines(text: string, file: string, expected: string, opts: ParseOptions) {
  requireNonEmpty(text, file, expected);
  checkLineLengths(text, file, opts.maxLineBytes);
  const lines = numberedLines(text);
  if (!text.endsWith('\n')) {
    const last = lines.pop()!;
    truncated(file, last.line, `a last line ending in a newline (${expected})`, last.text, opts);
  }
  return lines;
}

/** What a call gives: the lines, the warnings, or the error's message. */
function run(f: (opts: ParseOptions) => { text: string; line: number }[], lenient: boolean): string {
  const warnings: string[] = [];
  try {
    const lines = f({ lenient, onWarning: (w) => warnings.push(w) });
    return JSON.stringify({ lines, warnings });
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

describe('forEachKernelLine', () => {
  it('kernelLines and forEachKernelLine give the lines, warnings and errors of a split, on texts with CR, blank and cut lines', () => {
    const next = rng(5);
    const pieces = ['a', 'bc d', '', '\r', 'x\r', '  7 f+0x1/0x2', 'No data', '\r\r'];
    for (let k = 0; k < 2000; k++) {
      const n = next() % 7;
      let text = '';
      for (let i = 0; i < n; i++) text += `${pieces[next() % pieces.length]}${next() % 5 === 0 ? '' : '\n'}`;
      for (const lenient of [false, true]) {
        const want = run((o) => splitLines(text, 'f', 'lines', o), lenient);
        const got = run((o) => {
          const out: { text: string; line: number }[] = [];
          forEachKernelLine(text, 'f', 'lines', o, (t, line) => out.push({ text: t, line }));
          return out;
        }, lenient);
        expect(got, JSON.stringify(text)).toBe(want);
        expect(
          run((o) => kernelLines(text, 'f', 'lines', o), lenient),
          JSON.stringify(text),
        ).toBe(want);
      }
    }
  });
});
