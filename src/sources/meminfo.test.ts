import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture, LAB_MOMENTS as MOMENTS } from '../../test/parsers.js';
import { labFixture } from '../../test/paths.js';
import { parseMeminfo } from './meminfo.js';

/** Independent reading of the text: `Name: N kB` lines by plain string splitting. */
function kbLines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const l of text.split('\n')) {
    const parts = l.replace(/^Node \d+ /, '').split(/\s+/);
    if (parts[2] === 'kB') out.set(parts[0]!.replace(/:$/, ''), Number(parts[1]) * 1024);
  }
  return out;
}

describe('parseMeminfo', () => {
  it('reads this machine’s /proc/meminfo: every line a field, kB converted to bytes', () => {
    const text = readFileSync('/proc/meminfo', 'utf8');
    const mi = parseMeminfo(text);
    expect(mi.fields).toHaveLength(text.trim().split('\n').length);
    expect(mi.node).toBeUndefined();
    const kb = kbLines(text);
    expect(kb.size).toBeGreaterThan(20);
    for (const [name, bytes] of kb) expect(mi.bytes[name], name).toBe(bytes);
    expect(mi.bytes.MemTotal).toBeGreaterThan(0);
    expect(mi.bytes.MemFree).toBeLessThanOrEqual(mi.bytes.MemTotal!);
    // 6.18 has every field the accounting needs.
    for (const name of [
      'MemAvailable',
      'Shmem',
      'KReclaimable',
      'SUnreclaim',
      'KernelStack',
      'Percpu',
      'VmallocUsed',
    ]) {
      expect(mi.bytes[name], name).toBeTypeOf('number');
    }
    expect(mi.counts.HugePages_Total).toBeTypeOf('number');
    expect(mi.fields.find((f) => f.name === 'HugePages_Total')?.unit).toBe('count');
  });

  it('reads the per-node file of this machine (Node 0 prefix) and the live-6.18 capture of it', () => {
    for (const text of [
      readFileSync('/sys/devices/system/node/node0/meminfo', 'utf8'),
      fixture('live-6.18', 'node0-meminfo'),
    ]) {
      const mi = parseMeminfo(text, { file: '/sys/devices/system/node/node0/meminfo' });
      expect(mi.node).toBe(0);
      expect(mi.bytes.MemTotal).toBeGreaterThan(0);
      expect(mi.bytes.MemUsed).toBe(mi.bytes.MemTotal! - mi.bytes.MemFree!);
      expect(mi.counts.HugePages_Total).toBeTypeOf('number');
    }
  });

  it.each(MOMENTS)('reads lab %s %s', (kernel, moment) => {
    const text = readFileSync(join(labFixture(kernel, moment), 'meminfo'), 'utf8');
    const mi = parseMeminfo(text);
    const kb = kbLines(text);
    expect(Object.keys(mi.bytes)).toEqual([...kb.keys()]);
    for (const [name, bytes] of kb) expect(mi.bytes[name]).toBe(bytes);
    // tinyconfig without hugetlbfs: no HugePages_* lines at all, and nothing unitless.
    expect(mi.counts).toEqual({});
    expect(mi.bytes.Slab).toBe(mi.bytes.SReclaimable! + mi.bytes.SUnreclaim!);
  });

  it('reads the live-6.18 capture', () => {
    const mi = parseMeminfo(fixture('live-6.18', 'meminfo'));
    expect(mi.fields.map((f) => f.name)).toContain('Zswapped');
    expect(mi.bytes.Slab).toBe(mi.bytes.SReclaimable! + mi.bytes.SUnreclaim!);
  });

  it('reads a 3.6-era meminfo without MemAvailable (Documentation/filesystems/proc.txt)', () => {
    const mi = parseMeminfo(fixture('docs-3.6', 'meminfo'));
    expect(mi.bytes.MemAvailable).toBeUndefined();
    expect(mi.bytes.Shmem).toBeUndefined();
    expect(mi.bytes.MemTotal).toBe(16344972 * 1024);
    expect(mi.bytes.AnonHugePages).toBe(49152 * 1024);
    expect(mi.bytes.HighTotal).toBe(15597528 * 1024);
  });

  it('keeps unitless fields of old kernels as counts: 2.5 ReverseMaps, 2.6.29 DirectMap', () => {
    const old = parseMeminfo(fixture('docs-2.5', 'meminfo'));
    expect(old.counts.ReverseMaps).toBe(1080904);
    expect(old.bytes.ReverseMaps).toBeUndefined();
    const bug = parseMeminfo(fixture('lkml-2009-bug12832', 'meminfo'));
    expect(bug.counts.DirectMap4k).toBe(2032);
    expect(bug.counts.HugePages_Rsvd).toBe(0);
    expect(bug.bytes.Hugepagesize).toBe(2048 * 1024);
    expect(bug.bytes.VmallocTotal).toBe(34359738367 * 1024);
    // The kernel printed a wrapped -3; kept as the nearest double, not rejected.
    expect(bug.counts.DirectMap2M).toBe(Number('18446744073709551613'));
  });

  it('reads a 2.6.8 meminfo (no AnonPages, no SReclaimable)', () => {
    const mi = parseMeminfo(fixture('lkml-2.6.8', 'meminfo'));
    expect(mi.bytes.AnonPages).toBeUndefined();
    expect(mi.bytes.Slab).toBe(9068 * 1024);
    expect(mi.fields.at(-1)).toEqual({ name: 'VmallocChunk', value: 900312 * 1024, unit: 'bytes', line: 22 });
  });

  describe('malformed input', () => {
    it('rejects empty input', () => {
      expectParseError(() => parseMeminfo(''), {
        file: '/proc/meminfo',
        line: 1,
        message: ['/proc/meminfo:1: expected', '<empty input>'],
      });
      expectParseError(() => parseMeminfo('\n\n'), { line: 1, message: ['<empty input>'] });
    });
    it('names file, line, expected and found for a garbage line', () => {
      expectParseError(
        () => parseMeminfo('MemTotal:  100 kB\nMemFree:   abc kB\n', { file: 'bundle:meminfo' }),
        {
          file: 'bundle:meminfo',
          line: 2,
          message: ['bundle:meminfo:2: expected "Name:   <number> kB"', 'found "MemFree:   abc kB"'],
        },
      );
      expectParseError(() => parseMeminfo('MemTotal 100 kB\n'), {
        line: 1,
        message: ['found "MemTotal 100 kB"'],
      });
      expectParseError(() => parseMeminfo('MemTotal:  100 MB\n'), {
        line: 1,
        message: ['found "MemTotal:  100 MB"'],
      });
      expectParseError(() => parseMeminfo('MemTotal:  -100 kB\n'), {
        line: 1,
        message: ['found "MemTotal:  -100 kB"'],
      });
    });
    it('rejects a line cut in the middle (truncated file)', () => {
      const text = `${fixture('live-6.18', 'meminfo').split('\n').slice(0, 5).join('\n')}\nBuffers:  `;
      expectParseError(() => parseMeminfo(text), { line: 6, message: ['found "Buffers:  "'] });
    });
    it('rejects a repeated field (two captures pasted together)', () => {
      const one = fixture('lkml-2.6.8', 'meminfo');
      expectParseError(() => parseMeminfo(one + one), {
        line: 23,
        message: ['each field once (MemTotal already on an earlier line)'],
      });
    });
    it('rejects mixed node prefixes', () => {
      expectParseError(() => parseMeminfo('Node 0 MemTotal: 10 kB\nNode 1 MemFree: 5 kB\n'), {
        line: 2,
        message: ['expected "Node 0 MemFree: ..."', 'found "Node 1 MemFree: 5 kB"'],
      });
      expectParseError(() => parseMeminfo('MemTotal: 10 kB\nNode 0 MemFree: 5 kB\n'), {
        line: 2,
        message: ['a line without "Node N "'],
      });
    });
    it('rejects text without MemTotal', () => {
      expectParseError(() => parseMeminfo('MemFree: 10 kB\n', { file: 'x' }), {
        file: 'x',
        message: ['a MemTotal line'],
      });
    });
  });
});
