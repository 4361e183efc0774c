#!/usr/bin/env node
// Start-up bench (issue 17 item 1): the built binary (dist/, through bin/memsleuth.js) against
// `node -e 0` on this machine, interleaved in one run, so the ratio holds on a loaded machine
// too. Also prints what loading every command module would cost (the eager command list the
// lazy one replaced), for scale.
//
//   npm run bench:startup -- [--runs N] [--json FILE]
//
// Wall time from a run timed here (performance.now around the child), CPU time (user +
// system) and max RSS from a run under /usr/bin/time (bench/cli.mjs, measure); medians of N
// runs (default 21) of each command, the commands taking turns.
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cliArgs, extraCaCerts, measure, NODE_FLAGS } from '../cli.mjs';

const ROOT = resolve(import.meta.dirname, '..', '..');
const INDEX = pathToFileURL(join(ROOT, 'dist', 'cli', 'commands', 'index.js')).href;
const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '21' }, json: { type: 'string' } },
});
const RUNS = Number(args.runs);
const node = process.execPath;

const COMMANDS = [
  { name: 'node -e 0', argv: [node, '-e', '0'] },
  { name: 'memsleuth --version', argv: [node, ...cliArgs('--version')], ref: 'node -e 0' },
  { name: 'memsleuth --help', argv: [node, ...cliArgs('--help')], ref: 'node -e 0' },
  { name: 'memsleuth ps --help', argv: [node, ...cliArgs('ps', '--help')], ref: 'node -e 0' },
  {
    name: 'memsleuth nope (unknown command, exit 2)',
    argv: [node, ...cliArgs('nope')],
    ref: 'node -e 0',
    status: 2,
  },
  {
    name: 'every command module loaded (eager list, for scale)',
    argv: [
      node,
      '--input-type=module',
      '-e',
      `const { COMMANDS } = await import(${JSON.stringify(INDEX)}); await Promise.all(COMMANDS.map((c) => c.load()));`,
    ],
    ref: 'node -e 0',
  },
  // The machine's NODE_EXTRA_CA_CERTS, which every other command here runs without (bench/cli.mjs).
  ...(extraCaCerts === undefined
    ? []
    : [
        {
          name: 'node -e 0 with NODE_EXTRA_CA_CERTS',
          argv: [node, '-e', '0'],
          env: process.env,
          ref: 'node -e 0',
        },
      ]),
];

const timed = (c) => measure(c.argv, { ...(c.env ? { env: c.env } : {}), status: c.status ?? 0 });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const load0 = loadavg();
const samples = new Map(COMMANDS.map((c) => [c.name, []]));
for (const c of COMMANDS) timed(c); // warm the page cache
for (let i = 0; i < RUNS; i++) for (const c of COMMANDS) samples.get(c.name).push(timed(c));
const med = new Map(
  [...samples].map(([k, v]) => [
    k,
    {
      wall: median(v.map((x) => x.wall)),
      cpu: median(v.map((x) => x.cpu)),
      rssMiB: median(v.map((x) => x.rssKiB)) / 1024,
    },
  ]),
);
const rows = COMMANDS.map((c) => {
  const m = med.get(c.name);
  const r = c.ref && med.get(c.ref);
  return {
    command: c.name,
    wallS: m.wall,
    cpuS: m.cpu,
    maxRssMiB: m.rssMiB,
    ref: c.ref,
    wallRatio: r ? m.wall / r.wall : undefined,
    cpuRatio: r ? m.cpu / Math.max(r.cpu, 0.005) : undefined,
    rssRatio: r ? m.rssMiB / r.rssMiB : undefined,
  };
});
const w = [Math.max(...rows.map((r) => r.command.length)), 7, 7, 11, 17, 9, 9];
const line = (cells) =>
  cells.map((s, i) => (i === 0 ? String(s).padEnd(w[i]) : String(s).padStart(w[i]))).join('  ');
console.log(
  `bench/startup: node ${process.version}, ${cpus().length} CPUs, load ${load0.map((x) => x.toFixed(2)).join(' ')} -> ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}, medians of ${RUNS} interleaved runs`,
);
console.log(`memsleuth runs as its #! line has it: node ${[...NODE_FLAGS, 'bin/memsleuth.js'].join(' ')}`);
console.log(line(['command', 'wall s', 'cpu s', 'max RSS MiB', 'wall ratio', 'cpu ratio', 'RSS ratio']));
for (const r of rows)
  console.log(
    line([
      r.command,
      r.wallS.toFixed(3),
      r.cpuS.toFixed(3),
      r.maxRssMiB.toFixed(1),
      r.ref ? `${r.wallRatio.toFixed(2)}x ${r.ref}` : '',
      r.ref ? `${r.cpuRatio.toFixed(2)}x` : '',
      r.ref ? `${r.rssRatio.toFixed(2)}x` : '',
    ]),
  );
if (args.json) writeFileSync(args.json, `${JSON.stringify({ load: load0, runs: RUNS, rows }, null, 2)}\n`);
