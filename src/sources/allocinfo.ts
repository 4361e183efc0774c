import { parseError } from '../model/errors.js';
import { kernelLines, type ParseOptions, safeNumber } from './text.js';

/**
 * /proc/allocinfo, memory allocation profiling (6.10+, CONFIG_MEM_ALLOC_PROFILING,
 * lib/alloc_tag.c). One line per allocation call site (code tag):
 *
 *   allocinfo - version: 1.0
 *   #     <size>  <calls> <tag info>
 *          76800      400 drivers/misc/leaky/leaky.c:26 [leaky] func:demo_cache_fill
 *
 * `%12lli %8llu ` bytes and live calls, then codetag_to_text(): `file:line`, ` [module]`
 * for module code, ` func:<name>`; lines end with a space. Version 2.0 (2025) appends
 * ` accurate:no` to tags whose counters missed allocations (slab obj_ext allocation
 * failed). Bytes are signed in the kernel (`%lli`) and can briefly read negative.
 */
export interface AllocTag {
  /** Bytes currently allocated from this call site. */
  bytes: number;
  /** Allocations currently live from this call site. */
  calls: number;
  /** Source file (`mm/slub.c`). */
  sourceFile: string;
  sourceLine: number;
  /** Module name for module code; absent for vmlinux. */
  module?: string;
  func: string;
  /** False when the kernel marked the counters `accurate:no` (version 2.0+). */
  accurate: boolean;
  /** 1-based line. */
  line: number;
}

export interface Allocinfo {
  /** `1.0`, `2.0`...; undefined for a file without the header (some 6.10 backports). */
  version?: string;
  tags: AllocTag[];
}

const TAG = /^\s*(-?\d+)\s+(\d+)\s+(\S+):(\d+)(?:\s+\[([^\]\s]+)\])?\s+func:(\S+)((?:\s+\S+:\S+)*)\s*$/;

/**
 * Parse /proc/allocinfo. Lines with the same `file:line [module] func` are kept apart: the
 * kernel prints one line per code tag, and an inline function in a header gets one tag per
 * file that includes it (kernel/sched/sched.h:2632 alloc_user_cpus_ptr twice in the 6.12 lab
 * capture), so a repeated key is real output, not a duplicated line.
 */
export function parseAllocinfo(text: string, opts: ParseOptions = {}): Allocinfo {
  const file = opts.file ?? '/proc/allocinfo';
  const tags: AllocTag[] = [];
  let version: string | undefined;
  const lines = kernelLines(
    text,
    file,
    '`allocinfo - version: 1.0` and `<size> <calls> file:line func:name` lines',
    opts,
  );
  for (const { text: t, line } of lines) {
    if (t.trim() === '') continue;
    const v = /^allocinfo - version: (\S+)\s*$/.exec(t);
    if (v) {
      if (line !== 1) throw parseError(file, line, 'the version header on line 1 only', t);
      version = v[1];
      continue;
    }
    if (t.startsWith('#')) continue;
    const m = TAG.exec(t);
    if (!m) throw parseError(file, line, '`<size> <calls> file:line [module] func:name`', t);
    const tag: AllocTag = {
      bytes: safeNumber(m[1]!, file, line, '<size>'),
      calls: safeNumber(m[2]!, file, line, '<calls>'),
      sourceFile: m[3]!,
      sourceLine: safeNumber(m[4]!, file, line, 'a source line number'),
      func: m[6]!,
      accurate: true,
      line,
    };
    if (m[5] !== undefined) tag.module = m[5];
    for (const extra of (m[7] ?? '').trim().split(/\s+/).filter(Boolean)) {
      if (extra === 'accurate:no') tag.accurate = false;
      else if (extra !== 'accurate:yes')
        throw parseError(file, line, 'only `accurate:no` after func:name', extra);
    }
    tags.push(tag);
  }
  return version === undefined ? { tags } : { version, tags };
}

/** A tag's identity across snapshots: `file:line [module] func`. */
export function allocTagKey(t: Pick<AllocTag, 'sourceFile' | 'sourceLine' | 'module' | 'func'>): string {
  return `${t.sourceFile}:${t.sourceLine}${t.module ? ` [${t.module}]` : ''} ${t.func}`;
}
