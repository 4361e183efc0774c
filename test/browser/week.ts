/**
 * A synthetic week at 10 s (60,480 ticks) written through the real RecordingWriter, with as
 * many entities as this project's CI VM records (docs/recording.md: 55 meminfo fields, 128
 * processes, 235 slab caches, 17 vmalloc callers, 14 vmstat counters, 3 buddy zones) and about
 * as many changed values per tick (~140 sample rows). Two things leak on purpose: the slab cache
 * `kmalloc-96` (+4 MiB/h, with noise) and the process `leaky` (+8 MiB/h anon, GC sawtooth
 * whose floor rises), so the suspects table has rows to click. Deterministic (a fixed seed).
 */
import type { EntitySample } from '../../src/model/samples.js';
import { RecordingWriter } from '../../src/store/recording.js';

export const WEEK_TICKS = 60_480;
export const WEEK_START_MS = Date.UTC(2026, 10, 1);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** xorshift32: the same numbers every run. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const MEMINFO_STATIC = [
  'SwapTotal',
  'SwapFree',
  'Zswap',
  'Zswapped',
  'Dirty',
  'Writeback',
  'AnonHugePages',
  'ShmemHugePages',
  'ShmemPmdMapped',
  'FileHugePages',
  'FilePmdMapped',
  'CmaTotal',
  'CmaFree',
  'Hugepagesize',
  'Hugetlb',
  'DirectMap4k',
  'DirectMap2M',
  'DirectMap1G',
  'VmallocTotal',
  'VmallocChunk',
  'Bounce',
  'NFS_Unstable',
  'WritebackTmp',
  'SecPageTables',
  'Unaccepted',
  'Mlocked',
  'Unevictable',
  'Active(file)',
  'Inactive(file)',
];

export function writeSyntheticWeek(db: string, ticks = WEEK_TICKS): { suspects: string[] } {
  const w = new RecordingWriter(db, {
    interval_ms: '10000',
    page_size: '4096',
    slab_reclaimable: JSON.stringify(['dentry', 'inode_cache', 'radix_tree_node']),
    synthetic: 'test/browser/week.ts',
  });
  const r = rng(42);
  const memTotal = 24 * GiB;
  const caches = Array.from({ length: 235 }, (_, i) =>
    i === 0 ? 'kmalloc-96' : i === 1 ? 'dentry' : i === 2 ? 'inode_cache' : `cache-${i}`,
  );
  const cacheBase = caches.map(() => Math.floor(r() * 4 * MiB) + 64 * 1024);
  const procs = Array.from({ length: 128 }, (_, i) => ({
    pid: 1000 + i,
    key: `${1000 + i}:${5000 + i * 7}`,
    label: i === 0 ? 'leaky' : `proc-${i}`,
    anon: Math.floor(r() * 200 * MiB) + MiB,
    file: Math.floor(r() * 50 * MiB),
    vsz: Math.floor(r() * 2 * GiB) + 100 * MiB,
    threads: 1 + Math.floor(r() * 20),
    fds: 3 + Math.floor(r() * 60),
  }));
  for (let k = 0; k < ticks; k++) {
    const tMs = WEEK_START_MS + k * 10_000;
    const hours = (k * 10) / 3600;
    const ents: EntitySample[] = [];
    // Slab: the leak plus noise on a few busy caches; most caches do not move between ticks.
    let slabTotal = 0;
    caches.forEach((name, i) => {
      let bytes = cacheBase[i]!;
      if (i === 0) bytes += Math.floor(hours * 4 * MiB) + Math.floor(r() * 64 * 1024);
      else if (i < 30) bytes += Math.floor(r() * 256) * 4096;
      slabTotal += bytes;
      ents.push({ layer: 'slab', key: name, values: { bytes, active_objs: Math.floor(bytes / 128) } });
    });
    // Processes: `leaky` saws (a GC) over a rising floor; the others stay, a few wobble.
    let anonTotal = 0;
    procs.forEach((p, i) => {
      let anon = p.anon;
      if (i === 0) anon += Math.floor(hours * 8 * MiB) + (k % 360) * 40 * 1024;
      else if (i < 20) anon += Math.floor(r() * 64) * 4096;
      anonTotal += anon;
      ents.push({
        layer: 'process',
        key: p.key,
        label: p.label,
        pid: p.pid,
        values: {
          rss_bytes: anon + p.file,
          anon_bytes: anon,
          file_bytes: p.file,
          shmem_bytes: 0,
          swap_bytes: 0,
          vsz_bytes: p.vsz,
          threads: p.threads,
          fds: p.fds,
        },
      });
    });
    const sreclaimable = cacheBase[1]! + cacheBase[2]!;
    const sunreclaim = slabTotal - sreclaimable;
    const cached = 6 * GiB + Math.floor(Math.sin(hours / 5) * 512 * MiB);
    const shmem = 300 * MiB;
    const kernelStack = 12 * MiB;
    const pageTables = 40 * MiB;
    const vmallocUsed = 60 * MiB;
    const percpu = 8 * MiB;
    const unaccounted = 120 * MiB + Math.floor(r() * 256) * 4096;
    const buffers = 200 * MiB;
    const memFree =
      memTotal -
      anonTotal -
      cached -
      buffers -
      sreclaimable -
      sunreclaim -
      kernelStack -
      pageTables -
      vmallocUsed -
      percpu -
      unaccounted;
    const meminfo: Record<string, number> = {
      MemTotal: memTotal,
      MemFree: memFree,
      MemAvailable: memFree + cached + sreclaimable - shmem,
      Buffers: buffers,
      Cached: cached,
      SwapCached: 0,
      Active: Math.floor(cached / 2) + anonTotal,
      Inactive: Math.floor(cached / 2),
      'Active(anon)': anonTotal,
      'Inactive(anon)': 0,
      AnonPages: anonTotal,
      Mapped: 400 * MiB,
      Shmem: shmem,
      KReclaimable: sreclaimable,
      Slab: slabTotal,
      SReclaimable: sreclaimable,
      SUnreclaim: sunreclaim,
      KernelStack: kernelStack,
      PageTables: pageTables,
      CommitLimit: memTotal / 2,
      Committed_AS: anonTotal * 2,
      VmallocUsed: vmallocUsed,
      Percpu: percpu,
      'Cached-Shmem': cached - shmem,
    };
    for (const f of MEMINFO_STATIC) meminfo[f] = 0;
    for (const [key, bytes] of Object.entries(meminfo))
      ents.push({ layer: 'meminfo', key, values: { bytes } });
    for (const key of ['HugePages_Total', 'HugePages_Free', 'HugePages_Rsvd', 'HugePages_Surp'])
      ents.push({ layer: 'meminfo', key, values: { count: 0 } });
    ents.push({ layer: 'unaccounted', key: 'unaccounted', values: { bytes: unaccounted } });
    for (let i = 0; i < 14; i++)
      ents.push({ layer: 'vmstat', key: `counter_${i}`, values: { count: i < 3 ? k * (i + 1) : 100 + i } });
    ['0/DMA', '0/DMA32', '0/Normal'].forEach((key, i) => {
      ents.push({
        layer: 'buddy',
        key,
        values: { free_bytes: i === 2 ? memFree - 400 * MiB : 200 * MiB },
      });
    });
    if (k % 6 === 0)
      for (let i = 0; i < 17; i++)
        ents.push({
          layer: 'vmalloc',
          key: `caller_${i}`,
          values: { bytes: (i + 1) * 256 * 1024, areas: i + 1 },
        });
    w.writeTick({ tMs, readMs: 40, entities: ents });
  }
  w.close();
  return { suspects: ['slab/kmalloc-96', `process/${procs[0]!.key}`] };
}
