#!/usr/bin/env node
// The leaks-week bench (issue 11 item 4): `memsleuth leaks` on a week recorded at 10 s
// (60,480 ticks; 1,000 processes, 300 slab caches) answers in under 30 s with a peak RSS under
// 500 MB, and `memsleuth series` streams its output.
//
//   npm run bench:leaks-week -- [--ticks N] [--regenerate] [--generate-only] [--tty] [--json FILE]
//
// 1. Synthesizes the week through the real RecordingWriter of dist/ (bench/leaks-week/week.mjs:
//    churn of processes over the whole pid range, change-only values, planted leaks and benign
//    shapes). It is cached under $TMPDIR/memsleuth-leaks-week/, keyed by the generator's
//    parameters: generating takes minutes. Prints the generation time and the database's size.
// 2. Runs the built CLI (bin/memsleuth.js) `leaks --db WEEK --json` as a child under
//    /usr/bin/time: wall time and peak RSS (max resident set size of the child), and checks the
//    verdict: the planted leaks are the top suspects of their kinds, the benign shapes are not
//    suspects, and nothing else is.
// 3. Runs `series --db WEEK --layer meminfo` for the last hour, for the week as CSV (every point
//    of 55 fields: 3.3 million rows) and as JSON, reading the output itself: time to the first
//    byte, bytes out, wall time and peak RSS. Streaming means the week's peak RSS stays near the
//    hour's: it does not grow with the output.
// 4. With --tty, runs `leaks` once more under script(1) (a pseudo-terminal) to show the progress
//    line on stderr, and checks that it was cleared at the end.
//
// Targets are printed beside the measured numbers, with the load average before each run (this
// machine is shared). Exit code 1 when a target or a verdict check fails.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchEnv, cliArgs } from '../cli.mjs';
import { PLANTED, WEEK_PARAMS, writeWeek } from './week.mjs';

const ROOT = resolve(import.meta.dirname, '..', '..');
const { values: args } = parseArgs({
  options: {
    ticks: { type: 'string' },
    regenerate: { type: 'boolean', default: false },
    tty: { type: 'boolean', default: false },
    json: { type: 'string' },
    'generate-only': { type: 'boolean', default: false },
  },
});
const params = { ...WEEK_PARAMS, ...(args.ticks ? { ticks: Number(args.ticks) } : {}) };
const TARGET_WALL_S = 30;
const TARGET_RSS_MB = 500;
const MB = 1e6;
const MiB = 1024 * 1024;

const load = () =>
  `load ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
const results = { date: new Date().toISOString(), params, checks: [] };
let failed = false;
function check(ok, what) {
  results.checks.push({ ok, what });
  if (!ok) failed = true;
  console.log(`${ok ? 'OK  ' : 'FAIL'} ${what}`);
}

// 1. The week, cached by the generator's parameters (WEEK_PARAMS.version goes up when the
// generator changes what it writes).
const hash = createHash('sha256').update(JSON.stringify(params)).digest('hex').slice(0, 12);
const cacheDir = join(tmpdir(), 'memsleuth-leaks-week');
const db = join(cacheDir, `week-${params.ticks}-${hash}.db`);
mkdirSync(cacheDir, { recursive: true });
if (args.regenerate) rmSync(db, { force: true });
if (existsSync(db)) {
  console.log(`week: ${db} (cached; --regenerate to write it again)`);
} else {
  const { RecordingWriter } = await import(join(ROOT, 'dist', 'store', 'recording.js'));
  const partial = `${db}.partial`;
  for (const f of [partial, `${partial}-wal`, `${partial}-shm`]) rmSync(f, { force: true });
  console.log(`week: generating ${params.ticks} ticks into ${db} (${load()})`);
  const t0 = performance.now();
  const tty = process.stderr.isTTY;
  const { processesStarted } = writeWeek(RecordingWriter, partial, params, (k) => {
    if (tty)
      process.stderr.write(`\r${k}/${params.ticks} ticks, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  });
  if (tty) process.stderr.write('\r\x1b[K');
  renameSync(partial, db);
  results.generation = { seconds: (performance.now() - t0) / 1000, processesStarted, load: loadavg() };
  console.log(
    `week: generated in ${results.generation.seconds.toFixed(1)} s (${processesStarted} processes in all; ${load()})`,
  );
}
results.dbBytes = statSync(db).size;
console.log(`week: ${(results.dbBytes / MiB).toFixed(1)} MiB on disk`);
if (args['generate-only']) process.exit(0);

/**
 * Run the CLI under /usr/bin/time; stdout is read as it comes (first byte time, bytes, and kept
 * when `keep`). Peak RSS is the child's maximum resident set size (kB) as time(1) reports it.
 */
function runCli(argv, { keep = false } = {}) {
  return new Promise((resolvePromise, reject) => {
    const loadBefore = loadavg();
    const t0 = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'MSBENCH %e %M', process.execPath, ...cliArgs(...argv)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: benchEnv(),
    });
    let firstByteS;
    let bytes = 0;
    const chunks = [];
    child.stdout.on('data', (c) => {
      firstByteS ??= (performance.now() - t0) / 1000;
      bytes += c.length;
      if (keep) chunks.push(c);
    });
    let stderr = '';
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /MSBENCH ([\d.]+) (\d+)/.exec(stderr);
      if (!m) return reject(new Error(`no time(1) line from ${argv.join(' ')}:\n${stderr}`));
      resolvePromise({
        code,
        wallS: Number(m[1]),
        peakRssBytes: Number(m[2]) * 1024,
        firstByteS,
        bytes,
        stdout: keep ? Buffer.concat(chunks).toString() : '',
        stderr: stderr.replace(/^.*MSBENCH.*$/m, '').trim(),
        load: loadBefore,
      });
    });
  });
}
const fmtLoad = (l) => `load ${l.map((x) => x.toFixed(2)).join(' ')}`;

// 2. leaks
const leaks = await runCli(['leaks', '--db', db, '--json'], { keep: true });
if (leaks.code !== 0 && leaks.code !== 1) {
  console.error(leaks.stderr);
  throw new Error(`leaks exited ${leaks.code}`);
}
const report = JSON.parse(leaks.stdout);
results.leaks = {
  wallS: leaks.wallS,
  peakRssBytes: leaks.peakRssBytes,
  load: leaks.load,
  seriesAnalysed: report.seriesAnalysed,
  suspects: report.suspects.length,
};
console.log(
  `\nleaks --json: ${leaks.wallS.toFixed(2)} s wall, peak RSS ${(leaks.peakRssBytes / MB).toFixed(0)} MB ` +
    `(${fmtLoad(leaks.load)}); ${report.ticks} ticks, ${report.seriesAnalysed} series analysed, ${report.suspects.length} suspects`,
);
for (const s of report.suspects.slice(0, 10))
  console.log(
    `  ${String(s.rank).padStart(2)} ${s.kind.padEnd(16)} ${s.name.padEnd(34)} ` +
      `${s.unit === 'bytes' ? `${(s.ratePerHour / MiB).toFixed(1)} MiB/h` : `${Math.round(s.ratePerHour)}/h`} ` +
      `conf ${s.confidence.toFixed(2)} ${s.shape}`,
  );
if (report.exitedGrowing.length)
  console.log(`  exited: ${report.exitedGrowing.map((s) => `${s.name} ${s.shape}`).join('; ')}`);
if (report.reclaimable.length)
  console.log(`  reclaimable: ${report.reclaimable.map((s) => s.name).join('; ')}`);

check(leaks.wallS < TARGET_WALL_S, `leaks wall ${leaks.wallS.toFixed(2)} s < ${TARGET_WALL_S} s`);
check(
  leaks.peakRssBytes < TARGET_RSS_MB * MB,
  `leaks peak RSS ${(leaks.peakRssBytes / MB).toFixed(0)} MB < ${TARGET_RSS_MB} MB`,
);
/** A planted id (`process:COMM` or `layer/key`) matches a suspect. */
const matches = (id, s) =>
  id.startsWith('process:')
    ? s.id.startsWith('process/') && s.name.startsWith(`${id.slice(8)} (pid`)
    : s.id === id;
const planted = (s) => PLANTED.leaks.some((p) => matches(p.id, s)) || PLANTED.aggregates.includes(s.id);
for (const p of PLANTED.leaks) {
  const s = report.suspects.find((x) => matches(p.id, x) && x.kind === p.kind);
  check(
    s !== undefined && s.rankInKind === 1,
    `planted leak ${p.id} (${p.what}): ${s ? `rank ${s.rank}, ${s.rankInKind} of its kind (${s.kind}), ${(s.ratePerHour / MiB).toFixed(1)} MiB/h, ${s.shape}` : 'not a suspect'}`,
  );
}
for (const p of PLANTED.benign) {
  const s = report.suspects.find((x) => matches(p.id, x));
  check(
    s === undefined,
    `benign ${p.id} (${p.what}): ${s ? `suspect #${s.rank} ${s.kind} ${s.shape}` : 'not a suspect'}`,
  );
}
const exited = report.exitedGrowing.some((s) => s.name.startsWith('svc-grows-exits ('));
check(exited, 'svc-grows-exits listed among the processes that grew and exited');
const others = report.suspects.filter((s) => !planted(s));
check(
  others.length === 0,
  `no other suspects${others.length ? `: ${others.map((s) => `#${s.rank} ${s.name} ${s.kind} ${s.shape}`).join('; ')}` : ''}`,
);

// 3. series streams: its peak RSS for the whole week is about what it is for the last hour (it
// does not grow with the output), and the first rows come early. CSV goes tick by tick in one
// pass; JSON series by series, in batches of a million points (one pass over the samples each).
results.series = [];
const seriesRuns = [
  ['--layer', 'meminfo', '--since', '1h'],
  ['--layer', 'meminfo'],
  ['--layer', 'meminfo', '--json'],
];
for (const argv of seriesRuns) {
  const r = await runCli(['series', '--db', db, ...argv]);
  if (r.code !== 0) throw new Error(`series ${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
  results.series.push({ argv, ...r, stdout: undefined });
  console.log(
    `\nseries ${argv.join(' ')}: ${(r.bytes / MB).toFixed(1)} MB out in ${r.wallS.toFixed(2)} s, first bytes after ` +
      `${r.firstByteS?.toFixed(2)} s, peak RSS ${(r.peakRssBytes / MB).toFixed(0)} MB (${fmtLoad(r.load)})`,
  );
}
const [hour, csv, json] = results.series;
check(
  csv.peakRssBytes - hour.peakRssBytes < 64 * MB,
  `series ${csv.argv.join(' ')}: ${(csv.bytes / MB).toFixed(0)} MB out with a peak RSS ${((csv.peakRssBytes - hour.peakRssBytes) / MB).toFixed(0)} MB above the last hour's (< 64 MB)`,
);
// Not a check: JSON holds a batch of series at a time, and V8 lets its heap grow with the
// garbage of a fast export (under --max-old-space-size=48 the same export completes).
console.log(
  `note: series ${json.argv.join(' ')}: peak RSS ${((json.peakRssBytes - hour.peakRssBytes) / MB).toFixed(0)} MB above the last hour's for ${(json.bytes / MB).toFixed(0)} MB out (batches of 1M points; not checked)`,
);
check(
  csv.firstByteS !== undefined && csv.firstByteS < csv.wallS / 4,
  `series ${csv.argv.join(' ')}: first bytes at ${csv.firstByteS?.toFixed(2)} s < a quarter of its ${csv.wallS.toFixed(2)} s`,
);

// 4. The progress line on a terminal (script(1) gives the child a pseudo-terminal).
if (args.tty) {
  const typescript = join(cacheDir, 'tty.log');
  const cmd = `${[process.execPath, ...cliArgs('leaks', '--db', db)].join(' ')} > /dev/null`;
  const loadBefore = loadavg();
  spawnSync('script', ['-q', '-e', '-c', cmd, typescript], { stdio: 'ignore' });
  const raw = readFileSync(typescript, 'latin1');
  const states = raw
    .split('\r')
    .map((l) => l.replaceAll('\x1b[K', '').trim())
    .filter((l) => /^(reading samples|analysing series)/.test(l));
  results.tty = { load: loadBefore, states: states.length, first: states[0], last: states.at(-1) };
  console.log(
    `\nleaks on a terminal (${fmtLoad(loadBefore)}): ${states.length} progress states, from "${states[0]}" to "${states.at(-1)}"`,
  );
  check(
    states.some((l) => l.startsWith('reading')) && states.some((l) => l.startsWith('analysing')),
    'leaks shows a progress line on a TTY',
  );
  const lastState = Math.max(raw.lastIndexOf('reading samples'), raw.lastIndexOf('analysing series'));
  check(raw.indexOf('\r\x1b[K', lastState) > lastState, 'the progress line is cleared at the end');
}

if (args.json) writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
console.log(
  `\n${failed ? 'FAIL' : 'PASS'}: targets wall < ${TARGET_WALL_S} s, peak RSS < ${TARGET_RSS_MB} MB, series streams`,
);
process.exitCode = failed ? 1 : 0;
