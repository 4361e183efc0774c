import type { Report } from '../../analysis/report.js';
import { buildReport } from '../../analysis/report.js';
import { MemsleuthError } from '../../model/errors.js';
import { defineCommand, numberOption } from '../command.js';
import type { CommandContext } from '../context.js';
import { type Column, formatBytes, formatPercent, heading, table, wrap } from '../format.js';
import { snapshotOrLive } from '../snapshots.js';

const LAYER_TITLES = {
  user: 'user (processes, anonymous)',
  shared: 'shared (shmem, tmpfs)',
  cache: 'page cache',
  kernel: 'kernel',
  free: 'free',
  unaccounted: 'unaccounted',
} as const;

export function renderReport(r: Report): string {
  const out: string[] = [];
  const s = r.snapshot;
  out.push(
    `memsleuth report — ${s.hostname}, Linux ${s.kernelRelease}, ${s.origin === 'live' ? 'live' : s.origin}` +
      (s.time !== new Date(0).toISOString() ? `, ${s.time}` : '') +
      (s.uptimeSeconds ? `, up ${formatUptime(s.uptimeSeconds)}` : ''),
  );

  const a = r.accounting;
  if (a) {
    out.push(
      heading(
        `Where the memory is: MemTotal ${formatBytes(a.memTotalBytes)} = user + shared + cache + kernel + free + unaccounted`,
      ),
    );
    const rows: { label: string; bytes: number; pct: string; desc: string }[] = [];
    for (const layer of Object.keys(LAYER_TITLES) as (keyof typeof LAYER_TITLES)[]) {
      const parts = a.parts.filter((p) => p.layer === layer);
      rows.push({
        label: LAYER_TITLES[layer],
        bytes: a.layers[layer],
        pct: formatPercent((a.layers[layer] / a.memTotalBytes) * 100),
        desc: '',
      });
      if (parts.length > 1 || (parts.length === 1 && parts[0]!.name !== 'unaccounted')) {
        for (const p of parts)
          rows.push({
            label: `  ${p.name}`,
            bytes: p.bytes,
            pct: formatPercent(p.percent),
            desc: p.description,
          });
      } else if (layer === 'unaccounted') {
        rows[rows.length - 1]!.desc = parts[0]!.description;
      }
    }
    const sum = a.parts.reduce((t, p) => t + p.bytes, 0);
    rows.push({
      label: 'total',
      bytes: sum,
      pct: formatPercent((sum / a.memTotalBytes) * 100),
      desc: sum === a.memTotalBytes ? '= MemTotal' : '≠ MemTotal',
    });
    out.push(
      table(rows, [
        { header: 'LAYER', value: (x) => x.label },
        { header: 'BYTES', align: 'right', value: (x) => formatBytes(x.bytes) },
        { header: '%', align: 'right', value: (x) => x.pct },
        { header: 'WHAT', max: 46, value: (x) => x.desc },
      ]),
    );
    const extra: string[] = [];
    if (r.memAvailableBytes !== undefined) extra.push(`MemAvailable ${formatBytes(r.memAvailableBytes)}`);
    if (r.swap) extra.push(`swap used ${formatBytes(r.swap.usedBytes)} of ${formatBytes(r.swap.totalBytes)}`);
    if (a.absentFields.length) extra.push(`not printed by this kernel: ${a.absentFields.join(', ')}`);
    if (extra.length) out.push(extra.join('; '));
  }

  if (r.processes) {
    const p = r.processes;
    out.push(heading(`Top processes by PSS (${p.count} processes)`));
    const cols: Column<(typeof p.top)[number]>[] = [
      { header: 'PID', align: 'right', value: (x) => String(x.pid) },
      { header: 'NAME', max: 12, value: (x) => x.name },
      { header: 'RSS', align: 'right', value: (x) => formatBytes(x.rssBytes) },
      {
        header: 'PSS',
        align: 'right',
        value: (x) => (x.pssBytes === undefined ? '-' : formatBytes(x.pssBytes)),
      },
      {
        header: 'USS',
        align: 'right',
        value: (x) => (x.ussBytes === undefined ? '-' : formatBytes(x.ussBytes)),
      },
      { header: 'SWAP', align: 'right', value: (x) => formatBytes(x.swapBytes) },
      { header: 'PRIV-ANON', align: 'right', value: (x) => opt(x.privateAnonBytes) },
      { header: 'SHR-ANON', align: 'right', value: (x) => opt(x.sharedAnonBytes) },
      { header: 'PRIV-FILE', align: 'right', value: (x) => opt(x.privateFileBytes) },
      { header: 'SHR-FILE', align: 'right', value: (x) => opt(x.sharedFileBytes) },
    ];
    out.push(table(p.top, cols));
    const sums = [`sum RSS ${formatBytes(p.sumRssBytes)}`];
    if (p.sumPssBytes !== undefined) sums.push(`sum PSS ${formatBytes(p.sumPssBytes)}`);
    const c = p.anonCrossCheck;
    if (c) {
      sums.push(
        `sum ${c.basis} ${formatBytes(c.processAnonBytes)} vs AnonPages ${formatBytes(c.anonPagesBytes)} (${c.differenceBytes >= 0 ? '+' : ''}${formatBytes(c.differenceBytes)}, ${c.differencePercent.toFixed(1)}%` +
          (c.unreadableProcesses ? `, ${c.unreadableProcesses} unreadable` : '') +
          ')',
      );
    }
    if (p.skipped.length) sums.push(`${p.skipped.length} skipped`);
    out.push(wrap(sums.join('; '), 100, '  '));
  }

  if (r.slab) {
    const sl = r.slab;
    out.push(
      heading(
        `Top slab caches by memory (${sl.cacheCount} caches, ${formatBytes(sl.totalSlabBytes)} in slabs)`,
      ),
    );
    out.push(
      table(sl.caches, [
        { header: 'CACHE', max: 28, value: (x) => x.name },
        { header: 'SLABS', align: 'right', value: (x) => formatBytes(x.slabBytes) },
        { header: 'OBJECTS', align: 'right', value: (x) => formatBytes(x.objectBytes) },
        { header: 'ACTIVE', align: 'right', value: (x) => String(x.activeObjs) },
        { header: 'TOTAL', align: 'right', value: (x) => String(x.numObjs) },
        { header: 'OBJSIZE', align: 'right', value: (x) => String(x.objSizeBytes) },
        {
          header: 'RECLAIM',
          value: (x) => (x.reclaimable === undefined ? '?' : x.reclaimable ? 'yes' : 'no'),
        },
      ]),
    );
    if (!sl.reclaimKnown) out.push('RECLAIM ?: this snapshot has no /sys/kernel/slab/*/reclaim_account');
  }

  if (r.vmalloc) {
    const v = r.vmalloc;
    out.push(heading(`vmalloc by caller (${v.callerCount} callers, ${formatBytes(v.totalBytes)} in pages)`));
    out.push(
      table(v.byCaller, [
        { header: 'CALLER', max: 60, value: (x) => (x.module ? `${x.caller} [${x.module}]` : x.caller) },
        { header: 'AREAS', align: 'right', value: (x) => String(x.areas) },
        { header: 'BYTES', align: 'right', value: (x) => formatBytes(x.bytes) },
      ]),
    );
  }

  if (r.buddy) {
    const b = r.buddy;
    out.push(heading(`Buddy allocator free blocks per order (total free ${formatBytes(b.totalFreeBytes)})`));
    const orders = Array.from({ length: b.maxOrder }, (_, i) => i);
    out.push(
      table(b.zones, [
        { header: 'NODE/ZONE', value: (x) => `${x.node}/${x.zone}` },
        ...orders.map((o) => ({
          header: String(o),
          align: 'right' as const,
          value: (x: (typeof b.zones)[number]) => String(x.freeBlocks[o] ?? 0),
        })),
        { header: 'FREE', align: 'right', value: (x) => formatBytes(x.freeBytes) },
      ]),
    );
  }

  out.push(heading('Findings'));
  if (r.findings.length === 0) out.push('Nothing stands out.');
  for (const f of r.findings) {
    out.push(wrap(`[${f.severity}] ${f.title}`, 100, '  '));
    out.push(wrap(f.detail, 100, '  ', '  '));
    for (const n of f.next) out.push(wrap(n, 100, '        ', '  next: '));
  }
  if (r.unavailable.length) {
    out.push(heading('Not available in this snapshot'));
    for (const m of r.unavailable)
      out.push(wrap(`${m.path}: ${m.reason}. To enable: ${m.enable}`, 100, '    '));
  }
  return `${out.join('\n')}\n`;
}

function opt(n: number | undefined): string {
  return n === undefined ? '-' : formatBytes(n);
}

function formatUptime(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

export const reportCommand = defineCommand({
  path: ['report'],
  summary: 'where the memory is: the accounting identity, top consumers per layer, findings',
  args: '[SNAPSHOT]',
  options: {
    json: { type: 'boolean', description: 'print the whole report model as JSON' },
    top: { type: 'string', valueName: 'N', description: 'rows per top list (default 10)' },
    'no-smaps': { type: 'boolean', description: 'skip smaps (no PSS/USS): faster on huge machines' },
  },
  details:
    'SNAPSHOT is a bundle (.tar.gz) or directory from `memsleuth snapshot`; without it, this machine now.',
  async run({ values, positionals }, ctx: CommandContext) {
    if (positionals.length > 1)
      throw new MemsleuthError('USAGE', `report takes one SNAPSHOT, got ${positionals.length}`);
    const top = numberOption(values.top, 'top', 10, { min: 1, integer: true });
    const snap = await snapshotOrLive(positionals[0]);
    try {
      const report = await buildReport(snap, { top, smaps: !values['no-smaps'] });
      ctx.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
      return 0;
    } finally {
      await snap.close();
    }
  },
});
