import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedMoment } from '../paths.js';
import { runCli } from './cli.js';

describe('memsleuth allocinfo', () => {
  it('top: the 6.12 lab call sites by bytes, filtered to the module', () => {
    const r = runCli(['allocinfo', 'top', '--module', 'leaky', sharedMoment('6.12', 'after')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^55\.2 MiB in \d+ live allocations from 1221 call sites \(allocinfo 1\.0\)$/);
    expect(lines.slice(2, 5).map((l) => l.trim().split(/\s{2,}/))).toEqual([
      ['800.0 KiB', '100', 'demo_page_grab [leaky]', 'drivers/misc/leaky/leaky.c:37'],
      ['323.8 KiB', '120', 'demo_vbuf_grow [leaky]', 'drivers/misc/leaky/leaky.c:46'],
      ['75.0 KiB', '400', 'demo_cache_fill [leaky]', 'drivers/misc/leaky/leaky.c:26'],
    ]);
  });

  it('diff: the leaks grow, demo_churn does not', () => {
    const j = JSON.parse(
      runCli(['allocinfo', 'diff', '--json', sharedMoment('6.12', 'before'), sharedMoment('6.12', 'after')])
        .stdout,
    ) as {
      func: string;
      deltaBytes: number;
    }[];
    const f = j.map((d) => d.func);
    for (const leak of ['demo_page_grab', 'demo_vbuf_grow', 'demo_cache_fill']) expect(f).toContain(leak);
    expect(f).not.toContain('demo_churn');
    expect(j.every((d) => d.deltaBytes > 0)).toBe(true);
  });

  it('names what is missing: a 6.1 snapshot, and this machine (no CONFIG_MEM_ALLOC_PROFILING)', () => {
    const r = runCli(['allocinfo', 'top', sharedMoment('6.1', 'after')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /allocinfo: not present\nhint: needs kernel 6\.10\+ with CONFIG_MEM_ALLOC_PROFILING/,
    );
    expect(existsSync('/proc/allocinfo')).toBe(false);
    const live = runCli(['allocinfo', 'top']);
    expect(live.status).toBe(2);
    expect(live.stderr).toMatch(/^memsleuth: \/proc\/allocinfo: not present\n/);
  });
});
