import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_FIXTURES } from '../../test/paths.js';
import { RecordingReader } from '../store/recording.js';
import {
  accountingSeries,
  accountingView,
  diffTimes,
  MEM_AVAILABLE,
  readSeries,
  recordingLeaks,
  suspectView,
} from './recording.js';

const reader = new RecordingReader(join(REPO_FIXTURES, 'recordings', 'bench-linux-6.18.db'));
afterAll(() => reader.close());

describe('accountingSeries (the scenario suite recording)', () => {
  const acc = accountingSeries(reader);
  const all = reader.load({ maxPoints: Number.MAX_SAFE_INTEGER, layers: ['meminfo', 'unaccounted'] }).series;
  const memTotal = all.find((s) => s.key === 'MemTotal')!;
  const unaccounted = all.find((s) => s.layer === 'unaccounted')!;

  it('has every tick, the layers summing to MemTotal, unaccounted as the recorder saw it', () => {
    expect(acc.t).toEqual(memTotal.t);
    expect(acc.ticks).toBe(reader.span().ticks);
    acc.t.forEach((_, i) => {
      expect(acc.layers.reduce((s, l) => s + l[i]!, 0)).toBe(memTotal.v[i]);
    });
    expect(acc.layers[5]).toEqual(unaccounted.v);
  });

  it('downsamples whole ticks only', () => {
    const v = accountingView(acc, { buckets: 10 });
    expect(v.t.length).toBeLessThanOrEqual(22);
    for (const [k, l] of v.layers.entries())
      v.t.forEach((t, i) => {
        expect(l.bytes[i]).toBe(acc.layers[k]![acc.t.indexOf(t)]);
      });
  });
});

describe('suspects', () => {
  const leaks = recordingLeaks(reader);
  const raws = readSeries(reader, [...leaks.suspects, MEM_AVAILABLE]);

  it('reads every suspect series (sums like anon+swap included) in one pass', () => {
    expect(raws.length).toBe(leaks.suspects.length + 1);
    for (const s of leaks.suspects) {
      const raw = raws.find((r) => r.id === s.id && r.metric === s.metric)!;
      expect(raw.v[raw.v.length - 1]).toBe(s.last);
    }
  });

  it("fits the suspect's rate from its 'since'", () => {
    const s = leaks.suspects[0]!;
    const raw = raws.find((r) => r.id === s.id && r.metric === s.metric)!;
    const v = suspectView(raw, s);
    expect(v.fit!.fromMs).toBe(s.sinceMs);
    expect(v.fit!.slopePerMs * 3_600_000).toBeCloseTo(s.ratePerHour, 6);
    // The fitted line ends near the last value: it goes through the points.
    const end = v.fit!.intercept + v.fit!.slopePerMs * (v.fit!.toMs - v.fit!.fromMs);
    expect(Math.abs(end - s.last) / s.last).toBeLessThan(0.2);
  });
});

describe('diffTimes', () => {
  it('compares every series between two ticks, biggest byte gain first', () => {
    const span = reader.span();
    const rows = diffTimes(reader, span.firstMs!, span.lastMs!);
    const shmem = rows.find((r) => r.id === 'meminfo/Shmem')!;
    const s = readSeries(reader, [{ id: 'meminfo/Shmem', metric: 'bytes' }])[0]!;
    expect([shmem.before, shmem.after]).toEqual([s.v[0], s.v[s.v.length - 1]]);
    const bytes = rows.filter((r) => r.unit === 'bytes').map((r) => r.delta);
    expect(bytes).toEqual([...bytes].sort((a, b) => b - a));
  });
});
