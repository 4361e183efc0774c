import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_BIN, labBundle, labFixture, REPO_FIXTURES } from '../paths.js';
import { cli } from '../run.js';

describe('memsleuth kmemleak report', () => {
  it('groups a snapshot report by backtrace', async () => {
    for (const snap of [labFixture('6.12', 'after'), labBundle('6.12', 'after')]) {
      const r = await cli(['kmemleak', 'report', snap]);
      expect(r.status).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe('440 unreferenced objects (357.5 KiB) in 2 groups by backtrace');
      expect(lines[2]).toMatch(
        /^ +400 +37\.5 KiB +kworker\/0:2 \(399\), kwor… +msl_slab_leak \[msl_leaky\]$/,
      );
      expect(lines[3]).toMatch(/^ +40 +320\.0 KiB .* msl_vmalloc_leak \[msl_leaky\]$/);
    }
  });

  it('reads the kmemleak file of a .tar.gz snapshot bundle made with tar (./ member names)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-kml-bundle-'));
    try {
      const bundle = join(dir, 'after.tar.gz');
      execFileSync('tar', ['czf', bundle, '-C', labFixture('6.12', 'after'), '.']);
      const r = await cli(['kmemleak', 'report', '--by', 'culprit', bundle]);
      expect(r.status).toBe(0);
      expect(r.stdout.split('\n')[0]).toBe('440 unreferenced objects (357.5 KiB) in 2 groups by culprit');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('exports collapsed stacks by bytes for flame graphs', async () => {
    const r = await cli(['kmemleak', 'report', '--collapsed', '-', labFixture('6.12', 'after')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatch(
      /^ret_from_fork_asm;.*;msl_vmalloc_leak_\[msl_leaky\];__vmalloc_node_noprof;.*;kmemleak_vmalloc 327680$/,
    );
    expect(lines[1]).toMatch(/^ret_from_fork_asm;.*;msl_slab_leak_\[msl_leaky\];__kmalloc_noprof 38400$/);
  });

  it('reads a saved report file, groups by comm, and prints JSON', async () => {
    const r = await cli([
      'kmemleak',
      'report',
      '--by',
      'culprit',
      '--json',
      join(REPO_FIXTURES, 'kmemleak-docs', 'nvme-6.19-percpu.kmemleak'),
    ]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.reports).toBe(4);
    expect(j.groups.map((g: { culprit: { func: string } }) => g.culprit.func).sort()).toEqual(
      ['__blk_mq_realloc_hw_ctxs', 'blk_alloc_queue', 'blk_alloc_queue_stats', 'percpu_ref_init'].sort(),
    );
  });

  it('points at the bad line of a malformed report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-kml-'));
    try {
      const lines = readFileSync(join(labFixture('6.1', 'after'), 'kmemleak'), 'utf8')
        .split('\n')
        .slice(0, 14);
      lines[8] = '    ?? garbage ??';
      writeFileSync(join(dir, 'bad'), lines.join('\n'));
      const r = await cli(['kmemleak', 'report', join(dir, 'bad')]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/bad:9: expected a frame like/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('memsleuth kmemleak watch over saved reports', () => {
  it('marks the slab leak backtrace growing over the lab scans', async () => {
    const r = await cli([
      'kmemleak',
      'watch',
      ...(['before', 'mid', 'after'] as const).map((m) => labFixture('6.1', m)),
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Growing \(2\)/);
    expect(r.stdout).toMatch(/growing +0 → 0 → 400 +\+400 +msl_slab_leak \[msl_leaky\]/);
    expect(r.stdout).toMatch(/growing +0 → 0 → 40 +\+40 +msl_vmalloc_leak \[msl_leaky\]/);
    const j = JSON.parse(
      (await cli(['kmemleak', 'watch', '--json', labFixture('6.12', 'mid'), labFixture('6.12', 'after')]))
        .stdout,
    );
    expect(j.growing.map((g: { culprit: { func: string } }) => g.culprit.func)).toEqual([
      'msl_slab_leak',
      'msl_vmalloc_leak',
    ]);
  });

  it('needs two reports', async () => {
    const r = await cli(['kmemleak', 'watch', labFixture('6.1', 'after')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/at least two saved reports/);
  });
});

// This machine runs a 6.18 kernel without CONFIG_DEBUG_KMEMLEAK: the live commands must fail
// clearly, and must not leave anything changed.
describe('memsleuth kmemleak scan/watch live on this machine', () => {
  const mounts = () => readFileSync('/proc/mounts', 'utf8');
  it('fails with a clear reason and hint, as root', async () => {
    const before = mounts();
    for (const args of [
      ['kmemleak', 'scan'],
      ['kmemleak', 'scan', '--clear'],
      ['kmemleak', 'watch', '--interval', '1', '--count', '1'],
      ['kmemleak', 'report'],
    ]) {
      const r = await cli(args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(
        /memsleuth: (debugfs is not mounted at \/sys\/kernel\/debug|\/sys\/kernel\/debug\/kmemleak does not exist: this kernel was built without CONFIG_DEBUG_KMEMLEAK)\nhint: /,
      );
    }
    expect(mounts()).toBe(before);
  });

  it('fails with PERMISSION as an unprivileged user', async () => {
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI_BIN, 'kmemleak', 'scan'],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'memsleuth: kmemleak needs root: debugfs is readable by root only\nhint: run as root, e.g. `sudo memsleuth kmemleak scan`\n',
    );
  });
});
