import { describe, expect, it } from 'vitest';
import { Addr2lineReader, parseAnswer, parseLocationLine } from './addr2line-output.js';

// eu-addr2line 0.188 -a -f -i -C --relative on the lab's 6.12 vmlinux: __kmalloc_noprof+0x14e
// (four functions deep in inlines), then kthread+0xbb (none), then the sentinel 0x0.
const OUTPUT = `0xffffffff8113ae4b
slab_post_alloc_hook inlined at mm/slub.c:4231:2 in __kmalloc_noprof
mm/slub.c:4186:3
slab_alloc_node
mm/slub.c:4231:2
__do_kmalloc_node
mm/slub.c:4365:8
__kmalloc_noprof
mm/slub.c:4378:9
0xffffffff8105960e
kthread
kernel/kthread.c:389:9
0x0000000000000000
??
??:0
`;

describe('eu-addr2line output', () => {
  it('splits answers at address lines: each closes the one before', () => {
    const r = new Addr2lineReader();
    const answers: unknown[] = [];
    for (const line of OUTPUT.trimEnd().split('\n')) {
      const started = r.push(line);
      if (started) answers.push(started.previous);
    }
    expect(answers).toEqual([
      undefined,
      [
        { function: 'slab_post_alloc_hook', file: 'mm/slub.c', line: 4186, column: 3 },
        { function: 'slab_alloc_node', file: 'mm/slub.c', line: 4231, column: 2 },
        { function: '__do_kmalloc_node', file: 'mm/slub.c', line: 4365, column: 8 },
        { function: '__kmalloc_noprof', file: 'mm/slub.c', line: 4378, column: 9 },
      ],
      [{ function: 'kthread', file: 'kernel/kthread.c', line: 389, column: 9 }],
    ]);
  });

  it('gives an empty chain for an address without line information', () => {
    expect(parseAnswer(['??', '??:0'])).toEqual([]);
    // a line without a function name (no DW_TAG_subprogram covers it)
    expect(parseAnswer(['??', 'arch/x86/entry/entry_64.S:244'])).toEqual([
      { function: '', file: 'arch/x86/entry/entry_64.S', line: 244 },
    ]);
  });

  it('reads FILE:LINE with and without a column', () => {
    expect(parseLocationLine('./include/linux/slab.h:898:9')).toEqual({
      file: './include/linux/slab.h',
      line: 898,
      column: 9,
    });
    expect(parseLocationLine('/src/a:b.c:12')).toEqual({ file: '/src/a:b.c', line: 12 });
    expect(parseLocationLine('??:0')).toBeUndefined();
  });

  it('refuses output that does not start with an address', () => {
    expect(() => new Addr2lineReader().push('kthread')).toThrow(/expected an address line first/);
  });
});
