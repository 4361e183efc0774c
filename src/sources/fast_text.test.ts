import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LAB_MOMENTS } from '../../test/parsers.js';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { type Meminfo, meminfoFast, parseMeminfo } from './meminfo.js';
import { parseSlabinfo, slabinfoFast } from './slabinfo.js';
import { parseVmstat, vmstatFast } from './vmstat.js';

// The character loops of meminfo, vmstat and slabinfo (the recorder's every tick) against the line
// parsers: a trailing space on every line makes the loops decline, so the second parse of
// each text goes through the line parser.
const slow = (text: string) => text.replace(/\n/g, ' \n');

function captures(name: 'meminfo' | 'vmstat' | 'slabinfo'): [string, string][] {
  const dirs = [
    join(REPO_FIXTURES, 'live-6.18'),
    ...(name === 'slabinfo' ? [] : [join(REPO_FIXTURES, 'owners-6.18', 'snapshot')]),
    join(REPO_FIXTURES, 'lkml-2009-bug12832'),
    ...(name === 'meminfo' ? ['lkml-2.6.8', 'docs-2.5', 'docs-3.6'].map((d) => join(REPO_FIXTURES, d)) : []),
    ...(name === 'slabinfo' ? [join(REPO_FIXTURES, 'lkml-2.6.8')] : []),
    ...LAB_MOMENTS.map(([k, m]) => labFixture(k, m)),
  ];
  return [
    ['this machine', readFileSync(`/proc/${name}`, 'latin1')],
    ...dirs.map((d): [string, string] => [d, readFileSync(join(d, name), 'latin1')]),
  ];
}

describe('meminfo, vmstat and slabinfo read by a character loop', () => {
  it('reads every captured meminfo as the line parser does', () => {
    for (const [where, text] of captures('meminfo')) {
      const fast: Meminfo = { fields: [], bytes: {}, counts: {} };
      const last = meminfoFast(text, 1 << 20, fast, new Set());
      expect(parseMeminfo(text), where).toEqual(parseMeminfo(slow(text)));
      // 2.6.29 printed a wrapped-negative DirectMap2M (20 digits): the line parser's to read.
      if (where.endsWith('lkml-2009-bug12832')) {
        expect(last).toBe(-1);
        continue;
      }
      expect(last, where).toBe(text.split('\n').length - 1);
      expect(fast, where).toEqual(parseMeminfo(slow(text)));
    }
  });

  it('reads every captured vmstat as the line parser does', () => {
    for (const [where, text] of captures('vmstat')) {
      expect(vmstatFast(text, 1 << 20), where).toEqual(parseVmstat(slow(text)));
      expect(Object.keys(parseVmstat(text)), where).toEqual(Object.keys(parseVmstat(slow(text))));
    }
  });

  it('reads every captured slabinfo 2.1 as the line parser does, and leaves 2.0 to it', () => {
    for (const [where, text] of captures('slabinfo')) {
      expect(parseSlabinfo(text), where).toEqual(parseSlabinfo(slow(text)));
      const fast = slabinfoFast(text, 1 << 20);
      if (text.startsWith('slabinfo - version: 2.0')) {
        expect(fast, where).toBeUndefined();
        continue;
      }
      expect(fast, where).toEqual(parseSlabinfo(slow(text)));
    }
  });

  it('declines what the kernel does not print, leaving the line parser to read it or name the error', () => {
    const m = 'MemTotal:       16000 kB\nMemFree:         8000 kB\n';
    expect(meminfoFast(m, 1 << 20, { fields: [], bytes: {}, counts: {} }, new Set())).toBe(2);
    for (const bad of [
      '',
      'MemTotal:       16000 kB', // cut: no newline
      'MemTotal:16000 kB\n', // no blank after the colon
      'MemTotal:\t16000 kB\n',
      'Node 0 MemTotal:       16000 kB\n',
      'MemTotal:       16000 kB\n\n',
      'MemTotal:       16000 kB\nMemTotal:       16000 kB\n',
      'MemTotal:       1234567890123456 kB\n', // 16 digits
      'MemTotal:       16000 kb\n',
      'MemTotal:       -1 kB\n',
      'Mem-Total:       1 kB\n',
    ])
      expect(
        meminfoFast(bad, 1 << 20, { fields: [], bytes: {}, counts: {} }, new Set()),
        JSON.stringify(bad),
      ).toBe(-1);
    expect(vmstatFast('nr_free_pages 1\npgfault 2\n', 1 << 20)).toEqual({ nr_free_pages: 1, pgfault: 2 });
    for (const bad of [
      '',
      'a 1',
      'a  1\n',
      'a -1\n',
      'a 1 \n',
      'a 1\na 2\n',
      'a 1234567890123456\n',
      'a-b 1\n',
      '\n',
    ])
      expect(vmstatFast(bad, 1 << 20), JSON.stringify(bad)).toBeUndefined();
    // Longer than allowed: the line parser names the line.
    expect(vmstatFast('a 1\n', 3)).toBeUndefined();
    const head =
      'slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n';
    const ok =
      'dentry            100    120    192   21    1 : tunables    0    0    0 : slabdata      6      6      0\n';
    expect(slabinfoFast(head + ok, 1 << 20)?.caches[0]).toMatchObject({
      name: 'dentry',
      activeObjs: 100,
      line: 3,
    });
    for (const [why, bad] of [
      ['no caches', head],
      ['2.0', head.replace('2.1', '2.0') + ok],
      ['statistics', head.replace('2.1', '2.1 (statistics)') + ok],
      ['no header', `slabinfo - version: 2.1\n${ok}`],
      ['blank line', `${head}\n${ok}`],
      ['name with a space', head + ok.replace('dentry', 'den try')],
      ['four numbers', head + ok.replace('   21 ', ' ')],
      ['more active than objects', head + ok.replace('100    120', '130    120')],
      ['repeated', head + ok + ok],
      ['extra section', head + ok.replace('\n', ' : globalstat 1 2\n')],
      ['cut', (head + ok).slice(0, -1)],
      ['16 digits', head + ok.replace('100 ', '1234567890123456 ')],
    ] as const)
      expect(slabinfoFast(bad, 1 << 20), why).toBeUndefined();
  });
});
