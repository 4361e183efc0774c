import { describe, expect, it } from 'vitest';
import { rng } from '../../test/rng.js';
import { type Frame, FrameLines, formatFrame, makeFrame, ownFrame, parseFrame, printsAs } from './frame.js';

/** A frame as a kernel prints it, or one of the odd ones (raw address, no length, no offset). */
function randomFrame(next: () => number): Frame {
  const names = ['kmalloc_trace', '__kmalloc_noprof', 'a', 'do_syscall_64', 'x_v17', '0xffffffff81000000'];
  const mods = ['leaky', 'nvme', 'e1000e'];
  const func = names[next() % names.length]! + (next() % 3 === 0 ? `_${next() % 1000}` : '');
  const offset = next() % 5 === 0 ? undefined : next() % 4 === 0 ? 0 : next() % 0x100000;
  const length = offset === undefined || next() % 6 === 0 ? undefined : 1 + (next() % 0xfffff);
  const module = next() % 3 === 0 ? mods[next() % mods.length] : undefined;
  return makeFrame(func, offset, length, module);
}

describe('printsAs', () => {
  it('is formatFrame(f) === t, for the frame itself and for texts one edit away', () => {
    const next = rng(17);
    for (let i = 0; i < 20_000; i++) {
      const f = randomFrame(next);
      const text = formatFrame(f);
      expect(printsAs(f, text)).toBe(true);
      // Another frame's text, and this one's with one character changed, dropped or added.
      const g = randomFrame(next);
      expect(printsAs(f, formatFrame(g))).toBe(formatFrame(g) === text);
      const at = next() % (text.length + 1);
      const edits = [
        text.slice(0, at) + text.slice(at + 1),
        `${text.slice(0, at)}0${text.slice(at)}`,
        `${text.slice(0, at)}f${text.slice(at + 1)}`,
        `${text} `,
      ];
      for (const t of edits) expect(printsAs(f, t)).toBe(t === text);
    }
  });

  it('reads hex as formatFrame writes it: lowercase, no leading zeros', () => {
    const f = makeFrame('f', 0x1a, 0x30, 'm');
    expect(printsAs(f, 'f+0x1a/0x30 [m]')).toBe(true);
    expect(printsAs(f, 'f+0x1A/0x30 [m]')).toBe(false);
    expect(printsAs(f, 'f+0x01a/0x30 [m]')).toBe(false);
    expect(printsAs(makeFrame('f', 0), 'f+0x0')).toBe(true);
    expect(printsAs(makeFrame('f', 2 ** 40 + 5, 7), `f+0x${(2 ** 40 + 5).toString(16)}/0x7`)).toBe(true);
  });
});

describe('FrameLines', () => {
  it('gives for every line the frame parseFrame gives, whatever was kept before', () => {
    const next = rng(5);
    const lines = new FrameLines(300);
    const pool: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      const f = randomFrame(next);
      // Some lines print back as themselves, some do not (leading zeros, uppercase hex).
      const t = formatFrame(f);
      pool.push(next() % 5 === 0 ? t.replace('+0x', '+0x0').replace(/[a-f]/, (c) => c.toUpperCase()) : t);
    }
    for (let i = 0; i < 20_000; i++) {
      const t = pool[next() % pool.length]!;
      let f = lines.get(t);
      const hit = f !== undefined;
      if (f === undefined) f = lines.keep(t, parseFrame(t)!);
      expect(f).toEqual(parseFrame(t));
      if (hit) expect(formatFrame(f)).toBe(t);
    }
  });

  it('hands out one object per kept line, as a copy that holds no view of the line', () => {
    const lines = new FrameLines();
    const text = `${'x'.repeat(100)}|kmalloc_trace_long_name+0x2a/0x40 [leaky]`.slice(101);
    expect(lines.get(text)).toBeUndefined();
    const f = lines.keep(text, parseFrame(text)!);
    expect(lines.get(text)).toBe(f);
    expect(f).toEqual(ownFrame(parseFrame(text)!));
  });

  it('keeps no more lines than its limit, and still parses the rest', () => {
    const lines = new FrameLines(2);
    const texts = ['a+0x1/0x2', 'b+0x1/0x2', 'c+0x1/0x2'];
    for (const t of texts) if (lines.get(t) === undefined) lines.keep(t, parseFrame(t)!);
    expect(lines.get('a+0x1/0x2')).toBeDefined();
    expect(lines.get('b+0x1/0x2')).toBeDefined();
    expect(lines.get('c+0x1/0x2')).toBeUndefined();
  });
});
