import { culpritFrame, diffGroups, moduleOf, type StackGroup } from '../../analysis/stacks.js';
import { callerName } from '../../model/frame.js';
import { sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { PAGE_OWNER_HEAD } from '../../sources/page_owner.js';
import { type DiffRow, pageSizeOf, type SourceEntry } from '../types.js';
import { parseSettings } from './read.js';

/** page_owner grouped by allocation stack, and how many page blocks were left out. */
export interface PageOwnerStacks {
  groups: StackGroup[];
  /** Page blocks left out (page cache and anonymous pages, unless `pageOwnerAll`). */
  leftOut: number;
}

export interface PageOwnerSection {
  /** Pages (and blocks) of the kept allocations: kernel ones unless page cache and anon were asked for. */
  pages: number;
  bytes: number;
  blocks: number;
  /** Page blocks left out (page cache, anonymous). */
  leftOut: number;
  /** Who holds them, by the first module in the stack (`vmlinux` when none). */
  byModule: { module: string; pages: number; bytes: number }[];
  /** By allocating function (the first frame outside the allocators). */
  top: { culprit: string; module?: string; pages: number; bytes: number; blocks: number }[];
}

declare module '../types.js' {
  interface ReportSections {
    pageOwner?: PageOwnerSection;
  }
}

const MiB = 1024 * 1024;

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
    // The scanner and its worker threads load only for a snapshot that has page_owner.
    const { groupPageOwner, KERNEL_ALLOCATORS } = await import('../../analysis/page_owner.js');
    const r = await groupPageOwner(stream, {
      by: 'stack',
      pageSizeBytes,
      file: snap.describe('page_owner'),
      ...parseSettings(options),
      ...(options.pageOwnerAll ? {} : { allocators: KERNEL_ALLOCATORS }),
    });
    return { groups: r.groups, leftOut: r.records - r.kept };
  },
  recognise: (head) => PAGE_OWNER_HEAD.test(head),

  report(p, ctx) {
    const byModule = new Map<string, { module: string; pages: number; bytes: number }>();
    const byCulprit = new Map<string, PageOwnerSection['top'][number]>();
    let pages = 0;
    let bytes = 0;
    let blocks = 0;
    for (const g of p.groups) {
      pages += g.weights.pages;
      bytes += g.weights.bytes;
      blocks += g.weights.count;
      const module = moduleOf(g.frames) ?? 'vmlinux';
      const m = byModule.get(module) ?? { module, pages: 0, bytes: 0 };
      m.pages += g.weights.pages;
      m.bytes += g.weights.bytes;
      byModule.set(module, m);
      const culprit = g.frames.length ? callerName(culpritFrame(g.frames)) : '<no stack>';
      let c = byCulprit.get(culprit);
      if (!c) {
        c = { culprit, pages: 0, bytes: 0, blocks: 0 };
        if (module !== 'vmlinux') c.module = module;
        byCulprit.set(culprit, c);
      }
      c.pages += g.weights.pages;
      c.bytes += g.weights.bytes;
      c.blocks += g.weights.count;
    }
    const sortDesc = <T extends { pages: number }>(xs: Iterable<T>) =>
      [...xs].sort((a, b) => b.pages - a.pages);
    return {
      pageOwner: {
        pages,
        bytes,
        blocks,
        leftOut: p.leftOut,
        byModule: sortDesc(byModule.values()),
        top: sortDesc(byCulprit.values()).slice(0, ctx.top),
      },
    };
  },

  findings(ctx) {
    const po = ctx.report.pageOwner;
    const total = ctx.report.accounting?.memTotalBytes;
    if (!po || total === undefined) return [];
    // Modules are where out-of-tree and vendor drivers live: one holding a large share of RAM
    // straight from the page allocator is the classic "black hole".
    return po.byModule
      .filter((m) => m.module !== 'vmlinux' && (m.bytes >= total * 0.01 || m.bytes >= 64 * MiB))
      .map((m) => ({
        severity: 'warning' as const,
        title: `Module ${m.module} holds ${formatBytes(m.bytes)} of pages (${((m.bytes / total) * 100).toFixed(1)}% of RAM)`,
        detail: `page_owner: ${m.pages} pages allocated with ${m.module} in the stack and not freed. Pages straight from the page allocator are in no meminfo counter but the unaccounted remainder.`,
        next: [
          `memsleuth page-owner top --module ${m.module} --stacks SNAPSHOT`,
          'take a second snapshot later and run: memsleuth page-owner diff BEFORE AFTER',
        ],
      }));
  },

  tables(r) {
    const po = r.pageOwner;
    if (!po) return [];
    return [
      {
        source: 'page_owner',
        title: `page_owner: ${formatBytes(po.bytes)} of kernel pages in ${po.blocks} blocks, by allocating function`,
        columns: [
          { header: 'PAGES', align: 'right' },
          { header: 'BYTES', align: 'right' },
          { header: 'BLOCKS', align: 'right' },
          { header: 'ALLOCATED BY', max: 60 },
        ],
        rows: po.top.map((x) => [String(x.pages), formatBytes(x.bytes), String(x.blocks), x.culprit]),
        notes: [
          `by module: ${po.byModule
            .slice(0, 6)
            .map((m) => `${m.module} ${formatBytes(m.bytes)}`)
            .join(', ')}` + (po.leftOut ? `; ${po.leftOut} page cache and anonymous blocks left out` : ''),
        ],
      },
    ];
  },

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
