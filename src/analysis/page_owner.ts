/**
 * page_owner analysis over the stream: group outstanding page blocks by stack,
 * culprit function, module, process, order, GFP mask, migratetype or allocator, and
 * diff two dumps. Memory is bounded by the distinct groups (StackAggregator), never by
 * the number of records; timestamps and PFNs are ignored by construction.
 */

import {
  type PageOwnerInput,
  type PageOwnerParseOptions,
  type PageOwnerRecord,
  parsePageOwner,
} from '../sources/page_owner.js';
import {
  culpritFrame,
  diffGroups,
  type Frame,
  type GroupDelta,
  moduleOf,
  StackAggregator,
  type StackGroup,
} from './stacks.js';

export type PageOwnerGroupBy =
  | 'stack'
  | 'function'
  | 'module'
  | 'comm'
  | 'order'
  | 'gfp'
  | 'migratetype'
  | 'allocator';

export const PAGE_OWNER_GROUP_BY: readonly PageOwnerGroupBy[] = [
  'stack',
  'function',
  'module',
  'comm',
  'order',
  'gfp',
  'migratetype',
  'allocator',
];

/** Who handed out the pages, from the stack and the page flags. */
export type PageAllocator = 'slab' | 'vmalloc' | 'page cache' | 'anonymous' | 'other';

export const PAGE_ALLOCATORS: readonly PageAllocator[] = [
  'slab',
  'vmalloc',
  'page cache',
  'anonymous',
  'other',
];

const SLAB_FUNCS = ['allocate_slab', 'new_slab', 'alloc_slab_page', '___slab_alloc'];
const VMALLOC_FUNCS = ['__vmalloc_node_range', 'vm_area_alloc_pages', '__vmalloc_area_node'];
// Page cache (including shmem/tmpfs, which is page cache too) and readahead.
const CACHE_FUNCS = [
  'filemap_',
  '__filemap_',
  'page_cache_ra',
  'pagecache_get_page',
  'grab_cache_page',
  'add_to_page_cache',
  'shmem_get_folio',
  'shmem_getpage',
  'shmem_alloc_',
  'read_pages',
  'do_read_cache',
];
const ANON_FUNCS = [
  'do_anonymous_page',
  'alloc_anon_folio',
  'do_huge_pmd_anonymous_page',
  'wp_page_copy',
  'do_cow_fault',
  'alloc_zeroed_user_highpage',
  'vma_alloc_zeroed_movable_folio',
  'do_swap_page',
];

/** Classify a record by its allocator (slab pages also carry the `slab` page flag). */
export function allocatorOf(r: Pick<PageOwnerRecord, 'frames' | 'pageFlags'>): PageAllocator {
  const has = (names: readonly string[]) => r.frames.some((f) => names.some((n) => f.func.startsWith(n)));
  if ((r.pageFlags !== undefined && /[(|]slab[|)]/.test(r.pageFlags)) || has(SLAB_FUNCS)) return 'slab';
  if (has(VMALLOC_FUNCS)) return 'vmalloc';
  if (has(CACHE_FUNCS)) return 'page cache';
  if (has(ANON_FUNCS)) return 'anonymous';
  return 'other';
}

/** The group label of a record for a non-stack grouping. */
export function groupLabel(r: PageOwnerRecord, by: Exclude<PageOwnerGroupBy, 'stack' | 'function'>): string {
  switch (by) {
    case 'module': {
      const m = moduleOf(r.frames);
      return m === undefined ? 'vmlinux' : `[${m}]`;
    }
    case 'comm':
      return r.comm ?? (r.pid !== undefined ? `pid ${r.pid}` : '(not printed)');
    case 'order':
      return `order ${r.order}`;
    case 'gfp':
      return `0x${r.gfpMask.toString(16)}${r.gfpFlags !== undefined ? `(${r.gfpFlags})` : ''}`;
    case 'migratetype':
      return r.migratetype ?? '(not printed)';
    case 'allocator':
      return allocatorOf(r);
  }
}

export interface GroupPageOwnerOptions extends PageOwnerParseOptions {
  by?: PageOwnerGroupBy;
  /** Bytes per page (default 4096). */
  pageSizeBytes?: number;
  /** Keep only records from these allocators. */
  allocators?: readonly PageAllocator[];
  /** Keep only records whose stack names this module. */
  module?: string;
}

export interface PageOwnerGroups {
  by: PageOwnerGroupBy;
  groups: StackGroup[];
  /** Records read (before filters). */
  records: number;
  /** Records kept after the allocator/module filters. */
  kept: number;
  /** Pages in kept records. */
  pages: number;
  bytes: number;
  inputBytes: number;
}

/**
 * Read a page_owner dump (file path, stdin or any chunk stream) and group it.
 * `weights.count` is page blocks, `pages` is 2^order summed, `bytes` pages * page size.
 */
export async function groupPageOwner(
  input: PageOwnerInput,
  opts: GroupPageOwnerOptions = {},
): Promise<PageOwnerGroups> {
  const by = opts.by ?? 'stack';
  const pageSize = opts.pageSizeBytes ?? 4096;
  const agg = new StackAggregator(false);
  const labelFrames = new Map<string, Frame[]>();
  let kept = 0;
  let pages = 0;
  const allow = opts.allocators ? new Set(opts.allocators) : undefined;
  const { records, bytes } = await parsePageOwner(
    input,
    (r) => {
      if (allow && !allow.has(allocatorOf(r))) return;
      if (opts.module !== undefined && !r.frames.some((f) => f.module === opts.module)) return;
      kept++;
      pages += r.pages;
      const w = { count: 1, pages: r.pages, bytes: r.pages * pageSize };
      if (by === 'stack') {
        agg.add(r.frames, w);
      } else if (by === 'function') {
        const f = culpritFrame(r.frames);
        agg.add(f ? [{ func: f.func, ...(f.module !== undefined ? { module: f.module } : {}) }] : [], w);
      } else {
        const label = groupLabel(r, by);
        let fr = labelFrames.get(label);
        if (!fr) {
          fr = [{ func: label }];
          labelFrames.set(label, fr);
        }
        agg.add(fr, w);
      }
    },
    opts,
  );
  return { by, groups: agg.result(), records, kept, pages, bytes: pages * pageSize, inputBytes: bytes };
}

export interface PageOwnerDiff {
  by: PageOwnerGroupBy;
  /** Every group, largest page gain first. */
  deltas: GroupDelta[];
  before: Omit<PageOwnerGroups, 'groups'>;
  after: Omit<PageOwnerGroups, 'groups'>;
}

/** Group both dumps the same way and rank the groups by pages gained. */
export async function diffPageOwner(
  before: PageOwnerInput,
  after: PageOwnerInput,
  opts: GroupPageOwnerOptions & { beforeFile?: string; afterFile?: string } = {},
): Promise<PageOwnerDiff> {
  const { beforeFile, afterFile, ...rest } = opts;
  const b = await groupPageOwner(before, { ...rest, ...(beforeFile ? { file: beforeFile } : {}) });
  const a = await groupPageOwner(after, { ...rest, ...(afterFile ? { file: afterFile } : {}) });
  const { groups: bg, ...bs } = b;
  const { groups: ag, ...as } = a;
  return { by: b.by, deltas: diffGroups(bg, ag, 'pages'), before: bs, after: as };
}

/** Kernel allocations only: what slab, vmalloc and the buddy "black hole" hold. */
export const KERNEL_ALLOCATORS: readonly PageAllocator[] = ['slab', 'vmalloc', 'other'];
