import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { openSnapshot } from '../capture/snapshot.js';
import { errnoReason, MemsleuthError } from '../model/errors.js';
import { MANIFEST_FORMAT, MANIFEST_PATH, type Manifest } from '../model/snapshot.js';
import { RecordingReader, RecordingWriter } from '../store/recording.js';
import { Sampler } from './sampler.js';

/**
 * `memsleuth record --from DIR`: a directory of snapshots (bundles from `memsleuth snapshot`
 * or the periodic sh collector, or snapshot directories) becomes a recording, one tick per
 * snapshot at its manifest's time, through the same registry sampling as a live recording.
 * Every cadence is 1: a capture holds every file, and captures are minutes apart.
 */
export interface ImportOptions {
  /** The directory holding the captures. */
  from: string;
  db: string;
  /** Called after each capture is recorded. */
  onCapture?: (info: { index: number; total: number; path: string; tMs: number }) => void;
  /** Extra meta rows (tool version). */
  meta?: Record<string, string>;
}

export interface ImportedCapture {
  path: string;
  tMs: number;
  uptimeSeconds: number;
}

export interface ImportResult {
  db: string;
  captures: ImportedCapture[];
  /** Captures after which the machine's uptime went back (it rebooted in between). */
  reboots: string[];
  /** Captures skipped, with why (not a snapshot, no time). */
  skipped: { path: string; reason: string }[];
  /** Sources that could not be read in some capture, with why. */
  problems: Record<string, string>;
  hostname: string;
}

/** The manifest of a bundle or directory, read without unpacking the whole bundle. */
async function readManifest(path: string): Promise<Manifest> {
  let text: string;
  if (statSync(path).isDirectory()) {
    text = readFileSync(join(path, MANIFEST_PATH), 'utf8');
  } else {
    const { extract } = await import('tar');
    const dir = await mkdtemp(join(tmpdir(), 'memsleuth-manifest-'));
    try {
      // `memsleuth snapshot` writes `manifest.json`, the collector's tar `./manifest.json`.
      await extract({
        file: path,
        cwd: dir,
        strict: true,
        filter: (p) => p.replace(/^\.\//, '') === MANIFEST_PATH,
      });
      text = readFileSync(join(dir, MANIFEST_PATH), 'utf8');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const m = JSON.parse(text) as Manifest;
  if (m.format !== MANIFEST_FORMAT)
    throw new Error(`format ${JSON.stringify(m.format)}, not ${MANIFEST_FORMAT}`);
  return m;
}

/** The captures of a directory, in time order (manifest time, then name). */
export async function listCaptures(from: string): Promise<{
  captures: (ImportedCapture & { hostname: string; pageSizeBytes: number })[];
  skipped: { path: string; reason: string }[];
}> {
  let names: string[];
  try {
    names = readdirSync(from).sort();
  } catch (e) {
    throw new MemsleuthError('IO', `${from}: cannot read the directory (${errnoReason(e)})`, {
      file: from,
      hint: 'give the directory the periodic collector writes into (sh collect.sh -o DIR --every ...)',
    });
  }
  if (existsSync(join(from, MANIFEST_PATH)))
    throw new MemsleuthError('USAGE', `${from} is one snapshot, not a directory of snapshots`, {
      file: from,
      hint: 'record --from takes the directory that holds the snapshots (one per capture time)',
    });
  const captures: (ImportedCapture & { hostname: string; pageSizeBytes: number })[] = [];
  const skipped: { path: string; reason: string }[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue; // the collector's .partial-* work in progress
    const path = join(from, name);
    const isDir = statSync(path).isDirectory();
    if (!isDir && !/\.tar\.gz$|\.tgz$/.test(name)) continue;
    if (isDir && !existsSync(join(path, MANIFEST_PATH))) {
      skipped.push({ path, reason: 'no manifest.json' });
      continue;
    }
    let m: Manifest;
    try {
      m = await readManifest(path);
    } catch (e) {
      skipped.push({ path, reason: `no readable manifest.json (${(e as Error).message})` });
      continue;
    }
    const tMs = Date.parse(m.time);
    if (!Number.isFinite(tMs) || tMs <= 0) {
      skipped.push({ path, reason: `manifest time ${JSON.stringify(m.time)} is not a time` });
      continue;
    }
    captures.push({
      path,
      tMs,
      uptimeSeconds: m.uptimeSeconds,
      hostname: m.hostname,
      pageSizeBytes: m.pageSizeBytes || 4096,
    });
  }
  captures.sort((a, b) => a.tMs - b.tMs || (a.path < b.path ? -1 : 1));
  return { captures, skipped };
}

/** Record every capture of `opts.from` into `opts.db`, oldest first. */
export async function importCaptures(opts: ImportOptions): Promise<ImportResult> {
  const { captures, skipped } = await listCaptures(opts.from);
  if (captures.length === 0)
    throw new MemsleuthError('BAD_INPUT', `${opts.from}: no snapshots with a manifest time`, {
      file: opts.from,
      hint: 'the directory should hold bundles (.tar.gz) or snapshot directories from `memsleuth snapshot` or the sh collector',
    });
  const hosts = [...new Set(captures.map((c) => c.hostname))];
  if (hosts.length > 1)
    throw new MemsleuthError(
      'BAD_INPUT',
      `${opts.from}: captures of ${hosts.length} machines (${hosts.join(', ')})`,
      {
        file: opts.from,
        hint: 'a recording follows one machine: put each machine’s captures in a directory of its own',
      },
    );
  for (let i = 1; i < captures.length; i++)
    if (captures[i]!.tMs === captures[i - 1]!.tMs)
      throw new MemsleuthError(
        'BAD_INPUT',
        `${captures[i - 1]!.path} and ${captures[i]!.path} were taken at the same time (${new Date(captures[i]!.tMs).toISOString()})`,
        { file: opts.from, hint: 'the same capture twice? keep one of them' },
      );
  if (existsSync(opts.db)) {
    const r = new RecordingReader(opts.db);
    let lastMs: number | undefined;
    try {
      lastMs = r.load({ layers: ['meminfo'], maxPoints: 2 }).lastMs;
    } finally {
      r.close();
    }
    if (lastMs !== undefined && captures[0]!.tMs <= lastMs)
      throw new MemsleuthError(
        'USAGE',
        `${opts.db} already records up to ${new Date(lastMs).toISOString()}, after the first capture (${basename(captures[0]!.path)})`,
        {
          file: opts.db,
          hint: 'import into a new --db, or move the captures already recorded out of the directory',
        },
      );
  }
  const reboots: string[] = [];
  for (let i = 1; i < captures.length; i++)
    if (captures[i]!.uptimeSeconds < captures[i - 1]!.uptimeSeconds) reboots.push(captures[i]!.path);

  let current = captures[0]!.path;
  const sampler = new Sampler({
    snapshot: () => openSnapshot(current),
    pageSizeBytes: captures[0]!.pageSizeBytes,
    pssEvery: 1,
    smapsEvery: 1,
    vmallocEvery: 1,
    tmpfsEvery: 1,
    kmemleak: true,
  });
  const gaps = captures.slice(1).map((c, i) => c.tMs - captures[i]!.tMs);
  const interval = gaps.length ? gaps.sort((a, b) => a - b)[Math.floor(gaps.length / 2)]! : 0;
  mkdirSync(dirname(opts.db), { recursive: true });
  const writer = new RecordingWriter(opts.db, {
    interval_ms: String(interval),
    page_size: String(captures[0]!.pageSizeBytes),
    slab_reclaimable: JSON.stringify(await sampler.reclaimableSlabCaches()),
    imported_from: opts.from,
    hostname: hosts[0]!,
    ...opts.meta,
  });
  try {
    for (const [i, c] of captures.entries()) {
      current = c.path;
      writer.writeTick(await sampler.sample(c.tMs));
      opts.onCapture?.({ index: i + 1, total: captures.length, path: c.path, tMs: c.tMs });
    }
  } finally {
    writer.close();
  }
  return {
    db: opts.db,
    captures: captures.map(({ path, tMs, uptimeSeconds }) => ({ path, tMs, uptimeSeconds })),
    reboots,
    skipped,
    problems: Object.fromEntries(sampler.problems),
    hostname: hosts[0]!,
  };
}
