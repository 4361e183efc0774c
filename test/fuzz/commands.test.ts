/**
 * Fuzz every command that takes a snapshot, in-process through runCommand (test/run.ts):
 * one file of a real lab snapshot mutated per case (test/fuzz/mutate.ts). Each case must
 * end within a time bound in exit 0 with output free of NaN/undefined/Infinity, or in a
 * one-line error (and hint) naming the file; never a stack trace or an internal error
 * (exit 70), and never exit 0 when the file was cut in the middle of a line.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { labFixture } from '../paths.js';
import { cli } from '../run.js';
import { isCut, mutation, runs, SEED } from './mutate.js';

/** Cases per command in the normal run: 14 commands x 8 = 112, and 16 of the exporter. */
const RUNS = runs(8);
const CASE_MS = 20_000;

const work = mkdtempSync(join(tmpdir(), 'memsleuth-fuzz-'));
const before = join(work, 'before');
const snap = join(work, 'after');
cpSync(labFixture('6.12', 'before'), before, { recursive: true });
cpSync(labFixture('6.12', 'after'), snap, { recursive: true });
// Shorter real dumps (their first records) keep a case fast.
for (const [f, sep, n] of [
  ['page_owner', '\n\n', 600],
  ['kmemleak', '\nunreferenced', 60],
] as const) {
  for (const dir of [before, snap]) {
    const parts = readFileSync(join(dir, f), 'latin1').split(sep);
    const end = sep === '\n\n' ? sep : '\n';
    if (parts.length > n) writeFileSync(join(dir, f), `${parts.slice(0, n).join(sep)}${end}`, 'latin1');
  }
}
const original = new Map<string, Buffer>();
const file = (f: string) => {
  let b = original.get(f);
  if (!b) {
    b = readFileSync(join(snap, f));
    original.set(f, b);
  }
  return b;
};

interface Target {
  args: string[];
  /** Files of the snapshot the command parses (one is mutated per case). */
  files: string[];
  /** Exit status of a command that reports a bad source and goes on (diff). */
  partial?: number;
}

// What each command parses (checked by replacing each file with garbage).
const SYSTEM = ['meminfo', 'slabinfo', 'vmallocinfo', 'buddyinfo', 'pagetypeinfo'];
const TARGETS: Target[] = [
  {
    args: ['report', snap],
    files: [
      ...SYSTEM,
      'vmstat',
      'zoneinfo',
      'manifest.json',
      'proc/1/status',
      'proc/1/smaps',
      'proc/1/smaps_rollup',
    ],
  },
  {
    args: ['diff', before, snap],
    files: [
      ...SYSTEM,
      'allocinfo',
      'page_owner',
      'kmemleak',
      'slab/kmalloc-96.alloc_traces',
      'proc/1/smaps_rollup',
      'manifest.json',
    ],
    partial: 1,
  },
  { args: ['ps', snap], files: ['proc/1/status', 'proc/1/statm', 'proc/1/stat', 'proc/1/smaps'] },
  { args: ['pmap', '1', snap], files: ['proc/1/smaps', 'proc/1/status'] },
  { args: ['slab', 'top', snap], files: ['slabinfo', 'manifest.json'] },
  { args: ['slab', 'traces', snap], files: ['slab/kmalloc-96.alloc_traces', 'slab/kmalloc-96.free_traces'] },
  { args: ['kmemleak', 'report', snap], files: ['kmemleak'] },
  { args: ['kmemleak', 'watch', before, snap], files: ['kmemleak'] },
  { args: ['vmalloc', 'top', snap], files: ['vmallocinfo', 'manifest.json'] },
  { args: ['vmalloc', 'diff', before, snap], files: ['vmallocinfo'] },
  { args: ['allocinfo', 'top', snap], files: ['allocinfo'] },
  { args: ['allocinfo', 'diff', before, snap], files: ['allocinfo'] },
  { args: ['page-owner', 'top', snap], files: ['page_owner'] },
  { args: ['page-owner', 'diff', before, snap], files: ['page_owner'] },
];

const stats = { cases: 0, errors: 0, maxMs: 0, started: Date.now() };
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  const s = ((Date.now() - stats.started) / 1000).toFixed(1);
  process.stderr.write(
    `fuzz commands: seed ${SEED}, ${stats.cases} cases (${stats.errors} ended in an error), slowest ${stats.maxMs} ms, ${s} s\n`,
  );
});

describe.each(TARGETS)('fuzz memsleuth $args.0 $args.1', (t: Target) => {
  it(`${RUNS} mutated snapshot files: a clean result or a one-line error naming the file`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...t.files), mutation, async (f, m) => {
        const mutated = m.apply(file(f));
        writeFileSync(join(snap, f), mutated);
        const where = `${t.args.slice(0, 2).join(' ')} with ${f}: ${m.what}`;
        try {
          const t0 = Date.now();
          const r = await cli(t.args.map((a) => a));
          const ms = Date.now() - t0;
          stats.cases++;
          stats.maxMs = Math.max(stats.maxMs, ms);
          expect(ms, `${where}: ${ms} ms`).toBeLessThan(CASE_MS);
          expect(r.stderr, where).not.toMatch(/internal error|\n\s+at /);
          expect(r.status, `${where}: ${r.stderr}`).not.toBe(70);
          if (r.status === 0) {
            expect(r.stdout, where).not.toMatch(/\bNaN\b|\bundefined\b|\bInfinity\b/);
            // The one note exit 0 may carry: a process file left empty (the process exited
            // while the capture read it) is skipped and named.
            expect(
              r.stderr.replace(
                /^memsleuth: \d+ process\(es\) skipped \(exited while being read\): [\d, .]+\n/,
                '',
              ),
              where,
            ).toBe('');
            // A file cut in the middle of a line is never read as complete.
            if (isCut(mutated) && f !== 'manifest.json' && mutated.toString('utf8').trim() !== '')
              throw new Error(`${where}: exit 0 on a cut file`);
            return;
          }
          stats.errors++;
          const lines = r.stderr.trimEnd().split('\n');
          if (r.status === t.partial) {
            // diff: the unreadable source is named with file and line; the rest is compared.
            expect(
              lines.every((l) => l.startsWith('memsleuth: ')),
              where,
            ).toBe(true);
            expect(r.stderr, where).toContain(f === 'manifest.json' ? 'manifest.json' : f.split('/').pop()!);
            return;
          }
          expect(r.status, where).toBe(2);
          expect(lines.length, `${where}: ${r.stderr}`).toBeLessThanOrEqual(2);
          expect(lines[0], where).toMatch(/^memsleuth: /);
          if (lines[1] !== undefined) expect(lines[1], where).toMatch(/^hint: /);
          expect(lines[0], where).not.toMatch(/\bNaN\b|\bundefined\b|\bInfinity\b/);
          // The error names the mutated file (or, for an empty or garbage manifest, the snapshot).
          expect(lines[0], where).toContain(f.split('/').pop()!);
        } finally {
          writeFileSync(join(snap, f), file(f));
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  }, 900_000);
});

/**
 * The exporter keeps serving when one source is bad, as node_exporter does: that source is
 * reported on stderr (naming the file) and exported as down (source_up 0), the others as read.
 */
const EXPORTED: Record<string, string> = {
  meminfo: 'meminfo',
  vmstat: 'vmstat',
  buddyinfo: 'buddyinfo',
  slabinfo: 'slabinfo',
  vmallocinfo: 'vmallocinfo',
  allocinfo: 'allocinfo',
  kmemleak: 'kmemleak',
  // Not proc/PID files: the exporter counts a process whose files do not parse as exited
  // while being read (a live race) and goes on without naming it (see docs/reliability.md).
};
describe('fuzz memsleuth exporter --snapshot --once', () => {
  it(`${RUNS * 2} mutated snapshot files: a bad source is named and exported as down, never NaN`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(EXPORTED), 'manifest.json'), mutation, async (f, m) => {
        const mutated = m.apply(file(f));
        writeFileSync(join(snap, f), mutated);
        const where = `exporter with ${f}: ${m.what}`;
        try {
          const t0 = Date.now();
          const r = await cli(['exporter', '--snapshot', snap, '--once']);
          const ms = Date.now() - t0;
          stats.cases++;
          stats.maxMs = Math.max(stats.maxMs, ms);
          expect(ms, `${where}: ${ms} ms`).toBeLessThan(CASE_MS);
          expect(r.stderr, where).not.toMatch(/internal error|\n\s+at /);
          expect(r.stderr, where).not.toMatch(/\bNaN\b|\bundefined\b|\bInfinity\b/);
          if (r.status !== 0) {
            // Only a manifest the exporter cannot use stops it: one line naming it, exit 2.
            stats.errors++;
            expect(f, `${where}: exit ${r.status}: ${r.stderr}`).toBe('manifest.json');
            expect(r.status, where).toBe(2);
            expect(r.stderr, where).toMatch(/^memsleuth: .*manifest\.json/);
            return;
          }
          // Sample values: a number, never NaN or Infinity (the text format allows them).
          expect(r.stdout, where).not.toMatch(/ (NaN|[+-]Inf)$/m);
          const problems = r.stderr.split('\n').filter((l) => l !== '');
          for (const l of problems) expect(l, where).toMatch(/^ {2}not exported: [a-z_]+: /);
          const source = EXPORTED[f];
          if (source === undefined) return;
          const up = new RegExp(`^memsleuth_exporter_source_up\\{source="${source}"\\} ([01])$`, 'm').exec(
            r.stdout,
          );
          expect(up, `${where}: no source_up for ${source}`).not.toBeNull();
          if (up![1] === '0') {
            stats.errors++;
            expect(r.stderr, where).toContain(`not exported: ${source}: `);
          }
          // A file cut in the middle of a line is never exported as complete.
          if (isCut(mutated) && mutated.toString('utf8').trim() !== '')
            expect(up![1], `${where}: exported as up: ${r.stderr}`).toBe('0');
        } finally {
          writeFileSync(join(snap, f), file(f));
        }
      }),
      { seed: SEED, numRuns: RUNS * 2 },
    );
  }, 900_000);
});
