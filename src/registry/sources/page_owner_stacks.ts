import { StackAggregator, type StackGroup } from '../../analysis/stacks.js';
import { sourceLocation } from '../../model/snapshot.js';
import { parsePageOwnerStacks } from '../../sources/page_owner.js';
import { pageSizeOf, type SourceEntry } from '../types.js';

/**
 * /sys/kernel/debug/page_owner_stacks/show_stacks (6.9+): the kernel's own count of base
 * pages per allocation stack: much smaller than the page_owner dump, with the same stacks
 * (page cache included). Not in the diff's ranking, where it would count page_owner's pages
 * a second time.
 */
export const pageOwnerStacks: SourceEntry<StackGroup[]> = {
  name: 'page_owner_stacks',
  location: sourceLocation('page_owner_stacks'),
  title: 'base pages per allocation stack (/sys/kernel/debug/page_owner_stacks/show_stacks, 6.9+)',
  async load(snap, options) {
    const text = await snap.readText('page_owner_stacks');
    if (text === undefined) return undefined;
    const pageSizeBytes = await pageSizeOf(snap, options);
    const agg = new StackAggregator();
    for (const s of parsePageOwnerStacks(text, { file: snap.describe('page_owner_stacks') }))
      agg.add(s.frames, { count: 1, pages: s.nrBasePages, bytes: s.nrBasePages * pageSizeBytes });
    return agg.result();
  },
  recognise: (head) => /^ \S+\+0x[0-9a-f]+\/0x[0-9a-f]+\n(?: \S.*\n)*nr_base_pages: -?\d+$/m.test(head),
};
