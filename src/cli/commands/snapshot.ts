import { writeSnapshot } from '../../capture/bundle.js';
import { openLiveSnapshot } from '../../capture/live.js';
import { MemsleuthError } from '../../model/errors.js';
import { formatBytes } from '../../model/units.js';
import { defineCommand } from '../command.js';
import { progress } from '../context.js';
import { VERSION } from '../version.js';

export const snapshotCommand = defineCommand({
  path: ['snapshot'],
  summary: 'capture every readable memory source of this machine into one portable bundle',
  options: {
    output: { type: 'string', short: 'o', valueName: 'FILE', description: 'write a .tar.gz bundle to FILE' },
    dir: { type: 'string', short: 'd', valueName: 'DIR', description: 'write a snapshot directory instead' },
    'no-page-owner': {
      type: 'boolean',
      description: 'skip /sys/kernel/debug/page_owner (GBs on big machines)',
    },
    'no-processes': { type: 'boolean', description: 'skip /proc/PID/* files' },
    'no-smaps': { type: 'boolean', description: 'skip /proc/PID/smaps (keep smaps_rollup)' },
    'no-slab-traces': { type: 'boolean', description: 'skip slab alloc/free traces' },
  },
  details:
    'Raw kernel text is kept unchanged with a manifest (host, kernel, page size, time, uptime) that lists\n' +
    'every source that could not be read, why, and how to enable it. Nothing is written to the kernel.',
  async run({ values }, ctx) {
    const out = values.output ?? values.dir;
    if (!out || (values.output && values.dir)) {
      throw new MemsleuthError('USAGE', 'snapshot needs exactly one of -o FILE or -d DIR', {
        hint: 'memsleuth snapshot -o before.tar.gz',
      });
    }
    const p = progress(ctx);
    const live = await openLiveSnapshot();
    const result = await writeSnapshot(live, {
      out,
      asDirectory: Boolean(values.dir),
      pageOwner: !values['no-page-owner'],
      processes: !values['no-processes'],
      smaps: !values['no-smaps'],
      slabTraces: !values['no-slab-traces'],
      tool: `memsleuth ${VERSION}`,
      onProgress: (line) => p.update(line),
    });
    p.done();
    const m = result.manifest;
    const procCount = new Set(m.files.filter((f) => f.startsWith('proc/')).map((f) => f.split('/')[1])).size;
    ctx.stderr.write(
      `wrote ${result.path}${result.bytes ? ` (${formatBytes(result.bytes)})` : ''}: ${m.files.length} files, ` +
        `${procCount} processes, ${m.missing.length} sources missing, ${m.durationSeconds?.toFixed(1)} s\n`,
    );
    for (const miss of m.missing)
      ctx.stderr.write(`  missing ${miss.path}: ${miss.reason}. To enable: ${miss.enable}\n`);
    ctx.stdout.write(`${result.path}\n`);
    return 0;
  },
});
