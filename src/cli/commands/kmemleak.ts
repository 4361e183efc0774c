import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import {
  classifyKmemleakSeries,
  groupKmemleak,
  type KmemleakGroup,
  type KmemleakGroupBy,
  type KmemleakGrouper,
  type KmemleakSeries,
  scanKmemleakGroups,
} from '../../analysis/kmemleak.js';
import { checkKmemleak, kmemleakScan } from '../../capture/kmemleak.js';
import { MemsleuthError } from '../../model/errors.js';
import { frameKey } from '../../model/frame.js';
import { formatBytes } from '../../model/units.js';
import { openSourceFile } from '../../registry/raw_file.js';
import { KMEMLEAK_HEAD, parseKmemleak } from '../../sources/kmemleak.js';
import type { ParseSettings } from '../../sources/text.js';
import { defineCommand, LENIENT_OPTION, numberOption, parseSettingsOf } from '../command.js';
import type { CommandContext } from '../context.js';
import { FLAME_OPTIONS, writeFlameExports, writesEveryGroup } from '../flame.js';
import { table } from '../format.js';
import { annotateFrames, frameLine, SYMBOLS_OPTION, sourceColumn } from '../symbols.js';

const BY: readonly KmemleakGroupBy[] = ['backtrace', 'culprit', 'comm'];

function parseBy(v: string | undefined): KmemleakGroupBy {
  if (v === undefined) return 'backtrace';
  if ((BY as readonly string[]).includes(v)) return v as KmemleakGroupBy;
  throw new MemsleuthError('USAGE', `--by: expected one of ${BY.join(', ')}, found ${JSON.stringify(v)}`);
}

export interface ReportInput {
  input: AsyncIterable<Buffer | string>;
  file: string;
  close(): Promise<void>;
}

/**
 * A saved report file (or `-`), the `kmemleak` file of a snapshot (bundle or directory), or
 * with no path the live debugfs file: streamed, never read whole.
 */
export async function openReport(
  path: string | undefined,
  stdin?: NodeJS.ReadableStream,
): Promise<ReportInput> {
  if (path === undefined) {
    const live = await checkKmemleak();
    return { input: createReadStream(live), file: live, close: async () => {} };
  }
  // A saved report opens as it is; the registry is loaded for the other inputs only.
  const r = await openSourceFile(path, 'kmemleak', KMEMLEAK_HEAD, stdin ? { stdin } : {});
  return {
    input: typeof r.input === 'string' ? createReadStream(r.input) : r.input,
    file: r.file,
    close: r.close,
  };
}

async function groupReport(
  path: string | undefined,
  by: KmemleakGroupBy,
  stdin?: NodeJS.ReadableStream,
  parse: ParseSettings = {},
): Promise<{ grouper: KmemleakGrouper; file: string }> {
  const r = await openReport(path, stdin);
  try {
    return { grouper: await scanKmemleakGroups(r.input, by, { ...parse, file: r.file }), file: r.file };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (e instanceof MemsleuthError || code === undefined) throw e;
    // EBUSY/EPERM from debugfs once kmemleak has switched itself off
    throw new MemsleuthError('IO', `${r.file}: read failed (${code})`, {
      file: r.file,
      hint:
        code === 'EBUSY' || code === 'EPERM'
          ? 'kmemleak is disabled: see `dmesg | grep kmemleak`'
          : undefined,
      cause: e,
    });
  } finally {
    await r.close();
  }
}

function totalBytes(groups: readonly KmemleakGroup[]): number {
  return groups.reduce((s, g) => s + g.weights.bytes, 0);
}

function frameText(g: KmemleakGroup): string {
  const c = g.culprit;
  return c ? frameKey(c) : '<no backtrace>';
}

/**
 * The summary line and table of `rows`, the first groups of `all` (a grouper, or every group:
 * the totals are of all of them).
 */
function renderGroups(
  rows: KmemleakGroup[],
  all: { size: number; bytes: number },
  reports: number,
  by: KmemleakGroupBy,
  stacks: boolean,
  symbolized = false,
): string {
  const out = [`${reports} unreferenced objects (${formatBytes(all.bytes)}) in ${all.size} groups by ${by}`];
  if (all.size === 0) return `${out.join('\n')}\n`;
  const tbl = table(rows, [
    { header: 'OBJECTS', align: 'right', value: (g) => String(g.weights.count) },
    { header: 'BYTES', align: 'right', value: (g) => formatBytes(g.weights.bytes) },
    {
      header: 'COMM',
      max: 24,
      value: (g) =>
        Object.entries(g.comms)
          .sort((a, b) => b[1] - a[1])
          .map(([c, n]) => (Object.keys(g.comms).length > 1 ? `${c} (${n})` : c))
          .join(', '),
    },
    {
      header: by === 'comm' ? 'TASK' : 'CULPRIT',
      max: 44,
      value: (g) => (by === 'comm' ? g.key.slice(5) : frameText(g)),
    },
    ...(symbolized && by !== 'comm' ? [sourceColumn<KmemleakGroup>((g) => g.culprit)] : []),
  ]);
  if (!stacks) out.push(tbl);
  else {
    const lines = tbl.split('\n');
    out.push(lines[0]!);
    rows.forEach((g, i) => {
      out.push(lines[i + 1]!);
      for (const f of g.frames) out.push(`      ${frameLine(f, false)}`);
    });
  }
  return `${out.join('\n')}\n`;
}

export const kmemleakReportCommand = defineCommand({
  path: ['kmemleak', 'report'],
  summary: 'group kmemleak reports by backtrace (or culprit, or task): objects and bytes',
  args: '[FILE|SNAPSHOT]',
  options: {
    by: { type: 'string', valueName: 'KEY', description: 'backtrace (default), culprit or comm' },
    top: { type: 'string', valueName: 'N', description: 'groups to print (default 20)' },
    stacks: { type: 'boolean', description: 'print each group’s backtrace' },
    ...FLAME_OPTIONS,
    json: { type: 'boolean', description: 'print every group as JSON' },
    ...LENIENT_OPTION,
    ...SYMBOLS_OPTION,
  },
  details:
    'FILE is a saved copy of /sys/kernel/debug/kmemleak; SNAPSHOT a bundle or directory. Without either,\n' +
    'the live report is read (no scan is triggered: see `memsleuth kmemleak scan`).',
  async run({ values, positionals }, ctx) {
    const by = parseBy(values.by);
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    const { grouper, file } = await groupReport(positionals[0], by, ctx.stdin, parseSettingsOf(values, ctx));
    const reports = grouper.reports;
    // Every group only where every group is written: the table builds the ones it prints.
    const groups = writesEveryGroup(values) ? grouper.result() : [];
    if (await writeFlameExports(groups, values, `kmemleak ${file}`, ctx)) return 0;
    const shown = values.json ? groups : grouper.top(top);
    const symbolized = await annotateFrames(shown, values, { running: positionals[0] === undefined }, ctx);
    ctx.stdout.write(
      values.json
        ? `${JSON.stringify({ reports, groups }, null, 2)}\n`
        : renderGroups(shown, grouper, reports, by, Boolean(values.stacks), symbolized),
    );
    return 0;
  },
});

export const kmemleakScanCommand = defineCommand({
  path: ['kmemleak', 'scan'],
  summary: 'trigger a kmemleak scan (writes `scan`), wait for it, and report the groups',
  options: {
    clear: {
      type: 'boolean',
      description: 'write `clear` after reading, so these objects are not reported again',
    },
    by: { type: 'string', valueName: 'KEY', description: 'backtrace (default), culprit or comm' },
    top: { type: 'string', valueName: 'N', description: 'groups to print (default 20)' },
    output: {
      type: 'string',
      short: 'o',
      valueName: 'FILE',
      description: 'also save the raw report to FILE',
    },
    json: { type: 'boolean', description: 'print the result as JSON' },
  },
  details:
    'Needs root, debugfs and a kernel with CONFIG_DEBUG_KMEMLEAK. `clear` is written only with --clear.',
  async run({ values }, ctx) {
    const by = parseBy(values.by);
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    await checkKmemleak(); // fail before saying anything about scanning
    ctx.stderr.write('kmemleak: scanning (this can take a while on big machines)...\n');
    const r = await kmemleakScan({ clear: Boolean(values.clear) });
    ctx.stderr.write(`kmemleak: scan took ${r.scanSeconds.toFixed(1)} s${r.cleared ? '; cleared' : ''}\n`);
    if (values.output) await writeFile(values.output, r.text);
    const file = parseKmemleak(r.text, { file: '/sys/kernel/debug/kmemleak' });
    const groups = groupKmemleak(file, by);
    const reports = file.reports.length;
    ctx.stdout.write(
      values.json
        ? `${JSON.stringify({ time: r.time, scanSeconds: r.scanSeconds, cleared: r.cleared, reports, groups }, null, 2)}\n`
        : renderGroups(
            groups.slice(0, top),
            { size: groups.length, bytes: totalBytes(groups) },
            reports,
            by,
            false,
          ),
    );
    return 0;
  },
});

function renderSeries(s: KmemleakSeries, top: number, symbolized = false): string {
  const out = [`${s.labels.length} reports, oldest first:`, ...s.labels.map((l, i) => `  ${i + 1}. ${l}`)];
  const cols = (rows: KmemleakSeries['rows']) =>
    table(rows.slice(0, top), [
      { header: 'TREND', value: (r) => r.trend },
      { header: 'COUNTS', max: 36, value: (r) => r.counts.join(' → ') },
      { header: 'GROWTH', align: 'right', value: (r) => (r.growth > 0 ? `+${r.growth}` : String(r.growth)) },
      {
        header: 'CULPRIT',
        max: 44,
        value: (r) => (r.culprit ? frameKey(r.culprit) : r.key),
      },
      ...(symbolized ? [sourceColumn<KmemleakSeries['rows'][number]>((r) => r.culprit)] : []),
    ]);
  out.push('', `Growing (${s.growing.length}): backtraces whose reports keep increasing — likely leaks`);
  if (s.growing.length) out.push(cols(s.growing));
  const rest = s.rows.filter((r) => r.trend !== 'growing');
  out.push('', `Other (${rest.length}): one-off reports are typical false positives`);
  if (rest.length) out.push(cols(rest));
  return `${out.join('\n')}\n`;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export const kmemleakWatchCommand = defineCommand({
  path: ['kmemleak', 'watch'],
  summary: 'repeated scans (or saved reports): separate growing backtraces from one-off reports',
  args: '[FILE|SNAPSHOT...]',
  options: {
    interval: { type: 'string', valueName: 'S', description: 'seconds between live scans (default 600)' },
    count: { type: 'string', valueName: 'N', description: 'live scans to run (default: until interrupted)' },
    'min-growth': {
      type: 'string',
      valueName: 'N',
      description: 'objects a new backtrace must gain at once to count as growing (default 2)',
    },
    top: { type: 'string', valueName: 'N', description: 'rows per list (default 20)' },
    json: { type: 'boolean', description: 'print the classification as JSON' },
    ...LENIENT_OPTION,
    ...SYMBOLS_OPTION,
  },
  details:
    'With FILE/SNAPSHOT arguments (oldest first), classifies those saved reports; without, scans this\n' +
    'machine every --interval seconds and prints the classification after each scan. Never writes `clear`.',
  async run({ values, positionals }, ctx: CommandContext) {
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    const minGrowth = numberOption(values['min-growth'], 'min-growth', 2, { min: 1, integer: true });
    if (positionals.length) {
      if (positionals.length < 2)
        throw new MemsleuthError('USAGE', 'kmemleak watch needs at least two saved reports to compare');
      const series = [];
      for (const p of positionals) {
        series.push({
          label: p,
          groups: (
            await groupReport(p, 'backtrace', undefined, parseSettingsOf(values, ctx))
          ).grouper.result(),
        });
      }
      const s = classifyKmemleakSeries(series, { minGrowth });
      const symbolized = await annotateFrames(s, values, { running: false }, ctx);
      ctx.stdout.write(values.json ? `${JSON.stringify(s, null, 2)}\n` : renderSeries(s, top, symbolized));
      return 0;
    }
    const interval = numberOption(values.interval, 'interval', 600, { min: 1 });
    const count = numberOption(values.count, 'count', Number.POSITIVE_INFINITY, {
      min: 1,
      integer: values.count !== undefined,
    });
    const series: { label: string; groups: KmemleakGroup[] }[] = [];
    for (let i = 0; i < count; i++) {
      if (i > 0) await sleep(interval * 1000);
      const r = await kmemleakScan();
      const groups = groupKmemleak(parseKmemleak(r.text, { file: '/sys/kernel/debug/kmemleak' }));
      series.push({ label: r.time, groups });
      const s = classifyKmemleakSeries(series, { minGrowth });
      ctx.stderr.write(
        `${r.time}: ${groups.reduce((n, g) => n + g.weights.count, 0)} reports, ${s.growing.length} growing backtraces\n`,
      );
      const symbolized = await annotateFrames(s, values, { running: true }, ctx);
      // one JSON document per scan (NDJSON), or the tables again
      ctx.stdout.write(values.json ? `${JSON.stringify(s)}\n` : renderSeries(s, top, symbolized));
    }
    return 0;
  },
});

export const kmemleakCommands = [kmemleakReportCommand, kmemleakScanCommand, kmemleakWatchCommand];
