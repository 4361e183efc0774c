/**
 * Fuzz every parser with mutations of real captures (test/fuzz/mutate.ts): each case must
 * end in a result whose numbers are all finite, or in a one-line MemsleuthError naming the
 * file, within a time bound; an input cut in the middle of a line is never accepted.
 * Seeded (MEMSLEUTH_FUZZ_SEED replays a failure, whose seed and path fast-check prints);
 * MEMSLEUTH_FUZZ_RUNS multiplies the number of cases.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { MemsleuthError } from '../../src/model/errors.js';
import { parseAllocinfo } from '../../src/sources/allocinfo.js';
import { parseBuddyinfo } from '../../src/sources/buddyinfo.js';
import { parseCallstackBlocks } from '../../src/sources/callstack_blocks.js';
import { parseCmdline } from '../../src/sources/cmdline.js';
import { parseKmemleak, scanKmemleak } from '../../src/sources/kmemleak.js';
import { parseMeminfo } from '../../src/sources/meminfo.js';
import { parseOomReports } from '../../src/sources/oom_report.js';
import { parsePageOwner, parsePageOwnerStacks } from '../../src/sources/page_owner.js';
import { parsePagetypeinfo } from '../../src/sources/pagetypeinfo.js';
import { parseProcStat } from '../../src/sources/proc_stat.js';
import { parseProcStatm } from '../../src/sources/proc_statm.js';
import { parseProcStatus } from '../../src/sources/proc_status.js';
import { parseSlabTraces } from '../../src/sources/slab_traces.js';
import { parseSlabinfo } from '../../src/sources/slabinfo.js';
import { parseSmaps, parseSmapsRollup } from '../../src/sources/smaps.js';
import type { ParseOptions } from '../../src/sources/text.js';
import { parseVmallocinfo } from '../../src/sources/vmallocinfo.js';
import { parseVmstat } from '../../src/sources/vmstat.js';
import { parseZoneinfo } from '../../src/sources/zoneinfo.js';
import { labFixture, REPO_FIXTURES } from '../paths.js';
import { isCut, type Mutation, mutation, nonFinite, runs, SEED } from './mutate.js';

/** Cases per parser in the normal run: 21 targets x 110 = 2,310. */
const RUNS = runs(110);
/** A case taking longer than this fails (a hang or quadratic time on a 1 MiB line). */
const CASE_MS = 5000;

type Parse = (text: string, opts: ParseOptions) => unknown;

interface Target {
  name: string;
  inputs: () => Buffer[];
  parse: Parse | ((input: Buffer, opts: ParseOptions) => Promise<unknown>);
  async?: boolean;
  /** The format ends every line with a newline, so a cut last line must be refused. */
  newline: boolean;
}

const lab = (k: '6.1' | '6.12', m: 'before' | 'mid' | 'after', f: string) =>
  readFileSync(join(labFixture(k, m), f));
const repo = (f: string) => readFileSync(join(REPO_FIXTURES, f));
/** The first `n` records of a lab page_owner dump (a real dump, shorter). */
const records = (text: Buffer, sep: string, n: number) => {
  const s = text.toString('latin1').split(sep);
  if (s.length <= n) return text;
  // page_owner records end with a blank line; a kmemleak report with its last frame's newline.
  return Buffer.from(`${s.slice(0, n).join(sep)}${sep === '\n\n' ? sep : '\n'}`, 'latin1');
};

const TARGETS: Target[] = [
  {
    name: 'meminfo',
    newline: true,
    parse: parseMeminfo,
    inputs: () => [
      lab('6.12', 'after', 'meminfo'),
      repo('live-6.18/meminfo'),
      repo('live-6.18/node0-meminfo'),
    ],
  },
  {
    name: 'buddyinfo',
    newline: true,
    parse: parseBuddyinfo,
    inputs: () => [lab('6.1', 'after', 'buddyinfo'), repo('live-6.18/buddyinfo')],
  },
  {
    name: 'vmstat',
    newline: true,
    parse: parseVmstat,
    inputs: () => [lab('6.12', 'after', 'vmstat'), repo('live-6.18/vmstat')],
  },
  {
    name: 'zoneinfo',
    newline: true,
    parse: parseZoneinfo,
    inputs: () => [lab('6.12', 'after', 'zoneinfo'), repo('live-6.18/zoneinfo')],
  },
  {
    name: 'slabinfo',
    newline: true,
    parse: parseSlabinfo,
    inputs: () => [lab('6.1', 'after', 'slabinfo'), repo('live-6.18/slabinfo')],
  },
  {
    name: 'vmallocinfo',
    newline: true,
    parse: parseVmallocinfo,
    inputs: () => [lab('6.12', 'after', 'vmallocinfo'), repo('live-6.18/vmallocinfo')],
  },
  {
    name: 'allocinfo',
    newline: true,
    parse: parseAllocinfo,
    inputs: () => [lab('6.12', 'after', 'allocinfo')],
  },
  {
    name: 'pagetypeinfo',
    newline: true,
    parse: parsePagetypeinfo,
    inputs: () => [lab('6.12', 'after', 'pagetypeinfo'), repo('live-6.18/pagetypeinfo')],
  },
  {
    name: 'slab_traces',
    newline: true,
    parse: parseSlabTraces,
    inputs: () => [
      lab('6.12', 'after', 'slab/kmalloc-96.alloc_traces'),
      lab('6.1', 'after', 'slab/kmalloc-96.free_traces'),
      repo('slab-5.13/kmalloc-96.alloc_calls'),
    ],
  },
  {
    name: 'callstack_blocks',
    newline: true,
    parse: parseCallstackBlocks,
    inputs: () => [
      repo('slabtrace/page_owner_sort-doc.txt'),
      lab('6.1', 'after', 'slab/kmalloc-96.alloc_traces'),
    ],
  },
  {
    name: 'kmemleak',
    newline: true,
    parse: parseKmemleak,
    inputs: () => [
      records(lab('6.12', 'after', 'kmemleak'), '\nunreferenced', 30),
      repo('kmemleak-docs/nvme-6.19-percpu.kmemleak'),
    ],
  },
  {
    name: 'kmemleak (streamed)',
    newline: true,
    async: true,
    parse: (b: Buffer, opts: ParseOptions) =>
      scanKmemleak(Readable.from([b.subarray(0, 1000), b.subarray(1000)]), () => {}, opts),
    inputs: () => [records(lab('6.1', 'after', 'kmemleak'), '\nunreferenced', 30)],
  },
  {
    name: 'page_owner',
    newline: true,
    async: true,
    parse: async (b: Buffer, opts: ParseOptions) => {
      const out: unknown[] = [];
      await parsePageOwner(Readable.from([b]), (r) => out.push(r), { ...opts, chunkBytes: 65536 });
      return out;
    },
    inputs: () => [
      records(lab('6.12', 'after', 'page_owner'), '\n\n', 150),
      records(lab('6.1', 'after', 'page_owner'), '\n\n', 150),
      repo('page_owner-history/v4.9.txt'),
    ],
  },
  {
    name: 'page_owner_stacks',
    newline: true,
    parse: parsePageOwnerStacks,
    inputs: () => [records(lab('6.12', 'after', 'page_owner_stacks'), '\n\n', 80)],
  },
  {
    name: 'proc status',
    newline: true,
    parse: parseProcStatus,
    inputs: () => [lab('6.12', 'after', 'proc/1/status'), repo('linux-6.18-four-types/proc/17695/status')],
  },
  {
    name: 'proc statm',
    newline: true,
    parse: parseProcStatm,
    inputs: () => [lab('6.12', 'after', 'proc/1/statm'), repo('linux-6.18-four-types/proc/2/statm')],
  },
  {
    name: 'proc stat',
    newline: true,
    parse: parseProcStat,
    inputs: () => [lab('6.12', 'after', 'proc/1/stat'), repo('linux-6.18-four-types/proc/17695/stat')],
  },
  {
    name: 'smaps',
    newline: true,
    parse: parseSmaps,
    inputs: () => [lab('6.1', 'after', 'proc/1/smaps'), repo('linux-6.18-four-types/proc/17736/smaps')],
  },
  {
    name: 'smaps_rollup',
    newline: true,
    parse: parseSmapsRollup,
    inputs: () => [lab('6.12', 'after', 'proc/1/smaps_rollup')],
  },
  {
    name: 'cmdline',
    newline: false,
    parse: (t: string) => parseCmdline(t),
    inputs: () => [lab('6.12', 'after', 'proc/1/cmdline'), repo('linux-6.18-four-types/proc/17695/cmdline')],
  },
  {
    // A console log or dmesg is often cut (a crash, a ring buffer): a cut last line is no error.
    name: 'oom_report',
    newline: false,
    parse: parseOomReports,
    inputs: () => [
      repo('oom-6.12/console.log'),
      repo('oom-6.1/console.log'),
      repo('oom-live-6.18/memcg-v1.dmesg'),
    ],
  },
];

const stats = { cases: 0, errors: 0, maxMs: 0, started: Date.now() };
afterAll(() => {
  const s = ((Date.now() - stats.started) / 1000).toFixed(1);
  process.stderr.write(
    `fuzz parsers: seed ${SEED}, ${stats.cases} cases (${stats.errors} ended in a parse error), slowest ${stats.maxMs} ms, ${s} s\n`,
  );
});

async function check(t: Target, input: Buffer, m: Mutation): Promise<void> {
  const mutated = m.apply(input);
  const file = `fuzz/${t.name}`;
  const t0 = Date.now();
  let result: unknown;
  let error: unknown;
  try {
    result = t.async
      ? await (t.parse as (b: Buffer, o: ParseOptions) => Promise<unknown>)(mutated, { file })
      : (t.parse as Parse)(mutated.toString('utf8'), { file });
  } catch (e) {
    error = e;
  }
  const ms = Date.now() - t0;
  stats.cases++;
  stats.maxMs = Math.max(stats.maxMs, ms);
  const where = `${t.name}, ${m.what}`;
  expect(ms, `${where}: ${ms} ms`).toBeLessThan(CASE_MS);
  if (error !== undefined) {
    stats.errors++;
    if (!(error instanceof MemsleuthError))
      throw new Error(`${where}: not a MemsleuthError: ${(error as Error).stack}`);
    expect(['PARSE', 'BAD_INPUT'], where).toContain(error.code);
    expect(error.message.startsWith(file), `${where}: ${error.message}`).toBe(true);
    // A parse error names where (line, or byte offset in a binary record) and what was expected.
    if (error.code === 'PARSE') {
      expect(error.line ?? error.offset, `${where}: no line in ${error.message}`).toBeDefined();
      expect(error.expected, `${where}: no expectation in ${error.message}`).toBeTruthy();
    }
    expect(error.message, where).not.toContain('\n');
    expect(error.message, where).not.toMatch(/\bNaN\b|\bInfinity\b/);
    return;
  }
  expect(nonFinite(result), where).toBeUndefined();
  if (t.newline && isCut(mutated) && mutated.toString('utf8').trim() !== '')
    throw new Error(`${where}: a cut input (no final newline) was accepted`);
}

describe.each(TARGETS)('fuzz $name', (t: Target) => {
  it(`${RUNS} mutations of real captures: a finite result or a one-line error naming the file`, async () => {
    const inputs = t.inputs();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...inputs), mutation, (input, m) => check(t, input, m)),
      { seed: SEED, numRuns: RUNS },
    );
  }, 600_000);
});
