#!/usr/bin/env node
// Memory per distinct stack (issue 17: "Stacks interned once ... memory per distinct stack in the
// low hundreds of bytes, in every command that groups stacks (page_owner, kmemleak, slab traces,
// later traces)"). "Low hundreds" is read as at most 300 bytes.
//
//   npm run bench:stacks
//
// Each command that groups stacks runs on two inputs of the same size in records (objects,
// allocations) that differ in how many distinct stacks they use, N1 and N2: the growth of its
// peak RSS from one to the other, over the growth of the groups it reports (N2 - N1, but for
// page_owner, whose inputs come out at about N), is what one more distinct stack costs it, with
// what every record costs taken out. The inputs are built from real captures, made distinct the
// way bench/page-owner/dump.ts makes page_owner stacks distinct: the innermost frame kept by the
// command gets a `_v<N>` suffix (`__kmalloc_noprof` -> `__kmalloc_noprof_v17`), so a stack stays
// as long and as deep as the kernel's. Everything else varies as on a real machine (pids over the
// whole range up to 4,194,304, thousands of task names, addresses, sizes, ages, CPUs).
//
// 1. `kmemleak report FILE`: unreferenced objects built from the backtraces of the 6.12 lab's
//    capture, test/fixtures/kmemleak-docs and the 6.1 lab's (frames printed as 6.12 prints them).
// 2. `slab traces SNAPSHOT`: the 6.12 lab's slab/ directory with every alloc_traces listing
//    replaced by N call sites built from its real ones (each keeps its cache: they spread over the
//    caches as they did there). The kernel lists one line per (call site, stack, waste): a distinct
//    stack is a listed location, so here the two snapshots hold the same number of live OBJECTS
//    (the counts sum to the same total), not the same number of lines.
// 3. `trace report FILE`: a kmem trace (the text `trace kernel -o` saves) of kmalloc and
//    kmem_cache_alloc events, each followed on its CPU and context by its `<stack trace>`, built
//    from test/fixtures/trace-6.18/kmem.trace; some are freed (kfree, kmem_cache_free), some frees
//    are of memory allocated before the trace.
// 4. `page-owner top FILE`: bench/page-owner/dump.ts dumps of the 6.12 lab's page_owner, with its
//    variants V chosen (from the capture's records per stack) so that ~N1 and ~N2 stacks come out.
//
// Each input is run BENCH_RUNS times (interleaved with the other input of its command) under
// /usr/bin/time, without NODE_EXTRA_CA_CERTS (bench/cli.mjs); medians of peak RSS and wall time.
// The groups every command reports are checked against N (from its own output: the summary line,
// or `--collapsed -` in a run of its own that is not timed): a count outside 0.9N..1.1N stops the
// bench, since an input that is not what it claims would measure nothing.
//
// Environment: BENCH_STACKS (N1,N2; default 10000,100000), BENCH_RECORDS (objects, allocations and
// page_owner records per input; default 200000), BENCH_RUNS (default 3), BENCH_COMMANDS (default
// kmemleak,slab,trace,page-owner), BENCH_DIR (default /tmp; a directory of its own, removed at the
// end and on failure, unless BENCH_KEEP=1).
import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchEnv, cliArgs, NODE_FLAGS } from '../cli.mjs';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FIX = join(ROOT, 'test', 'fixtures');
const [N1, N2] = (process.env.BENCH_STACKS ?? '10000,100000').split(',').map(Number);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 200_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const COMMANDS = (process.env.BENCH_COMMANDS ?? 'kmemleak,slab,trace,page-owner').split(',');
const DIR = process.env.BENCH_DIR ?? '/tmp';
/** BENCH_KEEP=1 leaves the inputs in their directory (named at the end) to look into. */
const KEEP = process.env.BENCH_KEEP === '1';
const drop = (path) => KEEP || rmSync(path, { recursive: true, force: true });
/** Issue 17's "low hundreds of bytes" per distinct stack, read as at most this. */
const TARGET_BYTES = 300;
if (!(N1 > 0 && N2 > N1)) throw new Error(`BENCH_STACKS: expected N1,N2 with 0 < N1 < N2, found ${N1},${N2}`);
if (!(RECORDS >= N2)) throw new Error(`BENCH_RECORDS (${RECORDS}) must be at least N2 (${N2})`);
if (!(RUNS >= 1)) throw new Error(`BENCH_RUNS: expected a positive count, found ${RUNS}`);
/** pid_max on 64-bit with systemd (as bench/page-owner/dump.ts). */
const PID_MAX = 4_194_304;
/** CPUs of the machine the inputs pretend to come from. */
const CPUS = 8;

// ---- helpers --------------------------------------------------------------------------------

/** xorshift32, as test/rng.ts (Math.random cannot be seeded): the same seed writes the same input. */
function rng(seed) {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** A bijection of 32-bit numbers (an odd multiplier): unique addresses that do not look sorted. */
const scramble = (i) => Math.imul(i + 1, 0x9e3779b1) >>> 0;
const hex = (x, width) => x.toString(16).padStart(width, '0');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const mib = (kib) => (kib / 1024).toFixed(1);
/** `__kmalloc_noprof+0x14f/0x1c5 [mod]` -> `__kmalloc_noprof [mod]`: how the commands key a frame. */
const funcOf = (frame) => frame.replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+/, '');
/** A frame with `_v<v>` after its function name (v = 0: the frame as it is). */
function variant(frame, v) {
  if (v === 0) return frame;
  const m = /^([^+\s]+)(.*)$/.exec(frame);
  return `${m[1]}_v${v}${m[2]}`;
}

/**
 * Stack index of every record: each of the `stacks` used at least once (so exactly that many
 * distinct stacks exist), the rest drawn at random, in a shuffled order. `first[i]` marks the
 * records that carry a stack's guaranteed use (never freed by the trace generator, so every
 * stack stays outstanding).
 */
function assignStacks(records, stacks, next) {
  const of = new Uint32Array(records);
  const first = new Uint8Array(records);
  for (let i = 0; i < records; i++) {
    of[i] = i < stacks ? i : next() % stacks;
    first[i] = i < stacks ? 1 : 0;
  }
  for (let i = records - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const a = of[i];
    of[i] = of[j];
    of[j] = a;
    const b = first[i];
    first[i] = first[j];
    first[j] = b;
  }
  return { of, first };
}

/**
 * Task names as a busy machine has them: a few thousand, kernel threads per CPU and workqueue,
 * daemons, thread names of big programs; at most 15 characters (TASK_COMM_LEN).
 */
function commPool(next) {
  const bases = [
    'systemd',
    'systemd-journal',
    'systemd-udevd',
    'systemd-logind',
    'sshd',
    'bash',
    'python3',
    'node',
    'java',
    'containerd',
    'containerd-shim',
    'dockerd',
    'runc',
    'nginx',
    'postgres',
    'mysqld',
    'redis-server',
    'kubelet',
    'etcd',
    'prometheus',
    'chrome',
    'Xorg',
    'gnome-shell',
    'rsyslogd',
    'cron',
    'make',
    'cc1',
    'ld',
    'git',
    'rsync',
    'tar',
    'irqbalance',
    'NetworkManager',
    'dbus-daemon',
    'snapd',
    'qemu-system-x86',
    'modprobe',
    'udevadm',
    'jbd2/sda1-8',
    'kswapd0',
    'khugepaged',
    'kcompactd0',
    'rcu_preempt',
    'migration',
    'GC Thread',
    'C2 CompilerThre',
    'VM Periodic Tas',
    'tokio-runtime-w',
    'worker',
    'php-fpm',
  ];
  const pool = new Set();
  while (pool.size < 3000) {
    const r = next() % 10;
    const base = bases[next() % bases.length];
    let name;
    if (r < 3) name = `kworker/${next() % CPUS}:${next() % 64}${next() % 4 === 0 ? 'H' : ''}`;
    else if (r < 5) name = `kworker/u${2 * CPUS}:${next() % 256}`;
    else if (r < 6)
      name = `${['ksoftirqd', 'migration', 'cpuhp', 'idle_inject'][next() % 4]}/${next() % CPUS}`;
    else if (r < 8) name = `${base}#${next() % 200}`;
    else name = `${base}-${next() % 1000}`;
    pool.add(name.slice(0, 15));
  }
  return [...pool];
}

/** Writes a file in 1 MiB pieces. */
class Out {
  constructor(path) {
    this.fd = openSync(path, 'w');
    this.parts = [];
    this.len = 0;
    this.bytes = 0;
  }
  write(s) {
    this.parts.push(s);
    this.len += s.length;
    if (this.len >= 1 << 20) this.flush();
  }
  flush() {
    if (this.len > 0) this.bytes += writeSync(this.fd, this.parts.join(''));
    this.parts = [];
    this.len = 0;
  }
  close() {
    this.flush();
    closeSync(this.fd);
    return this.bytes;
  }
}

/** One member of a committed lab bundle, as text. */
const fromBundle = (kernel, member) =>
  execFileSync('tar', ['-xzOf', join(FIX, `lab-${kernel}`, 'after.tar.gz'), member], {
    maxBuffer: 1 << 30,
  }).toString('latin1');

// ---- kmemleak -------------------------------------------------------------------------------

/** Distinct real backtraces (frames as 6.12 prints them: no `[<address>]`), with their objects' kind. */
function kmemleakBases() {
  const texts = [
    fromBundle('6.12', 'kmemleak'),
    fromBundle('6.1', 'kmemleak'),
    ...readdirSync(join(FIX, 'kmemleak-docs'))
      .filter((f) => f.endsWith('.kmemleak'))
      .map((f) => readFileSync(join(FIX, 'kmemleak-docs', f), 'latin1')),
  ];
  const bases = new Map();
  for (const text of texts)
    for (const rec of text.split(/\n(?=unreferenced object)/)) {
      const lines = rec.split('\n');
      const h = /^unreferenced object(?: \((percpu|phys)\))? 0x([0-9a-f]+) \(size (\d+)\):/.exec(lines[0]);
      const bt = lines.findIndex((l) => /^ {2}backtrace/.test(l));
      if (!h || bt < 0) continue;
      const frames = lines
        .slice(bt + 1)
        .filter((l) => /^ {4}\S/.test(l))
        .map((l) => l.trim().replace(/^\[<[0-9a-f]+>\] /, ''));
      if (frames.length === 0) continue;
      const key = frames.map(funcOf).join(';');
      if (!bases.has(key))
        bases.set(key, {
          kind: h[1] === 'percpu' ? 'percpu' : h[2].startsWith('ffffc9') ? 'vmalloc' : 'slab',
          frames,
        });
    }
  return [...bases.values()];
}

/** A kmemleak hex dump of `n` bytes (first 32 at most), rows as hex_dump_to_buffer prints them. */
function hexDump(n, next) {
  const rows = [];
  for (let at = 0; at < n; at += 16) {
    const hexes = [];
    let ascii = '';
    for (let k = at; k < Math.min(n, at + 16); k++) {
      const r = next();
      // Zeros, pointer bytes and text, as objects hold.
      const b = r % 3 === 0 ? 0 : r % 3 === 1 ? [0xff, 0x88, 0x81, 0x00][(r >>> 8) & 3] : (r >>> 8) & 0xff;
      hexes.push(hex(b, 2));
      ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
    }
    rows.push(`    ${hexes.join(' ').padEnd(49)}${ascii}\n`);
  }
  return rows.join('');
}

/** /sys/kernel/debug/kmemleak of `records` unreferenced objects over exactly `stacks` backtraces. */
function writeKmemleak(path, stacks, seed) {
  const bases = kmemleakBases();
  const next = rng(seed * 2654435761 + 7);
  const comms = commPool(next);
  const { of } = assignStacks(RECORDS, stacks, next);
  const out = new Out(path);
  let jiffies = 4_294_667_296 + (next() % 100_000);
  for (let i = 0; i < RECORDS; i++) {
    const s = of[i];
    const b = bases[s % bases.length];
    const v = Math.floor(s / bases.length);
    const r = next();
    let head;
    let size;
    let dump;
    if (b.kind === 'percpu') {
      size = 8 * (1 + (r % 16));
      head = `unreferenced object (percpu) 0x${(0x607773000000 + 8 * i).toString(16)} (size ${size}):\n`;
      dump = `  hex dump (first ${Math.min(size, 32)} bytes on cpu ${next() % CPUS}):\n`;
    } else if (b.kind === 'vmalloc') {
      size = 4096 * (1 + (r % 64));
      head = `unreferenced object 0xffffc9${hex(scramble(i) >>> 4, 7)}000 (size ${size}):\n`;
      dump = `  hex dump (first 32 bytes):\n`;
    } else {
      // Requested sizes, log-uniform from 8 bytes to 8 KiB.
      size = Math.round(2 ** (3 + (10 * (r % 10_000)) / 10_000));
      head = `unreferenced object 0xffff888${hex(scramble(i), 8)}${r & 0x10000 ? '8' : '0'} (size ${size}):\n`;
      dump = `  hex dump (first ${Math.min(size, 32)} bytes):\n`;
    }
    jiffies += next() % 40;
    const pid = 1 + (next() % PID_MAX);
    const crc = hex(Math.imul(s + 1, 0x85ebca6b) >>> 0 || 1, 1);
    let text = `${head}  comm "${comms[next() % comms.length]}", pid ${pid}, jiffies ${jiffies}\n${dump}`;
    text += hexDump(Math.min(size, 32), next);
    text += `  backtrace (crc ${crc}):\n    ${variant(b.frames[0], v)}\n`;
    for (let k = 1; k < b.frames.length; k++) text += `    ${b.frames[k]}\n`;
    out.write(text);
  }
  return { bytes: out.close(), records: RECORDS, bases: bases.length };
}

// ---- slab traces ----------------------------------------------------------------------------

/** Real (cache, stack) locations of the 6.12 lab's alloc_traces listings. */
function slabBases(slabDir) {
  const bases = new Map();
  for (const f of readdirSync(slabDir).sort()) {
    if (!f.endsWith('.alloc_traces')) continue;
    const cache = f.slice(0, -'.alloc_traces'.length);
    let frames;
    const flush = () => {
      if (frames?.length) {
        const key = `${cache}\0${frames.map(funcOf).join(';')}`;
        if (!bases.has(key)) bases.set(key, { cache, frames });
      }
      frames = undefined;
    };
    for (const line of readFileSync(join(slabDir, f), 'latin1').split('\n')) {
      if (/^\s*\d+ \S/.test(line)) {
        flush();
        frames = /^\s*\d+ <not-available>/.test(line) ? undefined : [];
      } else if (frames && /^ {8}\S/.test(line)) frames.push(line.trim());
      else flush();
    }
    flush();
  }
  return [...bases.values()];
}

/** Request sizes a kmalloc-<size> cache serves: (low, high]. */
function kmallocRange(cache) {
  const m = /^kmalloc-(?:[a-z]+-)*(\d+)(k?)$/.exec(cache);
  if (!m) return undefined;
  const high = Number(m[1]) * (m[2] ? 1024 : 1);
  const classes = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];
  const i = classes.indexOf(high);
  return i < 0 ? undefined : { low: i === 0 ? 0 : classes[i - 1], high };
}

/** `0-2,5`: a cpulist of the CPUs set in `mask`. */
function cpulist(mask) {
  const parts = [];
  for (let c = 0; c < CPUS; c++) {
    if (!(mask & (1 << c))) continue;
    let e = c;
    while (e + 1 < CPUS && mask & (1 << (e + 1))) e++;
    parts.push(e === c ? String(c) : `${c}-${e}`);
    c = e;
  }
  return parts.join(',');
}

/**
 * A snapshot directory: the lab's slab/ files and slabinfo, every cache's alloc_traces listing
 * replaced by its share of `stacks` call sites (one line each: `%7ld caller waste= age= pid= cpus=`
 * and the stack below, sorted by count as the kernel sorts them), holding RECORDS live objects in
 * all.
 */
function writeSlabSnapshot(dir, labSlab, labSlabinfo, stacks, seed) {
  const bases = slabBases(labSlab);
  const next = rng(seed * 2654435761 + 11);
  mkdirSync(dir);
  cpSync(labSlab, join(dir, 'slab'), { recursive: true });
  cpSync(labSlabinfo, join(dir, 'slabinfo'));
  // Objects per location: heavy-tailed (a few sites hold most objects), RECORDS in all.
  const weight = new Float64Array(stacks);
  let total = 0;
  for (let s = 0; s < stacks; s++) {
    const u = (1 + (next() % 1_000_000)) / 1_000_001;
    weight[s] = u ** -1.2;
    total += weight[s];
  }
  const counts = new Uint32Array(stacks);
  let placed = 0;
  for (let s = 0; s < stacks; s++) {
    counts[s] = 1 + Math.floor(((RECORDS - stacks) * weight[s]) / total);
    placed += counts[s];
  }
  for (; placed < RECORDS; placed++) counts[next() % stacks]++;
  const byCache = new Map();
  for (let s = 0; s < stacks; s++) {
    const b = bases[s % bases.length];
    const v = Math.floor(s / bases.length);
    const n = counts[s];
    const caller = variant(b.frames[0], v);
    let head = `${String(n).padStart(7)} ${caller}`;
    const range = kmallocRange(b.cache);
    if (range) {
      const waste = next() % (range.high - range.low);
      if (waste > 0) head += ` waste=${n * waste}/${waste}`;
    }
    const age0 = next() % 200_000_000;
    const pid0 = 1 + (next() % PID_MAX);
    if (n === 1) head += ` age=${age0} pid=${pid0} cpus=${next() % CPUS}`;
    else {
      const span = next() % 50_000_000;
      const pid1 = Math.min(PID_MAX, pid0 + (next() % 500_000));
      const cpus = next() & ((1 << CPUS) - 1) || 1;
      head += ` age=${age0}/${age0 + (span >> 1)}/${age0 + span} pid=${pid0}-${pid1} cpus=${cpulist(cpus)}`;
    }
    let text = `${head}\n        ${caller}\n`;
    for (let k = 1; k < b.frames.length; k++) text += `        ${b.frames[k]}\n`;
    if (!byCache.has(b.cache)) byCache.set(b.cache, []);
    byCache.get(b.cache).push({ n, text: `${text}\n` });
  }
  let bytes = 0;
  // Every cache that had stacks gets its share (`No data` when N left it none).
  for (const cache of new Set(bases.map((b) => b.cache))) {
    const list = byCache.get(cache) ?? [];
    list.sort((a, b) => b.n - a.n);
    const out = new Out(join(dir, 'slab', `${cache}.alloc_traces`));
    if (list.length === 0) out.write('No data\n');
    for (const l of list) out.write(l.text);
    bytes += out.close();
  }
  return { bytes, locations: stacks, objects: RECORDS, caches: byCache.size, bases: bases.length };
}

// ---- kmem trace -----------------------------------------------------------------------------

/** Frames of the tracing machinery that `trace report` drops from the top of a stack (alloc_trace.ts). */
const TRACE_FRAME = /^(trace_|__trace_|perf_trace_|__traceiter_|event_trigger|ftrace_|__ftrace_)/;

/** The real allocation events with stacks of the 6.18 trace, and its free call sites. */
function traceBases() {
  const lines = readFileSync(join(FIX, 'trace-6.18', 'kmem.trace'), 'latin1').split('\n');
  const header = lines.filter((l) => l.startsWith('#'));
  const bases = new Map();
  const frees = { kfree: new Set(), kmem_cache_free: new Set() };
  for (let i = 0; i < lines.length; i++) {
    const e = /^.*?\[\d+\] \S+\s+[\d.]+: (\w+): (.*)$/.exec(lines[i]);
    if (!e) continue;
    if (e[1] === 'kfree' || e[1] === 'kmem_cache_free')
      frees[e[1]].add(/call_site=(\S+(?: \[[^\]]+\])?)/.exec(e[2])[1]);
    if ((e[1] !== 'kmalloc' && e[1] !== 'kmem_cache_alloc') || !/<stack trace>$/.test(lines[i + 1] ?? ''))
      continue;
    const frames = [];
    for (let j = i + 2; j < lines.length && lines[j].startsWith(' => '); j++) frames.push(lines[j].slice(4));
    // The frame `trace report` keys first (after the tracing frames): the one varied.
    const first = frames.findIndex((f) => !TRACE_FRAME.test(f));
    const key = `${e[1]}:${frames.slice(first).map(funcOf).join(';')}`;
    if (first >= 0 && !bases.has(key)) bases.set(key, { event: e[1], body: e[2], frames, first });
  }
  return {
    header,
    bases: [...bases.values()],
    frees: { kfree: [...frees.kfree], cache: [...frees.kmem_cache_free] },
  };
}

/**
 * A kmem trace of RECORDS slab allocations over exactly `stacks` stacks, as the `trace` file
 * prints it: timestamps rising, entries of the 8 CPUs merged (an event and its stack are
 * sometimes split by another CPU's event), a few in softirq context. Allocations that are not a
 * stack's guaranteed one are freed later (kfree, kmem_cache_free), as many at N1 as at N2 (a
 * quarter of those at N2): both inputs leave the same number of allocations outstanding, so the
 * growth from one to the other is what the stacks cost, not what more outstanding allocations
 * cost. There is a free of memory allocated before the trace for about every 20 allocations.
 */
function writeTrace(path, stacks, seed) {
  const { header, bases, frees } = traceBases();
  const next = rng(seed * 2654435761 + 13);
  const comms = commPool(next);
  const { of, first } = assignStacks(RECORDS, stacks, next);
  // Chance that an allocation other than a stack's guaranteed one is freed: (RECORDS - N2) / 4 of
  // them in expectation, at either N.
  const freeBelow = Math.min(1, (RECORDS - N2) / 4 / (RECORDS - stacks)) * 2 ** 32;
  const out = new Out(path);
  out.write(
    header
      .join('\n')
      .replace(/entries-written: \d+\/\d+ +#P:\d+/, `entries-written: ${RECORDS}/${RECORDS}   #P:${CPUS}`) +
      '\n',
  );
  let t = 86_400 + (next() % 1_000_000) / 1e6;
  const head = (e) => {
    t += (1 + (next() % 40)) / 1e6;
    return `${`${e.comm}-${e.pid}`.padStart(22)} [${String(e.cpu).padStart(3, '0')}] ${e.flags} ${t.toFixed(6).padStart(12)}: `;
  };
  const dueFrees = new Map();
  let freed = 0;
  let unmatched = 0;
  const freeLine = (f) => {
    const e = {
      comm: comms[next() % comms.length],
      pid: 1 + (next() % PID_MAX),
      cpu: next() % CPUS,
      flags: '.....',
    };
    return f.cache === undefined
      ? `${head(e)}kfree: call_site=${frees.kfree[next() % frees.kfree.length]} ptr=${f.ptr}\n`
      : `${head(e)}kmem_cache_free: call_site=${frees.cache[next() % frees.cache.length]} ptr=${f.ptr} name=${f.cache}\n`;
  };
  const event = (i) => {
    const s = of[i];
    const b = bases[s % bases.length];
    const v = Math.floor(s / bases.length);
    const ptr = `ffff888${hex(scramble(i), 8)}${next() & 1 ? '8' : '0'}`;
    let body = b.body.replace(/ptr=\S+/, `ptr=${ptr}`);
    if (b.event === 'kmalloc') {
      const classes = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];
      const c = next() % classes.length;
      const req =
        (c === 0 ? 0 : classes[c - 1]) + 1 + (next() % (classes[c] - (c === 0 ? 0 : classes[c - 1])));
      body = body.replace(/bytes_req=\d+ bytes_alloc=\d+/, `bytes_req=${req} bytes_alloc=${classes[c]}`);
    }
    const e = {
      comm: comms[next() % comms.length],
      pid: 1 + (next() % PID_MAX),
      cpu: next() % CPUS,
      // Softirq context (the context column `s`): its stack must carry the same flags.
      flags: next() % 20 === 0 ? '..s1.' : '.....',
    };
    if (!first[i] && next() < freeBelow) {
      const due = i + 1 + (next() % 2000);
      if (!dueFrees.has(due)) dueFrees.set(due, []);
      dueFrees
        .get(due)
        .push({ ptr, cache: b.event === 'kmem_cache_alloc' ? /name=(\S+)/.exec(b.body)?.[1] : undefined });
    }
    let stack = '';
    for (let k = 0; k < b.frames.length; k++)
      stack += ` => ${k === b.first ? variant(b.frames[k], v) : b.frames[k]}\n`;
    return { e, line: `${b.event}: ${body}\n`, stack };
  };
  for (let i = 0; i < RECORDS; i++) {
    for (const f of dueFrees.get(i) ?? []) {
      out.write(freeLine(f));
      freed++;
    }
    dueFrees.delete(i);
    if (next() % 20 === 0) {
      out.write(freeLine({ ptr: `ffff882${hex(next(), 8)}0`, cache: undefined }));
      unmatched++;
    }
    const a = event(i);
    // 1 in 8: the next allocation, on another CPU, comes between this one's event and its stack.
    if (i + 1 < RECORDS && next() % 8 === 0) {
      const b = event(i + 1);
      b.e.cpu = (a.e.cpu + 1 + (next() % (CPUS - 1))) % CPUS;
      out.write(head(a.e) + a.line);
      out.write(head(b.e) + b.line);
      out.write(`${head(a.e)}<stack trace>\n${a.stack}`);
      out.write(`${head(b.e)}<stack trace>\n${b.stack}`);
      i++;
    } else {
      out.write(head(a.e) + a.line);
      out.write(`${head(a.e)}<stack trace>\n${a.stack}`);
    }
  }
  for (const list of dueFrees.values())
    for (const f of list) {
      out.write(freeLine(f));
      freed++;
    }
  return { bytes: out.close(), allocations: RECORDS, freed, unmatched, bases: bases.length };
}

// ---- page_owner -----------------------------------------------------------------------------

/** bench/page-owner/dump.ts, compiled as bench:page-owner compiles it (again only when changed). */
async function pageOwnerDump() {
  const out = join(ROOT, 'node_modules', '.cache', 'memsleuth-bench', 'bench', 'page-owner', 'dump.js');
  const src = join(ROOT, 'bench', 'page-owner', 'dump.ts');
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs)
    execFileSync(
      join(ROOT, 'node_modules', '.bin', 'tsc'),
      ['-p', join(ROOT, 'bench', 'page-owner', 'tsconfig.json')],
      {
        stdio: 'inherit',
      },
    );
  return import(pathToFileURL(out).href);
}

/**
 * The variants V for which a dump of `records` records of `source` (its records repeated in
 * order, each record's first frame one of V at random) holds about `target` distinct stacks:
 * a stack of the capture met n times in the dump shows V (1 - (1 - 1/V)^n) of its V forms on
 * average. Stacks as `page-owner top` keys them: function names (offsets dropped).
 */
function variantsFor(source, records, target) {
  const per = new Map();
  let n = 0;
  for (const rec of readFileSync(source, 'latin1').split('\n\n')) {
    const lines = rec.split('\n');
    if (!lines[0].startsWith('Page allocated') || lines.length < 3) continue;
    const key = lines.slice(2).map(funcOf).join(';');
    per.set(key, (per.get(key) ?? 0) + 1);
    n++;
  }
  const expected = (v) => {
    let d = 0;
    for (const c of per.values()) d += v * (1 - (1 - 1 / v) ** ((c * records) / n));
    return d;
  };
  let lo = 1;
  let hi = 1 << 24;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (expected(mid) < target) lo = mid;
    else hi = mid;
  }
  const v = Math.abs(expected(lo) - target) < Math.abs(expected(hi) - target) ? lo : hi;
  return { v, expected: expected(v), bytesPerRecord: statSync(source).size / n };
}

// ---- measuring ------------------------------------------------------------------------------

/** memsleuth `args`, under /usr/bin/time when `time` (its `%M %e` is stderr's last line); throws unless it exits 0. */
function runCli(args, time) {
  const cmd = [process.execPath, ...cliArgs(...args)];
  const argv = time ? ['/usr/bin/time', '-f', '%M %e', ...cmd] : cmd;
  const r = spawnSync(argv[0], argv.slice(1), {
    env: benchEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0)
    throw new Error(`memsleuth ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-1500)}`);
  return r;
}

/** One run under /usr/bin/time: peak RSS (KiB), wall seconds, and what the command printed. */
function timed(args) {
  const r = runCli(args, true);
  const [rssKiB, wallS] = r.stderr.trimEnd().split('\n').at(-1).split(' ').map(Number);
  return { rssKiB, wallS, stdout: r.stdout };
}

/** A run that is not timed (group counts from `--collapsed -`): its output. */
const untimed = (args) => runCli(args, false).stdout;

const collapsedLines = (text) => text.split('\n').filter((l) => l !== '').length;

/** Throws unless `groups` is within 10% of `n`: the input must really have N distinct stacks. */
function checkGroups(what, groups, n) {
  if (!(groups >= 0.9 * n && groups <= 1.1 * n))
    throw new Error(
      `${what}: ${groups} groups reported for an input built with ${n} distinct stacks (outside 0.9N..1.1N): the input is not what this bench means to measure`,
    );
}

/**
 * Runs `args(input)` on both inputs RUNS times, interleaved (1, 2, 1, 2...: drift on a shared
 * machine hits both alike), after `check(stdout, input)` passed on the first run of each.
 */
function measure(c) {
  const runs = c.inputs.map(() => []);
  for (let r = 0; r < RUNS; r++)
    c.inputs.forEach((inp, k) => {
      const t = timed(c.args(inp.path));
      if (r === 0) inp.check?.(t.stdout);
      runs[k].push(t);
    });
  return c.inputs.map((inp, k) => ({
    ...inp,
    rssKiB: median(runs[k].map((t) => t.rssKiB)),
    rssLo: Math.min(...runs[k].map((t) => t.rssKiB)),
    rssHi: Math.max(...runs[k].map((t) => t.rssKiB)),
    wallS: median(runs[k].map((t) => t.wallS)),
  }));
}

const results = [];

function report(name, input, measured) {
  const [a, b] = measured;
  // Over the groups the command reported (N itself but for page_owner, whose N is an average).
  const per = ((b.rssKiB - a.rssKiB) * 1024) / (b.groups - a.groups);
  for (const m of measured)
    console.log(
      `  N=${String(m.n).padEnd(7)} ${String(m.groups).padStart(7)} groups reported | peak RSS ${mib(m.rssKiB)} MiB` +
        `${RUNS > 1 ? ` [${mib(m.rssLo)}-${mib(m.rssHi)}]` : ''} | wall ${m.wallS.toFixed(2)} s | ${m.note}`,
    );
  const ok = per <= TARGET_BYTES;
  console.log(
    `  ${per.toFixed(0)} bytes per distinct stack ((${b.rssKiB} - ${a.rssKiB} KiB) * 1024 / (${b.groups} - ${a.groups} groups)); ` +
      `<= ${TARGET_BYTES} bytes per distinct stack: ${ok ? 'met' : 'NOT met'}`,
  );
  results.push({ name, input, per, ok, a, b });
}

// ---- main -----------------------------------------------------------------------------------

const work = mkdtempSync(join(DIR, 'ms-bench-stacks-'));
const started = performance.now();
try {
  if (spawnSync('/usr/bin/time', ['-f', '%M', 'true']).status !== 0)
    throw new Error('/usr/bin/time is missing (Debian package: time)');
  console.log(
    `bench/stacks: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}; load ${load()}; ` +
      `N = ${N1} and ${N2} distinct stacks, ${RECORDS} records per input, ${RUNS} run(s) each (median)`,
  );
  console.log(`memsleuth runs as its #! line has it: node ${[...NODE_FLAGS, 'bin/memsleuth.js'].join(' ')}`);
  const lab = join(work, 'lab-6.12');
  mkdirSync(lab);
  execFileSync('tar', [
    '-xzf',
    join(FIX, 'lab-6.12', 'after.tar.gz'),
    '-C',
    lab,
    'slab',
    'slabinfo',
    'page_owner',
  ]);

  if (COMMANDS.includes('kmemleak')) {
    const inputs = [N1, N2].map((n, k) => {
      const path = join(work, `kmemleak-${n}`);
      const w = writeKmemleak(path, n, k + 1);
      return {
        n,
        path,
        note: `${w.records} objects, ${(w.bytes / 1e6).toFixed(0)} MB`,
        bases: w.bases,
        check(stdout) {
          const m = /^(\d+) unreferenced objects .* in (\d+) groups by backtrace/.exec(stdout);
          if (!m || Number(m[1]) !== RECORDS)
            throw new Error(`kmemleak report: expected ${RECORDS} objects, found: ${stdout.split('\n')[0]}`);
          this.groups = Number(m[2]);
          checkGroups('kmemleak report', this.groups, n);
        },
      };
    });
    console.log(
      `\n== kmemleak report FILE: ${RECORDS} unreferenced objects, ${inputs[0].bases} real backtraces (innermost frame varied); load ${load()}`,
    );
    report('kmemleak report', inputs[0].note, measure({ inputs, args: (p) => ['kmemleak', 'report', p] }));
    for (const i of inputs) drop(i.path);
  }

  if (COMMANDS.includes('slab')) {
    const inputs = [N1, N2].map((n, k) => {
      const path = join(work, `slab-${n}`);
      const w = writeSlabSnapshot(path, join(lab, 'slab'), join(lab, 'slabinfo'), n, k + 1);
      // Groups (cache + stack) are only printed by the flame exports: one line each.
      const groups = collapsedLines(untimed(['slab', 'traces', path, '--collapsed', '-']));
      checkGroups('slab traces', groups, n);
      return {
        n,
        path,
        groups,
        bases: w.bases,
        note: `${w.locations} call sites in ${w.caches} caches, ${w.objects} objects, ${(w.bytes / 1e6).toFixed(0)} MB of alloc_traces`,
        check(stdout) {
          // The N built call sites and the lab's own `<not-available>` lines (no stack).
          const m = /^(\d+) call sites in (\d+) caches/.exec(stdout);
          if (!m || Number(m[1]) < n || Number(m[1]) > 1.1 * n)
            throw new Error(`slab traces: expected ${n} call sites, found: ${stdout.split('\n')[0]}`);
          this.note += `; ${m[1]} call sites reported`;
        },
      };
    });
    console.log(
      `\n== slab traces SNAPSHOT: ${RECORDS} live objects, call sites from ${inputs[0].bases} real (cache, stack) locations; load ${load()}`,
    );
    report('slab traces', inputs[0].note, measure({ inputs, args: (p) => ['slab', 'traces', p] }));
    for (const i of inputs) drop(i.path);
  }

  if (COMMANDS.includes('trace')) {
    const inputs = [N1, N2].map((n, k) => {
      const path = join(work, `trace-${n}`);
      const w = writeTrace(path, n, k + 1);
      const groups = collapsedLines(untimed(['trace', 'report', path, '--collapsed', '-']));
      checkGroups('trace report', groups, n);
      return {
        n,
        path,
        groups,
        bases: w.bases,
        note: `${w.allocations} allocations, ${w.freed} freed, ${w.unmatched} frees of older memory, ${(w.bytes / 1e6).toFixed(0)} MB`,
        check(stdout) {
          const m = /traced, (\d+) allocations/.exec(stdout);
          if (!m || Number(m[1]) !== RECORDS)
            throw new Error(`trace report: expected ${RECORDS} allocations, found: ${stdout.split('\n')[0]}`);
          // Every event must have found its stack, or the groups are by call site, not stack.
          const missing = /note: (\d+) allocations have no stack record/.exec(stdout);
          if (missing) throw new Error(`trace report: ${missing[1]} allocations without their stack record`);
          this.note += ', 0 missing stacks';
        },
      };
    });
    console.log(
      `\n== trace report FILE: ${RECORDS} kmalloc/kmem_cache_alloc events with stacks, from ${inputs[0].bases} real ones; load ${load()}`,
    );
    report('trace report', inputs[0].note, measure({ inputs, args: (p) => ['trace', 'report', p] }));
    for (const i of inputs) drop(i.path);
  }

  if (COMMANDS.includes('page-owner')) {
    const { writeDump } = await pageOwnerDump();
    const source = join(lab, 'page_owner');
    const inputs = [];
    for (const [k, n] of [N1, N2].entries()) {
      const path = join(work, `page_owner-${n}`);
      const { v, expected, bytesPerRecord } = variantsFor(source, RECORDS, n);
      // writeDump stops at a size (in 1 MiB steps): written once at the capture's bytes per
      // record, then again at the dump's own (its records are longer: pids, `_v<N>`).
      let d = await writeDump(path, { source, bytes: RECORDS * bytesPerRecord, variants: v, seed: k + 1 });
      d = await writeDump(path, {
        source,
        bytes: Math.round((RECORDS * d.bytes) / d.records),
        variants: v,
        seed: k + 1,
      });
      inputs.push({
        n,
        path,
        note: `${d.records} records, V=${v} (${expected.toFixed(0)} stacks expected), ${(d.bytes / 1e6).toFixed(0)} MB`,
        check(stdout) {
          const m = /^(\d+) records, .* (\d+) groups by stack/m.exec(stdout);
          if (!m) throw new Error(`page-owner top: no summary line in: ${stdout.slice(0, 300)}`);
          this.groups = Number(m[2]);
          checkGroups('page-owner top', this.groups, n);
        },
      });
    }
    console.log(
      `\n== page-owner top FILE: bench/page-owner/dump.ts dumps of the 6.12 lab's page_owner (first frame varied V ways); load ${load()}`,
    );
    report('page-owner top', inputs[0].note, measure({ inputs, args: (p) => ['page-owner', 'top', p] }));
    for (const i of inputs) drop(i.path);
  }

  console.log(`\n== bytes of peak RSS per distinct stack, N = ${N1} -> ${N2} (load ${load()})`);
  for (const r of results)
    console.log(
      `${r.name.padEnd(16)} ${r.per.toFixed(0).padStart(6)} bytes  (RSS ${mib(r.a.rssKiB)} -> ${mib(r.b.rssKiB)} MiB, ` +
        `wall ${r.a.wallS.toFixed(2)} -> ${r.b.wallS.toFixed(2)} s)  <= ${TARGET_BYTES} bytes per distinct stack: ${r.ok ? 'met' : 'NOT met'}`,
    );
  console.log(
    `bench took ${((performance.now() - started) / 1000).toFixed(0)} s; rerun: npm run bench:stacks`,
  );
} finally {
  if (KEEP) console.log(`inputs kept (BENCH_KEEP=1) in ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
