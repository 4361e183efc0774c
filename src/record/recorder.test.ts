import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { type RecordTickInfo, record } from './recorder.js';
import { Sampler } from './sampler.js';

describe('record', () => {
  // The CLI's full collections follow `processes` (src/cli/daemon.ts): it must count the
  // processes of the tick, and not move when slower sources join a tick.
  it("tells each tick's processes apart from its entities, which move with the slower cadences", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-recorder-'));
    try {
      const snapshot = () => new DirectorySnapshot(labFixture('6.12', 'after'));
      const want = (await new Sampler({ snapshot }).sample()).entities.filter(
        (e) => e.layer === 'process',
      ).length;
      expect(want).toBeGreaterThan(0);
      const ticks: RecordTickInfo[] = [];
      await record({
        db: join(dir, 'r.db'),
        intervalMs: 40,
        durationMs: 300,
        snapshot,
        slabEvery: 2,
        onTick: (i) => ticks.push(i),
      });
      expect(ticks.length).toBeGreaterThanOrEqual(3);
      expect(ticks.every((t) => t.processes === want)).toBe(true);
      // Slab caches every other tick (128 in this capture; and the first tick's once-a-minute
      // reads): the entity count moves from tick to tick, the processes not.
      expect(new Set(ticks.map((t) => t.entities)).size).toBeGreaterThan(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
