/**
 * What the page shows of snapshots: the report and the diff as the CLI's `--json` gives them
 * (the same library calls), plus flame graphs of every stack-carrying source.
 */
import { slabSiteGroups } from '../analysis/slab.js';
import type { StackGroup, WeightName } from '../analysis/stacks.js';
import type { Snapshot, SourceName } from '../model/snapshot.js';
import { type DiffOptions, diffSnapshots } from '../registry/diff.js';
import { ENTRY_BY_NAME, type ReadOptions, SnapshotData } from '../registry/index.js';
import { buildReport, type ReportOptions, reportTables } from '../registry/report.js';
import type { Allocinfo } from '../sources/allocinfo.js';
import { diffFlameTree, type FlameGraph, flameTree } from './flame.js';
import type { DiffView, ReportView } from './types.js';

/** `memsleuth report --json` and the registry's tables for one snapshot. */
export async function reportView(snap: Snapshot, opts: ReportOptions = {}): Promise<ReportView> {
  const report = await buildReport(snap, opts);
  return { report, tables: reportTables(report) };
}

/** allocinfo has no stacks: its call sites as module → function (file:line). */
function allocinfoGroups(info: Allocinfo): StackGroup[] {
  return info.tags
    .filter((t) => t.bytes > 0)
    .map((t) => ({
      key: `${t.sourceFile}:${t.sourceLine}`,
      frames: [
        { func: `${t.func} (${t.sourceFile}:${t.sourceLine})` },
        { func: t.module ? `[${t.module}]` : 'vmlinux' },
      ],
      weights: { count: t.calls, bytes: t.bytes, pages: 0 },
    }));
}

/** The sources that carry allocation stacks, how to weigh them and how to get their groups. */
const STACK_SOURCES: {
  source: SourceName;
  unit: WeightName;
  title: string;
  groups(value: never): StackGroup[];
}[] = [
  {
    source: 'page_owner',
    unit: 'pages',
    title: 'page_owner: pages by allocation stack',
    groups: (v: { groups: StackGroup[] }) => v.groups,
  },
  {
    source: 'page_owner_stacks',
    unit: 'pages',
    title: 'page_owner_stacks: base pages per stack (show_stacks)',
    groups: (v: StackGroup[]) => v,
  },
  {
    source: 'slab_traces',
    unit: 'bytes',
    title: 'slab alloc_traces: outstanding bytes per call stack',
    groups: (v: Parameters<typeof slabSiteGroups>[0]) => slabSiteGroups(v),
  },
  {
    source: 'kmemleak',
    unit: 'bytes',
    title: 'kmemleak: unreferenced bytes per backtrace',
    groups: (v: { groups: StackGroup[] }) => v.groups,
  },
  {
    source: 'allocinfo',
    unit: 'bytes',
    title: 'allocinfo: bytes per call site, by module',
    groups: allocinfoGroups,
  },
];

async function stackGroups(data: SnapshotData): Promise<Map<SourceName, StackGroup[]>> {
  const out = new Map<SourceName, StackGroup[]>();
  for (const s of STACK_SOURCES) {
    const v = await data.get(s.source);
    if (v !== undefined) out.set(s.source, s.groups(v as never));
  }
  return out;
}

function snapshotData(snap: Snapshot, opts: ReadOptions): SnapshotData {
  return new SnapshotData(snap, opts, ENTRY_BY_NAME);
}

/**
 * A flame graph per stack source the snapshot has. page_owner keeps every page block (page
 * cache and anonymous too, as `page-owner top` does): the root is the dump's page count.
 */
export async function snapshotFlames(snap: Snapshot, opts: ReadOptions = {}): Promise<FlameGraph[]> {
  const groups = await stackGroups(snapshotData(snap, { pageOwnerAll: true, ...opts }));
  return STACK_SOURCES.filter((s) => groups.has(s.source)).map((s) => ({
    source: s.source,
    title: s.title,
    unit: s.unit,
    root: flameTree(groups.get(s.source)!, s.unit),
  }));
}

/**
 * `memsleuth diff --json` and a differential flame graph per stack source both sides have. The
 * flame graphs read the sources as the diff does (page_owner: kernel allocations unless
 * `pageOwnerAll`).
 */
export async function diffView(before: Snapshot, after: Snapshot, opts: DiffOptions = {}): Promise<DiffView> {
  const diff = await diffSnapshots(before, after, opts);
  const readOpts: ReadOptions = { smaps: false, ...opts };
  const [b, a] = [
    await stackGroups(snapshotData(before, readOpts)),
    await stackGroups(snapshotData(after, readOpts)),
  ];
  const wanted = opts.sources ? new Set(opts.sources) : undefined;
  const flames: FlameGraph[] = STACK_SOURCES.filter(
    (s) => b.has(s.source) && a.has(s.source) && (!wanted || wanted.has(s.source)),
  ).map((s) => ({
    source: s.source,
    title: s.title.replace(/^[^:]+:/, `${s.source}: growth of`),
    unit: s.unit,
    differential: true,
    root: diffFlameTree(b.get(s.source)!, a.get(s.source)!, s.unit),
  }));
  return { diff, flames };
}
