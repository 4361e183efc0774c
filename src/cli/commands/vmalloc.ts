import { diffVmalloc, vmallocTop } from '../../analysis/vmalloc.js';
import { MemsleuthError } from '../../model/errors.js';
import { formatBytes, formatDelta } from '../../model/units.js';
import { openInputOrLive, requireSource, withInputs } from '../../registry/open.js';
import { defineCommand, numberOption } from '../command.js';
import { table } from '../format.js';
import { annotateFrames, releaseOf, SYMBOLS_OPTION, sourceColumn } from '../symbols.js';

export const vmallocTopCommand = defineCommand({
  path: ['vmalloc', 'top'],
  summary: 'vmalloc areas by caller: areas, pages held, virtual size',
  args: '[SNAPSHOT]',
  options: {
    top: { type: 'string', valueName: 'N', description: 'rows to print (default 20)' },
    json: { type: 'boolean', description: 'print every caller as JSON' },
    ...SYMBOLS_OPTION,
  },
  details: 'BYTES = pages=N x page size (RAM held); VSIZE = printed sizes, guard pages included.',
  async run({ values, positionals }, ctx) {
    if (positionals.length > 1) throw new MemsleuthError('USAGE', 'vmalloc top takes one SNAPSHOT');
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    const snap = await openInputOrLive(positionals[0], { expect: 'vmallocinfo' });
    try {
      const r = vmallocTop(await requireSource(snap, 'vmallocinfo'));
      const symbolized = await annotateFrames(
        values.json ? r : r.callers.slice(0, top),
        values,
        { running: positionals.length === 0, kernelRelease: await releaseOf(snap) },
        ctx,
      );
      if (values.json) {
        ctx.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return 0;
      }
      ctx.stdout.write(
        `${r.totalAreas} areas from ${r.callers.length} callers: ${formatBytes(r.totalBytes)} in pages, ${formatBytes(r.totalVirtualBytes)} of address space\n` +
          `${table(r.callers.slice(0, top), [
            { header: 'AREAS', align: 'right', value: (c) => String(c.areas) },
            { header: 'BYTES', align: 'right', value: (c) => formatBytes(c.bytes) },
            { header: 'VSIZE', align: 'right', value: (c) => formatBytes(c.virtualBytes) },
            { header: 'FLAGS', max: 18, value: (c) => c.flags.join(',') },
            { header: 'CALLER', max: 50, value: (c) => c.key },
            ...(symbolized ? [sourceColumn<(typeof r.callers)[number]>((c) => c.caller)] : []),
          ])}\n`,
      );
      return 0;
    } finally {
      await snap.close();
    }
  },
});

export const vmallocDiffCommand = defineCommand({
  path: ['vmalloc', 'diff'],
  summary: 'vmalloc growth per caller between two snapshots',
  args: 'BEFORE AFTER',
  options: {
    top: { type: 'string', valueName: 'N', description: 'rows to print (default 20)' },
    all: { type: 'boolean', description: 'also print callers that shrank or did not change' },
    json: { type: 'boolean', description: 'print every caller as JSON' },
    ...SYMBOLS_OPTION,
  },
  async run({ values, positionals }, ctx) {
    if (positionals.length !== 2)
      throw new MemsleuthError('USAGE', 'vmalloc diff needs BEFORE and AFTER snapshots');
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    return withInputs(
      [positionals[0]!, positionals[1]!],
      async ([b, a]) => {
        const deltas = diffVmalloc(
          await requireSource(b, 'vmallocinfo'),
          await requireSource(a, 'vmallocinfo'),
        );
        const shown = values.all ? deltas : deltas.filter((d) => d.deltaBytes > 0 || d.deltaAreas > 0);
        const symbolized = await annotateFrames(
          values.json ? shown : shown.slice(0, top),
          values,
          { running: false, kernelRelease: await releaseOf(a) },
          ctx,
        );
        if (values.json) {
          ctx.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
          return 0;
        }
        const gained = deltas.reduce((s, d) => s + d.deltaBytes, 0);
        ctx.stdout.write(
          `vmalloc ${formatDelta(gained)} in pages, ${shown.length} callers ${values.all ? 'listed' : 'grew'}\n` +
            (shown.length
              ? `${table(shown.slice(0, top), [
                  { header: 'Δ BYTES', align: 'right', value: (d) => formatDelta(d.deltaBytes) },
                  {
                    header: 'Δ AREAS',
                    align: 'right',
                    value: (d) => (d.deltaAreas > 0 ? `+${d.deltaAreas}` : String(d.deltaAreas)),
                  },
                  { header: 'AFTER', align: 'right', value: (d) => formatBytes(d.after.bytes) },
                  { header: 'CALLER', max: 60, value: (d) => d.key },
                  ...(symbolized ? [sourceColumn<(typeof shown)[number]>((d) => d.caller)] : []),
                ])}\n`
              : ''),
        );
        return 0;
      },
      { expect: 'vmallocinfo' },
    );
  },
});

export const vmallocCommands = [vmallocTopCommand, vmallocDiffCommand];
