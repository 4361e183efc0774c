#!/usr/bin/env node
// The fleet's costs, measured (`npm run bench:fleet`, root for slabinfo and every process):
//
// 1. Scrape cost: `memsleuth exporter` reading this machine, scraped N times with a new snapshot
//    each time, against node_exporter 1.5 (Debian) with the same four collectors (meminfo,
//    vmstat, buddyinfo, slabinfo) and with its default collectors, in the same run: CPU and wall
//    per scrape, series, bytes, resident memory.
// 2. Query cost: H synthetic hosts backfilled over 24 h with `promtool tsdb create-blocks-from
//    openmetrics`, each host's series copied from this machine's real exposition (values walk a
//    little at every sample; host-0000 leaks into its unaccounted remainder and one slab cache);
//    a Prometheus on that data, then `memsleuth fleet --since 24h`: wall time, Prometheus CPU,
//    queries, bytes, peak RSS; the cost per host, and 1,000 hosts computed from it.
//
// Options: --scrapes N (default 30), --hosts H (default 8), --interval S (backfill scrape
// interval, default 60), --hours N (default 24), --json FILE, --keep, --no-scrape (query cost only).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchEnv, cliArgs } from '../cli.mjs';

const { values: args } = parseArgs({
  options: {
    scrapes: { type: 'string', default: '30' },
    hosts: { type: 'string', default: '8' },
    interval: { type: 'string', default: '60' },
    hours: { type: 'string', default: '24' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'no-scrape': { type: 'boolean', default: false },
  },
});
const SCRAPES = Number(args.scrapes);
const HOSTS = Number(args.hosts);
const INTERVAL = Number(args.interval);
const HOURS = Number(args.hours);
const TICK = 100; // USER_HZ: /proc/<pid>/stat times are in 1/100 s on Linux

const work = mkdtempSync('/tmp/ms-fleet-bench-');
const children = new Set();
function cleanup() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
  if (!args.keep) rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const log = (s) => process.stderr.write(`${s}\n`);

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

function bin(name) {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} missing: scripts/ensure-deps.sh installs it`);
  return r.stdout.trim();
}

/** utime+stime (s) and VmRSS (bytes) of a process. */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / TICK;
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  return { cpu, rss };
}

function start(cmd, argv) {
  const c = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: benchEnv() });
  children.add(c);
  let err = '';
  c.stderr.on('data', (b) => {
    err = (err + b).slice(-10000);
  });
  c.on('exit', () => children.delete(c));
  return { child: c, err: () => err };
}

async function waitOk(url, proc) {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {}
    if (proc.child.exitCode !== null) throw new Error(`exited: ${proc.err()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered: ${proc.err()}`);
}

async function stop(proc) {
  if (proc.child.exitCode !== null) return;
  const done = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  await done;
}

/** Scrape `url` n times, one after the other; CPU of `pid` over the scrapes. */
async function scrapeCost(name, proc, url, n) {
  await waitOk(url, proc);
  await fetch(url).then((r) => r.text()); // warm: first snapshot, JIT
  const u0 = usage(proc.child.pid);
  const walls = [];
  let text = '';
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    text = await fetch(url).then((r) => r.text());
    walls.push(performance.now() - t0);
  }
  const u1 = usage(proc.child.pid);
  walls.sort((a, b) => a - b);
  const series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
  return {
    name,
    scrapes: n,
    cpuMsPerScrape: ((u1.cpu - u0.cpu) * 1000) / n,
    wallMsMedian: walls[walls.length >> 1],
    wallMsP90: walls[Math.floor(walls.length * 0.9)],
    series,
    bytes: Buffer.byteLength(text),
    rssBytes: u1.rss,
  };
}

async function scrapeBench() {
  const rows = [];
  const ne = bin('prometheus-node-exporter');
  const variants = [
    [
      'node_exporter 1.5: meminfo, vmstat, buddyinfo, slabinfo',
      ne,
      (p) => [
        `--web.listen-address=127.0.0.1:${p}`,
        '--collector.disable-defaults',
        '--collector.meminfo',
        '--collector.vmstat',
        '--collector.buddyinfo',
        '--collector.slabinfo',
      ],
    ],
    ['node_exporter 1.5: default collectors', ne, (p) => [`--web.listen-address=127.0.0.1:${p}`]],
    [
      'memsleuth exporter (defaults)',
      process.execPath,
      (p) => cliArgs('exporter', '--listen', `127.0.0.1:${p}`, '--interval', '0'),
    ],
    [
      'memsleuth exporter --node-families all',
      process.execPath,
      (p) => cliArgs('exporter', '--listen', `127.0.0.1:${p}`, '--interval', '0', '--node-families', 'all'),
    ],
    [
      'memsleuth exporter --processes all',
      process.execPath,
      (p) => cliArgs('exporter', '--listen', `127.0.0.1:${p}`, '--interval', '0', '--processes', 'all'),
    ],
    [
      'memsleuth exporter --pss',
      process.execPath,
      (p) => cliArgs('exporter', '--listen', `127.0.0.1:${p}`, '--interval', '0', '--pss'),
    ],
    [
      'memsleuth exporter --smaps',
      process.execPath,
      (p) => cliArgs('exporter', '--listen', `127.0.0.1:${p}`, '--interval', '0', '--smaps'),
    ],
  ];
  for (const [name, cmd, argv] of variants) {
    const port = await freePort();
    const proc = start(cmd, argv(port));
    try {
      rows.push(await scrapeCost(name, proc, `http://127.0.0.1:${port}/metrics`, SCRAPES));
    } finally {
      await stop(proc);
    }
    log(`scrape: ${name} done`);
  }
  return rows;
}

// ---- query cost -------------------------------------------------------------------------------

/** Families of this machine's exposition (memsleuth exporter --once, defaults). */
function template() {
  const text = execFileSync(process.execPath, cliArgs('exporter', '--once'), {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const fams = new Map();
  let cur;
  for (const line of text.split('\n')) {
    let m = /^# TYPE (\S+) (\w+)$/.exec(line);
    if (m) {
      cur = { name: m[1], type: m[2], samples: [] };
      fams.set(cur.name, cur);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    m = /^([^{ ]+)(\{.*\})? (\S+)$/.exec(line);
    fams.get(m[1]).samples.push({ labels: m[2] ? m[2].slice(1, -1) : '', value: Number(m[3]) });
  }
  return [...fams.values()];
}

/** A deterministic pseudo-random walk: xorshift. */
function rng(seed) {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) / 0xffffffff) * 2 - 1;
  };
}

async function writeOpenMetrics(file, fams, t0, t1) {
  const out = createWriteStream(file, { highWaterMark: 1 << 22 });
  const write = (s) => (out.write(s) ? undefined : new Promise((r) => out.once('drain', r)));
  const steps = Math.floor((t1 - t0) / INTERVAL);
  let samples = 0;
  const rand = rng(42);
  for (const f of fams) {
    // OpenMetrics: a counter's family name has no _total; untyped is unknown.
    const type = f.type === 'untyped' ? 'unknown' : f.type;
    const base = type === 'counter' ? f.name.replace(/_total$/, '') : f.name;
    await write(`# TYPE ${base} ${type}\n`);
    for (let h = 0; h < HOSTS; h++) {
      const host = `host-${String(h).padStart(4, '0')}`;
      for (const s of f.samples) {
        const labels = `{instance="${host}",job="memsleuth"${s.labels ? `,${s.labels}` : ''}}`;
        const bytes = /_bytes$/.test(f.name);
        // host-0000 leaks: the unaccounted remainder +2 GiB a day, kmalloc-1k +1 GiB a day.
        const leak =
          h === 0 && f.name === 'memsleuth_memory_layer_bytes' && s.labels === 'layer="unaccounted"'
            ? 2 ** 31 / 86400
            : h === 0 && f.name === 'memsleuth_slab_bytes' && s.labels === 'slab="kmalloc-1k"'
              ? 2 ** 30 / 86400
              : 0;
        let v = s.value;
        let chunk = '';
        for (let k = 0; k <= steps; k++) {
          const t = t0 + k * INTERVAL;
          if (f.type === 'counter') v += Math.abs(rand()) * 0.01;
          // Gauges wobble around the captured value, with no trend: bytes by up to 0.1% or 1 MiB.
          else if (bytes && s.value > 0 && !leak)
            v = Math.max(0, Math.round(s.value + rand() * Math.min(s.value * 0.001, 1 << 20)));
          const value = leak ? Math.round(s.value + leak * (t - t0)) : v;
          chunk += `${f.name}${labels} ${value} ${t}\n`;
          samples++;
          if (chunk.length > 1 << 20) {
            await write(chunk);
            chunk = '';
          }
        }
        await write(chunk);
      }
    }
  }
  await write('# EOF\n');
  await new Promise((r) => out.end(r));
  return samples;
}

async function queryBench() {
  const fams = template();
  const perHost = fams.reduce((n, f) => n + f.samples.length, 0);
  const t1 = Math.floor(Date.now() / 1000 / 3600) * 3600 - 3600; // whole hours, the last hour left out of the head
  const t0 = t1 - HOURS * 3600;
  const om = join(work, 'backfill.om');
  let t = performance.now();
  const samples = await writeOpenMetrics(om, fams, t0, t1);
  const genS = (performance.now() - t) / 1000;
  log(
    `backfill: ${samples} samples, ${(statSync(om).size / 2 ** 20).toFixed(0)} MiB of OpenMetrics in ${genS.toFixed(0)} s`,
  );
  const data = join(work, 'data');
  t = performance.now();
  execFileSync(
    bin('promtool'),
    ['tsdb', 'create-blocks-from', 'openmetrics', '--max-block-duration=24h', om, data],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const backfillS = (performance.now() - t) / 1000;
  rmSync(om);
  const du = execFileSync('du', ['-sb', data], { encoding: 'utf8' });
  const tsdbBytes = Number(du.split('\t')[0]);
  log(`backfill: promtool ${backfillS.toFixed(0)} s, TSDB ${(tsdbBytes / 2 ** 20).toFixed(0)} MiB`);
  const port = await freePort();
  const cfg = join(work, 'prometheus.yml');
  writeFileSync(cfg, 'global:\n  scrape_interval: 1m\n');
  const prom = start(bin('prometheus'), [
    `--config.file=${cfg}`,
    `--storage.tsdb.path=${data}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--storage.tsdb.retention.time=30d',
  ]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitOk(`${url}/-/ready`, prom);
    const runs = [];
    for (let i = 0; i < 2; i++) {
      // Twice: the first run pays for cold chunk pages, the second is what a repeated check costs.
      const u0 = usage(prom.child.pid);
      const tw = performance.now();
      const r = spawnSync(
        bin('time'),
        [
          '-f',
          '%M %U %S',
          process.execPath,
          ...cliArgs('fleet', '--prometheus', url, '--since', `${HOURS}h`, '--json'),
        ],
        { encoding: 'utf8', maxBuffer: 1 << 28, env: benchEnv() },
      );
      const wallS = (performance.now() - tw) / 1000;
      const u1 = usage(prom.child.pid);
      if (r.status !== 0 && r.status !== 1) throw new Error(`fleet failed: ${r.stderr}`);
      const report = JSON.parse(r.stdout);
      const [peakKb, userS, sysS] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
      runs.push({
        wallS,
        prometheusCpuS: u1.cpu - u0.cpu,
        prometheusRssBytes: u1.rss,
        fleetPeakRssBytes: peakKb * 1024,
        fleetCpuS: userS + sysS,
        requests: report.queries.requests,
        responseBytes: report.queries.bytes,
        instances: report.instances.length,
        seriesRead: report.instances.reduce((n, x) => n + x.series, 0),
        pointsRead: report.instances.reduce((n, x) => n + x.points, 0),
        stepS: report.stepMs / 1000,
        top: report.suspects.slice(0, 3).map((s) => `${s.instance} ${s.id}`),
      });
      log(`fleet run ${i + 1}: ${wallS.toFixed(1)} s`);
    }
    return {
      hosts: HOSTS,
      intervalS: INTERVAL,
      hours: HOURS,
      seriesPerHost: perHost,
      samples,
      genS,
      backfillS,
      tsdbBytes,
      runs,
    };
  } finally {
    await stop(prom);
  }
}

const scrape = args['no-scrape'] ? [] : await scrapeBench();
const query = await queryBench();
const fmt = (n, d = 1) => n.toFixed(d);
const ref = scrape[0];
if (scrape.length) {
  console.log(
    `Scrape cost on this machine (${SCRAPES} scrapes each, one after the other; ${new Date().toISOString()}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}):`,
  );
  console.log(
    '| exporter | series | bytes | CPU ms/scrape | vs node_exporter (same 4) | wall ms median / p90 | RSS MiB |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of scrape)
    console.log(
      `| ${r.name} | ${r.series} | ${r.bytes} | ${fmt(r.cpuMsPerScrape)} | ${fmt(r.cpuMsPerScrape / ref.cpuMsPerScrape, 2)}x | ${fmt(r.wallMsMedian)} / ${fmt(r.wallMsP90)} | ${fmt(r.rssBytes / 2 ** 20, 0)} |`,
    );
}
const q = query;
console.log(
  `\nQuery cost: ${q.hosts} hosts × ${q.seriesPerHost} series × ${q.hours} h at ${q.intervalS} s = ${q.samples} samples (backfill: generate ${fmt(q.genS, 0)} s, promtool ${fmt(q.backfillS, 0)} s, TSDB ${fmt(q.tsdbBytes / 2 ** 20, 0)} MiB)`,
);
console.log(
  '| run | wall s | fleet CPU s | Prometheus CPU s | requests | response MiB | fleet peak RSS MiB | series read | step s | top suspects |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
q.runs.forEach((r, i) => {
  console.log(
    `| ${i + 1} | ${fmt(r.wallS)} | ${fmt(r.fleetCpuS, 2)} | ${fmt(r.prometheusCpuS, 2)} | ${r.requests} | ${fmt(r.responseBytes / 2 ** 20)} | ${fmt(r.fleetPeakRssBytes / 2 ** 20, 0)} | ${r.seriesRead} | ${r.stepS} | ${r.top.join('; ')} |`,
  );
});
const warm = q.runs[q.runs.length - 1];
const per = {
  wallS: warm.wallS / q.hosts,
  fleetCpuS: warm.fleetCpuS / q.hosts,
  cpuS: warm.prometheusCpuS / q.hosts,
  requests: warm.requests / q.hosts,
  bytes: warm.responseBytes / q.hosts,
};
console.log(
  `\nPer host (run ${q.runs.length}): ${fmt(per.wallS, 2)} s wall, ${fmt(per.fleetCpuS, 3)} s fleet CPU, ${fmt(per.cpuS, 3)} s Prometheus CPU, ${fmt(per.requests, 0)} requests, ${fmt(per.bytes / 2 ** 20, 2)} MiB.` +
    `\n1,000 hosts, computed from it: ${fmt((per.wallS * 1000) / 60, 1)} min wall, ${fmt((per.fleetCpuS * 1000) / 60, 1)} min fleet CPU, ${fmt((per.cpuS * 1000) / 60, 1)} min Prometheus CPU, ${fmt(per.requests * 1000, 0)} requests, ${fmt((per.bytes * 1000) / 2 ** 30, 2)} GiB of responses; fleet's memory stays at one instance's series (4 at a time).`,
);
if (args.json) writeFileSync(args.json, JSON.stringify({ scrape, query, perHost: per }, null, 2));
