import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/parsers.js';
import { parseSlubTraceLog } from './slub_trace_log.js';

// The lab's guests booted with slub_debug=U;UT,TCPv6: six busybox `nc -l` sockets, three
// closed again (lab/guest/scenario-trace-kmem.sh), logged by 6.1 and 6.12.
describe.each(['6.1', '6.12'])('SLUB trace log, Linux %s (lab)', (v) => {
  const recs = parseSlubTraceLog(fixture('lab-trace', `lab-${v}.slub-trace.log`), { file: 'log' });

  it('reads every TRACE line with its task and call trace', () => {
    expect(recs.map((r) => [r.cache, r.op])).toEqual([
      ...Array.from({ length: 6 }, () => ['TCPv6', 'alloc']),
      ...Array.from({ length: 3 }, () => ['TCPv6', 'free']),
    ]);
    for (const r of recs) {
      // Sockets are made by nc and freed by whoever runs the RCU callback (ksoftirqd).
      if (r.op === 'alloc') expect(r.comm).toBe('nc');
      else expect(r.comm).toBeDefined();
      expect(r.object).toMatch(/^0x[0-9a-f]+$/);
      // dump_stack and SLUB's own debug path are left out; `? ` guesses too.
      expect(r.frames[0]!.func).not.toMatch(/dump_stack|alloc_debug_processing|free_debug_processing/);
      expect(r.frames.every((f) => !/^\?/.test(f.func))).toBe(true);
    }
    expect(recs[0]!.frames.map((f) => f.func)).toEqual(
      expect.arrayContaining(['sk_alloc', 'inet6_create', '__sys_socket']),
    );
  });

  it('frees carry the object’s size from its hex dump, and the closed sockets were allocated here', () => {
    const frees = recs.filter((r) => r.op === 'free');
    const sizes = new Set(frees.map((r) => r.objectBytes));
    expect(sizes.size).toBe(1);
    expect([...sizes][0]).toBeGreaterThan(2000);
    const allocated = new Set(recs.filter((r) => r.op === 'alloc').map((r) => r.object));
    for (const f of frees) expect(allocated.has(f.object)).toBe(true);
  });
});

describe('SLUB trace log prefixes', () => {
  it('reads dmesg timestamps and /dev/kmsg headers, and ignores other messages', () => {
    const log = [
      '[   12.000001] TRACE dentry alloc 0x00000000a1b2c3d4 inuse=3 fp=0x0000000000000000',
      '[   12.000002] CPU: 1 PID: 77 Comm: ls Not tainted 5.4.0 #1',
      '[   12.000003] Call Trace:',
      '[   12.000004]  dump_stack+0x6d/0x8b',
      '[   12.000005]  alloc_debug_processing+0x1d/0x30',
      '[   12.000006]  __d_alloc+0x2a/0x1f0',
      '[   12.000007]  d_alloc+0x1a/0x90',
      '[   12.000008] eth0: link up',
      '6,1234,5678,-;TRACE dentry free 0x00000000a1b2c3d4 inuse=2 fp=0x0000000000000000',
    ].join('\n');
    const r = parseSlubTraceLog(log);
    expect(r.map((x) => [x.op, x.comm, x.frames.map((f) => f.func)])).toEqual([
      ['alloc', 'ls', ['__d_alloc', 'd_alloc']],
      ['free', undefined, []],
    ]);
  });
});
