import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedMoment } from '../../test/paths.js';
import type { EntitySample } from '../model/samples.js';
import { parseSmaps } from '../sources/smaps.js';
import { Sampler, smapsByName } from './sampler.js';

function byKey(es: EntitySample[], layer: string, key: string): EntitySample | undefined {
  return es.find((e) => e.layer === layer && e.key === key);
}

describe('Sampler over the lab 6.12 captures (a /proc-shaped directory)', () => {
  // The lab moments hold /proc files of a kernel running the leaky demo module; a Sampler
  // pointed at them reads them as it reads /proc.
  const sample = (moment: 'before' | 'mid' | 'after') => {
    const dir = sharedMoment('6.12', moment);
    return new Sampler({
      procRoot: dir,
      sysRoot: join(dir, 'nosys'),
      debugfsRoot: dir,
      kmemleak: true,
    }).sample().entities;
  };
  const before = sample('before');
  const after = sample('after');

  it('records allocinfo per call site, keyed file:line [module] func', () => {
    const key = 'drivers/misc/leaky/leaky.c:26 [leaky] demo_cache_fill';
    expect(byKey(after, 'allocinfo', key)?.values).toEqual({ bytes: 76800, calls: 400 });
    expect(byKey(before, 'allocinfo', key)).toBeUndefined();
    // demo_churn frees what it allocates: zero tags are not stored.
    expect(after.some((e) => e.layer === 'allocinfo' && e.key.endsWith('demo_churn'))).toBe(false);
  });

  it('sums vmalloc areas by caller function and module', () => {
    const v = byKey(after, 'vmalloc', 'demo_vbuf_grow [leaky]');
    expect(v?.values?.areas).toBe(40);
    // Each area is vmalloc(8 KiB): pages=2, so 2 pages of backing per area.
    expect(v?.values?.bytes).toBe(40 * 2 * 4096);
  });

  it('groups kmemleak reports by the first frame that is not the allocator', () => {
    const groups = after.filter((e) => e.layer === 'kmemleak');
    expect(groups.length).toBeGreaterThan(0);
    const demo = groups.filter((g) => g.key.includes('[leaky]'));
    expect(demo.length).toBeGreaterThan(0);
    expect(demo.every((g) => (g.values?.objects ?? 0) > 0 && (g.values?.bytes ?? 0) > 0)).toBe(true);
  });

  it('records every slab cache and every meminfo field, and the unaccounted remainder', () => {
    const caches = readFileSync(join(sharedMoment('6.12', 'after'), 'slabinfo'), 'utf8')
      .split('\n')
      .slice(2)
      .filter((l) => l.trim() !== '').length;
    expect(after.filter((e) => e.layer === 'slab').length).toBe(caches);
    expect(byKey(after, 'meminfo', 'MemTotal')?.values?.bytes).toBeGreaterThan(400 * 1024 * 1024);
    expect(byKey(after, 'unaccounted', 'unaccounted')?.values?.bytes).toBeTypeOf('number');
  });

  it('skips processes whose stat is missing rather than failing the tick', () => {
    expect(after.filter((e) => e.layer === 'process')).toEqual([]);
  });
});

describe('Sampler on this machine', () => {
  it('reads this process with the values of its own status file', () => {
    const s = new Sampler({ pidFilter: (p) => p === process.pid, pssEvery: 1 });
    const t = s.sample();
    const me = t.entities.find((e) => e.layer === 'process');
    expect(me?.pid).toBe(process.pid);
    expect(me?.values?.vsz_bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(me?.values?.threads).toBeGreaterThanOrEqual(1);
    expect(me?.sparse?.pss_bytes).toBeGreaterThan(0);
    expect(t.readMs).toBeGreaterThan(0);
  });

  it('groups this process smaps by mapping name, and the sizes add up to the total', () => {
    const maps = parseSmaps(readFileSync('/proc/self/smaps', 'utf8'));
    const g = smapsByName(maps);
    const total = maps.reduce((a, m) => a + (m.bytes.Size ?? 0), 0);
    const sum = [...g.values()].reduce((a, m) => a + m.size, 0);
    expect(sum).toBe(total);
    expect(g.has('[heap]') || g.has('[anon]')).toBe(true);
  });
});
