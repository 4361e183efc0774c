import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract } from 'tar';
import { inject } from 'vitest';

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Fixtures kept in this repository (small real captures and documented older formats). */
export const REPO_FIXTURES = join(REPO_ROOT, 'test', 'fixtures');

/** The built CLI, for end-to-end tests (`npm test` builds before running vitest). */
export const CLI_BIN = join(REPO_ROOT, 'bin', 'memsleuth.js');

export type LabKernel = '6.1' | '6.12';
export type LabMoment = 'before' | 'mid' | 'after';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where labFixture unpacks the lab bundles: one directory per test run (test/setup/lab-fixtures.ts). */
    labFixturesDir: string;
  }
}

/**
 * The lab capture of `moment` on `kernel` as committed: a memsleuth bundle
 * (test/fixtures/lab-K/M.tar.gz, see the README there) that every command opens as it is.
 */
export function labBundle(kernel: LabKernel, moment: LabMoment): string {
  const file = join(REPO_FIXTURES, `lab-${kernel}`, `${moment}.tar.gz`);
  if (!existsSync(file)) throw new Error(`lab fixture missing: ${file}`);
  return file;
}

/**
 * The lab capture of `moment` on `kernel` (msl_leaky with its default parameters) as a
 * snapshot directory, e.g. `labFixture('6.12', 'after')`: unpacked once per test run
 * into the run's temporary directory, which the global setup removes at the end.
 * Treat it as read-only: every test file of the run shares it.
 */
export function labFixture(kernel: LabKernel, moment: LabMoment): string {
  const root = inject('labFixturesDir');
  if (!root)
    throw new Error('labFixturesDir not provided: run through vitest (vitest.config.ts globalSetup)');
  const dir = join(root, `lab-${kernel}`, moment);
  if (existsSync(join(dir, 'manifest.json'))) return dir;
  // Workers race: each unpacks beside the target and renames; the first rename wins.
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  extract({ file: labBundle(kernel, moment), cwd: tmp, sync: true, strict: true });
  try {
    renameSync(tmp, dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** msl_leaky's counters (/sys/module/msl_leaky/parameters) read at the end of that capture. */
export function labCounters(kernel: LabKernel, moment: LabMoment): Record<string, number> {
  const out: Record<string, number> = {};
  const text = readFileSync(join(REPO_FIXTURES, `lab-${kernel}`, `${moment}.counters`), 'utf8');
  for (const line of text.split('\n')) {
    const m = /^(\w+)=(\d+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}
