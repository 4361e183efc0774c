/**
 * The accounting identity: where every byte of MemTotal is.
 *
 *   MemTotal = user + shared + cache + kernel + free + unaccounted
 *
 * with, from /proc/meminfo (names are the kernel's):
 *   user        = AnonPages                      anonymous pages mapped by processes (incl. THP)
 *               + SwapCached                     anon pages that are both in RAM and in swap
 *   shared      = Shmem                          tmpfs, shared anonymous mappings, SysV/POSIX shm
 *   cache       = Buffers + Cached − Shmem       page cache (Cached counts Shmem: removed here)
 *   kernel      = SReclaimable + SUnreclaim      slab (Slab = their sum)
 *               + KernelStack + PageTables + SecPageTables (6.0+)
 *               + VmallocUsed                    vmalloc pages (nr_vmalloc_pages since 5.3;
 *                                                always 0 on 4.x, where vmalloc hides in unaccounted)
 *               + Percpu (4.16+)
 *               + Hugetlb (5.16+) or HugePages_Total × Hugepagesize: preallocated huge pages
 *                 are in MemTotal but in neither MemFree nor any other field
 *               + zsmalloc pages (vmstat nr_zspages: zram and zswap pools; else meminfo Zswap)
 *               + Bounce + NFS_Unstable (old kernels)
 *   free        = MemFree + Unaccepted (6.5+, memory a confidential guest has not accepted yet)
 *               + per-CPU free lists (Σ zoneinfo pageset `count`, when zoneinfo is given)
 *   unaccounted = MemTotal − everything above
 *
 * `unaccounted` is memory taken from the buddy allocator by code that no counter sees:
 * alloc_pages() in drivers (DMA rings, network page pools), page_frag caches for skbs,
 * memory ballooned out, and kernels' own unlisted users. Only page_owner can say who
 * holds it. Subsets that must not be added again: AnonHugePages (⊂ AnonPages),
 * ShmemHugePages (⊂ Shmem), FileHugePages (⊂ Cached), KReclaimable (⊇ SReclaimable),
 * Mlocked/Unevictable/Active/Inactive (LRU views of the same pages).
 */

/** The identity's layers, in the order the identity is written. */
export const LAYER_NAMES = ['user', 'shared', 'cache', 'kernel', 'free', 'unaccounted'] as const;
export type LayerName = (typeof LAYER_NAMES)[number];

/** What each layer is, for people. */
export const LAYER_TITLES: Record<LayerName, string> = {
  user: 'user (processes, anonymous)',
  shared: 'shared (shmem, tmpfs)',
  cache: 'page cache',
  kernel: 'kernel',
  free: 'free',
  unaccounted: 'unaccounted',
};

export interface AccountingPart {
  /** meminfo field (or vmstat counter) the bytes come from; `unaccounted` for the remainder. */
  name: string;
  layer: LayerName;
  bytes: number;
  /** Share of MemTotal, 0..100. */
  percent: number;
  /** One-line meaning for people who do not read meminfo every day. */
  description: string;
}

export interface Accounting {
  memTotalBytes: number;
  parts: AccountingPart[];
  layers: Record<LayerName, number>;
  unaccountedBytes: number;
  /** Fields the formula wanted but this kernel does not print. */
  absentFields: string[];
}

/** Totals over /proc/zoneinfo that refine the free layer. */
export interface ZoneTotals {
  /** Σ managed pages × page size. */
  managedBytes?: number;
  /** Σ pageset `count` × page size: free pages parked on per-CPU lists. */
  pcpFreeBytes?: number;
}

interface MeminfoLike {
  bytes: Record<string, number | undefined>;
  counts: Record<string, number | undefined>;
}

const DESCRIPTIONS: Record<string, string> = {
  AnonPages: 'anonymous memory of processes',
  SwapCached: 'anon pages both in RAM and in swap',
  Shmem: 'tmpfs, shared anonymous, SysV/POSIX shm',
  Buffers: 'block device buffers (metadata)',
  'Cached-Shmem': 'page cache of files (reclaimable)',
  SReclaimable: 'slab the kernel can shrink (dentries, inodes)',
  SUnreclaim: 'slab that cannot be reclaimed',
  KernelStack: 'kernel stacks of all threads',
  PageTables: 'page tables of processes',
  SecPageTables: 'secondary page tables (KVM, IOMMU)',
  VmallocUsed: 'vmalloc pages',
  Percpu: 'per-CPU allocator chunks',
  Hugetlb: 'preallocated hugetlbfs pages',
  nr_zspages: 'zsmalloc pools (zram, zswap)',
  Zswap: 'zswap compressed pool',
  ShadowCallStack: 'shadow call stacks (arm64 SCS)',
  Bounce: 'bounce buffers',
  NFS_Unstable: 'NFS pages sent but not committed',
  MemFree: 'free pages in the buddy allocator',
  'pcp-free': 'free pages on per-CPU lists (zoneinfo)',
  'MemFree-not-in-zones': 'free, not yet handed to a zone (deferred init)',
  Unaccepted: 'not yet accepted (confidential guest)',
  unaccounted: 'pages no counter sees (alloc_pages by drivers)',
};

/** Compute the identity. `vmstat` is optional and only refines zsmalloc pages. */
export function computeAccounting(
  meminfo: MeminfoLike,
  vmstat?: Record<string, number>,
  pageSizeBytes = 4096,
  zones?: ZoneTotals,
): Accounting {
  const b = meminfo.bytes;
  const memTotal = b.MemTotal;
  if (memTotal === undefined) throw new Error('meminfo has no MemTotal');
  const absent: string[] = [];
  const field = (name: string, required = false): number => {
    const v = b[name];
    if (v === undefined) {
      if (required) absent.push(name);
      return 0;
    }
    return v;
  };

  const parts: Omit<AccountingPart, 'percent'>[] = [];
  const add = (name: string, layer: LayerName, bytes: number, key = name) => {
    parts.push({ name, layer, bytes, description: DESCRIPTIONS[key] ?? name });
  };

  add('AnonPages', 'user', field('AnonPages', true));
  if (b.SwapCached !== undefined) add('SwapCached', 'user', field('SwapCached'));
  const shmem = field('Shmem');
  if (b.Shmem !== undefined) add('Shmem', 'shared', shmem);
  else absent.push('Shmem');
  add('Buffers', 'cache', field('Buffers', true));
  // Cached includes Shmem (since 2.6.32 tmpfs pages are in the page cache).
  add('Cached-Shmem', 'cache', Math.max(0, field('Cached', true) - shmem));

  if (b.SReclaimable !== undefined || b.SUnreclaim !== undefined) {
    add('SReclaimable', 'kernel', field('SReclaimable'));
    add('SUnreclaim', 'kernel', field('SUnreclaim'));
  } else if (b.Slab !== undefined) {
    add('Slab', 'kernel', field('Slab'));
  } else {
    absent.push('Slab');
  }
  add('KernelStack', 'kernel', field('KernelStack', true));
  add('PageTables', 'kernel', field('PageTables', true));
  if (b.SecPageTables !== undefined) add('SecPageTables', 'kernel', field('SecPageTables'));
  add('VmallocUsed', 'kernel', field('VmallocUsed', true));
  if (b.Percpu !== undefined) add('Percpu', 'kernel', field('Percpu'));
  // Hugetlb (5.16+) covers every huge page size; before it, only the default size is listed.
  const hugetlb =
    b.Hugetlb !== undefined ? b.Hugetlb : (meminfo.counts.HugePages_Total ?? 0) * (b.Hugepagesize ?? 0);
  if (hugetlb > 0 || b.Hugetlb !== undefined) add('Hugetlb', 'kernel', hugetlb);
  if (vmstat?.nr_zspages !== undefined) {
    add('nr_zspages', 'kernel', vmstat.nr_zspages * pageSizeBytes);
  } else if (b.Zswap !== undefined) {
    add('Zswap', 'kernel', field('Zswap'));
  }
  if (b.ShadowCallStack !== undefined) add('ShadowCallStack', 'kernel', field('ShadowCallStack'));
  if (b.Bounce) add('Bounce', 'kernel', field('Bounce'));
  if (b.NFS_Unstable) add('NFS_Unstable', 'kernel', field('NFS_Unstable'));

  // MemTotal and MemFree can include memory the zones do not manage yet: with
  // deferred_init=lazy (and memory hot-add in progress) pages are counted as total and
  // free before they reach the buddy allocator. Given the zones' managed pages, that part
  // of MemFree is shown on its own line so "free in the buddy allocator" stays true.
  const memFree = field('MemFree', true);
  const notInZones = zones?.managedBytes === undefined ? 0 : memTotal - zones.managedBytes;
  if (zones?.managedBytes !== undefined && notInZones > memTotal * 0.01 && notInZones <= memFree) {
    add('MemFree', 'free', memFree - notInZones);
    add('MemFree-not-in-zones', 'free', notInZones);
  } else {
    add('MemFree', 'free', memFree);
  }
  if (b.Unaccepted !== undefined) add('Unaccepted', 'free', field('Unaccepted'));
  // Free pages on the per-CPU lists are not in MemFree (NR_FREE_PAGES drops when a page
  // moves to a pcp list); without zoneinfo they would sit in `unaccounted`, and their
  // swings (MiBs right after boot) would hide a real leak of the same size.
  if (zones?.pcpFreeBytes !== undefined) add('pcp-free', 'free', zones.pcpFreeBytes);

  const known = parts.reduce((s, p) => s + p.bytes, 0);
  const unaccounted = memTotal - known;
  add('unaccounted', 'unaccounted', unaccounted);

  const layers: Record<LayerName, number> = {
    user: 0,
    shared: 0,
    cache: 0,
    kernel: 0,
    free: 0,
    unaccounted: 0,
  };
  for (const p of parts) layers[p.layer] += p.bytes;
  return {
    memTotalBytes: memTotal,
    parts: parts.map((p) => ({ ...p, percent: (p.bytes / memTotal) * 100 })),
    layers,
    unaccountedBytes: unaccounted,
    absentFields: absent,
  };
}

/** Zone totals from a parsed zoneinfo (managed is missing before 3.8: then left out). */
export function zoneTotals(
  zoneinfo: { zones: { pages: Record<string, number>; pcpCountPages: number }[] },
  pageSizeBytes: number,
): ZoneTotals {
  const zones = zoneinfo.zones;
  const out: ZoneTotals = {
    pcpFreeBytes: zones.reduce((n, z) => n + z.pcpCountPages, 0) * pageSizeBytes,
  };
  if (zones.length > 0 && zones.every((z) => z.pages.managed !== undefined)) {
    out.managedBytes = zones.reduce((n, z) => n + (z.pages.managed ?? 0), 0) * pageSizeBytes;
  }
  return out;
}
