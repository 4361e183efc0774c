import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture, LAB_MOMENTS as MOMENTS } from '../../test/parsers.js';
import { labFixture } from '../../test/paths.js';
import { parseBuddyinfo } from './buddyinfo.js';
import { parseMeminfo } from './meminfo.js';
import { parseVmstat } from './vmstat.js';
import { parseZoneinfo } from './zoneinfo.js';

/** Independent reading: split every line on its single space. */
function pairs(text: string): [string, number][] {
  return text
    .trim()
    .split('\n')
    .map((l) => {
      const [k, v] = l.split(' ');
      return [k!, Number(v)];
    });
}

describe('parseVmstat', () => {
  it('reads this machine’s /proc/vmstat', () => {
    const text = readFileSync('/proc/vmstat', 'utf8');
    const v = parseVmstat(text);
    expect(Object.entries(v)).toEqual(pairs(text));
    for (const k of ['nr_free_pages', 'nr_kernel_stack', 'pgfault']) {
      expect(v[k], k).toBeTypeOf('number');
    }
  });

  it('nr_free_pages agrees with the buddy free pages on this machine, within the drift of two reads', () => {
    const before = parseVmstat(readFileSync('/proc/vmstat', 'utf8')).nr_free_pages!;
    const buddy = parseBuddyinfo(readFileSync('/proc/buddyinfo', 'utf8')).zones.reduce(
      (s, z) => s + z.freePages,
      0,
    );
    const after = parseVmstat(readFileSync('/proc/vmstat', 'utf8')).nr_free_pages!;
    const slack = 16384;
    expect(buddy).toBeGreaterThanOrEqual(Math.min(before, after) - slack);
    expect(buddy).toBeLessThanOrEqual(Math.max(before, after) + slack);
  });

  it.each(MOMENTS)(
    'lab %s %s: counters agree with meminfo and zoneinfo of the same capture',
    (kernel, moment) => {
      const dir = labFixture(kernel, moment);
      const text = readFileSync(join(dir, 'vmstat'), 'utf8');
      const v = parseVmstat(text);
      expect(Object.entries(v)).toEqual(pairs(text));
      const mi = parseMeminfo(readFileSync(join(dir, 'meminfo'), 'utf8'));
      const zi = parseZoneinfo(readFileSync(join(dir, 'zoneinfo'), 'utf8'));
      // The 6.12 captures read vmstat seconds after meminfo (page_owner was dumped in between):
      // up to 697 pages apart (6.12 `after`). A unit error would be off by a factor of 4 or 1024.
      expect(Math.abs(v.nr_free_pages! * 4096 - mi.bytes.MemFree!)).toBeLessThanOrEqual(4096 * 4096);
      // nr_kernel_stack is in kB (NR_KERNEL_STACK_KB since 4.7); the rest are pages. Page tables
      // can come and go between the reads of a capture (equal in the lab captures).
      expect(v.nr_kernel_stack! * 1024).toBe(mi.bytes.KernelStack);
      expect(Math.abs(v.nr_page_table_pages! * 4096 - mi.bytes.PageTables!)).toBeLessThanOrEqual(64 * 4096);
      // nr_file_pages grows while the capture writes to tmpfs; kernel stacks stay put.
      expect(v.nr_kernel_stack).toBe(zi.nodeStats[0]!.nr_kernel_stack);
    },
  );

  it('reads a 2.6.29-era vmstat (pgscan_*_dma32, kswapd_steal)', () => {
    const text = fixture('lkml-2009-bug12832', 'vmstat');
    const v = parseVmstat(text);
    expect(Object.keys(v)).toHaveLength(text.trim().split('\n').length);
    expect(v.kswapd_steal).toBe(183628);
    expect(v.nr_free_pages! * 4).toBeLessThanOrEqual(
      parseMeminfo(fixture('lkml-2009-bug12832', 'meminfo')).bytes.MemFree! / 1024,
    );
  });

  it('reads the live-6.18 capture', () => {
    const text = fixture('live-6.18', 'vmstat');
    expect(Object.entries(parseVmstat(text))).toEqual(pairs(text));
  });

  describe('malformed input', () => {
    it('rejects empty input', () => {
      expectParseError(() => parseVmstat(''), {
        line: 1,
        message: ['/proc/vmstat:1: expected', '<empty input>'],
      });
    });
    it('rejects garbage, a missing value and a colon format', () => {
      expectParseError(() => parseVmstat('nr_free_pages 1\nnr_zspages\n'), {
        line: 2,
        message: ['expected "<counter> <number>"', 'found "nr_zspages"'],
      });
      expectParseError(() => parseVmstat('nr_free_pages: 1\n', { file: 'v' }), {
        line: 1,
        message: ['v:1:', 'found "nr_free_pages: 1"'],
      });
      expectParseError(() => parseVmstat('nr_free_pages 1x\n'), {
        line: 1,
        message: ['found "nr_free_pages 1x"'],
      });
    });
    it('rejects a repeated counter', () => {
      expectParseError(() => parseVmstat('pgfault 1\npgfault 2\n'), {
        line: 2,
        message: ['each counter once (pgfault repeats)'],
      });
    });
  });
});
