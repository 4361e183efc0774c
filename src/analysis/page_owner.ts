/**
 * page_owner analysis over the stream: group outstanding page blocks by stack,
 * culprit function, module, process, order, GFP mask, migratetype or allocator, and
 * diff two dumps. Memory is bounded by the distinct groups (StackAggregator), never by
 * the number of records; timestamps and PFNs are ignored by construction.
 */

import type { Frame } from '../model/frame.js';
import {
  type PageOwnerInput,
  type PageOwnerParseOptions,
  type PageOwnerRecord,
  parsePageOwner,
} from '../sources/page_owner.js';
import {
  culpritFrame,
  diffGroups,
  type GroupDelta,
  moduleOf,
  StackAggregator,
  type StackGroup,
  type Weights,
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

// Records with the same stack share one frames array (see parsePageOwner): per-stack
// answers are cached on the array itself.
const stackAllocator = new WeakMap<readonly Frame[], PageAllocator>();

function allocatorOfStack(frames: readonly Frame[]): PageAllocator {
  let a = stackAllocator.get(frames);
  if (a === undefined) {
    const has = (names: readonly string[]) => frames.some((f) => names.some((n) => f.func.startsWith(n)));
    a = has(SLAB_FUNCS)
      ? 'slab'
      : has(VMALLOC_FUNCS)
        ? 'vmalloc'
        : has(CACHE_FUNCS)
          ? 'page cache'
          : has(ANON_FUNCS)
            ? 'anonymous'
            : 'other';
    stackAllocator.set(frames, a);
  }
  return a;
}

/** Classify a record by its allocator (slab pages also carry the `slab` page flag before 6.10). */
export function allocatorOf(r: Pick<PageOwnerRecord, 'frames' | 'pageFlags'>): PageAllocator {
  if (r.pageFlags?.includes('slab') && /[(|]slab[|)]/.test(r.pageFlags)) return 'slab';
  return allocatorOfStack(r.frames);
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
  const labelFrames = new Map<string, Frame[]>();
  const culprits = new WeakMap<readonly Frame[], Frame[]>();
  // Weights per frames array (by identity: no key string per record); merged by key at the end.
  const acc = new Map<Frame[], Weights>();
  const frameLabel = (label: string): Frame[] => {
    let fr = labelFrames.get(label);
    if (!fr) {
      fr = [{ func: label }];
      labelFrames.set(label, fr);
    }
    return fr;
  };
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
      let fr: Frame[];
      if (by === 'stack') {
        fr = r.frames;
      } else if (by === 'function') {
        let c = culprits.get(r.frames);
        if (c === undefined) {
          const f = culpritFrame(r.frames);
          c = f ? [{ func: f.func, ...(f.module !== undefined ? { module: f.module } : {}) }] : [];
          culprits.set(r.frames, c);
        }
        fr = c;
      } else {
        fr = frameLabel(groupLabel(r, by));
      }
      let w = acc.get(fr);
      if (w === undefined) {
        w = { count: 0, pages: 0, bytes: 0 };
        acc.set(fr, w);
      }
      w.count++;
      w.pages += r.pages;
      w.bytes += r.pages * pageSize;
    },
    opts,
  );
  const agg = new StackAggregator(false);
  for (const [fr, w] of acc) agg.add(fr, w);
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
