import { describe, expect, it } from 'vitest';
import { rng } from '../../test/rng.js';
import {
  checkLineLengths,
  feedChunks,
  forEachKernelLine,
  KernelLineSplitter,
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

describe('KernelLineSplitter', () => {
  it("gives forEachKernelLine's lines, warnings and errors however the text is cut, as text or bytes", () => {
    const next = rng(9);
    const pieces = [
      'a',
      'bc d',
      '',
      '\r',
      'x\r',
      '  7 f+0x1/0x2',
      'No data',
      '\r\r',
      'é€',
      'long line'.repeat(3),
    ];
    for (let k = 0; k < 2000; k++) {
      const n = next() % 7;
      let text = '';
      for (let i = 0; i < n; i++) text += `${pieces[next() % pieces.length]}${next() % 5 === 0 ? '' : '\n'}`;
      const maxLineBytes = next() % 3 === 0 ? 8 : undefined;
      const limit = maxLineBytes === undefined ? {} : { maxLineBytes };
      for (const lenient of [false, true]) {
        const lines = (feed: (s: KernelLineSplitter) => void) => (o: ParseOptions) => {
          const out: { text: string; line: number }[] = [];
          const s = new KernelLineSplitter('f', 'lines', { ...o, ...limit }, (t, line) =>
            out.push({ text: t, line }),
          );
          feed(s);
          s.end();
          return out;
        };
        const want = run((o) => {
          const out: { text: string; line: number }[] = [];
          forEachKernelLine(text, 'f', 'lines', { ...o, ...limit }, (t, line) => out.push({ text: t, line }));
          return out;
        }, lenient);
        // Cut at random places: as strings, and as UTF-8 bytes (a character may be cut).
        const cuts: number[] = [];
        for (let i = next() % 4; i > 0; i--) cuts.push(next() % (text.length + 1));
        cuts.sort((a, b) => a - b);
        const bytes = Buffer.from(text, 'utf8');
        const got = [
          run(
            lines((s) => {
              let at = 0;
              for (const c of [...cuts, text.length]) {
                s.text(text.slice(at, c));
                at = c;
              }
            }),
            lenient,
          ),
          run(
            lines((s) => {
              let at = 0;
              for (const c of [...cuts.map((x) => Math.min(x, bytes.length)), bytes.length]) {
                s.bytes(bytes.subarray(at, c));
                at = c;
              }
            }),
            lenient,
          ),
        ];
        // A line over the limit fails where it is met: the same error, after the same lines
        // (which a caller never sees, since it throws).
        for (const g of got) expect(g, JSON.stringify(text)).toBe(want);
      }
    }
  });

  it('reads a stream of chunks (feedChunks), decoding bytes 64 KiB at a time', async () => {
    const text = Array.from({ length: 30_000 }, (_, i) => `line ${i} ${'é'.repeat(i % 7)}`).join('\n');
    const bytes = Buffer.from(`${text}\n`, 'utf8');
    const chunks = [bytes.subarray(0, 200_001), bytes.subarray(200_001, 200_003), bytes.subarray(200_003)];
    const out: string[] = [];
    const s = new KernelLineSplitter('f', 'lines', {}, (t, line) => {
      expect(line).toBe(out.length + 1);
      out.push(t);
    });
    await feedChunks(
      (async function* () {
        yield* chunks;
      })(),
      s,
    );
    s.end();
    expect(out).toEqual(text.split('\n'));
  });
});
