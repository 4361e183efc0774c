import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { allocTagKey, parseAllocinfo } from './allocinfo.js';

const read = (p: string) => readFileSync(p, 'utf8');

describe('parseAllocinfo', () => {
  it('reads the 6.12 lab /proc/allocinfo (version 1.0)', () => {
    const file = join(labFixture('6.12', 'after'), 'allocinfo');
    const text = read(file);
    const a = parseAllocinfo(text, { file });
    expect(a.version).toBe('1.0');
    expect(a.tags.length).toBe(text.trim().split('\n').length - 2);
    // 400 msl_slab_leak objects of kmalloc-96, charged its 192-byte stride under slub_debug=U;
    // the module was built out of tree, so its tags name the build directory's msl_leaky.c.
    const cache = a.tags.find((t) => t.func === 'msl_slab_leak')!;
    const src = '/root/.cache/memsleuth-lab/module-6.12-137179507dd6-f670bc5bcaa1/msl_leaky.c';
    expect(cache).toMatchObject({
      bytes: 76800,
      calls: 400,
      sourceFile: src,
      sourceLine: 77,
      module: 'msl_leaky',
      accurate: true,
    });
    expect(allocTagKey(cache)).toBe(`${src}:77 [msl_leaky] msl_slab_leak`);
    const first = a.tags[0]!;
    expect(first).toMatchObject({
      bytes: 0,
      calls: 0,
      sourceFile: 'init/main.c',
      sourceLine: 1311,
      func: 'do_initcalls',
    });
    expect(first.module).toBeUndefined();
  });

  it('reads version 2.0 with accurate:no', () => {
    const a = parseAllocinfo(read(join(REPO_FIXTURES, 'allocinfo-2.0', 'commit-39d117e04d15.allocinfo')));
    expect(a.version).toBe('2.0');
    expect(a.tags.map((t) => t.accurate)).toEqual([true, true, false, true]);
  });

  it('rejects garbage with file and line', () => {
    expect(() => parseAllocinfo('', { file: 'a' })).toThrow(/a:1: expected/);
    expect(() =>
      parseAllocinfo('allocinfo - version: 1.0\n   12 3 x.c:1 func:f\n  abc 1 x.c:2 func:g\n', { file: 'a' }),
    ).toThrow(/a:3:/);
    expect(() => parseAllocinfo('   12 3 x.c:1 func:f bogus:1\n', { file: 'a' })).toThrow(/a:1:.*bogus/);
    expect(() => parseAllocinfo('   12 3 x.c:1 func:f\nallocinfo - version: 1.0\n', { file: 'a' })).toThrow(
      /a:2:/,
    );
  });
});
