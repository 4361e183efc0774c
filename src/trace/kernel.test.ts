import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/parsers.js';
import { parseFtraceFormat } from '../sources/ftrace_format.js';
import { inSample, planKmemEvents, sampleCondition } from './kernel.js';

// Which fields each event has: this machine's 6.18 formats, and 6.1's (no kmalloc_node
// since 6.0 either; kmem_cache_alloc without `name`).
const FIELDS_618 = new Map(
  [
    'kmalloc',
    'kmem_cache_alloc',
    'kfree',
    'kmem_cache_free',
    'mm_page_alloc',
    'mm_page_free',
    'mm_page_free_batched',
  ].map((e) => [
    e,
    new Set(parseFtraceFormat(fixture('trace-6.18', `format.kmem.${e}`)).fields.map((f) => f.name)),
  ]),
);
const fields618 = (e: string) => FIELDS_618.get(e);
const fields61 = (e: string) => {
  const f = FIELDS_618.get(e);
  if (f && e === 'kmem_cache_alloc') return new Set([...f].filter((x) => x !== 'name'));
  return f;
};

describe('kmem event plan', () => {
  it('by default: every kmem event this kernel has, stacks on allocations only, no movable pages', () => {
    const { plan, notes } = planKmemEvents({}, 1, fields618);
    expect(plan).toEqual([
      { system: 'kmem', event: 'kmalloc', filter: '', stack: true },
      { system: 'kmem', event: 'kfree', filter: '', stack: false },
      { system: 'kmem', event: 'kmem_cache_alloc', filter: '', stack: true },
      { system: 'kmem', event: 'kmem_cache_free', filter: '', stack: false },
      { system: 'kmem', event: 'mm_page_alloc', filter: 'migratetype != 1', stack: true },
      { system: 'kmem', event: 'mm_page_free', filter: '', stack: false },
      { system: 'kmem', event: 'mm_page_free_batched', filter: '', stack: false },
    ]);
    expect(notes).toEqual([]);
    expect(planKmemEvents({ allPages: true, stacks: false, events: ['pages'] }, 1, fields618).plan).toEqual([
      { system: 'kmem', event: 'mm_page_alloc', filter: '', stack: false },
      { system: 'kmem', event: 'mm_page_free', filter: '', stack: false },
      { system: 'kmem', event: 'mm_page_free_batched', filter: '', stack: false },
    ]);
  });

  it('a kmalloc cache becomes a range of requested sizes; a named cache its name, where the event has one', () => {
    const k = planKmemEvents({ cache: 'kmalloc-96' }, 1, fields618).plan;
    expect(k.find((p) => p.event === 'kmalloc')?.filter).toBe('bytes_req > 64 && bytes_req <= 96');
    expect(k.find((p) => p.event === 'kmem_cache_alloc')?.filter).toBe('name == "kmalloc-96"');
    expect(k.some((p) => p.event.startsWith('mm_page'))).toBe(false);
    const d = planKmemEvents({ cache: 'dentry' }, 1, fields618).plan;
    expect(d.map((p) => [p.event, p.filter])).toEqual([
      ['kmem_cache_alloc', 'name == "dentry"'],
      ['kmem_cache_free', 'name == "dentry"'],
    ]);
    // 6.1: kmem_cache_alloc has no name; objects of that size stand in, and the user is told.
    const old = planKmemEvents({ cache: 'dentry' }, 1, fields61, 192);
    expect(old.plan.find((p) => p.event === 'kmem_cache_alloc')?.filter).toBe('bytes_alloc == 192');
    expect(old.notes[0]).toMatch(/no cache name on this kernel/);
  });

  it('sampling and --min-bytes join the filters; the stack trigger gets the same condition', () => {
    const p = planKmemEvents({ minBytes: 256 }, 4, fields618).plan;
    expect(p.find((x) => x.event === 'kmalloc')?.filter).toBe('!(ptr & 0x3000) && bytes_alloc >= 256');
    expect(p.find((x) => x.event === 'kfree')?.filter).toBe('!(ptr & 0x3000)');
    expect(p.find((x) => x.event === 'mm_page_alloc')?.filter).toBe('!(pfn & 0xc00) && migratetype != 1');
  });
});

describe('address sampling', () => {
  it('the kernel filter and the tracker agree on which objects are in the sample', () => {
    expect(sampleCondition('kmalloc', 1)).toBe('');
    expect(sampleCondition('kmalloc', 16)).toBe('!(ptr & 0xf000)');
    expect(sampleCondition('mm_page_free', 16)).toBe('!(pfn & 0x3c00)');
    // xorshift32: a fixed, well-spread sequence of addresses.
    let seed = 0x9e3779b9;
    const rnd = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) & 0x3fffffff;
    };
    for (const n of [2, 4, 64]) {
      let kept = 0;
      for (let i = 0; i < 2000; i++) {
        const ptr = (0xffff888100000000n + BigInt(rnd()) * 64n).toString(16);
        const pfn = BigInt(rnd() % 2 ** 22);
        const ptrIn = ((BigInt(`0x${ptr}`) >> 12n) & BigInt(n - 1)) === 0n;
        expect(inSample(`s:${ptr}`, n)).toBe(ptrIn);
        expect(inSample(`p:${pfn.toString(16)}`, n)).toBe(((pfn >> 10n) & BigInt(n - 1)) === 0n);
        if (ptrIn) kept++;
      }
      // About 1 in n.
      expect(kept / 2000).toBeGreaterThan(0.5 / n);
      expect(kept / 2000).toBeLessThan(2 / n);
    }
  });
});
