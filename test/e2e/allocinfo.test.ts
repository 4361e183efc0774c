import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { labBundle, labFixture } from '../paths.js';
import { cli } from '../run.js';

describe('memsleuth allocinfo', () => {
  it('top: the 6.12 lab call sites by bytes, filtered to the module', async () => {
    const r = await cli(['allocinfo', 'top', '--module', 'msl_leaky', labBundle('6.12', 'after')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('33.4 MiB in 29288 live allocations from 1227 call sites (allocinfo 1.0)');
    // The module was built out of tree: its source path is cut to fit 100 columns.
    const src = '/root/.cache/memsleuth-lab/module-6.12-1371…';
    expect(lines.slice(2, 5).map((l) => l.trim().split(/\s{2,}/))).toEqual([
      ['800.0 KiB', '100', 'msl_page_leak [msl_leaky]', src],
      ['323.8 KiB', '120', 'msl_vmalloc_leak [msl_leaky]', src],
      ['75.0 KiB', '400', 'msl_slab_leak [msl_leaky]', src],
    ]);
    expect(lines.every((l) => l.length <= 100)).toBe(true);
    const j = JSON.parse(
      (await cli(['allocinfo', 'top', '--json', '--module', 'msl_leaky', labBundle('6.12', 'after')])).stdout,
    ) as { tags: { func: string; sourceFile: string; sourceLine: number }[] };
    expect(
      j.tags.slice(0, 3).map((t) => `${t.sourceFile.replace(/.*\//, '')}:${t.sourceLine} ${t.func}`),
    ).toEqual([
      'msl_leaky.c:91 msl_page_leak',
      'msl_leaky.c:104 msl_vmalloc_leak',
      'msl_leaky.c:77 msl_slab_leak',
    ]);
  });

  it('diff: the leaks grow, msl_balanced_churn does not', async () => {
    const j = JSON.parse(
      (await cli(['allocinfo', 'diff', '--json', labFixture('6.12', 'before'), labFixture('6.12', 'after')]))
        .stdout,
    ) as {
      func: string;
      deltaBytes: number;
    }[];
    const f = j.map((d) => d.func);
    for (const leak of ['msl_page_leak', 'msl_vmalloc_leak', 'msl_slab_leak']) expect(f).toContain(leak);
    expect(f).not.toContain('msl_balanced_churn');
    expect(j.every((d) => d.deltaBytes > 0)).toBe(true);
  });

  it('names what is missing: a 6.1 snapshot, and this machine (no CONFIG_MEM_ALLOC_PROFILING)', async () => {
    const r = await cli(['allocinfo', 'top', labFixture('6.1', 'after')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /allocinfo: not present in this kernel \(feature not built in or not enabled\)\nhint: this snapshot was captured without allocinfo\. To capture it: kernel 6\.10\+ with CONFIG_MEM_ALLOC_PROFILING/,
    );
    expect(existsSync('/proc/allocinfo')).toBe(false);
    const live = await cli(['allocinfo', 'top']);
    expect(live.status).toBe(2);
    expect(live.stderr).toMatch(
      /^memsleuth: \/proc\/allocinfo: not present in this kernel \(feature not built in or not enabled\)\nhint: To enable: kernel 6\.10\+/,
    );
  });
});
