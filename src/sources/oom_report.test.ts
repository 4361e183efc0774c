import { describe, expect, it } from 'vitest';
import { OLDER_FORMATS } from '../../test/oom-formats.js';
import { expectParseError, fixture } from '../../test/parsers.js';
import { type OomReport, parseOomReports, stripLogPrefix } from './oom_report.js';

const lab612 = () => parseOomReports(fixture('oom-6.12', 'console.log'), { file: 'oom-6.12/console.log' });
const lab61 = () => parseOomReports(fixture('oom-6.1', 'console.log'), { file: 'oom-6.1/console.log' });

/** The same report's content, without where it was in the input. */
function content(r: OomReport): unknown {
  const strip = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(strip)
      : x && typeof x === 'object'
        ? Object.fromEntries(
            Object.entries(x)
              .filter(([k]) => !['line', 'endLine', 'seconds'].includes(k))
              .map(([k, v]) => [k, strip(v)]),
          )
        : x;
  return strip(r);
}

describe('parseOomReports on the lab kernels (real console logs)', () => {
  it('6.12: a user hog, a memcg, and the kernel leak twice (the second panics)', () => {
    const log = lab612();
    expect(log.pageSizeBytes).toBe(4096);
    expect(log.reports.map((r) => r.trigger?.comm)).toEqual([
      'msl_hog',
      'msl_memcg_hog',
      'kworker/0:2',
      'kworker/0:2',
    ]);
    for (const r of log.reports) expect(r.missing).toEqual([]);
    const [hog, memcg, leak, last] = log.reports as [OomReport, OomReport, OomReport, OomReport];

    expect(hog.trigger).toEqual({
      comm: 'msl_hog',
      gfpMask: 0x140dca,
      gfpFlags: ['GFP_HIGHUSER_MOVABLE', '__GFP_COMP', '__GFP_ZERO'],
      order: 0,
      oomScoreAdj: 0,
    });
    expect(hog.task).toEqual({
      cpu: 0,
      pid: 40,
      uid: 0,
      comm: 'msl_hog',
      tainted: false,
      kernelRelease: '6.12.117',
    });
    expect(hog.callTrace.map((f) => f.func).slice(0, 4)).toEqual([
      'dump_stack_lvl',
      'dump_header',
      'oom_kill_process',
      'out_of_memory',
    ]);
    expect(hog.memInfo).toEqual({
      active_anon: 437,
      inactive_anon: 55951,
      isolated_anon: 0,
      active_file: 0,
      inactive_file: 0,
      isolated_file: 0,
      unevictable: 0,
      dirty: 0,
      writeback: 0,
      slab_reclaimable: 113,
      slab_unreclaimable: 1884,
      mapped: 578,
      shmem: 882,
      pagetables: 192,
      sec_pagetables: 0,
      bounce: 0,
      kernel_misc_reclaimable: 0,
      free: 326,
      free_pcp: 615,
      free_cma: 0,
    });
    expect(hog.nodes).toHaveLength(1);
    expect(hog.nodes[0]!.kB.kernel_stack).toBe(496);
    expect(hog.nodes[0]!.kB['isolated(anon)']).toBe(0);
    expect(hog.nodes[0]!.allUnreclaimable).toBe(true);
    // No CONFIG_NUMA: zones and free areas without `Node 0`.
    expect(hog.zones).toHaveLength(1);
    expect(hog.zones[0]!.node).toBeUndefined();
    expect(hog.zones[0]!.zone).toBe('DMA32');
    expect(hog.zones[0]!.kB).toMatchObject({
      free: 1304,
      min: 1932,
      managed: 240332,
      free_pcp: 2460,
      reserved_highatomic: 0,
    });
    expect(hog.zones[0]!.lowmemReserve).toEqual([0, 0, 0]);
    expect(hog.freeAreas[0]).toEqual({
      zone: 'DMA32',
      blocks: [0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0],
      blockKB: [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
      types: ['', 'M', '', '', '', '', 'M', '', 'M', '', ''],
      totalKB: 1288,
    });
    expect(hog.pagecachePages).toBe(882);
    expect(hog.ramPages).toBe(65406);
    expect(hog.reservedPages).toBe(5323);
    expect(hog.highmemPages).toBe(0);
    expect(hog.allocations).toHaveLength(10);
    expect(hog.allocations[0]).toEqual({
      bytes: 217 * 2 ** 20,
      sizeText: '217 MiB',
      calls: 55513,
      file: 'mm/memory.c',
      line: 1063,
      func: 'folio_prealloc',
    });
    expect(hog.taskColumns).toEqual([
      'uid',
      'tgid',
      'total_vm',
      'rss',
      'rss_anon',
      'rss_file',
      'rss_shmem',
      'pgtables_bytes',
      'swapents',
      'oom_score_adj',
    ]);
    expect(hog.tasks).toEqual([
      {
        pid: 40,
        uid: 0,
        tgid: 40,
        totalVmPages: 55757,
        rssPages: 55650,
        rssAnonPages: 55488,
        rssFilePages: 0,
        rssShmemPages: 162,
        pgtablesBytes: 483328,
        swapents: 0,
        oomScoreAdj: 0,
        name: 'msl_hog',
        line: 233,
      },
    ]);
    expect(hog.constraint).toEqual({
      constraint: 'CONSTRAINT_NONE',
      nodemask: '(null)',
      taskMemcg: '/',
      task: 'msl_hog',
      pid: 40,
      uid: 0,
    });
    expect(hog.killed).toEqual({
      message: 'Out of memory',
      pid: 40,
      comm: 'msl_hog',
      totalVmKB: 223028,
      anonRssKB: 221952,
      fileRssKB: 0,
      shmemRssKB: 648,
      uid: 0,
      pgtablesKB: 472,
      oomScoreAdj: 0,
      line: 235,
    });
    expect(hog.line).toBe(178);
    expect(hog.endLine).toBe(235);

    expect(memcg.memInfo).toBeUndefined();
    expect(memcg.memcg?.path).toBe('/msl-oom');
    expect(memcg.memcg?.memory).toEqual({ usageKB: 32768, limitKB: 32768, failcnt: 21 });
    expect(memcg.memcg?.swap).toEqual({ usageKB: 0, limitKB: 9007199254740988, failcnt: 0 });
    expect(memcg.memcg?.stats).toMatchObject({
      anon: 33439744,
      file: 0,
      kernel: 114688,
      pgfault: 8179,
      pglazyfreed: 0,
    });
    expect(Object.keys(memcg.memcg!.stats)).toHaveLength(46);
    expect(memcg.constraint).toMatchObject({
      constraint: 'CONSTRAINT_MEMCG',
      oomMemcg: '/msl-oom',
      taskMemcg: '/msl-oom',
      task: 'msl_memcg_hog',
    });
    expect(memcg.killed?.message).toBe('Memory cgroup out of memory');

    expect(leak.task?.tainted).toBe(true);
    expect(leak.workqueue).toBe('events msl_work_fn [msl_leaky]');
    // `? ` guesses are left out of the trace.
    expect(leak.callTrace.map((f) => f.func)).not.toContain('drain_dead_softirq_workfn');
    expect(leak.callTrace.find((f) => f.func === 'msl_page_leak')).toEqual({
      func: 'msl_page_leak',
      offset: 0x21,
      length: 0x43,
      module: 'msl_leaky',
    });
    expect(leak.allocations[0]).toMatchObject({
      sizeText: '193 MiB',
      calls: 49321,
      line: 96,
      module: 'msl_leaky',
      func: 'msl_page_leak',
    });
    expect(leak.allocations[0]!.file).toMatch(/msl_leaky\.c$/);
    expect(leak.allocations[1]!.sizeText).toBe('8.10 MiB');
    expect(leak.allocations[1]!.bytes).toBe(Math.round(8.1 * 2 ** 20));
    expect(leak.killed?.comm).toBe('msl_hog');
    expect(leak.killed?.pid).toBe(49);

    expect(last.noKillableProcesses).toBe(true);
    expect(last.panic).toBe('System is deadlocked on memory');
    expect(last.killed).toBeUndefined();
    expect(last.tasks).toEqual([]);
    expect(last.unreclaimableSlab).toHaveLength(65);
    expect(last.unreclaimableSlab.find((c) => c.name === 'kmemleak_object')).toEqual({
      name: 'kmemleak_object',
      usedKB: 3471,
      totalKB: 3476,
    });
    expect(last.endLine).toBe(510);
  });

  it('6.1: the older task table, and the victim’s own allocation failure stays out of the report', () => {
    const log = lab61();
    expect(log.reports).toHaveLength(4);
    const hog = log.reports[0]!;
    expect(hog.task).toEqual({ cpu: 0, pid: 35, comm: 'msl_hog', tainted: false, kernelRelease: '6.1.192' });
    expect(hog.taskColumns).toEqual([
      'uid',
      'tgid',
      'total_vm',
      'rss',
      'pgtables_bytes',
      'swapents',
      'oom_score_adj',
    ]);
    expect(hog.tasks[0]).toMatchObject({ pid: 35, rssPages: 56644, pgtablesBytes: 495616, name: 'msl_hog' });
    expect(hog.tasks[0]!.rssAnonPages).toBeUndefined();
    expect(hog.allocations).toEqual([]);
    // warn_alloc's "page allocation failure" and its Mem-Info come after the kill.
    expect(hog.memInfo?.free).toBe(486);
    expect(hog.endLine).toBe(213);
    expect(hog.freeAreas).toHaveLength(1);
    expect(log.reports[1]!.memcg?.path).toBe('/msl-oom');
    expect(log.reports[2]!.workqueue).toBe('events msl_work_fn [msl_leaky]');
    expect(log.reports[3]!.panic).toBe('System is deadlocked on memory');
  });
});

describe('parseOomReports on this machine (6.18, memcg v1)', () => {
  it('reads memory+swap, kmem and the v1 memory.stat lines', () => {
    const log = parseOomReports(fixture('oom-live-6.18', 'memcg-v1.dmesg'));
    expect(log.reports).toHaveLength(1);
    const r = log.reports[0]!;
    expect(r.seconds).toBeCloseTo(2771.31639, 5);
    expect(r.task).toMatchObject({ pid: 18915, uid: 0, comm: 'tail', kernelRelease: '6.18.44-fc-v669' });
    expect(r.memcg?.memory).toEqual({ usageKB: 16384, limitKB: 16384, failcnt: 19 });
    expect(r.memcg?.memsw).toEqual({ usageKB: 16384, limitKB: 9007199254740988, failcnt: 0 });
    expect(r.memcg?.kmem).toEqual({ usageKB: 104, limitKB: 9007199254740988, failcnt: 0 });
    expect(r.memcg?.stats).toMatchObject({ rss: 16662528, cache: 0, total_rss: 16662528 });
    expect(r.constraint).toMatchObject({
      cpuset: '/',
      memsAllowed: '0',
      oomMemcg: '/memsleuth-oom-manual-922',
    });
    // Register lines of the user-mode fault do not end the trace early.
    expect(r.callTrace.map((f) => f.func)).toContain('asm_exc_page_fault');
    expect(r.killed).toMatchObject({ pid: 18915, comm: 'tail', anonRssKB: 16128, fileRssKB: 1548 });
  });
});

describe('log prefixes', () => {
  it('strips dmesg, dmesg -T, dmesg -x, kmsg, syslog and journal prefixes', () => {
    expect(stripLogPrefix('[ 2771.316390] tail invoked oom-killer: x')).toEqual({
      text: 'tail invoked oom-killer: x',
      seconds: 2771.31639,
    });
    expect(stripLogPrefix('[   12.000001]  dump_stack_lvl+0x57/0x80')).toEqual({
      text: ' dump_stack_lvl+0x57/0x80',
      seconds: 12.000001,
    });
    expect(stripLogPrefix('[   12.500000][ T1234] Mem-Info:')).toEqual({ text: 'Mem-Info:', seconds: 12.5 });
    expect(stripLogPrefix('[Wed Dec  2 03:04:17 2026] Mem-Info:')).toEqual({ text: 'Mem-Info:' });
    expect(stripLogPrefix('kern  :warn  : [  5.1] Mem-Info:')).toEqual({ text: 'Mem-Info:', seconds: 5.1 });
    expect(stripLogPrefix('4,1234,2771316390,-;Mem-Info:')).toEqual({
      text: 'Mem-Info:',
      seconds: 2771.31639,
    });
    expect(stripLogPrefix('4,1235,2771316391,c; dump_stack_lvl+0x57/0x80')).toEqual({
      text: ' dump_stack_lvl+0x57/0x80',
      seconds: 2771.316391,
    });
    expect(stripLogPrefix(' SUBSYSTEM=pci', true)).toBeUndefined();
    expect(stripLogPrefix('Dec  2 03:04:17 vm kernel: [ 2771.316390] Mem-Info:')).toEqual({
      text: 'Mem-Info:',
      seconds: 2771.31639,
    });
    expect(stripLogPrefix('Dec 02 03:04:17 vm kernel: Mem-Info:')).toEqual({ text: 'Mem-Info:' });
    expect(stripLogPrefix('2026-12-02T03:04:17.123456+00:00 vm kernel: Mem-Info:')).toEqual({
      text: 'Mem-Info:',
    });
    expect(stripLogPrefix('[ 2771.316390] vm kernel: Mem-Info:')).toEqual({
      text: 'Mem-Info:',
      seconds: 2771.31639,
    });
    expect(stripLogPrefix('<4>Mem-Info:')).toEqual({ text: 'Mem-Info:' });
  });

  const plain = fixture('oom-6.12', 'console.log');
  const reference = parseOomReports(plain).reports.map(content);
  const lines = plain.split('\n').slice(0, -1);
  it.each([
    ['dmesg', (l: string, i: number) => `[ ${(100 + i / 1000).toFixed(6).padStart(11)}] ${l}`],
    ['dmesg with caller ids', (l: string, i: number) => `[  ${(100 + i / 1000).toFixed(6)}][    T29] ${l}`],
    ['/dev/kmsg', (l: string, i: number) => `${i % 8},${i},${100_000_000 + i},-;${l}`],
    ['syslog', (l: string) => `Dec  2 03:04:17 lab kernel: ${l}`],
    [
      'journalctl -o short-monotonic',
      (l: string, i: number) => `[  ${(100 + i / 1000).toFixed(6)}] lab kernel: ${l}`,
    ],
    ['dmesg -x', (l: string) => `kern  :warn  : ${l}`],
  ])('reads the 6.12 lab log with %s prefixes the same', (_name, prefix) => {
    const text = `${lines.map((l, i) => prefix(l, i)).join('\n')}\n`;
    const got = parseOomReports(text).reports;
    expect(got.map(content)).toEqual(reference);
  });

  it('skips the dictionary lines of /dev/kmsg records', () => {
    const text = `${lines.map((l, i) => `4,${i},${i},-;${l}\n SUBSYSTEM=misc\n DEVICE=c10:0`).join('\n')}\n`;
    expect(parseOomReports(text).reports.map(content)).toEqual(reference);
  });
});

describe('older formats (built from each version’s printk format strings, test/oom-formats.ts)', () => {
  it('4.4: no flag names, zone lines with every counter, the score line and the kill', () => {
    const [r, ...rest] = parseOomReports(OLDER_FORMATS['4.4']()).reports;
    expect(rest).toEqual([]);
    expect(r!.missing).toEqual([]);
    expect(r!.trigger).toEqual({ comm: 'msl_hog', gfpMask: 0x24201ca, order: 0, oomScoreAdj: 0 });
    expect(r!.constraint).toEqual({ cpuset: '/', memsAllowed: '0' });
    expect(r!.task).toMatchObject({ pid: 2201, comm: 'msl_hog', kernelRelease: '4.4.155' });
    expect(r!.hardware).toMatch(/^QEMU Standard PC/);
    expect(r!.callTrace).toHaveLength(8);
    expect(r!.callTrace[0]).toEqual({
      func: 'dump_stack',
      offset: 0x63,
      length: 0x90,
      address: 'ffffffff813f9d93',
    });
    expect(r!.nodes).toEqual([]);
    expect(
      r!.zones.map((z) => [z.node, z.zone, z.kB.managed, z.kB.kernel_stack, z.counts.pages_scanned]),
    ).toEqual([
      [0, 'DMA', 15908, 0, 0],
      [0, 'DMA32', 4028196, 4800, 5012],
    ]);
    expect(r!.zones[1]!.allUnreclaimable).toBe(true);
    expect(r!.zones[0]!.lowmemReserve).toEqual([0, 3455, 3886, 3886]);
    expect(r!.freeAreas.map((a) => [a.node, a.zone, a.totalKB])).toEqual([
      [0, 'DMA', 15908],
      [0, 'DMA32', 32092],
    ]);
    expect(r!.hugepages).toEqual([{ node: 0, total: 0, free: 0, surplus: 0, sizeKB: 2048 }]);
    expect(r!.swapCachePages).toBe(0);
    expect(r!.totalSwapKB).toBe(0);
    expect(r!.hwpoisonedPages).toBe(0);
    expect(r!.taskColumns).toEqual([
      'uid',
      'tgid',
      'total_vm',
      'rss',
      'nr_ptes',
      'nr_pmds',
      'swapents',
      'oom_score_adj',
    ]);
    expect(r!.tasks.map((t) => [t.pid, t.name, t.rssPages, t.nrPtes, t.oomScoreAdj])).toEqual([
      [1, 'systemd', 1100, 21, 0],
      [412, 'systemd-udevd', 900, 23, -1000],
      [980, 'rsyslogd', 2900, 40, 0],
      [2201, 'msl_hog', 917504, 1800, 0],
    ]);
    expect(r!.chosen).toEqual({ message: 'Out of memory', pid: 2201, comm: 'msl_hog', score: 877 });
    expect(r!.killed).toMatchObject({ message: 'Out of memory', pid: 2201, score: 877, anonRssKB: 3668816 });
    expect(r!.killed!.shmemRssKB).toBeUndefined();
  });

  it('4.9: nodemask in the header, flag names, the per-node line and the oom_reaper', () => {
    const [r] = parseOomReports(OLDER_FORMATS['4.9']()).reports;
    expect(r!.trigger).toEqual({
      comm: 'msl_hog',
      gfpMask: 0x24280ca,
      gfpFlags: ['GFP_HIGHUSER_MOVABLE', '__GFP_ZERO'],
      order: 0,
      oomScoreAdj: 0,
      nodemask: '0',
    });
    expect(r!.nodes[0]!.kB.shmem).toBe(8400);
    expect(r!.zones[0]).toMatchObject({ zone: 'DMA32', kB: { slab_unreclaimable: 56000 } });
    expect(r!.freeAreas[0]!.totalKB).toBe(48000);
    expect(r!.killed?.shmemRssKB).toBe(0);
    expect(r!.reaped).toEqual({
      pid: 2201,
      comm: 'msl_hog',
      anonRssKB: 0,
      fileRssKB: 0,
      shmemRssKB: 0,
      line: 37,
    });
  });

  it('4.19: a memcg report with Task in ... killed, one-line v1 stats per cgroup', () => {
    const [r] = parseOomReports(OLDER_FORMATS['4.19']()).reports;
    expect(r!.trigger?.nodemask).toBe('(null)');
    expect(r!.memcg).toMatchObject({
      taskIn: '/batch/job1',
      limitOf: '/batch',
      path: '/batch',
      memory: { usageKB: 524288, limitKB: 524288, failcnt: 4211 },
      kmem: { usageKB: 6120 },
    });
    expect(r!.memcg!.children).toEqual([
      {
        path: '/batch/job1',
        stats: expect.objectContaining({
          rss: 517120 * 1024,
          cache: 1024 * 1024,
          active_anon: 517120 * 1024,
        }),
      },
    ]);
    expect(r!.tasks.map((t) => t.pgtablesBytes)).toEqual([1134592, 57344]);
    expect(r!.killed).toMatchObject({ message: 'Memory cgroup out of memory', pid: 3301, score: 989 });
    expect(r!.reaped?.pid).toBe(3301);
  });

  it('5.4: the oom-kill: summary with a multi-node mems_allowed, memory.stat lines', () => {
    const [r] = parseOomReports(OLDER_FORMATS['5.4']()).reports;
    expect(r!.constraint).toEqual({
      constraint: 'CONSTRAINT_MEMCG',
      nodemask: '(null)',
      cpuset: '/',
      memsAllowed: '0-1,3',
      oomMemcg: '/system.slice/app.service',
      taskMemcg: '/system.slice/app.service',
      task: 'node',
      pid: 4401,
      uid: 998,
    });
    expect(r!.memcg?.stats).toMatchObject({ anon: 264241152, slab_unreclaimable: 1462272, pgfault: 66200 });
    expect(r!.killed).toMatchObject({ uid: 998, pgtablesKB: 768, oomScoreAdj: 0 });
    expect(r!.callTrace.map((f) => f.func)).not.toContain('__switch_to_asm');
  });

  it('5.15: kernel_stack per node, kernel_misc_reclaimable, unreclaimable slab', () => {
    const [r] = parseOomReports(OLDER_FORMATS['5.15']()).reports;
    expect(r!.trigger?.oomScoreAdj).toBe(-1000);
    expect(r!.memInfo?.kernel_misc_reclaimable).toBe(0);
    expect(r!.nodes[0]!.kB).toMatchObject({ kernel_stack: 9216, shmem_thp: 0, pagetables: 6000 });
    expect(r!.unreclaimableSlab[0]).toEqual({ name: 'kmalloc-2k', usedKB: 3521000, totalKB: 3522000 });
    expect(r!.constraint?.taskMemcg).toBe('/system.slice/java.service');
    expect(r!.tasks.find((t) => t.name === 'sshd')?.oomScoreAdj).toBe(-1000);
  });
});

describe('partial and malformed logs', () => {
  it('returns no reports for a log without any', () => {
    expect(parseOomReports('[    0.000000] Linux version 6.1.0\n[    1.0] Run /init\n')).toEqual({
      reports: [],
      lines: 2,
    });
  });

  it('keeps a kill whose header was lost (the ring wrapped) and says so', () => {
    const text = fixture('oom-live-6.18', 'memcg-v1.dmesg').split('\n').slice(60).join('\n');
    const [r] = parseOomReports(text).reports;
    expect(r!.missing).toContain('header');
    expect(r!.killed?.comm).toBe('tail');
  });

  it('says when the victim is missing (the log ends mid-report)', () => {
    const text = fixture('oom-live-6.18', 'memcg-v1.dmesg').split('\n').slice(0, 40).join('\n');
    expect(parseOomReports(text).reports[0]!.missing).toEqual(['victim']);
  });

  it('names file and line of a header that does not parse', () => {
    expectParseError(
      () => parseOomReports('ok\nfoo invoked oom-killer: gfp_mask=zz, order=0\n', { file: 'k.log' }),
      {
        line: 2,
        file: 'k.log',
        message: ['k.log:2', 'invoked oom-killer'],
      },
    );
  });

  it('names a task row with the wrong number of columns', () => {
    const text = fixture('oom-6.12', 'console.log').replace(
      '[     40]     0    40    55757    55650    55488        0       162   483328        0             0 msl_hog',
      '[     40]     0    40    55757 msl_hog',
    );
    expectParseError(() => parseOomReports(text, { file: 'c.log' }), {
      line: 233,
      message: ['c.log:233', 'task row', '10 numbers'],
    });
  });

  it('names a truncated free-area line and a garbled kill line', () => {
    const text = fixture('oom-6.12', 'console.log');
    expectParseError(
      () => parseOomReports(text.replace('0*4096kB = 1288kB', '0*4096kB = '), { file: 'c.log' }),
      {
        line: 215,
        message: ['c.log:215', '= <n>kB'],
      },
    );
    expectParseError(
      () =>
        parseOomReports(
          text.replace(
            'Killed process 40 (msl_hog) total-vm:223028kB',
            'Killed process 40 (msl_hog) total-vm:x',
          ),
          {
            file: 'c.log',
          },
        ),
      { line: 235, message: ['Killed process'] },
    );
  });
});

describe('a saved /dev/kmsg with multi-line records', () => {
  it('splits the escaped newlines of a 5.x memory.stat record', () => {
    const text = OLDER_FORMATS['5.4']()
      .replace(/\nanon 264241152\n([\s\S]*?)pgmajfault 0\n/, (_m, body: string) => {
        return `\nanon 264241152\\x0a${body.replace(/\n/g, '\\x0a')}pgmajfault 0\\x0a\n`;
      })
      .split('\n')
      .filter((l) => l !== '')
      .map((l, i) => `6,${i},${1000 + i},-;${l}`)
      .join('\n');
    const plain = parseOomReports(OLDER_FORMATS['5.4']()).reports[0]!;
    const [r] = parseOomReports(text).reports;
    expect(r!.memcg?.stats).toEqual(plain.memcg?.stats);
    expect(Object.keys(r!.memcg!.stats)).toHaveLength(19);
  });
});

describe('damaged logs never crash the parser', () => {
  // A deterministic generator (mulberry32), so a failure names its seed.
  const rng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const base = fixture('oom-6.12', 'console.log').split('\n');
  it.each(Array.from({ length: 40 }, (_, i) => i + 1))(
    'seed %i: cut, dropped and duplicated lines',
    (seed) => {
      const rand = rng(seed);
      const lines = base.flatMap((l) => {
        const x = rand();
        if (x < 0.05) return [];
        if (x < 0.1) return [l.slice(0, Math.floor(rand() * l.length))];
        if (x < 0.12) return [l, l];
        return [l];
      });
      try {
        const log = parseOomReports(lines.join('\n'), { file: `seed-${seed}` });
        for (const r of log.reports) expect(r.endLine).toBeGreaterThanOrEqual(r.line);
      } catch (e) {
        expect((e as { code?: string }).code, String(e)).toBe('PARSE');
        expect(String((e as Error).message)).toMatch(new RegExp(`^seed-${seed}:\\d+: expected `));
      }
    },
  );
});
