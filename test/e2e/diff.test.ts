import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SnapshotDiff } from '../../src/registry/diff.js';
import {
  DEFAULT_MODULE_PARAMS,
  expectedLeaks,
  LAB_HOOK_TIMEOUT_MS,
  type LabRun,
  labCaptures,
} from '../lab-captures.js';
import { labBundle, labFixture } from '../paths.js';
import { cli } from '../run.js';

const EXPECTED = expectedLeaks(DEFAULT_MODULE_PARAMS);

describe.each(['6.1', '6.12'] as const)('memsleuth diff on lab %s', (k) => {
  it('--json ranks the leaks at the top of page_owner and vmallocinfo with exact counts, never msl_balanced_churn as a gainer', async () => {
    // The committed bundles, as a user would pass them.
    const r = await cli(['diff', '--json', labBundle(k, 'before'), labBundle(k, 'after')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const d = JSON.parse(r.stdout) as SnapshotDiff;
    const rows = (s: string) => d.rows.filter((x) => x.source === s);
    expect(rows('page_owner')[0]).toMatchObject({
      name: 'msl_page_leak [msl_leaky]',
      deltaCount: EXPECTED.pages,
      deltaBytes: EXPECTED.pages * 4096,
    });
    expect(rows('vmallocinfo')[0]).toMatchObject({
      name: 'msl_vmalloc_leak [msl_leaky]',
      deltaCount: EXPECTED.vmallocAreas,
      deltaBytes: EXPECTED.vmallocAreas * EXPECTED.vmallocBytesEach,
    });
    expect(rows('slab_traces').filter((x) => x.module === 'msl_leaky')[0]).toMatchObject({
      name: 'msl_slab_leak [msl_leaky]',
      detail: EXPECTED.slabCache,
      deltaCount: EXPECTED.slabObjects,
    });
    for (const s of ['kmemleak', 'slab_traces', 'vmallocinfo', 'allocinfo'])
      expect(
        d.rows.filter((x) => x.source === s && x.deltaBytes > 0 && x.name.includes('msl_balanced_churn')),
      ).toEqual([]);
    for (let i = 1; i < d.rows.length; i++)
      expect(d.rows[i - 1]!.deltaBytes).toBeGreaterThanOrEqual(d.rows[i]!.deltaBytes);
  });

  it('prints per-source gainers within 100 columns and names missing sources', async () => {
    const r = await cli(['diff', '--per-source', '3', labFixture(k, 'before'), labFixture(k, 'after')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    for (const l of lines.slice(2)) expect(l.length).toBeLessThanOrEqual(100);
    expect(r.stdout).toMatch(
      /vmallocinfo:\n.*\n\+320\.0 KiB +320\.0 KiB +\+40 areas +vmallocinfo +msl_vmalloc_leak \[msl_leaky\]/,
    );
    if (k === '6.1') expect(r.stdout).toContain('allocinfo: missing in before and after (not present)');
    else expect(r.stdout).toMatch(/allocinfo: compared, \d+ changes/);
  });
});

describe('memsleuth diff on this machine', () => {
  it('diffs two snapshots taken a moment apart and names what this kernel does not have', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-diff-live-'));
    try {
      for (const m of ['a', 'b']) {
        const s = await cli(['snapshot', '--no-smaps', '-d', join(dir, m)]);
        expect(s.status).toBe(0);
      }
      const r = await cli(['diff', '--json', join(dir, 'a'), join(dir, 'b')]);
      expect(r.status).toBe(0);
      const d = JSON.parse(r.stdout) as SnapshotDiff;
      const status = Object.fromEntries(d.sources.map((s) => [s.source, s.status]));
      expect(status).toMatchObject({
        meminfo: 'compared',
        slabinfo: 'compared',
        buddyinfo: 'compared',
        vmallocinfo: 'compared',
        processes: 'compared',
      });
      // this VM: no page_owner=on, no slub_debug=U, no kmemleak, no allocation profiling
      expect(status).toMatchObject({
        page_owner: 'missing',
        slab_traces: 'missing',
        kmemleak: 'missing',
        allocinfo: 'missing',
      });
      // free counters keep their own sign: a fall of free memory is a loss, never a gainer.
      // On a quiet machine MemFree may not move between the two: then it is no row at all
      // (unchanged fields are left out).
      const memFree = (m: string) =>
        1024 * Number(/^MemFree:\s+(\d+) kB$/m.exec(readFileSync(join(dir, m, 'meminfo'), 'utf8'))![1]);
      const free = d.rows.find((x) => x.name === 'MemFree');
      if (memFree('a') === memFree('b')) expect(free).toBeUndefined();
      else {
        expect(free).toMatchObject({ beforeBytes: memFree('a'), afterBytes: memFree('b') });
        expect(free!.deltaBytes).toBe(memFree('b') - memFree('a'));
      }
      expect(d.rows.some((x) => x.name.endsWith(' fall'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('memsleuth diff with a malformed source', () => {
  it('leaves that source out with file and line, compares the rest, exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-diff-e2e-'));
    try {
      const after = join(dir, 'after');
      cpSync(labFixture('6.1', 'after'), after, { recursive: true });
      const lines = readFileSync(join(after, 'slabinfo'), 'utf8').split('\n');
      lines[5] = 'kmalloc-96 lots of objects';
      writeFileSync(join(after, 'slabinfo'), lines.join('\n'));
      const r = await cli([
        'diff',
        '--source',
        'slabinfo',
        '--source',
        'vmallocinfo',
        labFixture('6.1', 'before'),
        after,
      ]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^memsleuth: slabinfo left out: .*after:slabinfo:6: expected /);
      expect(r.stdout).toMatch(/slabinfo: UNREADABLE: .*slabinfo:6: expected/);
      expect(r.stdout).toMatch(/vmallocinfo: compared, 2 changes/);
      expect(r.stdout).toMatch(/\+320\.0 KiB .* msl_vmalloc_leak \[msl_leaky\]/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('memsleuth diff errors', () => {
  it('needs two snapshots', async () => {
    const r = await cli(['diff', labFixture('6.1', 'before')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('memsleuth: diff needs BEFORE and AFTER snapshots\n');
  });
  it('rejects an unknown --source', async () => {
    const r = await cli([
      'diff',
      '--source',
      'nope',
      labFixture('6.1', 'before'),
      labFixture('6.1', 'after'),
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown source "nope"\nhint: one of meminfo, /);
  });
  it('names a missing snapshot', async () => {
    const r = await cli(['diff', '/nonexistent/a', '/nonexistent/b']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^memsleuth: \/nonexistent\/a: cannot open snapshot \(not present\)/);
  });
});

// The project's own lab (test/lab-captures.ts): a fresh boot of each kernel with msl_leaky,
// cached and shared with the lab tests. Exact counts come from the module's parameters.
describe.each(['6.1', '6.12'] as const)('memsleuth diff on the project lab %s (msl_leaky)', (k) => {
  let run: LabRun;
  let d: SnapshotDiff;
  beforeAll(async () => {
    run = await labCaptures(k);
    const r = await cli(['diff', '--json', run.captures.before, run.captures.after]);
    expect(r.status).toBe(0);
    d = JSON.parse(r.stdout) as SnapshotDiff;
  }, LAB_HOOK_TIMEOUT_MS);

  const rows = (s: string) => d.rows.filter((x) => x.source === s);

  it('puts msl_page_leak first in page_owner and msl_vmalloc_leak first in vmallocinfo, with exact counts', async () => {
    expect(rows('page_owner')[0]).toMatchObject({
      name: 'msl_page_leak [msl_leaky]',
      deltaCount: run.expected.pages,
    });
    expect(rows('vmallocinfo')[0]).toMatchObject({
      name: 'msl_vmalloc_leak [msl_leaky]',
      deltaCount: run.expected.vmallocAreas,
      deltaBytes: run.expected.vmallocAreas * run.expected.vmallocBytesEach,
    });
  });

  it('finds every msl_slab_leak object in slab traces, the first module call site there', async () => {
    const slab = rows('slab_traces').filter((x) => x.module === 'msl_leaky');
    expect(slab[0]).toMatchObject({
      name: 'msl_slab_leak [msl_leaky]',
      detail: run.expected.slabCache,
      deltaCount: run.expected.slabObjects,
    });
  });

  it('never lists msl_balanced_churn as a gainer in kmemleak, slab traces, vmallocinfo or allocinfo; below every leak in page_owner', async () => {
    for (const s of ['kmemleak', 'slab_traces', 'vmallocinfo', 'allocinfo'])
      expect(rows(s).filter((x) => x.deltaBytes > 0 && x.name.includes('msl_balanced_churn'))).toEqual([]);
    const po = rows('page_owner');
    const churn = po.findIndex((x) => x.name.includes('msl_balanced_churn'));
    for (const leak of ['msl_page_leak', 'msl_vmalloc_leak', 'msl_slab_leak']) {
      const i = po.findIndex((x) => x.name.includes(leak));
      expect(i).toBeGreaterThanOrEqual(0);
      if (churn >= 0) expect(i).toBeLessThan(churn);
    }
  });

  it('kmemleak watch over before, mid, after marks msl_slab_leak growing', async () => {
    const r = await cli([
      'kmemleak',
      'watch',
      '--json',
      run.captures.before,
      run.captures.mid,
      run.captures.after,
    ]);
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout) as { growing: { culprit?: { func: string }; counts: number[] }[] };
    const slab = s.growing.find((g) => g.culprit?.func === 'msl_slab_leak');
    // kmemleak may miss an object a stale word still points to (test/lab/lab-suite.ts), never add one.
    expect(slab?.counts.at(-1)).toBeGreaterThanOrEqual(run.expected.slabObjects - 1);
    expect(slab?.counts.at(-1)).toBeLessThanOrEqual(run.expected.slabObjects);
  });
});
