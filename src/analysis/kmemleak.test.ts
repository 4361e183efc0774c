import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LabKernel, type LabMoment, labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { parseKmemleak } from '../sources/kmemleak.js';
import { classifyKmemleakSeries, classifyTrend, groupKmemleak, KmemleakGrouper } from './kmemleak.js';

const report = (k: LabKernel, m: LabMoment) => {
  const file = join(labFixture(k, m), 'kmemleak');
  return parseKmemleak(readFileSync(file, 'utf8'), { file });
};

describe('groupKmemleak', () => {
  it('groups the 6.12 lab report by backtrace: the slab and vmalloc leaks, nothing from msl_balanced_churn', () => {
    const groups = groupKmemleak(report('6.12', 'after'));
    expect(groups.length).toBe(2);
    expect(groups[0]).toMatchObject({
      weights: { count: 400, bytes: 400 * 96 },
      culprit: { func: 'msl_slab_leak' },
      module: 'msl_leaky',
    });
    expect(groups[1]).toMatchObject({
      weights: { count: 40, bytes: 40 * 8192 },
      culprit: { func: 'msl_vmalloc_leak' },
      module: 'msl_leaky',
    });
    // The module's delayed work ran on two kworkers.
    expect(groups[0]!.comms).toEqual({ 'kworker/0:0': 1, 'kworker/0:2': 399 });
    expect(groups.some((g) => g.frames.some((f) => f.func === 'msl_balanced_churn'))).toBe(false);
  });

  it('groups by culprit and by comm', () => {
    const r = report('6.1', 'after');
    expect(groupKmemleak(r, 'culprit').map((g) => g.key)).toEqual([
      'msl_slab_leak [msl_leaky]',
      'msl_vmalloc_leak [msl_leaky]',
    ]);
    const byComm = groupKmemleak(r, 'comm');
    expect(byComm.reduce((s, g) => s + g.weights.count, 0)).toBe(440);
    expect(byComm.every((g) => g.key.startsWith('comm:kworker/'))).toBe(true);
  });

  it('groups a report with percpu objects and unsymbolised frames', () => {
    const f = parseKmemleak(
      readFileSync(join(REPO_FIXTURES, 'kmemleak-docs', 'nvme-6.19-percpu.kmemleak'), 'utf8'),
    );
    const g = groupKmemleak(f, 'culprit');
    expect(g.map((x) => x.culprit?.func).sort()).toEqual(
      ['blk_alloc_queue', 'blk_alloc_queue_stats', 'percpu_ref_init', '__blk_mq_realloc_hw_ctxs'].sort(),
    );
    expect(g.find((x) => x.culprit?.func === 'percpu_ref_init')!.types).toEqual(['percpu']);
  });
});

describe('KmemleakGrouper columns', () => {
  it('tasks and types per group in the order first seen, over thousands of groups (tables grown)', () => {
    const g = new KmemleakGrouper();
    const types = ['virt', 'phys', 'percpu'] as const;
    // The reference: plain objects per group, as the grouper kept them before its columns.
    const ref = new Map<
      string,
      { count: number; bytes: number; comms: Record<string, number>; types: string[] }
    >();
    let seed = 7;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    for (let i = 0; i < 20_000; i++) {
      const stack = next() % 3000;
      const comm = next() % 7 === 0 ? `long-task-name-${next() % 50}` : `t${next() % 40}`;
      const type = types[next() % 3]!;
      const size = 8 << (next() % 8);
      const frames = [
        { func: '__kmalloc_noprof' },
        { func: `leaker_${stack}`, offset: 0x10, length: 0x40, module: 'drv' },
        { func: 'probe' },
      ];
      g.add({
        address: `0x${i.toString(16)}`,
        type,
        sizeBytes: size,
        comm,
        pid: i,
        jiffies: i,
        frames,
        line: i + 1,
      });
      const key = `__kmalloc_noprof;leaker_${stack} [drv];probe`;
      let r = ref.get(key);
      if (!r) {
        r = { count: 0, bytes: 0, comms: {}, types: [] };
        ref.set(key, r);
      }
      r.count++;
      r.bytes += size;
      r.comms[comm] = (r.comms[comm] ?? 0) + 1;
      if (!r.types.includes(type)) r.types.push(type);
    }
    const groups = g.result();
    expect(groups).toHaveLength(ref.size);
    for (const grp of groups) {
      const r = ref.get(grp.key)!;
      expect(grp.weights).toEqual({ count: r.count, bytes: r.bytes, pages: 0 });
      expect(Object.entries(grp.comms)).toEqual(Object.entries(r.comms));
      expect(grp.types).toEqual(r.types);
      expect(grp.culprit?.func).toBe(grp.frames[1]!.func);
      expect(grp.module).toBe('drv');
    }
    // Most objects first, then bytes, then key: the order the key strings give.
    const order = [...groups].sort(
      (a, b) =>
        b.weights.count - a.weights.count ||
        b.weights.bytes - a.weights.bytes ||
        (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
    );
    expect(groups.map((x) => x.key)).toEqual(order.map((x) => x.key));
    // top(n) builds the first n of them, the same groups field for field; size and bytes are all.
    const json = (xs: readonly object[]) => xs.map((x) => JSON.stringify(x));
    for (const n of [1, 20, 2999, 5000]) expect(json(g.top(n))).toEqual(json(groups.slice(0, n)));
    expect(g.size).toBe(groups.length);
    expect(g.bytes).toBe(groups.reduce((s, x) => s + x.weights.bytes, 0));
  });

  it('top(n) by comm and by culprit is result() cut at n, <no backtrace> in its place', () => {
    for (const by of ['comm', 'culprit', 'backtrace'] as const) {
      const g = new KmemleakGrouper(by);
      for (let i = 0; i < 500; i++)
        g.add({
          address: `0x${i.toString(16)}`,
          type: 'virt',
          sizeBytes: 8 * (1 + (i % 5)),
          comm: `t${i % 9}`,
          pid: i,
          jiffies: i,
          frames: i % 11 === 0 ? [] : [{ func: '__kmalloc_noprof' }, { func: `f${i % 37}`, module: 'm' }],
          line: i + 1,
        });
      const all = g.result().map((x) => JSON.stringify(x));
      for (const n of [1, 3, 10, 100])
        expect(g.top(n).map((x) => JSON.stringify(x))).toEqual(all.slice(0, n));
      expect(all.some((x) => x.includes('<no backtrace>'))).toBe(by !== 'comm');
    }
  });
});

describe('classifyKmemleakSeries', () => {
  it('marks the slab leak backtrace as growing over the lab scans (6.1 before, mid, after)', () => {
    const s = classifyKmemleakSeries(
      (['before', 'mid', 'after'] as const).map((m) => ({
        label: m,
        groups: groupKmemleak(report('6.1', m)),
      })),
    );
    const cache = s.rows.find((r) => r.culprit?.func === 'msl_slab_leak')!;
    expect(cache.trend).toBe('growing');
    // the mid scan ran 3 s after insmod, before kmemleak's minimum object age (5 s): no
    // report yet
    expect(cache.counts).toEqual([0, 0, 400]);
    const vbuf = s.rows.find((r) => r.culprit?.func === 'msl_vmalloc_leak')!;
    expect(vbuf.counts).toEqual([0, 0, 40]);
    expect(vbuf.trend).toBe('growing');
    expect(s.growing.map((r) => r.culprit?.func)).toEqual(['msl_slab_leak', 'msl_vmalloc_leak']);
    expect(s.rows.some((r) => r.culprit?.func === 'msl_balanced_churn')).toBe(false);
  });

  it('marks the slab leak as growing on 6.12 mid -> after (no report at mid)', () => {
    const s = classifyKmemleakSeries(
      (['mid', 'after'] as const).map((m) => ({ label: m, groups: groupKmemleak(report('6.12', m)) })),
    );
    expect(s.growing.map((r) => r.culprit?.func)).toEqual(['msl_slab_leak', 'msl_vmalloc_leak']);
  });

  it('separates one-off reports from growing ones', () => {
    expect(classifyTrend([0, 37, 400])).toBe('growing');
    expect(classifyTrend([200, 450, 900, 1700])).toBe('growing');
    expect(classifyTrend([0, 1, 0, 0])).toBe('one-off');
    expect(classifyTrend([0, 0, 1])).toBe('new');
    expect(classifyTrend([3, 3, 3])).toBe('stable');
    expect(classifyTrend([3, 5, 0])).toBe('gone');
    expect(classifyTrend([5, 1, 1, 6])).toBe('stable');
  });
});
