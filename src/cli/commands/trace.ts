import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { OutstandingGroup, OutstandingRow, TraceReport } from '../../analysis/alloc_trace.js';
import { analyzeKmemTrace, KMEM_EVENT_GROUP_NAMES, type KmemEventGroup } from '../../analysis/kmem_trace.js';
import { diffGroups } from '../../analysis/stacks.js';
import { openSnapshot } from '../../capture/snapshot.js';
import { MemsleuthError } from '../../model/errors.js';
import { formatFrame } from '../../model/frame.js';
import { TRACE_KMEM_PATH } from '../../model/snapshot.js';
import { formatBytes, formatDelta } from '../../model/units.js';
import { parseFtraceStatsFile } from '../../sources/ftrace_format.js';
import { LIBC_PROBES, type LibcProbe } from '../../sources/uprobe_events.js';
import { type KernelTraceResult, traceKernel } from '../../trace/kernel.js';
import { traceSlabCache } from '../../trace/slab.js';
import { traceUser, type UserTraceResult } from '../../trace/user.js';
import { defineCommand, numberOption } from '../command.js';
import type { CommandContext } from '../context.js';
import { FLAME_OPTIONS, writeFlameExports, writesEveryGroup } from '../flame.js';
import { table } from '../format.js';
import { writeHtml } from '../html.js';

/** `60`, `60s`, `2m`, `1h`, `1.5m` to seconds. */
export function parseDuration(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m)
    throw new MemsleuthError(
      'USAGE',
      `--${name}: expected a duration like 60, 60s, 2m or 1h, found ${JSON.stringify(v)}`,
    );
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const s = unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
  if (s <= 0) throw new MemsleuthError('USAGE', `--${name}: must be more than 0`);
  return s;
}

function seconds(s: number): string {
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function parseEvents(v: string | undefined): KmemEventGroup[] | undefined {
  if (v === undefined) return undefined;
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const e of list)
    if (!(KMEM_EVENT_GROUP_NAMES as string[]).includes(e))
      throw new MemsleuthError(
        'USAGE',
        `--events: expected a list of ${KMEM_EVENT_GROUP_NAMES.join(', ')}, found ${JSON.stringify(e)}`,
      );
  return list as KmemEventGroup[];
}

function parseFunctions(v: string | undefined): LibcProbe['fn'][] | undefined {
  if (v === undefined) return undefined;
  const names = LIBC_PROBES.map((p) => p.fn) as string[];
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const f of list)
    if (!names.includes(f))
      throw new MemsleuthError(
        'USAGE',
        `--functions: expected a list of ${names.join(', ')}, found ${JSON.stringify(f)}`,
      );
  if (!list.includes('malloc'))
    throw new MemsleuthError('USAGE', '--functions: malloc is always traced; add it to the list');
  return list as LibcProbe['fn'][];
}

function groupName(g: OutstandingGroup): string {
  const c = g.culprit;
  if (!c) return '[no stack]';
  return formatFrame({ func: c.func, ...(c.module ? { module: c.module } : {}) });
}

function rowTable(rows: readonly OutstandingRow[], limit: number, label: string): string {
  return table(rows.slice(0, limit), [
    { header: 'COUNT', align: 'right', value: (r) => String(r.weights.count) },
    { header: 'BYTES', align: 'right', value: (r) => formatBytes(r.weights.bytes) },
    { header: 'OLDEST', align: 'right', value: (r) => seconds(r.oldestSeconds) },
    { header: 'MEAN AGE', align: 'right', value: (r) => seconds(r.meanSeconds) },
    { header: label, max: 60, value: (r) => r.name },
  ]);
}

function stackBlocks(groups: readonly OutstandingGroup[], limit: number): string[] {
  const out: string[] = [];
  groups.slice(0, limit).forEach((g, i) => {
    out.push(
      '',
      `#${i + 1} ${g.weights.count} outstanding, ${formatBytes(g.weights.bytes)}` +
        `${g.weights.pages ? ` (${g.weights.pages} pages)` : ''}, oldest ${seconds(g.oldestSeconds)}, mean age ${seconds(g.meanSeconds)}` +
        `${g.caches.length ? `, ${g.caches.join(',')}` : ''}: ${groupName(g)}`,
    );
    for (const f of g.frames) out.push(`      ${formatFrame(f)}`);
  });
  return out;
}

/** The outstanding allocations of a trace report, as text. */
export function renderTraceReport(
  r: TraceReport,
  o: { limit: number; stacks: boolean; title: string; by?: 'site' | 'stack' | 'module' },
): string {
  const c = r.counters;
  const out = [
    `${o.title}: ${seconds(r.durationSeconds)} traced, ${c.allocs} allocations, ${c.frees} frees` +
      (c.unmatchedFrees ? ` (${c.unmatchedFrees} of memory allocated before the trace)` : ''),
    `outstanding: ${r.outstanding.count} allocations, ${formatBytes(r.outstanding.bytes)}` +
      (r.outstanding.pages ? ` (${r.outstanding.pages} pages)` : '') +
      (r.sample > 1 ? `, estimated from 1 in ${r.sample} objects by address` : ''),
  ];
  if (c.lostEvents || c.lostMarkers)
    out.push(
      `warning: ${c.lostEvents || 'some'} events lost (buffer full): allocations whose free was lost show as outstanding; ` +
        'trace fewer events (--events, --cache, --sample) or raise --buffer-kb',
    );
  if (c.missingStacks)
    out.push(`note: ${c.missingStacks} allocations have no stack record (shown by call site)`);
  if (c.filtered)
    out.push(`note: ${c.filtered} outstanding allocations left out (filters, slab backing pages)`);
  const by = o.by;
  if (by === undefined || by === 'site')
    out.push('', 'By call site:', rowTable(r.byCallSite, o.limit, 'CALL SITE'));
  if (by === undefined || by === 'module')
    out.push('', 'By module:', rowTable(r.byModule, o.limit, 'MODULE'));
  if (by === 'stack' || o.stacks) {
    out.push('', 'By stack:');
    if (o.stacks) out.push(...stackBlocks(r.byStack, o.limit));
    else
      out.push(
        table(r.byStack.slice(0, o.limit), [
          { header: 'COUNT', align: 'right', value: (g) => String(g.weights.count) },
          { header: 'BYTES', align: 'right', value: (g) => formatBytes(g.weights.bytes) },
          { header: 'OLDEST', align: 'right', value: (g) => seconds(g.oldestSeconds) },
          { header: 'CULPRIT', max: 60, value: (g) => groupName(g) },
        ]),
      );
  }
  return `${out.join('\n')}\n`;
}

/**
 * The stack groups a report is to build: every one where every one is written (`--json`,
 * `--html`, the flame exports), else the table's (`--by stack`, `--stacks`) or none.
 */
function stackGroupsFor(
  values: { json?: boolean; html?: string; collapsed?: string; speedscope?: string; stacks?: boolean },
  by: 'site' | 'stack' | 'module' | undefined,
  limit: number,
): { stackGroups?: number } {
  return writesEveryGroup(values) ? {} : { stackGroups: by === 'stack' || values.stacks ? limit : 0 };
}

function parseBy(v: string | undefined): 'site' | 'stack' | 'module' | undefined {
  if (v === undefined) return undefined;
  if (v === 'site' || v === 'stack' || v === 'module') return v;
  throw new MemsleuthError('USAGE', `--by: expected site, stack or module, found ${JSON.stringify(v)}`);
}

const OUTPUT_OPTIONS = {
  limit: { type: 'string', short: 'n', valueName: 'N', description: 'rows per table (default 20)' },
  by: {
    type: 'string',
    valueName: 'KEY',
    description: 'only one table: site, stack or module (default site and module)',
  },
  stacks: { type: 'boolean', description: 'print the stack of each of the top groups' },
  ...FLAME_OPTIONS,
  json: { type: 'boolean', description: 'print the whole result as JSON' },
} as const;

/** `--html FILE` on the trace commands whose result is a whole trace (kernel, user, report). */
const HTML_OPTION = {
  html: {
    type: 'string',
    valueName: 'FILE',
    description: 'also write a self-contained HTML page: the outstanding allocations as a searchable icicle',
  },
} as const;

const sum = (events: Record<string, number>) => Object.values(events).reduce((a, b) => a + b, 0);

/** The page of a trace; the web presenter is loaded only when asked for. */
async function writeTraceHtml(
  file: string,
  r: TraceReport,
  o: { what: string; events: number; source: string },
  ctx: CommandContext,
): Promise<void> {
  const { tracePageData } = await import('../../web/pages.js');
  await writeHtml(file, tracePageData(r, o), ctx);
}

/** Live refresh: what is outstanding now and what grew since the last refresh. */
function refreshPrinter(ctx: CommandContext, json: boolean, limit: number) {
  let previous: OutstandingGroup[] = [];
  return (r: TraceReport) => {
    if (json) {
      ctx.stdout.write(`${JSON.stringify({ refresh: true, ...r, byStack: r.byStack.slice(0, limit) })}\n`);
      return;
    }
    const grew = diffGroups(previous, r.byStack, 'bytes').filter((d) => d.delta.bytes > 0);
    previous = r.byStack;
    ctx.stdout.write(
      `after ${seconds(r.durationSeconds)}: ${r.outstanding.count} outstanding, ${formatBytes(r.outstanding.bytes)}; grew most since the last refresh:\n` +
        `${table(grew.slice(0, Math.min(limit, 10)), [
          { header: 'Δ BYTES', align: 'right', value: (d) => formatDelta(d.delta.bytes) },
          {
            header: 'Δ COUNT',
            align: 'right',
            value: (d) => (d.delta.count > 0 ? `+${d.delta.count}` : String(d.delta.count)),
          },
          { header: 'NOW', align: 'right', value: (d) => formatBytes(d.after.bytes) },
          {
            header: 'CULPRIT',
            max: 60,
            value: (d) =>
              groupName(
                r.byStack.find((g) => g.key === d.key) ??
                  ({ key: d.key, frames: d.frames } as OutstandingGroup),
              ),
          },
        ])}\n\n`,
    );
  };
}

function kernelSummary(r: KernelTraceResult): string {
  const ev = Object.values(r.events).reduce((a, b) => a + b, 0);
  const lines = [
    `tracing: ${ev} events (${Math.round(ev / Math.max(r.seconds, 0.001))}/s) and ${r.stacks} stacks, ${formatBytes(r.bytesRead)} read (${r.readMode === 'raw' ? 'binary buffers' : 'trace_pipe text'}); ` +
      `memsleuth used ${r.readerCpuSeconds.toFixed(1)} s of CPU (${((r.readerCpuSeconds / Math.max(r.seconds, 0.001)) * 100).toFixed(0)}% of one CPU) to read and pair them; ` +
      `${r.droppedEvents} dropped`,
  ];
  for (const s of r.resampled)
    lines.push(`rate cap at ${s.atSeconds.toFixed(1)} s: ${s.why}: 1 in ${s.sample} objects from then on`);
  if (r.stoppedBy) lines.push(`stopped by ${r.stoppedBy}`);
  lines.push(`tracefs restored: instance ${r.instance} removed`);
  return `${lines.join('\n')}\n`;
}

export const traceKernelCommand = defineCommand({
  path: ['trace', 'kernel'],
  summary: 'live kernel allocations through tracefs: outstanding kmalloc, slab and page allocations by stack',
  options: {
    duration: {
      type: 'string',
      short: 'd',
      valueName: 'TIME',
      description: 'how long to trace: 60, 60s, 2m (default 60s; 0 with Ctrl-C: until interrupted)',
    },
    events: {
      type: 'string',
      valueName: 'LIST',
      description: `${KMEM_EVENT_GROUP_NAMES.join(',')} (default all)`,
    },
    cache: {
      type: 'string',
      valueName: 'NAME',
      description: 'only objects of this slab cache (e.g. kmalloc-96, dentry)',
    },
    module: {
      type: 'string',
      valueName: 'MOD',
      description: 'only allocations whose stack names module MOD',
    },
    pid: {
      type: 'string',
      short: 'p',
      valueName: 'PID',
      description: 'only allocations made by this process (and what it forks)',
    },
    'all-pages': { type: 'boolean', description: 'include movable pages (page cache, anonymous memory)' },
    'min-bytes': { type: 'string', valueName: 'N', description: 'only slab allocations of at least N bytes' },
    'no-stacks': { type: 'boolean', description: 'no kernel stacks (cheaper; call sites only)' },
    sample: {
      type: 'string',
      valueName: 'N',
      description: 'trace 1 in N objects by address (a power of two, default 1)',
    },
    'max-rate': {
      type: 'string',
      valueName: 'N',
      description:
        'events/s the kernel records above which sampling gets sparser, as on dropped events (default 200000; 0: never)',
    },
    'buffer-kb': {
      type: 'string',
      valueName: 'KB',
      description: 'ring buffer per CPU (default 64 MiB shared by the CPUs)',
    },
    refresh: { type: 'string', valueName: 'S', description: 'print what is outstanding every S seconds' },
    save: {
      type: 'string',
      short: 'o',
      valueName: 'FILE',
      description: 'also save the raw trace (for `trace report` and `trace diff`)',
    },
    ...OUTPUT_OPTIONS,
    ...HTML_OPTION,
  },
  details:
    'Needs root and tracefs. Uses its own instance (instances/memsleuth-<pid>): the global buffer and\n' +
    'options are not touched; everything is restored on exit, Ctrl-C and SIGTERM, and what a killed run\n' +
    'left is removed at the next start. Frees are paired with allocations by pointer (slab) and pfn\n' +
    '(pages); page blocks backing slabs are left out when slab events are traced (counted once).',
  async run({ values }, ctx) {
    const limit = numberOption(values.limit, 'limit', 20, { min: 1, integer: true });
    const duration = values.duration === '0' ? undefined : (parseDuration(values.duration, 'duration') ?? 60);
    const refresh = parseDuration(values.refresh, 'refresh');
    const by = parseBy(values.by);
    const json = Boolean(values.json);
    const r = await traceKernel({
      ...stackGroupsFor(values, by, limit),
      ...(duration !== undefined ? { durationSeconds: duration } : {}),
      ...(values.events !== undefined ? { events: parseEvents(values.events)! } : {}),
      ...(values.cache !== undefined ? { cache: values.cache } : {}),
      ...(values.module !== undefined ? { module: values.module } : {}),
      ...(values.pid !== undefined
        ? { pid: numberOption(values.pid, 'pid', 0, { min: 1, integer: true }) }
        : {}),
      allPages: Boolean(values['all-pages']),
      ...(values['min-bytes'] !== undefined
        ? { minBytes: numberOption(values['min-bytes'], 'min-bytes', 0, { min: 1, integer: true }) }
        : {}),
      stacks: !values['no-stacks'],
      sample: numberOption(values.sample, 'sample', 1, { min: 1, integer: true }),
      maxRate: numberOption(values['max-rate'], 'max-rate', 200_000, { min: 0 }),
      ...(values['buffer-kb'] !== undefined
        ? { bufferKb: numberOption(values['buffer-kb'], 'buffer-kb', 0, { min: 64, integer: true }) }
        : {}),
      ...(refresh !== undefined
        ? { refreshSeconds: refresh, onRefresh: refreshPrinter(ctx, json, limit) }
        : {}),
      ...(values.save !== undefined ? { saveTo: values.save } : {}),
      onNotice: (l) => ctx.stderr.write(`memsleuth: ${l}\n`),
      onStart: () =>
        ctx.stderr.write(
          `memsleuth: tracing kernel allocations${duration ? ` for ${seconds(duration)}` : ''} (Ctrl-C to stop and report)\n`,
        ),
      handleSignals: true,
    });
    ctx.stderr.write(kernelSummary(r));
    if (values.html !== undefined) {
      const what = `kernel allocations${values.cache !== undefined ? `, cache ${values.cache}` : ''}${values.module !== undefined ? `, module ${values.module}` : ''}${values.pid !== undefined ? `, pid ${values.pid}` : ''}`;
      await writeTraceHtml(values.html, r.report, { what, events: sum(r.events), source: 'kmem_trace' }, ctx);
    }
    if (await writeFlameExports(r.report.byStack, values, 'trace kernel', ctx)) return 0;
    if (json) {
      const { report, ...meta } = r;
      ctx.stdout.write(`${JSON.stringify({ ...meta, ...report }, null, 2)}\n`);
      return 0;
    }
    ctx.stdout.write(
      renderTraceReport(r.report, {
        limit,
        stacks: Boolean(values.stacks),
        title: 'trace kernel',
        ...(by ? { by } : {}),
      }),
    );
    return 0;
  },
});

function userSummary(r: UserTraceResult): string {
  const o = r.overhead;
  const pct = (x: number | undefined) => (x === undefined ? '?' : `${(x * 100).toFixed(0)}%`);
  const lines = [
    `probes: ${r.probes.map((p) => `${p.fn}@${p.library.split('/').pop()}+${p.offset}`).join(' ')}`,
    `overhead: ${o.hits} probe hits (${Math.round(o.hitsPerSecond)}/s)` +
      (o.probeCpuSeconds !== undefined
        ? ` took ${o.probeCpuSeconds.toFixed(2)} s of the target's CPU${o.microsPerHit !== undefined ? ` (${o.microsPerHit.toFixed(1)} µs per hit)` : ''}, ` +
          `${pct(o.estimatedShare)} of the ${o.tracedCpuSeconds.toFixed(2)} s it used while traced`
        : '') +
      (o.baselineSystemShare !== undefined
        ? `; before tracing it spent ${pct(o.baselineSystemShare)} of its CPU in the kernel`
        : `; it used no CPU in the ${o.baselineSeconds} s before tracing`) +
      `; memsleuth used ${o.readerCpuSeconds.toFixed(1)} s of CPU`,
  ];
  if (r.exited) lines.push(`process ${r.pid} exited during the trace: outstanding = never freed before exit`);
  if (r.droppedEvents) lines.push(`${r.droppedEvents} events dropped (buffer full)`);
  if (r.stoppedBy) lines.push(`stopped by ${r.stoppedBy}`);
  lines.push('tracefs restored: probes and instance removed');
  return `${lines.join('\n')}\n`;
}

export const traceUserCommand = defineCommand({
  path: ['trace', 'user'],
  summary: "a process's malloc/free through uprobes: outstanding allocations by stack, no restart, no BPF",
  options: {
    pid: { type: 'string', short: 'p', valueName: 'PID', description: 'the process to trace (required)' },
    duration: {
      type: 'string',
      short: 'd',
      valueName: 'TIME',
      description: 'how long to trace (default 60s; 0: until Ctrl-C or exit)',
    },
    functions: {
      type: 'string',
      valueName: 'LIST',
      description: `which functions to probe (default ${LIBC_PROBES.map((p) => p.fn).join(',')})`,
    },
    baseline: {
      type: 'string',
      valueName: 'S',
      description: 'seconds of CPU accounting before tracing, for the overhead figure (default 1)',
    },
    'stack-depth': {
      type: 'string',
      valueName: 'N',
      description:
        'frames per allocation read from the frame-pointer chain (default 8, max 12; 0: the userstacktrace walk)',
    },
    refresh: { type: 'string', valueName: 'S', description: 'print what is outstanding every S seconds' },
    ...OUTPUT_OPTIONS,
    ...HTML_OPTION,
  },
  details:
    'Probes the malloc family in the library the process allocates from (its executable, a preloaded\n' +
    'allocator, else libc: offsets from the ELF symbol table), records the user stack at each return\n' +
    '(frame pointers: code built without them shows fewer frames) and names functions from\n' +
    '/proc/PID/maps and the ELF symbols. Every process mapping that library traps on the probes while\n' +
    'they exist; only the target is recorded. Needs root and CONFIG_UPROBE_EVENTS.',
  async run({ values }, ctx) {
    if (values.pid === undefined) throw new MemsleuthError('USAGE', 'trace user needs --pid PID');
    const pid = numberOption(values.pid, 'pid', 0, { min: 1, integer: true });
    const limit = numberOption(values.limit, 'limit', 20, { min: 1, integer: true });
    const duration = values.duration === '0' ? undefined : (parseDuration(values.duration, 'duration') ?? 60);
    const refresh = parseDuration(values.refresh, 'refresh');
    const by = parseBy(values.by);
    const json = Boolean(values.json);
    const functions = parseFunctions(values.functions);
    const r = await traceUser({
      ...stackGroupsFor(values, by, limit),
      pid,
      ...(duration !== undefined ? { durationSeconds: duration } : {}),
      ...(functions ? { functions } : {}),
      baselineSeconds: numberOption(values.baseline, 'baseline', 1, { min: 0 }),
      stackDepth: numberOption(values['stack-depth'], 'stack-depth', 8, { min: 0, integer: true }),
      ...(refresh !== undefined
        ? { refreshSeconds: refresh, onRefresh: refreshPrinter(ctx, json, limit) }
        : {}),
      onNotice: (l) => ctx.stderr.write(`memsleuth: ${l}\n`),
      onStart: () =>
        ctx.stderr.write(
          `memsleuth: tracing allocations of process ${pid}${duration ? ` for ${seconds(duration)}` : ''} (Ctrl-C to stop and report)\n`,
        ),
      handleSignals: true,
    });
    ctx.stderr.write(userSummary(r));
    if (values.html !== undefined)
      await writeTraceHtml(
        values.html,
        r.report,
        { what: `process ${pid} (${r.comm}), malloc family`, events: sum(r.events), source: 'malloc_trace' },
        ctx,
      );
    if (await writeFlameExports(r.report.byStack, values, `trace user ${pid}`, ctx)) return 0;
    if (json) {
      const { report, ...meta } = r;
      ctx.stdout.write(`${JSON.stringify({ ...meta, ...report }, null, 2)}\n`);
      return 0;
    }
    ctx.stdout.write(
      renderTraceReport(r.report, {
        limit,
        stacks: Boolean(values.stacks),
        title: `trace user ${pid} (${r.comm})`,
        by: by ?? 'stack',
      }),
    );
    return 0;
  },
});

interface SavedTrace {
  input: AsyncIterable<Buffer | string>;
  file: string;
  pageSizeBytes: number;
  /** Events the buffers dropped (trace/kmem.stats): trace_pipe text does not mark them. */
  droppedEvents: number;
  close(): Promise<void>;
}

/** A saved trace file, or a snapshot (bundle or directory) holding trace/kmem. */
async function openSavedTrace(path: string): Promise<SavedTrace> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (e) {
    throw new MemsleuthError('IO', `${path}: cannot open (${(e as NodeJS.ErrnoException).code})`, {
      file: path,
    });
  }
  let snapshot = st.isDirectory();
  if (st.isFile()) {
    const fh = await open(path, 'r');
    const head = Buffer.alloc(2);
    await fh.read(head, 0, 2, 0);
    await fh.close();
    snapshot = head[0] === 0x1f && head[1] === 0x8b;
  }
  if (!snapshot)
    return {
      input: createReadStream(path),
      file: path,
      pageSizeBytes: 4096,
      droppedEvents: 0,
      close: async () => {},
    };
  const snap = await openSnapshot(path);
  const stream = await snap.openStream(TRACE_KMEM_PATH);
  if (!stream) {
    await snap.close();
    throw new MemsleuthError(
      'UNAVAILABLE',
      `${snap.describe(TRACE_KMEM_PATH)}: the snapshot has no kmem trace`,
      {
        hint: 'capture one with `memsleuth-collect.sh --trace-kmem SECONDS` or save one with `memsleuth trace kernel -o FILE`',
      },
    );
  }
  const pageSizeBytes = (await snap.manifest()).pageSizeBytes || 4096;
  const statsText = await snap.readText(`${TRACE_KMEM_PATH}.stats`);
  const stats =
    statsText === undefined
      ? undefined
      : parseFtraceStatsFile(statsText, { file: snap.describe(`${TRACE_KMEM_PATH}.stats`) });
  const droppedEvents = stats ? stats.total.droppedEvents + stats.total.overrun : 0;
  return {
    input: stream,
    file: snap.describe(TRACE_KMEM_PATH),
    pageSizeBytes,
    droppedEvents,
    close: () => snap.close(),
  };
}

async function analyzeSaved(
  path: string,
  values: { module?: string; cache?: string; 'page-size'?: string },
  stackGroups?: number,
) {
  const t = await openSavedTrace(path);
  try {
    const pageSizeBytes = numberOption(values['page-size'], 'page-size', t.pageSizeBytes, {
      min: 1,
      integer: true,
    });
    const a = await analyzeKmemTrace(t.input, {
      file: t.file,
      pageSizeBytes,
      ...(values.module !== undefined ? { module: values.module } : {}),
      ...(values.cache !== undefined ? { cache: values.cache } : {}),
      ...(stackGroups !== undefined ? { stackGroups } : {}),
    });
    const c = a.report.counters;
    if (t.droppedEvents > c.lostEvents) c.lostEvents = t.droppedEvents;
    return { file: t.file, ...a };
  } finally {
    await t.close();
  }
}

const SAVED_OPTIONS = {
  module: { type: 'string', valueName: 'MOD', description: 'only allocations whose stack names module MOD' },
  cache: {
    type: 'string',
    valueName: 'NAME',
    description: 'only objects of this slab cache (where the trace names it)',
  },
  'page-size': {
    type: 'string',
    valueName: 'BYTES',
    description: 'bytes per page (default: the snapshot manifest, else 4096)',
  },
} as const;

export const traceReportCommand = defineCommand({
  path: ['trace', 'report'],
  summary: 'outstanding allocations of a saved kmem trace (trace kernel -o, or the collector’s --trace-kmem)',
  args: 'FILE|SNAPSHOT',
  options: { ...SAVED_OPTIONS, ...OUTPUT_OPTIONS, ...HTML_OPTION },
  details:
    'FILE is raw trace text; SNAPSHOT a bundle or directory with trace/kmem (memsleuth-collect.sh --trace-kmem).',
  async run({ values, positionals }, ctx) {
    if (positionals.length !== 1)
      throw new MemsleuthError('USAGE', 'trace report takes one FILE or SNAPSHOT');
    const limit = numberOption(values.limit, 'limit', 20, { min: 1, integer: true });
    const by = parseBy(values.by);
    const a = await analyzeSaved(positionals[0]!, values, stackGroupsFor(values, by, limit).stackGroups);
    if (values.html !== undefined)
      await writeTraceHtml(
        values.html,
        a.report,
        { what: a.file, events: sum(a.events), source: 'kmem_trace' },
        ctx,
      );
    if (await writeFlameExports(a.report.byStack, values, `trace ${a.file}`, ctx)) return 0;
    if (values.json) {
      ctx.stdout.write(
        `${JSON.stringify({ file: a.file, events: a.events, stacks: a.stacks, ...a.report }, null, 2)}\n`,
      );
      return 0;
    }
    ctx.stdout.write(
      renderTraceReport(a.report, {
        limit,
        stacks: Boolean(values.stacks),
        title: `trace ${a.file}`,
        ...(by ? { by } : {}),
      }),
    );
    return 0;
  },
});

export const traceDiffCommand = defineCommand({
  path: ['trace', 'diff'],
  summary: 'what is outstanding in one saved trace and not in another, by stack',
  args: 'BEFORE AFTER',
  options: {
    ...SAVED_OPTIONS,
    limit: { type: 'string', short: 'n', valueName: 'N', description: 'rows to print (default 20)' },
    json: { type: 'boolean', description: 'print every stack as JSON' },
  },
  details:
    'Each side is a saved trace or a snapshot with trace/kmem; stacks are compared by function and module.',
  async run({ values, positionals }, ctx) {
    if (positionals.length !== 2) throw new MemsleuthError('USAGE', 'trace diff needs BEFORE and AFTER');
    const limit = numberOption(values.limit, 'limit', 20, { min: 1, integer: true });
    const b = await analyzeSaved(positionals[0]!, values);
    const a = await analyzeSaved(positionals[1]!, values);
    const deltas = diffGroups(b.report.byStack, a.report.byStack, 'bytes');
    if (values.json) {
      ctx.stdout.write(`${JSON.stringify({ before: b.file, after: a.file, stacks: deltas }, null, 2)}\n`);
      return 0;
    }
    const grown = deltas.filter((d) => d.delta.bytes > 0 || d.delta.count > 0);
    const culprit = (key: string) => {
      const g = a.report.byStack.find((x) => x.key === key) ?? b.report.byStack.find((x) => x.key === key);
      return g ? groupName(g) : key;
    };
    ctx.stdout.write(
      `outstanding: ${formatBytes(b.report.outstanding.bytes)} -> ${formatBytes(a.report.outstanding.bytes)} ` +
        `(${formatDelta(a.report.outstanding.bytes - b.report.outstanding.bytes)}); ${grown.length} stacks grew\n` +
        `${table(grown.slice(0, limit), [
          { header: 'Δ BYTES', align: 'right', value: (d) => formatDelta(d.delta.bytes) },
          {
            header: 'Δ COUNT',
            align: 'right',
            value: (d) => (d.delta.count > 0 ? `+${d.delta.count}` : String(d.delta.count)),
          },
          { header: 'AFTER', align: 'right', value: (d) => formatBytes(d.after.bytes) },
          { header: '', value: (d) => (d.isNew ? 'NEW' : '') },
          { header: 'CULPRIT', max: 60, value: (d) => culprit(d.key) },
        ])}\n`,
    );
    return 0;
  },
});

export const traceCommands = [traceKernelCommand, traceUserCommand, traceReportCommand, traceDiffCommand];

export const slabTraceCommand = defineCommand({
  path: ['slab', 'trace'],
  summary:
    "one cache's allocations and frees for N seconds (the slab `trace` switch, or its kmem events): outstanding by stack",
  args: 'CACHE',
  options: {
    seconds: { type: 'string', short: 's', valueName: 'N', description: 'how long to trace (default 10)' },
    log: {
      type: 'string',
      valueName: 'FILE',
      description: 'analyse a saved kernel log (dmesg) of a slub_debug=T kernel instead',
    },
    ...OUTPUT_OPTIONS,
  },
  details:
    'The seed workflow `echo 1 > /sys/kernel/slab/CACHE/trace; sleep N; echo 0 > ...` with the call traces\n' +
    'grouped: the switch prints a stack per allocation and free into the kernel log (costly on a busy cache),\n' +
    'is on for --seconds only, and is turned off on exit, Ctrl-C, SIGTERM and at the start after a kill.\n' +
    'It is read-only since 5.9: then a cache traced from boot (slub_debug=T,CACHE) is read from the log,\n' +
    'and any other cache through its kmem tracepoints (as `memsleuth trace kernel --cache CACHE`).',
  async run({ values, positionals }, ctx) {
    if (positionals.length !== 1) throw new MemsleuthError('USAGE', 'slab trace needs one CACHE');
    const cache = positionals[0]!;
    const limit = numberOption(values.limit, 'limit', 20, { min: 1, integer: true });
    const secs = numberOption(values.seconds, 'seconds', 10, { min: 0.1 });
    const by = parseBy(values.by);
    const r = await traceSlabCache({
      cache,
      seconds: secs,
      ...(values.log !== undefined ? { logFile: values.log } : {}),
      handleSignals: true,
      onNotice: (l) => ctx.stderr.write(`memsleuth: ${l}\n`),
      onStart: () =>
        ctx.stderr.write(`memsleuth: tracing slab cache ${cache} for ${seconds(secs)} (Ctrl-C to stop)\n`),
    });
    if (r.kernel) ctx.stderr.write(kernelSummary(r.kernel));
    else if (r.method !== 'log')
      ctx.stderr.write(`memsleuth: ${r.records} TRACE records; the trace switch is off again\n`);
    if (await writeFlameExports(r.report.byStack, values, `slab trace ${cache}`, ctx)) return 0;
    if (values.json) {
      const { report, kernel: _k, ...meta } = r;
      ctx.stdout.write(`${JSON.stringify({ ...meta, ...report }, null, 2)}\n`);
      return 0;
    }
    const title = `slab trace ${cache} (${r.method === 'tracefs' ? 'kmem tracepoints' : r.method === 'log' ? values.log : 'slub trace switch'})`;
    // The log has no clock: ages there count records.
    const text = renderTraceReport(r.report, {
      limit,
      stacks: Boolean(values.stacks),
      title,
      by: by ?? 'stack',
    });
    ctx.stdout.write(r.method === 'tracefs' ? text : text.replace(/ traced,/, ' records,'));
    return 0;
  },
});
