/**
 * Mutations of real captures for the fuzz suite: what truncation, corruption and hostile
 * editing do to a kernel file. Each mutation works on bytes and says what it did.
 */
import fc from 'fast-check';

export interface Mutation {
  /** For the failure report: what was done. */
  what: string;
  apply(input: Buffer): Buffer;
  /** The result was cut in the middle of a line (no final newline) and is not empty. */
  cut?: boolean;
}

const lineStarts = (b: Buffer): number[] => {
  const s = [0];
  for (let i = b.indexOf(10); i >= 0 && i + 1 < b.length; i = b.indexOf(10, i + 1)) s.push(i + 1);
  return s;
};

const lineAt = (b: Buffer, k: number): [number, number] => {
  const starts = lineStarts(b);
  const start = starts[k % starts.length]!;
  const nl = b.indexOf(10, start);
  return [start, nl < 0 ? b.length : nl + 1];
};

const NUMBERS = [
  '99999999999999999999',
  '18446744073709551616',
  '9007199254740993',
  '-1',
  '-99999',
  '0',
  '4294967296',
];

/** One mutation, chosen and placed by fast-check (so a failing case shrinks and replays from its seed). */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map(
    (at): Mutation => ({
      what: `truncate at byte ${at}`,
      apply: (b) => b.subarray(0, at % (b.length + 1)),
    }),
  ),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(
    ([at, v]): Mutation => ({
      what: `byte ${at} := ${v}`,
      apply: (b) => {
        if (b.length === 0) return b;
        const c = Buffer.from(b);
        c[at % c.length] = v;
        return c;
      },
    }),
  ),
  fc.nat().map(
    (k): Mutation => ({
      what: `duplicate line ${k}`,
      apply: (b) => {
        const [s, e] = lineAt(b, k);
        return Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]);
      },
    }),
  ),
  fc.nat().map(
    (k): Mutation => ({
      what: `delete line ${k}`,
      apply: (b) => {
        const [s, e] = lineAt(b, k);
        return Buffer.concat([b.subarray(0, s), b.subarray(e)]);
      },
    }),
  ),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 4096 })).map(
    ([k, extra]): Mutation => ({
      what: `a line of ${(1 << 20) + extra} bytes before line ${k}`,
      apply: (b) => {
        const [s] = lineAt(b, k);
        const long = Buffer.alloc((1 << 20) + extra, 0x37);
        return Buffer.concat([b.subarray(0, s), long, Buffer.from('\n'), b.subarray(s)]);
      },
    }),
  ),
  fc
    .tuple(
      fc.nat(),
      fc.constantFrom(
        Buffer.from([0xff, 0xfe]),
        Buffer.from([0xc3]),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from([0]),
      ),
    )
    .map(
      ([at, bytes]): Mutation => ({
        what: `insert non-UTF-8 ${bytes.toString('hex')} at byte ${at}`,
        apply: (b) => {
          const i = at % (b.length + 1);
          return Buffer.concat([b.subarray(0, i), bytes, b.subarray(i)]);
        },
      }),
    ),
  fc.tuple(fc.nat(), fc.constantFrom(...NUMBERS)).map(
    ([k, n]): Mutation => ({
      what: `number ${k} := ${n}`,
      apply: (b) => {
        const text = b.toString('latin1');
        const nums = [...text.matchAll(/\d+/g)];
        if (nums.length === 0) return b;
        const m = nums[k % nums.length]!;
        return Buffer.from(text.slice(0, m.index) + n + text.slice(m.index! + m[0].length), 'latin1');
      },
    }),
  ),
  fc.constant<Mutation>({ what: 'empty file', apply: () => Buffer.alloc(0) }),
);

/** Mark whether a mutated input ends in the middle of a line. */
export function isCut(b: Buffer): boolean {
  return b.length > 0 && b[b.length - 1] !== 10;
}

/** Every number in a parsed value is finite; for the failure report, where one is not. */
export function nonFinite(value: unknown, path = '$', seen = new Set<unknown>()): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${path} = ${value}`;
  if (value === null || typeof value !== 'object' || seen.has(value)) return undefined;
  seen.add(value);
  for (const [k, v] of Object.entries(value)) {
    const bad = nonFinite(v, `${path}.${k}`, seen);
    if (bad) return bad;
  }
  return undefined;
}

/** Runs per property: the normal run's count, times MEMSLEUTH_FUZZ_RUNS (a multiplier, default 1). */
export function runs(base: number): number {
  const k = Number(process.env.MEMSLEUTH_FUZZ_RUNS ?? 1);
  if (!Number.isFinite(k) || k <= 0)
    throw new Error(`MEMSLEUTH_FUZZ_RUNS: expected a number > 0, found ${process.env.MEMSLEUTH_FUZZ_RUNS}`);
  return Math.max(1, Math.round(base * k));
}

/** The seed of this run: MEMSLEUTH_FUZZ_SEED to replay one, else a fixed one (every run the same cases). */
export const SEED = Number(process.env.MEMSLEUTH_FUZZ_SEED ?? 20261202);
