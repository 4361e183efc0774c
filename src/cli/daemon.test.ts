import { describe, expect, it } from 'vitest';
import { CollectionSchedule } from './daemon.js';

describe('CollectionSchedule', () => {
  it('collects every `every` ticks while the processes hold steady', () => {
    const s = new CollectionSchedule(30, 200);
    const due = [];
    for (let t = 1; t <= 90; t++) if (s.due(t, 180 + (t % 7))) due.push(t);
    expect(due).toEqual([30, 60, 90]);
  });

  it('collects at once when the processes moved by `moved` from the last collection, either way', () => {
    const s = new CollectionSchedule(30, 200);
    expect(s.due(1, 180)).toBe(false);
    // 199 processes more: not yet.
    expect(s.due(2, 379)).toBe(false);
    // A build starts 1,000 processes: their first reads are garbage after this tick.
    expect(s.due(3, 1180)).toBe(true);
    expect(s.due(4, 1180)).toBe(false);
    // 199 of them exit: not yet.
    expect(s.due(5, 981)).toBe(false);
    // 200 gone since the last collection (1,180): now.
    expect(s.due(6, 980)).toBe(true);
    // Counted from 980 now.
    expect(s.due(7, 781)).toBe(false);
    expect(s.due(8, 780)).toBe(true);
    // A collection on the regular tick counts from there too.
    expect(s.due(9, 900)).toBe(false);
    expect(s.due(30, 900)).toBe(true);
    expect(s.due(31, 701)).toBe(false);
    expect(s.due(32, 1099)).toBe(false);
    expect(s.due(33, 1100)).toBe(true);
  });
});
