import { describe, expect, it } from 'vitest';
import { parseExposition } from '../../test/exposition.js';
import { promtool } from '../../test/prometheus.js';
import { FamilyBuilder } from '../registry/index.js';
import { encodeFamilies, formatValue } from './exposition.js';

describe('the text exposition', () => {
  it('writes HELP, TYPE and samples with labels sorted by name, as client_golang does', () => {
    const f = new FamilyBuilder('node_buddyinfo_blocks', 'Count of free blocks according to size.', 'gauge', [
      'node',
      'zone',
      'size',
    ])
      .add(['0', 'DMA32', 0], 3)
      .add(['0', 'DMA32', 10], 109);
    expect(encodeFamilies([f.family])).toBe(
      '# HELP node_buddyinfo_blocks Count of free blocks according to size.\n' +
        '# TYPE node_buddyinfo_blocks gauge\n' +
        'node_buddyinfo_blocks{node="0",size="0",zone="DMA32"} 3\n' +
        'node_buddyinfo_blocks{node="0",size="10",zone="DMA32"} 109\n',
    );
  });

  it('escapes help and label values so that promtool and a reader get them back', () => {
    const nasty = ['a "quoted" \\path\\', 'two\nlines', 'ünïcødé [mod]', 'demo_vbuf_grow [leaky]'];
    const f = new FamilyBuilder('memsleuth_test_bytes', 'Help with a \\ backslash\nand a newline.', 'gauge', [
      'caller',
    ]);
    nasty.forEach((n, i) => {
      f.add([n], i * 1024);
    });
    const text = encodeFamilies([f.family]);
    const back = parseExposition(text).get('memsleuth_test_bytes')!;
    expect(back.help).toBe('Help with a \\ backslash\nand a newline.');
    expect(back.samples.map((s) => s.labels.caller)).toEqual(nasty);
    const check = promtool(['check', 'metrics'], text);
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('writes values Go parses: integers, fractions, huge, NaN and infinities', () => {
    expect([1, 0.5, 1.8446744073709552e19, Number.NaN, Infinity, -Infinity, -0].map(formatValue)).toEqual([
      '1',
      '0.5',
      '18446744073709552000',
      'NaN',
      '+Inf',
      '-Inf',
      '0',
    ]);
  });

  it('leaves out families without samples and refuses what a scraper would reject', () => {
    const empty = new FamilyBuilder('memsleuth_nothing', 'x', 'gauge');
    expect(encodeFamilies([empty.family])).toBe('');
    const f = (name: string, labels: string[] = []) => new FamilyBuilder(name, 'x', 'gauge', labels);
    expect(() => encodeFamilies([f('bad-name').add([], 1).family])).toThrow(/not valid/);
    expect(() => encodeFamilies([f('m', ['__reserved']).add(['a'], 1).family])).toThrow(/label name/);
    expect(() => encodeFamilies([f('m', ['a']).add([], 1).family])).toThrow(/0 label values for 1/);
    expect(() => encodeFamilies([f('m', ['a']).add(['x'], 1).add(['x'], 2).family])).toThrow(/twice/);
    expect(() => encodeFamilies([f('m').add([], 1).family, f('m').add([], 2).family])).toThrow(/twice/);
  });
});
