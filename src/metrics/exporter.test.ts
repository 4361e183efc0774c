import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseExposition } from '../../test/exposition.js';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { GrowingCapture, swapLink } from '../../test/replay.js';
import { analyzeLeaks } from '../analysis/leaks.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import {
  ENTRIES,
  ENTRY_BY_NAME,
  type MetricFamilyDoc,
  type MetricsOptions,
  NODE_FAMILIES,
  SnapshotData,
} from '../registry/index.js';
import { buildReport } from '../registry/report.js';
import { RecordingReader } from '../store/recording.js';
import { EXPORTER_FAMILIES, Exporter } from './exporter.js';
import { SUSPECT_FAMILIES } from './suspects.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-exporter-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const EVERYTHING: MetricsOptions = { nodeFamilies: new Set(NODE_FAMILIES), pagetypeinfo: true };
const RECORDING = join(REPO_FIXTURES, 'recordings', 'bench-linux-6.18.db');

function exposition(dir: string | undefined, opts: Partial<ConstructorParameters<typeof Exporter>[0]> = {}) {
  const problems: string[] = [];
  const e = new Exporter({
    snapshotDir: dir,
    intervalMs: 60_000,
    version: 'test',
    metrics: EVERYTHING,
    onProblem: (s, m) => problems.push(`${s}: ${m}`),
    ...opts,
  });
  return { e, problems, scrape: async () => parseExposition(await e.scrape()) };
}

const value = (f: ReturnType<typeof parseExposition>, name: string, labels: Record<string, string> = {}) =>
  f.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

/** Every family an exporter may write, with `<Field>` patterns. */
const DOCS: MetricFamilyDoc[] = [
  ...ENTRIES.flatMap((e) => e.metrics?.families ?? []),
  ...Object.values(EXPORTER_FAMILIES),
  ...Object.values(SUSPECT_FAMILIES),
];
const pattern = (s: string) =>
  new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/<[Ff]ield>/g, '[A-Za-z0-9_()]+')}$`);

describe('the exporter', () => {
  it('writes only documented families, each with its documented help, type and labels', async () => {
    let families = 0;
    for (const dir of [labFixture('6.12', 'after'), labFixture('6.1', 'after'), undefined]) {
      const { scrape } = exposition(dir, { db: RECORDING });
      for (const f of (await scrape()).values()) {
        const doc = DOCS.find((d) => pattern(d.name).test(f.name));
        expect(doc, f.name).toBeDefined();
        expect(f.help, f.name).toMatch(pattern(doc!.help));
        expect(f.type, f.name).toBe(doc!.type);
        for (const s of f.samples)
          expect(Object.keys(s.labels).sort(), f.name).toEqual([...doc!.labels].sort());
        families++;
      }
    }
    expect(families).toBeGreaterThan(150);
    // Every documented memsleuth family says what bounds it.
    for (const d of DOCS) expect(d.cardinality, d.name).toMatch(/\S/);
  });

  it('exports the accounting identity the report computes: parts and layers sum to MemTotal', async () => {
    const dir = labFixture('6.12', 'after');
    const { scrape } = exposition(dir);
    const f = await scrape();
    const snap = new DirectorySnapshot(dir);
    const report = await buildReport(snap);
    const acc = report.accounting!;
    const parts = f.get('memsleuth_memory_part_bytes')!.samples;
    expect(parts.map((p) => [p.labels.layer, p.labels.part, p.value])).toEqual(
      acc.parts.map((p) => [p.layer, p.name, p.bytes]),
    );
    expect(parts.reduce((s, p) => s + p.value, 0)).toBe(acc.memTotalBytes);
    const layers = f.get('memsleuth_memory_layer_bytes')!.samples;
    expect(layers.reduce((s, p) => s + p.value, 0)).toBe(acc.memTotalBytes);
    expect(value(f, 'memsleuth_memory_layer_bytes', { layer: 'unaccounted' })).toBe(acc.unaccountedBytes);
    expect(value(f, 'node_memory_MemTotal_bytes')).toBe(acc.memTotalBytes);
  });

  it('bounds every list: top N plus the rest, processes N or all', async () => {
    const dir = labFixture('6.12', 'after');
    const snap = new DirectorySnapshot(dir);
    const page = (await snap.manifest()).pageSizeBytes;
    const data = new SnapshotData(snap, { smaps: false, pageSizeBytes: page }, ENTRY_BY_NAME);
    const callers = (await data.get('vmallocinfo'))!.filter((c) => c.bytes > 0);
    const tags = (await data.get('allocinfo'))!.tags;
    const { scrape } = exposition(dir, {
      metrics: { vmallocTop: 2, allocinfoTop: 3, kmemleakTop: 1, processTop: 1 },
    });
    const f = await scrape();
    expect(f.get('memsleuth_vmalloc_bytes')!.samples).toHaveLength(2);
    const vmTotal = callers.reduce((s, c) => s + c.bytes, 0);
    const vmShown = f.get('memsleuth_vmalloc_bytes')!.samples.reduce((s, x) => s + x.value, 0);
    expect(vmShown + value(f, 'memsleuth_vmalloc_rest_bytes')!).toBe(vmTotal);
    expect(f.get('memsleuth_vmalloc_bytes')!.samples[0]).toEqual({
      labels: { caller: callers[0]!.key },
      value: callers[0]!.bytes,
    });
    expect(f.get('memsleuth_allocinfo_bytes')!.samples).toHaveLength(3);
    const allocShown = f.get('memsleuth_allocinfo_bytes')!.samples.reduce((s, x) => s + x.value, 0);
    expect(allocShown + value(f, 'memsleuth_allocinfo_rest_bytes')!).toBe(
      tags.reduce((s, t) => s + t.bytes, 0),
    );
    expect(f.get('memsleuth_kmemleak_caller_unreferenced_bytes')!.samples).toHaveLength(1);
    const km = (await data.get('kmemleak'))!;
    expect(value(f, 'memsleuth_kmemleak_unreferenced_objects')).toBe(
      km.groups.reduce((s, g) => s + g.weights.count, 0),
    );
    expect(new Set(f.get('memsleuth_process_memory_bytes')!.samples.map((s) => s.labels.pid)).size).toBe(1);
    const procs = (await data.get('processes'))!.processes.filter((p) => !p.kernelThread);
    expect(procs.length).toBeGreaterThan(1);
    const all = await exposition(dir, { metrics: { processTop: Number.POSITIVE_INFINITY } }).scrape();
    expect(new Set(all.get('memsleuth_process_memory_bytes')!.samples.map((s) => s.labels.pid)).size).toBe(
      procs.length,
    );
    expect(value(all, 'memsleuth_processes')).toBe(procs.length);
    // The slab bytes of every cache, and which ones the kernel counts as reclaimable.
    const slab = (await data.get('slabinfo'))!;
    expect(all.get('memsleuth_slab_bytes')!.samples).toHaveLength(slab.caches.length);
    expect(all.get('memsleuth_slab_reclaimable')!.samples.map((s) => s.labels.slab)).toContain('dentry');
  });

  it('reads one snapshot per interval, shared by concurrent scrapes, and re-reads a replaced directory', async () => {
    const grow = new GrowingCapture(
      join(REPO_FIXTURES, 'live-6.18'),
      join(work, 'grow'),
      { layer: 'unaccounted' },
      8 << 20,
    );
    const e = new Exporter({ snapshotDir: grow.path, intervalMs: 60_000, version: 'test' });
    const [a, b] = await Promise.all([e.scrape(), e.scrape()]);
    expect(a).toBe(b);
    const first = parseExposition(a);
    expect(value(first, 'memsleuth_exporter_snapshots_total')).toBe(1);
    grow.step();
    // Within the interval: the cached snapshot.
    expect(await e.scrape()).toBe(a);
    const later = parseExposition(await e.scrape(Date.now() + 60_001));
    expect(value(later, 'memsleuth_exporter_snapshots_total')).toBe(2);
    const un = (f: typeof first) => value(f, 'memsleuth_memory_layer_bytes', { layer: 'unaccounted' })!;
    expect(un(later) - un(first)).toBe(8 << 20);
    expect(value(first, 'node_memory_MemFree_bytes')! - value(later, 'node_memory_MemFree_bytes')!).toBe(
      8 << 20,
    );
    // A replay swaps the link to another capture: the next snapshot reads it whole.
    swapLink(grow.path, labFixture('6.12', 'before'));
    const lab = parseExposition(await e.scrape(Date.now() + 120_002));
    expect(value(lab, 'node_memory_MemTotal_bytes')).not.toBe(value(first, 'node_memory_MemTotal_bytes'));
    expect(e.last!.series).toBe([...lab.values()].reduce((n, f) => n + f.samples.length, 0));
    expect(value(lab, 'memsleuth_exporter_series')).toBe(e.last!.series);
  });

  it('says which sources it could not read, once, and exports the rest', async () => {
    const { scrape, problems } = exposition(join(REPO_FIXTURES, 'docs-3.6'));
    const f = await scrape();
    expect(value(f, 'memsleuth_exporter_source_up', { source: 'meminfo' })).toBe(1);
    expect(value(f, 'memsleuth_exporter_source_up', { source: 'slabinfo' })).toBe(0);
    expect(value(f, 'memsleuth_exporter_source_up', { source: 'vmallocinfo' })).toBe(1);
    expect(problems.find((p) => p.startsWith('slabinfo: /proc/slabinfo: not present'))).toBeDefined();
    expect(f.get('memsleuth_memory_layer_bytes')!.samples).toHaveLength(6);
  });

  it('exports the recording’s current leak suspects as `memsleuth leaks` ranks them', async () => {
    const { scrape } = exposition(join(REPO_FIXTURES, 'live-6.18'), { db: RECORDING, leakTop: 5 });
    const f = await scrape();
    const reader = new RecordingReader(RECORDING);
    const report = analyzeLeaks(reader.load());
    reader.close();
    expect(report.suspects.length).toBeGreaterThan(5);
    expect(value(f, 'memsleuth_leak_suspects')).toBe(report.suspects.length);
    const listed = [
      ...f.get('memsleuth_leak_suspect_bytes_per_second')!.samples,
      ...(f.get('memsleuth_leak_suspect_count_per_second')?.samples ?? []),
    ];
    expect(listed.map((s) => s.labels.suspect).sort()).toEqual(
      report.suspects
        .slice(0, 5)
        .map((s) => s.id)
        .sort(),
    );
    const top = report.suspects[0]!;
    expect(value(f, 'memsleuth_leak_suspect_bytes_per_second', { suspect: top.id })).toBeCloseTo(
      top.ratePerHour / 3600,
      6,
    );
    expect(value(f, 'memsleuth_leak_suspect_confidence', { suspect: top.id })).toBe(top.confidence);
    expect(value(f, 'memsleuth_leak_exhaustion_seconds')).toBeCloseTo(report.hoursToExhaustion! * 3600, 3);
  });
});
