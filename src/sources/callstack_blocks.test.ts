import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { parseCallstackBlocks } from './callstack_blocks.js';

const read = (p: string) => readFileSync(p, 'utf8');

describe('parseCallstackBlocks', () => {
  it('reads page_owner_sort output (N times, P pages: + description + stack)', () => {
    const b = parseCallstackBlocks(read(join(REPO_FIXTURES, 'slabtrace', 'page_owner_sort-doc.txt')));
    expect(b.length).toBe(1);
    expect(b[0]).toMatchObject({ count: 1, pages: 1 });
    expect(b[0]!.description[0]).toMatch(/^Page allocated via order 0/);
    expect(b[0]!.frames.map((f) => f.func)).toEqual([
      'register_dummy_stack',
      'init_page_owner',
      'page_ext_init',
      'kernel_init_freeable',
    ]);
  });

  it('reads a real count + call trace capture (6.1 alloc_traces shape)', () => {
    const text = read(join(labFixture('6.1', 'after'), 'slab', 'kmalloc-96.alloc_traces'));
    const b = parseCallstackBlocks(text);
    expect(b.length).toBe(text.split('\n').filter((l) => /^ +\d+ /.test(l)).length);
    const leak = b.find((x) => x.labels.text?.startsWith('msl_slab_leak'))!;
    expect(leak.frames.map((f) => f.func).slice(0, 2)).toEqual(['__kmalloc', 'msl_slab_leak']);
    expect(leak.count).toBe(400);
    expect(leak.labels.text).toMatch(/^msl_slab_leak\+0x10\/0x3c \[msl_leaky\] age=/);
  });

  it('reads count: / count= headers with size and cache labels (before/after slabtrace dumps)', () => {
    const stack = read(join(labFixture('6.1', 'after'), 'kmemleak'))
      .split('\n')
      .slice(6, 14)
      .join('\n');
    const b = parseCallstackBlocks(
      `count: 400 cache: kmalloc-96 size: 96\n${stack}\n\ncount=3 bytes=300\n${stack}\n`,
    );
    expect(b[0]).toMatchObject({ count: 400, bytes: 38400, labels: { cache: 'kmalloc-96' } });
    expect(b[0]!.frames[2]).toMatchObject({ func: 'msl_slab_leak', module: 'msl_leaky' });
    expect(b[1]).toMatchObject({ count: 3, bytes: 300 });
  });

  it('rejects garbage with file and line', () => {
    expect(() => parseCallstackBlocks('', { file: 'b' })).toThrow(/b:1: expected/);
    expect(() => parseCallstackBlocks('  foo+0x1/0x2\n', { file: 'b' })).toThrow(
      /b:1: expected a count line/,
    );
    expect(() => parseCallstackBlocks('3 times:\n', { file: 'b' })).toThrow(/b:1: expected stack frames/);
    expect(() => parseCallstackBlocks('3 times:\n foo+0x1/0x2\n not a frame here\n', { file: 'b' })).toThrow(
      /b:3:/,
    );
  });
});
