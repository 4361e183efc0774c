import { parseError } from '../model/errors.js';
import { numberedLines, type ParseOptions } from './text.js';

/**
 * An event's `format` file (tracefs events/<system>/<event>/format): its id, its fields
 * and the print format. memsleuth reads it to know what a kernel's kmem events carry
 * before writing filters (kmem_cache_alloc gained `name=` after 6.12; 6.1 has none):
 *
 *   name: kmalloc
 *   ID: 658
 *   format:
 *   	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
 *   	...
 *   	field:const void * ptr;	offset:16;	size:8;	signed:0;
 *
 *   print fmt: "call_site=%pS ptr=%p ...", ...
 */
export interface FtraceField {
  /** The C declaration's type (`const void *`, `__data_loc char[]`). */
  type: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
}

export interface FtraceFormat {
  name: string;
  id: number;
  /** Fields after the common_* ones. */
  fields: FtraceField[];
  common: FtraceField[];
  printFmt: string;
}

const FIELD = /^\s*field:(.+?)\s*;\s*offset:(\d+);\s*size:(\d+);(?:\s*signed:(\d);)?/;

/** The `field:` lines of a format file (events/header_page has only those). */
export function parseFtraceFields(text: string, opts: ParseOptions = {}): FtraceField[] {
  const file = opts.file ?? 'format';
  const out: FtraceField[] = [];
  for (const { text: t, line } of numberedLines(text)) {
    if (!t.trim().startsWith('field:')) continue;
    const m = FIELD.exec(t);
    if (!m) throw parseError(file, line, '`field:TYPE NAME; offset:N; size:N; signed:N;`', t);
    const decl = m[1]!.trim();
    // The name is the last identifier, before any `[N]` array suffix.
    const dm = /^(.*?)\s*([A-Za-z_]\w*)\s*(\[[^\]]*\])?$/.exec(decl);
    if (!dm) throw parseError(file, line, 'a C declaration `TYPE NAME`', decl);
    out.push({
      type: `${dm[1]!}${dm[3] ?? ''}`.trim(),
      name: dm[2]!,
      offset: Number(m[2]),
      size: Number(m[3]),
      signed: m[4] === '1',
    });
  }
  return out;
}

export function parseFtraceFormat(text: string, opts: ParseOptions = {}): FtraceFormat {
  const file = opts.file ?? 'format';
  let name: string | undefined;
  let id: number | undefined;
  let printFmt = '';
  for (const { text: t } of numberedLines(text)) {
    if (t.startsWith('name: ')) name = t.slice(6).trim();
    else if (t.startsWith('ID: ')) id = Number(t.slice(4).trim());
    else if (t.startsWith('print fmt: ')) printFmt = t.slice(11);
  }
  if (name === undefined || id === undefined || !Number.isInteger(id))
    throw parseError(file, 1, 'an event format with `name:` and `ID:` lines', text.slice(0, 60));
  const all = parseFtraceFields(text, { file });
  return {
    name,
    id,
    fields: all.filter((f) => !f.name.startsWith('common_')),
    common: all.filter((f) => f.name.startsWith('common_')),
    printFmt,
  };
}

/**
 * per_cpu/cpuN/stats of a trace buffer (kernel/trace/trace.c tracing_stats_read):
 * `entries: N`, `overrun: N` (overwritten, overwrite mode), `commit overrun: N`,
 * `bytes: N`, `oldest event ts: S.U`, `now ts: S.U`, `dropped events: N` (not written
 * because the buffer was full, overwrite off; 3.15+), `read events: N` (3.15+).
 */
export interface FtraceCpuStats {
  entries: number;
  overrun: number;
  commitOverrun: number;
  bytes: number;
  droppedEvents: number;
  readEvents: number;
}

export function parseFtraceCpuStats(text: string, opts: ParseOptions = {}): FtraceCpuStats {
  const file = opts.file ?? 'stats';
  const values: Record<string, number> = {};
  for (const { text: t, line } of numberedLines(text)) {
    const m = /^([a-z ]+):\s+(\S+)$/.exec(t.trim());
    if (!m) throw parseError(file, line, '`name: value`', t);
    if (/^\d+$/.test(m[2]!)) values[m[1]!] = Number(m[2]);
  }
  if (values.entries === undefined) throw parseError(file, 1, 'an `entries:` line', text.slice(0, 60));
  return {
    entries: values.entries,
    overrun: values.overrun ?? 0,
    commitOverrun: values['commit overrun'] ?? 0,
    bytes: values.bytes ?? 0,
    droppedEvents: values['dropped events'] ?? 0,
    readEvents: values['read events'] ?? 0,
  };
}

/**
 * Several CPUs' stats in one file, each after a `cpuN:` line (memsleuth-collect.sh writes
 * trace/kmem.stats this way): summed.
 */
export function parseFtraceStatsFile(
  text: string,
  opts: ParseOptions = {},
): { total: FtraceCpuStats; cpus: number } {
  const file = opts.file ?? 'stats';
  const total: FtraceCpuStats = {
    entries: 0,
    overrun: 0,
    commitOverrun: 0,
    bytes: 0,
    droppedEvents: 0,
    readEvents: 0,
  };
  let cpus = 0;
  const blocks = text.split(/^cpu\d+:\s*$/m).filter((b) => b.trim() !== '');
  for (const b of blocks) {
    const st = parseFtraceCpuStats(b.trim(), { file });
    cpus++;
    for (const k of Object.keys(total) as (keyof FtraceCpuStats)[]) total[k] += st[k];
  }
  return { total, cpus };
}
