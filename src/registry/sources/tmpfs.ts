import type { EntitySample } from '../../model/samples.js';
import { sourceLocation, TMPFS_FILES_PATH, TMPFS_MOUNTS_PATH } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import {
  parseTmpfsFiles,
  parseTmpfsMounts,
  TMPFS_MOUNTS_HEADER,
  type TmpfsFile,
  type TmpfsListing,
  type TmpfsMount,
} from '../../sources/tmpfs.js';
import { type DiffRow, due, type SourceEntry, tablesDue } from '../types.js';

declare module '../types.js' {
  interface ReportSections {
    tmpfs?: {
      mounts: TmpfsMount[];
      usedBytes: number;
      /** The largest files over every mount. */
      files: TmpfsFile[];
      /** Whether the capture listed files (older captures and raw files have mounts only). */
      filesListed: boolean;
      notes: string[];
    };
  }
}

/** Files below this are not recorded (a /run full of pid files); tracked ones always are. */
const MIN_FILE_BYTES = 64 * 1024;

/** Read the tmpfs listing of a snapshot: mounts (required), files (when captured). */
async function loadListing(snap: Parameters<SourceEntry['load']>[0]): Promise<TmpfsListing | undefined> {
  const mountsText = await snap.readText(TMPFS_MOUNTS_PATH);
  if (mountsText === undefined) return undefined;
  const m = parseTmpfsMounts(mountsText, { file: snap.describe(TMPFS_MOUNTS_PATH) });
  const filesText = await snap.readText(TMPFS_FILES_PATH);
  const f =
    filesText === undefined
      ? undefined
      : parseTmpfsFiles(filesText, { file: snap.describe(TMPFS_FILES_PATH) });
  const listing: TmpfsListing = {
    mounts: m.mounts,
    files: f?.files ?? [],
    notes: [...m.notes, ...(f?.notes ?? [])],
  };
  if (!f) listing.notes.push('files not listed in this capture');
  return listing;
}

/** tmpfs mounts with their used bytes and largest files (memsleuth's listing, src/sources/tmpfs.ts). */
export const tmpfs: SourceEntry<TmpfsListing> = {
  name: 'tmpfs',
  location: sourceLocation('tmpfs'),
  title: 'tmpfs mounts and their largest files (statfs, a walk of each mount)',
  load: (snap) => loadListing(snap),
  absentReason: () => 'no tmpfs/mounts in this capture',
  recognise: (head) => head.startsWith(`${TMPFS_MOUNTS_HEADER}\n`),

  report(l, ctx) {
    const mounts = [...l.mounts].sort((a, b) => b.usedBytes - a.usedBytes || (a.mount < b.mount ? -1 : 1));
    const files = [...l.files].sort(
      (a, b) => b.allocatedBytes - a.allocatedBytes || (a.path < b.path ? -1 : 1),
    );
    return {
      tmpfs: {
        mounts,
        usedBytes: mounts.reduce((a, m) => a + m.usedBytes, 0),
        files: files.slice(0, ctx.top),
        filesListed: !l.notes.includes('files not listed in this capture'),
        notes: l.notes,
      },
    };
  },

  tables(r) {
    const t = r.tmpfs;
    if (!t) return [];
    const tables = [
      {
        source: 'tmpfs' as const,
        title: `tmpfs mounts (${t.mounts.length}, ${formatBytes(t.usedBytes)} used)`,
        columns: [
          { header: 'MOUNT', max: 48 },
          { header: 'USED', align: 'right' as const },
          { header: 'SIZE', align: 'right' as const },
          { header: 'INODES', align: 'right' as const },
        ],
        rows: t.mounts.map((m) => [
          m.mount,
          formatBytes(m.usedBytes),
          m.sizeBytes ? formatBytes(m.sizeBytes) : 'unlimited',
          String(m.inodesUsed),
        ]),
        ...(t.notes.length ? { notes: t.notes } : {}),
      },
    ];
    if (t.files.length)
      tables.push({
        source: 'tmpfs',
        title: 'Largest tmpfs files',
        columns: [
          { header: 'FILE', max: 64 },
          { header: 'ALLOCATED', align: 'right' },
          { header: 'SIZE', align: 'right' },
        ],
        rows: t.files.map((f) => [f.path, formatBytes(f.allocatedBytes), formatBytes(f.sizeBytes)]),
      });
    return tables;
  },

  diff(b, a) {
    const rows: DiffRow[] = [];
    const mb = new Map(b.mounts.map((m) => [m.mount, m]));
    const ma = new Map(a.mounts.map((m) => [m.mount, m]));
    for (const k of new Set([...mb.keys(), ...ma.keys()])) {
      const vb = mb.get(k)?.usedBytes ?? 0;
      const va = ma.get(k)?.usedBytes ?? 0;
      rows.push({
        source: 'tmpfs',
        name: `tmpfs ${k}`,
        detail: 'used',
        beforeBytes: vb,
        afterBytes: va,
        deltaBytes: va - vb,
        deltaCount: (ma.get(k)?.inodesUsed ?? 0) - (mb.get(k)?.inodesUsed ?? 0),
        countUnit: 'inodes',
      });
    }
    // Files: only the largest are listed, so a file missing on one side is 0 there (deleted,
    // or too small to be listed).
    const fb = new Map(b.files.map((f) => [f.path, f]));
    const fa = new Map(a.files.map((f) => [f.path, f]));
    for (const k of new Set([...fb.keys(), ...fa.keys()])) {
      const vb = fb.get(k)?.allocatedBytes ?? 0;
      const va = fa.get(k)?.allocatedBytes ?? 0;
      rows.push({
        source: 'tmpfs',
        name: k,
        detail: `file on tmpfs ${(fa.get(k) ?? fb.get(k))!.mount}`,
        beforeBytes: vb,
        afterBytes: va,
        deltaBytes: va - vb,
      });
    }
    return { rows };
  },

  layers: ['tmpfs', 'tmpfs-file'],
  async sample(snap, ctx) {
    const out: EntitySample[] = [];
    const filesNow = due(ctx.tick, ctx.options.tmpfsEvery ?? 6);
    // The mounts' usage at the kernel tables' cadence (SampleOptions.slabEvery: statfs of each
    // mount; Shmem in meminfo moves every tick), and with the files. The files at their own
    // cadence: a walk.
    if (!filesNow && !tablesDue(ctx)) return out;
    let listing: TmpfsListing | undefined;
    if (filesNow) listing = await ctx.data.get('tmpfs');
    else {
      const text = await snap.readText(TMPFS_MOUNTS_PATH);
      if (text !== undefined)
        listing = { ...parseTmpfsMounts(text, { file: snap.describe(TMPFS_MOUNTS_PATH) }), files: [] };
    }
    if (!listing) return out;
    ctx.layerRead('tmpfs');
    for (const m of listing.mounts)
      out.push({
        layer: 'tmpfs',
        key: m.mount,
        values: { used_bytes: m.usedBytes, inodes_used: m.inodesUsed, size_bytes: m.sizeBytes },
      });
    if (!filesNow || listing.notes.includes('files not listed in this capture')) return out;
    ctx.layerRead('tmpfs-file');
    ctx.state.files ??= new Set<string>();
    const tracked = ctx.state.files as Set<string>;
    const listed = new Set<string>();
    for (const f of listing.files) {
      if (f.allocatedBytes < MIN_FILE_BYTES && !tracked.has(f.path)) continue;
      listed.add(f.path);
      out.push({
        layer: 'tmpfs-file',
        key: f.path,
        label: f.mount,
        values: { allocated_bytes: f.allocatedBytes, size_bytes: f.sizeBytes },
      });
    }
    // Files no longer listed have ended (deleted, or no longer among the largest).
    for (const p of tracked) if (!listed.has(p)) tracked.delete(p);
    for (const p of listed) tracked.add(p);
    return out;
  },
};
