/**
 * memsleuth's node_exporter families against node_exporter itself (Debian's
 * prometheus-node-exporter 1.5.0, installed by scripts/ensure-deps.sh): both read the same
 * capture (node_exporter with --path.procfs pointing at the snapshot directory) and must give the
 * same families, help, types, label sets and values. And `promtool check metrics` on the
 * exporter's output: its only complaints are the camelCase names node_exporter itself has.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseExposition, seriesKey } from '../exposition.js';
import { labFixture, REPO_FIXTURES } from '../paths.js';
import { freePort, promtool, requireBinary } from '../prometheus.js';
import { cli } from '../run.js';

const NODE = /^node_(memory|vmstat|buddyinfo|slabinfo)_/;

/** One scrape of node_exporter reading `procfs` with the four collectors memsleuth shares (or `collectors`). */
async function nodeExporter(
  procfs: string,
  collectors = ['--collector.meminfo', '--collector.vmstat', '--collector.buddyinfo', '--collector.slabinfo'],
): Promise<string> {
  const bin = requireBinary('prometheus-node-exporter');
  const port = await freePort();
  const child = spawn(
    bin,
    [
      `--web.listen-address=127.0.0.1:${port}`,
      `--path.procfs=${procfs}`,
      '--collector.disable-defaults',
      ...collectors,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/metrics`);
        if (r.ok) return await r.text();
      } catch {}
      if (child.exitCode !== null || Date.now() > deadline) throw new Error('node_exporter did not answer');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

function nodeSeries(text: string): { families: Record<string, string>; series: Map<string, number> } {
  const families: Record<string, string> = {};
  const series = new Map<string, number>();
  for (const f of parseExposition(text).values()) {
    if (!NODE.test(f.name)) continue;
    families[f.name] = `${f.type} ${f.help}`;
    for (const s of f.samples) series.set(seriesKey(f.name, s.labels), s.value);
  }
  return { families, series };
}

const DIRS = () => [
  join(REPO_FIXTURES, 'live-6.18'),
  join(REPO_FIXTURES, 'lkml-2009-bug12832'),
  join(REPO_FIXTURES, 'lkml-2.6.8'),
  join(REPO_FIXTURES, 'docs-3.6'),
  labFixture('6.1', 'after'),
  labFixture('6.12', 'after'),
];

describe('the families shared with node_exporter', () => {
  it('are node_exporter’s own on the same captures: names, help, types, labels, values', async () => {
    let compared = 0;
    for (const dir of DIRS()) {
      const theirs = nodeSeries(await nodeExporter(dir));
      const res = await cli(['exporter', '--once', '--snapshot', dir, '--node-families', 'all']);
      expect(res.status, res.stderr).toBe(0);
      const ours = nodeSeries(res.stdout);
      // The one deliberate difference: a wrapped-negative %lu (2.6.29's DirectMap2M of
      // 18446744073709551613) is the negative it encodes for memsleuth, 1.8e19 for
      // node_exporter's float64.
      for (const [k, v] of theirs.series) {
        if (v < 2 ** 63) continue;
        expect(ours.series.get(k), `${dir}: ${k}`).toBeLessThan(0);
        ours.series.delete(k);
        theirs.series.delete(k);
      }
      expect(ours.families, dir).toEqual(theirs.families);
      expect(Object.fromEntries(ours.series), dir).toEqual(Object.fromEntries(theirs.series));
      compared += ours.series.size;
    }
    expect(compared).toBeGreaterThan(2500);
  }, 180_000);

  it('promtool check metrics: nothing on memsleuth’s families, on node_exporter’s only what it says of node_exporter', async () => {
    const dir = labFixture('6.12', 'after');
    const theirs = promtool(['check', 'metrics'], await nodeExporter(dir));
    const ours = await cli([
      'exporter',
      '--once',
      '--snapshot',
      dir,
      '--node-families',
      'all',
      '--pagetypeinfo',
    ]);
    const check = promtool(['check', 'metrics'], ours.stdout);
    const problems = (r: { stdout: string; stderr: string }) =>
      (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
    expect(problems(theirs).length).toBeGreaterThan(10); // node_memory_MemTotal_bytes & co.
    for (const p of problems(check)) {
      expect(p).toMatch(/^node_memory_\w+ metric names should be written in 'snake_case' not 'camelCase'$/);
      expect(problems(theirs)).toContain(p);
    }
    // Without node_exporter's names: clean.
    const own = await cli([
      'exporter',
      '--once',
      '--snapshot',
      dir,
      '--node-families',
      'none',
      '--pagetypeinfo',
    ]);
    const clean = promtool(['check', 'metrics'], own.stdout);
    expect(problems(clean)).toEqual([]);
    expect(clean.status).toBe(0);
    expect(own.stdout).toMatch(/^memsleuth_pagetype_blocks\{/m);
  }, 120_000);

  it('promtool check metrics on this machine: the same, live', async () => {
    const ours = await cli(['exporter', '--once', '--node-families', 'all']);
    expect(ours.status, ours.stderr).toBe(0);
    const theirs = promtool(['check', 'metrics'], await nodeExporter('/proc'));
    const check = promtool(['check', 'metrics'], ours.stdout);
    const lines = (r: { stdout: string; stderr: string }) =>
      (r.stdout + r.stderr).split('\n').filter(Boolean);
    for (const p of lines(check)) expect(lines(theirs)).toContain(p);
    const own = await cli(['exporter', '--once', '--node-families', 'none']);
    expect(lines(promtool(['check', 'metrics'], own.stdout))).toEqual([]);
  }, 120_000);

  it('the textfile mode is read by node_exporter’s textfile collector beside its own meminfo and vmstat', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-textfile-'));
    try {
      const w = await cli(['exporter', '--textfile', dir, '--once']);
      expect(w.status, w.stderr).toBe(0);
      const text = await nodeExporter('/proc', [
        '--collector.meminfo',
        '--collector.vmstat',
        '--collector.textfile',
        `--collector.textfile.directory=${dir}`,
      ]);
      const f = parseExposition(text);
      expect(f.get('node_textfile_scrape_error')?.samples[0]?.value).toBe(0);
      expect(f.get('node_textfile_mtime_seconds')?.samples[0]?.labels.file).toMatch(/memsleuth\.prom$/);
      expect(f.get('memsleuth_memory_layer_bytes')?.samples).toHaveLength(6);
      expect(f.get('node_memory_MemTotal_bytes')?.samples).toHaveLength(1);
      for (const c of f.get('node_scrape_collector_success')!.samples)
        expect(c.value, c.labels.collector).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
