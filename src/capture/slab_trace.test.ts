import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupStaleSlabTrace,
  slabTraceSwitch,
  switchSlabTraceOff,
  switchSlabTraceOn,
} from './slab_trace.js';

// The switch logic on a directory shaped like /sys/kernel/slab (a real one is read-only
// since 5.9 and cannot be switched here); the live fallback is tested in test/e2e/trace.test.ts.
let root: string;
let journal: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'msl-slabsw-'));
  journal = join(root, 'journal');
  mkdirSync(journal);
  mkdirSync(join(root, 'slab', 'dentry'), { recursive: true });
  writeFileSync(join(root, 'slab', 'dentry', 'trace'), '0\n');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('slab trace switch', () => {
  it('reads it, turns it on with a journal entry, off again without one', async () => {
    const sw = await slabTraceSwitch('dentry', join(root, 'slab'));
    expect(sw.on).toBe(false);
    expect(await switchSlabTraceOn(sw, journal)).toBe(true);
    expect(readFileSync(sw.path, 'utf8')).toBe('1\n');
    expect(readFileSync(join(journal, `memsleuth-slab-trace-${process.pid}`), 'utf8')).toBe(`${sw.path}\n`);
    switchSlabTraceOff(sw, journal);
    expect(readFileSync(sw.path, 'utf8')).toBe('0\n');
    expect(spawnSync('ls', [journal], { encoding: 'utf8' }).stdout).toBe('');
  });

  it('a switch left on by a killed run is turned off at the next start', async () => {
    const sw = await slabTraceSwitch('dentry', join(root, 'slab'));
    const dead = spawnSync('true').pid!; // exited: its pid is free
    writeFileSync(sw.path, '1\n');
    writeFileSync(join(journal, `memsleuth-slab-trace-${dead}`), `${sw.path}\n`);
    writeFileSync(join(journal, `memsleuth-slab-trace-${process.pid}`), '/not/ours/trace\n');
    expect(await cleanupStaleSlabTrace(journal)).toEqual([`${sw.path} (left on by pid ${dead})`]);
    expect(readFileSync(sw.path, 'utf8')).toBe('0\n');
    // A live run's entry stays.
    expect(spawnSync('ls', [journal], { encoding: 'utf8' }).stdout.trim()).toBe(
      `memsleuth-slab-trace-${process.pid}`,
    );
  });

  it('names a cache that does not exist', async () => {
    await expect(slabTraceSwitch('no_such_cache', join(root, 'slab'))).rejects.toThrow(
      /no slab cache "no_such_cache"/,
    );
  });
});
