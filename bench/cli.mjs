// The memsleuth command line as users run it: bin/memsleuth.js under node with the V8 flags
// of its #! line (`#!/usr/bin/env -S node --flag ...`), so a bench measures what the
// installed command does. Node is this process's own (process.execPath).
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const CLI = join(resolve(import.meta.dirname, '..'), 'bin', 'memsleuth.js');

/** The flags on the #! line after `node`. */
export function shebangFlags(bin = CLI) {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const words = first.replace(/^#!\s*/, '').split(/\s+/);
  const at = words.findIndex((w) => w === 'node' || w.endsWith('/node'));
  if (at < 0) throw new Error(`${bin}: no node on its #! line: ${first}`);
  return words.slice(at + 1).filter((w) => w.startsWith('--'));
}

/**
 * Refuses to time a build whose dist/cli/help.txt is older than its command list: the binary
 * then sends `--help` through the whole CLI (correct, but 10-15 ms slower), which a bare
 * `tsc` leaves behind (the twelfth session's first startup run was taken so).
 * `npm run build` writes both.
 */
export function assertFreshBuild(root = resolve(import.meta.dirname, '..')) {
  const help = join(root, 'dist', 'cli', 'help.txt');
  const index = join(root, 'dist', 'cli', 'commands', 'index.js');
  let stale;
  try {
    stale = statSync(help).mtimeMs < statSync(index).mtimeMs;
  } catch {
    stale = true;
  }
  if (stale) throw new Error(`${help} is missing or older than ${index}: run \`npm run build\` first`);
}
assertFreshBuild();

/** The node flags of bin/memsleuth.js's #! line, read once. */
export const NODE_FLAGS = shebangFlags();

/** Arguments for process.execPath that run the CLI with `args`. */
export const cliArgs = (...args) => [...NODE_FLAGS, CLI, ...args];

/**
 * The environment a bench times commands in: this one without NODE_EXTRA_CA_CERTS. When it is
 * set, every node start reads and parses that CA file first (about 45 ms on the project's VM,
 * whose sandbox sets it): a cost of the machine's setup, not of the command, that would
 * shrink every ratio against `node -e 0` and grow every ratio against a tool not in Node.
 * Benches print `node -e 0` with it as a row of its own.
 */
export function benchEnv() {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Set in this environment (then a bench adds the row with it). */
export const extraCaCerts = process.env.NODE_EXTRA_CA_CERTS;

/**
 * One measurement of a command: wall seconds from a run timed here (performance.now around
 * the child; /usr/bin/time counts in 10 ms, a sixth of `node -e 0` on the project's VM), CPU
 * seconds (user + system) and max RSS (KiB) from a second run under /usr/bin/time. Throws when
 * the command does not exit with `status`.
 */
export function measure(argv, { env = benchEnv(), status = 0 } = {}) {
  const t0 = performance.now();
  const d = spawnSync(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (d.status !== status) throw new Error(`${argv.join(' ')} exited ${d.status}: ${d.stderr.slice(0, 500)}`);
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', ...argv], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== status) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 500)}`);
  const f = r.stderr.trimEnd().split('\n').at(-1).split(' ').map(Number);
  return { wall, cpu: f[1] + f[2], rssKiB: f[3] };
}
