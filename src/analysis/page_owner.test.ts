import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type LabKernel, labFixture } from '../../test/paths.js';
import {
  allocatorOf,
  diffPageOwner,
  groupPageOwner,
  KERNEL_ALLOCATORS,
  PAGE_OWNER_GROUP_BY,
} from './page_owner.js';
import { toCollapsed, toSpeedscope } from './stacks.js';

const dump = (k: LabKernel, m: 'before' | 'mid' | 'after') => join(labFixture(k, m), 'page_owner');

/** Pages the kernel printed: sum of 2^order over every header line. */
function pagesInText(file: string): number {
  let n = 0;
  for (const m of readFileSync(file, 'latin1').matchAll(/^Page allocated via order (\d+),/gm))
    n += 2 ** Number(m[1]);
  return n;
}

describe('groupPageOwner', () => {
  for (const k of ['6.1', '6.12'] as const) {
    it(`${k}: every grouping accounts for every page`, async () => {
      const total = pagesInText(dump(k, 'after'));
      for (const by of PAGE_OWNER_GROUP_BY) {
        const r = await groupPageOwner(dump(k, 'after'), { by });
        expect(r.pages).toBe(total);
        expect(r.groups.reduce((s, g) => s + g.weights.pages, 0)).toBe(total);
        expect(r.bytes).toBe(total * 4096);
      }
    });
  }

  it('by module: msl_leaky holds the pages it leaked', async () => {
    const r = await groupPageOwner(dump('6.12', 'after'), { by: 'module' });
    const leaky = r.groups.find((g) => g.key === '[msl_leaky]')!;
    // 200 pages from msl_page_leak, 80+ from msl_vmalloc_leak, slab pages for the rest.
    expect(leaky.weights.pages).toBeGreaterThanOrEqual(280);
    const before = await groupPageOwner(dump('6.12', 'before'), { by: 'module' });
    expect(before.groups.find((g) => g.key === '[msl_leaky]')).toBeUndefined();
  });

  it('allocator classes: slab by page flag (6.1) or stack (6.12), vmalloc, page cache', async () => {
    for (const k of ['6.1', '6.12'] as const) {
      const r = await groupPageOwner(dump(k, 'after'), { by: 'allocator' });
      const keys = r.groups.map((g) => g.key).sort();
      expect(keys).toEqual(expect.arrayContaining(['slab', 'vmalloc', 'other']));
    }
    expect(allocatorOf({ frames: [], pageFlags: '0x10200(slab|head|zone=0)' })).toBe('slab');
    expect(allocatorOf({ frames: [{ func: 'vm_area_alloc_pages' }], pageFlags: '0x0(zone=0)' })).toBe(
      'vmalloc',
    );
    expect(allocatorOf({ frames: [{ func: 'shmem_get_folio_gfp.constprop.0' }] })).toBe('page cache');
    expect(allocatorOf({ frames: [{ func: 'do_anonymous_page' }] })).toBe('anonymous');
  });

  it('a stream (stdin) gives the same groups as the file', async () => {
    const a = await groupPageOwner(dump('6.12', 'mid'), { by: 'function' });
    const b = await groupPageOwner(createReadStream(dump('6.12', 'mid'), { highWaterMark: 5000 }), {
      by: 'function',
    });
    expect(b.groups).toEqual(a.groups);
  });

  it('flame exports carry every page', async () => {
    const r = await groupPageOwner(dump('6.1', 'after'));
    const text = toCollapsed(r.groups, 'pages');
    const sum = text
      .trim()
      .split('\n')
      .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(sum).toBe(r.pages);
    expect(text).toMatch(/;msl_page_leak_\[msl_leaky\];\S* 200$/m);
    const ss = toSpeedscope(r.groups, 'pages', 'x') as { profiles: { weights: number[] }[] };
    expect(ss.profiles[0]!.weights.reduce((s, w) => s + w, 0)).toBe(r.pages);
  });
});

describe('diffPageOwner on the lab before/after dumps', () => {
  for (const k of ['6.1', '6.12'] as const) {
    it(`${k}: msl_page_leak gains most, msl_balanced_churn ranks below every leak`, async () => {
      const d = await diffPageOwner(dump(k, 'before'), dump(k, 'after'), { allocators: KERNEL_ALLOCATORS });
      const top = d.deltas[0]!;
      expect(top.frames.some((f) => f.func === 'msl_page_leak' && f.module === 'msl_leaky')).toBe(true);
      expect(top.delta.pages).toBe(200);
      expect(top.isNew).toBe(true);
      const firstRank = (fn: string) => d.deltas.findIndex((x) => x.frames.some((f) => f.func === fn));
      const churn = firstRank('msl_balanced_churn');
      for (const leak of ['msl_page_leak', 'msl_vmalloc_leak', 'msl_slab_leak']) {
        expect(firstRank(leak)).toBeGreaterThanOrEqual(0);
        expect(firstRank(leak)).toBeLessThan(churn === -1 ? Infinity : churn);
      }
    });
  }

  it('by function: the leak functions are named, page cache excluded by default', async () => {
    const d = await diffPageOwner(dump('6.12', 'before'), dump('6.12', 'after'), {
      by: 'function',
      allocators: KERNEL_ALLOCATORS,
    });
    expect(d.deltas[0]!.key).toBe('msl_page_leak [msl_leaky]');
    const all = await diffPageOwner(dump('6.12', 'before'), dump('6.12', 'after'), { by: 'function' });
    // The guest writes each capture to tmpfs before copying it out: `after` was being
    // written while page_owner was read, and its page cache outranks the leak.
    expect(all.deltas[0]!.key).toMatch(/^shmem_/);
    expect(all.after.pages - all.before.pages).toBe(
      pagesInText(dump('6.12', 'after')) - pagesInText(dump('6.12', 'before')),
    );
  });
});
