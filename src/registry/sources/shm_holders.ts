import type { EntitySample } from '../../model/samples.js';
import { procPath, type Snapshot, sourceLocation } from '../../model/snapshot.js';
import { formatBytes } from '../../model/units.js';
import { type MapsEntry, parseFdListing, parseMaps } from '../../sources/fd_listing.js';
import { PF_KTHREAD, parseProcStat } from '../../sources/proc_stat.js';
import { parseSmaps } from '../../sources/smaps.js';
import { mountOf } from '../../sources/tmpfs.js';
import { due, type Finding, type SourceEntry } from '../types.js';

/**
 * Who holds shared memory: every process's open fds (`proc/<pid>/fd`) and mappings
 * (/proc/PID/maps, or smaps in a capture) matched against the objects shmem is made of:
 *
 * | object | how a process shows it | key |
 * |---|---|---|
 * | a file on a tmpfs mount (POSIX shm is /dev/shm) | fd or mapping of the path | `tmpfs:PATH` |
 * | a deleted file on tmpfs, still open | `PATH (deleted)` | `deleted:INODE:PATH` |
 * | a memfd (memfd_create) | `/memfd:NAME (deleted)` | `memfd:INODE:NAME` |
 * | a System V segment | a mapping `/SYSV%08x (deleted)` whose inode is the shmid | `sysv:SHMID` |
 *
 * Shared anonymous mappings (`/dev/zero (deleted)`, `[anon_shmem:...]`) belong to their one
 * process and are in its RssShmem; they are not objects here.
 */

export type ShmObjectKind = 'tmpfs' | 'deleted' | 'memfd' | 'sysv';

export interface ShmObject {
  kind: ShmObjectKind;
  key: string;
  /** The path, `/memfd:NAME`, or `SysV shmid N`. */
  name: string;
  inode?: number;
}

export interface ShmHolder {
  object: ShmObject;
  pid: number;
  comm: string;
  startTicks?: number;
  /** Open fds on the object, and how many of them are open for writing. */
  fds: number[];
  writableFds: number;
  /** Bytes of the process's mappings of the object (the VMA sizes). */
  mappedBytes: number;
  /** Resident bytes of those mappings, when smaps was read. */
  mappedRssBytes?: number;
  /** The object's allocated bytes as its open fd shows (memfds and deleted files). */
  objectBytes?: number;
}

export interface ShmHolders {
  holders: ShmHolder[];
  /** Processes whose fds and maps could be read. */
  processesRead: number;
}

declare module '../types.js' {
  interface ReportSections {
    shmHolders?: {
      /** The objects held, largest first, each with its holders. */
      objects: { object: ShmObject; bytes: number | undefined; holders: ShmHolder[] }[];
      objectCount: number;
      /** Bytes of deleted tmpfs files that are still open (freed when the last holder closes). */
      deletedBytes: number;
      processesRead: number;
    };
  }
}

/** comm and start time of a process, from its stat (undefined when gone). */
export async function processIdentity(
  snap: Snapshot,
  pid: number,
): Promise<{ comm: string; startTicks: number; kernelThread: boolean } | undefined> {
  const text = await snap.readText(procPath(pid, 'stat'));
  if (text === undefined || text === '') return undefined;
  try {
    const s = parseProcStat(text);
    return { comm: s.comm, startTicks: s.startTimeTicks, kernelThread: (s.flags & PF_KTHREAD) !== 0 };
  } catch {
    return undefined;
  }
}

const DELETED = ' (deleted)';

/**
 * What shared memory object an fd target or a mapping's path is, given the tmpfs mount points.
 * `inode` is the mapping's inode column or the fd's stat (for SysV mappings: the shmid).
 */
export function classifyShm(
  path: string,
  inode: number | undefined,
  tmpfsMounts: readonly string[],
): ShmObject | undefined {
  if (path.startsWith('/memfd:')) {
    const name = path.endsWith(DELETED) ? path.slice(0, -DELETED.length) : path;
    return {
      kind: 'memfd',
      key: `memfd:${inode ?? '?'}:${name.slice('/memfd:'.length)}`,
      name,
      ...(inode !== undefined ? { inode } : {}),
    };
  }
  if (path.endsWith(DELETED)) {
    const p = path.slice(0, -DELETED.length);
    // ipc/shm.c newseg: the segment's file is "SYSV%08x" (the key) and its inode number the shmid.
    if (/^\/SYSV[0-9a-f]{8}$/.test(p) && inode !== undefined)
      return { kind: 'sysv', key: `sysv:${inode}`, name: `SysV shmid ${inode}`, inode };
    if (!path.startsWith('/') || mountOf(p, tmpfsMounts) === undefined) return undefined;
    return {
      kind: 'deleted',
      key: `deleted:${inode ?? '?'}:${p}`,
      name: `${p} (deleted)`,
      ...(inode !== undefined ? { inode } : {}),
    };
  }
  if (!path.startsWith('/') || mountOf(path, tmpfsMounts) === undefined) return undefined;
  return { kind: 'tmpfs', key: `tmpfs:${path}`, name: path };
}

export interface ScanOptions {
  /** tmpfs mount points (the snapshot's tmpfs listing). */
  tmpfsMounts: readonly string[];
  /** Keep only objects this accepts (default: every object). */
  want?: (o: ShmObject) => boolean;
  /** Read smaps for Rss of the matched mappings (default: only when maps is missing). */
  rss?: boolean;
  pidFilter?: (pid: number) => boolean;
}

/** Read every process's fds and mappings for the shared memory objects they hold. */
export async function scanShmHolders(snap: Snapshot, opts: ScanOptions): Promise<ShmHolders> {
  const holders: ShmHolder[] = [];
  let processesRead = 0;
  const want = opts.want ?? (() => true);
  for (const pid of await snap.pids()) {
    if (opts.pidFilter && !opts.pidFilter(pid)) continue;
    const mine = new Map<string, ShmHolder>();
    const holder = (o: ShmObject): ShmHolder => {
      let h = mine.get(o.key);
      if (!h) {
        h = { object: o, pid, comm: '', fds: [], writableFds: 0, mappedBytes: 0 };
        mine.set(o.key, h);
      }
      return h;
    };
    let read = false;
    const fdText = await snap.readText(procPath(pid, 'fd'));
    if (fdText !== undefined) {
      read = true;
      let fds: ReturnType<typeof parseFdListing> = [];
      try {
        fds = parseFdListing(fdText, { file: snap.describe(procPath(pid, 'fd')) });
      } catch {}
      for (const f of fds) {
        const o = classifyShm(f.target, f.inode, opts.tmpfsMounts);
        if (!o || !want(o)) continue;
        const h = holder(o);
        h.fds.push(f.fd);
        if (f.mode === 'w' || f.mode === 'rw') h.writableFds++;
        if (f.allocatedBytes !== undefined) h.objectBytes = Math.max(h.objectBytes ?? 0, f.allocatedBytes);
      }
    }
    // Mappings: maps live (cheap), smaps in a capture (which has no maps).
    let maps: (MapsEntry & { rss?: number })[] | undefined;
    const mapsText = opts.rss ? undefined : await snap.readText(procPath(pid, 'maps'));
    if (mapsText !== undefined && mapsText !== '') {
      try {
        maps = parseMaps(mapsText, { file: snap.describe(procPath(pid, 'maps')) });
      } catch {}
    } else {
      const smapsText = await snap.readText(procPath(pid, 'smaps'));
      if (smapsText !== undefined && smapsText !== '') {
        try {
          maps = parseSmaps(smapsText, { file: snap.describe(procPath(pid, 'smaps')) }).map((m) => ({
            start: m.start,
            end: m.end,
            perms: m.perms,
            dev: m.dev,
            inode: m.inode,
            pathname: m.pathname,
            sizeBytes: m.rangeBytes,
            rss: m.bytes.Rss ?? 0,
          }));
        } catch {}
      }
    }
    if (maps) {
      read = true;
      for (const m of maps) {
        if (!m.pathname.startsWith('/')) continue;
        const o = classifyShm(m.pathname, m.inode, opts.tmpfsMounts);
        if (!o || !want(o)) continue;
        const h = holder(o);
        h.mappedBytes += m.sizeBytes;
        if (m.rss !== undefined) h.mappedRssBytes = (h.mappedRssBytes ?? 0) + m.rss;
      }
    }
    if (read) processesRead++;
    if (mine.size === 0) continue;
    const id = await processIdentity(snap, pid);
    if (!id || id.kernelThread) continue; // exited meanwhile
    for (const h of mine.values()) {
      h.comm = id.comm;
      h.startTicks = id.startTicks;
      holders.push(h);
    }
  }
  return { holders, processesRead };
}

/** The tmpfs mount points of a snapshot (its listing), or none. */
async function tmpfsMountPoints(data: {
  get(name: 'tmpfs'): Promise<{ mounts: { mount: string }[] } | undefined>;
}): Promise<string[]> {
  const l = await data.get('tmpfs').catch(() => undefined);
  return (l?.mounts ?? []).map((m) => m.mount);
}

/** How a holder holds an object, in words: `fd 3 (w), mapped 64.0 MiB`. */
export function holdWords(h: { fds: readonly number[]; writableFds: number; mappedBytes: number }): string {
  const parts: string[] = [];
  if (h.fds.length) {
    const list = h.fds.slice(0, 3).join(',') + (h.fds.length > 3 ? ',…' : '');
    parts.push(`fd ${list}${h.writableFds ? ` open for writing` : ''}`);
  }
  if (h.mappedBytes) parts.push(`mapped ${formatBytes(h.mappedBytes)}`);
  return parts.join(', ');
}

const MiB = 1024 * 1024;
/** An object is searched for again once it holds this much more than when last searched. */
const SEARCH_GROWTH_BYTES = MiB;

interface HolderState {
  /** Object key → its bytes when its holders were last looked up (or first seen). */
  marks: Map<string, number>;
  /** Shmem no listed object explains, when the invisible objects were last looked for. */
  hiddenMark: number | undefined;
}

/** proc/<pid>/fd and maps: the processes holding tmpfs files, SysV segments and memfds. */
export const shmHolders: SourceEntry<ShmHolders> = {
  name: 'shm_holders',
  location: sourceLocation('shm_holders'),
  title: 'processes holding shared memory open or mapped (/proc/<pid>/fd, maps)',
  async load(snap, _options, data) {
    // A capture without any fd listing (older ones) cannot say who holds files open.
    const pids = await snap.pids();
    if (pids.length === 0) return undefined;
    let any = false;
    for (const pid of pids.slice(0, 8))
      if ((await snap.readText(procPath(pid, 'fd'))) !== undefined) any = true;
    if (!any) return undefined;
    return scanShmHolders(snap, { tmpfsMounts: await tmpfsMountPoints(data) });
  },
  absentReason: () => 'no proc/<pid>/fd listings in this capture',

  async report(h, ctx) {
    const sysv = await ctx.data.get('sysvipc_shm').catch(() => undefined);
    const tmpfsFiles = (await ctx.data.get('tmpfs').catch(() => undefined))?.files ?? [];
    const byObject = new Map<
      string,
      { object: ShmObject; bytes: number | undefined; holders: ShmHolder[] }
    >();
    for (const x of h.holders) {
      let e = byObject.get(x.object.key);
      if (!e) {
        e = { object: x.object, bytes: undefined, holders: [] };
        byObject.set(x.object.key, e);
      }
      e.holders.push(x);
      if (x.objectBytes !== undefined) e.bytes = Math.max(e.bytes ?? 0, x.objectBytes);
    }
    for (const e of byObject.values()) {
      if (e.bytes !== undefined) continue;
      if (e.object.kind === 'tmpfs')
        e.bytes = tmpfsFiles.find((f) => f.path === e.object.name)?.allocatedBytes;
      if (e.object.kind === 'sysv') {
        const s = sysv?.segments.find((x) => x.shmid === e.object.inode);
        if (s) e.bytes = s.rssBytes ?? s.sizeBytes;
      }
      // Mapped only (no fd): what the mappings hold resident, when smaps was read.
      if (e.bytes === undefined) {
        const rss = e.holders.map((x) => x.mappedRssBytes).filter((x) => x !== undefined);
        if (rss.length) e.bytes = Math.max(...rss);
      }
    }
    const objects = [...byObject.values()].sort(
      (a, b) => (b.bytes ?? -1) - (a.bytes ?? -1) || (a.object.key < b.object.key ? -1 : 1),
    );
    return {
      shmHolders: {
        objects: objects.slice(0, ctx.top),
        objectCount: objects.length,
        deletedBytes: objects
          .filter((o) => o.object.kind === 'deleted')
          .reduce((a, o) => a + (o.bytes ?? 0), 0),
        processesRead: h.processesRead,
      },
    };
  },

  findings(ctx) {
    const s = ctx.report.shmHolders;
    if (!s || s.deletedBytes < 16 * MiB) return [];
    const deleted = s.objects.filter((o) => o.object.kind === 'deleted');
    const who = deleted
      .flatMap((o) => o.holders.map((h) => `${h.comm} (pid ${h.pid}) ${holdWords(h)}: ${o.object.name}`))
      .slice(0, 3);
    const f: Finding = {
      severity: 'warning',
      title: `Deleted tmpfs files still open hold ${formatBytes(s.deletedBytes)}`,
      detail: `Their memory returns only when the last holder closes them: ${who.join('; ')}.`,
      next: deleted
        .flatMap((o) =>
          o.holders.map((h) => `ls -l /proc/${h.pid}/fd | grep deleted  (then restart or signal ${h.comm})`),
        )
        .slice(0, 2),
    };
    return [f];
  },

  tables(r) {
    const s = r.shmHolders;
    if (!s || s.objectCount === 0) return [];
    return [
      {
        source: 'shm_holders',
        title: `Shared memory held by processes (${s.objectCount} objects; ${s.processesRead} processes read)`,
        columns: [
          { header: 'OBJECT', max: 48 },
          { header: 'BYTES', align: 'right' },
          { header: 'HELD BY', max: 48 },
        ],
        rows: s.objects.map((o) => [
          o.object.name,
          o.bytes === undefined ? '-' : formatBytes(o.bytes),
          o.holders
            .slice(0, 2)
            .map((h) => `${h.comm} (${h.pid}) ${holdWords(h)}`)
            .join('; ') + (o.holders.length > 2 ? `; +${o.holders.length - 2}` : ''),
        ]),
      },
    ];
  },

  layers: ['shm-holder'],
  /**
   * At the `tmpfsEvery` cadence, and only when something grew: the holders of every tmpfs file
   * and SysV segment that holds 1 MiB more than when its holders were last looked up; and every
   * memfd and deleted tmpfs file when Shmem grew by 1 MiB more than the listed files and
   * segments explain. The search reads every process's fd directory and maps: never every tick.
   */
  async sample(snap, ctx) {
    if (!due(ctx.tick, ctx.options.tmpfsEvery ?? 6)) return [];
    ctx.state.h ??= { marks: new Map(), hiddenMark: undefined } satisfies HolderState;
    const st = ctx.state.h as HolderState;
    const listing = await ctx.data.get('tmpfs').catch(() => undefined);
    const sysv = await ctx.data.get('sysvipc_shm').catch(() => undefined);
    const wanted = new Set<string>();
    const seen = new Set<string>();
    const consider = (key: string, bytes: number) => {
      seen.add(key);
      const mark = st.marks.get(key);
      if (mark === undefined || bytes < mark) st.marks.set(key, bytes);
      else if (bytes - mark >= SEARCH_GROWTH_BYTES) {
        wanted.add(key);
        st.marks.set(key, bytes);
      }
    };
    for (const f of listing?.files ?? []) consider(`tmpfs:${f.path}`, f.allocatedBytes);
    for (const s of sysv?.segments ?? [])
      consider(`sysv:${s.shmid}`, s.rssBytes === undefined ? s.sizeBytes : s.rssBytes + (s.swapBytes ?? 0));
    for (const k of st.marks.keys()) if (!seen.has(k)) st.marks.delete(k);

    // Shmem that no listed file or segment explains: memfds, deleted files still open, small
    // files below the listing's cut.
    let searchHidden = false;
    const shmem = (await ctx.data.get('meminfo').catch(() => undefined))?.bytes.Shmem;
    if (shmem !== undefined && listing) {
      const listedFiles = listing.files.reduce((a, f) => a + f.allocatedBytes, 0);
      const segs = (sysv?.segments ?? []).reduce((a, s) => a + (s.rssBytes ?? 0), 0);
      const hidden = shmem - listedFiles - segs;
      if (st.hiddenMark === undefined || hidden < st.hiddenMark) st.hiddenMark = hidden;
      else if (hidden - st.hiddenMark >= SEARCH_GROWTH_BYTES) {
        searchHidden = true;
        st.hiddenMark = hidden;
      }
    }
    if (wanted.size === 0 && !searchHidden) return [];
    const found = await scanShmHolders(snap, {
      tmpfsMounts: (listing?.mounts ?? []).map((m) => m.mount),
      want: (o) => wanted.has(o.key) || (searchHidden && (o.kind === 'memfd' || o.kind === 'deleted')),
      ...(ctx.options.pidFilter ? { pidFilter: ctx.options.pidFilter } : {}),
    });
    ctx.layerRead('shm-holder');
    return found.holders
      .filter((h) => wanted.has(h.object.key) || (h.objectBytes ?? h.mappedBytes) >= MiB)
      .map((h): EntitySample => {
        const sparse: Record<string, number> = {
          fds: h.fds.length,
          fds_writable: h.writableFds,
          mapped_bytes: h.mappedBytes,
        };
        if (h.objectBytes !== undefined) sparse.object_bytes = h.objectBytes;
        if (h.fds.length) sparse.first_fd = h.fds[0]!;
        const e: EntitySample = {
          layer: 'shm-holder',
          key: `${h.object.key} ${h.pid}:${h.startTicks ?? ''}`,
          label: h.comm,
          pid: h.pid,
          sparse,
        };
        if (h.startTicks !== undefined) e.startTicks = h.startTicks;
        return e;
      });
  },
};
