import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { MemsleuthError } from '../model/errors.js';
import {
  MANIFEST_PATH,
  type Manifest,
  type MissingSource,
  PROCESS_FILES,
  SLAB_ATTRS,
  SYSTEM_SOURCES,
  slabTracePath,
  sourceLocation,
  TMPFS_FILES_PATH,
  TMPFS_MOUNTS_PATH,
} from '../model/snapshot.js';
import type { LiveSnapshot } from './live.js';

export interface WriteSnapshotOptions {
  /** Output path: a `.tar.gz` bundle, or a directory with `asDirectory`. */
  out: string;
  asDirectory?: boolean;
  /** Copy /sys/kernel/debug/page_owner (can be GBs on large machines). Default true. */
  pageOwner?: boolean;

  /** Copy proc/<pid>/* for every process. Default true. */
  processes?: boolean;
  /** Copy smaps (the costliest per-process file). Default true. */
  smaps?: boolean;
  /** Copy slab alloc/free traces. Default true. */
  slabTraces?: boolean;
  /** Called with a line of progress now and then. */
  onProgress?: (line: string) => void;
  /** Tool name for the manifest, e.g. `memsleuth 0.1.0`. */
  tool: string;
}

export interface WriteSnapshotResult {
  path: string;
  manifest: Manifest;
  bytes: number;
}

/** Families of per-process files that failed for reasons other than the process exiting. */
function summariseProcessFailures(failures: Map<string, number>): MissingSource[] {
  return [...failures].map(([key, n]) => {
    const [file, reason] = key.split('\0') as [string, string];
    return {
      path: `proc/*/${file}`,
      reason: `${reason} for ${n} process${n === 1 ? '' : 'es'}`,
      enable:
        reason === 'permission denied'
          ? 'run as root to read other users’ processes'
          : 'kernel-dependent file',
    };
  });
}

/**
 * Copy every readable source of `live` into a snapshot directory or bundle. Raw text is
 * kept as the kernel wrote it. Sources that cannot be read are listed in the manifest
 * with the reason and how to enable them; processes that exit mid-read are skipped.
 */
export async function writeSnapshot(
  live: LiveSnapshot,
  opts: WriteSnapshotOptions,
): Promise<WriteSnapshotResult> {
  const started = Date.now();
  const out = resolve(opts.out);
  const progress = opts.onProgress ?? (() => {});
  const stage = opts.asDirectory ? out : await mkdtemp(join(dirname(out), `.${basename(out)}.partial-`));
  if (opts.asDirectory) {
    try {
      const st = await stat(out);
      if (!st.isDirectory()) throw new MemsleuthError('USAGE', `${opts.out}: exists and is not a directory`);
      throw new MemsleuthError('USAGE', `${opts.out}: already exists`, {
        hint: 'choose a new directory name',
      });
    } catch (e) {
      if (e instanceof MemsleuthError) throw e;
    }
    await mkdir(out, { recursive: true });
  }
  try {
    const base = await live.manifest();
    const files: string[] = [];
    const missing: MissingSource[] = [...base.missing.filter((m) => !m.path.startsWith('slab/'))];
    const put = async (path: string, text: string) => {
      await mkdir(dirname(join(stage, path)), { recursive: true });
      await writeFile(join(stage, path), text);
      files.push(path);
    };

    // System-wide sources. Large ones are streamed.
    for (const spec of SYSTEM_SOURCES) {
      if (missing.some((m) => m.path === spec.path)) continue;
      // The same words as the sh collector (src/capture/collector.ts).
      if (spec.skipOption === 'no-page-owner' && opts.pageOwner === false) {
        missing.push({
          path: spec.path,
          reason: `skipped (--${spec.skipOption})`,
          enable: `omit --${spec.skipOption}`,
        });
        continue;
      }
      progress(`reading ${spec.livePath}`);
      if (spec.large) {
        const stream = await live.openStream(spec.path);
        if (!stream) {
          missing.push({
            path: spec.path,
            reason: live.whyMissing(spec.path) ?? 'unreadable',
            enable: spec.enable,
          });
          continue;
        }
        await mkdir(dirname(join(stage, spec.path)), { recursive: true });
        try {
          await pipeline(stream, createWriteStream(join(stage, spec.path)));
          files.push(spec.path);
        } catch (e) {
          missing.push({
            path: spec.path,
            reason: (e as NodeJS.ErrnoException).code ?? String(e),
            enable: spec.enable,
          });
        }
        continue;
      }
      const text = await live.readText(spec.path);
      if (text === undefined) {
        missing.push({
          path: spec.path,
          reason: live.whyMissing(spec.path) ?? 'unreadable',
          enable: spec.enable,
        });
        continue;
      }
      await put(spec.path, text);
    }

    // Slab call sites and per-cache attributes.
    if (opts.slabTraces !== false) {
      const traces = await live.slabTraceFiles();
      for (const [cache, kinds] of traces) {
        for (const kind of kinds) {
          const path = `slab/${cache}.${kind}`;
          progress(`reading ${live.describe(path)}`);
          const text = await live.readText(path);
          if (text !== undefined) await put(path, text);
        }
      }
      if (traces.size === 0) missing.push(...base.missing.filter((m) => m.path.startsWith('slab/')));
    }
    for (const cache of await live.slabCaches()) {
      for (const attr of SLAB_ATTRS) {
        const text = await live.readText(slabTracePath(cache, attr));
        if (text !== undefined) await put(slabTracePath(cache, attr), text);
      }
    }

    // tmpfs mounts and their largest files (memsleuth's listing: src/sources/tmpfs.ts).
    for (const path of [TMPFS_MOUNTS_PATH, TMPFS_FILES_PATH]) {
      progress(`reading ${live.describe(path)}`);
      const text = await live.readText(path);
      if (text !== undefined) await put(path, text);
      else
        missing.push({
          path,
          reason: live.whyMissing(path) ?? 'unreadable',
          enable: sourceLocation('tmpfs').enable,
        });
    }

    // Processes: skip those that exit while we read them.
    const skippedPids: { pid: number; reason: string }[] = [];
    if (opts.processes !== false) {
      const failures = new Map<string, number>();
      const pids = await live.pids();
      let done = 0;
      for (const pid of pids) {
        done++;
        if (done % 20 === 0) progress(`processes ${done}/${pids.length}`);
        const got = new Map<string, string>();
        const failed: string[] = [];
        let vanished = false;
        for (const file of PROCESS_FILES) {
          if (file === 'smaps' && opts.smaps === false) continue;
          const path = `proc/${pid}/${file}`;
          const text = await live.readText(path);
          if (text !== undefined) {
            got.set(file, text);
            continue;
          }
          const why = live.whyMissing(path) ?? 'unreadable';
          // ENOENT means the pid is gone. ESRCH is also what kernel threads (no mm)
          // answer for smaps_rollup, so it only counts as an exit if status goes too.
          // The fd listing is made from a directory: its absence alone proves nothing (status tells).
          if (why === 'not present' && file !== 'fd') vanished = true;
          else if (why !== 'process exited') failed.push(`${file}\0${why}`);
        }
        if (!vanished && got.size < PROCESS_FILES.length && got.has('status')) {
          vanished = (await live.readText(`proc/${pid}/status`)) === undefined;
        }
        if (vanished || !got.has('status')) {
          skippedPids.push({ pid, reason: 'exited during capture' });
          continue;
        }
        // Counted only for processes that lived on: an exit is not a missing file.
        for (const key of failed) failures.set(key, (failures.get(key) ?? 0) + 1);
        for (const [file, text] of got) await put(`proc/${pid}/${file}`, text);
      }
      missing.push(...summariseProcessFailures(failures));
    }

    const manifest: Manifest = {
      ...base,
      files: [...files].sort(),
      missing,
      skippedPids,
      durationSeconds: (Date.now() - started) / 1000,
      tool: opts.tool,
    };
    await writeFile(join(stage, MANIFEST_PATH), `${JSON.stringify(manifest, null, 2)}\n`);

    if (opts.asDirectory) {
      return { path: out, manifest, bytes: 0 };
    }
    progress('compressing');
    const { create } = await import('tar');
    const tmpOut = `${out}.partial`;
    await create({ gzip: { level: 6 }, file: tmpOut, cwd: stage, portable: true }, [
      MANIFEST_PATH,
      ...manifest.files,
    ]);
    await rename(tmpOut, out);
    const bytes = (await stat(out)).size;
    return { path: out, manifest, bytes };
  } catch (e) {
    if (opts.asDirectory) await rm(out, { recursive: true, force: true });
    throw e;
  } finally {
    if (!opts.asDirectory) await rm(stage, { recursive: true, force: true });
  }
}
