import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { explainOomLog, type OomExplanation, type RankedTask } from '../../analysis/oom.js';
import { type KernelLog, type KernelLogSource, readKernelLog } from '../../capture/kernel_log.js';
import { MemsleuthError } from '../../model/errors.js';
import { formatBytes } from '../../model/units.js';
import { accountingTable } from '../../registry/sources/meminfo.js';
import { parseOomReports } from '../../sources/oom_report.js';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';
import { heading, renderTable, table, wrap } from '../format.js';

const CULPRIT_WORDS: Record<OomExplanation['culprit'], string> = {
  'kernel-unaccounted': 'kernel (unaccounted)',
  'kernel-slab': 'kernel slab',
  'kernel-other': 'kernel stacks/page tables',
  hugetlb: 'huge pages',
  user: 'user space',
  shmem: 'shared memory',
  'page-cache': 'page cache',
  'memcg-limit': 'memory cgroup limit',
  fragmentation: 'fragmentation',
  unknown: 'unknown',
};

async function readStdin(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function field(label: string, text: string): string {
  return wrap(text, 100, ' '.repeat(11), `${label.padEnd(11)}`);
}

function renderOne(e: OomExplanation, of: number, source: string): string {
  const out: string[] = [];
  const when = e.seconds !== undefined ? `, ${e.seconds.toFixed(1)} s after boot` : '';
  out.push(heading(`OOM ${e.index} of ${of}: ${source} line ${e.line}${when} — ${CULPRIT_WORDS[e.culprit]}`));
  out.push(field('verdict', e.headline));
  out.push(field('scope', e.constraint));
  if (e.request) {
    out.push(field('request', e.request.summary));
    if (e.request.gfpFlags.length > 1) {
      out.push(
        field(
          'gfp flags',
          e.request.gfpFlags.map((f) => (f.meaning ? `${f.name} (${f.meaning})` : f.name)).join(', '),
        ),
      );
    }
  }
  if (e.victim) {
    const v = e.victim;
    out.push(
      field(
        'killed',
        `${v.comm} (pid ${v.pid}${v.uid !== undefined ? `, uid ${v.uid}` : ''}): ${v.why}. ` +
          `anon-rss ${formatBytes(v.anonRssBytes)}, file-rss ${formatBytes(v.fileRssBytes)}` +
          (v.shmemRssBytes !== undefined ? `, shmem-rss ${formatBytes(v.shmemRssBytes)}` : '') +
          (v.reapedBytes !== undefined ? `; the oom_reaper freed ${formatBytes(v.reapedBytes)}` : ''),
      ),
    );
  }
  if (e.memcg) {
    const m = e.memcg;
    const parts = [
      m.usageBytes !== undefined ? `usage ${formatBytes(m.usageBytes)}` : undefined,
      m.limitBytes !== undefined ? `limit ${formatBytes(m.limitBytes)}` : undefined,
      m.failcnt !== undefined ? `failcnt ${m.failcnt}` : undefined,
      m.swapUsageBytes !== undefined ? `swap ${formatBytes(m.swapUsageBytes)}` : undefined,
    ].filter(Boolean);
    out.push(field('cgroup', `${m.path ?? '?'}: ${parts.join(', ')}`));
  }
  if (e.accounting) {
    out.push('');
    // The report's identity, from the Mem-Info the kernel printed: fewer counters (no vmalloc,
    // no percpu), so the parts it has no value for are left out.
    const t = accountingTable(e.accounting, {
      omitEmpty: true,
      title: `Where the memory was: MemTotal ${formatBytes(e.accounting.memTotalBytes)} = user + shared + cache + kernel + free + unaccounted`,
      totalNote: '= MemTotal (pages RAM − reserved)',
      unaccountedNote: 'no counter: alloc_pages by drivers, vmalloc, percpu',
      whatWidth: 52,
    });
    out.push(t.title, renderTable(t));
  }
  if (e.candidates.length) {
    out.push('');
    out.push(`Largest killable tasks (${e.taskCount} in the table), by oom badness:`);
    out.push(
      table<RankedTask>(e.candidates, [
        { header: 'PID', align: 'right', value: (t) => String(t.pid) },
        { header: 'RSS', align: 'right', value: (t) => formatBytes(t.rssBytes) },
        { header: 'SWAP', align: 'right', value: (t) => formatBytes(t.swapBytes) },
        { header: 'PGTABLES', align: 'right', value: (t) => formatBytes(t.pgtablesBytes) },
        { header: 'ADJ', align: 'right', value: (t) => String(t.oomScoreAdj) },
        { header: 'BADNESS', align: 'right', value: (t) => String(t.badnessPages) },
        { header: 'NAME', value: (t) => t.name },
      ]),
    );
  }
  if (e.allocations.length) {
    out.push('');
    out.push('Largest allocation sites (Memory allocations, 6.10+ allocation profiling):');
    out.push(
      table(e.allocations, [
        { header: 'BYTES', align: 'right', value: (a) => a.sizeText },
        { header: 'CALLS', align: 'right', value: (a) => String(a.calls) },
        { header: 'FUNCTION', value: (a) => (a.module ? `${a.func} [${a.module}]` : a.func) },
        { header: 'SOURCE', max: 50, value: (a) => `${a.file}:${a.line}` },
      ]),
    );
  }
  if (e.slab.length && (e.culprit === 'kernel-slab' || e.culprit === 'kernel-unaccounted')) {
    out.push('');
    out.push('Largest unreclaimable slab caches:');
    out.push(
      table(e.slab, [
        { header: 'CACHE', value: (c) => c.name },
        { header: 'USED', align: 'right', value: (c) => formatBytes(c.usedKB * 1024) },
        { header: 'TOTAL', align: 'right', value: (c) => formatBytes(c.totalKB * 1024) },
      ]),
    );
  }
  if (e.notes.length || e.missing.length) {
    out.push('');
    for (const n of e.notes) out.push(wrap(n, 100, '  ', '- '));
    if (e.missing.length) out.push(wrap(`not in the log: ${e.missing.join(', ')}`, 100, '  ', '- '));
  }
  for (const s of e.nextSteps) out.push(wrap(s, 100, '  ', 'next: '));
  return out.join('\n');
}

export const oomCommand = defineCommand({
  path: ['oom'],
  summary:
    'OOM-killer reports from the kernel log, explained: what was asked, who was killed, where the memory was',
  args: '[FILE|-]',
  options: {
    source: {
      type: 'string',
      valueName: 'WHERE',
      description: 'without FILE: auto (default: /dev/kmsg, else journalctl -k), kmsg or journal',
    },
    boot: {
      type: 'string',
      valueName: 'N',
      description: 'journalctl -b N: 0 this boot, -1 the one before (after an OOM panic)',
    },
    last: { type: 'string', valueName: 'N', description: 'explain only the last N reports' },
    json: { type: 'boolean', description: 'print the parsed reports and their explanations as JSON' },
  },
  details: `FILE is any saved kernel log: dmesg (also -T, -x), /dev/kmsg, syslog (/var/log/kern.log,
/var/log/messages), journalctl -k, a serial console; - reads standard input. Without FILE
this machine's kernel log is read (read-only; needs root when kernel.dmesg_restrict=1).
Every OOM-killer report in it is explained: the constraint (system-wide, memory cgroup,
cpuset, memory policy), the request (order, gfp flags in words), the victim and why (the
largest oom badness, recomputed from the task table), and the accounting identity of
\`memsleuth report\` from the report's Mem-Info: user vs slab vs the remainder no counter
accounts for.`,
  async run({ values, positionals }, ctx: CommandContext) {
    const source = values.source ?? 'auto';
    if (!['auto', 'kmsg', 'journal'].includes(source)) {
      throw new MemsleuthError(
        'USAGE',
        `--source: expected auto, kmsg or journal, found ${JSON.stringify(source)}`,
      );
    }
    const last = values.last === undefined ? undefined : Number(values.last);
    if (last !== undefined && (!Number.isInteger(last) || last < 1)) {
      throw new MemsleuthError(
        'USAGE',
        `--last: expected a whole number >= 1, found ${JSON.stringify(values.last)}`,
      );
    }
    const arg = positionals[0];
    if (arg !== undefined && (values.source !== undefined || values.boot !== undefined)) {
      throw new MemsleuthError('USAGE', '--source and --boot read this machine’s log: not with FILE');
    }
    let text: string;
    let origin: string;
    /** /dev/kmsg only: the first and last record read (a first above 0: the ring had wrapped). */
    let ring: KernelLog['ring'];
    if (arg === '-') {
      text = await readStdin(ctx.stdin);
      origin = 'stdin';
    } else if (arg !== undefined) {
      try {
        text = await readFile(resolve(ctx.cwd, arg), 'utf8');
      } catch (e) {
        throw new MemsleuthError(
          'IO',
          `${arg}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
          {
            file: arg,
            hint: 'give a saved kernel log (dmesg > FILE), - for standard input, or nothing for this machine',
          },
        );
      }
      origin = arg;
    } else {
      const log = await readKernelLog({
        source: source as KernelLogSource,
        ...(values.boot !== undefined ? { boot: values.boot } : {}),
      });
      text = log.text;
      origin = log.origin;
      ring = log.ring;
      if (ring?.firstSeq) {
        const at = /^\[\s*([\d.]+)\]/.exec(text)?.[1];
        ctx.stderr.write(
          `memsleuth: ${origin} starts at record ${ring.firstSeq} of this boot${at ? ` (${at} s after boot)` : ''}: ` +
            `the ${ring.firstSeq} before it were overwritten, with any OOM report among them; ` +
            '--source journal reads what journald kept\n',
        );
      }
      if (log.lost)
        ctx.stderr.write(`memsleuth: ${log.lost} kernel log record(s) were overwritten while reading\n`);
    }
    const parsed = parseOomReports(text, { file: origin });
    let explained = explainOomLog(parsed);
    if (last !== undefined) explained = explained.slice(-last);
    const reports = last !== undefined ? parsed.reports.slice(-last) : parsed.reports;
    if (values.json) {
      const out = {
        origin,
        ...(ring ? { ring } : {}),
        lines: parsed.lines,
        pageSizeBytes: parsed.pageSizeBytes ?? 4096,
        pageSizeAssumed: parsed.pageSizeBytes === undefined,
        reports: reports.map((report, i) => ({ report, explanation: explained[i] })),
      };
      ctx.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return 0;
    }
    if (parsed.reports.length === 0) {
      ctx.stdout.write(`no OOM-killer reports in ${origin} (${parsed.lines} lines)\n`);
      return 0;
    }
    const counts = new Map<string, number>();
    for (const e of explained)
      counts.set(CULPRIT_WORDS[e.culprit], (counts.get(CULPRIT_WORDS[e.culprit]) ?? 0) + 1);
    ctx.stdout.write(
      `${parsed.reports.length} OOM-killer report${parsed.reports.length === 1 ? '' : 's'} in ${origin} (${parsed.lines} lines)` +
        `${last !== undefined && last < parsed.reports.length ? `, the last ${explained.length} shown` : ''}: ` +
        `${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}\n`,
    );
    for (const e of explained) ctx.stdout.write(`${renderOne(e, parsed.reports.length, origin)}\n`);
    return 0;
  },
});
