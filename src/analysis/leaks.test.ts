import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_FIXTURES } from '../../test/paths.js';
import type { LoadedRecording, SeriesData } from '../model/samples.js';
import { RecordingReader } from '../store/recording.js';
import { analyzeLeaks, readByLeaks } from './leaks.js';

const MiB = 1024 * 1024;
const T0 = 1_800_000_000_000;

/** A series of 72 points every 5 s (6 minutes) built from f(seconds): known by construction. */
function s(
  layer: SeriesData['layer'],
  key: string,
  metric: string,
  f: (sec: number) => number,
  extra: Partial<SeriesData> = {},
): SeriesData {
  const t: number[] = [];
  const v: number[] = [];
  for (let i = 0; i < 72; i++) {
    t.push(T0 + i * 5000);
    v.push(Math.round(f(i * 5)));
  }
  return {
    id: 0,
    layer,
    key,
    label: undefined,
    pid: undefined,
    metric,
    unit: metric === 'fds' || metric === 'threads' ? 'count' : 'bytes',
    t,
    v,
    ...extra,
  };
}

function recording(series: SeriesData[], meta: Record<string, string> = {}): LoadedRecording {
  return { file: 'synthetic', meta, tickCount: 72, firstMs: T0, lastMs: T0 + 71 * 5000, series };
}

const proc = (pid: number, label: string) => ({ pid, label });

describe('analyzeLeaks on series with known shapes', () => {
  const rec = recording(
    [
      // pid 10: heap leak, 2 MiB/min; VSZ grows with it.
      s('process', '10:1', 'anon_bytes', (x) => 5 * MiB + (2 * MiB * x) / 60, proc(10, 'heapy')),
      s('process', '10:1', 'swap_bytes', () => 0, proc(10, 'heapy')),
      s('process', '10:1', 'vsz_bytes', (x) => 100 * MiB + (2 * MiB * x) / 60, proc(10, 'heapy')),
      // pid 20: threads never joined: VSZ +8 MiB every 10 s, anon flat, threads climb.
      s('process', '20:1', 'anon_bytes', () => 300 * 1024, proc(20, 'threads')),
      s('process', '20:1', 'vsz_bytes', (x) => 10 * MiB + Math.floor(x / 10) * 8 * MiB, proc(20, 'threads')),
      s('process', '20:1', 'threads', (x) => 1 + Math.floor(x / 10), proc(20, 'threads')),
      // pid 30: large and stable.
      s('process', '30:1', 'anon_bytes', () => 384 * MiB, proc(30, 'big')),
      // pid 40: warm-up then plateau.
      s('process', '40:1', 'anon_bytes', (x) => Math.min(x, 40) * MiB, proc(40, 'warm')),
      // pid 50: open fds grow.
      s('process', '50:1', 'fds', (x) => 3 + 2 * x, proc(50, 'sockets')),
      // kernel: an unreclaimable slab cache grows, a reclaimable one grows too, page cache grows.
      s('slab', 'TCP', 'bytes', (x) => 128 * 1024 + 12 * 1024 * x),
      s('slab', 'dentry', 'bytes', (x) => 60 * MiB + 20 * 1024 * x),
      s('meminfo', 'Cached-Shmem', 'bytes', (x) => 1000 * MiB + 2 * MiB * x),
      s('meminfo', 'Shmem', 'bytes', (x) => 8 * MiB + 64 * 1024 * x),
      s('meminfo', 'AnonPages', 'bytes', (x) => 500 * MiB + (2 * MiB * x) / 60),
      s('meminfo', 'MemAvailable', 'bytes', (x) => 20000 * MiB - 3 * MiB * x),
    ],
    { slab_reclaimable: JSON.stringify(['dentry', 'sock_inode_cache']) },
  );
  const r = analyzeLeaks(rec);
  const byId = (id: string) => r.suspects.filter((x) => x.id === id);

  it('reports a heap leak as process memory, not also as virtual memory', () => {
    const p = byId('process/10:1');
    expect(p.map((x) => x.kind)).toEqual(['process-memory']);
    expect(p[0]!.ratePerHour / (120 * MiB)).toBeGreaterThan(0.9);
    expect(p[0]!.ratePerHour / (120 * MiB)).toBeLessThan(1.1);
    expect(p[0]!.name).toBe('heapy (pid 10)');
  });

  it('reports threads never joined as a virtual-memory leak with the thread growth', () => {
    const kinds = byId('process/20:1').map((x) => x.kind);
    expect(kinds).toContain('process-virtual');
    expect(kinds).not.toContain('process-memory');
  });

  it('does not report a stable or a plateaued process', () => {
    expect(byId('process/30:1')).toEqual([]);
    expect(byId('process/40:1')).toEqual([]);
  });

  it('reports growing fds, and names that process beside a growing socket slab cache', () => {
    expect(byId('process/50:1').map((x) => x.kind)).toEqual(['process-fds']);
    const tcp = byId('slab/TCP')[0]!;
    expect(tcp.kind).toBe('slab');
    expect(tcp.related?.[0]).toMatch(/^sockets \(pid 50\) open fds/);
    expect(tcp.next).toMatch(/slub_debug=U,TCP/);
  });

  it('keeps page cache and reclaimable slab out of the suspects', () => {
    expect(byId('slab/dentry')).toEqual([]);
    expect(byId('meminfo/Cached-Shmem')).toEqual([]);
    expect(r.reclaimable.map((x) => x.id).sort()).toEqual(['meminfo/Cached-Shmem', 'slab/dentry']);
  });

  it('reports tmpfs growth as shmem', () => {
    expect(byId('meminfo/Shmem')[0]?.kind).toBe('shmem');
  });

  it('ranks byte suspects by rate, and counts each page once in the combined rate', () => {
    const bytes = r.suspects.filter((x) => x.unit === 'bytes');
    for (let i = 1; i < bytes.length; i++) expect(bytes[i]!.rank).toBeGreaterThan(bytes[i - 1]!.rank);
    // AnonPages is a suspect but holds pid 10's anon already: not added again.
    expect(byId('meminfo/AnonPages').length).toBe(1);
    const counted = r.suspects
      .filter((x) => ['process-memory', 'slab', 'shmem'].includes(x.kind))
      .reduce((a, x) => a + x.ratePerHour, 0);
    expect(r.combinedRatePerHour).toBeCloseTo(counted, 0);
    expect(r.hoursToExhaustion).toBeCloseTo((r.memAvailableBytes ?? 0) / r.combinedRatePerHour, 6);
    expect(r.memAvailableSlopePerHour).toBeCloseTo(-3 * MiB * 3600, -3);
  });

  it("lists the recorder's own growth apart from the suspects", () => {
    const r2 = analyzeLeaks(
      recording([s('process', '77:1', 'anon_bytes', (x) => 20 * MiB + (MiB * x) / 60, proc(77, 'node'))], {
        recorder_pid: '77',
      }),
    );
    expect(r2.suspects).toEqual([]);
    expect(r2.recorder.map((x) => x.name)).toEqual(['node (pid 77)']);
  });

  it('a flat recording has no suspects', () => {
    const flat = analyzeLeaks(recording([s('process', '1:1', 'anon_bytes', () => 5 * MiB, proc(1, 'idle'))]));
    expect(flat.suspects).toEqual([]);
    expect(flat.hoursToExhaustion).toBeUndefined();
  });
});

// A real recording: `npm run bench:leaks -- --keep` on this machine (Linux 6.18, 2 CPUs), cut
// down to the scenario processes and the kernel layers (bench/leaks/README in docs/recording.md).
const REAL = join(REPO_FIXTURES, 'recordings', 'bench-linux-6.18.db');

describe('analyzeLeaks on a real recording of the scenario suite', () => {
  it('the fixture is present', () => {
    expect(existsSync(REAL)).toBe(true);
  });
  const r = existsSync(REAL) ? new RecordingReader(REAL) : undefined;
  const rec = r?.load();
  r?.close();
  const rep = rec ? analyzeLeaks(rec) : undefined;
  const labels = JSON.parse(rec?.meta.bench_scenarios ?? '{}') as Record<
    string,
    { label: string; kind?: string }
  >;

  const isWho = (who: string, x: { id: string; name: string }) =>
    x.id === who || x.name.startsWith(`${who} (`);

  it('names every leaker with the right kind; only other leakers rank above it in its kind', () => {
    const leakers = Object.entries(labels).filter(([, sc]) => sc.label === 'leaker');
    expect(leakers.length).toBe(6);
    for (const [who, sc] of leakers) {
      const hit = rep!.suspects.find((x) => isWho(who, x));
      expect(hit, who).toBeDefined();
      expect(hit!.kind, who).toBe(sc.kind);
      const above = rep!.suspects.filter(
        (x) => x.kind === sc.kind && x.rank < hit!.rank && !leakers.some(([w]) => isWho(w, x)),
      );
      // Socket caches other than TCP (sock_inode_cache) belong to the same leaker.
      expect(
        above.filter((x) => x.id !== 'slab/sock_inode_cache').map((x) => x.name),
        who,
      ).toEqual([]);
    }
  });

  it('reports no benign scenario', () => {
    expect(Object.values(labels).filter((sc) => sc.label === 'benign').length).toBe(6);
    for (const [who, sc] of Object.entries(labels)) {
      if (sc.label !== 'benign') continue;
      expect(
        rep!.suspects.filter((x) => isWho(who, x)).map((x) => x.name),
        who,
      ).toEqual([]);
    }
  });
});

describe('what analyzeLeaks reads', () => {
  it('the series readByLeaks names give the same report as every series, with progress to the end', () => {
    if (!existsSync(REAL)) return;
    const r = new RecordingReader(REAL);
    try {
      const all = analyzeLeaks(r.load());
      const calls: [number, number][] = [];
      const some = r.load({ filter: (layer, _key, metric) => readByLeaks(layer, metric) });
      expect(some.series.length).toBeLessThan(r.load().series.length);
      expect(analyzeLeaks(some, { onProgress: (done, total) => calls.push([done, total]) })).toEqual(all);
      const total = calls[0]![1];
      expect(calls.at(-1)).toEqual([total, total]);
    } finally {
      r.close();
    }
  });

  it('reads the verdict metrics and leaves out context (rss, buddyinfo, vmstat)', () => {
    expect(readByLeaks('process', 'anon_bytes')).toBe(true);
    expect(readByLeaks('process', 'swap_bytes')).toBe(true);
    expect(readByLeaks('process', 'fds')).toBe(true);
    expect(readByLeaks('process', 'rss_bytes')).toBe(false);
    expect(readByLeaks('mapping', 'size_bytes')).toBe(false);
    expect(readByLeaks('meminfo', 'bytes')).toBe(true);
    expect(readByLeaks('sysv-shm', 'lpid')).toBe(true);
    expect(readByLeaks('buddy', 'free_bytes')).toBe(false);
    expect(readByLeaks('vmstat', 'count')).toBe(false);
  });
});
