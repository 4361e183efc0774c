import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, parseErrorOf } from '../../test/parsers.js';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { parseProcStatus } from './proc_status.js';

/** Independent reading: `Key:\tN kB` by splitting on whitespace. */
function kbFields(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of text.split('\n')) {
    const [k, v, unit] = l.split(/\s+/);
    if (unit === 'kB' && k) out.set(k.replace(/:$/, ''), Number(v) * 1024);
  }
  return out;
}

describe('parseProcStatus', () => {
  it('reads this machine’s own /proc/self/status: every kB field in bytes, ids and counts', () => {
    const text = readFileSync('/proc/self/status', 'utf8');
    const s = parseProcStatus(text, { file: '/proc/self/status' });
    expect(s.pid).toBe(process.pid);
    expect(s.tgid).toBe(process.pid);
    expect(s.ppid).toBe(process.ppid);
    expect(s.name).toBe(readFileSync('/proc/self/comm', 'utf8').trimEnd());
    expect(s.uid).toEqual([process.getuid!(), process.geteuid!(), expect.any(Number), expect.any(Number)]);
    expect(s.state).toBe('R');
    expect(s.stateName).toBe('running');
    const kb = kbFields(text);
    expect(kb.size).toBeGreaterThan(10);
    for (const [k, v] of kb) expect(s.bytes[k]).toBe(v);
    expect(Object.keys(s.bytes).sort()).toEqual([...kb.keys()].sort());
    // 6.18 prints all of these; VmRSS is their sum (task_mem).
    expect(s.bytes.VmRSS).toBe(s.bytes.RssAnon! + s.bytes.RssFile! + s.bytes.RssShmem!);
    expect(s.counts.Threads).toBeGreaterThanOrEqual(1);
    expect(s.counts.voluntary_ctxt_switches).toBeGreaterThanOrEqual(0);
    expect(s.counts.Kthread).toBe(0);
    // Umask is octal: kept as text, never as a (wrong) decimal count.
    expect(s.counts.Umask).toBeUndefined();
    expect(s.fields.Umask).toMatch(/^0[0-7]{3}$/);
    expect(Object.keys(s.fields).length).toBe(text.trimEnd().split('\n').length);
  });

  it('reads a kernel thread (kthreadd): no Vm lines, Kthread 1', () => {
    const s = parseProcStatus(readFileSync('/proc/2/status', 'utf8'));
    expect(s.name).toBe('kthreadd');
    expect(s.ppid).toBe(0);
    expect(s.bytes.VmRSS).toBeUndefined();
    expect(s.counts.Kthread).toBe(1);
  });

  it('reads every process of the lab captures (6.1 without Kthread, 6.12 with it)', () => {
    // The collector leaves kernel threads out: the guest's init and the collector's shell.
    for (const [kernel, shell] of [
      ['6.1', '2235'],
      ['6.12', '2595'],
    ] as const) {
      const dir = join(labFixture(kernel, 'after'), 'proc');
      const pids = readdirSync(dir).sort();
      expect(pids).toEqual(['1', shell]);
      for (const pid of pids) {
        const s = parseProcStatus(readFileSync(join(dir, pid, 'status'), 'utf8'), { file: `${pid}/status` });
        expect(s.pid).toBe(Number(pid));
        expect(s.name).toBe(pid === '1' ? 'init' : 'sh');
        if (kernel === '6.1') expect(s.counts.Kthread).toBeUndefined();
        else expect(s.counts.Kthread).toBe(0);
      }
    }
    // A kernel thread's Kthread: 1 (6.18, kthreadd as captured in the process fixture).
    const kthreadd = parseProcStatus(fixture('linux-6.18-four-types', 'proc', '2', 'status'));
    expect(kthreadd.counts.Kthread).toBe(1);
    expect(kthreadd.bytes.VmSize).toBeUndefined();
    const init = parseProcStatus(readFileSync(join(labFixture('6.12', 'after'), 'proc/1/status'), 'utf8'));
    expect(init.name).toBe('init');
    expect(init.bytes.RssShmem).toBe(1664 * 1024);
    expect(init.counts.Kthread).toBe(0);
  });

  it('reads the 2.6.30 documented format (no Rss* split, no VmSwap)', () => {
    const s = parseProcStatus(readFileSync(join(REPO_FIXTURES, 'linux-2.6.30-doc/status'), 'utf8'));
    expect(s).toMatchObject({ name: 'cat', tgid: 5452, pid: 5452, ppid: 743, state: 'R' });
    expect(s.bytes.VmRSS).toBe(476 * 1024);
    expect(s.bytes.RssAnon).toBeUndefined();
    expect(s.bytes.VmSwap).toBeUndefined();
    expect(s.gid).toEqual([100, 100, 100, 100]);
    expect(s.fields.Groups).toBe('100 14 16');
  });

  it('keeps a Name with spaces and colons', () => {
    const s = parseProcStatus('Name:\tkworker/0:1 x\nPid:\t9\nPPid:\t2\n');
    expect(s.name).toBe('kworker/0:1 x');
    expect(s.tgid).toBe(9);
  });

  it('rejects garbage with file and line', () => {
    const file = 'x/status';
    expect(parseErrorOf(() => parseProcStatus('', { file })).message).toContain('x/status:1');
    let e = parseErrorOf(() => parseProcStatus('Name:\tcat\nthis is not a field\n', { file }));
    expect(e.line).toBe(2);
    e = parseErrorOf(() => parseProcStatus('Name:\tcat\nPid:\t1\nPPid:\t0\nVmRSS:\t  12x kB\n', { file }));
    expect(e.line).toBe(4);
    expect(e.message).toContain('VmRSS');
    e = parseErrorOf(() => parseProcStatus('Pid:\t1\nPPid:\t0\n', { file }));
    expect(e.message).toContain('Name');
    e = parseErrorOf(() => parseProcStatus('Name:\tcat\nPPid:\t0\n', { file }));
    expect(e.message).toContain('Pid');
    e = parseErrorOf(() => parseProcStatus('Name:\tcat\nPid:\tabc\nPPid:\t0\n', { file }));
    expect(e.line).toBe(2);
    e = parseErrorOf(() => parseProcStatus('Name:\tcat\nPid:\t1\nPid:\t2\nPPid:\t0\n', { file }));
    expect(e.line).toBe(3);
    e = parseErrorOf(() => parseProcStatus('Name:\tcat\nPid:\t1\nPPid:\t0\nUid:\t0 x\n', { file }));
    expect(e.line).toBe(4);
    e = parseErrorOf(() => parseProcStatus('Name:\tcat\nPid:\t1\nPPid:\t0\nState:\trunning\n', { file }));
    expect(e.message).toContain('State');
    // A binary file.
    parseErrorOf(() => parseProcStatus('\x7fELF\x02\x01\x01\0\0\0', { file }));
  });
});
