import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture, LAB_MOMENTS as MOMENTS } from '../../test/parsers.js';
import { labFixture } from '../../test/paths.js';
import { parseBuddyinfo } from './buddyinfo.js';
import { parseZoneinfo, type Zoneinfo } from './zoneinfo.js';

/** Independent count of the numbers after every `count:` line in the text. */
function pcpCounts(text: string): number {
  return [...text.matchAll(/^\s+count:\s+(\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
}

/** Shape checks every zoneinfo must pass. */
function checkShape(z: Zoneinfo, text: string) {
  expect(z.zones).toHaveLength([...text.matchAll(/^Node\s+\d+, zone/gm)].length);
  for (const zone of z.zones) {
    for (const k of ['free', 'min', 'low', 'high', 'spanned', 'present'])
      expect(zone.pages[k], `${zone.zone} ${k}`).toBeTypeOf('number');
    expect(zone.pages.present).toBeLessThanOrEqual(zone.pages.spanned!);
    if (zone.pages.managed !== undefined) expect(zone.pages.managed).toBeLessThanOrEqual(zone.pages.present!);
    expect(zone.protection?.length).toBeGreaterThan(0);
  }
  expect(z.zones.reduce((s, zone) => s + zone.pcpCountPages, 0)).toBe(pcpCounts(text));
}

describe('parseZoneinfo', () => {
  it('reads this machine’s /proc/zoneinfo', () => {
    const text = readFileSync('/proc/zoneinfo', 'utf8');
    const z = parseZoneinfo(text);
    checkShape(z, text);
    // 6.18: per-node stats under the first zone, empty Movable/Device zones with watermarks only.
    expect(Object.keys(z.nodeStats)).toContain('0');
    expect(z.nodeStats[0]!.nr_file_pages).toBeTypeOf('number');
    const populated = z.zones.filter((zone) => zone.pages.present! > 0);
    for (const zone of populated) {
      expect(zone.stats.nr_free_pages).toBeTypeOf('number');
      expect(zone.pagesets.length).toBeGreaterThan(0);
      expect(zone.info.start_pfn).toBeTypeOf('number');
    }
    for (const zone of z.zones.filter((zone) => zone.pages.spanned === 0)) expect(zone.pagesets).toEqual([]);
  });

  it('agrees with buddyinfo per zone on this machine, within the drift of two reads', () => {
    const buddyBefore = parseBuddyinfo(readFileSync('/proc/buddyinfo', 'utf8'));
    const z = parseZoneinfo(readFileSync('/proc/zoneinfo', 'utf8'));
    const buddyAfter = parseBuddyinfo(readFileSync('/proc/buddyinfo', 'utf8'));
    for (const b of buddyBefore.zones) {
      const zone = z.zones.find((x) => x.node === b.node && x.zone === b.zone);
      expect(zone, `${b.node}/${b.zone}`).toBeDefined();
      const after = buddyAfter.zones.find((x) => x.node === b.node && x.zone === b.zone)!;
      const slack = 4096 + Math.ceil(zone!.pages.managed! * 0.02);
      expect(zone!.pages.free).toBeGreaterThanOrEqual(Math.min(b.freePages, after.freePages) - slack);
      expect(zone!.pages.free).toBeLessThanOrEqual(Math.max(b.freePages, after.freePages) + slack);
    }
  });

  it.each(MOMENTS)('lab %s %s: pages free = buddyinfo free pages of the same capture', (kernel, moment) => {
    const dir = labFixture(kernel, moment);
    const text = readFileSync(join(dir, 'zoneinfo'), 'utf8');
    const z = parseZoneinfo(text);
    checkShape(z, text);
    const buddy = parseBuddyinfo(readFileSync(join(dir, 'buddyinfo'), 'utf8'));
    for (const b of buddy.zones) {
      const zone = z.zones.find((x) => x.node === b.node && x.zone === b.zone)!;
      expect(Math.abs(zone.pages.free! - b.freePages)).toBeLessThanOrEqual(256);
      expect(zone.stats.nr_free_pages).toBe(zone.pages.free);
    }
    expect(z.zones.map((x) => x.zone)).toEqual(['DMA32', 'Normal', 'Movable']);
    expect(z.nodeStats[0]!.nr_kernel_stack).toBeTypeOf('number');
  });

  it('reads the live-6.18 capture: boost, promo, high_min/high_max, per-node stats', () => {
    const text = fixture('live-6.18', 'zoneinfo');
    const z = parseZoneinfo(text);
    checkShape(z, text);
    const dma = z.zones.find((x) => x.zone === 'DMA')!;
    expect(Object.keys(dma.pages)).toEqual([
      'free',
      'boost',
      'min',
      'low',
      'high',
      'promo',
      'spanned',
      'present',
      'managed',
      'cma',
    ]);
    expect(dma.pagesets[0]!.values).toMatchObject({
      count: expect.any(Number),
      high_min: expect.any(Number),
      high_max: expect.any(Number),
    });
    expect(dma.pagesets[0]!.values.vm_stats_threshold).toBeTypeOf('number');
    expect(dma.info).toMatchObject({ node_unreclaimable: 0, start_pfn: 1 });
    expect(z.zones.map((x) => x.zone)).toEqual(['DMA', 'DMA32', 'Normal', 'Movable', 'Device']);
  });

  it('reads a 2.6.29-era zoneinfo (vm stats indented by 4, "scanned N (a: i:)", prev_priority)', () => {
    const text = fixture('lkml-2009-bug12832', 'zoneinfo');
    const z = parseZoneinfo(text);
    checkShape(z, text);
    expect(z.nodeStats).toEqual({});
    const dma32 = z.zones[1]!;
    expect(dma32.pages).toMatchObject({
      free: 65515,
      min: 700,
      low: 875,
      high: 1050,
      scanned: 0,
      spanned: 126960,
      present: 125224,
    });
    expect(dma32.pages.managed).toBeUndefined();
    expect(dma32.stats.nr_free_pages).toBe(65515);
    expect(dma32.stats.numa_hit).toBe(18690260);
    expect(dma32.protection).toEqual([0, 0, 0, 0]);
    expect(dma32.pagesets).toEqual([
      { cpu: 0, values: { count: 69, high: 186, batch: 31, vm_stats_threshold: 6 } },
    ]);
    expect(dma32.info).toMatchObject({
      all_unreclaimable: 0,
      prev_priority: 12,
      start_pfn: 4096,
      nr_scan_active: 0,
    });
    expect(z.zones[0]!.info).toMatchObject({ nr_scan_active: 27, nr_scan_inactive: 24 });
  });

  it('reads a 2.6.14-era zoneinfo (active/inactive among the watermarks, hot and cold pcp lists)', () => {
    const text = fixture('lkml-2.6.14', 'zoneinfo');
    const z = parseZoneinfo(text);
    checkShape(z, text);
    expect(z.zones.map((x) => x.zone)).toEqual(['DMA', 'Normal', 'HighMem']);
    const normal = z.zones[1]!;
    expect(normal.stats).toEqual({});
    expect(normal.pages).toMatchObject({ free: 11121, active: 151351, inactive: 38572, present: 225280 });
    expect(normal.pagesets.map((p) => [p.cpu, p.pcp, p.values.low])).toEqual([
      [0, 0, 62],
      [0, 1, 0],
    ]);
    expect(normal.pcpCountPages).toBe(122);
    expect(normal.info).toMatchObject({ temp_priority: 12, start_pfn: 4096 });
  });

  describe('malformed input', () => {
    it('rejects empty input', () => {
      expectParseError(() => parseZoneinfo(''), {
        line: 1,
        message: ['/proc/zoneinfo:1: expected', '<empty input>'],
      });
    });
    it('rejects text that does not start with a zone header', () => {
      expectParseError(() => parseZoneinfo('  pages free     3840\n'), {
        line: 1,
        message: ['"Node N, zone NAME" as the first line', 'found "  pages free     3840"'],
      });
    });
    it('rejects a garbage line inside a zone', () => {
      const lines = fixture('lkml-2009-bug12832', 'zoneinfo').split('\n');
      lines[9] = 'this is not zoneinfo';
      expectParseError(() => parseZoneinfo(lines.join('\n'), { file: 'z' }), {
        line: 10,
        message: ['z:10: expected a zoneinfo line', 'found "this is not zoneinfo"'],
      });
    });
    it('rejects counters before "pages free" and counters after the pagesets', () => {
      expectParseError(() => parseZoneinfo('Node 0, zone DMA\n        min 5\n'), {
        line: 2,
        message: ['found "        min 5"'],
      });
      const text = `${fixture('lkml-2009-bug12832', 'zoneinfo').trimEnd()}\n    nr_free_pages 5\n`;
      expectParseError(() => parseZoneinfo(text), { line: 79, message: ['found "    nr_free_pages 5"'] });
    });
    it('rejects a zone header with nothing after it (truncated file)', () => {
      const text = `${fixture('lkml-2009-bug12832', 'zoneinfo').split('\n').slice(0, 39).join('\n')}\nNode 0, zone    DMA32\n`;
      expectParseError(() => parseZoneinfo(text), {
        line: 40,
        message: ['"  pages free N" after "Node 0, zone DMA32"'],
      });
    });
    it('rejects a repeated counter and a repeated zone', () => {
      const lines = fixture('lkml-2009-bug12832', 'zoneinfo').split('\n');
      lines.splice(9, 0, '    nr_free_pages 1');
      expectParseError(() => parseZoneinfo(lines.join('\n')), {
        line: 10,
        message: ['each counter once per zone (nr_free_pages repeats)'],
      });
      const one = fixture('lkml-2.6.14', 'zoneinfo');
      expectParseError(() => parseZoneinfo(one + one), {
        line: 82,
        message: ['each node/zone once (node 0 zone DMA repeats)'],
      });
    });
    it('rejects a broken protection line', () => {
      const text = fixture('lkml-2.6.14', 'zoneinfo').replace(
        'protection: (0, 880, 998)',
        'protection: (0, x, 998)',
      );
      expectParseError(() => parseZoneinfo(text), {
        line: 12,
        message: ['found "        protection: (0, x, 998)"'],
      });
    });
  });
});
