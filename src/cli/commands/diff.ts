import { culpritFrame } from '../../analysis/stacks.js';
import { MemsleuthError } from '../../model/errors.js';
import type { SourceName } from '../../model/snapshot.js';
import { formatBytes, formatDelta } from '../../model/units.js';
import { diffSnapshots } from '../../registry/diff.js';
import { DIFF_SOURCES } from '../../registry/index.js';
import { withInputs } from '../../registry/open.js';
import { diffView } from '../../web/snapshots.js';
import { defineCommand, numberOption } from '../command.js';
import { table } from '../format.js';
import { writeHtml } from '../html.js';
import { annotateFrames, releaseOf, SYMBOLS_OPTION, sourceColumn } from '../symbols.js';

export const diffCommand = defineCommand({
  path: ['diff'],
  summary: 'what gained the most memory between two snapshots, across every source both have',
  args: 'BEFORE AFTER',
  options: {
    top: { type: 'string', valueName: 'N', description: 'rows to print (default 30)' },
    source: {
      type: 'string',
      multiple: true,
      valueName: 'S',
      description: `only these sources (repeatable): ${DIFF_SOURCES.join(', ')}`,
    },
    'per-source': {
      type: 'string',
      valueName: 'N',
      description: 'print the top N gainers of each source instead of one list',
    },
    'page-owner-all': {
      type: 'boolean',
      description: 'rank page cache and anonymous page_owner pages too (left out by default)',
    },
    json: { type: 'boolean', description: 'print the whole diff as JSON' },
    ...SYMBOLS_OPTION,
    html: {
      type: 'string',
      valueName: 'FILE',
      description: 'also write a self-contained HTML diff (differential flame graphs) to FILE',
    },
  },
  details:
    'Sources: meminfo fields, slabinfo caches, buddyinfo zones (pages taken from the free lists),\n' +
    'vmallocinfo callers, processes (PSS, else RSS), page_owner stacks, slab call sites, kmemleak\n' +
    'backtraces and allocinfo call sites. A source missing on one side is named, not fatal. Aggregates\n' +
    'and their parts both appear (SUnreclaim and the caches in it): compare rows within a source.\n' +
    'A file that does not parse leaves its source out (named, with file and line) and exits 1.',
  async run({ values, positionals }, ctx) {
    if (positionals.length !== 2) throw new MemsleuthError('USAGE', 'diff needs BEFORE and AFTER snapshots');
    const top = numberOption(values.top, 'top', 30, { min: 1, integer: true });
    const perSource =
      values['per-source'] === undefined
        ? undefined
        : numberOption(values['per-source'], 'per-source', 5, { min: 1, integer: true });
    const sources = values.source;
    for (const s of sources ?? []) {
      if (!(DIFF_SOURCES as readonly string[]).includes(s))
        throw new MemsleuthError('USAGE', `--source: unknown source ${JSON.stringify(s)}`, {
          hint: `one of ${DIFF_SOURCES.join(', ')}`,
        });
    }
    return withInputs([positionals[0]!, positionals[1]!], async ([b, a]) => {
      const opts = {
        pageOwnerAll: Boolean(values['page-owner-all']),
        ...(sources ? { sources: sources as SourceName[] } : {}),
      };
      let d: Awaited<ReturnType<typeof diffSnapshots>>;
      if (values.html !== undefined) {
        const view = await diffView(b, a, opts);
        d = view.diff;
        await writeHtml(
          values.html,
          {
            kind: 'diff',
            title: `diff: ${b.origin} → ${a.origin}`,
            generatedAt: new Date().toISOString(),
            diff: view,
          },
          ctx,
        );
      } else d = await diffSnapshots(b, a, opts);
      const unreadable = d.sources.filter((x) => x.status === 'unreadable');
      for (const u of unreadable) ctx.stderr.write(`memsleuth: ${u.source} left out: ${u.reason}\n`);
      const gainers = d.rows.filter((r) => r.deltaBytes > 0);
      const printed =
        perSource === undefined
          ? gainers.slice(0, top)
          : d.sources.flatMap((st) => gainers.filter((r) => r.source === st.source).slice(0, perSource));
      const symbolized = await annotateFrames(
        values.json ? d.rows : printed,
        values,
        { running: false, kernelRelease: await releaseOf(a) },
        ctx,
      );
      if (values.json) {
        ctx.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
        return unreadable.length ? 1 : 0;
      }
      const cols = [
        {
          header: 'Δ BYTES',
          align: 'right' as const,
          value: (r: (typeof gainers)[number]) => formatDelta(r.deltaBytes),
        },
        {
          header: 'AFTER',
          align: 'right' as const,
          value: (r: (typeof gainers)[number]) => formatBytes(r.afterBytes),
        },
        {
          header: 'Δ COUNT',
          align: 'right' as const,
          max: 16,
          value: (r: (typeof gainers)[number]) =>
            r.deltaCount === undefined
              ? ''
              : `${r.deltaCount > 0 ? '+' : ''}${r.deltaCount} ${r.countUnit ?? ''}`.trim(),
        },
        { header: 'SOURCE', value: (r: (typeof gainers)[number]) => r.source },
        {
          header: 'WHAT',
          max: 40,
          value: (r: (typeof gainers)[number]) => (r.detail ? `${r.name} (${r.detail})` : r.name),
        },
        ...(symbolized
          ? [
              sourceColumn<(typeof gainers)[number]>(
                (r) => (r.frames?.length ? culpritFrame(r.frames) : undefined),
                'FILE:LINE', // SOURCE names the kernel source here
              ),
            ]
          : []),
      ];
      const out = [`before: ${d.before}`, `after:  ${d.after}`];
      if (perSource === undefined) {
        out.push(
          '',
          `Top gainers (${gainers.length} rows gained memory):`,
          table(gainers.slice(0, top), cols),
        );
      } else {
        for (const st of d.sources.filter((x) => x.status === 'compared')) {
          const rows = gainers.filter((r) => r.source === st.source).slice(0, perSource);
          out.push('', `${st.source}:`, rows.length ? table(rows, cols) : '  (nothing gained)');
        }
      }
      out.push('', 'Sources:');
      for (const st of d.sources) {
        out.push(
          st.status === 'compared'
            ? `  ${st.source}: compared, ${st.rows} changes${st.note ? `\n    (${st.note})` : ''}`
            : st.status === 'unreadable'
              ? `  ${st.source}: UNREADABLE: ${st.reason}`
              : `  ${st.source}: missing in ${st.missingIn!.join(' and ')} (${st.reason})`,
        );
      }
      ctx.stdout.write(`${out.join('\n')}\n`);
      return unreadable.length ? 1 : 0;
    });
  },
});
