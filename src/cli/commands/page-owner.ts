import { closeSync, constants, fstatSync, ftruncate, ftruncateSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  diffPageOwner,
  groupPageOwner,
  KERNEL_ALLOCATORS,
  PAGE_ALLOCATORS,
  PAGE_OWNER_GROUP_BY,
  type PageAllocator,
  type PageOwnerGroupBy,
} from '../../analysis/page_owner.js';
import type { ParallelOptions } from '../../analysis/page_owner_parallel.js';
import {
  parseSortArgv,
  runPageOwnerSort,
  type SortCompat,
  sortUsage,
} from '../../analysis/page_owner_sort.js';
import { culpritFrame, type GroupDelta, type StackGroup } from '../../analysis/stacks.js';
import { idleCoresNow } from '../../capture/cpu.js';
import { MemsleuthError, strerror } from '../../model/errors.js';
import { type Frame, formatFrame } from '../../model/frame.js';
import { formatBytes, formatDelta, formatPercent } from '../../model/units.js';
import { openSourceFile } from '../../registry/raw_file.js';
import { PAGE_OWNER_HEAD, type PageOwnerInput } from '../../sources/page_owner.js';
import { defineCommand, LENIENT_OPTION, numberOption } from '../command.js';
import { type CommandContext, progress } from '../context.js';
import { FLAME_OPTIONS, writeFlameExports } from '../flame.js';
import { type Column, table } from '../format.js';
import { annotateFrames, frameLine, SYMBOLS_OPTION, sourceColumn } from '../symbols.js';
import { ThreadedWriter } from '../threaded_write.js';

/**
 * `-` (stdin), a page_owner file (or FIFO, or debugfs), or a snapshot: a directory or a
 * bundle from `memsleuth snapshot` holding `page_owner`. A regular file that starts with a
 * page_owner record (the usual input) is read as it is, as openSourceInput would; the
 * registry that tells every other input apart is loaded only for the others (it was 60-70
 * of the command's 75-100 ms of loading here).
 */
async function openDump(
  arg: string,
  ctx: CommandContext,
): Promise<{ input: string | Readable; file: string; close(): Promise<void> }> {
  return openSourceFile(arg, 'page_owner', PAGE_OWNER_HEAD, { stdin: ctx.stdin });
}

/**
 * `-` is standard input; anything else a path (a file, a FIFO or debugfs). Standard input
 * that is a pipe, in a process of its own, is read as /dev/stdin: a path, which a reader
 * thread can read while this one groups (page_owner_parallel.ts, readerSource).
 */
export function inputOf(arg: string, ctx: CommandContext): PageOwnerInput {
  if (arg !== '-') return arg;
  if (ctx.ownsProcess && ctx.stdin === process.stdin && stdinIsPipe()) return '/dev/stdin';
  return ctx.stdin as unknown as Readable;
}

function stdinIsPipe(): boolean {
  try {
    return fstatSync(0).isFIFO();
  } catch {
    return false;
  }
}

function rate(bytes: number, t0: number): string {
  const s = (Date.now() - t0) / 1000;
  return s > 0 ? `${(bytes / 1e6 / s).toFixed(0)} MB/s` : '';
}

/** Progress line for streamed reads: bytes, records, rate. */
export function streamProgress(ctx: CommandContext, what: string) {
  const p = progress(ctx);
  const t0 = Date.now();
  return {
    update: (x: { bytes: number; blocks: number }) =>
      p.update(`${what}: ${(x.bytes / 1e6).toFixed(0)} MB, ${x.blocks} records, ${rate(x.bytes, t0)}`),
    done: () => p.done(),
  };
}

/**
 * Worker threads, chunk size and whether the calling thread scans too, from
 * MEMSLEUTH_WORKERS, MEMSLEUTH_CHUNK_KB and MEMSLEUTH_HELPER=0/1 (tuning and tests; by
 * default a file of 64 MiB or more is scanned by the calling thread and one worker per
 * other idle core).
 */
function parallelOptions(ctx: CommandContext): ParallelOptions {
  const out: ParallelOptions = {};
  const num = (name: string) => {
    const v = ctx.env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new MemsleuthError('USAGE', `${name}: expected a whole number, found ${JSON.stringify(v)}`);
    return n;
  };
  const workers = num('MEMSLEUTH_WORKERS');
  const kb = num('MEMSLEUTH_CHUNK_KB');
  const helper = num('MEMSLEUTH_HELPER');
  if (workers !== undefined) out.workers = workers;
  else out.idleCores = () => idleCoresNow();
  if (helper !== undefined) out.helper = helper > 0;
  if (kb !== undefined) out.chunkBytes = Math.max(kb, 4) * 1024;
  return out;
}

const pageOwnerSortDetails =
  'Takes exactly the options of tools/mm/page_owner_sort (6.7+) and writes the same bytes;\n' +
  '`--compat 6.1` (first argument) switches to tools/vm/page_owner_sort of 5.18-6.6\n' +
  '(-r, -f, --cull free, --sort ft, timestamps kept). `-` reads stdin / writes stdout;\n' +
  'pipes and /sys/kernel/debug/page_owner work directly; records up to 1 MiB (the C tool\n' +
  'stops at 128 KiB); a longer record, or input without blank lines, is an error at 1 MiB.\n' +
  'Without --cull, a file of 64 MiB or more is read by this thread and a worker thread per\n' +
  'other idle core (idle now: runnable threads in /proc/loadavg); a pipe, a FIFO or debugfs,\n' +
  'with two idle cores, by a thread of its own that reads it and, once it has brought 64 MiB,\n' +
  'a worker per other idle core (MEMSLEUTH_WORKERS=N sets the number, 0 none).\n';

export const pageOwnerSortCommand = defineCommand({
  path: ['page-owner', 'sort'],
  summary: "sort and cull a page_owner dump: a drop-in for the kernel's page_owner_sort",
  args: '<input> <output>',
  options: {},
  rawArgs: true,
  details: pageOwnerSortDetails,
  async run({ rawArgs }, ctx) {
    let args = rawArgs;
    let compat: SortCompat = '6.12';
    if (args[0] === '--compat' || args[0]?.startsWith('--compat=')) {
      const v = args[0].includes('=') ? args[0].slice('--compat='.length) : args[1];
      if (v !== '6.1' && v !== '6.12') {
        throw new MemsleuthError(
          'USAGE',
          `--compat: expected 6.1 or 6.12, found ${JSON.stringify(v ?? '')}`,
          {
            hint: '6.1 follows tools/vm/page_owner_sort.c (5.18-6.6), 6.12 tools/mm (6.7+)',
          },
        );
      }
      compat = v;
      args = args.slice(args[0].includes('=') ? 1 : 2);
    }
    if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
      // The C tool's own option list follows, as `page_owner_sort` prints it.
      ctx.stdout.write(
        'Usage: memsleuth page-owner sort [--compat 6.1|6.12] [OPTIONS] <input> <output>\n\n' +
          `${pageOwnerSortDetails}\n${sortUsage(compat)}`,
      );
      return 0;
    }
    const argv0 = ctx.env.MEMSLEUTH_ARGV0 ?? 'memsleuth page-owner sort';
    const parsed = parseSortArgv(args, compat, argv0);
    if (!parsed.ok) {
      ctx.stdout.write(parsed.stdout);
      ctx.stderr.write(parsed.stderr);
      return parsed.status;
    }
    const cfg = parsed.config;
    const toStdout = cfg.output === '-';
    // The C tool opens both files before reading anything (so the output is created
    // even when the input is missing) and reports the last failure with perror().
    let inErr: NodeJS.ErrnoException | undefined;
    let outErr: NodeJS.ErrnoException | undefined;
    let input: PageOwnerInput = inputOf(cfg.input, ctx);
    if (cfg.input !== '-') {
      try {
        const fh = await open(cfg.input, 'r');
        const st = await fh.stat();
        await fh.close();
        if (st.isDirectory()) input = (async function* () {})();
      } catch (e) {
        inErr = e as NodeJS.ErrnoException;
      }
    }
    let fd = 1;
    // An existing big file is cut while the input is read (freeing its pages took 0.17 s for a
    // GiB here), to its first byte, which the output replaces: ext4 starts the writeback of a
    // file truncated to nothing when it is closed (auto_da_alloc, which keeps a rewritten
    // file's data through a crash), and the close of a 952 MB output waited 0.27-0.35 s for
    // it. An output of nothing is cut to nothing at the end. Anything else is truncated at
    // once, as fopen(..., "w") would.
    let cut: Promise<void> | undefined;
    if (!toStdout) {
      try {
        fd = openSync(cfg.output, constants.O_WRONLY | constants.O_CREAT, 0o666);
        const st = fstatSync(fd);
        if (st.isFile() && st.size >= TRUNCATE_LATER_BYTES) {
          const f = fd;
          cut = new Promise<void>((resolve, reject) => ftruncate(f, 1, (e) => (e ? reject(e) : resolve())));
          // Its failure is thrown before the output (beforeOutput).
          cut.catch(() => {});
        } else if (st.isFile()) ftruncateSync(fd, 0);
      } catch (e) {
        outErr = e as NodeJS.ErrnoException;
      }
    }
    /** The old file cut to nothing (after the cut to one byte, when nothing replaced that byte). */
    const cutToNothing = async () => {
      if (
        cut &&
        (await cut.then(
          () => true,
          () => false,
        ))
      )
        ftruncateSync(fd, 0);
    };
    if (inErr || outErr) {
      if (fd !== 1) {
        try {
          await cutToNothing();
        } finally {
          closeSync(fd);
        }
      }
      const err = (outErr ?? inErr)!;
      ctx.stdout.write(sortUsage(compat));
      ctx.stderr.write(`open: : ${strerror(err)}\n`);
      return 1;
    }
    const prog = streamProgress(ctx, 'page-owner sort');
    // A file is written from a second thread while the next piece is built, when other threads
    // read the input (their cores are free then; else from this thread: beforeOutput); so is
    // this process's stdout when it is a pipe or a file: the writer waits for a slow reader,
    // where the stream would have kept the whole output in memory (a gigabyte for `| less`).
    const writer =
      !toStdout || (ctx.ownsProcess && !ctx.stdoutIsTTY) ? new ThreadedWriter(toStdout ? 1 : fd) : undefined;
    try {
      await runPageOwnerSort(
        cfg,
        input,
        {
          // With the output on stdout the C tool's "loaded N" lines go to stderr instead.
          progressOut: (s) => {
            if (toStdout) {
              if (!ctx.stderrIsTTY) return;
              ctx.stderr.write(s);
            } else ctx.stdout.write(s);
          },
          errOut: (s) => ctx.stderr.write(s),
          write: (b) => {
            if (!writer) ctx.stdout.write(b);
            else {
              try {
                writer.write(b);
              } catch (e) {
                throw writeError(cfg.output, e, toStdout);
              }
            }
          },
          // The writer copies what it is given (or writes it at once): one buffer serves.
          writeDone: writer !== undefined,
          // Better: the output is built in the writer's own memory, never copied.
          ...(writer
            ? {
                buffers: {
                  lend: () => {
                    try {
                      return writer.lend();
                    } catch (e) {
                      throw writeError(cfg.output, e, toStdout);
                    }
                  },
                  handOver: (n: number) => {
                    try {
                      writer.handOver(n);
                    } catch (e) {
                      throw writeError(cfg.output, e, toStdout);
                    }
                  },
                },
              }
            : {}),
          beforeOutput: async (threads) => {
            if (cut) {
              try {
                await cut;
              } catch (e) {
                throw writeError(cfg.output, e, toStdout);
              }
            }
            if (!threads) writer?.oneThread();
          },
          onProgress: prog.update,
        },
        // One sort a process: its workers go when its scan ends.
        { ...parallelOptions(ctx), lastScan: true },
      );
      try {
        writer?.close();
      } catch (e) {
        throw writeError(cfg.output, e, toStdout);
      }
    } catch (e) {
      // A reader of stdout that went away (`| head`) ends the output, as for every command.
      if (e instanceof ClosedStdout) return 0;
      throw e;
    } finally {
      prog.done();
      try {
        writer?.close();
      } finally {
        if (fd !== 1) {
          try {
            if ((writer?.bytes ?? 0) === 0) await cutToNothing();
          } finally {
            closeSync(fd);
          }
        }
      }
    }
    return 0;
  },
});

/** An existing output file at least this long is cut while the input is read. */
const TRUNCATE_LATER_BYTES = 64 << 20;

/** stdout's reader closed the pipe (EPIPE): not an error. */
class ClosedStdout extends Error {}

/** A failed write of the sorted output (a full disk, a quota): an I/O error, not a bug. */
function writeError(path: string, e: unknown, toStdout = false): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (toStdout && code === 'EPIPE') return new ClosedStdout('stdout closed');
  if (typeof code !== 'string') return e;
  return new MemsleuthError(
    'IO',
    `page-owner sort: writing ${path}: ${strerror(e as NodeJS.ErrnoException)}`,
    {
      file: path,
    },
  );
}

const BY_HELP = PAGE_OWNER_GROUP_BY.join('|');

function groupByOption(v: string | undefined): PageOwnerGroupBy {
  if (v === undefined) return 'stack';
  if (!(PAGE_OWNER_GROUP_BY as readonly string[]).includes(v)) {
    throw new MemsleuthError('USAGE', `--by: expected one of ${BY_HELP}, found ${JSON.stringify(v)}`);
  }
  return v as PageOwnerGroupBy;
}

function allocatorOption(v: string | undefined, fallback: readonly PageAllocator[] | undefined) {
  if (v === undefined) return fallback;
  if (v === 'all') return undefined;
  const list = v.split(',').map((s) => s.trim());
  for (const a of list) {
    if (!(PAGE_ALLOCATORS as readonly string[]).includes(a)) {
      throw new MemsleuthError(
        'USAGE',
        `--allocator: expected a list of ${PAGE_ALLOCATORS.join(', ')} or "all", found ${JSON.stringify(a)}`,
      );
    }
  }
  return list as PageAllocator[];
}

/** One line naming a group: the culprit frame for stacks, the label otherwise. */
function groupName(frames: readonly Frame[], by: PageOwnerGroupBy): string {
  if (by !== 'stack') return frames[0] ? formatFrame(frames[0]) : '[no stack]';
  const f = culpritFrame(frames);
  return f ? formatFrame({ ...f, offset: undefined, length: undefined } as Frame) : '[no stack]';
}

const commonOptions = {
  by: { type: 'string', valueName: 'KEY', description: `group by ${BY_HELP} (default stack)` },
  limit: { type: 'string', short: 'n', valueName: 'N', description: 'show the first N groups (default 20)' },
  allocator: {
    type: 'string',
    valueName: 'LIST',
    description: 'only slab,vmalloc,page cache,anonymous,other (or all)',
  },
  module: { type: 'string', valueName: 'MOD', description: 'only records whose stack names module MOD' },
  'page-size': { type: 'string', valueName: 'BYTES', description: 'bytes per page (default 4096)' },
  stacks: { type: 'boolean', description: 'print the whole stack of each group' },
  ...FLAME_OPTIONS,
  json: { type: 'boolean', description: 'print the whole result as JSON' },
  ...LENIENT_OPTION,
  ...SYMBOLS_OPTION,
} as const;

const LIVE_DUMP = '/sys/kernel/debug/page_owner';

function stackLines(frames: readonly Frame[]): string[] {
  return frames.map((f) => `      ${frameLine(f)}`);
}

/** The culprit of a stack group (whose SOURCE is shown), none for other groupings. */
function culpritOf(frames: readonly Frame[], by: PageOwnerGroupBy): Frame | undefined {
  return by === 'stack' ? culpritFrame(frames) : undefined;
}

export const pageOwnerTopCommand = defineCommand({
  path: ['page-owner', 'top'],
  summary: 'who holds the pages: a page_owner dump grouped by stack, function, module, process...',
  args: '[DUMP|-]',
  options: commonOptions,
  details:
    'DUMP is a page_owner file, `-` for stdin, a snapshot (directory or bundle), or\n' +
    '/sys/kernel/debug/page_owner (the default).\n' +
    'Allocators: slab (slab pages), vmalloc, page cache (incl. shmem), anonymous, other\n' +
    '(pages straight from the buddy allocator: drivers, page tables, the "black hole").',
  async run({ values, positionals }, ctx) {
    const by = groupByOption(values.by);
    const limit = numberOption(values.limit, 'limit', 20, { min: 1, integer: true });
    const pageSizeBytes = numberOption(values['page-size'], 'page-size', 4096, { min: 1, integer: true });
    const arg = positionals[0] ?? LIVE_DUMP;
    const allocators = allocatorOption(values.allocator, undefined);
    const dump = await openDump(arg, ctx);
    const prog = streamProgress(ctx, 'page-owner top');
    let r: Awaited<ReturnType<typeof groupPageOwner>>;
    try {
      r = await groupPageOwner(dump.input, {
        ...parallelOptions(ctx),
        by,
        pageSizeBytes,
        file: dump.file,
        onProgress: prog.update,
        onWarning: (m) => ctx.stderr.write(`memsleuth: warning: ${m}\n`),
        ...(values.lenient ? { lenient: true } : {}),
        ...(allocators ? { allocators } : {}),
        ...(values.module !== undefined ? { module: values.module } : {}),
      });
    } catch (e) {
      throw ioError(e, arg);
    } finally {
      prog.done();
      await dump.close();
    }
    if (values.collapsed || values.speedscope)
      await writeFlameExports(r.groups, values, `page_owner ${arg}`, ctx, 'pages');
    // Only the groups shown are built (a dump can have hundreds of thousands of stacks).
    const top = r.top('pages', limit);
    const groups = values.json ? r.top('pages') : top;
    const symbolized = await annotateFrames(groups, values, { running: arg === LIVE_DUMP }, ctx);
    if (values.json) {
      const { by, records, kept, pages, bytes, inputBytes } = r;
      ctx.stdout.write(
        `${JSON.stringify({ by, groups, records, kept, pages, bytes, inputBytes }, null, 2)}\n`,
      );
      return 0;
    }
    if (values.collapsed === '-' || values.speedscope === '-') return 0;
    const out: string[] = [
      `page_owner ${arg}`,
      `${r.records} records, ${r.kept} kept, ${r.pages} pages (${formatBytes(r.bytes)}), ` +
        `${r.groupCount} groups by ${by}`,
      '',
    ];
    const rows = top.map((g, i) => ({ g, i }));
    out.push(
      table(rows, [
        { header: '#', align: 'right', value: (x) => String(x.i + 1) },
        { header: 'PAGES', align: 'right', value: (x) => String(x.g.weights.pages) },
        { header: 'BYTES', align: 'right', value: (x) => formatBytes(x.g.weights.bytes) },
        { header: 'BLOCKS', align: 'right', value: (x) => String(x.g.weights.count) },
        {
          header: '%',
          align: 'right',
          value: (x) => formatPercent((x.g.weights.pages / (r.pages || 1)) * 100),
        },
        {
          header: by === 'stack' ? 'CULPRIT (first frame outside the allocators)' : by.toUpperCase(),
          max: 62,
          value: (x) => groupName(x.g.frames, by),
        },
        ...(symbolized ? [sourceColumn<{ g: StackGroup; i: number }>((x) => culpritOf(x.g.frames, by))] : []),
      ]).trimEnd(),
    );
    if (values.stacks && by === 'stack') {
      for (const [i, g] of top.entries())
        out.push('', `#${i + 1} ${g.weights.pages} pages`, ...stackLines(g.frames));
    }
    ctx.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
});

export const pageOwnerDiffCommand = defineCommand({
  path: ['page-owner', 'diff'],
  summary: 'what gained pages between two page_owner dumps (ranked by pages gained)',
  args: 'BEFORE AFTER',
  options: commonOptions,
  details:
    'Groups both dumps the same way (timestamps and PFNs ignored) and ranks groups by pages\n' +
    'gained; NEW marks stacks absent before. By default only kernel allocations count\n' +
    '(slab, vmalloc, other): page cache and anonymous memory come and go; --allocator all\n' +
    'includes them. Either dump may be `-` (stdin) or a snapshot (directory or bundle).',
  async run({ values, positionals }, ctx) {
    if (positionals.length !== 2) {
      throw new MemsleuthError('USAGE', 'page-owner diff needs two dumps: BEFORE AFTER', {
        hint: 'memsleuth page-owner diff before/page_owner after/page_owner',
      });
    }
    const [bArg, aArg] = positionals as [string, string];
    const by = groupByOption(values.by);
    const limit = numberOption(values.limit, 'limit', 20, { min: 1, integer: true });
    const pageSizeBytes = numberOption(values['page-size'], 'page-size', 4096, { min: 1, integer: true });
    const allocators = allocatorOption(values.allocator, KERNEL_ALLOCATORS);
    if (bArg === '-' && aArg === '-') {
      throw new MemsleuthError('USAGE', 'only one of BEFORE and AFTER can be - (stdin)');
    }
    const before = await openDump(bArg, ctx);
    const after = await openDump(aArg, ctx).catch(async (e) => {
      await before.close();
      throw e;
    });
    const prog = streamProgress(ctx, 'page-owner diff');
    let d: Awaited<ReturnType<typeof diffPageOwner>>;
    try {
      d = await diffPageOwner(before.input, after.input, {
        ...parallelOptions(ctx),
        by,
        pageSizeBytes,
        beforeFile: before.file,
        afterFile: after.file,
        onProgress: prog.update,
        onWarning: (m) => ctx.stderr.write(`memsleuth: warning: ${m}\n`),
        ...(values.lenient ? { lenient: true } : {}),
        ...(allocators ? { allocators } : {}),
        ...(values.module !== undefined ? { module: values.module } : {}),
      });
    } catch (e) {
      throw ioError(e, `${bArg} or ${aArg}`);
    } finally {
      prog.done();
      await before.close();
      await after.close();
    }
    // Only the deltas shown are built (a dump can have hundreds of thousands of stacks).
    const gained = d.gained(limit);
    const lost = d.lost(limit);
    const symbolized = await annotateFrames(
      values.json ? d.deltas : [gained, lost],
      values,
      { running: aArg === LIVE_DUMP },
      ctx,
    );
    if (values.collapsed || values.speedscope) {
      const gainedGroups: StackGroup[] = d.gained().map((x) => ({
        key: x.key,
        frames: x.frames,
        weights: x.delta,
      }));
      await writeFlameExports(gainedGroups, values, `page_owner gained ${bArg} -> ${aArg}`, ctx, 'pages');
    }
    if (values.json) {
      ctx.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
      return 0;
    }
    if (values.collapsed === '-' || values.speedscope === '-') return 0;
    const out: string[] = [
      `page_owner diff (by ${by}${allocators ? `, ${allocators.join('/')} only` : ''}): ` +
        `${d.before.pages} -> ${d.after.pages} pages (${d.after.pages - d.before.pages >= 0 ? '+' : ''}${d.after.pages - d.before.pages})`,
      '',
    ];
    const cols = (title: string) =>
      [
        { header: '#', align: 'right', value: (x: { i: number }) => String(x.i + 1) },
        { header: 'PAGES', align: 'right', value: (x: { g: GroupDelta }) => signed(x.g.delta.pages) },
        { header: 'BYTES', align: 'right', value: (x: { g: GroupDelta }) => formatDelta(x.g.delta.bytes) },
        { header: 'BLOCKS', align: 'right', value: (x: { g: GroupDelta }) => signed(x.g.delta.count) },
        { header: 'AFTER', align: 'right', value: (x: { g: GroupDelta }) => String(x.g.after.pages) },
        { header: '', value: (x: { g: GroupDelta }) => (x.g.isNew ? 'NEW' : x.g.isGone ? 'GONE' : '') },
        { header: title, max: 56, value: (x: { g: GroupDelta }) => groupName(x.g.frames, by) },
        ...(symbolized ? [sourceColumn((x: { g: GroupDelta }) => culpritOf(x.g.frames, by))] : []),
      ] as Column<{ g: GroupDelta; i: number }>[];
    out.push('Gained:');
    out.push(
      table(
        gained.map((g, i) => ({ g, i })),
        cols(by === 'stack' ? 'CULPRIT' : by.toUpperCase()),
      ).trimEnd(),
    );
    if (values.stacks && by === 'stack') {
      for (const [i, g] of gained.entries())
        out.push('', `#${i + 1} ${signed(g.delta.pages)} pages`, ...stackLines(g.frames));
    }
    if (lost.length) {
      out.push('', 'Lost:');
      out.push(
        table(
          lost.map((g, i) => ({ g, i })),
          cols(by === 'stack' ? 'CULPRIT' : by.toUpperCase()),
        ).trimEnd(),
      );
    }
    ctx.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
});

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}

function ioError(e: unknown, what: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return new MemsleuthError(
      code === 'EACCES' || code === 'EPERM' ? 'PERMISSION' : 'IO',
      `cannot read ${what}: ${(e as Error).message}`,
      {
        hint: what.includes('/sys/kernel/debug/page_owner')
          ? 'boot with page_owner=on (CONFIG_PAGE_OWNER), mount debugfs, run as root'
          : 'give a page_owner dump, or - for stdin',
        cause: e,
      },
    );
  }
  return e;
}

export const pageOwnerCommands = [pageOwnerSortCommand, pageOwnerTopCommand, pageOwnerDiffCommand];
