/**
 * The fleet end to end: a real Prometheus (Debian's package) on loopback with a temporary data
 * directory and a 1 s scrape interval scrapes five `memsleuth exporter` processes, each reading a
 * different root:
 *
 *   live              this machine
 *   lab-replay        the lab's 6.12 captures before → mid → after, replayed in time order
 *   grow-unaccounted  a real capture (live-6.18) whose unaccounted remainder grows every 4 s
 *   grow-slab         the same capture with one slab cache (kmalloc-1k) growing half as fast
 *   stable            the same capture, unchanged
 *
 * After a little over two minutes `memsleuth fleet` must rank the fastest grown layer first,
 * find the slab cache on its host, and flag nothing on the stable host. Everything stops itself.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FleetReport } from '../../src/metrics/fleet.js';
import { type SpawnedExporter, spawnExporter } from '../exporters.js';
import { labFixture, REPO_FIXTURES } from '../paths.js';
import { promtool, type RunningPrometheus, startPrometheus } from '../prometheus.js';
import { GrowingCapture, swapLink } from '../replay.js';
import { cli } from '../run.js';

const MiB = 1024 * 1024;
const STEP_MS = 4000;
const UNACCOUNTED_STEP = 64 * MiB;
const SLAB_STEP = 32 * MiB;
const WINDOW_MS = 135_000;

const work = mkdtempSync(join(tmpdir(), 'memsleuth-fleet-'));
const exporters: SpawnedExporter[] = [];
let prom: RunningPrometheus | undefined;

afterAll(async () => {
  await prom?.stop();
  await Promise.all(exporters.map((e) => e.stop()));
  rmSync(work, { recursive: true, force: true });
});

describe('memsleuth fleet against a real Prometheus', () => {
  it('ranks the growing host’s layer first and flags no stable host', async () => {
    const base = join(REPO_FIXTURES, 'live-6.18');
    const moments = (['before', 'mid', 'after'] as const).map((m) => labFixture('6.12', m));
    const replay = join(work, 'lab-replay');
    swapLink(replay, moments[0]!);
    const unaccounted = new GrowingCapture(
      base,
      join(work, 'unaccounted'),
      { layer: 'unaccounted' },
      UNACCOUNTED_STEP,
    );
    const slab = new GrowingCapture(
      base,
      join(work, 'slab'),
      { layer: 'slab', cache: 'kmalloc-1k' },
      SLAB_STEP,
    );

    const roots: [string, string[]][] = [
      ['live', []],
      ['lab-replay', ['--snapshot', replay]],
      ['grow-unaccounted', ['--snapshot', unaccounted.path]],
      ['grow-slab', ['--snapshot', slab.path]],
      ['stable', ['--snapshot', base]],
    ];
    const started = await Promise.all(
      roots.map(([, args]) => spawnExporter(['--interval', '500ms', ...args])),
    );
    exporters.push(...started);
    prom = await startPrometheus(
      roots.map(([instance], i) => ({ instance, address: started[i]!.address })),
      { scrapeInterval: '1s' },
    );

    // Grow every STEP_MS; replay the lab moments in thirds of the window.
    const t0 = Date.now();
    for (let k = 1; Date.now() - t0 < WINDOW_MS; k++) {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + k * STEP_MS - Date.now())));
      unaccounted.step();
      slab.step();
      const third = Math.min(2, Math.floor(((Date.now() - t0) / WINDOW_MS) * 3));
      swapLink(replay, moments[third]!);
    }

    // Every target was scraped and is up.
    const up = (await fetch(`${prom.url}/api/v1/query?query=up`).then((r) => r.json())) as {
      data: { result: { metric: { instance: string }; value: [number, string] }[] };
    };
    const upBy = Object.fromEntries(up.data.result.map((r) => [r.metric.instance, r.value[1]]));
    expect(upBy).toEqual({
      live: '1',
      'lab-replay': '1',
      'grow-unaccounted': '1',
      'grow-slab': '1',
      stable: '1',
    });

    const rulesFile = join(work, 'memsleuth.rules.yml');
    const res = await cli([
      'fleet',
      '--prometheus',
      prom.url,
      '--since',
      `${Math.round((Date.now() - t0) / 1000)}s`,
      '--json',
      '--rules',
      rulesFile,
    ]);
    expect(res.stderr).toContain('wrote alert rules');
    expect(res.status).toBe(1); // suspects found
    const report = JSON.parse(res.stdout) as FleetReport & { rules: string };
    if (process.env.MEMSLEUTH_FLEET_SHOW)
      writeFileSync(`${process.env.MEMSLEUTH_FLEET_SHOW}.json`, res.stdout);
    const byInstance = (name: string) => report.suspects.filter((s) => s.instance === name);
    const summary = report.suspects
      .slice(0, 12)
      .map((s) => `${s.rank} ${s.instance} ${s.id} ${(s.ratePerHour / MiB).toFixed(0)} MiB/h ${s.confidence}`)
      .join('\n');

    // The fastest grown layer leads the fleet.
    expect(report.suspects[0], summary).toMatchObject({
      instance: 'grow-unaccounted',
      id: 'unaccounted/unaccounted',
    });
    // Its rate is the rate it grew at (Theil–Sen over a 4 s staircase of 1 s samples).
    const expected = (UNACCOUNTED_STEP / STEP_MS) * 3_600_000;
    expect(report.suspects[0]!.ratePerHour / expected).toBeGreaterThan(0.8);
    expect(report.suspects[0]!.ratePerHour / expected).toBeLessThan(1.2);
    expect(report.suspects[0]!.hoursToExhaustion).toBeGreaterThan(0);
    // Each grown host flags its grown layer and nothing else (SUnreclaim holds the slab cache).
    expect(byInstance('grow-unaccounted').map((s) => s.id)).toEqual(['unaccounted/unaccounted']);
    expect(
      byInstance('grow-slab')
        .map((s) => s.id)
        .sort(),
      summary,
    ).toEqual(['meminfo/SUnreclaim', 'slab/kmalloc-1k'].sort());
    const slabRank = byInstance('grow-slab').find((s) => s.id === 'slab/kmalloc-1k')!.rank;
    // No other host's suspect outranks the grown layers.
    const others = report.suspects.filter((s) => !s.instance.startsWith('grow-'));
    for (const o of others) expect(o.rank, summary).toBeGreaterThan(slabRank);
    // The stable host: nothing.
    expect(byInstance('stable')).toEqual([]);
    const stable = report.instances.find((i) => i.instance === 'stable')!;
    expect(stable.suspects).toBe(0);
    expect(stable.series).toBeGreaterThan(200);
    expect(report.instances.map((i) => i.instance).sort()).toEqual(
      ['grow-slab', 'grow-unaccounted', 'lab-replay', 'live', 'stable'].sort(),
    );
    for (const i of report.instances) expect(i.error, i.instance).toBeUndefined();

    // The rules it wrote load into Prometheus's rule checker.
    expect(readFileSync(rulesFile, 'utf8')).toBe(report.rules);
    const check = promtool(['check', 'rules', rulesFile]);
    expect(check.stderr + check.stdout, 'promtool check rules').toMatch(/SUCCESS: \d+ rules found/);
    expect(check.status).toBe(0);

    // The text form: the same ranking, the instances, the rules.
    const text = await cli([
      'fleet',
      '--prometheus',
      prom.url,
      '--since',
      `${Math.round((Date.now() - t0) / 1000)}s`,
    ]);
    expect(text.status).toBe(1);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+: 5 instances, last \S+ at 1s steps; \d+ queries, /);
    const first = lines[lines.findIndex((l) => /^ *# +instance/.test(l)) + 1]!;
    expect(first).toMatch(
      /^ *1 +grow-unaccounted +unaccounted +unaccounted memory +[\d.]+ GiB\/h +[\d.]+ +[\d.]+ h$/,
    );
    expect(text.stdout).toContain('Alert rules (predict_linear per layer; save as a rules file)');
    expect(text.stdout).toContain('      - alert: MemsleuthLayerUnaccountedExhausts');
    // For the documentation: MEMSLEUTH_FLEET_SHOW=FILE keeps the real output.
    if (process.env.MEMSLEUTH_FLEET_SHOW) writeFileSync(process.env.MEMSLEUTH_FLEET_SHOW, text.stdout);

    // Exporters stop cleanly on SIGTERM.
    for (const e of exporters.splice(0)) expect(await e.stop(), e.stderr()).toBe(0);
  }, 420_000);
});
