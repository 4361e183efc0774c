#!/usr/bin/env node
// The cost of allocation tracing, as ratios measured in one run (`npm run bench:trace`, root):
//
// 1. user: a malloc-heavy C program (test/trace/programs/malloc-bench.c: CALLS mallocs of
//    16..1039 bytes, 63 in 64 freed) timed untraced, under `memsleuth trace user`, and
//    under bcc's memleak (`memleak-bpfcc`) when it can run here; the program times its own
//    loop (start-up of the tracers is not counted), in CPU time (user + the kernel time its
//    probe traps cost), which a busy shared machine does not distort as it does wall time.
// 2. kernel: a kernel-build-like load (kbuild compiling MODULES copies of the lab's
//    msl_leaky.c against the lab's 6.1 tree with make -j2: gcc on kernel headers,
//    fixdep, modpost) timed untraced and under `memsleuth trace kernel` (all kmem events,
//    stacks on allocations, binary buffers), as CPU time of the build (user + system of
//    make and every compiler, from /usr/bin/time) plus memsleuth's own CPU, and wall time.
// Runs alternate (untraced, traced, ...) so drift on a shared machine hits both alike;
// medians are compared. Options: --calls N (default 200000), --modules N (default 8),
// --reps N (default 3), --json FILE.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchEnv, cliArgs } from '../cli.mjs';

const ROOT = resolve(import.meta.dirname, '..', '..');
const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '200000' },
    modules: { type: 'string', default: '8' },
    reps: { type: 'string', default: '3' },
    'kernel-args': { type: 'string' },
    json: { type: 'string' },
  },
});
const CALLS = Number(args.calls);
// `--kernel-args '--max-rate 0'` to measure without the rate cap.
const KERNEL_ARGS = (args['kernel-args'] ?? '').split(' ').filter(Boolean);
const MODULES = Number(args.modules);
const REPS = Number(args.reps);
const work = mkdtempSync('/tmp/msl-bench-trace-');
const children = new Set();

function cleanup() {
  for (const c of children) {
    try {
      c.kill('SIGINT');
    } catch {}
  }
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function build(name) {
  const out = join(work, name);
  execFileSync('gcc', [
    '-O1',
    '-g',
    '-fno-omit-frame-pointer',
    '-fno-inline',
    '-o',
    out,
    join(ROOT, 'test/trace/programs', `${name}.c`),
  ]);
  return out;
}

/** A child whose output we can wait on. */
function start(cmd, argv, opts = {}) {
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: benchEnv(), ...opts });
  children.add(child);
  const s = { child, out: '', err: '' };
  child.stdout.on('data', (d) => {
    s.out += d;
  });
  child.stderr.on('data', (d) => {
    s.err += d;
  });
  s.exit = new Promise((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  s.exit.then(() => children.delete(child));
  s.wait = async (re, what, ms = 120_000) => {
    for (let t = 0; t < ms; t += 20) {
      const m = re.exec(s.out) ?? re.exec(s.err);
      if (m) return m;
      if (child.exitCode !== null) throw new Error(`${cmd} exited before ${what}: ${s.err.slice(-500)}`);
      await sleep(20);
    }
    throw new Error(`${cmd}: no ${what} in ${ms / 1000} s`);
  };
  return s;
}

// ---- user space ------------------------------------------------------------------
const bench = build('malloc-bench');

async function runProgram(tracer) {
  const p = start(bench, [String(CALLS)]);
  await p.wait(/ready/, 'ready');
  let t;
  if (tracer) t = await tracer(p.child.pid);
  p.child.stdin.write('go\n');
  const m = await p.wait(/done (\d+) (\d+)/, 'done');
  const ns = Number(m[1]);
  const cpuNs = Number(m[2]);
  let info;
  if (t) info = await t.stop();
  p.child.stdin.end();
  await p.exit;
  return { seconds: ns / 1e9, cpu: cpuNs / 1e9, info };
}

async function memsleuthUser(pid) {
  const t = start(
    process.execPath,
    cliArgs('trace', 'user', '--pid', String(pid), '--duration', '0', '--baseline', '0', '--json'),
  );
  await t.wait(/memsleuth: tracing allocations/, 'tracing to start');
  return {
    async stop() {
      t.child.kill('SIGINT');
      await t.exit;
      const j = JSON.parse(t.out);
      return {
        hits: j.overhead.hits,
        lost: j.counters.lostEvents,
        dropped: j.droppedEvents,
        readerCpu: j.overhead.readerCpuSeconds,
      };
    },
  };
}

/** bcc's memleak, if this machine can compile its BPF program (kernel headers). */
async function bccMemleak(pid) {
  const t = start('memleak-bpfcc', ['-p', String(pid), '60']);
  await t.wait(/Attaching to pid/, 'memleak to attach', 120_000);
  // Its uprobes are in place once it says so and prints nothing else; give it a moment.
  await sleep(500);
  return {
    async stop() {
      t.child.kill('SIGINT');
      await t.exit;
      return {};
    },
  };
}

function bccUsable() {
  const which = spawnSync('sh', ['-c', 'command -v memleak-bpfcc'], { encoding: 'utf8' });
  if (which.status !== 0) return 'memleak-bpfcc is not installed (apt-get install bpfcc-tools)';
  const probe = spawnSync('memleak-bpfcc', ['-p', String(process.pid), '1', '1'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  const err = `${probe.stdout}\n${probe.stderr}`;
  if (/Unable to find kernel headers|Failed to compile BPF/.test(err))
    return `memleak-bpfcc cannot compile its BPF program here: ${(/Unable to find kernel headers[^\n]*/.exec(err) ?? /Failed to compile[^\n]*/.exec(err))[0]}`;
  return undefined;
}

// ---- kernel ----------------------------------------------------------------------
function labTree() {
  const root =
    process.env.MEMSLEUTH_LAB_CACHE ??
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'memsleuth-lab');
  const dirs = existsSync(root) ? readdirSync(root).filter((d) => /^kernel-6\.1-[0-9a-f]+$/.test(d)) : [];
  const tree = dirs.map((d) => join(root, d)).find((d) => existsSync(join(d, 'Module.symvers')));
  if (!tree)
    throw new Error(
      `no built lab 6.1 kernel under ${root}: run \`npm run lab -- --kernel 6.1 --out /tmp/lab61\` once`,
    );
  return tree;
}

function prepareModules() {
  const dir = join(work, 'kbuild');
  mkdirSync(dir);
  const objs = [];
  for (let i = 0; i < MODULES; i++) {
    copyFileSync(join(ROOT, 'lab/module/msl_leaky.c'), join(dir, `m${i}.c`));
    objs.push(`m${i}.o`);
  }
  writeFileSync(
    join(dir, 'Kbuild'),
    `obj-m := ${objs.join(' ')}\nccflags-y := -fno-inline -fno-optimize-sibling-calls\n`,
  );
  return dir;
}

async function runBuild(tree, dir, tracer) {
  spawnSync('make', ['-C', tree, `M=${dir}`, 'clean'], { stdio: 'ignore' });
  let t;
  if (tracer) t = await tracer();
  // GNU time reports the user and system CPU of make and every process it waited for.
  const times = join(work, 'build.time');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', '%U %S', '-o', times, 'make', '-C', tree, `M=${dir}`, 'ARCH=x86_64', '-j2', 'modules'],
    { encoding: 'utf8' },
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`module build failed: ${r.stderr.slice(-800)}`);
  const [user, system] = readFileSync(times, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  let info;
  if (t) info = await t.stop();
  return { seconds, cpu: user + system, system, info };
}

async function memsleuthKernel() {
  const t = start(process.execPath, cliArgs('trace', 'kernel', '--duration', '0', '--json', ...KERNEL_ARGS));
  await t.wait(/memsleuth: tracing kernel allocations/, 'tracing to start');
  return {
    async stop() {
      t.child.kill('SIGINT');
      await t.exit;
      const j = JSON.parse(t.out);
      const events = Object.values(j.events).reduce((a, b) => a + b, 0);
      return {
        events,
        perSecond: events / j.seconds,
        readerCpu: j.readerCpuSeconds,
        seconds: j.seconds,
        dropped: j.droppedEvents,
        mode: j.readMode,
      };
    },
  };
}

// ---- run -------------------------------------------------------------------------
if (process.geteuid?.() !== 0) throw new Error('run as root: tracing needs tracefs');
const load = () =>
  execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ').slice(0, 3).join(' ');
console.log(
  `bench/trace: ${REPS} rounds, ${CALLS} mallocs per program run, ${MODULES} modules per build; load ${load()}`,
);

const bccWhy = bccUsable();
const user = { untraced: [], memsleuth: [], bcc: [], info: [] };
for (let i = 0; i < REPS; i++) {
  user.untraced.push(await runProgram());
  const m = await runProgram(memsleuthUser);
  user.memsleuth.push(m);
  user.info.push(m.info);
  if (!bccWhy) user.bcc.push(await runProgram(bccMemleak));
}

const tree = labTree();
const dir = prepareModules();
const kernel = { untraced: [], traced: [], info: [] };
for (let i = 0; i < REPS; i++) {
  kernel.untraced.push(await runBuild(tree, dir));
  const k = await runBuild(tree, dir, memsleuthKernel);
  kernel.traced.push(k);
  kernel.info.push(k.info);
}

const f = (x) => x.toFixed(3);
const med = (runs, k) => median(runs.map((r) => r[k]));
const ui = user.info[user.info.length - 1];
const uCpu = med(user.untraced, 'cpu');
const mCpu = med(user.memsleuth, 'cpu');
console.log('');
console.log(`user: malloc-bench ${CALLS} (median of ${REPS}; the program's loop, CPU time and wall time)`);
console.log(`  untraced                  cpu ${f(uCpu)} s  wall ${f(med(user.untraced, 'seconds'))} s`);
console.log(
  `  memsleuth trace user      cpu ${f(mCpu)} s  wall ${f(med(user.memsleuth, 'seconds'))} s   ${(mCpu / uCpu).toFixed(0)}x untraced CPU, ` +
    `${(((mCpu - uCpu) / ui.hits) * 1e6).toFixed(1)} µs per probe hit (${ui.hits} hits, ${ui.lost} events lost, memsleuth CPU ${ui.readerCpu.toFixed(1)} s)`,
);
if (bccWhy) console.log(`  bcc memleak               not run: ${bccWhy}`);
else {
  const bCpu = med(user.bcc, 'cpu');
  console.log(
    `  bcc memleak-bpfcc         cpu ${f(bCpu)} s  wall ${f(med(user.bcc, 'seconds'))} s   ${(bCpu / uCpu).toFixed(0)}x untraced CPU   memsleuth/bcc ${(mCpu / bCpu).toFixed(2)}`,
  );
}
const ki = kernel.info[kernel.info.length - 1];
const kCpu = med(kernel.untraced, 'cpu');
const tCpu = med(kernel.traced, 'cpu');
const reader = median(kernel.info.map((i) => i.readerCpu));
console.log(`kernel: make -j2 of ${MODULES} kbuild modules against the lab 6.1 tree (median of ${REPS})`);
console.log(
  `  untraced                  build cpu ${f(kCpu)} s (system ${f(med(kernel.untraced, 'system'))})  wall ${f(med(kernel.untraced, 'seconds'))} s`,
);
console.log(
  `  memsleuth trace kernel    build cpu ${f(tCpu)} s (system ${f(med(kernel.traced, 'system'))})  wall ${f(med(kernel.traced, 'seconds'))} s   ` +
    `build CPU ${(tCpu / kCpu).toFixed(2)}x, with memsleuth's own ${f(reader)} s ${((tCpu + reader) / kCpu).toFixed(2)}x untraced`,
);
console.log(
  `                            ${Math.round(ki.perSecond)} events/s read, ${ki.dropped} dropped, ${ki.mode} buffers, last run's sampling: see --json`,
);
console.log(`load at the end: ${load()}`);
console.log(`rerun: npm run bench:trace -- --calls ${CALLS} --modules ${MODULES} --reps ${REPS}`);
if (args.json)
  writeFileSync(
    args.json,
    `${JSON.stringify({ calls: CALLS, modules: MODULES, reps: REPS, user, bccWhy, kernel }, null, 2)}\n`,
  );
