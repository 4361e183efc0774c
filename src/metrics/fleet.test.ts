import { describe, expect, it } from 'vitest';
import { parseExposition } from '../../test/exposition.js';
import { labFixture } from '../../test/paths.js';
import { freePort } from '../../test/prometheus.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { isMemsleuthError } from '../model/errors.js';
import type { EntitySample } from '../model/samples.js';
import { Sampler } from '../record/sampler.js';
import { reclaimableSlabCaches } from '../registry/sources/slabinfo.js';
import { Exporter } from './exporter.js';
import { analyzeFleet, dropYoungProcesses, fleetStepMs, recordingMaps, toRecording } from './fleet.js';
import type { RangeSeries } from './prometheus.js';
import { withMatchers } from './prometheus.js';
import { serveExporter } from './server.js';

/** The PromQL selectors the maps use, evaluated on an exposition: `name`, `{...}`, `=` and `=~`. */
function select(families: ReturnType<typeof parseExposition>, selector: string): Record<string, string>[] {
  const m = /^([a-zA-Z_:][\w:]*)?(?:\{(.*)\})?$/.exec(selector)!;
  const matchers = [...(m[2] ?? '').matchAll(/(\w+)(=~|=)"([^"]*)"/g)].map(([, l, op, v]) => ({
    l: l!,
    test: op === '=' ? (x: string) => x === v : (x: string) => new RegExp(`^(?:${v})$`).test(x),
  }));
  const out: Record<string, string>[] = [];
  for (const f of families.values())
    for (const s of f.samples) {
      const labels = { __name__: f.name, ...s.labels, __value__: String(s.value) };
      if (m[1] && f.name !== m[1]) continue;
      if (matchers.every((x) => x.test(labels[x.l as keyof typeof labels] ?? ''))) out.push(labels);
    }
  return out;
}

describe('fleet: reading the exporter’s series back', () => {
  it('adds label matchers to every selector form and picks a step', () => {
    expect(withMatchers('memsleuth_slab_bytes', 'instance="a"')).toBe('memsleuth_slab_bytes{instance="a"}');
    expect(withMatchers('m{type=~"a|b"}', 'instance="a"')).toBe('m{type=~"a|b",instance="a"}');
    expect(withMatchers('{__name__=~"x.+"}', 'job="j"')).toBe('{__name__=~"x.+",job="j"}');
    expect(withMatchers('m{}', 'job="j"')).toBe('m{job="j"}');
    expect(withMatchers('m', '')).toBe('m');
    expect(fleetStepMs({ startMs: 0, endMs: 86_400_000 })).toBe(360_000);
    expect(fleetStepMs({ startMs: 0, endMs: 120_000 })).toBe(1000);
    expect(fleetStepMs({ startMs: 0, endMs: 120_000, stepMs: 15_000 })).toBe(15_000);
  });

  it('gives the entities the recorder would have written for the same capture', async () => {
    const dir = labFixture('6.12', 'after');
    const text = await new Exporter({
      snapshotDir: dir,
      intervalMs: 0,
      version: 'test',
      metrics: { processTop: Number.POSITIVE_INFINITY },
    }).scrape();
    const families = parseExposition(text);
    const t = 1_800_000_000;
    const rec = toRecording(
      'lab',
      recordingMaps().map((map) => ({
        map,
        result: select(families, map.selector).map(
          ({ __value__, ...metric }): RangeSeries => ({ metric, values: [[t, __value__!]] }),
        ),
      })),
    );
    const snap = new DirectorySnapshot(dir);
    const sampler = new Sampler({ snapshot: () => snap, kmemleak: true, vmallocEvery: 1 });
    const tick = await sampler.sample(t * 1000);
    const recorded = (layer: string, key: string): EntitySample | undefined =>
      tick.entities.find((e) => e.layer === layer && e.key === key);
    expect(rec.series.length).toBeGreaterThan(150);
    const layers = new Set<string>();
    for (const s of rec.series) {
      layers.add(s.layer);
      expect(s.t).toEqual([t * 1000]);
      if (s.layer === 'process') {
        // The recorder keys a process by pid and start time, the exporter by pid and comm.
        const e = tick.entities.find((x) => x.layer === 'process' && x.pid === s.pid)!;
        expect(e.label, s.key).toBe(s.label);
        expect(e.values![s.metric], `${s.key} ${s.metric}`).toBe(s.v[0]);
        continue;
      }
      const e = recorded(s.layer, s.key);
      expect(e, `${s.layer}/${s.key}`).toBeDefined();
      expect(e!.values![s.metric], `${s.layer}/${s.key} ${s.metric}`).toBe(s.v[0]);
    }
    expect([...layers].sort()).toEqual(
      ['allocinfo', 'kmemleak', 'meminfo', 'process', 'slab', 'unaccounted', 'vmalloc'].sort(),
    );
    // Every slab cache and meminfo field the recorder keeps comes back.
    for (const layer of ['slab', 'meminfo'] as const) {
      const want = tick.entities.filter((e) => e.layer === layer && e.values?.bytes !== undefined).length;
      expect(rec.series.filter((s) => s.layer === layer).length, layer).toBe(want);
    }
    expect(JSON.parse(rec.meta.slab_reclaimable!)).toEqual((await reclaimableSlabCaches(snap)).sort());
    expect(rec.firstMs).toBe(t * 1000);
    expect(rec.lastMs).toBe(t * 1000);
  });

  it('names what is wrong with the Prometheus URL', async () => {
    const port = await freePort();
    const now = Date.now();
    const opts = { startMs: now - 60_000, endMs: now };
    await expect(analyzeFleet({ url: `http://127.0.0.1:${port}`, ...opts })).rejects.toSatisfy(
      (e) => isMemsleuthError(e) && e.code === 'IO' && /ECONNREFUSED/.test(e.message),
    );
    await expect(analyzeFleet({ url: 'ftp://x', ...opts })).rejects.toSatisfy(
      (e) => isMemsleuthError(e) && e.code === 'USAGE',
    );
    // Something that is not Prometheus: memsleuth's own exporter.
    const s = await serveExporter(
      new Exporter({ snapshotDir: labFixture('6.12', 'after'), intervalMs: 60_000, version: 'test' }),
      { host: '127.0.0.1', port: 0 },
    );
    try {
      await expect(analyzeFleet({ url: s.url, ...opts })).rejects.toSatisfy(
        (e) => isMemsleuthError(e) && e.code === 'BAD_INPUT' && /not a Prometheus API answer/.test(e.message),
      );
    } finally {
      await s.close();
    }
  });

  it('leaves processes seen only in the last quarter of the window (or hour) to later runs', () => {
    const series = (layer: 'process' | 'slab', key: string, fromMs: number) => ({
      id: 0,
      layer,
      key,
      label: key,
      pid: undefined,
      metric: 'anon_bytes',
      unit: 'bytes' as const,
      t: [fromMs, 8 * 3_600_000],
      v: [1, 2],
    });
    const rec = {
      file: 'h',
      meta: {},
      tickCount: 2,
      firstMs: 0,
      lastMs: 8 * 3_600_000,
      series: [
        series('process', 'old', 0),
        series('process', 'two-hours', 6 * 3_600_000),
        series('process', 'young', 7.5 * 3_600_000),
        series('slab', 'late-cache', 7.5 * 3_600_000),
      ],
    };
    // Eight hours: a quarter is two, the cap one hour.
    expect(dropYoungProcesses(rec)).toBe(1);
    expect(rec.series.map((s) => s.key)).toEqual(['old', 'two-hours', 'late-cache']);
  });
});
