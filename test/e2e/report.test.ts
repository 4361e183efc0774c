import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/registry/types.js';
import { type LabKernel, type LabMoment, labFixture } from '../paths.js';
import { cli } from '../run.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'memsleuth-report-e2e-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function reportJson(args: string[]): Promise<Report> {
  const r = await cli(['report', '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

/** The identity: every part, unaccounted included, sums to MemTotal exactly. */
function expectIdentity(r: Report): void {
  const a = r.accounting!;
  expect(a).toBeDefined();
  const sum = a.parts.reduce((s, p) => s + p.bytes, 0);
  expect(sum).toBe(a.memTotalBytes);
  const layers = Object.values(a.layers).reduce((s, v) => s + v, 0);
  expect(layers).toBe(a.memTotalBytes);
}

describe('memsleuth report on the lab captures', () => {
  const cases: [LabKernel, LabMoment][] = [];
  for (const k of ['6.1', '6.12'] as const)
    for (const m of ['before', 'mid', 'after'] as const) cases.push([k, m]);

  it.each(cases)('%s %s: identity holds and top consumers are listed', async (kernel, moment) => {
    const r = await reportJson([labFixture(kernel, moment)]);
    expectIdentity(r);
    // init and the collector's shell: the collector leaves kernel threads out.
    expect(r.processes!.count).toBe(2);
    expect(r.slab!.caches.length).toBe(10);
    expect(r.vmalloc!.byCaller.length).toBeGreaterThan(0);
    expect(r.buddy!.zones.map((z) => z.zone)).toContain('DMA32');
    // Buddy free pages agree with MemFree (both read within milliseconds in the guest).
    const memFree = r.accounting!.parts.find((p) => p.name === 'MemFree')!.bytes;
    expect(Math.abs(r.buddy!.totalFreeBytes - memFree)).toBeLessThan(memFree * 0.05);
  });

  it('6.12: the module’s vmalloc leak shows up as vmalloc growth by caller', async () => {
    const before = await reportJson(['--top', '100', labFixture('6.12', 'before')]);
    const after = await reportJson(['--top', '100', labFixture('6.12', 'after')]);
    const grow = after.vmalloc!.byCaller.find((c) => c.caller === 'msl_vmalloc_leak');
    expect(before.vmalloc!.byCaller.find((c) => c.caller === 'msl_vmalloc_leak')).toBeUndefined();
    expect(grow).toMatchObject({ areas: 40, bytes: 40 * 2 * 4096, module: 'msl_leaky' });
  });

  it('prints a human report that fits 100 columns', async () => {
    const dir = labFixture('6.1', 'after');
    const r = await cli(['report', dir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/MemTotal .* = user \+ shared \+ cache \+ kernel \+ free \+ unaccounted/);
    expect(r.stdout).toMatch(/^ {2}unaccounted|^unaccounted/m);
    // The title names the snapshot as given (here a long temporary path); the rest fits.
    const [title, ...rest] = r.stdout.split('\n');
    expect(title).toBe(`memsleuth report — (none), Linux 6.1.192, ${dir}, 2026-12-02T02:55:43Z, up 1m`);
    for (const line of rest) expect(line.length, line).toBeLessThanOrEqual(100);
    // Missing sources in the fixture are listed with how to enable them.
    expect(r.stdout).toMatch(/Not available in this snapshot/);
  });
});

describe('memsleuth report on this machine', () => {
  it('live: identity holds, and a bundle taken right after reproduces it', async () => {
    const live = await reportJson([]);
    expectIdentity(live);
    const bundle = join(work, 'now.tar.gz');
    const snap = await cli(['snapshot', '-o', bundle, '--no-page-owner']);
    expect(snap.status).toBe(0);
    const fromBundle = await reportJson([bundle]);
    expectIdentity(fromBundle);
    expect(fromBundle.snapshot.kernelRelease).toBe(live.snapshot.kernelRelease);
    expect(fromBundle.accounting!.memTotalBytes).toBe(live.accounting!.memTotalBytes);
    // Same moment up to the second between the two reads: every layer within 1% of RAM.
    const liveLayers = live.accounting!.layers;
    const bundleLayers = fromBundle.accounting!.layers;
    for (const layer of Object.keys(liveLayers) as (keyof typeof liveLayers)[]) {
      expect(Math.abs(liveLayers[layer] - bundleLayers[layer]), layer).toBeLessThan(
        live.accounting!.memTotalBytes * 0.01,
      );
    }
    expect(fromBundle.slab!.cacheCount).toBe(live.slab!.cacheCount);
    expect(fromBundle.slab!.reclaimKnown).toBe(true);
    const livePids = new Set(live.processes!.top.map((p) => p.pid));
    const overlap = fromBundle.processes!.top.filter((p) => livePids.has(p.pid)).length;
    expect(overlap).toBeGreaterThanOrEqual(Math.min(5, livePids.size - 2));
  });
});

describe('bad input', () => {
  it('a malformed meminfo: one line naming file and line, exit 2, no stack', async () => {
    const dir = join(work, 'bad');
    await cp(labFixture('6.1', 'before'), dir, { recursive: true });
    const text = await readFile(join(dir, 'meminfo'), 'utf8');
    await writeFile(join(dir, 'meminfo'), text.replace(/^MemFree:.*$/m, 'MemFree:   lots kB'));
    const r = await cli(['report', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^memsleuth: .*bad:meminfo:2: expected .*found .*lots/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a missing source is listed, not fatal', async () => {
    const dir = join(work, 'noslab');
    await cp(labFixture('6.12', 'mid'), dir, { recursive: true });
    await rm(join(dir, 'slabinfo'));
    const r = await reportJson([dir]);
    expect(r.slab).toBeUndefined();
    expect(r.unavailable.map((m) => m.path)).toContain('slabinfo');
  });

  it('a path that does not exist', async () => {
    const r = await cli(['report', join(work, 'missing.tar.gz')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot open snapshot/);
  });
});
