/**
 * Benchmark dumps built from a real page_owner capture (the lab's `after` dump), made
 * as varied as a long-running machine's:
 * - every record gets a pid drawn uniformly from 1..4,194,304 (pid_max on 64-bit with
 *   systemd) and tgid = pid, so in the C tool's default mode nearly every record is
 *   its own group (a pool of a few hundred pids would let most records merge);
 * - `variants` V: each record's first frame becomes one of V functions
 *   (`post_alloc_hook` -> `post_alloc_hook_v17`), chosen at random per record, so the
 *   number of distinct stacks grows up to V times the capture's;
 * - PFN and ts increase record by record, as in a real dump (PFN order).
 * The capture's records are repeated in their own order (neighbouring records share
 * stacks as they do in a real dump) until the size is reached.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rng } from '../../test/rng.js';

export interface DumpOptions {
  /** The capture to take records from. */
  source: string;
  /** Stop once at least this many bytes are written. */
  bytes: number;
  /** Ways the first frame of each stack varies (1: the capture's stacks as they are). */
  variants: number;
  /** Seed of the pid and variant generator: the same seed writes the same file. */
  seed: number;
}

export interface DumpStats {
  bytes: number;
  records: number;
}

interface SourceRecord {
  /** Header up to ", pid " (order, mask, GFP flags). */
  prefix: string;
  /** " (comm)" and anything after the tgid up to ", ts ". */
  comm: string;
  /** True when the header carries `free_ts` (5.11-6.6 formats). */
  freeTs: boolean;
  /** The PFN line after the PFN number ("type ... Block ... Flags ..."). */
  pfnTail: string;
  pfnHex: boolean;
  /** First frame's function name, the rest of its line, and the remaining lines. */
  firstFunc: string;
  firstRest: string;
  tail: string;
}

const HEADER =
  /^(Page allocated via order \d+, mask [^,]*), pid -?\d+, tgid -?\d+( \(.*\)), ts \d+ ns(, free_ts \d+ ns)?$/;

function readRecords(source: string): SourceRecord[] {
  const out: SourceRecord[] = [];
  for (const rec of readFileSync(source, 'latin1').split('\n\n')) {
    const lines = rec.split('\n');
    const h = HEADER.exec(lines[0] ?? '');
    const pfn = /^PFN (0x[0-9a-f]+|\d+) (.*)$/.exec(lines[1] ?? '');
    const first = /^ ([^+\s]+)(.*)$/.exec(lines[2] ?? '');
    if (!h || !pfn || !first) continue;
    out.push({
      prefix: h[1]!,
      comm: h[2]!,
      freeTs: h[3] !== undefined,
      pfnTail: pfn[2]!,
      pfnHex: pfn[1]!.startsWith('0x'),
      firstFunc: first[1]!,
      firstRest: first[2]!,
      tail: lines.slice(3).join('\n'),
    });
  }
  if (out.length === 0) throw new Error(`${source}: no page_owner records`);
  return out;
}

export const PID_MAX = 4_194_304;

/** Write a dump of at least `opts.bytes` bytes to `path`. */
export async function writeDump(path: string, opts: DumpOptions): Promise<DumpStats> {
  // A size computed with `<<` wraps at 4 GiB (4096 << 20 === 0): refuse it rather than bench an empty file.
  if (!(opts.bytes > 0)) throw new Error(`writeDump: expected a positive byte count, found ${opts.bytes}`);
  const records = readRecords(opts.source);
  const next = rng(opts.seed * 2654435761 + 1);
  const out = createWriteStream(path, { encoding: 'latin1', highWaterMark: 1 << 22 });
  let bytes = 0;
  let n = 0;
  let pfn = 0x100000 + opts.seed;
  let ts = 1_000_000_000 + opts.seed;
  let batch: string[] = [];
  let batchLen = 0;
  while (bytes < opts.bytes) {
    for (const r of records) {
      pfn += 1;
      ts += 997;
      const pid = 1 + (next() % PID_MAX);
      const v = opts.variants > 1 ? next() % opts.variants : 0;
      const func = v === 0 ? r.firstFunc : `${r.firstFunc}_v${v}`;
      const rec =
        `${r.prefix}, pid ${pid}, tgid ${pid}${r.comm}, ts ${ts} ns${r.freeTs ? `, free_ts ${ts - 500} ns` : ''}\n` +
        `PFN ${r.pfnHex ? `0x${pfn.toString(16)}` : pfn} ${r.pfnTail}\n` +
        ` ${func}${r.firstRest}\n${r.tail}${r.tail ? '\n' : ''}\n`;
      batch.push(rec);
      batchLen += rec.length;
      n++;
      if (batchLen >= 1 << 20) {
        if (!out.write(batch.join(''))) await once(out, 'drain');
        bytes += batchLen;
        batch = [];
        batchLen = 0;
        if (bytes >= opts.bytes) break;
      }
    }
  }
  if (batch.length) out.write(batch.join(''));
  bytes += batchLen;
  out.end();
  await once(out, 'finish');
  return { bytes, records: n };
}

/**
 * page_owner of a committed lab bundle (test/fixtures/lab-<kernel>/<moment>.tar.gz),
 * extracted to a file under `dir`, or MEMSLEUTH_BENCH_SOURCE.
 */
export function labPageOwner(kernel: '6.1' | '6.12', moment = 'after', dir = tmpdir()): string {
  const env = process.env.MEMSLEUTH_BENCH_SOURCE;
  if (env) return env;
  const bundle = join(process.cwd(), 'test', 'fixtures', `lab-${kernel}`, `${moment}.tar.gz`);
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run the bench from the repository root`);
  const file = join(dir, `bench-lab-${kernel}-${moment}-${process.pid}.page_owner`);
  writeFileSync(file, execFileSync('tar', ['-xzOf', bundle, 'page_owner'], { maxBuffer: 1 << 30 }));
  return file;
}
