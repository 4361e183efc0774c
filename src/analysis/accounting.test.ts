import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { parseMeminfo } from '../sources/meminfo.js';
import { parseVmstat } from '../sources/vmstat.js';
import { parseZoneinfo } from '../sources/zoneinfo.js';
import { computeAccounting, zoneTotals } from './accounting.js';

const sum = (xs: { bytes: number }[]) => xs.reduce((s, x) => s + x.bytes, 0);

describe('computeAccounting', () => {
  it.each([
    ['6.1', 'before'],
    ['6.1', 'after'],
    ['6.12', 'before'],
    ['6.12', 'after'],
  ] as const)('lab %s %s: parts sum to MemTotal and match the meminfo fields', (kernel, moment) => {
    const dir = labFixture(kernel, moment);
    const m = parseMeminfo(readFileSync(join(dir, 'meminfo'), 'utf8'));
    const v = parseVmstat(readFileSync(join(dir, 'vmstat'), 'utf8'));
    const a = computeAccounting(m, v, 4096);
    expect(sum(a.parts)).toBe(m.bytes.MemTotal);
    expect(a.parts.find((p) => p.name === 'SUnreclaim')?.bytes).toBe(m.bytes.SUnreclaim);
    expect(a.parts.find((p) => p.name === 'Cached-Shmem')?.bytes).toBe(m.bytes.Cached! - m.bytes.Shmem!);
    expect(a.absentFields).toEqual([]);
    // A small guest with no driver leaks: unaccounted stays a few percent of RAM.
    expect(a.unaccountedBytes / a.memTotalBytes).toBeLessThan(0.1);
  });

  it('a 3.x meminfo without MemAvailable, Percpu or SecPageTables still balances', () => {
    const m = parseMeminfo(readFileSync(join(REPO_FIXTURES, 'docs-3.6', 'meminfo'), 'utf8'));
    const a = computeAccounting(m);
    expect(sum(a.parts)).toBe(m.bytes.MemTotal);
    expect(a.parts.map((p) => p.name)).not.toContain('Percpu');
  });

  it('this machine’s captured meminfo: deferred-init memory is split out of MemFree', () => {
    const dir = join(REPO_FIXTURES, 'live-6.18');
    const m = parseMeminfo(readFileSync(join(dir, 'meminfo'), 'utf8'));
    const z = parseZoneinfo(readFileSync(join(dir, 'zoneinfo'), 'utf8'));
    const managed = z.zones.reduce((s, x) => s + (x.pages.managed ?? 0), 0) * 4096;
    const a = computeAccounting(m, undefined, 4096, { managedBytes: managed });
    expect(sum(a.parts)).toBe(m.bytes.MemTotal);
    const notInZones = a.parts.find((p) => p.name === 'MemFree-not-in-zones');
    expect(notInZones?.bytes).toBe(m.bytes.MemTotal! - managed);
    expect(a.layers.free).toBe(m.bytes.MemFree);
  });

  it('counts preallocated huge pages (HugePages_Total × Hugepagesize) on kernels without Hugetlb:', () => {
    // A 2.6.29-era meminfo (before Hugetlb:, 5.16) given ten preallocated huge pages.
    const text = readFileSync(join(REPO_FIXTURES, 'lkml-2009-bug12832', 'meminfo'), 'utf8').replace(
      /^HugePages_Total:.*$/m,
      'HugePages_Total:      10',
    );
    const m = parseMeminfo(text);
    expect(m.bytes.Hugetlb).toBeUndefined();
    const a = computeAccounting(m);
    expect(a.parts.find((p) => p.name === 'Hugetlb')?.bytes).toBe(10 * m.bytes.Hugepagesize!);
  });

  it('lab 6.12: free pages on per-CPU lists move from unaccounted to free, and the page leak shows', () => {
    const acc = (moment: 'before' | 'after', withZones: boolean) => {
      const dir = labFixture('6.12', moment);
      const z = parseZoneinfo(readFileSync(join(dir, 'zoneinfo'), 'utf8'));
      const m = parseMeminfo(readFileSync(join(dir, 'meminfo'), 'utf8'));
      const a = computeAccounting(m, undefined, 4096, withZones ? zoneTotals(z, 4096) : undefined);
      expect(sum(a.parts)).toBe(m.bytes.MemTotal);
      return a;
    };
    const pcp = acc('before', true).parts.find((p) => p.name === 'pcp-free')!.bytes;
    expect(pcp).toBeGreaterThan(0);
    expect(acc('before', false).unaccountedBytes - acc('before', true).unaccountedBytes).toBe(pcp);
    // msl_page_leak holds 100 order-1 blocks (800 KiB) that no counter sees.
    const grown = acc('after', true).unaccountedBytes - acc('before', true).unaccountedBytes;
    expect(grown).toBeGreaterThan(800 * 1024 * 0.75);
    expect(grown).toBeLessThan(800 * 1024 * 1.5);
  });

  it('refuses a meminfo without MemTotal', () => {
    expect(() => computeAccounting({ bytes: { MemFree: 1 }, counts: {} })).toThrow(/MemTotal/);
  });
});
