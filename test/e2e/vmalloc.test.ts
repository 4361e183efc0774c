import { describe, expect, it } from 'vitest';
import type { VmallocTop } from '../../src/analysis/vmalloc.js';
import { labFixture } from '../paths.js';
import { cli } from '../run.js';

describe('memsleuth vmalloc top', () => {
  it('groups the 6.1 lab areas by caller', async () => {
    const r = await cli(['vmalloc', 'top', '--top', '3', labFixture('6.1', 'after')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\d+ areas from \d+ callers: /);
    expect(lines[0]).toBe('46 areas from 4 callers: 348.0 KiB in pages, 548.0 KiB of address space');
    expect(lines[2]).toMatch(/^ +40 +320\.0 KiB +480\.0 KiB +vmalloc +msl_vmalloc_leak \[msl_leaky\]$/);
  });

  it('reads this machine: callers add up to the areas', async () => {
    const r = await cli(['vmalloc', 'top', '--json']);
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout) as VmallocTop;
    expect(j.totalAreas).toBeGreaterThan(0);
    expect(j.callers.reduce((s, c) => s + c.areas, 0)).toBe(j.totalAreas);
    expect(j.callers.some((c) => c.key !== '<unknown>')).toBe(true); // root sees callers
  });
});

describe('memsleuth vmalloc diff', () => {
  it('shows the 40 leaked areas as the top gain on both lab kernels', async () => {
    for (const k of ['6.1', '6.12'] as const) {
      const r = await cli(['vmalloc', 'diff', labFixture(k, 'before'), labFixture(k, 'after')]);
      expect(r.status).toBe(0);
      expect(r.stdout.split('\n')[2]).toMatch(
        /^\+320\.0 KiB +\+40 +320\.0 KiB +msl_vmalloc_leak \[msl_leaky\]$/,
      );
      expect(r.stdout).not.toContain('msl_balanced_churn');
    }
  });

  it('needs two snapshots', async () => {
    const r = await cli(['vmalloc', 'diff', labFixture('6.1', 'after')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('memsleuth: vmalloc diff needs BEFORE and AFTER snapshots\n');
  });
});
