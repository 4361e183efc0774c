// The memsleuth command line as users run it: bin/memsleuth.js under node with the V8 flags
// of its #! line (`#!/usr/bin/env -S node --flag ...`), so a bench measures what the
// installed command does. Node is this process's own (process.execPath).
import { readFileSync } from 'node:fs';
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

/** Arguments for process.execPath that run the CLI with `args`. */
export const cliArgs = (...args) => [...shebangFlags(), CLI, ...args];
