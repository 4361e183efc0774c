import { MemsleuthError } from '../../model/errors.js';
import { formatBytes, parseDuration } from '../../model/units.js';
import { importCaptures } from '../../record/import.js';
import { record } from '../../record/recorder.js';
import { defaultDbPath } from '../../store/recording.js';
import { defineCommand, numberOption } from '../command.js';
import { type CommandContext, progress } from '../context.js';
import { CollectionSchedule, fullCollection, heapUsed } from '../daemon.js';
import { VERSION } from '../version.js';

export const recordCommand = defineCommand({
  path: ['record'],
  summary: 'sample meminfo, slab, vmalloc and every process into a recording database',
  options: {
    db: {
      type: 'string',
      valueName: 'FILE',
      description: 'recording database (default: see below)',
    },
    interval: {
      type: 'string',
      short: 'i',
      valueName: 'DUR',
      description: 'time between ticks: 10s, 1m (default 10s)',
    },
    duration: {
      type: 'string',
      short: 'd',
      valueName: 'DUR',
      description: 'stop after this long: 30m, 7d (default: until Ctrl-C)',
    },
    'pss-every': {
      type: 'string',
      valueName: 'N',
      description: 'read PSS from smaps_rollup every N ticks (default 6, 0: never)',
    },
    'smaps-every': {
      type: 'string',
      valueName: 'N',
      description: 'per-mapping sizes of growing processes every N ticks (default 12)',
    },
    'vmalloc-every': {
      type: 'string',
      valueName: 'N',
      description: 'vmalloc totals by caller every N ticks (default: every 1m, 0: never)',
    },
    'slab-every': {
      type: 'string',
      valueName: 'N',
      description:
        'slab, zone, buddy, tmpfs-usage and SysV shm tables every N ticks (default: every 10s, 0: never)',
    },
    'counts-every': {
      type: 'string',
      valueName: 'N',
      description:
        'open fds and threads of processes whose memory holds still, every N ticks (default: every 10s)',
    },
    kmemleak: {
      type: 'boolean',
      description: 'also count kmemleak reports by caller (reads debugfs; no scan)',
    },
    'tmpfs-every': {
      type: 'string',
      valueName: 'N',
      description: 'largest tmpfs files, and who holds the ones that grew, every N ticks (default: every 1m)',
    },
    from: {
      type: 'string',
      valueName: 'DIR',
      description: 'record the snapshots in DIR (bundles or directories) in time order instead',
    },
  },
  details:
    'The default database is $MEMSLEUTH_DB, else $XDG_STATE_HOME/memsleuth/recording.db\n' +
    '(~/.local/state/memsleuth/recording.db).\n' +
    'Each tick is one SQLite transaction in WAL mode: Ctrl-C finishes the tick and closes the database,\n' +
    'kill -9 loses at most the tick being written. Recording into an existing database appends to it.\n' +
    'Processes are keyed by pid and start time, so a reused pid is a new process.\n' +
    '--from DIR records captures taken earlier, one tick per capture at its manifest time: the\n' +
    'bundles of `memsleuth collector --interval` or `memsleuth snapshot`, each read in full.\n' +
    'Analyse with `memsleuth leaks`, export with `memsleuth series`.',
  async run({ values }, ctx) {
    const db = values.db ?? defaultDbPath(ctx.env);
    if (values.from !== undefined) return recordFrom(values.from, db, values, ctx);
    const intervalMs = parseDuration(values.interval ?? '10s', 'interval');
    if (intervalMs < 100) throw new MemsleuthError('USAGE', '--interval: at least 100ms');
    const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration, 'duration');
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const p = progress(ctx);
    const collections = new CollectionSchedule();
    ctx.stderr.write(
      `recording into ${db} every ${intervalMs / 1000}s${durationMs ? ` for ${durationMs / 1000}s` : ''}; Ctrl-C stops\n`,
    );
    try {
      const r = await record({
        db,
        intervalMs,
        durationMs,
        signal: ac.signal,
        pssEvery: numberOption(values['pss-every'], 'pss-every', 6, { min: 0, integer: true }),
        smapsEvery: numberOption(values['smaps-every'], 'smaps-every', 12, { min: 0, integer: true }),
        vmallocEvery:
          values['vmalloc-every'] === undefined
            ? undefined
            : numberOption(values['vmalloc-every'], 'vmalloc-every', 6, { min: 0, integer: true }),
        slabEvery:
          values['slab-every'] === undefined
            ? undefined
            : numberOption(values['slab-every'], 'slab-every', 1, { min: 0, integer: true }),
        countsEvery:
          values['counts-every'] === undefined
            ? undefined
            : numberOption(values['counts-every'], 'counts-every', 1, { min: 1, integer: true }),
        kmemleak: Boolean(values.kmemleak),
        tmpfsEvery:
          values['tmpfs-every'] === undefined
            ? undefined
            : numberOption(values['tmpfs-every'], 'tmpfs-every', 6, { min: 0, integer: true }),
        meta: { tool: `memsleuth ${VERSION}` },
        onTick: (i) => {
          if (collections.due(i.ticks, i.processes, heapUsed())) fullCollection();
          const g = i.topGrower;
          p.update(
            `${i.ticks} ticks, ${formatBytes(i.dbBytes)}, tick ${(i.readMs + i.writeMs).toFixed(0)} ms` +
              (g && g.growthBytes > 0
                ? `, top grower ${g.comm} (pid ${g.key.split(':')[0]}) +${formatBytes(g.growthBytes)}`
                : ''),
          );
        },
      });
      p.done();
      ctx.stderr.write(
        `${r.ticks} ticks, ${formatBytes(r.dbBytes)}; per tick: read ${r.meanReadMs.toFixed(1)} ms, write ${r.meanWriteMs.toFixed(1)} ms\n`,
      );
      for (const [src, why] of Object.entries(r.problems))
        ctx.stderr.write(`  not recorded: ${src}: ${why}\n`);
      ctx.stdout.write(`${r.db}\n`);
      return 0;
    } finally {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
  },
});

/** `record --from DIR`: the captures of a directory, oldest first, into the recording. */
async function recordFrom(
  from: string,
  db: string,
  values: Record<string, string | boolean | undefined>,
  ctx: CommandContext,
): Promise<number> {
  const live = [
    'interval',
    'duration',
    'pss-every',
    'smaps-every',
    'vmalloc-every',
    'tmpfs-every',
    'kmemleak',
  ];
  const bad = live.filter((o) => values[o] !== undefined);
  if (bad.length)
    throw new MemsleuthError(
      'USAGE',
      `--from reads captures: ${bad.map((o) => `--${o}`).join(', ')} apply to live recording only`,
      {
        hint: 'memsleuth record --from DIR --db FILE',
      },
    );
  const p = progress(ctx);
  const r = await importCaptures({
    from,
    db,
    meta: { tool: `memsleuth ${VERSION}` },
    onCapture: (i) => p.update(`${i.index}/${i.total} ${new Date(i.tMs).toISOString()} ${i.path}`),
  });
  p.done();
  const first = r.captures[0]!;
  const last = r.captures[r.captures.length - 1]!;
  ctx.stderr.write(
    `recorded ${r.captures.length} captures of ${r.hostname} from ${new Date(first.tMs).toISOString()} to ${new Date(last.tMs).toISOString()} into ${db}\n`,
  );
  for (const s of r.skipped) ctx.stderr.write(`  skipped ${s.path}: ${s.reason}\n`);
  for (const b of r.reboots) ctx.stderr.write(`  the machine rebooted before ${b} (uptime went back)\n`);
  for (const [src, why] of Object.entries(r.problems)) ctx.stderr.write(`  not recorded: ${src}: ${why}\n`);
  ctx.stdout.write(`${db}\n`);
  return 0;
}
