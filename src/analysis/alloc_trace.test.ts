import { describe, expect, it } from 'vitest';
import type { Frame } from '../model/frame.js';
import {
  AllocationTracker,
  rawFrames,
  type TracedAllocation,
  type TraceStack,
  traceCulprit,
  trimTraceFrames,
} from './alloc_trace.js';
import { diffGroups, toCollapsed, toSpeedscope } from './stacks.js';

const f = (func: string, module?: string): Frame => (module ? { func, module } : { func });

function alloc(
  t: AllocationTracker,
  key: string,
  bytes: number,
  time: number,
  frames: Frame[],
): TracedAllocation {
  const a: TracedAllocation = { kind: 'kmalloc', bytes, pages: 0, time, pid: 1, comm: 'x' };
  a.stackId = t.internStack(frames);
  t.alloc(key, a);
  return a;
}

describe('AllocationTracker with no events', () => {
  it('reports 0 s traced, not the trace clock since boot', () => {
    const r = new AllocationTracker().report(19_441.3);
    expect(r.durationSeconds).toBe(0);
    expect(r.counters.allocs).toBe(0);
  });
});

describe('AllocationTracker', () => {
  const leak = [f('__kmalloc_noprof'), f('msl_slab_leak', 'msl_leaky'), f('msl_step', 'msl_leaky')];
  const churn = [f('__kmalloc_noprof'), f('msl_balanced_churn', 'msl_leaky')];

  it('pairs frees with allocations and reports only what is outstanding', () => {
    const t = new AllocationTracker();
    for (let i = 0; i < 10; i++) alloc(t, `s:${i}`, 96, i, leak);
    for (let i = 0; i < 5; i++) alloc(t, `s:c${i}`, 512, i, churn);
    for (let i = 0; i < 5; i++) expect(t.free(`s:c${i}`, 10 + i)).toBeDefined();
    expect(t.free('s:never', 20)).toBeUndefined();
    const r = t.report(20);
    expect(r.counters).toMatchObject({ allocs: 15, frees: 6, unmatchedFrees: 1, replaced: 0 });
    expect(r.outstanding).toEqual({ count: 10, bytes: 960, pages: 0 });
    expect(r.byStack.length).toBe(1);
    const g = r.byStack[0]!;
    expect(g.culprit).toEqual(f('msl_slab_leak', 'msl_leaky'));
    expect(g.module).toBe('msl_leaky');
    // Ages to the end of the trace: allocated at 0..9, now 20.
    expect([g.oldestSeconds, g.newestSeconds, g.meanSeconds]).toEqual([20, 11, 15.5]);
    expect(r.byCallSite).toMatchObject([
      { name: 'msl_slab_leak [msl_leaky]', weights: { count: 10, bytes: 960 } },
    ]);
    expect(r.byModule).toMatchObject([{ name: 'msl_leaky', weights: { count: 10 } }]);
    expect(r.durationSeconds).toBe(20);
  });

  it('counts an allocation at an address still outstanding (its free was not seen)', () => {
    const t = new AllocationTracker();
    alloc(t, 's:1', 8, 0, leak);
    alloc(t, 's:1', 16, 1, leak);
    const r = t.report();
    expect(r.counters.replaced).toBe(1);
    expect(r.outstanding.bytes).toBe(16);
  });

  it('keeps only stacks that name --module, and leaves excluded allocations out', () => {
    const t = new AllocationTracker({ onlyModule: 'msl_leaky' });
    alloc(t, 's:1', 8, 0, leak);
    alloc(t, 's:2', 8, 0, [f('__kmalloc_noprof'), f('alloc_pipe_info')]);
    alloc(t, 's:3', 8, 0, leak).excluded = 'test';
    const r = t.report();
    expect(r.outstanding.count).toBe(1);
    expect(r.counters.filtered).toBe(2);
  });

  it('allocations without a stack group by call site', () => {
    const t = new AllocationTracker();
    for (const [k, site] of [
      ['s:1', 'a'],
      ['s:2', 'a'],
      ['s:3', 'b'],
    ] as const)
      t.alloc(k, {
        kind: 'kmalloc',
        bytes: 8,
        pages: 0,
        time: 0,
        pid: 1,
        comm: 'x',
        callSite: { func: site, offset: 4 },
      });
    const r = t.report();
    expect(r.byStack.map((g) => [g.key, g.weights.count])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('resampling drops what is outside the new sample and scales what stays', () => {
    const t = new AllocationTracker();
    for (let i = 0; i < 8; i++) alloc(t, `s:${i}`, 10, 0, leak);
    t.resample(4, (k) => Number(k.slice(2)) % 4 === 0);
    alloc(t, 's:9', 10, 1, leak); // outside: ignored
    alloc(t, 's:12', 10, 1, leak); // inside: counts 4
    const r = t.report();
    expect(r.sample).toBe(4);
    expect(r.outstanding).toEqual({ count: 12, bytes: 120, pages: 0 });
  });

  it('groups work with the shared exports and diff', () => {
    const t = new AllocationTracker();
    alloc(t, 's:1', 96, 0, leak);
    const before = t.report().byStack;
    alloc(t, 's:2', 96, 0, leak);
    alloc(t, 's:3', 512, 0, churn);
    const after = t.report().byStack;
    expect(toCollapsed(after, 'bytes')).toBe(
      'msl_balanced_churn_[msl_leaky];__kmalloc_noprof 512\nmsl_step_[msl_leaky];msl_slab_leak_[msl_leaky];__kmalloc_noprof 192\n',
    );
    expect(
      (toSpeedscope(after, 'bytes', 't') as { profiles: { weights: number[] }[] }).profiles[0]!.weights,
    ).toEqual([512, 192]);
    const d = diffGroups(before, after, 'bytes');
    expect(d.map((x) => [x.isNew, x.delta.bytes])).toEqual([
      [true, 512],
      [false, 96],
    ]);
  });
});

describe('AllocationTracker stacks, interned once', () => {
  const a = (stackId: number, bytes = 8): TracedAllocation => ({
    kind: 'malloc',
    bytes,
    pages: 0,
    time: 0,
    pid: 1,
    comm: 'x',
    stackId,
  });

  it('one id per distinct stack, however many allocations carry it', () => {
    const t = new AllocationTracker();
    const x = [f('__kmalloc_noprof'), f('msl_slab_leak', 'msl_leaky')];
    const y = [f('__kmalloc_noprof'), f('msl_balanced_churn', 'msl_leaky')];
    const ids = [];
    // Frames parsed anew for every event, as a trace gives them: equal, not the same objects.
    for (let i = 0; i < 1000; i++) ids.push(t.internStack((i % 2 ? y : x).map((fr) => ({ ...fr }))));
    expect(t.stackCount).toBe(2);
    expect(new Set(ids).size).toBe(2);
    expect(ids[0]).toBe(ids[2]);
    expect(ids[0]).not.toBe(ids[1]);
    for (let i = 0; i < 1000; i++) t.alloc(`s:${i}`, a(ids[i]!));
    const r = t.report();
    expect(r.byStack.map((g) => [g.key, g.weights.count])).toEqual([
      ['__kmalloc_noprof;msl_balanced_churn [msl_leaky]', 500],
      ['__kmalloc_noprof;msl_slab_leak [msl_leaky]', 500],
    ]);
  });

  it('report({ stacks: n }) builds the n heaviest groups of the full report, all else the same', () => {
    const t = new AllocationTracker();
    const comms = ['a', 'bb', 'ccc'];
    for (let i = 0; i < 3000; i++) {
      const frames = [
        f('__kmalloc_noprof'),
        f(`caller_${i % 97}`, i % 3 ? 'mod' : undefined),
        f(`top_${i % 5}`),
      ];
      const x: TracedAllocation = {
        kind: i % 4 ? 'kmalloc' : 'kmem_cache',
        bytes: 8 << (i % 4),
        pages: 0,
        time: i / 100,
        pid: i,
        comm: comms[i % 3]!,
        ...(i % 4 ? {} : { cache: `cache-${i % 2}` }),
        // Some without a stack: grouped by the call site their event named.
        ...(i % 13 === 0 ? { callSite: f(`site_${i % 4}`) } : { stackId: t.internStack(frames) }),
      };
      t.alloc(`s:${i}`, x);
    }
    const json = (r: ReturnType<AllocationTracker['report']>) => JSON.parse(JSON.stringify(r));
    const all = json(t.report(40));
    expect(all.byStack.length).toBeGreaterThan(100);
    for (const n of [0, 1, 7, 100, 10_000]) {
      const r = json(t.report(40, { stacks: n }));
      expect(r.byStack).toEqual(all.byStack.slice(0, n));
      expect({ ...r, byStack: [] }).toEqual({ ...all, byStack: [] });
    }
  });

  it('a call site is kept once, however many allocations name it', () => {
    const t = new AllocationTracker();
    const s1 = t.internFrame({ func: 'msl_slab_leak', offset: 0x31, length: 0x60, module: 'msl_leaky' });
    const s2 = t.internFrame({ func: 'msl_slab_leak', offset: 0x31, length: 0x60, module: 'msl_leaky' });
    const s3 = t.internFrame({ func: 'msl_slab_leak', offset: 0x35, length: 0x60, module: 'msl_leaky' });
    expect(s1).toBe(s2);
    expect(s3).not.toBe(s1);
    expect(s3.offset).toBe(0x35);
  });

  it('user stacks reach resolve as their addresses, kernel stacks as their frames', () => {
    const seen: TraceStack[] = [];
    const t = new AllocationTracker({
      resolve: (s) => {
        seen.push(s);
        return s.frames ?? (s.addresses ?? []).map((x) => f(x === '00000000004011a6' ? 'main' : `fn_${x}`));
      },
    });
    const u1 = t.internAddresses(['00000000004011a6', '00007f0000001000']);
    const u2 = t.internAddresses(['00000000004011a6', '00007f0000001000']);
    const k = t.internStack([f('kmalloc'), f('probe', 'drv')]);
    expect(u1).toBe(u2);
    expect(k).not.toBe(u1);
    t.alloc('h:1', a(u1, 100));
    t.alloc('h:2', a(u2, 50));
    t.alloc('s:1', a(k, 10));
    const r = t.report();
    expect(seen).toEqual([
      { addresses: ['00000000004011a6', '00007f0000001000'] },
      { frames: [f('kmalloc'), f('probe', 'drv')] },
    ]);
    expect(r.byStack.map((g) => [g.key, g.weights.bytes])).toEqual([
      ['main;fn_00007f0000001000', 150],
      ['kmalloc;probe [drv]', 10],
    ]);
    // Unresolved, a user stack's frames are its addresses.
    expect(rawFrames(t.traceStack(u1)).map((x) => x.func)).toEqual(['0x4011a6', '0x7f0000001000']);
  });

  it('stackOffsets keeps offsets apart (the first frames of each shown) and groups without them', () => {
    const t = new AllocationTracker({ stackOffsets: true });
    const s1 = t.internStack([
      { func: 'kmem_cache_alloc', offset: 0x10 },
      { func: 'leaker', offset: 0x2c },
    ]);
    const s2 = t.internStack([
      { func: 'kmem_cache_alloc', offset: 0x10 },
      { func: 'leaker', offset: 0x40 },
    ]);
    expect(s1).not.toBe(s2);
    t.alloc('a', a(s1, 32));
    t.alloc('b', a(s2, 32));
    const r = t.report();
    expect(r.byStack).toHaveLength(1);
    expect(r.byStack[0]!.key).toBe('kmem_cache_alloc;leaker');
    expect(r.byStack[0]!.weights).toEqual({ count: 2, bytes: 64, pages: 0 });
    expect(r.byStack[0]!.frames[1]!.offset).toBe(0x2c);
  });

  it('a group in JSON carries its key and every field beside it', () => {
    const t = new AllocationTracker();
    const id = t.internStack([f('__kmalloc_noprof'), f('msl_slab_leak', 'msl_leaky')]);
    t.alloc('s:1', { ...a(id, 96), kind: 'kmalloc', cache: 'kmalloc-96', comm: 'insmod', time: 1 });
    const g = JSON.parse(JSON.stringify(t.report(3).byStack[0]));
    expect(g).toEqual({
      key: '__kmalloc_noprof;msl_slab_leak [msl_leaky]',
      frames: [f('__kmalloc_noprof'), f('msl_slab_leak', 'msl_leaky')],
      weights: { count: 1, bytes: 96, pages: 0 },
      oldestSeconds: 2,
      newestSeconds: 2,
      meanSeconds: 2,
      kinds: { kmalloc: 1 },
      caches: ['kmalloc-96'],
      comms: { insmod: 1 },
      culprit: f('msl_slab_leak', 'msl_leaky'),
      module: 'msl_leaky',
    });
  });
});

describe('stack helpers', () => {
  it('drops the tracing machinery from the top of a stack', () => {
    expect(
      trimTraceFrames([f('trace_event_raw_event_kmalloc'), f('__kmalloc_noprof'), f('x')]).map((x) => x.func),
    ).toEqual(['__kmalloc_noprof', 'x']);
  });

  it('the culprit of a vmalloc is its caller, of a 6.15+ page allocation the caller of alloc_pages', () => {
    expect(
      traceCulprit([
        f('__kmalloc_node_noprof'),
        f('__get_vm_area_node'),
        f('__vmalloc_node_range_noprof'),
        f('msl_vmalloc_leak', 'msl_leaky'),
      ]),
    ).toEqual(f('msl_vmalloc_leak', 'msl_leaky'));
    expect(
      traceCulprit([f('__alloc_frozen_pages_noprof'), f('alloc_pages_mpol'), f('pte_alloc_one')]),
    ).toEqual(f('pte_alloc_one'));
  });
});
