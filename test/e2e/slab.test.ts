import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SlabTop } from '../../src/analysis/slab.js';
import { labBundle, labFixture, REPO_FIXTURES } from '../paths.js';
import { cli } from '../run.js';

describe('memsleuth slab top', () => {
  it('reads this machine: every cache of /proc/slabinfo, reclaimable flag from sysfs', async () => {
    const r = await cli(['slab', 'top', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const top = JSON.parse(r.stdout) as SlabTop;
    const names = readFileSync('/proc/slabinfo', 'utf8')
      .trim()
      .split('\n')
      .slice(2)
      .map((l) => l.split(/\s+/)[0]);
    expect(top.rows.map((x) => x.name).sort()).toEqual([...names].sort());
    expect(top.reclaimKnown).toBe(true);
    const dentry = top.rows.find((x) => x.name === 'dentry')!;
    expect(dentry.reclaimable).toBe(
      readFileSync('/sys/kernel/slab/dentry/reclaim_account', 'utf8').trim() === '1',
    );
    for (let i = 1; i < top.rows.length; i++)
      expect(top.rows[i - 1]!.cacheBytes).toBeGreaterThanOrEqual(top.rows[i]!.cacheBytes);
  });

  it('sorts a lab snapshot by slabtop letter and fits 100 columns', async () => {
    const r = await cli(['slab', 'top', '-s', 'o', '--top', '3', labBundle('6.12', 'after')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[3]).toBe(' Caches                             : 128, sorted by objects');
    expect(lines[6]).toMatch(/^25656 +24799 +97% +168 +1069 +24 +4\.2 MiB +no +kmemleak_object$/);
    expect(lines.at(-1)).toMatch(/^ +2550 +2539 +100% +80 +50 +51 +200\.0 KiB +no +kmalloc-8$/);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
  });

  it('says when a snapshot has no reclaim_account files (captures before the collector copied them)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-slab-noreclaim-'));
    try {
      cpSync(labFixture('6.12', 'after'), dir, { recursive: true });
      for (const f of readdirSync(join(dir, 'slab')))
        if (f.endsWith('.reclaim_account')) rmSync(join(dir, 'slab', f));
      const r = await cli(['slab', 'top', '-s', 'o', '--top', '3', dir]);
      expect(r.status).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[6]).toMatch(/^25656 +24799 +97% +168 +1069 +24 +4\.2 MiB +\? +kmemleak_object$/);
      expect(lines.at(-1)).toBe('RECLAIM ?: this snapshot has no slab/<cache>.reclaim_account files');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects an unknown sort key', async () => {
    const r = await cli(['slab', 'top', '--sort', 'q', labFixture('6.1', 'after')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^memsleuth: --sort: unknown key "q"\nhint: one of active, /);
  });
});

describe('memsleuth slab traces', () => {
  it('lists live objects per call site of one cache, with stacks', async () => {
    const r = await cli([
      'slab',
      'traces',
      '--cache',
      'kmalloc-96',
      '--stacks',
      '--top',
      '2',
      labFixture('6.12', 'after'),
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\d+ call sites in 1 caches, /);
    expect(r.stdout).toMatch(
      /\n +428 +80\.3 KiB +- +kmalloc-96 +11 +eventfs_create_dir\n +eventfs_create_dir\n/,
    );
    expect(r.stdout).toMatch(
      /\n +400 +75\.0 KiB +- +kmalloc-96 +8-28 +msl_slab_leak \[msl_leaky\]\n +msl_slab_leak \[msl_leaky\]\n +msl_step \[msl_leaky\]\n/,
    );
  });

  it('JSON: outstanding is the alloc count; free listings are reported, never subtracted', async () => {
    const j = JSON.parse(
      (await cli(['slab', 'traces', '--json', '--cache', 'vmap_area', labFixture('6.1', 'after')])).stdout,
    );
    const sites = j.sites as { outstanding: number; freedHere?: number; caller?: { func: string } }[];
    const text = readFileSync(`${labFixture('6.1', 'after')}/slab/vmap_area.alloc_traces`, 'utf8');
    const counts = [...text.matchAll(/^ +(\d+) /gm)].map((m) => Number(m[1]));
    expect(sites.reduce((s, x) => s + x.outstanding, 0)).toBe(counts.reduce((s, x) => s + x, 0));
  });

  it('reads <= 5.13 sysfs alloc_calls from a snapshot directory', async () => {
    const r = await cli(['slab', 'traces', `${REPO_FIXTURES}/slab-5.13-snapshot`]);
    expect(r.status).toBe(0);
    // no slabinfo in this snapshot: the object size comes from the cache name (96)
    expect(r.stdout).toMatch(/\n +400 +37\.5 KiB +- +kmalloc-96 +15-25 +demo_cache_fill \[leaky\]\n/);
  });

  it('says how to get traces when there are none (this machine: no slub_debug=U)', async () => {
    const r = await cli(['slab', 'traces']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'memsleuth: live: no slab alloc_traces or alloc_calls files\nhint: boot with slub_debug=U (or slub_debug=U,<cache>), mount debugfs, and run as root\n',
    );
  });

  it('names the caches that have traces when --cache is wrong', async () => {
    const r = await cli(['slab', 'traces', '--cache', 'nope', labFixture('6.1', 'after')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /no trace files for cache "nope"\nhint: caches with traces: 9p-fcall-cache-1, PING, /,
    );
  });
});

describe('memsleuth slab trace-diff', () => {
  it('compares two count + call trace dumps (before/after, as with /proc/slabtrace)', async () => {
    const f = (m: 'before' | 'after') => `${labFixture('6.1', m)}/slab/kmalloc-96.alloc_traces`;
    const r = await cli(['slab', 'trace-diff', f('before'), f('after')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      '1 stacks grew\nΔ COUNT  AFTER  Δ BYTES  CULPRIT\n   +400    400        -  msl_slab_leak [msl_leaky]\n',
    );
  });

  it('points at the bad line of a malformed dump', async () => {
    const r = await cli([
      'slab',
      'trace-diff',
      `${labFixture('6.1', 'after')}/slabinfo`,
      `${labFixture('6.1', 'after')}/slabinfo`,
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/slabinfo:1: expected a count line/);
  });
});
