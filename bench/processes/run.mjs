#!/usr/bin/env node
// The process-count bench (issue 17 item 4, issue 11 item 3): memsleuth ps, report and record
// against the tools they replace, measured in the same run on this machine's processes and with
// 100 and 1,000 extra sleeping processes of varied size (bench/processes/herd.c: 1 to 200
// mappings, 16 KiB to 8 MiB touched, some sharing pages with a forked twin, some with shared
// anonymous memory or a file mapped MAP_SHARED). Every herd runs in its own process group and
// is killed on exit, failure or Ctrl-C.
//
//   npm run bench:processes -- [--runs N] [--counts 0,100,1000] [--record-seconds S] [--warmup-seconds W] [--json FILE]
//
// One-shot commands run interleaved, N times each (default 7), without NODE_EXTRA_CA_CERTS (its
// own row; bench/cli.mjs); the tables show medians of wall time (timed here) and of CPU time
// (user + system, from /usr/bin/time) and each command's ratio to its
// reference: ps and report to smem (Debian's smem: PSS from every smaps), --help to `node -e 0`,
// and ps aux for scale. The recorder runs `memsleuth record --interval 1s` beside
// `pidstat -r -h -p ALL 1` for S seconds (default 60) per count: CPU per tick of each after W
// seconds of warm-up (default 60; both read every process every second), the recorder's
// resident memory (peak VmRSS after warm-up and VmHWM), and the database's bytes per tick and
// per day.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { benchEnv, cliArgs, extraCaCerts, measure, NODE_FLAGS } from '../cli.mjs';

const ROOT = resolve(import.meta.dirname, '..', '..');
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    counts: { type: 'string', default: '0,100,1000' },
    'record-seconds': { type: 'string', default: '60' },
    'record-interval': { type: 'string', default: '1' },
    'warmup-seconds': { type: 'string', default: '60' },
    'no-record': { type: 'boolean', default: false },
    'no-oneshot': { type: 'boolean', default: false },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'usage: npm run bench:processes -- [--runs N] [--counts 0,100,1000] [--record-seconds S]\n' +
      '         [--record-interval S] [--warmup-seconds W] [--no-record] [--no-oneshot] [--json FILE] [--keep]\n' +
      'ps, report and --help against smem, ps aux and node -e 0 (N interleaved runs each), and\n' +
      '`memsleuth record` against `pidstat -r` (CPU per tick after W seconds), with this\n' +
      "machine's processes and with each count of extra sleeping processes (bench/processes/herd.c).\n",
  );
  process.exit(0);
}
const RUNS = Number(args.runs);
const COUNTS = args.counts.split(',').map(Number);
const RECORD_SECONDS = Number(args['record-seconds']);
const INTERVAL = Number(args['record-interval']);
// The recorder is a daemon: its cost per tick is measured once its first minute is behind it (code
// paths that run every 6, 10, 12 or 60 ticks are compiled on first use, the first ticks open
// every process's files), as pidstat's is (it has nothing to warm up).
const WARMUP_SECONDS = Number(args['warmup-seconds']);

const work = mkdtempSync('/tmp/ms-bench-processes-');
const groups = new Set();
let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (!args.keep) rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pidCount = () =>
  execFileSync('ls', ['/proc'])
    .toString()
    .split('\n')
    .filter((p) => /^\d+$/.test(p)).length;

/** Start a herd of `n` sleepers (its own process group); resolves when every one is ready. */
async function startHerd(n, seed) {
  const herd = spawn(join(work, 'herd'), [String(n), String(seed), join(work, 'shared.dat')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  groups.add(herd.pid);
  const line = await new Promise((res, rej) => {
    let out = '';
    herd.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) res(out.trim());
    });
    herd.once('exit', (code) => rej(new Error(`herd exited with ${code}`)));
  });
  return { pgid: herd.pid, made: Number(line.split(' ')[1]) };
}

function stopHerd(h) {
  try {
    process.kill(-h.pgid, 'SIGKILL');
  } catch {
    // gone
  }
  groups.delete(h.pgid);
}

const ONESHOT = [
  { name: 'memsleuth ps', argv: [process.execPath, ...cliArgs('ps')], ref: 'smem' },
  { name: 'memsleuth report', argv: [process.execPath, ...cliArgs('report')], ref: 'smem' },
  {
    name: 'memsleuth report --no-smaps',
    argv: [process.execPath, ...cliArgs('report', '--no-smaps')],
    ref: 'smem',
  },
  { name: 'memsleuth --help', argv: [process.execPath, ...cliArgs('--help')], ref: 'node -e 0' },
  { name: 'smem', argv: ['smem'] },
  { name: 'ps aux', argv: ['ps', 'aux'] },
  { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
  // The machine's NODE_EXTRA_CA_CERTS, which every other command here runs without (bench/cli.mjs).
  ...(extraCaCerts === undefined
    ? []
    : [
        { name: 'node -e 0 with NODE_EXTRA_CA_CERTS', argv: [process.execPath, '-e', '0'], env: process.env },
      ]),
];

function oneshot() {
  const samples = new Map(ONESHOT.map((c) => [c.name, []]));
  for (let i = 0; i < RUNS; i++)
    for (const c of ONESHOT) samples.get(c.name).push(measure(c.argv, { env: c.env }));
  const med = new Map(
    [...samples].map(([k, v]) => [
      k,
      {
        wall: median(v.map((x) => x.wall)),
        cpu: median(v.map((x) => x.cpu)),
        rssKiB: median(v.map((x) => x.rssKiB)),
      },
    ]),
  );
  return ONESHOT.map((c) => {
    const m = med.get(c.name);
    const r = c.ref ? med.get(c.ref) : undefined;
    return {
      command: c.name,
      wallS: m.wall,
      cpuS: m.cpu,
      maxRssMiB: m.rssKiB / 1024,
      ref: c.ref,
      wallRatio: r ? m.wall / r.wall : undefined,
      cpuRatio: r ? m.cpu / Math.max(r.cpu, 0.001) : undefined,
    };
  });
}

function procCpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}
function procRssKiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rss: Number(/^VmRSS:\s+(\d+)/m.exec(s)?.[1] ?? 0),
    hwm: Number(/^VmHWM:\s+(\d+)/m.exec(s)?.[1] ?? 0),
  };
}

/** The recorder and pidstat side by side, same interval, same processes. */
async function recordVsPidstat(label) {
  const db = join(work, `record-${label}.db`);
  rmSync(db, { force: true });
  const duration = `${RECORD_SECONDS + WARMUP_SECONDS + 10 * INTERVAL}s`;
  const rec = spawn(
    process.execPath,
    cliArgs('record', '--db', db, '--interval', `${INTERVAL}s`, '--duration', duration),
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: benchEnv() },
  );
  groups.add(rec.pid);
  let recErr = '';
  rec.stderr.on('data', (d) => {
    recErr += d;
  });
  const ps = spawn('pidstat', ['-r', '-h', '-p', 'ALL', String(INTERVAL)], {
    stdio: ['ignore', 'ignore', 'ignore'],
    detached: true,
  });
  groups.add(ps.pid);
  await sleep(WARMUP_SECONDS * 1000 + 300);
  const t0 = Date.now();
  const c0 = { rec: procCpuSeconds(rec.pid), ps: procCpuSeconds(ps.pid) };
  let peakRss = 0;
  const rssSeries = [];
  while (Date.now() - t0 < RECORD_SECONDS * 1000) {
    await sleep(1000);
    const r = procRssKiB(rec.pid);
    peakRss = Math.max(peakRss, r.rss);
    rssSeries.push(r.rss);
  }
  const t1 = Date.now();
  const c1 = { rec: procCpuSeconds(rec.pid), ps: procCpuSeconds(ps.pid) };
  const hwm = procRssKiB(rec.pid).hwm;
  process.kill(-ps.pid, 'SIGKILL');
  groups.delete(ps.pid);
  process.kill(rec.pid, 'SIGINT');
  await new Promise((r) => rec.once('exit', r));
  groups.delete(rec.pid);
  const d = new Database(db, { readonly: true });
  const ticks = d.prepare('SELECT count(*) AS n FROM ticks WHERE t_ms >= ? AND t_ms <= ?').get(t0, t1).n;
  const all = d.prepare('SELECT count(*) AS n, min(t_ms) AS a, max(t_ms) AS b FROM ticks').get();
  const rows = d.prepare('SELECT count(*) AS n FROM samples').get().n;
  const procs = d.prepare("SELECT count(*) AS n FROM entities WHERE layer = 'process'").get().n;
  d.close();
  const dbBytes = statSync(db).size;
  const intervals = (t1 - t0) / (INTERVAL * 1000);
  const recMs = ((c1.rec - c0.rec) * 1000) / ticks;
  const psMs = ((c1.ps - c0.ps) * 1000) / intervals;
  return {
    label,
    processes: pidCount(),
    recordedProcesses: procs,
    seconds: (t1 - t0) / 1000,
    ticks,
    recorderCpuMsPerTick: recMs,
    pidstatCpuMsPerTick: psMs,
    cpuRatio: recMs / psMs,
    recorderPeakRssMiB: peakRss / 1024,
    recorderHwmMiB: hwm / 1024,
    recorderRssEndMiB: rssSeries.at(-1) / 1024,
    dbBytes,
    bytesPerTick: dbBytes / all.n,
    sampleRows: rows,
    mibPerDay: ((dbBytes / all.n) * (86400 / INTERVAL)) / 1048576,
    stderr: recErr.trim().split('\n').slice(-3).join(' | '),
  };
}

function fmtTable(rows, cols) {
  const w = cols.map((c) => Math.max(c[0].length, ...rows.map((r) => String(c[1](r)).length)));
  const line = (cells) =>
    cells.map((s, i) => (i === 0 ? String(s).padEnd(w[i]) : String(s).padStart(w[i]))).join('  ');
  return [line(cols.map((c) => c[0])), ...rows.map((r) => line(cols.map((c) => c[1](r))))].join('\n');
}

async function main() {
  execFileSync('gcc', ['-O2', '-o', join(work, 'herd'), join(ROOT, 'bench', 'processes', 'herd.c')]);
  writeFileSync(join(work, 'shared.dat'), Buffer.alloc(1 << 20, 1));
  const results = { machine: { cpus: cpus().length, node: process.version }, oneshot: [], record: [] };
  console.log(
    `bench/processes: ${cpus().length} CPUs, load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}, ${RUNS} runs per command`,
  );
  console.log(`memsleuth runs as its #! line has it: node ${[...NODE_FLAGS, 'bin/memsleuth.js'].join(' ')}`);
  for (const [i, count] of COUNTS.entries()) {
    const herd = count > 0 ? await startHerd(count, i + 1) : undefined;
    await sleep(500);
    const label = count === 0 ? "this machine's processes" : `+${count} sleepers (${herd.made} processes)`;
    const n = pidCount();
    console.log(`\n== ${label}: ${n} processes in /proc, load ${loadavg()[0].toFixed(2)}`);
    if (!args['no-oneshot']) {
      const rows = oneshot();
      results.oneshot.push({ label, processes: n, load: loadavg()[0], rows });
      console.log(
        fmtTable(rows, [
          ['command', (r) => r.command],
          ['wall s', (r) => r.wallS.toFixed(3)],
          ['cpu s', (r) => r.cpuS.toFixed(3)],
          ['max RSS MiB', (r) => r.maxRssMiB.toFixed(1)],
          ['wall ratio', (r) => (r.ref ? `${r.wallRatio.toFixed(2)}x ${r.ref}` : '')],
          ['cpu ratio', (r) => (r.ref ? `${r.cpuRatio.toFixed(2)}x` : '')],
        ]),
      );
    }
    if (!args['no-record']) {
      const r = await recordVsPidstat(count === 0 ? 'machine' : String(count));
      results.record.push({ ...r, load: loadavg()[0] });
      console.log(
        `record --interval ${INTERVAL}s vs pidstat -r -h -p ALL ${INTERVAL} over ${r.seconds.toFixed(0)} s after ${WARMUP_SECONDS} s (${r.ticks} ticks, ${r.processes} processes): ` +
          `${r.recorderCpuMsPerTick.toFixed(2)} vs ${r.pidstatCpuMsPerTick.toFixed(2)} ms CPU per tick = ${r.cpuRatio.toFixed(2)}x pidstat; ` +
          `recorder RSS peak ${r.recorderPeakRssMiB.toFixed(1)} MiB (VmHWM ${r.recorderHwmMiB.toFixed(1)} MiB); ` +
          `storage ${(r.bytesPerTick / 1024).toFixed(1)} KiB/tick, ${r.mibPerDay.toFixed(0)} MiB/day at ${INTERVAL} s`,
      );
      if (r.stderr) console.log(`  recorder: ${r.stderr}`);
    }
    if (herd) stopHerd(herd);
    await sleep(1000);
  }
  console.log(
    `\nload at the end ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; rerun: npm run bench:processes`,
  );
  if (args.json) writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
}

main().catch((e) => {
  console.error(e);
  cleanup();
  process.exit(1);
});
