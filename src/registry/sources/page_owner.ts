import { groupPageOwner, KERNEL_ALLOCATORS } from '../../analysis/page_owner.js';
import { culpritFrame, diffGroups, moduleOf, type StackGroup } from '../../analysis/stacks.js';
import { callerName } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import { type DiffRow, pageSizeOf, type SourceEntry } from '../types.js';

/** page_owner grouped by allocation stack, and how many page blocks were left out. */
export interface PageOwnerStacks {
  groups: StackGroup[];
  /** Page blocks left out (page cache and anonymous pages, unless `pageOwnerAll`). */
  leftOut: number;
}

/**
 * /sys/kernel/debug/page_owner, streamed and grouped by stack. By default only kernel
 * allocations are kept (slab, vmalloc and the rest, the buddy "black hole"): page cache and
 * anonymous pages are user memory and file cache that meminfo (AnonPages, Cached, Shmem) and
 * the processes already rank; page_owner's job here is the kernel's own allocations, the ones
 * no other counter names.
 */
export const pageOwner: SourceEntry<PageOwnerStacks> = {
  name: 'page_owner',
  location: sourceLocation('page_owner'),
  title: 'who holds every page block (/sys/kernel/debug/page_owner)',
  command: 'page-owner top',
  async load(snap, options) {
    const stream = await snap.openStream('page_owner');
    if (!stream) return undefined;
    const pageSizeBytes = await pageSizeOf(snap, options);
    const r = await groupPageOwner(stream, {
      by: 'stack',
      pageSizeBytes,
      file: snap.describe('page_owner'),
      ...(options.pageOwnerAll ? {} : { allocators: KERNEL_ALLOCATORS }),
    });
    return { groups: r.groups, leftOut: r.records - r.kept };
  },
  recognise: (head) => /^Page allocated via order \d+/.test(head),

  diff(b, a) {
    const rows: DiffRow[] = diffGroups(b.groups, a.groups, 'bytes').map((d) => {
      const row: DiffRow = {
        source: 'page_owner',
        name: d.frames.length ? callerName(culpritFrame(d.frames)) : '<no stack>',
        beforeBytes: d.before.bytes,
        afterBytes: d.after.bytes,
        deltaBytes: d.delta.bytes,
        deltaCount: d.delta.pages,
        countUnit: 'pages',
        frames: d.frames,
      };
      const m = moduleOf(d.frames);
      if (m) row.module = m;
      return row;
    });
    return b.leftOut || a.leftOut
      ? {
          rows,
          note: `page cache and anonymous page blocks left out: ${b.leftOut} before, ${a.leftOut} after`,
        }
      : { rows };
  },
};
