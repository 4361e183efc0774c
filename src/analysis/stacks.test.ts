import { describe, expect, it } from 'vitest';
import { rng } from '../../test/rng.js';
import { type Frame, ownString, parseFrame, stackKey } from '../model/frame.js';
import {
  AggregatorDiff,
  diffGroups,
  FrameTable,
  InternedStackGroup,
  StackAggregator,
  type StackGroup,
  StackTable,
  toCollapsed,
  topGroups,
} from './stacks.js';

/** Frames whose keys are prefixes of one another, with characters below and above ';'. */
const NAMES = ['foo', 'foo.isra.0', 'foo_bar', 'foo ', 'fo', 'a', 'a+b', 'zz', 'foo;', 'foo[x'];
const MODULES = [undefined, 'leaky', 'l'];

function randomStack(next: () => number): Frame[] {
  const n = next() % 4;
  const out: Frame[] = [];
  for (let i = 0; i < n; i++) {
    const module = MODULES[next() % MODULES.length];
    out.push({
      func: NAMES[next() % NAMES.length]!,
      offset: next() % 3,
      length: 0x40,
      ...(module ? { module } : {}),
    });
  }
  return out;
}

describe('StackTable', () => {
  it('interns by matching key (offsets ignored) and keeps the first frames for display', () => {
    const t = new StackTable();
    const a = t.internFrames([
      { func: 'f', offset: 1, length: 9 },
      { func: 'g', module: 'm' },
    ]);
    const b = t.internFrames([
      { func: 'f', offset: 2, length: 9 },
      { func: 'g', module: 'm' },
    ]);
    const c = t.internFrames([{ func: 'f' }, { func: 'g' }]);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(t.keyOf(a)).toBe('f;g [m]');
    expect(t.framesOf(a)[0]).toEqual({ func: 'f', offset: 1, length: 9 });
    expect(t.size).toBe(2);
    const withOffsets = new StackTable(new FrameTable(), true);
    expect(withOffsets.internFrames([{ func: 'f', offset: 1 }])).not.toBe(
      withOffsets.internFrames([{ func: 'f', offset: 2 }]),
    );
  });

  it('keeps a copy of each new frame, equal to it, with strings of its own', () => {
    const text = `${'x'.repeat(70_000)}\n driver_leaky_function_name+0x1d/0x60 [leaky_module_name]\n`;
    const f = parseFrame(text.slice(70_001, text.length - 1))!;
    const t = new FrameTable();
    const id = t.intern(f);
    expect(t.frames[id]).toEqual(f);
    expect(t.frames[id]).not.toBe(f);
    expect(t.intern({ ...f })).toBe(id);
    expect(ownString(f.func)).toBe('driver_leaky_function_name');
  });

  it('compareKeys orders stacks exactly as their key strings compare', () => {
    const t = new StackTable();
    const next = rng(7);
    const ids = new Set<number>();
    for (let i = 0; i < 400; i++) ids.add(t.internFrames(randomStack(next)));
    const list = [...ids];
    for (const a of list) {
      for (const b of list) {
        const ka = t.keyOf(a);
        const kb = t.keyOf(b);
        expect(Math.sign(t.compareKeys(a, b))).toBe(ka < kb ? -1 : ka > kb ? 1 : 0);
      }
    }
    expect(list.length).toBeGreaterThan(100);
  });

  it('keyOf is stackKey of the frames', () => {
    const t = new StackTable();
    const next = rng(3);
    for (let i = 0; i < 50; i++) {
      const frames = randomStack(next);
      expect(t.keyOf(t.internFrames(frames))).toBe(stackKey(frames));
    }
  });

  it('keeps every stack whole across the blocks of its pool (and one longer than a block)', () => {
    // Slots tagged for the first 10,000 stacks only: the rest are found without a tag.
    const t = new StackTable(new FrameTable(), false, { tagIds: 10_000 });
    const frames = Array.from({ length: 600 }, (_, i): Frame => ({ func: `f${i}` }));
    const ids = frames.map((f) => t.frames.intern(f));
    const next = rng(11);
    // About 2.8 million frame ids: past the small first blocks and many 64 K ones, runs of
    // 1 to 300 frames landing at every offset, and one run of 70,000 in between.
    const runs: number[][] = [];
    for (let i = 0; i < 19_000; i++) {
      const n = i === 9_000 ? 70_000 : 1 + (next() % 300);
      const s = next() % 300;
      const run = Array.from({ length: n }, (_, k) => ids[(s + k * 7 + i) % ids.length]!);
      runs.push(run);
    }
    const got = runs.map((r) => t.intern(r, r.length));
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i]!;
      // Interning again finds the same stack (the lookup compares the stored run).
      expect(t.intern(r, r.length)).toBe(got[i]);
      expect(t.depth(got[i]!)).toBe(r.length);
      const k = next() % r.length;
      expect(t.frameId(got[i]!, k)).toBe(r[k]);
      // The table's copy of the frame (its strings its own), one object per frame id.
      expect(t.framesOf(got[i]!)[k]).toEqual(frames[r[k]!]);
      expect(t.framesOf(got[i]!)[k]).toBe(t.frames.frames[r[k]!]);
    }
    const long = got[9_000]!;
    expect(t.keyOf(long)).toBe(stackKey(runs[9_000]!.map((id) => frames[id]!)));
    expect(t.compareKeys(long, got[9_001]!)).toBe(t.keyOf(long) < t.keyOf(got[9_001]!) ? -1 : 1);
  });

  it.each([
    ['tags', undefined],
    ['tags for the first 500 stacks only', 500],
  ])(
    'keeps frame ids of 16 bits until one does not fit, then every stack whole in 32 bits (%s)',
    (_, tagIds) => {
      const t = new StackTable(new FrameTable(), false, tagIds === undefined ? {} : { tagIds });
      // 70,000 distinct frames: ids up to 69,999.
      const frames = Array.from({ length: 70_000 }, (_, i): Frame => ({ func: `g${i}` }));
      const ids = frames.map((f) => t.frames.intern(f));
      const next = rng(3);
      const run = (lo: number, hi: number) =>
        Array.from({ length: 1 + (next() % 40) }, () => ids[lo + (next() % (hi - lo))]!);
      // Stacks of small ids (among them the largest that fits: 65,535), then ones past it.
      const runs = Array.from({ length: 3000 }, () => run(0, 65_536));
      runs.push([65_535, 0, 65_535]);
      const before = runs.map((r) => t.intern(r, r.length));
      runs.push([3, 65_536, 4], ...Array.from({ length: 3000 }, () => run(0, 70_000)));
      const got = [...before, ...runs.slice(before.length).map((r) => t.intern(r, r.length))];
      for (let i = 0; i < runs.length; i++) {
        const r = runs[i]!;
        expect(t.intern(r, r.length)).toBe(got[i]);
        expect(Array.from({ length: r.length }, (_, k) => t.frameId(got[i]!, k))).toEqual(r);
      }
    },
  );
});

describe('interned groups keep the behaviour of plain ones', () => {
  const next = rng(11);
  const stacks = Array.from({ length: 300 }, () => randomStack(next));
  const weights = stacks.map(() => ({ count: next() % 5, bytes: next() % 3, pages: next() % 4 }));

  function plain(part: number): StackGroup[] {
    const m = new Map<string, StackGroup>();
    stacks.forEach((frames, i) => {
      if (i % 3 === part) return;
      const key = stackKey(frames);
      let g = m.get(key);
      if (!g) {
        g = { key, frames, weights: { count: 0, bytes: 0, pages: 0 } };
        m.set(key, g);
      }
      g.weights.count += weights[i]!.count;
      g.weights.bytes += weights[i]!.bytes;
      g.weights.pages += weights[i]!.pages;
    });
    return [...m.values()];
  }

  function interned(part: number, table = new StackTable()): StackGroup[] {
    const agg = new StackAggregator(table);
    stacks.forEach((frames, i) => {
      if (i % 3 !== part) agg.add(frames, weights[i]!);
    });
    return agg.result();
  }

  const strip = (gs: readonly StackGroup[]) =>
    gs.map((g) => ({ key: g.key, frames: g.frames, weights: g.weights }));

  it('aggregation, topGroups, StackAggregator.top and JSON', () => {
    const p = plain(0);
    const t = new StackTable();
    const agg = new StackAggregator(t);
    stacks.forEach((frames, i) => {
      if (i % 3 !== 0) agg.add(frames, weights[i]!);
    });
    const q = agg.result();
    expect(strip(q)).toEqual(strip(p));
    for (const by of ['count', 'bytes', 'pages'] as const) {
      expect(strip(topGroups(q, by))).toEqual(strip(topGroups(p, by)));
      expect(strip(agg.top(by, 17))).toEqual(strip(topGroups(p, by, 17)));
      for (const limit of [0, 1, 2, q.length - 1, q.length, q.length + 5])
        expect(strip(agg.top(by, limit))).toEqual(strip(topGroups(p, by, limit)));
    }
    expect(JSON.parse(JSON.stringify(q))).toEqual(JSON.parse(JSON.stringify(p)));
    expect(toCollapsed(q, 'pages')).toBe(toCollapsed(p, 'pages'));
    expect(q[0]).toBeInstanceOf(InternedStackGroup);
  });

  it('StackAggregator whose stacks come out of the table order (some skipped, some older)', () => {
    // New stacks in table order first (group i is stack i), then stacks the table learnt
    // without the aggregator (a filter skipped them, or a diff's other dump had them): group
    // indexes part from stack ids, and every answer stays the plain one.
    const t = new StackTable();
    const agg = new StackAggregator(t);
    const keep = (i: number) => i % 3 !== 0;
    const early = [...stacks.keys()].filter((i) => i < 150 && keep(i));
    const skipped = [...stacks.keys()].filter((i) => i >= 150 && i < 200);
    const late = [...stacks.keys()].filter((i) => i >= 200 && keep(i));
    const order = [...early, ...late, ...skipped.filter(keep)];
    for (const i of early) agg.add(stacks[i]!, weights[i]!);
    for (const i of skipped) t.internFrames(stacks[i]!);
    for (const i of [...late, ...skipped.filter(keep)]) agg.add(stacks[i]!, weights[i]!);
    const m = new Map<string, StackGroup>();
    for (const i of order) {
      const key = stackKey(stacks[i]!);
      const g = m.get(key) ?? { key, frames: stacks[i]!, weights: { count: 0, bytes: 0, pages: 0 } };
      m.set(key, g);
      g.weights.count += weights[i]!.count;
      g.weights.bytes += weights[i]!.bytes;
      g.weights.pages += weights[i]!.pages;
    }
    const want = [...m.values()];
    expect(agg.size).toBe(want.length);
    expect(agg.result().map((g) => [g.key, g.weights])).toEqual(want.map((g) => [g.key, g.weights]));
    for (let g = 0; g < agg.size; g++) expect(agg.indexOf(agg.stackAt(g))).toBe(g);
    // A stack of the table that no record of this aggregator had.
    const none = [...skipped.filter((i) => !keep(i)).map((i) => t.internFrames(stacks[i]!))].filter(
      (id) => !agg.result().some((g) => g.stackId === id),
    );
    for (const id of none) expect(agg.indexOf(id)).toBe(-1);
    for (const by of ['count', 'bytes', 'pages'] as const)
      expect(agg.top(by, 9).map((g) => g.key)).toEqual(topGroups(want, by, 9).map((g) => g.key));
  });

  it('StackAggregator with bytesPerPage: bytes are pages times the page size', () => {
    const agg = new StackAggregator(new StackTable(), { bytesPerPage: 4096 });
    const p = plain(0);
    stacks.forEach((frames, i) => {
      if (i % 3 !== 0) agg.add(frames, { ...weights[i]!, bytes: 123 });
    });
    const q = agg.result();
    expect(q.map((g) => g.weights.bytes)).toEqual(p.map((g) => g.weights.pages * 4096));
    expect(agg.top('bytes', 17).map((g) => g.key)).toEqual(topGroups(p, 'pages', 17).map((g) => g.key));
  });

  it('diffGroups of groups in one table (by stack id) equals the diff by key strings', () => {
    const table = new StackTable();
    const b = interned(1, table);
    const a = interned(2, table);
    const fast = diffGroups(b, a, 'pages');
    const slow = diffGroups(plain(1), plain(2), 'pages');
    // Frames may show other offsets (the table keeps the first seen in either input).
    const comparable = (ds: typeof fast) =>
      ds.map((d) => ({ ...JSON.parse(JSON.stringify(d)), frames: stackKey(d.frames) }));
    expect(comparable(fast)).toEqual(comparable(slow));
    expect(fast.map((d) => d.key)).toEqual(slow.map((d) => d.key));
  });

  it('AggregatorDiff: all() is diffGroups, gained(n) and lost(n) its ends, building only those', () => {
    const table = new StackTable();
    const aggOf = (part: number) => {
      const agg = new StackAggregator(table);
      stacks.forEach((frames, i) => {
        if (i % 3 !== part) agg.add(frames, weights[i]!);
      });
      return agg;
    };
    const b = aggOf(1);
    const a = aggOf(2);
    // Frames shown for some stacks instead of the table's (diff's second dump).
    const da = new Map([[a.stackAt(0), [{ func: 'shown', offset: 1, length: 2 }]]]);
    const json = (ds: unknown) => JSON.parse(JSON.stringify(ds));
    for (const by of ['count', 'bytes', 'pages'] as const) {
      const d = new AggregatorDiff(b, a, by, undefined, da);
      const all = diffGroups(b.result(), a.result(da), by);
      expect(all.some((x) => x.isNew) && all.some((x) => x.isGone)).toBe(true);
      // Ties in the delta are many (weights 0-4): the key orders them.
      expect(new Set(all.map((x) => x.delta[by])).size).toBeLessThan(all.length / 4);
      expect(json(d.all())).toEqual(json(all));
      const up = all.filter((x) => x.delta[by] > 0);
      const down = [...all].reverse().filter((x) => x.delta[by] < 0);
      expect(up.length).toBeGreaterThan(10);
      expect(down.length).toBeGreaterThan(10);
      for (const n of [1, 3, 10, 1000]) {
        expect(json(d.gained(n))).toEqual(json(up.slice(0, n)));
        expect(json(d.lost(n))).toEqual(json(down.slice(0, n)));
      }
      expect(json(d.gained())).toEqual(json(up));
    }
    expect(() => new AggregatorDiff(new StackAggregator(), a, 'pages')).toThrow(/share a StackTable/);
  });
});
