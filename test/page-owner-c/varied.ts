/**
 * Varied page_owner dumps for the differential tests: the lab's real records with pids
 * over the full range and stacks varied V ways (bench/page-owner/dump.ts, the generator
 * of the benchmark), and, if asked, records the fast path does not take spliced in every
 * so often: each of them written as some kernel, or some hand, could print it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { writeDump } from '../../bench/page-owner/dump.js';

/** Records the byte scanner hands to the slow paths, each a reason to. */
export const ODD_RECORDS: readonly string[] = [
  // 5.11-5.17: pid, no tgid or comm.
  'Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 77, ts 1234567 ns, free_ts 0 ns\nPFN 4242 type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20\n kthread+0xe5/0x110',
  // 5.18: pid and comm.
  'Page allocated via order 1, mask 0xcc0(GFP_KERNEL), pid 78 (sh), ts 1234568 ns, free_ts 0 ns\nPFN 4244 type Unmovable Block 8 type Unmovable Flags 0x200(slab|zone=0)\n alloc_thing+0x10/0x20\n kthread+0xe5/0x110',
  // A task name that page_owner_sort's ts expression matches first.
  'Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 79, tgid 79 (x ts 5 ns), ts 99 ns\nPFN 0x4245 type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20\n kthread+0xe5/0x110',
  // A task name holding "), ts".
  'Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 80, tgid 80 (a), ts b), ts 100 ns\nPFN 0x4246 type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20',
  // The PFN line after the stack.
  'Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 81, tgid 81 (cat), ts 101 ns\n alloc_thing+0x10/0x20\nPFN 0x4247 type Movable Block 8 type CMA Flags 0x0(zone=0)\n kthread+0xe5/0x110',
  // No PFN line: page_owner_sort uses the previous record's.
  'Page allocated via order 2, mask 0xcc0(GFP_KERNEL), pid 82, tgid 82 (cat), ts 102 ns\n alloc_thing+0x10/0x20\n kthread+0xe5/0x110',
  // Leading zeros in the pid.
  'Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 0083, tgid 83 (cat), ts 103 ns\nPFN 0x4249 type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20',
  // A migrated page (4.6+) and a memcg line (6.8+) after the stack: the fast path.
  'Page allocated via order 0, mask 0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), pid 84, tgid 84 (cat), ts 104 ns\nPFN 0x424a type Movable Block 8 type Movable Flags 0x0(zone=1)\n alloc_thing+0x10/0x20\n kthread+0xe5/0x110\nPage has been migrated, last migrate reason: compaction\nCharged to memcg user.slice',
  // A vmalloc stack as page_owner_sort tests it.
  'Page allocated via order 0, mask 0xcc2(GFP_KERNEL|__GFP_HIGHMEM), pid 85, tgid 85 (insmod), ts 105 ns\nPFN 0x424b type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n __alloc_pages_noprof+0x106/0x173\n __vmalloc_node_range_noprof+0x29c/0x6c6\n __vmalloc_node_noprof+0x4e/0x56\n demo_vbuf_grow+0x27/0x47 [leaky]',
];

/** Records that are not page_owner's but that page_owner_sort still sorts. */
export const GARBAGE_RECORDS: readonly string[] = [
  // An empty record (two blank lines in a row).
  '',
  // A header of no known form.
  'Page allocated via order x, mask ?\nPFN 0x424c type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n not_a_frame',
  // Numbers the record parser refuses (the scanner leaves them to the slow path): an
  // order above any kernel's, one of 20 digits, a mask and PFNs of 2^53 or more.
  'Page allocated via order 21, mask 0xcc0(GFP_KERNEL), pid 86, tgid 86 (cat), ts 106 ns\nPFN 0x424d type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20',
  'Page allocated via order 99999999999999999999, mask 0xcc0(GFP_KERNEL), pid 87, tgid 87 (cat), ts 107 ns\nPFN 0x424e type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20',
  'Page allocated via order 0, mask 0x20000000000000(GFP_KERNEL), pid 88, tgid 88 (cat), ts 108 ns\nPFN 0x424f type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20',
  'Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 89, tgid 89 (cat), ts 109 ns\nPFN 0x20000000000000 type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20',
  'Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 90, tgid 90 (cat), ts 110 ns\nPFN 99999999999999999999 type Unmovable Block 8 type Unmovable Flags 0x0(zone=0)\n alloc_thing+0x10/0x20',
];

export interface VariedOptions {
  source: string;
  bytes: number;
  variants: number;
  seed: number;
  /** Records spliced in, one after every `every` records, in turn. */
  odd?: readonly string[];
  every?: number;
}

/** Write a varied dump; returns its record count. */
export async function writeVariedDump(path: string, o: VariedOptions): Promise<number> {
  const st = await writeDump(path, { source: o.source, bytes: o.bytes, variants: o.variants, seed: o.seed });
  if (!o.odd?.length) return st.records;
  const every = o.every ?? 97;
  const recs = readFileSync(path, 'latin1').split('\n\n');
  if (recs[recs.length - 1] === '') recs.pop();
  const out: string[] = [];
  let k = 0;
  recs.forEach((r, i) => {
    out.push(r);
    if (i % every === every - 1) out.push(o.odd![k++ % o.odd!.length]!);
  });
  writeFileSync(path, `${out.join('\n\n')}\n\n`, 'latin1');
  return out.length;
}
