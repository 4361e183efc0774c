/**
 * Kernel allocation tracing in the lab: the collector's --trace-kmem captured the kmem
 * events (with stacks) while msl_leaky ran (lab/guest/scenario-trace-kmem.sh); memsleuth
 * must name the module's three leaking functions as outstanding, with the module's own
 * counts, and never its balanced churn path, which the trace shows allocating and freeing.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OutstandingGroup } from '../../src/analysis/alloc_trace.js';
import { analyzeKmemTrace } from '../../src/analysis/kmem_trace.js';
import { openSnapshot } from '../../src/capture/snapshot.js';
import { parseFtraceStatsFile } from '../../src/sources/ftrace_format.js';
import { parseFtraceStream } from '../../src/sources/ftrace_text.js';
import { parseSlubTraceLog } from '../../src/sources/slub_trace_log.js';
import { runCli } from '../e2e/cli.js';
import {
  expectedLeaks,
  LAB_HOOK_TIMEOUT_MS,
  type LabRun,
  labTraceKmem,
  TRACE_KMEM_SCENARIO,
} from '../lab-captures.js';

const MODULE = 'msl_leaky';

/** The innermost msl_* function of a stack (the module's own frames, not its inline copies). */
function mslFunc(g: { frames: { func: string; module?: string }[] }): string | undefined {
  return g.frames.find((f) => f.module === MODULE && f.func.startsWith('msl_'))?.func;
}

function parseCounters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of text.split('\n')) {
    const m = /^(\w+)=(\d+)$/.exec(l.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export function describeTraceLab(kernel: '6.1' | '6.12'): void {
  describe(`kernel lab ${kernel}: trace kmem`, () => {
    let run: LabRun;
    let dir: string;
    let counters: Record<string, number>;
    let groups: OutstandingGroup[];

    beforeAll(async () => {
      run = await labTraceKmem(kernel);
      dir = join(run.outDir, 'trace');
      counters = parseCounters(readFileSync(join(run.outDir, 'trace.counters'), 'utf8'));
      const a = await analyzeKmemTrace(createReadStream(join(dir, 'trace/kmem')), {
        module: MODULE,
        file: 'trace/kmem',
      });
      groups = a.report.byStack;
    }, LAB_HOOK_TIMEOUT_MS);

    it('the collector captured a complete trace and restored tracefs', async () => {
      const snap = await openSnapshot(dir);
      try {
        const man = await snap.manifest();
        expect(man.files).toContain('trace/kmem');
        expect(man.files).toContain('trace/kmem.stats');
        expect(man.kernelRelease).toBe(run.kernel.release);
      } finally {
        await snap.close();
      }
      const stats = parseFtraceStatsFile(readFileSync(join(dir, 'trace/kmem.stats'), 'utf8'));
      // One block per CPU the guest brought up (tinyconfig without ACPI: one).
      expect(stats.cpus).toBeGreaterThanOrEqual(1);
      // Nothing dropped: the exact counts below depend on every free being seen.
      expect(stats.total.droppedEvents).toBe(0);
      expect(stats.total.overrun).toBe(0);
      // The guest listed the instances after the collector ended: ours is gone.
      expect(readFileSync(join(run.outDir, 'instances-after.txt'), 'utf8').trim()).toBe('');
      expect(counters.completed).toBe(run.params.steps);
    });

    it('names msl_slab_leak, msl_page_leak and msl_vmalloc_leak as outstanding with the module’s counts', () => {
      const e = expectedLeaks(run.params);
      // The module's own allocations: the culprit (first frame outside the allocators) is
      // the leaking function. Debug metadata made for them (kmemleak's __create_object)
      // has the module in its stack too, under its own culprit.
      const own = (fn: string) => groups.filter((g) => g.culprit?.func === fn);
      const sum = (gs: OutstandingGroup[], k: 'count' | 'bytes' | 'pages') =>
        gs.reduce((n, g) => n + g.weights[k], 0);
      const slab = own('msl_slab_leak');
      expect(sum(slab, 'count')).toBe(counters.slab_leaked);
      expect(sum(slab, 'count')).toBe(e.slabObjects);
      // bytes_alloc is the object size of kmalloc-96, grown by slub_debug=U's tracking (slabinfo's objsize).
      const objsize = Number(
        readFileSync(join(dir, 'slabinfo'), 'utf8')
          .split('\n')
          .find((l) => l.startsWith(`${e.slabCache} `))!
          .trim()
          .split(/\s+/)[3],
      );
      expect(sum(slab, 'bytes')).toBe(e.slabObjects * objsize);
      for (const g of slab) expect(g.caches).toEqual([e.slabCache]);
      const pages = own('msl_page_leak');
      expect(sum(pages, 'count')).toBe(e.pageBlocks);
      expect(sum(pages, 'pages')).toBe(e.pages);
      // vmalloc: its vm_struct, vmap_area and page array are slab objects made under
      // msl_vmalloc_leak, and its pages (bulk-allocated) show where the page allocator had
      // to refill: at least one outstanding object per area, every one in the module.
      const vm = groups.filter((g) => mslFunc(g) === 'msl_vmalloc_leak');
      expect(sum(vm, 'count')).toBeGreaterThanOrEqual(e.vmallocAreas);
      expect(counters.vmalloc_leaked).toBe(e.vmallocAreas);
      // Every outstanding allocation the module made itself is one of the three leaks.
      expect(new Set(groups.filter((g) => g.culprit?.module === MODULE).map(mslFunc))).toEqual(
        new Set(['msl_slab_leak', 'msl_page_leak', 'msl_vmalloc_leak']),
      );
    });

    it('the balanced churn path allocated during the trace and none of it is outstanding', async () => {
      let churnStacks = 0;
      await parseFtraceStream(createReadStream(join(dir, 'trace/kmem')), (r) => {
        if (r.type === 'kernel-stack' && r.frames.some((f) => f.func === 'msl_balanced_churn')) churnStacks++;
      });
      // A kmalloc and a page per step.
      expect(churnStacks).toBeGreaterThanOrEqual(2 * run.params.steps);
      expect(counters.churn_frees).toBe(counters.churn_allocs);
      // None of the churn's own objects or pages is outstanding. What debugging code made
      // while it ran can be (kmemleak's metadata is freed after an RCU grace period;
      // page_owner keeps a record per new stack on 6.12): their culprit is that code's.
      expect(groups.filter((g) => g.culprit?.func === 'msl_balanced_churn')).toEqual([]);
      for (const g of groups.filter((x) => x.frames.some((f) => f.func === 'msl_balanced_churn')))
        expect(g.culprit?.module, g.culprit?.func).toBeUndefined();
    });

    it('slab trace: the TCPv6 cache’s TRACE log (slub_debug=T) pairs the sockets with the closes', () => {
      const log = join(run.outDir, 'slab-trace.log');
      const socks = Number(TRACE_KMEM_SCENARIO.guest.conf.SLAB_TRACE_SOCKETS);
      const recs = parseSlubTraceLog(readFileSync(log, 'utf8'), { file: log }).filter(
        (r) => r.cache === 'TCPv6',
      );
      const allocs = recs.filter((r) => r.op === 'alloc');
      const frees = recs.filter((r) => r.op === 'free');
      expect(allocs.length).toBe(socks);
      expect(frees.length).toBe(socks / 2);
      for (const r of allocs) {
        expect(r.comm).toBe('nc');
        expect(r.frames.map((f) => f.func)).toContain('inet6_create');
      }
      // The object dump of a free is the object: TCP's object_size on this kernel.
      const objsize = Number(
        readFileSync(join(dir, 'slabinfo'), 'utf8')
          .split('\n')
          .find((l) => l.startsWith('TCPv6 '))!
          .trim()
          .split(/\s+/)[3],
      );
      expect(frees[0]!.objectBytes).toBeGreaterThan(1000);
      expect(frees[0]!.objectBytes).toBeLessThanOrEqual(objsize);
      const r = runCli(['slab', 'trace', 'TCPv6', '--log', log, '--json']);
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as {
        method: string;
        outstanding: { count: number; bytes: number };
        byStack: OutstandingGroup[];
      };
      expect(j.method).toBe('log');
      expect(j.outstanding.count).toBe(socks / 2);
      expect(j.outstanding.bytes).toBe((socks / 2) * frees[0]!.objectBytes!);
      // sk_prot_alloc (a `.constprop.0` clone on 6.1) allocates every socket.
      for (const g of j.byStack) expect(g.culprit?.func).toMatch(/^sk_prot_alloc\b/);
    });

    it('`memsleuth trace report SNAPSHOT --module msl_leaky` prints the same', () => {
      expect(existsSync(join(dir, 'trace/kmem'))).toBe(true);
      const r = runCli(['trace', 'report', dir, '--module', MODULE, '--json']);
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { byStack: OutstandingGroup[]; counters: { lostEvents: number } };
      expect(j.counters.lostEvents).toBe(0);
      expect(j.byStack.map((g) => g.key).sort()).toEqual(groups.map((g) => g.key).sort());
      const text = runCli(['trace', 'report', dir, '--module', MODULE, '--by', 'site']);
      expect(text.stdout).toContain('msl_slab_leak [msl_leaky]');
    });
  });
}
