import { describe, expect, it } from 'vitest';
import { CollectionSchedule } from './daemon.js';

const MB = 1024 * 1024;

describe('CollectionSchedule', () => {
  it('collects every `every` ticks while the processes hold steady', () => {
    const s = new CollectionSchedule(30, 200);
    const due = [];
    for (let t = 1; t <= 90; t++) if (s.due(t, 180 + (t % 7), MB * (8 + (t % 2)))) due.push(t);
    expect(due).toEqual([30, 60, 90]);
  });

  it('collects at once when the processes moved by `moved` from the last collection, either way', () => {
    const s = new CollectionSchedule(30, 200);
    expect(s.due(1, 180, 8 * MB)).toBe(false);
    // 199 processes more: not yet.
    expect(s.due(2, 379, 8 * MB)).toBe(false);
    // A build starts 1,000 processes: their first reads are garbage after this tick.
    expect(s.due(3, 1180, 8 * MB)).toBe(true);
    expect(s.due(4, 1180, 8 * MB)).toBe(false);
    // 199 of them exit: not yet.
    expect(s.due(5, 981, 8 * MB)).toBe(false);
    // 200 gone since the last collection (1,180): now.
    expect(s.due(6, 980, 8 * MB)).toBe(true);
    // Counted from 980 now.
    expect(s.due(7, 781, 8 * MB)).toBe(false);
    expect(s.due(8, 780, 8 * MB)).toBe(true);
    // A collection on the regular tick counts from there too.
    expect(s.due(9, 900, 8 * MB)).toBe(false);
    expect(s.due(30, 900, 8 * MB)).toBe(true);
    expect(s.due(31, 701, 8 * MB)).toBe(false);
    expect(s.due(32, 1099, 8 * MB)).toBe(false);
    expect(s.due(33, 1100, 8 * MB)).toBe(true);
  });

  it('collects when the heap in use grew by `grown` over its lowest since the last collection', () => {
    const s = new CollectionSchedule(30, 200, 2 * MB);
    expect(s.due(1, 1100, 8 * MB)).toBe(false);
    // Garbage promoted by the ticks: 0.4 MB a tick.
    expect(s.due(2, 1100, 8.4 * MB)).toBe(false);
    expect(s.due(5, 1100, 9.9 * MB)).toBe(false);
    expect(s.due(6, 1100, 10 * MB)).toBe(true);
    // Counted from the first tick after the collection.
    expect(s.due(7, 1100, 8.2 * MB)).toBe(false);
    expect(s.due(8, 1100, 10.1 * MB)).toBe(false);
    // V8 collected on its own: the growth counts from the lowest seen.
    expect(s.due(9, 1100, 7 * MB)).toBe(false);
    expect(s.due(10, 1100, 8.9 * MB)).toBe(false);
    expect(s.due(11, 1100, 9 * MB)).toBe(true);
    // A heap that only moves up and down below `grown` waits for the regular tick.
    const due = [];
    for (let t = 12; t <= 60; t++) if (s.due(t, 1100, MB * (8 + (t % 3) * 0.6))) due.push(t);
    expect(due).toEqual([30, 60]);
  });
});
