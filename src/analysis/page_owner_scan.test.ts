import { describe, expect, it } from 'vitest';
import { rng } from '../../test/rng.js';
import { ChunkScanner, K_ODD, T_COMM, T_META, T_PID, T_PREFIX, T_REST, TUPLE } from './page_owner_scan.js';

interface Rec {
  prefix: string;
  pid: number;
  comm: string;
  stack: string;
}

const text = (r: Rec) =>
  `${r.prefix}, pid ${r.pid}, tgid ${r.pid} (${r.comm}), ts 100 ns\n` +
  'PFN 0x1000 type Movable Block 2 type Movable Flags 0x0(zone=1)\n' +
  `${r.stack}\n\n`;

/** Each record's prefix, task name and stack as the scanner read them (all in one buffer). */
function scanned(recs: Rec[]): { prefix: string; comm: string; stack: string; pid: number }[] {
  const scanner = new ChunkScanner();
  const b = Buffer.from(recs.map(text).join(''), 'latin1');
  expect(scanner.scan(b, 0, b.length, 0, true)).toBe(b.length);
  const c = scanner.flush(0);
  const d = scanner.dict;
  const out = [];
  for (let i = 0; i < c.tuples.length; i += TUPLE) {
    expect(c.tuples[i + T_META]! & K_ODD).toBe(0);
    out.push({
      prefix: d.prefixes.text(c.tuples[i + T_PREFIX]!),
      comm: d.comms.text(c.tuples[i + T_COMM]!),
      stack: d.restText(c.tuples[i + T_REST]!),
      pid: c.tuples[i + T_PID]!,
    });
  }
  return out;
}

describe('ChunkScanner', () => {
  // The scanner takes a record's prefix, task name and stack from the record before it when
  // their bytes are the same: records that differ from their neighbour anywhere (first or
  // last byte, inside or past the words compared in JavaScript) must still read as themselves.
  it("reads every record's own prefix, task name and stack, next to look-alike neighbours", () => {
    const next = rng(11);
    const prefixes = [
      'Page allocated via order 0, mask 0x0()',
      'Page allocated via order 0, mask 0x1()',
      'Page allocated via order 1, mask 0x0()',
      'Page allocated via order 0, mask 0x0(a)',
      'Page allocated via order 0, mask 0x0(GFP_KERNEL)',
    ];
    const comms = ['ab', 'ac', 'bb', 'abc', 'kworker/0:1', 'kworker/0:2', 'a'];
    // Stacks of 11 bytes (shorter than a word run, length not a multiple of 4) to long ones;
    // pairs that differ only in their first, last or 40th byte.
    const long = ` ${'f'.repeat(45)}+0x1/0x2\n g+0x3/0x4`;
    const stacks = [
      ' a+0x1/0x2',
      ' a+0x1/0x3',
      ' b+0x1/0x2',
      long,
      `${long.slice(0, 40)}X${long.slice(41)}`,
      `${long.slice(0, -1)}5`,
      ` x${long.slice(2)}`,
      ` a+0x1/0x2\n ${'q'.repeat(28)}+0x9/0x9`,
    ];
    const recs: Rec[] = [];
    for (let i = 0; i < 3000; i++) {
      // Runs of equal parts, as in a real dump, broken at random.
      const prev = recs[i - 1];
      const pick = <T>(xs: T[], keep: T | undefined) =>
        keep !== undefined && next() % 3 ? keep : xs[next() % xs.length]!;
      recs.push({
        prefix: pick(prefixes, prev?.prefix),
        pid: 1 + (next() % 99999),
        comm: pick(comms, prev?.comm),
        stack: pick(stacks, prev?.stack),
      });
    }
    const got = scanned(recs);
    expect(got).toEqual(
      recs.map((r) => ({ prefix: r.prefix, comm: r.comm, stack: `${r.stack}\n`, pid: r.pid })),
    );
  });
});
