import type { CommandSpec } from '../command.js';

/**
 * One line of the command list: the words that select a command, its one-line summary, and
 * how to load it. The list is data: `memsleuth --help`, an unknown command's hint and the
 * choice of the command to run read only this file, so start-up loads one command module
 * (the one that runs), never all of them and their dependencies. `path` and `summary` are the
 * command's own (`defineCommand` in its file); commands.test.ts checks that they agree.
 */
export interface CommandEntry {
  path: readonly string[];
  summary: string;
  // biome-ignore lint/suspicious/noExplicitAny: commands have heterogeneous option tables
  load(): Promise<CommandSpec<any>>;
  /**
   * Process-wide settings for this command line (`args`: what follows the command's words),
   * applied before load() when the command owns the process (runMain), never in a library
   * caller's process.
   */
  prepare?(args: readonly string[]): Promise<void>;
}

/** The page_owner commands' V8 setting (src/cli/daemon.ts `noYoungGenerationGrowth`). */
const pageOwnerPrepare = async (): Promise<void> => (await import('../daemon.js')).noYoungGenerationGrowth();

/**
 * Every command, in help order. Each lives in its own file in this folder; add one line here
 * per command.
 */
export const COMMANDS: readonly CommandEntry[] = [
  {
    path: ['report'],
    summary: 'where the memory is: the accounting identity, top consumers per layer, findings',
    load: async () => (await import('./report.js')).reportCommand,
  },
  {
    path: ['snapshot'],
    summary: 'capture every readable memory source of this machine into one portable bundle',
    load: async () => (await import('./snapshot.js')).snapshotCommand,
  },
  {
    path: ['ps'],
    summary: 'top processes by memory: RSS, PSS, USS, swap and the four memory types',
    load: async () => (await import('./processes.js')).psCommand,
  },
  {
    path: ['pmap'],
    summary: "one process's mappings, like `pmap -x`: size, RSS and dirty memory per mapping",
    load: async () => (await import('./processes.js')).pmapCommand,
  },
  {
    path: ['collector'],
    summary: 'print a POSIX sh capture script for machines without Node (busybox is enough)',
    load: async () => (await import('./collector.js')).collectorCommand,
  },
  {
    path: ['record'],
    summary: 'sample meminfo, slab, vmalloc and every process into a recording database',
    load: async () => (await import('./record.js')).recordCommand,
    // A daemon for days, unless it imports captures (--from) or prints its help.
    prepare: async (args) => {
      if (!args.some((a) => a === '--from' || a.startsWith('--from=') || a === '--help' || a === '-h'))
        (await import('../daemon.js')).daemonFlags();
    },
  },
  {
    path: ['leaks'],
    summary: 'rank leak suspects across processes, slab, vmalloc and meminfo from a recording',
    load: async () => (await import('./leaks.js')).leaksCommand,
  },
  {
    path: ['series'],
    summary: 'export series from a recording as CSV or JSON',
    load: async () => (await import('./series.js')).seriesCommand,
  },
  {
    path: ['exporter'],
    summary: 'serve this machine’s memory (or a snapshot directory) as Prometheus metrics',
    load: async () => (await import('./exporter.js')).exporterCommand,
  },
  {
    path: ['fleet'],
    summary: 'rank leak suspects across every host Prometheus scrapes (memsleuth exporter, node_exporter)',
    load: async () => (await import('./fleet.js')).fleetCommand,
  },
  {
    path: ['page-owner', 'sort'],
    summary: "sort and cull a page_owner dump: a drop-in for the kernel's page_owner_sort",
    load: async () => (await import('./page-owner.js')).pageOwnerSortCommand,
    prepare: pageOwnerPrepare,
  },
  {
    path: ['page-owner', 'top'],
    summary: 'who holds the pages: a page_owner dump grouped by stack, function, module, process...',
    load: async () => (await import('./page-owner.js')).pageOwnerTopCommand,
    prepare: pageOwnerPrepare,
  },
  {
    path: ['page-owner', 'diff'],
    summary: 'what gained pages between two page_owner dumps (ranked by pages gained)',
    load: async () => (await import('./page-owner.js')).pageOwnerDiffCommand,
    prepare: pageOwnerPrepare,
  },
  {
    path: ['slab', 'top'],
    summary: 'slabtop-style table of slab caches: objects, sizes, bytes per cache, reclaimable flag',
    load: async () => (await import('./slab.js')).slabTopCommand,
  },
  {
    path: ['slab', 'traces'],
    summary: 'live slab objects per allocation call site (alloc_traces / alloc_calls), per cache or all',
    load: async () => (await import('./slab.js')).slabTracesCommand,
  },
  {
    path: ['slab', 'trace-diff'],
    summary: 'compare two "count + call trace" dumps (vendor /proc/slabtrace, page_owner_sort output)',
    load: async () => (await import('./slab.js')).slabTraceDiffCommand,
  },
  {
    path: ['kmemleak', 'report'],
    summary: 'group kmemleak reports by backtrace (or culprit, or task): objects and bytes',
    load: async () => (await import('./kmemleak.js')).kmemleakReportCommand,
  },
  {
    path: ['kmemleak', 'scan'],
    summary: 'trigger a kmemleak scan (writes `scan`), wait for it, and report the groups',
    load: async () => (await import('./kmemleak.js')).kmemleakScanCommand,
  },
  {
    path: ['kmemleak', 'watch'],
    summary: 'repeated scans (or saved reports): separate growing backtraces from one-off reports',
    load: async () => (await import('./kmemleak.js')).kmemleakWatchCommand,
  },
  {
    path: ['slab', 'trace'],
    summary:
      "one cache's allocations and frees for N seconds (the slab `trace` switch, or its kmem events): outstanding by stack",
    load: async () => (await import('./trace.js')).slabTraceCommand,
  },
  {
    path: ['vmalloc', 'top'],
    summary: 'vmalloc areas by caller: areas, pages held, virtual size',
    load: async () => (await import('./vmalloc.js')).vmallocTopCommand,
  },
  {
    path: ['vmalloc', 'diff'],
    summary: 'vmalloc growth per caller between two snapshots',
    load: async () => (await import('./vmalloc.js')).vmallocDiffCommand,
  },
  {
    path: ['allocinfo', 'top'],
    summary: 'kernel memory by allocation call site from /proc/allocinfo (6.10+ allocation profiling)',
    load: async () => (await import('./allocinfo.js')).allocinfoTopCommand,
  },
  {
    path: ['allocinfo', 'diff'],
    summary: 'allocation growth per call site between two snapshots (/proc/allocinfo)',
    load: async () => (await import('./allocinfo.js')).allocinfoDiffCommand,
  },
  {
    path: ['trace', 'kernel'],
    summary:
      'live kernel allocations through tracefs: outstanding kmalloc, slab and page allocations by stack',
    load: async () => (await import('./trace.js')).traceKernelCommand,
  },
  {
    path: ['trace', 'user'],
    summary: "a process's malloc/free through uprobes: outstanding allocations by stack, no restart, no BPF",
    load: async () => (await import('./trace.js')).traceUserCommand,
  },
  {
    path: ['trace', 'report'],
    summary:
      'outstanding allocations of a saved kmem trace (trace kernel -o, or the collector’s --trace-kmem)',
    load: async () => (await import('./trace.js')).traceReportCommand,
  },
  {
    path: ['trace', 'diff'],
    summary: 'what is outstanding in one saved trace and not in another, by stack',
    load: async () => (await import('./trace.js')).traceDiffCommand,
  },
  {
    path: ['diff'],
    summary: 'what gained the most memory between two snapshots, across every source both have',
    load: async () => (await import('./diff.js')).diffCommand,
  },
  {
    path: ['symbolize'],
    summary: 'add file:line (and inlined functions) after every kernel frame in any text',
    load: async () => (await import('./symbolize.js')).symbolizeCommand,
  },
  {
    path: ['oom'],
    summary:
      'OOM-killer reports from the kernel log, explained: what was asked, who was killed, where the memory was',
    load: async () => (await import('./oom.js')).oomCommand,
  },
  {
    path: ['serve'],
    summary: 'a local dashboard: accounting over time, suspects, diffs, flame graphs, and a JSON API',
    load: async () => (await import('./serve.js')).serveCommand,
  },
];
