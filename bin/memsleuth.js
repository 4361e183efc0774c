#!/usr/bin/env -S node --no-concurrent-recompilation --single-threaded-gc --max-semi-space-size=4
// --no-concurrent-recompilation: V8 optimizes hot functions on this thread, not on helper
// threads whose malloc arenas keep the compiler's memory: page-owner top at 120,828 stacks
// peaked 3-4 MB lower, the default sort of a 1 GiB dump 9 MB lower, in the same time.
// --max-semi-space-size=4: V8's young generation stops at 2 x 4 MB instead of 2 x 16: the
// parsers' short-lived strings and objects are collected as often, and a long read no longer
// grows it to 32 MB. kmemleak report, trace report and slab traces at 100,000 stacks peaked 24
// to 31 MB lower, in the same time (within 5%); page_owner's byte scanners did not change.
// Benchmarks run node with the flags of this line (bench/cli.mjs).
//
// A CommonJS file (bin/package.json): `memsleuth`, `--help` and `--version` are answered here,
// from dist/cli/help.txt (written by the build from the command list) and package.json,
// without starting Node's ES module loader (about 8 ms of a 31 ms `--help` here). Everything
// else, and a help text older than the command list it was made from, goes to the CLI.
'use strict';
const { readFileSync, statSync, writeSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');

/** Write all of `text` to fd 1; a reader that went away (EPIPE) is not an error. */
function put(text) {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off);
    } catch (e) {
      if (e.code === 'EPIPE') return;
      if (e.code !== 'EAGAIN') throw e;
      process.stdout.write(buf.subarray(off)); // a non-blocking stdout: the stream waits for it
      return;
    }
  }
}

/** dist/cli/help.txt when it is at least as new as the command list, else undefined. */
function builtHelp() {
  try {
    const help = join(ROOT, 'dist', 'cli', 'help.txt');
    if (statSync(help).mtimeMs < statSync(join(ROOT, 'dist', 'cli', 'commands', 'index.js')).mtimeMs)
      return undefined;
    return readFileSync(help, 'utf8');
  } catch {
    return undefined;
  }
}

const args = process.argv.slice(2);
const first = args[0];
const help =
  args.length === 0 || first === '--help' || first === '-h' || first === 'help' ? builtHelp() : undefined;
if (help !== undefined) {
  put(help);
  if (args.length === 0) process.exitCode = 2; // no command: a usage error, as the CLI says
} else if (first === '--version' || first === '-V') {
  put(`memsleuth ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
} else {
  import('../dist/cli/main.js').then((cli) => cli.runMain());
}
