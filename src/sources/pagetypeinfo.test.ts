import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import { freePagesOf, parseBuddyinfo } from './buddyinfo.js';
import { type Pagetypeinfo, parsePagetypeinfo } from './pagetypeinfo.js';

/** Free pages per node/zone summed over the migrate types. */
function freeByZone(p: Pagetypeinfo): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of p.free)
    out.set(`${f.node}/${f.zone}`, (out.get(`${f.node}/${f.zone}`) ?? 0) + freePagesOf(f.freeBlocks));
  return out;
}

describe('parsePagetypeinfo', () => {
  it('reads this machine’s /proc/pagetypeinfo and agrees with buddyinfo within the drift of two reads', () => {
    const buddy = parseBuddyinfo(readFileSync('/proc/buddyinfo', 'utf8'));
    const text = readFileSync('/proc/pagetypeinfo', 'utf8');
    const p = parsePagetypeinfo(text);
    expect(p.pagesPerBlock).toBe(2 ** p.pageBlockOrder);
    expect(p.free).toHaveLength(text.split('\n').filter((l) => l.includes(', type ')).length);
    const byZone = freeByZone(p);
    for (const z of buddy.zones) {
      const pt = byZone.get(`${z.node}/${z.zone}`);
      expect(pt, `${z.node}/${z.zone}`).toBeDefined();
      expect(Math.abs(pt! - z.freePages)).toBeLessThanOrEqual(8192 + z.freePages * 0.02);
    }
    // Every populated zone has a blocks row, and the types of the table are those of the free lines.
    expect(p.blocks.map((b) => `${b.node}/${b.zone}`)).toEqual([...byZone.keys()]);
    expect(Object.keys(p.blocks[0]!.counts).sort()).toEqual([...new Set(p.free.map((f) => f.type))].sort());
  });

  it('reads the live-6.18 capture: free per zone = buddyinfo of the same capture within drift', () => {
    const p = parsePagetypeinfo(fixture('live-6.18', 'pagetypeinfo'));
    const buddy = parseBuddyinfo(fixture('live-6.18', 'buddyinfo'));
    const byZone = freeByZone(p);
    for (const z of buddy.zones)
      expect(Math.abs(byZone.get(`${z.node}/${z.zone}`)! - z.freePages)).toBeLessThanOrEqual(8192);
    expect(p.free.map((f) => f.type).slice(0, 5)).toEqual([
      'Unmovable',
      'Movable',
      'Reclaimable',
      'HighAtomic',
      'Isolate',
    ]);
    expect(p.mixedBlocks).toBeUndefined();
    expect(p.free.every((f) => f.cappedOrders === undefined)).toBe(true);
  });

  it('reads the 3.x format of Documentation/filesystems/proc.txt (Reserve migrate type)', () => {
    const p = parsePagetypeinfo(fixture('docs-3.6', 'pagetypeinfo'));
    expect([p.pageBlockOrder, p.pagesPerBlock]).toEqual([9, 512]);
    expect(p.free).toHaveLength(10);
    expect(p.free[8]).toEqual({
      node: 0,
      zone: 'DMA32',
      type: 'Reserve',
      freeBlocks: [1, 2, 2, 2, 2, 0, 1, 1, 1, 1, 0],
    });
    expect(p.blocks).toEqual([
      { node: 0, zone: 'DMA', counts: { Unmovable: 2, Reclaimable: 0, Movable: 5, Reserve: 1, Isolate: 0 } },
      {
        node: 0,
        zone: 'DMA32',
        counts: { Unmovable: 41, Reclaimable: 6, Movable: 967, Reserve: 2, Isolate: 0 },
      },
    ]);
  });

  it('reads the "Number of mixed blocks" table printed with page_owner', () => {
    // The table as Mel Gorman's page_owner patch shows it (2.6.22-rc2-mm1, merged as
    // pagetypeinfo_showmixedcount), after the 3.x document's tables.
    const text = `${fixture('docs-3.6', 'pagetypeinfo')}
Number of mixed blocks    Unmovable  Reclaimable      Movable      Reserve
Node 0, zone      DMA            0            1            2            1
Node 0, zone   Normal            2           11           33            0
`;
    const p = parsePagetypeinfo(text);
    expect(p.blocks).toHaveLength(2);
    expect(p.mixedBlocks).toEqual([
      { node: 0, zone: 'DMA', counts: { Unmovable: 0, Reclaimable: 1, Movable: 2, Reserve: 1 } },
      { node: 0, zone: 'Normal', counts: { Unmovable: 2, Reclaimable: 11, Movable: 33, Reserve: 0 } },
    ]);
  });

  it('reads counts capped at ">100000" (mm/vmstat.c pagetypeinfo_showfree_print since 5.4)', () => {
    // The live capture with one count as a 5.4+ kernel prints a list longer than 100000.
    const text = fixture('live-6.18', 'pagetypeinfo').replace(
      /(type\s+Movable(?:\s+\d+){10})\s+\d+/,
      '$1 >100000',
    );
    const p = parsePagetypeinfo(text);
    const capped = p.free.filter((f) => f.cappedOrders !== undefined);
    expect(capped).toHaveLength(1);
    expect(capped[0]).toMatchObject({ type: 'Movable', cappedOrders: [10] });
    expect(capped[0]!.freeBlocks[10]).toBe(100000);
  });

  describe('malformed input', () => {
    const doc = fixture('docs-3.6', 'pagetypeinfo');
    it('rejects empty input', () => {
      expectParseError(() => parsePagetypeinfo(''), {
        line: 1,
        message: ['/proc/pagetypeinfo:1: expected "Page block order: 9"', '<empty input>'],
      });
    });
    it('rejects a missing or inconsistent header', () => {
      expectParseError(
        () => parsePagetypeinfo(doc.replace('Page block order: 9', 'Page block order: nine')),
        {
          line: 1,
          message: ['found "Page block order: nine"'],
        },
      );
      expectParseError(
        () => parsePagetypeinfo(doc.replace('Pages per block:  512', 'Pages per block:  500')),
        {
          line: 2,
          message: ['Pages per block = 2^9 = 512', 'found "Pages per block:  500"'],
        },
      );
      expectParseError(
        () =>
          parsePagetypeinfo('Page block order: 9\nPages per block:  512\n\nNode 0, zone DMA 1\n', {
            file: 'p',
          }),
        {
          line: 4,
          message: ['p:4: expected "Free pages count per migrate type at order 0 1 2 ..."'],
        },
      );
    });
    it('rejects a free line with the wrong number of orders or garbage', () => {
      const lines = doc.split('\n');
      lines[5] = lines[5]!.replace(/\s+\d+\s*$/, '');
      expectParseError(() => parsePagetypeinfo(lines.join('\n')), {
        line: 6,
        message: ['11 orders as in the header', 'found "10 in'],
      });
      expectParseError(
        () => parsePagetypeinfo(doc.replace('type      Movable      1', 'type      Movable      x')),
        {
          line: 7,
          message: ['"Node N, zone NAME, type TYPE <free blocks per order...>"'],
        },
      );
    });
    it('rejects a file cut before or inside the blocks table (truncated)', () => {
      const lines = doc.trimEnd().split('\n');
      // Cut at a line boundary (the text still ends with a newline).
      const upTo = (n: number) => `${lines.slice(0, n).join('\n')}\n`;
      expectParseError(() => parsePagetypeinfo(upTo(14)), {
        line: 15,
        message: ['"Number of blocks type ..." table', '<end of file>'],
      });
      expectParseError(() => parsePagetypeinfo(upTo(17)), {
        line: 18,
        message: ['a "Number of blocks" row for node 0 zone DMA32'],
      });
      expectParseError(() => parsePagetypeinfo(upTo(16)), {
        line: 17,
        message: ['rows under "Number of blocks type'],
      });
      // Cut inside a row: no newline at the end.
      const cut = `${upTo(17)}Node 0, zone    DMA32           41            6`;
      expectParseError(() => parsePagetypeinfo(cut), {
        line: 18,
        message: ['expected a last line ending in a newline'],
      });
      expectParseError(() => parsePagetypeinfo(`${cut}\n`), {
        line: 18,
        message: ['5 counts (Unmovable Reclaimable Movable Reserve Isolate)', 'found "2 in'],
      });
    });
  });
});
