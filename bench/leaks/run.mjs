#!/usr/bin/env node
// The leak scenario suite: real leaking and benign processes on this machine, recorded with
// `memsleuth record --interval 5s` while `pidstat -r` samples the same processes, then judged
// with `memsleuth leaks`. Prints a table (detected? rank of the true culprit, time to
// detection) and the recorder's cost. Run as root (tmpfs mount): `npm run bench:leaks`.
//
// Options: --seconds N (scenario run time, default 330), --interval S (default 5),
// --tmpfs-every S (the recorder's walk of the tmpfs mounts for their largest files, default 30),
// --json FILE (write the results), --keep (keep the work directory).
//
// The walk is every 30 s here where `record` makes it every minute: a verdict on one file
// needs 8 readings of it (analysis/trend.ts), and a run of 330 s at the recorder's default
// holds 5 (the mount itself, read every 10 s, is a suspect either way).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { analyzeLeaks } from '../../dist/analysis/leaks.js';
import { RecordingReader } from '../../dist/store/recording.js';
import { benchEnv, cliArgs } from '../cli.mjs';
import { C_PROGRAMS, NODE_RETAIN, NODE_SAWTOOTH, PY_PAGECACHE, PY_SOCKETS, PY_TMPFS } from './programs.mjs';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '330' },
    interval: { type: 'string', default: '5' },
    'tmpfs-every': { type: 'string', default: '30' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds);
const INTERVAL = Number(args.interval);
const TMPFS_EVERY_TICKS = Math.max(1, Math.round(Number(args['tmpfs-every']) / INTERVAL));
const TMPFS_FLAG = ['--tmpfs-every', String(TMPFS_EVERY_TICKS)];
const SOCKET_CACHES = new Set(['TCP', 'TCPv6', 'UDP', 'UDPv6', 'sock_inode_cache', 'request_sock_TCP']);

const work = mkdtempSync('/tmp/ms-leaks-');
const tmpfs = join(work, 'tmpfs');
const children = new Set();
let mounted = false;
let cleaned = false;

// Files the shared memory scenarios create under /dev/shm (removed on exit, failure or Ctrl-C).
const shmFiles = [`/dev/shm/ms-leaks-append-${process.pid}.dat`, `/dev/shm/ms-leaks-ring-${process.pid}.dat`];

function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const f of shmFiles) rmSync(f, { force: true });
  if (mounted) {
    try {
      execFileSync('umount', ['-l', tmpfs]);
    } catch (e) {
      console.error(`bench: umount ${tmpfs} failed: ${e.message}`);
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

/** Start a child in its own process group (so the whole group can be killed). */
function start(cmd, argv, opts = {}) {
  const c = spawn(cmd, argv, { detached: true, stdio: opts.stdio ?? 'ignore', env: benchEnv(), ...opts });
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

function cpuSeconds(pid) {
  // utime + stime (fields 14, 15) and cutime + cstime of waited-for children, in clock ticks.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function main() {
  // Compile the C scenarios.
  for (const [name, src] of Object.entries(C_PROGRAMS)) {
    writeFileSync(join(work, `${name}.c`), src);
    execFileSync('gcc', ['-O1', '-pthread', '-o', join(work, name), join(work, `${name}.c`)]);
  }
  execFileSync('mkdir', ['-p', tmpfs]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'ms-leaks-bench', tmpfs]);
  mounted = true;
  for (const [n, src] of Object.entries({
    'retain.js': NODE_RETAIN,
    'sawtooth.js': NODE_SAWTOOTH,
    'sockets.py': PY_SOCKETS,
    'tmpfs.py': PY_TMPFS,
    'pagecache.py': PY_PAGECACHE,
  }))
    writeFileSync(join(work, n), src);

  const db = join(work, 'recording.db');
  // Scenarios outlive the recording: a leaker killed before the last tick would (rightly) look
  // like a spike that was freed.
  const recordSecs = SECONDS;
  const duration = `${recordSecs}s`;
  const recorder = start(
    process.execPath,
    cliArgs('record', '--db', db, '--interval', `${INTERVAL}s`, '--duration', duration, ...TMPFS_FLAG),
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let recorderErr = '';
  recorder.stderr.on('data', (d) => {
    recorderErr += d;
  });
  const pidstatOut = join(work, 'pidstat.txt');
  const pidstat = start('sh', ['-c', `exec pidstat -r -p ALL ${INTERVAL} > ${pidstatOut}`]);
  await sleep(INTERVAL * 1000 + 500);

  const t0 = Date.now();
  const s = String(SECONDS + 4 * INTERVAL + 30);
  const scenarios = [
    {
      name: 'malloc never freed (C)',
      label: 'leaker',
      kinds: ['process-memory'],
      proc: start(join(work, 'ms-malloc-leak'), [s]),
      comm: 'ms-malloc-leak',
    },
    {
      name: 'anon mmap never unmapped (C)',
      label: 'leaker',
      kinds: ['process-memory'],
      proc: start(join(work, 'ms-mmap-leak'), [s]),
      comm: 'ms-mmap-leak',
    },
    {
      name: 'threads never joined (C)',
      label: 'leaker',
      kinds: ['process-virtual'],
      proc: start(join(work, 'ms-thread-leak'), [s]),
      comm: 'ms-thread-leak',
    },
    {
      name: 'Node retains objects',
      label: 'leaker',
      kinds: ['process-memory'],
      proc: start(process.execPath, [join(work, 'retain.js'), s]),
    },
    {
      name: 'sockets never closed (Python)',
      label: 'leaker',
      kinds: ['slab'],
      slab: true,
      proc: start('python3', [join(work, 'sockets.py'), s]),
    },
    {
      name: 'tmpfs file grows (Python)',
      label: 'leaker',
      kinds: ['tmpfs-file'],
      file: join(tmpfs, 'grow.bin'),
      proc: start('python3', [join(work, 'tmpfs.py'), s, join(tmpfs, 'grow.bin')]),
    },
    {
      name: '/dev/shm file grows (C)',
      label: 'leaker',
      kinds: ['tmpfs-file'],
      file: shmFiles[0],
      comm: 'ms-shm-append',
      proc: start(join(work, 'ms-shm-append'), [s, shmFiles[0]]),
    },
    {
      name: 'SysV segment grows (C)',
      label: 'leaker',
      kinds: ['sysv-shm'],
      sysv: true,
      comm: 'ms-sysv-grow',
      proc: start(join(work, 'ms-sysv-grow'), [s]),
    },
    {
      name: 'page cache from reads',
      label: 'benign',
      proc: start('python3', [join(work, 'pagecache.py'), s, join(work, 'big.bin'), String(768 << 20)]),
    },
    {
      name: 'GC sawtooth, flat minima (Node)',
      label: 'benign',
      proc: start(process.execPath, ['--expose-gc', join(work, 'sawtooth.js'), s]),
    },
    {
      name: 'warm-up then plateau (C)',
      label: 'benign',
      proc: start(join(work, 'ms-warmup'), [s]),
      comm: 'ms-warmup',
    },
    {
      name: 'large stable process (C)',
      label: 'benign',
      proc: start(join(work, 'ms-stable-big'), [s]),
      comm: 'ms-stable-big',
    },
    {
      name: 'shm ring rewritten in place (C)',
      label: 'benign',
      file: shmFiles[1],
      comm: 'ms-shm-ring',
      proc: start(join(work, 'ms-shm-ring'), [s, shmFiles[1]]),
    },
    {
      name: 'short-lived process churn (C)',
      label: 'benign',
      proc: start(join(work, 'ms-churn'), [s]),
      comm: 'ms-churn',
    },
    {
      name: 'spike that is freed (C)',
      label: 'benign',
      proc: start(join(work, 'ms-spike'), [s]),
      comm: 'ms-spike',
    },
  ];
  console.error(
    `bench: ${scenarios.length} scenarios for ${SECONDS}s, recording every ${INTERVAL}s (tmpfs files every ${TMPFS_EVERY_TICKS} ticks) into ${db}`,
  );

  // Wait for the recorder to finish its duration; take CPU readings just before it exits.
  let recCpu = 0;
  let pidCpu = 0;
  const deadline = t0 + (recordSecs - 2 * INTERVAL) * 1000;
  while (Date.now() < deadline) {
    await sleep(1000);
    try {
      recCpu = cpuSeconds(recorder.pid);
      pidCpu = cpuSeconds(pidstat.pid);
    } catch {
      break;
    }
  }
  const exited = new Promise((r) => recorder.once('exit', r));
  await Promise.race([exited, sleep(3 * INTERVAL * 1000)]);
  const tEnd = Date.now();
  cleanup_children();

  // Judge: final verdict, and the earliest prefix at which each culprit was named.
  const reader = new RecordingReader(db);
  const whole = reader.load({ layers: ['meminfo'], maxPoints: 10 ** 6 });
  const memTicks = whole.series.find((x) => x.key === 'MemTotal')?.t ?? [];
  const final = analyzeLeaks(reader.load());
  // A shared memory leak is found when its verdict names the file (or segment) and the process.
  const owns = (sc, sus) =>
    (sus.owners ?? []).some((o) => o.pid === sc.proc.pid || (sc.comm !== undefined && o.name === sc.comm));
  const isCulprit = (sc, sus) => {
    if (!sc.kinds?.includes(sus.kind)) return false;
    if (sc.slab) return SOCKET_CACHES.has(sus.id.slice('slab/'.length));
    if (sc.file) return sus.id === `tmpfs-file/${sc.file}` && sus.name.includes(sc.file) && owns(sc, sus);
    if (sc.sysv) return owns(sc, sus) && sus.name.includes(sc.comm);
    return sc.comm ? sus.name.startsWith(`${sc.comm} (`) : sus.pid === sc.proc.pid;
  };
  // Several leakers of one kind run at once, so "top of its kind" means: no suspect of that
  // kind ranks above the culprit except other scenario leakers (which are real leaks too).
  const leakers = scenarios.filter((x) => x.label === 'leaker');
  const rankAmongOthers = (sc, rep) => {
    const ofKind = rep.suspects.filter((x) => sc.kinds.includes(x.kind));
    const others = ofKind.filter(
      (x) => isCulprit(sc, x) || !leakers.some((o) => o !== sc && isCulprit(o, x)),
    );
    const i = others.findIndex((x) => isCulprit(sc, x));
    return i < 0 ? undefined : i + 1;
  };
  const isMine = (sc, sus) =>
    (sc.comm ? sus.name.startsWith(`${sc.comm} (`) : sus.pid === sc.proc.pid) ||
    (sc.file !== undefined && sus.id === `tmpfs-file/${sc.file}`) ||
    owns(sc, sus);
  for (const sc of scenarios) sc.detectedAtMs = undefined;
  for (let i = 6; i < memTicks.length; i += 2) {
    const rep = analyzeLeaks(reader.load({ untilMs: memTicks[i] }));
    for (const sc of scenarios) {
      if (sc.label !== 'leaker' || sc.detectedAtMs !== undefined) continue;
      if (rankAmongOthers(sc, rep) === 1) sc.detectedAtMs = memTicks[i] - t0;
    }
  }
  reader.close();

  // Label the recording with the scenarios (entity ids or comms) so it can serve as a test
  // fixture: test/fixtures/recordings/ (see bench/leaks/trim-fixture.mjs).
  const raw = new Database(db);
  const entityOf = raw.prepare(
    "SELECT key FROM entities WHERE layer = 'process' AND pid = ? ORDER BY id DESC LIMIT 1",
  );
  const labels = {};
  for (const sc of scenarios) {
    const who = sc.slab
      ? 'slab/TCP'
      : sc.file
        ? `tmpfs-file/${sc.file}`
        : sc.sysv
          ? `sysv-shm/${sc.comm}`
          : (sc.comm ?? `process/${entityOf.get(sc.proc.pid)?.key}`);
    labels[who] = { label: sc.label, scenario: sc.name, ...(sc.kinds ? { kind: sc.kinds[0] } : {}) };
  }
  const setMeta = raw.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
  setMeta.run('bench_scenarios', JSON.stringify(labels));
  setMeta.run('bench_pids', JSON.stringify(scenarios.map((sc) => sc.proc.pid)));
  raw.close();

  const rows = scenarios.map((sc) => {
    if (sc.label === 'leaker') {
      const hit = final.suspects.find((x) => isCulprit(sc, x));
      const fdsHit = sc.slab
        ? final.suspects.find((x) => x.kind === 'process-fds' && x.pid === sc.proc.pid)
        : undefined;
      return {
        scenario: sc.name,
        label: sc.label,
        expected: sc.kinds.join(','),
        detected: Boolean(hit),
        rankInKind: rankAmongOthers(sc, final),
        rank: hit?.rank,
        suspect: hit ? `${hit.name}${fdsHit ? ` + ${fdsHit.name} fds` : ''}` : '-',
        rate: hit ? hit.ratePerHour : undefined,
        detectedAfterS: sc.detectedAtMs === undefined ? undefined : Math.round(sc.detectedAtMs / 1000),
        ok: Boolean(
          hit &&
            rankAmongOthers(sc, final) === 1 &&
            sc.detectedAtMs !== undefined &&
            sc.detectedAtMs <= 300_000,
        ),
      };
    }
    const wrong = final.suspects.filter((x) => isMine(sc, x));
    return {
      scenario: sc.name,
      label: sc.label,
      expected: 'not a leak',
      detected: wrong.length > 0,
      suspect: wrong.map((w) => `${w.kind} ${w.name}`).join('; ') || '-',
      ok: wrong.length === 0,
    };
  });

  console.log(
    '\nScenario                         label   expected         detected rank(kind) time-to-detect  suspect',
  );
  for (const r of rows) {
    console.log(
      `${r.scenario.padEnd(32)} ${r.label.padEnd(7)} ${r.expected.padEnd(16)} ${String(r.detected).padEnd(8)} ` +
        `${(r.rankInKind === undefined ? '-' : `${r.rankInKind} (${r.rank})`).padEnd(10)} ` +
        `${(r.detectedAfterS === undefined ? '-' : `${r.detectedAfterS}s`).padEnd(15)} ${r.ok ? 'OK  ' : 'FAIL'} ${r.suspect}`,
    );
  }

  // Cost and storage.
  const ticks = memTicks.length;
  const dbBytes = statSync(db).size;
  const procs = final.suspects.length;
  const rdb = new RecordingReader(db);
  const st = rdb.stats();
  rdb.close();
  const layerRows = Object.entries(st.rowsByLayer).map(([layer, n]) => ({ layer, n }));
  const entityCounts = Object.entries(st.entitiesByLayer).map(([layer, n]) => ({ layer, n }));
  const totalRows = layerRows.reduce((a, r) => a + r.n, 0);
  const bytesPerRow = dbBytes / totalRows;
  const rowsPerTick = Object.fromEntries(layerRows.map((r) => [r.layer, r.n / ticks]));
  const entities = Object.fromEntries(entityCounts.map((r) => [r.layer, r.n]));
  const perDay10s = (dbBytes / ticks) * 8640;
  const procRowsPerEntityTick = (rowsPerTick.process ?? 0) / Math.max(1, entities.process ?? 1);
  const slabRowsPerCacheTick = (rowsPerTick.slab ?? 0) / Math.max(1, entities.slab ?? 1);
  const otherRowsPerTick = Object.entries(rowsPerTick)
    .filter(([l]) => l !== 'process' && l !== 'slab')
    .reduce((a, [, n]) => a + n, 0);
  const weekBigBytes =
    (procRowsPerEntityTick * 1000 + slabRowsPerCacheTick * 300 + otherRowsPerTick) * bytesPerRow * 60480;
  const cost = {
    ticks,
    durationS: Math.round((tEnd - t0) / 1000),
    recorderCpuMsPerTick: (recCpu * 1000) / ticks,
    pidstatCpuMsPerTick: (pidCpu * 1000) / ticks,
    dbBytes,
    bytesPerTick: dbBytes / ticks,
    bytesPerRow,
    rowsPerTick,
    entities,
    perDayAt10sBytes: perDay10s,
    weekAt10sFor1000ProcsAnd300CachesBytes: weekBigBytes,
    suspects: procs,
  };
  const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;
  console.log(
    `\nRecorder cost: ${cost.recorderCpuMsPerTick.toFixed(1)} ms CPU/tick (memsleuth record, incl. Node start-up) vs ` +
      `${cost.pidstatCpuMsPerTick.toFixed(1)} ms CPU/tick (pidstat -r -p ALL ${INTERVAL}), ${ticks} ticks`,
  );
  console.log(
    `Storage: ${mib(dbBytes)} for ${ticks} ticks (${(cost.bytesPerTick / 1024).toFixed(1)} KiB/tick, ${bytesPerRow.toFixed(1)} B/sample row); ` +
      `${mib(perDay10s)}/day at 10s for this machine; a week at 10s for 1,000 processes and 300 caches: ${mib(weekBigBytes)}`,
  );
  console.log(
    `Entities: ${JSON.stringify(entities)}; sample rows per tick: ${JSON.stringify(Object.fromEntries(Object.entries(rowsPerTick).map(([k, v]) => [k, Math.round(v)])))}`,
  );
  const pass = rows.every((r) => r.ok);
  console.log(
    `\n${pass ? 'PASS' : 'FAIL'}: ${rows.filter((r) => r.ok).length}/${rows.length} scenarios meet the targets`,
  );
  if (recorderErr.trim()) console.error(`recorder: ${recorderErr.trim().split('\n').slice(-3).join(' | ')}`);
  if (args.json) writeFileSync(args.json, `${JSON.stringify({ rows, cost, final }, null, 2)}\n`);
  if (args.keep) console.error(`bench: kept ${work}`);
  return pass ? 0 : 1;
}

function cleanup_children() {
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

main().then(
  (code) => {
    cleanup();
    process.exitCode = code;
  },
  (e) => {
    console.error(e);
    cleanup();
    process.exitCode = 2;
  },
);
