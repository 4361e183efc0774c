/**
 * vitest global setup: one temporary directory per test run for the unpacked lab
 * fixtures (test/paths.ts labFixture) and the built test programs (test/trace/programs.ts),
 * removed when the run ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'memsleuth-lab-fixtures-'));
  project.provide('labFixturesDir', dir);
  return () => rmSync(dir, { recursive: true, force: true });
}
