import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Real captures shared by the project (`../shared/fixtures` beside the clone, as in
 * CI). Tests that need them fail loudly when they are missing: never skip.
 */
export const SHARED_FIXTURES = resolve(
  process.env.MEMSLEUTH_SHARED_FIXTURES ?? join(REPO_ROOT, '..', 'shared', 'fixtures'),
);

export type LabKernel = '6.1' | '6.12';
export type LabMoment = 'before' | 'mid' | 'after';

/** A moment of the shared lab demo captures, e.g. `sharedMoment('6.12', 'after')`. */
export function sharedMoment(kernel: LabKernel, moment: LabMoment): string {
  const dir = join(SHARED_FIXTURES, `lab-${kernel}-demo`, moment);
  if (!existsSync(dir)) throw new Error(`shared fixture missing: ${dir} (is ../shared beside the clone?)`);
  return dir;
}

/** Fixtures kept in this repository (small real captures and documented older formats). */
export const REPO_FIXTURES = join(REPO_ROOT, 'test', 'fixtures');

/** The built CLI, for end-to-end tests (`npm test` builds before running vitest). */
export const CLI_BIN = join(REPO_ROOT, 'bin', 'memsleuth.js');
