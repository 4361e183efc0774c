// A synthetic week of recording at 10 s for the leaks-week bench (bench/leaks-week/run.mjs),
// written through the real RecordingWriter of dist/. It follows test/browser/week.ts (a smaller
// week for the browser tests: 128 processes, 235 caches, two leaks) at the size issue 11 asks
// for, with the churn of a real machine:
//
// - 1,000 processes alive at any time: 879 that live all week (4 of them planted), 120 services
//   restarting now and then (lifetimes exponential, mean 8 h) and a short job every 2 minutes on
//   average (living 10 s to 5 min); pids drawn over the whole pid range (pid_max 4194304), keys
//   `pid:starttime` with the start time in clock ticks since boot, as /proc/PID/stat gives it.
//   Most processes are idle (a value changes a few times an hour, around a fixed level); one in
//   seven is busy (its RSS moves by up to 48 MiB, most ticks).
// - 300 slab caches (30 busy), 55 meminfo fields summing to MemTotal, 14 vmstat counters, buddy
//   free blocks per order for 3 zones, 20 vmalloc callers every 6th tick.
//
// Planted, so that the verdict can be checked (`PLANTED` below): two leaks (a Java-like heap
// whose GC sawtooth has a rising floor; slab kmalloc-192 growing 3 MiB/h with noise) and the
// benign shapes that must not be reported (a GC sawtooth with flat minima, a cache warming up
// over 36 h then flat, a 1.5 GiB spike freed after 2 h, reclaimable dentry and page cache
// growth, a service that grew and exited). Deterministic: one seeded PRNG, no clock.

import { mulberry32 } from '../../test/rng.mjs';

export const WEEK_PARAMS = Object.freeze({
  version: 1,
  seed: 20261111,
  ticks: 60_480,
  intervalMs: 10_000,
  startMs: Date.UTC(2026, 10, 2),
  processes: 1000,
  services: 120,
  slabCaches: 300,
  busySlabCaches: 30,
  vmallocCallers: 20,
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const PAGE = 4096;
const HOUR_TICKS = 360;
const PID_MAX = 4_194_304;
const HZ = 100;
/** The machine booted this long before the week starts: start times are clock ticks since boot. */
const BOOT_S = 3 * 86_400;

/** The planted processes (by comm) and slab caches, and what `leaks` must say of them. */
export const PLANTED = Object.freeze({
  leaks: [
    { id: 'process:java-leaky', kind: 'process-memory', what: 'GC sawtooth, floor +5 MiB/h' },
    { id: 'slab/kmalloc-192', kind: 'slab', what: 'slab cache +3 MiB/h with noise' },
  ],
  benign: [
    { id: 'process:node-api', what: 'GC sawtooth with flat minima' },
    { id: 'process:cache-warm', what: 'warm-up of 400 MiB over 36 h, then flat' },
    { id: 'process:batch-report', what: '1.5 GiB spike on day 4, freed after 2 h' },
    { id: 'process:svc-grows-exits', what: 'grew 40 MiB/h, exited on day 5 (listed as exited)' },
    { id: 'slab/dentry', what: 'reclaimable slab growing 8 MiB/h' },
    { id: 'meminfo/Cached-Shmem', what: 'page cache growing' },
  ],
  /** meminfo totals that contain the planted leaks: reported beside them, not false positives. */
  aggregates: ['meminfo/AnonPages', 'meminfo/SUnreclaim', 'meminfo/Slab', 'meminfo/Committed_AS'],
});

const COMMS = [
  'systemd',
  'sshd',
  'bash',
  'python3',
  'nginx',
  'postgres',
  'redis-server',
  'node',
  'java',
  'containerd-shim',
  'dockerd',
  'rsyslogd',
  'cron',
  'chronyd',
  'dbus-daemon',
  'kworker',
  'php-fpm',
  'ruby',
  'gunicorn',
  'envoy',
  'prometheus',
  'grafana',
  'haproxy',
  'memcached',
];
const SHORT_COMMS = ['sh', 'curl', 'logrotate', 'run-parts', 'git', 'awk', 'sed', 'grep', 'date'];
const NAMED_CACHES = [
  'kmalloc-8',
  'kmalloc-16',
  'kmalloc-32',
  'kmalloc-64',
  'kmalloc-96',
  'kmalloc-128',
  'kmalloc-192',
  'kmalloc-256',
  'kmalloc-512',
  'kmalloc-1k',
  'kmalloc-2k',
  'kmalloc-4k',
  'kmalloc-8k',
  'dentry',
  'inode_cache',
  'radix_tree_node',
  'ext4_inode_cache',
  'buffer_head',
  'filp',
  'vm_area_struct',
  'anon_vma',
  'anon_vma_chain',
  'task_struct',
  'mm_struct',
  'sighand_cache',
  'signal_cache',
  'files_cache',
  'TCP',
  'TCPv6',
  'UDP',
  'sock_inode_cache',
  'skbuff_head_cache',
  'pid',
  'cred_jar',
  'proc_inode_cache',
  'shmem_inode_cache',
];
const RECLAIMABLE = [
  'dentry',
  'inode_cache',
  'radix_tree_node',
  'ext4_inode_cache',
  'buffer_head',
  'proc_inode_cache',
  'shmem_inode_cache',
  'sock_inode_cache',
];
const VMSTAT = [
  'nr_free_pages',
  'pgfault',
  'pgmajfault',
  'pswpin',
  'pswpout',
  'oom_kill',
  'compact_stall',
  'pgscan_kswapd',
  'pgscan_direct',
  'pgsteal_kswapd',
  'pgsteal_direct',
  'workingset_refault_file',
  'workingset_refault_anon',
  'nr_zspages',
];
/** Fields that stay put all week (zeros and sizes): with the computed ones, 55 in all. */
const MEMINFO_STATIC = {
  SwapTotal: 4 * GiB,
  SwapFree: 4 * GiB,
  Zswap: 0,
  Zswapped: 0,
  Writeback: 0,
  AnonHugePages: 0,
  ShmemHugePages: 0,
  ShmemPmdMapped: 0,
  FileHugePages: 0,
  FilePmdMapped: 0,
  CmaTotal: 0,
  CmaFree: 0,
  Hugepagesize: 2 * MiB,
  Hugetlb: 0,
  DirectMap4k: 512 * MiB,
  DirectMap2M: 30 * GiB,
  DirectMap1G: 2 * GiB,
  VmallocTotal: 32 * 1024 * GiB,
  VmallocChunk: 0,
  NFS_Unstable: 0,
  WritebackTmp: 0,
  SecPageTables: 0,
  Mlocked: 0,
  Unevictable: 0,
};
const HUGEPAGES = ['HugePages_Total', 'HugePages_Free', 'HugePages_Rsvd', 'HugePages_Surp'];

const pages = (bytes) => Math.round(bytes / PAGE) * PAGE;

/**
 * Write the week into `db` with `Writer` (dist/store/recording.js RecordingWriter). `onProgress`
 * is called every 1,000 ticks. Returns the number of processes it started in all.
 */
export function writeWeek(Writer, db, params = WEEK_PARAMS, onProgress = () => {}) {
  const P = params;
  const r = mulberry32(P.seed);
  const w = new Writer(db, {
    interval_ms: String(P.intervalMs),
    page_size: String(PAGE),
    slab_reclaimable: JSON.stringify(RECLAIMABLE),
    synthetic: `bench/leaks-week/week.mjs ${JSON.stringify(P)}`,
  });
  const memTotal = 128 * GiB;
  const livePids = new Set();
  let started = 0;

  const newPid = () => {
    for (;;) {
      const pid = 2 + Math.floor(r() * (PID_MAX - 2));
      if (!livePids.has(pid)) {
        livePids.add(pid);
        return pid;
      }
    }
  };
  /** A process: fixed levels and how often its values move. `shape(k)` adds planted anon bytes. */
  const spawn = (k, comm, opts = {}) => {
    const pid = newPid();
    started++;
    const start = (BOOT_S + (k * P.intervalMs) / 1000) * HZ + Math.floor(r() * 900);
    const anon = opts.anon ?? pages(MiB + r() * r() * r() * 200 * MiB);
    const file = pages(512 * 1024 + r() * 60 * MiB);
    const busy = opts.busy ?? r() < 1 / 7;
    return {
      pid,
      key: `${pid}:${start}`,
      comm,
      busy,
      anon0: anon,
      // Already somewhere in its range: the sum over processes is level from the first tick.
      anon: opts.shape ? anon : anon + pages(r() * (busy ? 48 : 2) * MiB),
      file0: file,
      file,
      shmem: r() < 0.1 ? pages(r() * 8 * MiB) : 0,
      vsz0: pages(anon + file + 100 * MiB + r() * 2 * GiB),
      vsz: 0,
      threads0: 1 + Math.floor(r() * r() * 40),
      threads: 0,
      fds0: 3 + Math.floor(r() * r() * 200),
      fds: 0,
      shape: opts.shape,
      diesAt: opts.diesAt ?? Number.POSITIVE_INFINITY,
    };
  };
  const step = (p, k) => {
    // Idle: a value moves a few times an hour around its level; busy: most ticks, further.
    if (p.busy ? r() < 0.5 : r() < 0.006) p.anon = p.anon0 + pages(r() * (p.busy ? 48 : 2) * MiB);
    if (r() < (p.busy ? 0.05 : 0.002)) p.file = p.file0 + pages(r() * 4 * MiB);
    if (r() < 0.0005 || p.threads === 0) p.threads = p.threads0 + Math.floor(r() * 3);
    if (r() < (p.busy ? 0.02 : 0.001) || p.fds === 0) p.fds = p.fds0 + Math.floor(r() * 8);
    const anon = p.shape ? p.anon + p.shape(k) : p.anon;
    p.vsz = p.vsz0 + (anon - p.anon0);
    return anon;
  };

  const forever = [];
  for (let i = 0; i < P.processes - P.services - 5; i++) forever.push(spawn(0, COMMS[i % COMMS.length]));
  // The planted ones (levels fixed, the shapes in anon bytes on top).
  const day4 = 3 * 24 * HOUR_TICKS;
  forever.push(
    spawn(0, 'java-leaky', {
      busy: false,
      anon: 600 * MiB,
      // Floor +5 MiB/h; the heap fills 96 MiB over 90 minutes, then a collection.
      shape: (k) => pages((k / HOUR_TICKS) * 5 * MiB + ((k % 540) / 540) * 96 * MiB),
    }),
    spawn(0, 'node-api', {
      busy: false,
      anon: 180 * MiB,
      shape: (k) => pages(((k % 180) / 180) * 80 * MiB),
    }),
    spawn(0, 'cache-warm', {
      busy: false,
      anon: 50 * MiB,
      shape: (k) => pages(400 * MiB * (1 - Math.exp(-k / (12 * HOUR_TICKS)))),
    }),
    spawn(0, 'batch-report', {
      busy: false,
      anon: 120 * MiB,
      shape: (k) =>
        k < day4 || k >= day4 + 2 * HOUR_TICKS + 60
          ? 0
          : k < day4 + 2 * HOUR_TICKS
            ? pages(((k - day4) / (2 * HOUR_TICKS)) * 1.5 * GiB)
            : pages((1 - (k - day4 - 2 * HOUR_TICKS) / 60) * 1.5 * GiB),
    }),
  );
  const lifetime = () => Math.max(30, Math.round(-Math.log(1 - r()) * 8 * HOUR_TICKS));
  // A service that grows 40 MiB/h from day 2 and exits on day 5: memory given back.
  const services = [
    spawn(0, 'svc-grows-exits', {
      busy: false,
      diesAt: 5 * 24 * HOUR_TICKS,
      shape: (k) => (k < 24 * HOUR_TICKS ? 0 : pages(((k - 24 * HOUR_TICKS) / HOUR_TICKS) * 40 * MiB)),
    }),
  ];
  for (let i = 1; i < P.services; i++)
    services.push(spawn(0, COMMS[(i * 7) % COMMS.length], { diesAt: lifetime() }));
  let short = [];

  const cacheNames = Array.from({ length: P.slabCaches }, (_, i) => NAMED_CACHES[i] ?? `cache-${i}`);
  const caches = cacheNames.map((name, i) => {
    const objSize = /^kmalloc-(\d+)(k?)$/.exec(name);
    const size = objSize ? Number(objSize[1]) * (objSize[2] ? 1024 : 1) : 64 + Math.floor(r() * 1000);
    const base = pages(64 * 1024 + r() * r() * 40 * MiB);
    return { name, size, base, bytes: base, busy: i < P.busySlabCaches || name === 'kmalloc-192' };
  });
  const vmallocBase = Array.from({ length: P.vmallocCallers }, () => pages(64 * 1024 + r() * 16 * MiB));
  let vmstat = VMSTAT.map(() => Math.floor(r() * 1e6));

  for (let k = 0; k < P.ticks; k++) {
    const h = k / HOUR_TICKS;
    const ents = [];
    // Processes.
    let anonTotal = 0;
    let shmemTotal = 0;
    let threadsTotal = 0;
    const emit = (p) => {
      const anon = step(p, k);
      anonTotal += anon;
      shmemTotal += p.shmem;
      threadsTotal += p.threads;
      ents.push({
        layer: 'process',
        key: p.key,
        label: p.comm,
        pid: p.pid,
        values: {
          rss_bytes: anon + p.file + p.shmem,
          anon_bytes: anon,
          file_bytes: p.file,
          shmem_bytes: p.shmem,
          swap_bytes: 0,
          vsz_bytes: p.vsz,
          threads: p.threads,
          fds: p.fds,
        },
      });
    };
    for (const p of forever) emit(p);
    for (let i = 0; i < services.length; i++) {
      let p = services[i];
      if (k >= p.diesAt) {
        livePids.delete(p.pid);
        p = spawn(k, COMMS[Math.floor(r() * COMMS.length)], { diesAt: k + lifetime() });
        services[i] = p;
      }
      emit(p);
    }
    if (r() < 1 / 12)
      short.push(
        spawn(k, SHORT_COMMS[Math.floor(r() * SHORT_COMMS.length)], {
          busy: true,
          anon: pages(MiB + r() * 20 * MiB),
          diesAt: k + 1 + Math.floor(r() * 30),
        }),
      );
    short = short.filter((p) => {
      if (k < p.diesAt) return true;
      livePids.delete(p.pid);
      return false;
    });
    for (const p of short) emit(p);

    // Slab: busy caches move every tick, the rest now and then; kmalloc-192 leaks, dentry grows.
    let slabTotal = 0;
    let reclaimableTotal = 0;
    for (const c of caches) {
      if (c.name === 'kmalloc-192') c.bytes = c.base + pages(h * 3 * MiB + r() * 2 * MiB);
      else if (c.name === 'dentry') c.bytes = c.base + pages(h * 8 * MiB + r() * MiB);
      else if (c.busy ? r() < 0.8 : r() < 0.01) c.bytes = c.base + pages(r() * (c.busy ? 3 : 0.5) * MiB);
      slabTotal += c.bytes;
      if (RECLAIMABLE.includes(c.name)) reclaimableTotal += c.bytes;
      ents.push({
        layer: 'slab',
        key: c.name,
        values: { bytes: c.bytes, active_objs: Math.floor((c.bytes / c.size) * 0.93) },
      });
    }

    // meminfo: the accounting identity holds (MemFree is what is left).
    const sunreclaim = slabTotal - reclaimableTotal;
    const cachedProper = pages(4 * GiB + h * 6 * MiB + Math.sin(k / 997) * 256 * MiB);
    const shmem = 200 * MiB + shmemTotal;
    const cached = cachedProper + shmem;
    const buffers = pages(300 * MiB + r() * 4 * MiB);
    const kernelStack = threadsTotal * 16 * 1024;
    const pageTables = pages(anonTotal / 256);
    const vmallocUsed = 90 * MiB;
    const percpu = 12 * MiB;
    const unaccounted = pages(150 * MiB + r() * 2 * MiB);
    const memFree =
      memTotal -
      anonTotal -
      cached -
      buffers -
      slabTotal -
      kernelStack -
      pageTables -
      vmallocUsed -
      percpu -
      unaccounted;
    const meminfo = {
      MemTotal: memTotal,
      MemFree: memFree,
      MemAvailable: memFree + cachedProper + reclaimableTotal + buffers,
      Buffers: buffers,
      Cached: cached,
      SwapCached: 0,
      Active: pages(anonTotal + cached / 2),
      Inactive: pages(cached / 2),
      'Active(anon)': anonTotal,
      'Inactive(anon)': shmem,
      'Active(file)': pages(cachedProper / 2),
      'Inactive(file)': pages(cachedProper / 2),
      Dirty: pages(r() * 8 * MiB),
      AnonPages: anonTotal,
      Mapped: 700 * MiB,
      Shmem: shmem,
      KReclaimable: reclaimableTotal,
      Slab: slabTotal,
      SReclaimable: reclaimableTotal,
      SUnreclaim: sunreclaim,
      KernelStack: kernelStack,
      PageTables: pageTables,
      CommitLimit: memTotal / 2 + 4 * GiB,
      Committed_AS: pages(anonTotal * 1.6),
      VmallocUsed: vmallocUsed,
      Percpu: percpu,
      'Cached-Shmem': cachedProper,
      ...MEMINFO_STATIC,
    };
    for (const key in meminfo) ents.push({ layer: 'meminfo', key, values: { bytes: meminfo[key] } });
    for (const key of HUGEPAGES) ents.push({ layer: 'meminfo', key, values: { count: 0 } });
    ents.push({ layer: 'unaccounted', key: 'unaccounted', values: { bytes: unaccounted } });

    // vmstat counters: faults every tick, reclaim now and then.
    vmstat = vmstat.map((v, i) =>
      i === 0 ? memFree / PAGE : i === 13 ? 0 : i <= 2 || r() < 0.05 ? v + Math.floor(r() * 5000) : v,
    );
    VMSTAT.forEach((key, i) => {
      ents.push({ layer: 'vmstat', key, values: { count: vmstat[i] } });
    });
    // buddy: Normal's low orders follow MemFree, the small zones hardly move.
    for (const [zone, share] of [
      ['DMA', 0],
      ['DMA32', 0.1],
      ['Normal', 0.9],
    ]) {
      const free = zone === 'DMA' ? 15 * MiB : pages(memFree * share);
      const values = { free_bytes: free };
      let rest = free / PAGE;
      for (let order = 10; order >= 0; order--) {
        const n = order === 0 ? rest : Math.floor((rest * 0.3) / 2 ** order);
        values[`order${order}`] = n;
        rest -= n * 2 ** order;
      }
      ents.push({ layer: 'buddy', key: `Node 0 ${zone}`, values });
    }
    if (k % 6 === 0)
      vmallocBase.forEach((base, i) => {
        const bytes = i === 0 ? base + pages(r() * 4 * MiB) : base;
        ents.push({
          layer: 'vmalloc',
          key: `caller_${i}`,
          values: { bytes, areas: Math.ceil(bytes / (256 * 1024)) },
        });
      });

    w.writeTick({ tMs: P.startMs + k * P.intervalMs, readMs: 40 + r() * 40, entities: ents });
    if ((k + 1) % 1000 === 0) onProgress(k + 1);
  }
  w.close();
  return { processesStarted: started };
}
