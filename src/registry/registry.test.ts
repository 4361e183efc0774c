import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_FIXTURES } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { LAYERS } from '../model/samples.js';
import { FAMILY_SOURCES, SYSTEM_SOURCES } from '../model/snapshot.js';
import { parsePagetypeinfo } from '../sources/pagetypeinfo.js';
import { DIFF_SOURCES, ENTRIES, REGISTRY } from './index.js';
import { recogniseSource } from './open.js';
import { buildReport, reportTables } from './report.js';
import { pagetypeinfo, pagetypeSection } from './sources/pagetypeinfo.js';

describe('the registry', () => {
  it('has one entry per source location, under its own name', () => {
    const names = [...SYSTEM_SOURCES, ...FAMILY_SOURCES].map((s) => s.name).sort();
    expect(ENTRIES.map((e) => e.name).sort()).toEqual(names);
    for (const [key, e] of Object.entries(REGISTRY)) {
      expect(e.name).toBe(key);
      expect(e.location.name).toBe(key);
    }
  });

  it('every recording layer is written by exactly one entry', () => {
    for (const layer of LAYERS) {
      const writers = ENTRIES.filter((e) => e.layers?.includes(layer)).map((e) => e.name);
      expect(writers, layer).toHaveLength(1);
    }
    for (const e of ENTRIES) expect(Boolean(e.sample), e.name).toBe(Boolean(e.layers?.length));
  });

  it('diffs every source that changes with what the kernel holds', () => {
    expect(DIFF_SOURCES).toEqual([
      'meminfo',
      'processes',
      'tmpfs',
      'sysvipc_shm',
      'slabinfo',
      'vmallocinfo',
      'buddyinfo',
      'pagetypeinfo',
      'page_owner',
      'slab_traces',
      'kmemleak',
      'allocinfo',
    ]);
  });
});

describe('recognising a raw kernel file by its content', () => {
  const cases: [string, string][] = [
    ['live-6.18/meminfo', 'meminfo'],
    ['lkml-2.6.8/meminfo', 'meminfo'],
    ['live-6.18/vmstat', 'vmstat'],
    ['live-6.18/zoneinfo', 'zoneinfo'],
    ['lkml-2.6.14/zoneinfo', 'zoneinfo'],
    ['live-6.18/buddyinfo', 'buddyinfo'],
    ['live-6.18/pagetypeinfo', 'pagetypeinfo'],
    ['docs-3.6/pagetypeinfo', 'pagetypeinfo'],
    ['live-6.18/slabinfo', 'slabinfo'],
    ['lkml-2.6.8/slabinfo', 'slabinfo'],
    ['live-6.18/vmallocinfo', 'vmallocinfo'],
    ['docs-3.6/vmallocinfo', 'vmallocinfo'],
    ['allocinfo-2.0/commit-39d117e04d15.allocinfo', 'allocinfo'],
    ['page_owner-history/v4.9.txt', 'page_owner'],
    ['page_owner-history/v5.11.txt', 'page_owner'],
    ['kmemleak-docs/nvme-6.19-percpu.kmemleak', 'kmemleak'],
    ['kmemleak-docs/seed004-arm64-age.kmemleak', 'kmemleak'],
    ['slab-5.13/kmalloc-96.alloc_calls', 'slab_traces'],
  ];
  it.each(cases)('%s is %s, and no other source claims it', (file, name) => {
    const path = join(REPO_FIXTURES, file);
    const head = readFileSync(path, 'utf8').slice(0, 64 * 1024);
    expect(recogniseSource(head, path)).toBe(name);
    const claims = ENTRIES.filter((e) => e.recognise?.(head, file)).map((e) => e.name);
    expect(claims.filter((c) => c !== name)).toEqual([]);
  });

  it('claims nothing for text that is no kernel file', () => {
    expect(recogniseSource('hello\nworld\n', '/tmp/notes.txt')).toBeUndefined();
    expect(recogniseSource('', '/tmp/empty')).toBeUndefined();
  });
});

describe('pagetypeinfo through the registry', () => {
  const live = parsePagetypeinfo(readFileSync(join(REPO_FIXTURES, 'live-6.18/pagetypeinfo'), 'utf8'));

  it('sums free memory per zone and migrate type, and page blocks per type', () => {
    const s = pagetypeSection(live, 4096);
    expect(s.pageBlockBytes).toBe(512 * 4096);
    const normal = s.zones.find((z) => z.zone === 'Normal')!;
    expect(normal.pageBlocks).toBe(83 + 1456 + 125);
    expect(normal.unmovableBlocks).toBe(83 + 125);
    const movable = normal.types.find((t) => t.type === 'Movable')!;
    // 0 1 0 0 0 89 69 217 134 76 168 blocks of order 0..10
    const pages = [0, 1, 0, 0, 0, 89, 69, 217, 134, 76, 168].reduce((a, n, o) => a + n * 2 ** o, 0);
    expect(movable.freePages).toBe(pages);
    expect(movable.pageBlocks).toBe(1456);
    const zoneFree = normal.types.reduce((a, t) => a + t.freeBytes, 0);
    expect(normal.freeBytes).toBe(zoneFree);
    // order >= 9: the page-block-sized free blocks.
    const big = normal.types.reduce(
      (a, t) => a + ((t.freeBlocks[9] ?? 0) * 512 + (t.freeBlocks[10] ?? 0) * 1024) * 4096,
      0,
    );
    expect(normal.pageBlockFreeBytes).toBe(big);
  });

  it('ranks page blocks turning Unmovable as growth in the diff', () => {
    const after = structuredClone(live);
    const normal = after.blocks.find((b) => b.zone === 'Normal')!;
    normal.counts.Unmovable! += 10;
    normal.counts.Movable! -= 10;
    const rows = pagetypeinfo.diff!(live, after, { pageSizeBytes: 4096 }).rows.filter(
      (r) => r.deltaBytes !== 0 || (r.deltaCount ?? 0) !== 0,
    );
    expect(rows).toEqual([
      expect.objectContaining({
        name: 'node0/Normal Unmovable page blocks',
        deltaCount: 10,
        deltaBytes: 10 * 512 * 4096,
        countUnit: 'blocks',
      }),
      expect.objectContaining({ name: 'node0/Normal Movable page blocks', deltaCount: -10 }),
    ]);
  });

  it('warns when unmovable page blocks have spread through a zone', async () => {
    const report = await buildReport(new DirectorySnapshot(join(REPO_FIXTURES, 'live-6.18')));
    expect(report.pagetypes?.zones.map((z) => z.zone)).toEqual(['DMA', 'DMA32', 'Normal']);
    // 208 of 1664 blocks (12.5%): normal, no warning.
    expect(report.findings.filter((f) => f.title.includes('Unmovable or Reclaimable'))).toEqual([]);
    const t = reportTables(report).find((x) => x.source === 'pagetypeinfo')!;
    expect(t.title).toBe('Free blocks per migrate type and order (page block: order 9, 2.0 MiB)');
    expect(t.rows.map((r) => `${r[0]} ${r[1]}`)).toContain('0/Normal Unmovable');
    const fragmented = structuredClone(live);
    const n = fragmented.blocks.find((b) => b.zone === 'Normal')!;
    n.counts.Unmovable = 600;
    n.counts.Movable = 939;
    const sec = pagetypeSection(fragmented, 4096);
    const findings = await pagetypeinfo.findings!({
      report: { ...report, pagetypes: sec },
    } as Parameters<NonNullable<typeof pagetypeinfo.findings>>[0]);
    expect(findings.map((f) => f.title)).toEqual([
      'Node 0 zone Normal: 43.6% of page blocks are Unmovable or Reclaimable',
    ]);
  });
});
