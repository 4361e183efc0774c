import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { until } from '../../test/children.js';
import { parseCmdline } from './cmdline.js';

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
