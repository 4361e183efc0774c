import type { EntitySample } from '../../model/samples.js';
import { sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import {
  parseSysvipcShm,
  SHM_DEST,
  SHM_LOCKED,
  type SysvShm,
  type SysvShmSegment,
} from '../../sources/sysvipc_shm.js';
import { type DiffRow, type SourceEntry, tablesDue } from '../types.js';
import { readParsed } from './read.js';
import { processIdentity } from './shm_holders.js';

export interface SysvSegmentRow {
  shmid: number;
  /** The key as ipcs prints it: 0x and 8 hex digits. */
  key: string;
  sizeBytes: number;
  rssBytes?: number;
  swapBytes?: number;
  nattch: number;
  cpid: number;
  /** The creator's comm, when it still runs (pids are reused: checked against nothing else). */
  creator?: string;
  lpid: number;
  lastOp?: string;
  /** IPC_RMID'd while attached: freed at the last detach. */
  removed: boolean;
  locked: boolean;
}

declare module '../types.js' {
  interface ReportSections {
    sysvShm?: {
      segments: SysvSegmentRow[];
      count: number;
      /** Σ rss (or Σ size on kernels without the rss column). */
      residentBytes: number;
      sizeBytes: number;
      hasRss: boolean;
    };
  }
}

export function hexKey(key: number): string {
  return `0x${(key >>> 0).toString(16).padStart(8, '0')}`;
}

/** What a segment holds: rss + swap where the kernel prints them, else its size. */
export function segmentBytes(s: SysvShmSegment): number {
  return s.rssBytes === undefined ? s.sizeBytes : s.rssBytes + (s.swapBytes ?? 0);
}

/** /proc/sysvipc/shm: System V shared memory segments, with creator and last pid. */
export const sysvipcShm: SourceEntry<SysvShm> = {
  name: 'sysvipc_shm',
  location: sourceLocation('sysvipc_shm'),
  title: 'System V shared memory segments (/proc/sysvipc/shm)',
  load: (snap) => readParsed(snap, 'sysvipc_shm', parseSysvipcShm),
  recognise: (head) => /^\s*key\s+shmid\s+perms\s+size\s+cpid\s+lpid\s+nattch\b/.test(head),

  async report(shm, ctx) {
    const rows: SysvSegmentRow[] = [];
    for (const s of shm.segments) {
      const row: SysvSegmentRow = {
        shmid: s.shmid,
        key: hexKey(s.key),
        sizeBytes: s.sizeBytes,
        nattch: s.nattch,
        cpid: s.cpid,
        lpid: s.lpid,
        removed: (s.mode & SHM_DEST) !== 0,
        locked: (s.mode & SHM_LOCKED) !== 0,
      };
      if (s.rssBytes !== undefined) row.rssBytes = s.rssBytes;
      if (s.swapBytes !== undefined) row.swapBytes = s.swapBytes;
      rows.push(row);
    }
    rows.sort((a, b) => (b.rssBytes ?? b.sizeBytes) - (a.rssBytes ?? a.sizeBytes) || a.shmid - b.shmid);
    const top = rows.slice(0, ctx.top);
    for (const r of top) {
      const c = await processIdentity(ctx.snap, r.cpid);
      if (c) r.creator = c.comm;
      const l = r.lpid ? await processIdentity(ctx.snap, r.lpid) : undefined;
      if (l) r.lastOp = l.comm;
    }
    return {
      sysvShm: {
        segments: top,
        count: rows.length,
        residentBytes: shm.segments.reduce((a, s) => a + (s.rssBytes ?? s.sizeBytes), 0),
        sizeBytes: shm.segments.reduce((a, s) => a + s.sizeBytes, 0),
        hasRss: shm.hasRss,
      },
    };
  },

  tables(r) {
    const s = r.sysvShm;
    if (!s || s.count === 0) return [];
    const who = (pid: number, comm: string | undefined) =>
      pid === 0 ? '-' : comm ? `${comm} (${pid})` : String(pid);
    return [
      {
        source: 'sysvipc_shm',
        title: `System V shared memory (${s.count} segments, ${formatBytes(s.residentBytes)} ${s.hasRss ? 'resident' : 'in size'})`,
        columns: [
          { header: 'SHMID', align: 'right' },
          { header: 'KEY' },
          { header: 'SIZE', align: 'right' },
          { header: 'RSS', align: 'right' },
          { header: 'SWAP', align: 'right' },
          { header: 'NATTCH', align: 'right' },
          { header: 'CREATOR', max: 24 },
          { header: 'LAST', max: 24 },
        ],
        rows: s.segments.map((x) => [
          String(x.shmid),
          `${x.key}${x.removed ? ' (removed)' : ''}`,
          formatBytes(x.sizeBytes),
          x.rssBytes === undefined ? '-' : formatBytes(x.rssBytes),
          x.swapBytes === undefined ? '-' : formatBytes(x.swapBytes),
          String(x.nattch),
          who(x.cpid, x.creator),
          who(x.lpid, x.lastOp),
        ]),
      },
    ];
  },

  diff(b, a) {
    const before = new Map(b.segments.map((s) => [s.shmid, s]));
    const after = new Map(a.segments.map((s) => [s.shmid, s]));
    const rows: DiffRow[] = [];
    for (const id of new Set([...before.keys(), ...after.keys()])) {
      const sb = before.get(id);
      const sa = after.get(id);
      const s = (sa ?? sb)!;
      const vb = sb ? segmentBytes(sb) : 0;
      const va = sa ? segmentBytes(sa) : 0;
      rows.push({
        source: 'sysvipc_shm',
        name: `SysV shm ${id} (key ${hexKey(s.key)})`,
        detail: `created by pid ${s.cpid}, last attach/detach by pid ${s.lpid}`,
        beforeBytes: vb,
        afterBytes: va,
        deltaBytes: va - vb,
        deltaCount: (sa?.nattch ?? 0) - (sb?.nattch ?? 0),
        countUnit: 'attaches',
      });
    }
    return { rows };
  },

  layers: ['sysv-shm'],
  async sample(_snap, ctx) {
    // At the kernel tables' cadence (SampleOptions.slabEvery); Shmem in meminfo moves every tick.
    if (!tablesDue(ctx)) return [];
    const shm = await ctx.data.get('sysvipc_shm');
    if (!shm) return [];
    ctx.layerRead('sysv-shm');
    return shm.segments.map((s): EntitySample => {
      const values: Record<string, number> = {
        size_bytes: s.sizeBytes,
        nattch: s.nattch,
        lpid: s.lpid,
      };
      if (s.rssBytes !== undefined) values.rss_bytes = s.rssBytes;
      if (s.swapBytes !== undefined) values.swap_bytes = s.swapBytes;
      // The creator is the segment's pid: `leaks` names it beside the segment.
      return { layer: 'sysv-shm', key: String(s.shmid), label: `key ${hexKey(s.key)}`, pid: s.cpid, values };
    });
  },
};
