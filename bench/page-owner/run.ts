/**
 * `npm run bench:page-owner`: memsleuth's page_owner commands against the kernel's C
 * page_owner_sort (6.12, built from Debian's linux-source-6.12 as the tests build it),
 * both timed in this run with /usr/bin/time -v (wall time and peak RSS), on dumps built
 * from the lab's real records (bench/page-owner/dump.ts: pids over the full range, stacks
 * varied V ways).
 *
 * Part "sizes" (issue 11): at each size, the default sort, -m, -n, --cull=stacktrace -m,
 * `page-owner top` (against C --cull=stacktrace -m) and `page-owner diff` of two dumps
 * (against C --cull=stacktrace -m on both); MB/s beside the pipe ceiling
 * (`cat FILE | cat > /dev/null`); every sorted output compared with the C tool's byte
 * for byte.
 * Part "variants" (issue 17): at one size, V = 1, 10, 100, 1000: distinct stacks,
 * `page-owner top` against C --cull=stacktrace, the default sort against C's.
 *
 * Environment: BENCH_SIZES (MiB, default 128,1024,4096), BENCH_STACK_VARIANTS (V of the
 * sizes part, default 100), BENCH_VARIANTS (default 1,10,100,1000), BENCH_VARIANT_MB
 * (default 256), BENCH_RUNS (runs per measurement, median taken; default 3 up to 1 GiB,
 * 1 above), BENCH_PARTS (sizes,variants), BENCH_DIR (default /tmp; files are deleted).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pageOwnerSortBinary } from '../../test/page-owner-c/tools.js';
import { labPageOwner, writeDump } from './dump.js';

// Run from the repository root (npm run does), so paths do not depend on the build dir.
const ROOT = process.cwd();
const CLI = join(ROOT, 'bin', 'memsleuth.js');
/**
 * The node flags on the CLI's #! line (`#!/usr/bin/env -S node --flag ...`), from bench/cli.mjs
 * as the JavaScript benches read them: the command is timed as users run it. (This file runs
 * compiled from node_modules/.cache, so the module is found from the repository root.)
 */
const { NODE_FLAGS, benchEnv } = (await import(pathToFileURL(join(ROOT, 'bench', 'cli.mjs')).href)) as {
  NODE_FLAGS: string[];
  benchEnv: () => NodeJS.ProcessEnv;
};
const DIR = process.env.BENCH_DIR ?? '/tmp';
const list = (v: string | undefined, d: number[]) => (v ? v.split(',').map(Number) : d);
const SIZES = list(process.env.BENCH_SIZES, [128, 1024, 4096]);
const SIZE_V = Number(process.env.BENCH_STACK_VARIANTS ?? 100);
const VARIANTS = list(process.env.BENCH_VARIANTS, [1, 10, 100, 1000]);
const VARIANT_MB = Number(process.env.BENCH_VARIANT_MB ?? 256);
const PARTS = (process.env.BENCH_PARTS ?? 'sizes,variants').split(',');
/** The lab's page_owner dumps the bench dumps are made of (extracted in main). */
const LAB = { after: '', before: '' };
const runsFor = (mb: number) => Number(process.env.BENCH_RUNS ?? (mb <= 1024 ? 3 : 1));

interface Run {
  wallS: number;
  cpuS: number;
  rssMB: number;
  /** Fastest and slowest of the runs a median was taken of. */
  wallLo?: number;
  wallHi?: number;
}

function timed(cmd: string, args: string[]): Run {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'ignore', 'pipe'],
    // Without the sandbox's NODE_EXTRA_CA_CERTS (bench/cli.mjs): Node would read that CA file
    // first, 1.6 MB of RSS and about 0.05 s on every run of ours.
    env: benchEnv(),
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr)!;
  const wallS = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const user = Number(/User time \(seconds\): ([\d.]+)/.exec(r.stderr)![1]);
  const sys = Number(/System time \(seconds\): ([\d.]+)/.exec(r.stderr)![1]);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)![1]) / 1024;
  return { wallS, cpuS: user + sys, rssMB: rss };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const summary = (rs: Run[]): Run => ({
  wallS: median(rs.map((r) => r.wallS)),
  cpuS: median(rs.map((r) => r.cpuS)),
  rssMB: median(rs.map((r) => r.rssMB)),
  wallLo: Math.min(...rs.map((r) => r.wallS)),
  wallHi: Math.max(...rs.map((r) => r.wallS)),
});

/**
 * Run both sides `runs` times, interleaved (C, ours, C, ours...); medians, and the speed-up of
 * each pair (C's run over ours just after it): their spread shows how far the machine's speed
 * moved during the runs (the C tool's sorts took 25.8 to 42.5 s in one run of this bench).
 */
function pair(runs: number, c: () => Run, ours: () => Run): { c: Run; ours: Run; ratios: number[] } {
  const cs: Run[] = [];
  const os: Run[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < runs; i++) {
    cs.push(c());
    os.push(ours());
    ratios.push(cs[i]!.wallS / os[i]!.wallS);
  }
  return { c: summary(cs), ours: summary(os), ratios };
}

/** " [lo-hi]" of a median's runs (nothing for a single run). */
function spread(r: Run, f: (x: number) => string): string {
  return r.wallLo === undefined || r.wallLo === r.wallHi ? '' : ` [${f(r.wallLo)}-${f(r.wallHi!)}]`;
}

/** " | pairs lo-hix" (nothing for a single pair). */
function pairSpread(ratios: number[] | undefined): string {
  if (!ratios || ratios.length < 2) return '';
  return ` | pairs ${f1(Math.min(...ratios))}-${f1(Math.max(...ratios))}x`;
}

/** Groups in a page_owner_sort output: each ends with "\n\n" (and the text never has three). */
function groupsIn(path: string): number {
  const fd = openSync(path, 'r');
  const b = Buffer.allocUnsafe(16 << 20);
  let n = 0;
  let lastNl = false;
  try {
    for (;;) {
      const got = readSync(fd, b, 0, b.length, null);
      if (got === 0) break;
      let p = 0;
      if (lastNl && b[0] === 10) {
        n++;
        p = 1;
      }
      for (;;) {
        const e = b.indexOf('\n\n', p);
        if (e < 0 || e + 1 >= got) break;
        n++;
        p = e + 2;
      }
      lastNl = b[got - 1] === 10 && p < got;
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

const same = (a: string, b: string) => spawnSync('cmp', ['-s', a, b]).status === 0;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

function header(): void {
  const env = [
    'BENCH_SIZES',
    'BENCH_STACK_VARIANTS',
    'BENCH_VARIANTS',
    'BENCH_VARIANT_MB',
    'BENCH_RUNS',
    'BENCH_PARTS',
    'BENCH_DIR',
  ]
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${process.env[k]}`);
  console.log(`command: ${[...env, 'npm run bench:page-owner'].join(' ')}`);
  console.log(
    `machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}; load average at start: ${loadavg()}`,
  );
  console.log(
    `memsleuth runs as bin/memsleuth.js's #! line has it: node ${[...NODE_FLAGS, 'bin/memsleuth.js'].join(' ')}`,
  );
}

interface Row {
  what: string;
  c: Run;
  ours: Run;
  ratios?: number[];
  mb: number;
  identical?: boolean;
}

function printRow(r: Row, ceilingMBs: number): void {
  const speed = r.c.wallS / r.ours.wallS;
  const mbs = r.mb / r.ours.wallS;
  console.log(
    `${r.what.padEnd(26)} C ${f1(r.c.wallS).padStart(6)} s${spread(r.c, f1)} ${r.c.rssMB.toFixed(0).padStart(5)} MB | ours ${f2(r.ours.wallS).padStart(6)} s${spread(r.ours, f2)} ${r.ours.rssMB.toFixed(0).padStart(5)} MB | ${f1(speed).padStart(5)}x faster${pairSpread(r.ratios)}, RSS ${f2(r.ours.rssMB / r.c.rssMB)} of C | ${mbs.toFixed(0).padStart(5)} MB/s = ${((100 * mbs) / ceilingMBs).toFixed(0).padStart(3)}% of pipe${r.identical === undefined ? '' : ` | identical: ${r.identical}`}`,
  );
}

interface SizeResult {
  mb: number;
  rows: Row[];
  ceilingMBs: number;
  distinct: number;
}

async function sizesPart(c612: string): Promise<SizeResult[]> {
  const results: SizeResult[] = [];
  for (const mib of SIZES) {
    const after = join(DIR, `pob-after-${mib}-${process.pid}`);
    const before = join(DIR, `pob-before-${mib}-${process.pid}`);
    const outC = join(DIR, `pob-c-${process.pid}.out`);
    const outO = join(DIR, `pob-ours-${process.pid}.out`);
    try {
      process.stderr.write(`building ${mib} MiB dumps (V=${SIZE_V})...\n`);
      const a = await writeDump(after, {
        source: LAB.after,
        bytes: mib * 1048576,
        variants: SIZE_V,
        seed: 1,
      });
      await writeDump(before, {
        source: LAB.before,
        bytes: mib * 1048576,
        variants: SIZE_V,
        seed: 2,
      });
      const mb = statSync(after).size / 1e6;
      const runs = runsFor(mib);
      console.log(
        `\n== ${mb.toFixed(0)} MB dump (${a.records} records, V=${SIZE_V}), ${runs} run(s) each, load ${loadavg()}`,
      );
      const ceil = summary(
        Array.from({ length: runs }, () => timed('sh', ['-c', `cat ${after} | cat > /dev/null`])),
      );
      const ceilingMBs = mb / ceil.wallS;
      console.log(
        `pipe ceiling: cat FILE | cat > /dev/null ${f2(ceil.wallS)} s = ${ceilingMBs.toFixed(0)} MB/s`,
      );
      const rows: Row[] = [];
      let distinct = 0;
      for (const opts of [[], ['-m'], ['-n'], ['--cull=stacktrace', '-m']]) {
        const p = pair(
          runs,
          () => timed(c612, [...opts, after, outC]),
          () => timed(process.execPath, [...NODE_FLAGS, CLI, 'page-owner', 'sort', ...opts, after, outO]),
        );
        const row: Row = {
          what: `sort ${opts.length ? opts.join(' ') : '(default)'}`,
          ...p,
          mb,
          identical: same(outC, outO),
        };
        if (opts.length === 0) distinct = groupsIn(outC);
        rows.push(row);
        printRow(row, ceilingMBs);
        rmSync(outC, { force: true });
        rmSync(outO, { force: true });
      }
      const top = pair(
        runs,
        () => timed(c612, ['--cull=stacktrace', '-m', after, outC]),
        () => timed(process.execPath, [...NODE_FLAGS, CLI, 'page-owner', 'top', after]),
      );
      rows.push({ what: 'top (vs C cull)', ...top, mb });
      printRow(rows[rows.length - 1]!, ceilingMBs);
      const diff = pair(
        runs,
        () => {
          const x = timed(c612, ['--cull=stacktrace', '-m', before, outC]);
          const y = timed(c612, ['--cull=stacktrace', '-m', after, outC]);
          return { wallS: x.wallS + y.wallS, cpuS: x.cpuS + y.cpuS, rssMB: Math.max(x.rssMB, y.rssMB) };
        },
        () => timed(process.execPath, [...NODE_FLAGS, CLI, 'page-owner', 'diff', before, after]),
      );
      rows.push({ what: 'diff (vs C cull twice)', ...diff, mb: 2 * mb });
      printRow(rows[rows.length - 1]!, ceilingMBs);
      console.log(`distinct records (default-mode groups): ${distinct}; load ${loadavg()}`);
      results.push({ mb, rows, ceilingMBs, distinct });
    } finally {
      for (const f of [after, before, outC, outO]) rmSync(f, { force: true });
    }
  }
  return results;
}

interface VariantResult {
  v: number;
  stacks: number;
  top: { c: Run; ours: Run; ratios: number[] };
  sort: { c: Run; ours: Run; ratios: number[] };
  identical: boolean;
}

async function variantsPart(c612: string): Promise<VariantResult[]> {
  const out: VariantResult[] = [];
  const runs = runsFor(VARIANT_MB);
  console.log(`\n== ${VARIANT_MB} MiB dumps, first frame varied V ways, ${runs} run(s) each`);
  for (const v of VARIANTS) {
    const dump = join(DIR, `pob-v${v}-${process.pid}`);
    const outC = join(DIR, `pob-vc-${process.pid}.out`);
    const outO = join(DIR, `pob-vo-${process.pid}.out`);
    try {
      await writeDump(dump, {
        source: LAB.after,
        bytes: VARIANT_MB * 1048576,
        variants: v,
        seed: 3,
      });
      const top = pair(
        runs,
        () => timed(c612, ['--cull=stacktrace', dump, outC]),
        () => timed(process.execPath, [...NODE_FLAGS, CLI, 'page-owner', 'top', dump]),
      );
      const stacks = groupsIn(outC);
      const sort = pair(
        runs,
        () => timed(c612, [dump, outC]),
        () => timed(process.execPath, [...NODE_FLAGS, CLI, 'page-owner', 'sort', dump, outO]),
      );
      const identical = same(outC, outO);
      out.push({ v, stacks, top, sort, identical });
      console.log(
        `V=${String(v).padEnd(5)} ${String(stacks).padStart(7)} stacks | top ${f2(top.ours.wallS)} s${spread(top.ours, f2)} ${top.ours.rssMB.toFixed(0)} MB vs C --cull=stacktrace ${f1(top.c.wallS)} s${spread(top.c, f1)} ${top.c.rssMB.toFixed(0)} MB: ${f1(top.c.wallS / top.ours.wallS)}x faster${pairSpread(top.ratios)}, RSS ${f2(top.ours.rssMB / top.c.rssMB)} | sort ${f2(sort.ours.wallS)} s ${sort.ours.rssMB.toFixed(0)} MB vs C ${f1(sort.c.wallS)} s ${sort.c.rssMB.toFixed(0)} MB: ${f1(sort.c.wallS / sort.ours.wallS)}x${pairSpread(sort.ratios)}, RSS ${f2(sort.ours.rssMB / sort.c.rssMB)}, identical: ${identical}`,
      );
    } finally {
      for (const f of [dump, outC, outO]) rmSync(f, { force: true });
    }
  }
  return out;
}

function verdict(ok: boolean): string {
  return ok ? 'met' : 'NOT met';
}

async function main() {
  if (spawnSync('/usr/bin/time', ['-v', 'true']).status !== 0)
    throw new Error('/usr/bin/time is missing (Debian package: time)');
  const c612 = pageOwnerSortBinary('6.12');
  header();
  LAB.after = labPageOwner('6.12', 'after', DIR);
  LAB.before = labPageOwner('6.12', 'before', DIR);
  let sizes: SizeResult[];
  let variants: VariantResult[];
  try {
    sizes = PARTS.includes('sizes') ? await sizesPart(c612) : [];
    variants = PARTS.includes('variants') ? await variantsPart(c612) : [];
  } finally {
    // Files extracted from the committed bundles (not a MEMSLEUTH_BENCH_SOURCE given).
    if (!process.env.MEMSLEUTH_BENCH_SOURCE)
      for (const f of [LAB.after, LAB.before]) rmSync(f, { force: true });
  }
  console.log(`\n== targets (load average at the end: ${loadavg()})`);
  const gib = sizes.find((s) => Math.abs(s.mb - 1073.7) < 60) ?? sizes[Math.min(1, sizes.length - 1)];
  if (gib) {
    for (const r of gib.rows) {
      const speed = r.c.wallS / r.ours.wallS;
      const rss = r.ours.rssMB / r.c.rssMB;
      console.log(
        `${(r.what).padEnd(26)} at ${gib.mb.toFixed(0)} MB: ${f1(speed)}x faster (>= 10: ${verdict(speed >= 10)}), RSS ${f2(rss)} of C (<= 0.10: ${verdict(rss <= 0.1)}), ${((100 * r.mb) / r.ours.wallS / gib.ceilingMBs).toFixed(0)}% of the pipe ceiling (>= 25: ${verdict(r.mb / r.ours.wallS >= gib.ceilingMBs / 4)})`,
      );
    }
  }
  if (sizes.length >= 2) {
    const lo = sizes[0]!;
    const hi = sizes[sizes.length - 1]!;
    for (const what of ['sort --cull=stacktrace -m', 'top (vs C cull)', 'diff (vs C cull twice)']) {
      const a = lo.rows.find((r) => r.what === what)!;
      const b = hi.rows.find((r) => r.what === what)!;
      console.log(
        `${what.padEnd(26)} RSS ${a.ours.rssMB.toFixed(0)} MB at ${lo.mb.toFixed(0)} MB, ${b.ours.rssMB.toFixed(0)} MB at ${hi.mb.toFixed(0)} MB: x${f2(b.ours.rssMB / a.ours.rssMB)} (flat)`,
      );
    }
    const a = lo.rows[0]!;
    const b = hi.rows[0]!;
    const per = ((b.ours.rssMB - a.ours.rssMB) * 1048576) / (hi.distinct - lo.distinct);
    console.log(
      `sort (default): ${lo.distinct} -> ${hi.distinct} distinct records, RSS ${a.ours.rssMB.toFixed(0)} -> ${b.ours.rssMB.toFixed(0)} MB: ${per.toFixed(1)} bytes per distinct record (<= 48: ${verdict(per <= 48)})`,
    );
  }
  const near = variants.reduce<VariantResult | undefined>(
    (best, x) => (!best || Math.abs(x.stacks - 124_000) < Math.abs(best.stacks - 124_000) ? x : best),
    undefined,
  );
  if (near) {
    const rss = near.top.ours.rssMB / near.top.c.rssMB;
    const wall = near.top.ours.wallS / near.top.c.wallS;
    console.log(
      `top at ${near.stacks} distinct stacks (V=${near.v}): RSS ${f2(rss)} of C --cull=stacktrace (<= 0.25: ${verdict(rss <= 0.25)}), wall ${f2(wall)} of C (<= 0.20: ${verdict(wall <= 0.2)})`,
    );
  }
  const identical = [
    ...sizes.flatMap((s) => s.rows.map((r) => r.identical)),
    ...variants.map((v) => v.identical),
  ];
  console.log(
    `sorted outputs identical to the C tool's: ${identical.filter((x) => x === true).length} of ${identical.filter((x) => x !== undefined).length}`,
  );
}

await main();
