/**
 * The C workloads of the trace tests and bench (test/trace/programs/*.c): built with gcc
 * (scripts/ensure-deps.sh installs it), started, told to go once the tracer is attached.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { REPO_ROOT } from '../paths.js';

export const PROGRAMS = join(REPO_ROOT, 'test', 'trace', 'programs');

let buildDir: string | undefined;

/** Build test/trace/programs/NAME.c (frame pointers, no inlining) and return the binary. */
export function buildProgram(name: 'user-leak' | 'kernel-hold' | 'malloc-bench'): string {
  // In the run's own temporary directory (test/setup/lab-fixtures.ts), removed when the run ends.
  buildDir ??= mkdtempSync(join(inject('labFixturesDir'), 'programs-'));
  const out = join(buildDir, name);
  execFileSync('gcc', [
    '-O1',
    '-g',
    '-fno-omit-frame-pointer',
    '-fno-inline',
    '-Wall',
    '-o',
    out,
    join(PROGRAMS, `${name}.c`),
  ]);
  return out;
}

export interface Workload {
  child: ChildProcessWithoutNullStreams;
  pid: number;
  /** Start the work (the program waits for a line on stdin). */
  go(): void;
  /** Resolves with the number the program printed after `done`. */
  done(): Promise<number>;
  stop(): void;
}

/** Start a program and wait until it printed `ready`. */
export async function startWorkload(bin: string, args: string[]): Promise<Workload> {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const wait = async (re: RegExp, what: string) => {
    for (let i = 0; i < 600; i++) {
      const m = re.exec(out);
      if (m) return m;
      if (child.exitCode !== null)
        throw new Error(`${bin} exited (${child.exitCode}) before ${what}: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${bin}: no ${what} in 30 s (stdout ${JSON.stringify(out)})`);
  };
  await wait(/ready/, 'ready');
  return {
    child,
    pid: child.pid!,
    go: () => child.stdin.write('go\n'),
    done: async () => Number((await wait(/done (\d+)/, 'done'))[1]),
    stop: () => {
      child.stdin.end();
      child.kill();
    },
  };
}
