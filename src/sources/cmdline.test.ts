import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCmdline } from './cmdline.js';

/** Wait (up to 10 s: the machine may be busy) until `check` holds for a child's /proc files. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if (check()) return;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for a child process');
}

describe('parseCmdline', () => {
  it('keeps empty and space-containing arguments of a real child', async () => {
    const args = ['-e', 'setTimeout(() => {}, 30000)', '', 'a b', 'ünïcode'];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    try {
      await until(() => readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').includes('a b'));
      const text = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
      expect(parseCmdline(text)).toEqual([process.execPath, ...args]);
    } finally {
      child.kill();
    }
  });

  it('is empty for a kernel thread', () => {
    expect(readFileSync('/proc/2/cmdline', 'utf8')).toBe('');
    expect(parseCmdline('')).toEqual([]);
  });

  it('keeps a rewritten argv without NULs as one argument', () => {
    expect(parseCmdline('nginx: worker process')).toEqual(['nginx: worker process']);
  });
});
