import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { MemsleuthError } from '../src/model/errors.js';
import { type LabKernel, type LabMoment, REPO_FIXTURES } from './paths.js';

/** Every moment of both lab fixtures (test/fixtures/lab-6.1, lab-6.12), for `it.each`. */
export const LAB_MOMENTS: [LabKernel, LabMoment][] = (['6.1', '6.12'] as const).flatMap((k) =>
  (['before', 'mid', 'after'] as const).map((m): [LabKernel, LabMoment] => [k, m]),
);

/** A file from test/fixtures. */
export const fixture = (...p: string[]): string => readFileSync(join(REPO_FIXTURES, ...p), 'utf8');

/** `fn` throws a PARSE MemsleuthError (at `line`, in `file`) whose message contains every part. */
export function expectParseError(
  fn: () => unknown,
  parts: { message: string[]; line?: number; file?: string },
): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MemsleuthError);
  const e = err as MemsleuthError;
  expect(e.code).toBe('PARSE');
  if (parts.line !== undefined) expect(e.line).toBe(parts.line);
  if (parts.file !== undefined) expect(e.file).toBe(parts.file);
  for (const p of parts.message) expect(e.message).toContain(p);
}

/** The PARSE MemsleuthError `fn` throws, for assertions on its fields; fails if it throws none. */
export function parseErrorOf(fn: () => unknown): MemsleuthError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MemsleuthError);
    expect((e as MemsleuthError).code).toBe('PARSE');
    return e as MemsleuthError;
  }
  throw new Error('expected a parse error');
}
