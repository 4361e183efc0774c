import {
  diffCallstackDumps,
  parseSlabSortKey,
  readSlabSiteTable,
  SLAB_SORT_KEYS,
  slabSiteGroups,
  slabTop,
} from '../../analysis/slab.js';
import { culpritFrame } from '../../analysis/stacks.js';
import { MAX_TEXT_BYTES, readTextFile } from '../../capture/snapshot.js';
import { isMemsleuthError, MemsleuthError } from '../../model/errors.js';
import { frameKey } from '../../model/frame.js';
import { formatBytes } from '../../model/units.js';
import { openInputOrLive, requireSource } from '../../registry/open.js';
import { reclaimFlags } from '../../registry/sources/slabinfo.js';
import { parseCallstackBlocks } from '../../sources/callstack_blocks.js';
import { MAX_LINE_BYTES } from '../../sources/text.js';
import { defineCommand, LENIENT_OPTION, numberOption, parseSettingsOf } from '../command.js';
import { FLAME_OPTIONS, writeFlameExports, writesEveryGroup } from '../flame.js';
import { table } from '../format.js';
import { annotateFrames, frameLine, releaseOf, SYMBOLS_OPTION, sourceColumn } from '../symbols.js';

export const slabTopCommand = defineCommand({
  path: ['slab', 'top'],
  summary: 'slabtop-style table of slab caches: objects, sizes, bytes per cache, reclaimable flag',
  args: '[SNAPSHOT]',
  options: {
    sort: {
      type: 'string',
      short: 's',
      valueName: 'KEY',
      description: `sort key: ${Object.values(SLAB_SORT_KEYS).join(', ')} or slabtop's letters (default cache-size)`,
    },
    top: { type: 'string', valueName: 'N', description: 'rows to print (default 20)' },
    json: { type: 'boolean', description: 'print the whole result as JSON' },
    ...LENIENT_OPTION,
  },
  details: 'SNAPSHOT is a bundle or directory from `memsleuth snapshot`; without it, this machine now.',
  async run({ values, positionals }, ctx) {
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    const sortBy = values.sort === undefined ? undefined : parseSlabSortKey(values.sort);
    const snap = await openInputOrLive(positionals[0], { expect: 'slabinfo' });
    try {
      const { caches } = await requireSource(snap, 'slabinfo', parseSettingsOf(values, ctx));
      const pageSize = (await snap.manifest()).pageSizeBytes || 4096;
      const reclaim = await reclaimFlags(
        snap,
        caches.map((c) => c.name),
      );
      const r = slabTop(caches, pageSize, reclaim, sortBy ? { sortBy } : {});
      if (values.json) {
        ctx.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return 0;
      }
      const t = r.totals;
      const out = [
        ` Active / Total Objects (% used)    : ${t.activeObjs} / ${t.numObjs} (${t.numObjs ? ((t.activeObjs / t.numObjs) * 100).toFixed(1) : '0.0'}%)`,
        ` Active / Total Slabs               : ${t.activeSlabs} / ${t.numSlabs}`,
        ` Active / Total Size                : ${formatBytes(t.activeBytes)} / ${formatBytes(t.cacheBytes)}`,
        ` Caches                             : ${t.caches}, sorted by ${r.sortBy}`,
        '',
        table(r.rows.slice(0, top), [
          { header: 'OBJS', align: 'right', value: (x) => String(x.numObjs) },
          { header: 'ACTIVE', align: 'right', value: (x) => String(x.activeObjs) },
          { header: 'USE', align: 'right', value: (x) => `${Math.round(x.usePercent)}%` },
          { header: 'OBJ SIZE', align: 'right', value: (x) => String(x.objSizeBytes) },
          { header: 'SLABS', align: 'right', value: (x) => String(x.numSlabs) },
          { header: 'OBJ/SLAB', align: 'right', value: (x) => String(x.objPerSlab) },
          { header: 'CACHE SIZE', align: 'right', value: (x) => formatBytes(x.cacheBytes) },
          {
            header: 'RECLAIM',
            value: (x) => (x.reclaimable === undefined ? '?' : x.reclaimable ? 'yes' : 'no'),
          },
          { header: 'NAME', max: 30, value: (x) => x.name },
        ]),
      ];
      if (!r.reclaimKnown) out.push('RECLAIM ?: this snapshot has no slab/<cache>.reclaim_account files');
      ctx.stdout.write(`${out.join('\n')}\n`);
      return 0;
    } finally {
      await snap.close();
    }
  },
});

export const slabTracesCommand = defineCommand({
  path: ['slab', 'traces'],
  summary: 'live slab objects per allocation call site (alloc_traces / alloc_calls), per cache or all',
  args: '[SNAPSHOT]',
  options: {
    cache: {
      type: 'string',
      short: 'c',
      valueName: 'CACHE',
      description: 'only this cache (e.g. kmalloc-96)',
    },
    top: { type: 'string', valueName: 'N', description: 'rows to print (default 20)' },
    stacks: { type: 'boolean', description: 'print the full stack under each call site (5.19+)' },
    ...FLAME_OPTIONS,
    json: { type: 'boolean', description: 'print every call site as JSON' },
    ...LENIENT_OPTION,
    ...SYMBOLS_OPTION,
  },
  details:
    'Outstanding = the alloc listing count: SLUB lists only allocated objects in both alloc_traces and\n' +
    'free_traces (mm/slub.c process_slab), so the free listing is not subtracted; FREED-HERE shows how many\n' +
    "live objects' slots were last freed by the same call site. Needs slub_debug=U (store_user).",
  async run({ values, positionals }, ctx) {
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    const snap = await openInputOrLive(positionals[0], { expect: 'slab_traces' });
    try {
      const { table: listed, ...r } = await readSlabSiteTable(snap, {
        ...(values.cache === undefined ? {} : { cache: values.cache }),
        ...parseSettingsOf(values, ctx),
      });
      if (r.caches.length === 0) {
        throw new MemsleuthError('UNAVAILABLE', `${snap.origin}: no slab alloc_traces or alloc_calls files`, {
          hint: 'boot with slub_debug=U (or slub_debug=U,<cache>), mount debugfs, and run as root',
        });
      }
      // Every site where every one is written; the table builds the ones it prints.
      const every = writesEveryGroup(values);
      const all = every ? listed.all() : [];
      if (await writeFlameExports(slabSiteGroups(all), values, `slab traces ${snap.origin}`, ctx)) return 0;
      const sites = every
        ? [...all].sort((a, b) => b.bytes - a.bytes || b.outstanding - a.outstanding)
        : listed.top(top);
      const symbolized = await annotateFrames(
        values.json ? sites : sites.slice(0, top),
        values,
        { running: positionals.length === 0, kernelRelease: await releaseOf(snap) },
        ctx,
      );
      if (values.json) {
        ctx.stdout.write(`${JSON.stringify({ sites, ...r }, null, 2)}\n`);
        return 0;
      }
      const out = [
        `${listed.size} call sites in ${r.caches.length} caches, ${formatBytes(listed.bytes)} live`,
      ];
      const rows = sites.slice(0, top);
      const tbl = table(rows, [
        { header: 'OBJECTS', align: 'right', value: (x) => String(x.outstanding) },
        { header: 'BYTES', align: 'right', value: (x) => formatBytes(x.bytes) },
        {
          header: 'FREED-HERE',
          align: 'right',
          value: (x) => (x.freedHere === undefined ? '-' : String(x.freedHere)),
        },
        { header: 'CACHE', max: 22, value: (x) => x.cache },
        {
          header: 'PIDS',
          value: (x) => (x.pidMin === x.pidMax ? String(x.pidMin) : `${x.pidMin}-${x.pidMax}`),
        },
        {
          header: 'CALL SITE',
          max: 44,
          value: (x) => (x.caller ? frameKey(x.caller) : '<not-available>'),
        },
        ...(symbolized ? [sourceColumn<(typeof rows)[number]>((x) => x.caller)] : []),
      ]);
      if (!values.stacks) out.push(tbl);
      else {
        const lines = tbl.split('\n');
        out.push(lines[0]!);
        rows.forEach((s, i) => {
          out.push(lines[i + 1]!);
          for (const f of s.frames) out.push(`      ${frameLine(f, false)}`);
        });
      }
      if (r.noData.length) out.push(`No data (no live tracked objects): ${r.noData.length} caches`);
      ctx.stdout.write(`${out.join('\n')}\n`);
      return 0;
    } finally {
      await snap.close();
    }
  },
});

export const slabTraceDiffCommand = defineCommand({
  path: ['slab', 'trace-diff'],
  summary: 'compare two "count + call trace" dumps (vendor /proc/slabtrace, page_owner_sort output)',
  args: 'BEFORE AFTER',
  options: {
    top: { type: 'string', valueName: 'N', description: 'rows to print (default 20)' },
    all: { type: 'boolean', description: 'also print stacks that shrank or did not change' },
    json: { type: 'boolean', description: 'print every stack as JSON' },
    ...LENIENT_OPTION,
    ...SYMBOLS_OPTION,
  },
  details:
    'Each dump is blocks of a count line (`N times:`, `count: N cache: C size: S`, or a leading number)\n' +
    'followed by one frame per line, as `cat /proc/slabtrace > before.txt` and again after a stress test.',
  async run({ values, positionals }, ctx) {
    if (positionals.length !== 2)
      throw new MemsleuthError('USAGE', 'slab trace-diff needs BEFORE and AFTER files');
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    const read = async (p: string) => {
      try {
        // Bounded: a 700 MB file of one line is an error, not a RangeError.
        const text = readTextFile(p, MAX_TEXT_BYTES, p, { maxLineBytes: MAX_LINE_BYTES });
        return parseCallstackBlocks(text, { ...parseSettingsOf(values, ctx), file: p });
      } catch (e) {
        if (!isMemsleuthError(e) && (e as NodeJS.ErrnoException).code)
          throw new MemsleuthError('IO', `${p}: cannot read (${(e as NodeJS.ErrnoException).code})`, {
            file: p,
          });
        throw e;
      }
    };
    const deltas = diffCallstackDumps(await read(positionals[0]!), await read(positionals[1]!));
    const shown = values.all ? deltas : deltas.filter((d) => d.delta.count > 0 || d.delta.bytes > 0);
    const symbolized = await annotateFrames(
      values.json ? shown : shown.slice(0, top),
      values,
      { running: false },
      ctx,
    );
    if (values.json) {
      ctx.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
      return 0;
    }
    ctx.stdout.write(
      `${shown.length} stacks ${values.all ? 'listed' : 'grew'}\n` +
        (shown.length
          ? `${table(shown.slice(0, top), [
              {
                header: 'Δ COUNT',
                align: 'right',
                value: (d) => (d.delta.count > 0 ? `+${d.delta.count}` : String(d.delta.count)),
              },
              { header: 'AFTER', align: 'right', value: (d) => String(d.after.count) },
              {
                header: 'Δ BYTES',
                align: 'right',
                value: (d) => (d.delta.bytes ? formatBytes(d.delta.bytes) : '-'),
              },
              {
                header: 'CULPRIT',
                max: 60,
                value: (d) => {
                  const f = culpritFrame(d.frames);
                  // keys are `cache:stack` when the dump named a cache; stack keys have no ':'
                  const colon = d.key.indexOf(':');
                  const cache = colon >= 0 ? ` (${d.key.slice(0, colon)})` : '';
                  return (f ? frameKey(f) : '<no stack>') + cache;
                },
              },
              ...(symbolized ? [sourceColumn<(typeof shown)[number]>((d) => culpritFrame(d.frames))] : []),
            ])}\n`
          : ''),
    );
    return 0;
  },
});

export const slabCommands = [slabTopCommand, slabTracesCommand, slabTraceDiffCommand];
