import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture, LAB_MOMENTS as MOMENTS } from '../../test/parsers.js';
import { labFixture } from '../../test/paths.js';
import { freePagesOf, parseBuddyinfo } from './buddyinfo.js';
import { parseMeminfo } from './meminfo.js';
import { parseZoneinfo } from './zoneinfo.js';

const PAGE_SIZE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());

/** Independent sum: columns after the zone name, weighted by 2^column. */
function awkFreePages(line: string): number {
  const cols = line.trim().split(/\s+/).slice(4).map(Number);
  return cols.reduce((s, n, order) => s + n * 2 ** order, 0);
}

describe('parseBuddyinfo', () => {
  it('reads this machine’s /proc/buddyinfo', () => {
    const text = readFileSync('/proc/buddyinfo', 'utf8');
    const b = parseBuddyinfo(text);
    const lines = text.trim().split('\n');
    expect(b.zones).toHaveLength(lines.length);
    expect(b.maxOrder).toBe(lines[0]!.trim().split(/\s+/).length - 4);
    b.zones.forEach((z, i) => {
      expect(z.freeBlocks).toHaveLength(b.maxOrder);
      expect(z.freePages).toBe(awkFreePages(lines[i]!));
    });
  });

  it('matches the free pages of the nodes’ meminfo on this machine (MemFree per node = buddy free)', () => {
    // Read buddyinfo between two readings of the node files: free memory drifts while tests run.
    // With deferred_init=lazy (this VM's kernel) a node's MemTotal and MemFree both count the
    // memory its zones do not manage yet (a fresh boot: 15 GiB of 23); only what the zones manage
    // reaches the buddy allocator, so that part comes off MemFree (as in the accounting's
    // MemFree-not-in-zones). On other kernels MemTotal is the managed pages and nothing comes off.
    const nodes = readdirSync('/sys/devices/system/node').filter((d) => /^node\d+$/.test(d));
    const nodeFree = () => {
      const managed =
        parseZoneinfo(readFileSync('/proc/zoneinfo', 'utf8')).zones.reduce(
          (s, z) => s + (z.pages.managed ?? 0),
          0,
        ) * PAGE_SIZE;
      let total = 0;
      let free = 0;
      for (const n of nodes) {
        const b = parseMeminfo(readFileSync(`/sys/devices/system/node/${n}/meminfo`, 'utf8')).bytes;
        total += b.MemTotal!;
        free += b.MemFree!;
      }
      return free - Math.max(0, total - managed);
    };
    const before = nodeFree();
    const buddyBytes =
      parseBuddyinfo(readFileSync('/proc/buddyinfo', 'utf8')).zones.reduce((s, z) => s + z.freePages, 0) *
      PAGE_SIZE;
    const after = nodeFree();
    const slack = 64 * 1024 * 1024;
    expect(buddyBytes).toBeGreaterThanOrEqual(Math.min(before, after) - slack);
    expect(buddyBytes).toBeLessThanOrEqual(Math.max(before, after) + slack);
  });

  it('accounts for /proc/meminfo MemFree: what the nodes do not hold is free (lazily initialised memory)', () => {
    // On this VM (deferred_init=lazy) MemTotal and MemFree include ~20 GB the zones do not manage
    // yet, so MemFree is far above the buddy free pages. On ordinary kernels both gaps are 0.
    const nodes = readdirSync('/sys/devices/system/node').filter((d) => /^node\d+$/.test(d));
    const sum = (f: 'MemTotal' | 'MemFree') =>
      nodes.reduce(
        (s, n) => s + parseMeminfo(readFileSync(`/sys/devices/system/node/${n}/meminfo`, 'utf8')).bytes[f]!,
        0,
      );
    const mi = parseMeminfo(readFileSync('/proc/meminfo', 'utf8'));
    const totalGap = mi.bytes.MemTotal! - sum('MemTotal');
    const freeGap = mi.bytes.MemFree! - sum('MemFree');
    expect(Math.abs(totalGap - freeGap)).toBeLessThan(64 * 1024 * 1024);
  });

  it.each(MOMENTS)(
    'lab %s %s: buddy free pages × page size = MemFree within capture drift (one zone)',
    (kernel, moment) => {
      const dir = labFixture(kernel, moment);
      const b = parseBuddyinfo(readFileSync(join(dir, 'buddyinfo'), 'utf8'));
      const mi = parseMeminfo(readFileSync(join(dir, 'meminfo'), 'utf8'));
      expect(b.zones.map((z) => `${z.node}/${z.zone}`)).toEqual(['0/DMA32']);
      expect(b.maxOrder).toBe(11);
      // The files were read one after another: 6.12 `before` differs by 28 pages, the others by at most 3.
      expect(Math.abs(b.zones[0]!.freePages * 4096 - mi.bytes.MemFree!)).toBeLessThanOrEqual(256 * 4096);
    },
  );

  it('reads the live-6.18 capture (three zones, trailing spaces)', () => {
    const text = fixture('live-6.18', 'buddyinfo');
    const b = parseBuddyinfo(text);
    expect(b.zones.map((z) => z.zone)).toEqual(['DMA', 'DMA32', 'Normal']);
    expect(b.zones.map((z) => z.freePages)).toEqual(text.trim().split('\n').map(awkFreePages));
  });

  it('freePagesOf weights order n by 2^n', () => {
    expect(freePagesOf([1, 1, 1])).toBe(1 + 2 + 4);
    expect(freePagesOf([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3])).toBe(3 * 1024);
  });

  describe('malformed input', () => {
    it('rejects empty input', () => {
      expectParseError(() => parseBuddyinfo(''), {
        line: 1,
        message: ['/proc/buddyinfo:1: expected', '<empty input>'],
      });
    });
    it('rejects garbage and lines without counts', () => {
      expectParseError(() => parseBuddyinfo('Node 0, zone DMA 1 2 3\nhello\n'), {
        line: 2,
        message: ['found "hello"'],
      });
      expectParseError(() => parseBuddyinfo('Node 0, zone DMA\n'), {
        line: 1,
        message: ['expected "Node <n>, zone <name>', 'found "Node 0, zone DMA"'],
      });
      expectParseError(() => parseBuddyinfo('Node 0, zone DMA 1 -2 3\n'), {
        line: 1,
        message: ['found "Node 0, zone DMA 1 -2 3"'],
      });
    });
    it('rejects a line cut short (truncated file)', () => {
      const lines = fixture('live-6.18', 'buddyinfo').split('\n');
      const cut = `${lines[0]}\n${lines[1]!.slice(0, 40)}`;
      expectParseError(() => parseBuddyinfo(cut, { file: 'b' }), {
        line: 2,
        message: ['b:2: expected a last line ending in a newline'],
      });
      // A cut row that still ends in a newline has fewer orders than the rows above.
      expectParseError(() => parseBuddyinfo(`${cut}\n`, { file: 'b' }), {
        line: 2,
        message: ['b:2: expected 11 orders like the lines above'],
      });
      // --lenient: the cut row is dropped, with a warning naming it.
      const warnings: string[] = [];
      const b = parseBuddyinfo(cut, { file: 'b', lenient: true, onWarning: (w) => warnings.push(w) });
      expect(b.zones.map((z) => z.zone)).toEqual(['DMA']);
      expect(warnings).toEqual([
        `b:2: input cut short (--lenient): dropped ${JSON.stringify(lines[1]!.slice(0, 40))}`,
      ]);
    });
    it('rejects a zone listed twice', () => {
      expectParseError(() => parseBuddyinfo('Node 0, zone DMA 1 2\nNode 0, zone DMA 1 2\n'), {
        line: 2,
        message: ['each node/zone once (node 0 zone DMA repeats)'],
      });
    });
  });
});
