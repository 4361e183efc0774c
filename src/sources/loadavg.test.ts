import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseErrorOf } from '../../test/parsers.js';
import { parseLoadavg } from './loadavg.js';

describe('parseLoadavg', () => {
  it("reads this machine's /proc/loadavg: the reader among the running, the averages Node reads", () => {
    const l = parseLoadavg(readFileSync('/proc/loadavg', 'latin1'));
    expect(l.running).toBeGreaterThanOrEqual(1);
    expect(l.threads).toBeGreaterThanOrEqual(l.running);
    expect(l.lastPid).toBeGreaterThan(0);
    // os.loadavg() reads the same file (rounded the same way, to hundredths).
    const [one] = loadavg();
    expect(Math.abs(l.load1 - one!)).toBeLessThan(0.5);
  });

  it('reads every field of a line as fs/proc/loadavg.c prints it', () => {
    expect(parseLoadavg('12.50 0.03 100.00 17/1093 4194303\n')).toEqual({
      load1: 12.5,
      load5: 0.03,
      load15: 100,
      running: 17,
      threads: 1093,
      lastPid: 4194303,
    });
  });

  it('names the file, line and the format expected', () => {
    expect(parseErrorOf(() => parseLoadavg('0.1 0.2 0.3 1/2 3\n')).message).toBe(
      '/proc/loadavg:1: expected three load averages, running/threads and the last pid (e.g. "0.52 0.58 0.59 2/186 4102"), found "0.1 0.2 0.3 1/2 3"',
    );
    expect(parseErrorOf(() => parseLoadavg('0.00 0.00 0.00 1/2 3\nmore\n', { file: 'la' })).message).toMatch(
      /^la:2: expected a single line/,
    );
    expect(parseErrorOf(() => parseLoadavg('')).message).toMatch(/^\/proc\/loadavg/);
    expect(parseErrorOf(() => parseLoadavg('0.00 0.00 0.00 1/2 3')).message).toMatch(/newline/);
  });
});
