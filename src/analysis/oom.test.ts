import { describe, expect, it } from 'vitest';
import { OLDER_FORMATS } from '../../test/oom-formats.js';
import { fixture } from '../../test/parsers.js';
import { parseOomReports } from '../sources/oom_report.js';
import { explainOom, explainOomLog, oomAccounting, rankTasks } from './oom.js';

const MiB = 2 ** 20;
const explainFixture = (dir: string, file = 'console.log') =>
  explainOomLog(parseOomReports(fixture(dir, file)));

describe('explainOom on the 6.12 lab boot', () => {
  const [hog, memcg, leak, last] = explainFixture('oom-6.12');

  it('a user hog: names the process, the largest badness, and user space as the culprit', () => {
    expect(hog!.scope).toBe('global');
    expect(hog!.culprit).toBe('user');
    expect(hog!.headline).toContain('user space');
    expect(hog!.headline).toContain('msl_hog (pid 40)');
    expect(hog!.request).toMatchObject({
      comm: 'msl_hog',
      pid: 40,
      order: 0,
      pages: 1,
      site: 'a page fault',
    });
    expect(hog!.request!.gfpFlags.map((f) => f.name)).toEqual([
      'GFP_HIGHUSER_MOVABLE',
      '__GFP_COMP',
      '__GFP_ZERO',
    ]);
    expect(hog!.request!.summary).toMatch(
      /^msl_hog \(pid 40\) asked for one page \(order 0, 4\.0 KiB\), a user-space page/,
    );
    expect(hog!.victim).toMatchObject({ pid: 40, comm: 'msl_hog', rank: 0 });
    // rss 55650 + swap 0 + page tables 483328 / 4096 = 118 pages.
    expect(hog!.victim!.badnessPages).toBe(55650 + 118);
    expect(hog!.victim!.why).toContain('the largest oom badness of the 1 killable task');
    expect(hog!.accounting!.layers.user).toBe((437 + 55951 - 882) * 4096);
  });

  it('a memcg OOM: names the cgroup, its usage against the limit, and the victim inside', () => {
    expect(memcg!.scope).toBe('memcg');
    expect(memcg!.culprit).toBe('memcg-limit');
    expect(memcg!.constraint).toContain('memory cgroup /msl-oom');
    expect(memcg!.memcg).toEqual({
      path: '/msl-oom',
      usageBytes: 32 * MiB,
      limitBytes: 32 * MiB,
      failcnt: 21,
      swapUsageBytes: 0,
      anonBytes: 33439744,
      fileBytes: 0,
      kernelBytes: 114688,
      shmemBytes: 0,
    });
    expect(memcg!.headline).toBe(
      'memory cgroup /msl-oom used 32.0 MiB of its 32.0 MiB limit (failcnt 21): anon 31.9 MiB, file 0 B, kernel 112.0 KiB; the OOM killer killed msl_memcg_hog (pid 45) inside it',
    );
    expect(memcg!.accounting).toBeUndefined();
    // The badness total of a memcg OOM is its limit.
    expect(memcg!.victim!.rank).toBe(0);
  });

  it('the kernel leak: points at the kernel and the unaccounted remainder, and the module', () => {
    expect(leak!.culprit).toBe('kernel-unaccounted');
    const acc = leak!.accounting!;
    // By hand from the report: managed 65406 − 5323; LRU 797 + 2171; slab 113 + 1945; stacks
    // 496 kB; page tables 91; free 1085 + pcp 3994.
    const managed = 65406 - 5323;
    const known = 797 + 2171 + 113 + 1945 + 496 / 4 + 91 + 1085 + 3994;
    expect(acc.memTotalBytes).toBe(managed * 4096);
    expect(acc.unaccountedBytes).toBe((managed - known) * 4096);
    expect(acc.parts.reduce((s, p) => s + p.bytes, 0)).toBe(acc.memTotalBytes);
    // An independent witness in the same report: allocation profiling's count for the leak.
    const site = leak!.allocations[0]!;
    expect(site).toMatchObject({ func: 'msl_page_leak', module: 'msl_leaky' });
    expect(Math.abs(acc.unaccountedBytes - site.calls * 4096) / acc.unaccountedBytes).toBeLessThan(0.02);
    expect(leak!.headline).toMatch(
      /^the kernel held 194\.4 MiB \(83% of 234\.7 MiB\) that no counter accounts for: a driver or module taking pages straight from the buddy allocator; the largest allocation site, msl_page_leak \[msl_leaky\] \(.*msl_leaky\.c:96\) held 193 MiB in 49321 allocations$/,
    );
    expect(leak!.request).toMatchObject({
      site: 'msl_page_leak [msl_leaky]',
      workqueue: 'events msl_work_fn [msl_leaky]',
    });
    expect(leak!.victim).toMatchObject({ comm: 'msl_hog', pid: 49, freedBytes: (8192 + 648) * 1024 });
    expect(leak!.notes.join('\n')).toContain('killing msl_hog (pid 49) freed only about 8.6 MiB');
    expect(leak!.nextSteps.join('\n')).toContain('page_owner');
  });

  it('the last report: nothing left to kill, the panic', () => {
    expect(last!.culprit).toBe('kernel-unaccounted');
    expect(last!.victim).toBeUndefined();
    expect(last!.candidates).toEqual([]);
    expect(last!.notes).toContain(
      'no killable process was left, and the kernel panicked: "System is deadlocked on memory"',
    );
    expect(last!.slab[0]).toEqual({ name: 'kmemleak_object', usedKB: 3471, totalKB: 3476 });
  });
});

describe('explainOom on the 6.1 lab boot (no allocation profiling)', () => {
  const reports = explainFixture('oom-6.1');
  it('gives the same verdicts; the leak is named from the call trace, as a suspect', () => {
    expect(reports.map((r) => r.culprit)).toEqual([
      'user',
      'memcg-limit',
      'kernel-unaccounted',
      'kernel-unaccounted',
    ]);
    const leak = reports[2]!;
    expect(leak.allocations).toEqual([]);
    expect(leak.headline).toMatch(
      /^the kernel held \d+\.\d MiB \(\d+% of 237\.2 MiB\) that no counter accounts for/,
    );
    expect(leak.notes).toContain(
      'the allocation that failed came from msl_page_leak [msl_leaky]: a suspect, not a proof',
    );
    expect(leak.accounting!.unaccountedBytes).toBeGreaterThan(150 * MiB);
  });
});

describe('explainOom on this machine (6.18, memcg v1)', () => {
  it('names the cgroup and reads the v1 stats', () => {
    const [r] = explainFixture('oom-live-6.18', 'memcg-v1.dmesg');
    expect(r!.culprit).toBe('memcg-limit');
    expect(r!.memcg).toMatchObject({
      path: '/memsleuth-oom-manual-922',
      anonBytes: 16662528,
      fileBytes: 0,
      kernelBytes: 104 * 1024,
    });
    expect(r!.headline).toContain(
      'memory cgroup /memsleuth-oom-manual-922 used 16.0 MiB of its 16.0 MiB limit',
    );
    expect(r!.headline).toContain('tail (pid 18915)');
    expect(r!.request!.summary).toContain('an ordinary kernel allocation');
  });
});

describe('explainOom on older formats (test/oom-formats.ts)', () => {
  const explain = (v: keyof typeof OLDER_FORMATS) => {
    const log = parseOomReports(OLDER_FORMATS[v]());
    return explainOom(log.reports[0]!, 1, log.pageSizeBytes);
  };

  it('4.4: user space, the kernel’s own score, hex-only gfp mask, kernel stacks from zone lines', () => {
    const r = explain('4.4');
    expect(r.culprit).toBe('user');
    expect(r.victim!.rank).toBe(0);
    expect(r.victim!.why).toContain('(the kernel’s score: 877 of 1000)'.replace('’', "'"));
    expect(r.request!.summary).toContain('gfp_mask 0x24201ca (this kernel prints no flag names: before 4.5)');
    // -1000 is never a candidate.
    expect(r.candidates.map((c) => c.name)).toEqual(['msl_hog', 'rsyslogd', 'systemd']);
    expect(r.accounting!.parts.find((p) => p.name === 'KernelStack')!.bytes).toBe(4800 * 1024);
    expect(r.accounting!.parts.reduce((s, p) => s + p.bytes, 0)).toBe(r.accounting!.memTotalBytes);
  });

  it('4.19: a memcg whose usage is in a child cgroup (4.x prints local stats per cgroup)', () => {
    const r = explain('4.19');
    expect(r.culprit).toBe('memcg-limit');
    expect(r.memcg).toMatchObject({ path: '/batch', anonBytes: 517120 * 1024, kernelBytes: 6120 * 1024 });
    expect(r.headline).toContain('memory cgroup /batch used 512.0 MiB of its 512.0 MiB limit (failcnt 4211)');
  });

  it('5.4: the memcg from the oom-kill: line, kernel parts summed from memory.stat', () => {
    const r = explain('5.4');
    expect(r.memcg).toMatchObject({ path: '/system.slice/app.service', kernelBytes: 73728 + 1994752 });
  });

  it('5.15: unreclaimable slab, the largest cache named; a -1000 task asked for the memory', () => {
    const r = explain('5.15');
    expect(r.culprit).toBe('kernel-slab');
    expect(r.headline).toContain('the largest unreclaimable cache: kmalloc-2k 3.4 GiB');
    expect(r.notes).toContain(
      'sshd, which asked for the memory, has oom_score_adj -1000: it is never killed itself',
    );
    expect(r.victim).toMatchObject({ comm: 'java', rank: 0 });
  });

  it('4.9: fragmentation when an order > 0 finds no block although memory is free', () => {
    const text = OLDER_FORMATS['4.9']()
      .replace(', order=0, ', ', order=3, ')
      .replace(
        'free:48000kB min:60000kB low:75000kB high:90000kB',
        'free:48000kB min:6000kB low:7500kB high:9000kB',
      );
    const log = parseOomReports(text);
    const r = explainOom(log.reports[0]!, 1, 4096);
    expect(r.culprit).toBe('fragmentation');
    expect(r.headline).toBe('fragmentation: 46.9 MiB was free but no block of order 3 was left');
  });
});

describe('rankTasks and oomAccounting', () => {
  it('scales oom_score_adj by the total, as oom_badness does', () => {
    const t = (pid: number, rss: number, adj: number) => ({
      pid,
      uid: 0,
      tgid: pid,
      totalVmPages: rss,
      rssPages: rss,
      swapents: 0,
      pgtablesBytes: 0,
      oomScoreAdj: adj,
      name: `t${pid}`,
      line: pid,
    });
    const r = rankTasks([t(1, 1000, 0), t(2, 100, 500), t(3, 5000, -1000)], 10000, 4096);
    expect(r.map((x) => [x.pid, x.badnessPages])).toEqual([
      [2, 5100],
      [1, 1000],
    ]);
  });

  it('gives root 3% off in the tables of kernels before 4.15 (nr_ptes), as before 4.17', () => {
    const old = (pid: number, uid: number) => ({
      pid,
      uid,
      tgid: pid,
      totalVmPages: 0,
      rssPages: 1000,
      nrPtes: 0,
      nrPmds: 0,
      swapents: 0,
      oomScoreAdj: 0,
      name: `t${pid}`,
      line: pid,
    });
    expect(rankTasks([old(1, 0), old(2, 1000)], 100000, 4096).map((x) => [x.pid, x.badnessPages])).toEqual([
      [2, 1000],
      [1, 970],
    ]);
  });

  it('gives no accounting for a report without Mem-Info', () => {
    const log = parseOomReports(fixture('oom-live-6.18', 'memcg-v1.dmesg'));
    expect(oomAccounting(log.reports[0]!, 4096)).toBeUndefined();
  });
});
