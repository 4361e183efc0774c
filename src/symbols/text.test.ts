import { describe, expect, it } from 'vitest';
import { annotateLine, formatResolution, framesInLine } from './text.js';

const frames = (line: string) => framesInLine(line).map((f) => f.frame);

describe('framesInLine', () => {
  it('finds the frame of each kernel format (lines from the lab captures)', () => {
    // page_owner and slab traces (6.12)
    expect(frames(' msl_page_leak+0x21/0x43 [msl_leaky]')).toEqual([
      { func: 'msl_page_leak', offset: 0x21, length: 0x43, module: 'msl_leaky' },
    ]);
    expect(frames(' __alloc_pages_node_noprof.constprop.0+0xe/0xf [msl_leaky]')[0]!.func).toBe(
      '__alloc_pages_node_noprof.constprop.0',
    );
    // kmemleak before 6.2, with the return address in front
    expect(frames('    [<ffffffff81119085>] __kmem_cache_alloc_node+0xf0/0x106')).toEqual([
      { func: '__kmem_cache_alloc_node', offset: 0xf0, length: 0x106 },
    ]);
    // vmallocinfo: the caller stands mid-line
    const v =
      '0xffffc9000000c000-0xffffc9000000f000   12288 msl_vmalloc_leak+0x25/0x47 [msl_leaky] pages=2 vmalloc';
    const found = framesInLine(v);
    expect(found.map((f) => f.frame)).toEqual([
      { func: 'msl_vmalloc_leak', offset: 0x25, length: 0x47, module: 'msl_leaky' },
    ]);
    expect(v.slice(found[0]!.start, found[0]!.end)).toBe('msl_vmalloc_leak+0x25/0x47 [msl_leaky]');
    // slab trace header: count, frame, then age/pid
    expect(frames('    400 msl_slab_leak+0x26/0x58 [msl_leaky] age=2949/8142/13338 pid=8-28')).toHaveLength(
      1,
    );
  });

  it('reads dmesg stack dumps: unreliable frames, build-ids, the faulting RIP', () => {
    expect(
      frames(
        '[   12.345678]  ? msl_page_leak+0x21/0x43 [msl_leaky 19182e29a9b194c983ff94612b0f2b5f8b441f05]',
      ),
    ).toEqual([
      {
        func: 'msl_page_leak',
        offset: 0x21,
        length: 0x43,
        module: 'msl_leaky',
        buildId: '19182e29a9b194c983ff94612b0f2b5f8b441f05',
      },
    ]);
    expect(frames('[   12.3] RIP: 0010:msl_oops+0x12/0x30 [msl_leaky]')[0]!.exact).toBe(true);
    expect(
      frames('RIP: 0010:[<ffffffff8113acfd>]  [<ffffffff8113acfd>] __kmalloc+0x3d/0x200')[0]!.exact,
    ).toBe(true);
    expect(frames('pc : do_page_fault+0x1c/0x40')[0]!.exact).toBe(true);
    expect(frames('lr : do_page_fault+0x1c/0x40')[0]!.exact).toBeUndefined();
    expect(frames('[   12.3]  dump_stack_lvl+0x45/0x60')[0]!.exact).toBeUndefined();
  });

  it('leaves text without frames alone', () => {
    for (const line of [
      'unreferenced object 0xffff888003150f00 (size 96):',
      'Page allocated via order 1, mask 0xcc0(GFP_KERNEL), pid 14',
      'x+0xzz',
      '0x10+0x20',
      'a.b+1',
    ])
      expect(frames(line)).toEqual([]);
  });
});

describe('annotation', () => {
  const chain = {
    locations: [
      { function: 'kmalloc_noprof', file: 'include/linux/slab.h', line: 898, column: 9 },
      { function: 'msl_slab_leak', file: 'msl_leaky.c', line: 77, column: 12 },
    ],
  };

  it('puts the frame’s own file:line first, then the inlined functions innermost first', () => {
    expect(formatResolution(chain)).toBe('msl_leaky.c:77 (inlined kmalloc_noprof include/linux/slab.h:898)');
    expect(formatResolution(chain, { inlines: false })).toBe('msl_leaky.c:77');
    expect(formatResolution({ locations: [] })).toBe('');
  });

  it('inserts after each frame with a note, leaving the rest of the line as it was', () => {
    const line = '0xffffc900-0xffffc903 12288 msl_vmalloc_leak+0x25/0x47 [msl_leaky] pages=2 vmalloc';
    expect(annotateLine(line, framesInLine(line), ['msl_leaky.c:104'])).toBe(
      '0xffffc900-0xffffc903 12288 msl_vmalloc_leak+0x25/0x47 [msl_leaky] msl_leaky.c:104 pages=2 vmalloc',
    );
    const two = 'a+0x1/0x2 b+0x3/0x4 [m]';
    expect(annotateLine(two, framesInLine(two), [undefined, 'b.c:3'])).toBe('a+0x1/0x2 b+0x3/0x4 [m] b.c:3');
  });
});
