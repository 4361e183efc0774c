/**
 * Differential tests: the kernel's own page_owner_sort (compiled from Debian's
 * linux-source-6.1 and -6.12, see test/page-owner-c/tools.ts) against ours on the lab's
 * real dumps, over a matrix of options; output file, stdout, stderr and exit status
 * must be byte-identical.
 *
 * Time: the C tool reads the whole dump again for every option set and is the slow
 * side (glibc regexec on every record), so a test starts the C runs of all its option
 * sets at once, at most one per core (`cRun`), and runs ours in this process meanwhile,
 * comparing each option set as soon as both sides are done.
 */
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pageOwnerSortBinary } from '../../test/page-owner-c/tools.js';
import { GARBAGE_RECORDS, ODD_RECORDS, writeVariedDump } from '../../test/page-owner-c/varied.js';
import { type LabKernel, type LabMoment, labFixture } from '../../test/paths.js';
import type { ParallelOptions } from './page_owner_parallel.js';
import { glibcMsort, parseSortArgv, runPageOwnerSort, type SortCompat } from './page_owner_sort.js';
import type { PresizeOptions } from './page_owner_sort_engine.js';

const tmp = mkdtempSync(join(tmpdir(), 'pos-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// Building the oracles (unpacking linux-source tarballs) is done once, before the
// tests and outside their timeouts; later runs find them in the cache.
beforeAll(() => {
  pageOwnerSortBinary('6.12');
  pageOwnerSortBinary('6.1');
}, 900_000);

interface Outcome {
  status: number;
  stdout: string;
  stderr: string;
  output: string;
}

// At most one C process per core; a finished run hands its slot to the next.
let freeSlots = Math.max(1, availableParallelism());
const waiting: (() => void)[] = [];
async function withSlot<T>(f: () => Promise<T>): Promise<T> {
  if (freeSlots > 0) freeSlots--;
  else await new Promise<void>((resolve) => waiting.push(resolve));
  try {
    return await f();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else freeSlots++;
  }
}

/** The C tool on `args` (its last one is the output file); never rejects. */
function runC(compat: SortCompat, args: string[], outFile: string): Promise<Outcome> {
  return withSlot(
    () =>
      new Promise<Outcome>((resolve) => {
        rmSync(outFile, { force: true });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        const child = spawn(pageOwnerSortBinary(compat), args, {
          argv0: 'page_owner_sort',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child.stdout.on('data', (b: Buffer) => stdout.push(b));
        child.stderr.on('data', (b: Buffer) => stderr.push(b));
        const done = (status: number, err = '') => {
          let output = '';
          try {
            output = readFileSync(outFile, 'latin1');
          } catch {}
          rmSync(outFile, { force: true });
          resolve({
            status,
            stdout: Buffer.concat(stdout).toString('latin1'),
            stderr: Buffer.concat(stderr).toString('latin1') + err,
            output,
          });
        };
        child.on('error', (e) => done(-1, String(e)));
        child.on('close', (code) => done(code ?? -1));
      }),
  );
}

let cSeq = 0;
/** Starts the C run for `opts` on `input` (output in a file of its own). */
const startC = (compat: SortCompat, opts: string[], input: string) => {
  const out = join(tmp, `c-${cSeq++}.out`);
  return runC(compat, [...opts, input, out], out);
};

/** How our side reads and writes: threads and their chunks, the engine's knobs, a stream, lent buffers. */
interface How {
  parallel?: ParallelOptions & { restCopyBytes?: number; presize?: PresizeOptions; lastScan?: boolean };
  stream?: boolean;
  lend?: number;
}

async function runOurs(compat: SortCompat, args: string[], how: How = {}): Promise<Outcome> {
  const p = parseSortArgv(args, compat, 'page_owner_sort');
  if (!p.ok) return { status: p.status, stdout: p.stdout, stderr: p.stderr, output: '' };
  let stdout = '';
  let stderr = '';
  const out: Buffer[] = [];
  const input = how.stream ? createReadStream(p.config.input, { highWaterMark: 50_000 }) : p.config.input;
  await runPageOwnerSort(
    p.config,
    input,
    {
      progressOut: (s) => {
        stdout += s;
      },
      errOut: (s) => {
        stderr += s;
      },
      write: (s) => out.push(s),
      // A writer lending buffers of `lend` bytes (ThreadedWriter's lend and handOver); a
      // buffer ends when the next is lent or write() is called.
      ...(how.lend !== undefined ? { writeDone: true, buffers: lender(how.lend, out) } : {}),
    },
    how.parallel,
  );
  return { status: 0, stdout, stderr, output: Buffer.concat(out).toString('latin1') };
}

function lender(size: number, out: Buffer[]): { lend: () => Buffer; handOver: (n: number) => void } {
  let lent: Buffer | undefined;
  return {
    lend: () => {
      lent = Buffer.alloc(size, 0xee);
      return lent;
    },
    handOver: (n) => {
      if (!lent || n > lent.length) throw new Error(`handOver(${n}) without a lend of that size`);
      out.push(lent.subarray(0, n));
      lent = undefined;
    },
  };
}

/** Ours against a C run (started by startC), byte for byte. */
async function compare(
  c: Promise<Outcome>,
  compat: SortCompat,
  opts: string[],
  input: string,
  how: How = {},
): Promise<Outcome> {
  const o = await runOurs(compat, [...opts, input, join(tmp, 'o.out')], how);
  const theirs = await c;
  const what = `${compat} ${opts.join(' ') || '(no options)'}`;
  expect(o.status, what).toBe(theirs.status);
  expect(o.stderr, what).toBe(theirs.stderr);
  expect(o.stdout, what).toBe(theirs.stdout);
  if (o.output !== theirs.output) {
    let i = 0;
    while (i < o.output.length && o.output[i] === theirs.output[i]) i++;
    expect(
      { ours: o.output.slice(Math.max(0, i - 200), i + 200), length: o.output.length },
      `${what}: output differs from byte ${i}`,
    ).toEqual({ ours: theirs.output.slice(Math.max(0, i - 200), i + 200), length: theirs.output.length });
  }
  expect(o.output === theirs.output, what).toBe(true);
  return theirs;
}

/** Every option set of `matrix` against the C tool: all C runs started first. */
async function compareAll(
  compat: SortCompat,
  matrix: string[][],
  input: string,
  how: { parallel?: ParallelOptions; stream?: boolean } = {},
): Promise<Outcome[]> {
  const cs = matrix.map((opts) => startC(compat, opts, input));
  const out: Outcome[] = [];
  for (const [i, opts] of matrix.entries()) out.push(await compare(cs[i]!, compat, opts, input, how));
  return out;
}

const FULL_MATRIX: string[][] = [
  [],
  ['-t'],
  ['-m'],
  ['--cull=stacktrace', '-m'],
  ['-a'],
  ['-s'],
  ['-p'],
  ['-P'],
  ['-n'],
  ['--cull=pid,name,allocator'],
  ['--cull', 'st,tgid', '--sort=-tg,at'],
  ['--pid=1,2'],
  ['--name=cat', '--cull=st'],
  ['--tgid=1', '-m'],
  ['--sort=T'],
  ['--sort=-ator,p'],
  ['--cull=ator'],
  ['-r'],
  ['-f'],
  ['--cull=free,st'],
  ['--sort=ft,-pid'],
  ['-a', '--cull=st'],
  ['-d', '--pid=0'],
];
const SHORT_MATRIX: string[][] = [
  [],
  ['-m'],
  ['--cull=stacktrace', '-m'],
  ['-a'],
  ['--cull=pid,st', '--sort=-p,st'],
];

const DUMPS: [LabKernel, LabMoment][] = [
  ['6.1', 'after'],
  ['6.12', 'after'],
  ['6.1', 'before'],
  ['6.12', 'mid'],
];

for (const compat of ['6.12', '6.1'] as const) {
  describe(`page_owner_sort ${compat} (C) vs ours on the lab dumps`, () => {
    for (const [kernel, moment] of DUMPS) {
      const matrix = moment === 'after' ? FULL_MATRIX : SHORT_MATRIX;
      it(`lab-${kernel}/${moment}: ${matrix.length} option sets`, async () => {
        const input = join(labFixture(kernel, moment), 'page_owner');
        const cs = await compareAll(compat, matrix, input);
        const nonEmpty = cs.filter((c) => c.output.length > 0).length;
        // Most option sets are valid for both versions: the test compares real output.
        expect(nonEmpty).toBeGreaterThan(matrix.length / 2);
      }, 120_000);
    }
  });
}

// Dumps as a busy machine's: every record its own pid (1..4194304), stacks varied 20
// ways, and records of other forms spliced in; read by worker threads from the file (in
// 256 KiB chunks), from a stream, and in this thread.
const VARIED_MATRIX: string[][] = [
  [],
  ['-m'],
  ['-n'],
  ['-p'],
  ['-s'],
  ['-a'],
  ['--cull=stacktrace', '-m'],
  ['--cull=pid,name,allocator'],
  ['--cull=st', '--pid=77,78,79,80,81,82'],
];

for (const kernel of ['6.12', '6.1'] as const) {
  describe(`varied dump from lab-${kernel} records`, () => {
    const dump = join(tmp, `varied-${kernel}`);
    const made = writeVariedDump(dump, {
      source: join(labFixture(kernel, 'after'), 'page_owner'),
      bytes: 3 << 20,
      variants: 20,
      seed: 5,
      odd: [...ODD_RECORDS, ...GARBAGE_RECORDS],
      every: 211,
    });
    for (const compat of ['6.12', '6.1'] as const) {
      it(`${compat}: ${VARIED_MATRIX.length} option sets, worker threads over the file`, async () => {
        await made;
        await compareAll(compat, VARIED_MATRIX, dump, { parallel: { workers: 2, chunkBytes: 256 << 10 } });
      }, 300_000);
    }
    it("6.12: the rows' table sized for the whole file midway, then records seen before", async () => {
      await made;
      // The dump's first 400,000 bytes (to a record's end) twice: distinct records up to the
      // half, where the table was sized for the file, then each of them again.
      const text = readFileSync(dump, 'latin1');
      const half = text.slice(0, text.indexOf('\n\n', 400_000) + 2);
      const twice = join(tmp, `twice-${kernel}`);
      writeFileSync(twice, half + half, 'latin1');
      // Lookups read ahead from the first slot on (-a: ts digits are part of the key).
      for (const opts of [[], ['-m'], ['-a']]) {
        await compare(startC('6.12', opts, twice), '6.12', opts, twice, {
          parallel: {
            workers: 0,
            chunkBytes: 100_000,
            presize: { minInput: 0, look: 100_000, touchMinSlots: 0 },
          },
        });
      }
    }, 300_000);
    it('6.12: a stream read by worker threads, and this thread, give the same bytes', async () => {
      await made;
      // One C run per option set serves the three ways of reading.
      for (const opts of [[], ['--cull=stacktrace', '-m']]) {
        const c = startC('6.12', opts, dump);
        await compare(c, '6.12', opts, dump, { stream: true, parallel: { workers: 2, chunkBytes: 300_000 } });
        await compare(c, '6.12', opts, dump, { parallel: { workers: 0, chunkBytes: 100_000 } });
        // The workers stopped as the scan ends (the CLI's lastScan), then new ones for the next.
        await compare(c, '6.12', opts, dump, {
          parallel: { workers: 2, chunkBytes: 300_000, lastScan: true },
        });
        // Stacks written line by line (none fits in the copies' room).
        await compare(c, '6.12', opts, dump, { parallel: { workers: 0, restCopyBytes: 0 } });
        // Copies for the stacks of the most rows, as many as 3,000 bytes hold; the rest line by line.
        await compare(c, '6.12', opts, dump, { parallel: { workers: 0, restCopyBytes: 3000 } });
        // Built in a writer's lent buffers, some smaller than a record (those go through write).
        await compare(c, '6.12', opts, dump, { parallel: { workers: 0 }, lend: 300 });
        await compare(c, '6.12', opts, dump, { parallel: { workers: 0 }, lend: 1 << 20 });
        await compare(c, '6.12', opts, dump, {
          stream: true,
          parallel: { minParallelBytes: 500_000, chunkBytes: 90_000 },
        });
      }
    }, 300_000);
  });
}

describe('command line errors, as the C tool reports them', () => {
  const input = () => join(labFixture('6.12', 'after'), 'page_owner');
  const cases: string[][] = [
    ['-x'],
    ['-ax'],
    ['--bogus'],
    ['--bogus=1'],
    ['--pid'],
    ['--pid=abc'],
    ['--pid=1,'],
    ['--tgid', '-3x'],
    ['--cull=nope'],
    ['--sort=pid,'],
    ['--sort=+zz'],
    ['-a', '-m'],
    ['-t', '-t'],
    ['--s=pid'],
    ['--c', 'st'],
  ];
  for (const compat of ['6.12', '6.1'] as const) {
    it(`${compat}: ${cases.length} bad or odd command lines`, async () => {
      await compareAll(compat, cases, input());
    }, 120_000);
    it(`${compat}: missing operands and a missing input file`, async () => {
      for (const args of [[], ['only-one']]) {
        const c = await runC(compat, args, join(tmp, 'none'));
        const o = await runOurs(compat, args);
        expect(o).toEqual(c);
      }
      const p = parseSortArgv([join(tmp, 'absent'), join(tmp, 'x')], compat, 'page_owner_sort');
      expect(p.ok).toBe(true);
    });
  }
});

describe('rows whose count or template needs more bits than a row keeps beside the others', () => {
  it('6.12: 131,100 templates (one comm each) and records seen 254 to 70,000 times', async () => {
    // A row keeps its template in 17 bits and its count in 8: the 131,071st template and
    // counts from 255 on are kept beside the table.
    const rec = readFileSync(join(labFixture('6.12', 'after'), 'page_owner'), 'latin1').split('\n\n')[0]!;
    const lines = rec.split('\n');
    const one = (comm: string, pid: number) =>
      `${lines[0]!.replace('(swapper)', `(${comm})`).replace('pid 0, tgid 0', `pid ${pid}, tgid ${pid}`)}\n${lines[1]}\n${lines[2]}\n\n`;
    const parts: string[] = [];
    for (let i = 0; i < 131_100; i++) parts.push(one(`c${i}`, i % 5000));
    for (const [times, comm] of [
      [254, 'a'],
      [255, 'b'],
      [256, 'c'],
      [70_000, 'd'],
    ] as const)
      for (let i = 0; i < times; i++) parts.push(one(comm, 7));
    // Records of the last templates again: their rows count up past 255 too.
    for (let i = 0; i < 300; i++) parts.push(one(`c${131_099 - (i % 3)}`, (131_099 - (i % 3)) % 5000));
    const f = join(tmp, 'wide-rows');
    writeFileSync(f, parts.join(''), 'latin1');
    for (const opts of [[], ['-n'], ['-m'], ['--sort=-num,pid']]) {
      await compare(startC('6.12', opts, f), '6.12', opts, f, { parallel: { workers: 0 } });
    }
  }, 300_000);
});

describe('input the C tool gets wrong', () => {
  it('drops a last record without a blank line like the C tool, but says so', async () => {
    const full = readFileSync(join(labFixture('6.12', 'after'), 'page_owner'), 'latin1');
    const cut = join(tmp, 'cut');
    writeFileSync(cut, full.slice(0, -1), 'latin1');
    const c = await runC('6.12', [cut, join(tmp, 'c.out')], join(tmp, 'c.out'));
    const o = await runOurs('6.12', [cut, join(tmp, 'o.out')]);
    expect(o.output === c.output).toBe(true);
    expect(c.stderr).toBe('');
    expect(o.stderr).toMatch(/does not end with a blank line; ignored the last \d+ bytes from byte \d+/);
  });
  it('sorts a file that is not page_owner output as the C tool does, with a warning', async () => {
    const f = join(labFixture('6.12', 'after'), 'meminfo');
    const c = await runC('6.12', [f, join(tmp, 'c.out')], join(tmp, 'c.out'));
    const o = await runOurs('6.12', [f, join(tmp, 'o.out')]);
    expect(o.output === c.output).toBe(true);
    expect(o.stdout).toBe(c.stdout);
    expect(o.stderr).toMatch(/is this \/sys\/kernel\/debug\/page_owner output\?/);
  });
  it('sorts a record over 128 KiB that the C tool silently stops at', async () => {
    const rec = readFileSync(join(labFixture('6.12', 'after'), 'page_owner'), 'latin1').split('\n\n')[0]!;
    const big = rec.replace(
      '\n register_early_stack',
      `${'\n deep+0x1/0x2'.repeat(12000)}\n register_early_stack`,
    );
    const f = join(tmp, 'big');
    writeFileSync(f, `${big}\n\n${rec}\n\n`, 'latin1');
    const c = await runC('6.12', [f, join(tmp, 'c.out')], join(tmp, 'c.out'));
    const o = await runOurs('6.12', [f, join(tmp, 'o.out')]);
    expect(c.stdout).toContain('loaded 0');
    expect(o.stdout).toContain('loaded 2');
    expect(o.output.split(' times, ').length - 1).toBe(2);
  });
  it('refuses a record over 1 MiB, and input without blank lines, at its first byte, in every thread', async () => {
    const text = readFileSync(join(labFixture('6.12', 'after'), 'page_owner'), 'latin1');
    const at = text.indexOf('\n\n', text.length >> 1) + 2;
    const cases: [string, string, number][] = [
      ['long-record', `${text.slice(0, at)}${'x'.repeat(1_200_000)}\n\n${text.slice(at)}`, at],
      ['no-blank-line', `${text}${'\0'.repeat(3_000_000)}`, text.length],
    ];
    for (const [name, content, offset] of cases) {
      const f = join(tmp, name);
      writeFileSync(f, content, 'latin1');
      for (const how of [
        { parallel: { workers: 0 } },
        { parallel: { workers: 2, chunkBytes: 256 << 10 } },
        { stream: true, parallel: { workers: 2, chunkBytes: 300_000 } },
        { stream: true, parallel: { minParallelBytes: 500_000, chunkBytes: 90_000 } },
      ]) {
        await expect(runOurs('6.12', [f, join(tmp, 'o.out')], how), JSON.stringify(how)).rejects.toThrow(
          `${f} (byte ${offset}): expected records of at most 1 MiB, each followed by a blank line, found "no blank line within 1 MiB"`,
        );
      }
    }
  }, 120_000);
});

describe('glibcMsort', () => {
  it('is stable and follows glibc for a comparator that never returns 0', () => {
    const xs = [3, 1, 2, 1, 3].map((v, i) => ({ v, i }));
    expect(glibcMsort([...xs], (a, b) => a.v - b.v).map((x) => x.i)).toEqual([1, 3, 2, 0, 4]);
    // cmp(a,b) = 1 on ties: the right run wins, as in the 6.6 tool's compare_ts.
    const ties = [0, 1, 2, 3].map((i) => ({ v: 5, i }));
    expect(glibcMsort([...ties], (a, b) => (a.v < b.v ? -1 : 1)).map((x) => x.i)).toEqual([3, 2, 1, 0]);
  });
});
