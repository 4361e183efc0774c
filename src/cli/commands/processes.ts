import type { ProcessMaps, ProcessMemory } from '../../analysis/process.js';
import { MemsleuthError } from '../../model/errors.js';
import type { Snapshot } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { defineCommand, LENIENT_OPTION, numberOption, parseSettingsOf } from '../command.js';
import type { CommandContext } from '../context.js';
import { type Column, table } from '../format.js';

/**
 * This machine (only the live reader is loaded), or a snapshot or raw file through the registry.
 * The readers load when a command runs, not for its --help.
 */
async function openSnapshot(path: string | undefined): Promise<Snapshot> {
  if (path === undefined) return (await import('../../capture/live.js')).openLiveSnapshot();
  return (await import('../../registry/open.js')).openInput(path);
}

/** Human tables fit this many columns. */
const WIDTH = 100;

/** "12.3MiB": formatBytes without the space, so ten size columns fit 100 columns. */
function size(b: number | undefined): string {
  return b === undefined ? '-' : formatBytes(b).replace(' ', '');
}

const SORT_KEYS = {
  pss: (p: ProcessMemory) => p.pssBytes ?? p.rssBytes,
  rss: (p: ProcessMemory) => p.rssBytes,
  uss: (p: ProcessMemory) => p.ussBytes ?? 0,
  swap: (p: ProcessMemory) => p.swapBytes,
  vsz: (p: ProcessMemory) => p.vszBytes,
  anon: (p: ProcessMemory) => p.privateAnonBytes ?? 0,
  minflt: (p: ProcessMemory) => p.minorFaults ?? 0,
  majflt: (p: ProcessMemory) => p.majorFaults ?? 0,
} as const;
type SortKey = keyof typeof SORT_KEYS;

/** Sort keys that are not a column of the default table get one, after PID. */
const EXTRA_COLUMN: Partial<Record<SortKey, Column<ProcessMemory>>> = {
  vsz: { header: 'VSZ', align: 'right', value: (p) => size(p.vszBytes) },
  minflt: {
    header: 'MINFLT',
    align: 'right',
    value: (p) => (p.minorFaults === undefined ? '-' : String(p.minorFaults)),
  },
  majflt: {
    header: 'MAJFLT',
    align: 'right',
    value: (p) => (p.majorFaults === undefined ? '-' : String(p.majorFaults)),
  },
};

function sortKey(value: string | undefined): SortKey {
  const v = value ?? 'pss';
  if (!(v in SORT_KEYS)) {
    throw new MemsleuthError(
      'USAGE',
      `--sort: expected one of ${Object.keys(SORT_KEYS).join(', ')}, found ${JSON.stringify(v)}`,
      { hint: 'see `memsleuth ps --help`' },
    );
  }
  return v as SortKey;
}

/**
 * Give the last column what is left of WIDTH. `keepEnd` cuts long values on the left, so a
 * path keeps its file name.
 */
function fitLast<T>(rows: readonly T[], columns: Column<T>[], keepEnd = false): string {
  const widths = columns
    .slice(0, -1)
    .map((c) => Math.max(c.header.length, ...rows.map((r) => c.value(r).length)));
  const used = widths.reduce((a, b) => a + b + 2, 0);
  const last = columns[columns.length - 1]!;
  const max = Math.max(8, WIDTH - used);
  const value = keepEnd
    ? (r: T) => {
        const v = last.value(r);
        return v.length > max ? `…${v.slice(v.length - max + 1)}` : v;
      }
    : last.value;
  return table(rows, [...columns.slice(0, -1), { ...last, value, max }]);
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

function reportSkipped(skipped: { pid: number }[], ctx: CommandContext): void {
  if (!skipped.length) return;
  ctx.stderr.write(
    `memsleuth: ${skipped.length} process(es) skipped (exited while being read): ${skipped
      .slice(0, 10)
      .map((s) => s.pid)
      .join(', ')}${skipped.length > 10 ? ', ...' : ''}\n`,
  );
}

/** `ps --oom`: the OOM killer's order, from oom_score (or RSS + swap in older snapshots). */
async function psOom(snap: Snapshot, limit: number, json: boolean, ctx: CommandContext): Promise<number> {
  const { readProcesses, oomOrder } = await import('../../analysis/process.js');
  // oom_score, RSS and swap: status and the oom files, no page table walked.
  const { processes, skipped } = await readProcesses(snap, {
    memory: 'status',
    details: ['cmdline'],
    withOom: true,
  });
  const { order: users, by, unkillable } = oomOrder(processes);
  const scored = by === 'oom_score';
  const shown = limit === 0 ? users : users.slice(0, limit);
  if (json) {
    const manifest = await snap.manifest();
    const out = {
      origin: snap.origin,
      kernelRelease: manifest.kernelRelease,
      sort: by,
      processes: shown.map((p) => ({
        pid: p.pid,
        name: p.name,
        oomScore: p.oomScore,
        oomScoreAdj: p.oomScoreAdj,
        unkillable: p.oomScoreAdj === -1000,
        rssBytes: p.rssBytes,
        swapBytes: p.swapBytes,
        cmdline: p.cmdline,
      })),
      unkillable,
      skipped,
    };
    ctx.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const cols: Column<ProcessMemory>[] = [
    {
      header: '#',
      align: 'right',
      value: (p) => (p.oomScoreAdj === -1000 ? 'never' : String(users.indexOf(p) + 1)),
    },
    { header: 'PID', align: 'right', value: (p) => String(p.pid) },
    {
      header: 'OOM_SCORE',
      align: 'right',
      value: (p) => (p.oomScore === undefined ? '-' : String(p.oomScore)),
    },
    {
      header: 'OOM_SCORE_ADJ',
      align: 'right',
      value: (p) => (p.oomScoreAdj === undefined ? '-' : String(p.oomScoreAdj)),
    },
    { header: 'RSS', align: 'right', value: (p) => size(p.rssBytes) },
    { header: 'SWAP', align: 'right', value: (p) => size(p.swapBytes) },
    { header: 'NAME', value: (p) => (p.cmdline.length ? p.cmdline.join(' ') : p.name) },
  ];
  ctx.stdout.write(`${fitLast(shown, cols)}\n`);
  const first = users[0];
  ctx.stdout.write(
    `${shown.length < users.length ? `top ${shown.length} of ` : ''}${plural(users.length, 'process', 'processes')} in the order the OOM killer takes them` +
      (first && first.oomScoreAdj !== -1000 ? `: ${first.name} (pid ${first.pid}) first` : '') +
      (unkillable
        ? `; ${plural(unkillable, 'process has', 'processes have')} oom_score_adj -1000 and ${unkillable === 1 ? 'is' : 'are'} never killed`
        : '') +
      '\n',
  );
  if (!scored) {
    ctx.stderr.write(
      `memsleuth: ${snap.origin} has no oom_score files (a snapshot from before memsleuth collected them): ordered by RSS + swap, the bulk of the kernel's badness\n`,
    );
  }
  reportSkipped(skipped, ctx);
  return 0;
}

export const psCommand = defineCommand({
  path: ['ps'],
  summary: 'top processes by memory: RSS, PSS, USS, swap and the four memory types',
  args: '[SNAPSHOT]',
  options: {
    sort: {
      type: 'string',
      valueName: 'KEY',
      description:
        'pss (default), rss, uss, swap, vsz, anon (private anonymous), minflt or majflt (page faults since start, as pidstat -r)',
    },
    limit: { type: 'string', valueName: 'N', description: 'show the top N (default 20; 0 for all)' },
    oom: {
      type: 'boolean',
      description: 'who the OOM killer takes first: oom_score and oom_score_adj, highest score first',
    },
    json: { type: 'boolean', description: 'print the whole result as JSON (exact bytes)' },
    ...LENIENT_OPTION,
  },
  details: `Reads this machine now, or a snapshot bundle/directory (SNAPSHOT).
--oom lists /proc/PID/oom_score (the kernel's badness: resident memory, swap and page tables,
shifted by oom_score_adj, scaled to 0..1000 of RAM + swap) and oom_score_adj (-1000: never
killed); the first line is the process the OOM killer would kill now. Snapshots taken before
memsleuth collected these files are ordered by RSS + swap instead, and say so.
Columns: RSS resident; PSS proportional (shared pages divided among their users); USS unique
(Private_Clean + Private_Dirty); SWAP; the four memory types from smaps, summing to RSS:
ANON_PRV private anonymous (heap, stacks, MAP_PRIVATE|MAP_ANONYMOUS, copy-on-write copies),
ANON_SHR shared anonymous (shmem: tmpfs, /dev/shm, SysV shm, memfd, MAP_SHARED|MAP_ANONYMOUS),
FILE_PRV private file mappings (programs, libraries), FILE_SHR MAP_SHARED file mappings.
Kernel threads (no memory) are counted, not listed. Reading every smaps of a live machine
needs root for other users' processes.
--oom lists /proc/PID/oom_score and oom_score_adj in the order the OOM killer takes them.
oom_score is the kernel's badness (resident memory + swap + page tables, shifted by
oom_score_adj × (RAM + swap) / 1000) shown as (1000 + badness × 1000 / (RAM + swap)) × 2/3:
666 for a small process with oom_score_adj 0 (5.9 and stable backports; before, 0..1000).
oom_score_adj -1000 is never killed and is listed last. Snapshots taken before memsleuth
collected these files are ordered by RSS + swap instead, and say so.`,
  async run({ values, positionals }, ctx) {
    if (values.oom && values.sort !== undefined) {
      throw new MemsleuthError('USAGE', '--oom sorts by oom_score: not with --sort', {
        hint: 'see `memsleuth ps --help`',
      });
    }
    const key = sortKey(values.sort);
    const limit = numberOption(values.limit, 'limit', 20, { min: 0, integer: true });
    // Loaded beside the snapshot's reader, not after it (each module is a round trip).
    const processModule = import('../../analysis/process.js');
    const snap = await openSnapshot(positionals[0]);
    try {
      if (values.oom) return await psOom(snap, limit, values.json === true, ctx);
      const { readProcesses } = await processModule;
      // The table prints status and smaps_rollup values (and the four types); --json every field.
      const manifest = values.json ? await snap.manifest() : undefined;
      const parse = parseSettingsOf(values, ctx);
      const { processes, skipped } = await readProcesses(
        snap,
        manifest
          ? { pageSizeBytes: manifest.pageSizeBytes, ...parse }
          : { details: key === 'minflt' || key === 'majflt' ? ['stat'] : false, ...parse },
      );
      const users = processes.filter((p) => !p.kernelThread);
      const by = SORT_KEYS[key];
      users.sort((a, b) => by(b) - by(a) || a.pid - b.pid);
      const shown = limit === 0 ? users : users.slice(0, limit);
      const sum = (f: (p: ProcessMemory) => number | undefined) => users.reduce((t, p) => t + (f(p) ?? 0), 0);
      const totals = {
        processes: users.length,
        kernelThreads: processes.length - users.length,
        rssBytes: sum((p) => p.rssBytes),
        pssBytes: sum((p) => p.pssBytes),
        ussBytes: sum((p) => p.ussBytes),
        swapBytes: sum((p) => p.swapBytes),
        privateAnonBytes: sum((p) => p.privateAnonBytes),
        sharedAnonBytes: sum((p) => p.sharedAnonBytes),
        privateFileBytes: sum((p) => p.privateFileBytes),
        sharedFileBytes: sum((p) => p.sharedFileBytes),
      };
      if (manifest) {
        const out = {
          origin: snap.origin,
          kernelRelease: manifest.kernelRelease,
          pageSizeBytes: manifest.pageSizeBytes,
          sort: key,
          totals,
          processes: shown,
          skipped,
        };
        ctx.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return 0;
      }
      const extra = EXTRA_COLUMN[key];
      const cols: Column<ProcessMemory>[] = [
        { header: 'PID', align: 'right', value: (p) => String(p.pid) },
        ...(extra ? [extra] : []),
        { header: 'RSS', align: 'right', value: (p) => size(p.rssBytes) },
        { header: 'PSS', align: 'right', value: (p) => size(p.pssBytes) },
        { header: 'USS', align: 'right', value: (p) => size(p.ussBytes) },
        { header: 'SWAP', align: 'right', value: (p) => size(p.swapBytes) },
        { header: 'ANON_PRV', align: 'right', value: (p) => size(p.privateAnonBytes) },
        { header: 'ANON_SHR', align: 'right', value: (p) => size(p.sharedAnonBytes) },
        { header: 'FILE_PRV', align: 'right', value: (p) => size(p.privateFileBytes) },
        { header: 'FILE_SHR', align: 'right', value: (p) => size(p.sharedFileBytes) },
        { header: 'NAME', value: (p) => p.name },
      ];
      ctx.stdout.write(`${fitLast(shown, cols)}\n`);
      const more = users.length > shown.length ? `top ${shown.length} of ` : '';
      ctx.stdout.write(
        `${more}${plural(users.length, 'process', 'processes')} by ${key}` +
          (totals.kernelThreads
            ? ` (${plural(totals.kernelThreads, 'kernel thread', 'kernel threads')} not shown)\n`
            : '\n') +
          `sum RSS ${formatBytes(totals.rssBytes)}, PSS ${formatBytes(totals.pssBytes)}, USS ${formatBytes(totals.ussBytes)}, ` +
          `swap ${formatBytes(totals.swapBytes)}\n`,
      );
      reportSkipped(skipped, ctx);
      return 0;
    } finally {
      await snap.close();
    }
  },
});

export const pmapCommand = defineCommand({
  path: ['pmap'],
  summary: "one process's mappings, like `pmap -x`: size, RSS and dirty memory per mapping",
  args: 'PID... [SNAPSHOT]',
  options: {
    kb: { type: 'boolean', description: 'print exactly what procps `pmap -x PID` prints (kB columns)' },
    json: { type: 'boolean', description: 'print the whole result as JSON (exact bytes, full paths)' },
    ...LENIENT_OPTION,
  },
  details: `Reads /proc/PID/smaps of this machine now, or of a snapshot (SNAPSHOT), for each PID in turn
(\`pmap -x $(pidof a b)\` works as with procps; name a snapshot called 123 ./123).
DIRTY is Shared_Dirty + Private_Dirty; MODE is rwx, s for MAP_SHARED, and procps' 5th column.`,
  async run({ values, positionals }, ctx) {
    // Like procps: `pmap -x $(pidof a b)` takes every PID; a last argument that is not a
    // number is the snapshot (name a snapshot called 123 ./123).
    const snapArg =
      positionals.length > 1 && !/^\d+$/.test(positionals.at(-1)!) ? positionals.at(-1) : undefined;
    const pidArgs = snapArg === undefined ? positionals : positionals.slice(0, -1);
    const bad = pidArgs.find((a) => !/^\d+$/.test(a));
    if (pidArgs.length === 0 || bad !== undefined) {
      throw new MemsleuthError(
        'USAGE',
        pidArgs.length === 0 ? 'expected a PID' : `expected PID... [SNAPSHOT], found ${JSON.stringify(bad)}`,
        { hint: 'see `memsleuth pmap --help`' },
      );
    }
    const processModule = import('../../analysis/process.js');
    const snap = await openSnapshot(snapArg);
    try {
      const { readProcessMaps, formatPmapX } = await processModule;
      const maps: ProcessMaps[] = [];
      for (const a of pidArgs)
        maps.push(
          await readProcessMaps(snap, Number(a), {
            asRoot: process.geteuid?.() === 0,
            ...parseSettingsOf(values, ctx),
          }),
        );
      if (values.json) {
        const one = (m: (typeof maps)[number]) => ({ origin: snap.origin, ...m });
        ctx.stdout.write(`${JSON.stringify(maps.length === 1 ? one(maps[0]!) : maps.map(one), null, 2)}\n`);
        return 0;
      }
      for (const m of maps) {
        if (values.kb) {
          ctx.stdout.write(formatPmapX(m.pid, m.cmdline, m.name, m.view));
          continue;
        }
        type Row = {
          address: string;
          size: string;
          rss: string;
          dirty: string;
          mode: string;
          mapping: string;
        };
        const rows: Row[] = m.view.rows.map((r) => ({
          address: r.address,
          size: formatBytes(r.sizeBytes),
          rss: formatBytes(r.rssBytes),
          dirty: formatBytes(r.dirtyBytes),
          mode: r.mode,
          mapping: r.pathname === '' ? '[ anon ]' : r.pathname,
        }));
        const t = m.view.total;
        rows.push({
          address: 'total',
          size: formatBytes(t.sizeBytes),
          rss: formatBytes(t.rssBytes),
          dirty: formatBytes(t.dirtyBytes),
          mode: '',
          mapping: `${m.view.rows.length} mappings`,
        });
        const title = `${m.pid}: ${m.cmdline.length ? m.cmdline.join(' ') : `[${m.name}]`}`;
        ctx.stdout.write(`${title.length > WIDTH ? `${title.slice(0, WIDTH - 1)}…` : title}\n`);
        ctx.stdout.write(
          `${fitLast(
            rows,
            [
              { header: 'ADDRESS', value: (r) => r.address },
              { header: 'SIZE', align: 'right', value: (r) => r.size },
              { header: 'RSS', align: 'right', value: (r) => r.rss },
              { header: 'DIRTY', align: 'right', value: (r) => r.dirty },
              { header: 'MODE', value: (r) => r.mode },
              { header: 'MAPPING', value: (r) => r.mapping },
            ],
            true,
          )}\n`,
        );
      }
      return 0;
    } finally {
      await snap.close();
    }
  },
});

/** The commands of this file, for cli/commands/index.ts. */
export const processCommands = [psCommand, pmapCommand];
