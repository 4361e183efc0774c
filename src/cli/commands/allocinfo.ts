import { allocinfoTop, diffAllocinfo } from '../../analysis/allocinfo.js';
import { MemsleuthError } from '../../model/errors.js';
import { frameKey } from '../../model/frame.js';
import { formatBytes, formatDelta } from '../../model/units.js';
import { openInputOrLive, requireSource, withInputs } from '../../registry/open.js';
import { defineCommand, LENIENT_OPTION, numberOption, parseSettingsOf } from '../command.js';
import { table } from '../format.js';

const site = (t: { sourceFile: string; sourceLine: number }) => `${t.sourceFile}:${t.sourceLine}`;
const fn = (t: { func: string; module?: string }) => frameKey(t);

export const allocinfoTopCommand = defineCommand({
  path: ['allocinfo', 'top'],
  summary: 'kernel memory by allocation call site from /proc/allocinfo (6.10+ allocation profiling)',
  args: '[SNAPSHOT]',
  options: {
    top: { type: 'string', valueName: 'N', description: 'rows to print (default 20)' },
    module: { type: 'string', valueName: 'MOD', description: 'only call sites in this module' },
    json: { type: 'boolean', description: 'print every call site as JSON' },
    ...LENIENT_OPTION,
  },
  async run({ values, positionals }, ctx) {
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    const snap = await openInputOrLive(positionals[0], { expect: 'allocinfo' });
    try {
      const r = allocinfoTop(await requireSource(snap, 'allocinfo', parseSettingsOf(values, ctx)));
      const tags = values.module === undefined ? r.tags : r.tags.filter((t) => t.module === values.module);
      if (values.json) {
        ctx.stdout.write(`${JSON.stringify({ ...r, tags }, null, 2)}\n`);
        return 0;
      }
      const out = [
        `${formatBytes(r.totalBytes)} in ${r.totalCalls} live allocations from ${r.tags.length} call sites` +
          (r.version ? ` (allocinfo ${r.version})` : '') +
          (r.inaccurate ? `; ${r.inaccurate} marked accurate:no` : ''),
        table(tags.slice(0, top), [
          { header: 'BYTES', align: 'right', value: (t) => formatBytes(t.bytes) },
          { header: 'CALLS', align: 'right', value: (t) => String(t.calls) },
          { header: 'FUNCTION', max: 34, value: (t) => fn(t) + (t.accurate ? '' : ' (inaccurate)') },
          { header: 'SOURCE', max: 44, value: (t) => site(t) },
        ]),
      ];
      ctx.stdout.write(`${out.join('\n')}\n`);
      return 0;
    } finally {
      await snap.close();
    }
  },
});

export const allocinfoDiffCommand = defineCommand({
  path: ['allocinfo', 'diff'],
  summary: 'allocation growth per call site between two snapshots (/proc/allocinfo)',
  args: 'BEFORE AFTER',
  options: {
    top: { type: 'string', valueName: 'N', description: 'rows to print (default 20)' },
    all: { type: 'boolean', description: 'also print call sites that shrank or did not change' },
    json: { type: 'boolean', description: 'print every call site as JSON' },
    ...LENIENT_OPTION,
  },
  async run({ values, positionals }, ctx) {
    if (positionals.length !== 2)
      throw new MemsleuthError('USAGE', 'allocinfo diff needs BEFORE and AFTER snapshots');
    const top = numberOption(values.top, 'top', 20, { min: 1, integer: true });
    return withInputs(
      [positionals[0]!, positionals[1]!],
      async ([b, a]) => {
        const deltas = diffAllocinfo(
          (await requireSource(b, 'allocinfo', parseSettingsOf(values, ctx))).tags,
          (await requireSource(a, 'allocinfo', parseSettingsOf(values, ctx))).tags,
        );
        const shown = values.all ? deltas : deltas.filter((d) => d.deltaBytes > 0);
        if (values.json) {
          ctx.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
          return 0;
        }
        ctx.stdout.write(
          `allocinfo ${formatDelta(deltas.reduce((s, d) => s + d.deltaBytes, 0))}, ${shown.length} call sites ${values.all ? 'listed' : 'grew'}\n` +
            (shown.length
              ? `${table(shown.slice(0, top), [
                  { header: 'Δ BYTES', align: 'right', value: (d) => formatDelta(d.deltaBytes) },
                  {
                    header: 'Δ CALLS',
                    align: 'right',
                    value: (d) => (d.deltaCalls > 0 ? `+${d.deltaCalls}` : String(d.deltaCalls)),
                  },
                  { header: 'FUNCTION', max: 34, value: (d) => fn(d) },
                  { header: 'SOURCE', max: 40, value: (d) => site(d) },
                ])}\n`
              : ''),
        );
        return 0;
      },
      { expect: 'allocinfo' },
    );
  },
});

export const allocinfoCommands = [allocinfoTopCommand, allocinfoDiffCommand];
