import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { until } from '../../test/children.js';
import { parseErrorOf } from '../../test/parsers.js';
import { PF_KTHREAD, parseProcStat } from './proc_stat.js';
import { parseProcStatm } from './proc_statm.js';

describe('parseProcStat', () => {
  it('reads /proc/self/stat: every field proc(5) lists on 6.18 (52)', () => {
    const text = readFileSync('/proc/self/stat', 'utf8');
    const s = parseProcStat(text);
    expect(s.pid).toBe(process.pid);
    expect(s.ppid).toBe(process.ppid);
    expect(s.state).toBe('R');
    expect(s.flags & PF_KTHREAD).toBe(0);
    expect(s.vsizeBytes).toBeGreaterThan(0);
    expect(s.rssPages).toBeGreaterThan(0);
    expect(s.startstack).toBeGreaterThan(0);
    expect(s.exitCode).toBe(0);
    // The number of fields after the comm is what 6.18 prints: 50 (fields 3..52).
    expect(
      text
        .slice(text.lastIndexOf(')') + 2)
        .trim()
        .split(' '),
    ).toHaveLength(50);
  });

  it('reads kthreadd: PF_KTHREAD set, no memory', () => {
    const s = parseProcStat(readFileSync('/proc/2/stat', 'utf8'));
    expect(s.comm).toBe('kthreadd');
    expect(s.flags & PF_KTHREAD).toBe(PF_KTHREAD);
    expect(s.vsizeBytes).toBe(0);
    expect(s.rssPages).toBe(0);
  });

  it('takes the comm up to the LAST parenthesis (a real process named "a) b (c")', async () => {
    // Only the process itself may write its comm: bash does, then waits for its sleep child.
    const child = spawn('bash', ['-c', 'printf "a) b (c) d" > /proc/$$/comm; sleep 30; true'], {
      stdio: 'ignore',
    });
    try {
      // Renamed, and sleeping in wait4 for its child (so its mm stands still).
      await until(() => readFileSync(`/proc/${child.pid}/stat`, 'utf8').includes('(a) b (c) d) S '));
      const s = parseProcStat(readFileSync(`/proc/${child.pid}/stat`, 'utf8'));
      expect(s.comm).toBe('a) b (c) d');
      // bash is waiting for its sleep: its mm stands still, and vsize is statm's size (total_vm).
      const statm = parseProcStatm(readFileSync(`/proc/${child.pid}/statm`, 'utf8'));
      expect(s.vsizeBytes).toBe(statm.sizePages * 4096);
      // stat's rss is get_mm_rss(): the per-CPU counters read without summing, so it lags the
      // exact sums statm and status print (get_mm_counter_sum, 6.x) by up to a batch per CPU.
      expect(Math.abs(s.rssPages - statm.residentPages)).toBeLessThan(64 * 8);
      expect(s.pid).toBe(child.pid);
      expect(s.ppid).toBe(process.pid);
      expect(s.state).toBe('S');
    } finally {
      child.kill();
    }
  });

  it('accepts the shorter lines of older kernels (2.6.24-3.2 stopped at cguest_time)', () => {
    // proc(5): start_data (45) appeared in 3.3; cut a real line there.
    const full = readFileSync('/proc/self/stat', 'utf8').trimEnd();
    const head = full.slice(0, full.lastIndexOf(')') + 2);
    const old = `${head}${full.slice(head.length).split(' ').slice(0, 42).join(' ')}\n`;
    const s = parseProcStat(old);
    expect(s.cguestTimeTicks).toBeDefined();
    expect(s.startData).toBeUndefined();
    expect(s.exitCode).toBeUndefined();
  });

  it('rejects garbage', () => {
    const file = 'p/stat';
    parseErrorOf(() => parseProcStat('', { file }));
    parseErrorOf(() => parseProcStat('12 cat R 1 2 3\n', { file }));
    parseErrorOf(() => parseProcStat('x (cat) R 1\n', { file }));
    expect(parseErrorOf(() => parseProcStat('12 (cat) R 1 2 3\n', { file })).message).toContain('fields');
    const line = readFileSync('/proc/self/stat', 'utf8').replace(/\) R (\d+) /, ') R x$1 ');
    expect(parseErrorOf(() => parseProcStat(line, { file })).message).toContain('field 4');
    parseErrorOf(() => parseProcStat('12 (cat) 7 1 2 3\n', { file }));
  });
});
