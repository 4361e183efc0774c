import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../test/rng.mjs';
import { isMemsleuthError } from '../model/errors.js';
import type { EntitySample, Layer, LoadedRecording, SeriesData, TickSample } from '../model/samples.js';
import { Sampler } from '../record/sampler.js';
import { parseMeminfo } from '../sources/meminfo.js';
import { parseProcStat } from '../sources/proc_stat.js';
import { type LoadOptions, RecordingReader, RecordingWriter } from './recording.js';
import { SCHEMA_VERSION } from './schema.js';

const dir = mkdtempSync(join(tmpdir(), 'memsleuth-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('recording of the live machine', () => {
  const db = join(dir, 'live.db');
  const sampler = new Sampler({ pssEvery: 1, smapsEvery: 0 });
  const ticks: TickSample[] = [];
  let rec: LoadedRecording;
  let meminfo: ReturnType<typeof parseMeminfo>;
  let r: RecordingReader;
  // PSS is read again only for a process whose resident memory moved since its last reading:
  // this one touches 2 MiB more before each tick, so that it does here at every tick.
  const held: Buffer[] = [];
  beforeAll(async () => {
    const w = new RecordingWriter(db, { interval_ms: '1000' });
    for (let i = 0; i < 4; i++) {
      held.push(Buffer.alloc(2 << 20, 1));
      const s = await sampler.sample(1_800_000_000_000 + i * 1000);
      ticks.push(s);
      w.writeTick(s);
    }
    w.close();
    r = new RecordingReader(db);
    rec = r.load();
    meminfo = parseMeminfo(readFileSync('/proc/meminfo', 'utf8'));
  });
  afterAll(() => {
    r.close();
    held.length = 0;
  });

  it('stores every tick and the meta rows', () => {
    expect(rec.tickCount).toBe(4);
    expect(rec.firstMs).toBe(1_800_000_000_000);
    expect(rec.meta.interval_ms).toBe('1000');
  });

  it('reads back MemTotal at every tick as /proc/meminfo prints it', () => {
    const s = rec.series.find((x) => x.layer === 'meminfo' && x.key === 'MemTotal');
    expect(s?.v).toEqual([
      meminfo.bytes.MemTotal,
      meminfo.bytes.MemTotal,
      meminfo.bytes.MemTotal,
      meminfo.bytes.MemTotal,
    ]);
  });

  it('keys this process by pid and start time and carries unchanged values forward', () => {
    const start = parseProcStat(readFileSync('/proc/self/stat', 'utf8')).startTimeTicks;
    const key = `${process.pid}:${start}`;
    const vsz = rec.series.find((x) => x.layer === 'process' && x.key === key && x.metric === 'vsz_bytes');
    expect(vsz?.pid).toBe(process.pid);
    expect(vsz?.t.length).toBe(4);
    const fds = rec.series.find((x) => x.key === key && x.metric === 'fds');
    expect(fds?.v[0]).toBeGreaterThan(2);
    // PSS is sparse (read on its own cadence): one reading per tick here (the memory moved at
    // each), never carried.
    const pss = rec.series.find((x) => x.key === key && x.metric === 'pss_bytes');
    expect(pss?.v.length).toBe(4);
  });

  it('writes change-only rows: fewer rows than series × ticks', () => {
    const raw = new Database(db, { readonly: true });
    const rows = (raw.prepare('SELECT count(*) AS n FROM samples').get() as { n: number }).n;
    const series = (raw.prepare('SELECT count(*) AS n FROM series WHERE fill = 1').get() as { n: number }).n;
    raw.close();
    expect(rows).toBeLessThan(series * 4);
    expect(rows).toBeGreaterThanOrEqual(series);
  });

  it('records every slab cache of /proc/slabinfo', () => {
    const names = readFileSync('/proc/slabinfo', 'utf8')
      .split('\n')
      .slice(2)
      .filter((l) => l.trim())
      .map((l) => l.split(/\s+/)[0]);
    const stored = new Set(rec.series.filter((x) => x.layer === 'slab').map((x) => x.key));
    // Caches may come and go between the two reads; nearly all must be there.
    const missing = names.filter((n) => !stored.has(n!));
    expect(missing.length).toBeLessThanOrEqual(2);
    expect(stored.size).toBeGreaterThan(50);
  });

  it('has the accounting remainder, and knows the reclaimable slab caches from sysfs', async () => {
    expect(rec.series.some((x) => x.layer === 'unaccounted')).toBe(true);
    // dentry is created with SLAB_RECLAIM_ACCOUNT (fs/dcache.c); kmalloc caches are not.
    const reclaimable = await sampler.reclaimableSlabCaches();
    expect(reclaimable).toContain('dentry');
    expect(reclaimable).not.toContain('kmalloc-64');
  });
});

describe('entity lifetimes', () => {
  const base = 1_800_000_000_000;
  const proc = (pid: number, start: number, rss: number) => ({
    layer: 'process' as const,
    key: `${pid}:${start}`,
    label: 'p',
    pid,
    startTicks: start,
    values: { rss_bytes: rss },
  });

  it('a reused pid is a new process, and a vanished process stops at its last tick', () => {
    const db = join(dir, 'reuse.db');
    const w = new RecordingWriter(db);
    w.writeTick({ tMs: base, entities: [proc(100, 5, 1000)] });
    w.writeTick({ tMs: base + 1000, entities: [proc(100, 5, 2000)] });
    w.writeTick({ tMs: base + 2000, entities: [] });
    w.writeTick({ tMs: base + 3000, entities: [proc(100, 900, 50)] });
    w.close();
    const r = new RecordingReader(db);
    const s = r.load().series.filter((x) => x.layer === 'process');
    r.close();
    expect(s.map((x) => [x.key, x.v])).toEqual([
      ['100:5', [1000, 2000]],
      ['100:900', [50]],
    ]);
  });

  it('a process missed for one tick (a failed read) continues as the same entity', () => {
    const db = join(dir, 'missed.db');
    const w = new RecordingWriter(db);
    w.writeTick({ tMs: base, entities: [proc(7, 3, 100)] });
    w.writeTick({ tMs: base + 1000, entities: [] });
    w.writeTick({ tMs: base + 2000, entities: [proc(7, 3, 300)] });
    w.writeTick({ tMs: base + 3000, entities: [proc(7, 3, 300)] });
    w.close();
    const raw = new Database(db, { readonly: true });
    const n = raw.prepare("SELECT count(*) AS n FROM entities WHERE layer = 'process'").get() as {
      n: number;
    };
    raw.close();
    expect(n.n).toBe(1);
    const r = new RecordingReader(db);
    const s = r.load().series.find((x) => x.key === '7:3');
    r.close();
    expect(s?.v.slice(-2)).toEqual([300, 300]);
  });

  it('a slab cache missing from a tick is zero, not its last value', () => {
    const db = join(dir, 'zero.db');
    const w = new RecordingWriter(db);
    const slab = (bytes: number) => ({ layer: 'slab' as const, key: 'kmalloc-96', values: { bytes } });
    const other = { layer: 'slab' as const, key: 'dentry', values: { bytes: 1 } };
    w.writeTick({ tMs: base, entities: [slab(4096), other] });
    w.writeTick({ tMs: base + 1000, entities: [other] });
    w.writeTick({ tMs: base + 2000, entities: [slab(8192), other] });
    w.close();
    const r = new RecordingReader(db);
    const s = r.load().series.find((x) => x.key === 'kmalloc-96');
    r.close();
    expect(s?.v).toEqual([4096, 0, 8192]);
  });

  it('appending to an existing recording continues it; --since and thinning select ticks', () => {
    const db = join(dir, 'append.db');
    const e = (v: number) => [{ layer: 'meminfo' as const, key: 'Shmem', values: { bytes: v } }];
    let w = new RecordingWriter(db);
    for (let i = 0; i < 5; i++) w.writeTick({ tMs: base + i * 1000, entities: e(i < 3 ? 7 : 8) });
    w.close();
    w = new RecordingWriter(db);
    for (let i = 5; i < 10; i++) w.writeTick({ tMs: base + i * 1000, entities: e(8) });
    w.close();
    const r = new RecordingReader(db);
    expect(r.load().series[0]?.v).toEqual([7, 7, 7, 8, 8, 8, 8, 8, 8, 8]);
    expect(r.load({ sinceMs: base + 6000 }).series[0]?.v).toEqual([8, 8, 8, 8]);
    const thinned = r.load({ maxPoints: 4 }).series[0]!;
    expect(thinned.t.length).toBeLessThanOrEqual(5);
    expect(thinned.t[thinned.t.length - 1]).toBe(base + 9000);
    r.close();
  });
});

describe('reading some series only', () => {
  it('a layer or filter selection gives the same points as reading everything, since included', () => {
    const db = join(dir, 'select.db');
    const w = new RecordingWriter(db);
    const t0 = 1_800_000_000_000;
    for (let i = 0; i < 50; i++)
      w.writeTick({
        tMs: t0 + i * 1000,
        entities: [
          { layer: 'meminfo', key: 'Shmem', values: { bytes: 100 + Math.floor(i / 7) } },
          { layer: 'slab', key: 'kmalloc-96', values: { bytes: 4096 * (1 + (i % 5)), active_objs: i } },
          { layer: 'slab', key: 'dentry', values: { bytes: 8192 } },
          ...(i % 10 === 0 ? [{ layer: 'vmalloc' as const, key: 'x', sparse: { bytes: i } }] : []),
        ],
      });
    w.close();
    const r = new RecordingReader(db);
    for (const sinceMs of [undefined, t0 + 23_000]) {
      const all = r.load({ sinceMs, maxPoints: 1000 }).series;
      const pick = (layer: string, key: string, metric: string) =>
        all.find((x) => x.layer === layer && x.key === key && x.metric === metric);
      const one = r.load({
        sinceMs,
        maxPoints: 1000,
        filter: (l, k, m) => l === 'slab' && k === 'kmalloc-96' && m === 'bytes',
      }).series;
      expect(one).toEqual([pick('slab', 'kmalloc-96', 'bytes')]);
      const layer = r.load({ sinceMs, maxPoints: 1000, layers: ['meminfo', 'vmalloc'] }).series;
      expect(layer).toEqual([pick('meminfo', 'Shmem', 'bytes'), pick('vmalloc', 'x', 'bytes')]);
    }
    expect(r.span()).toEqual({ ticks: 50, firstMs: t0, lastMs: t0 + 49_000 });
    r.close();
  });
});

describe('bad databases', () => {
  it('one writer: a live claim is refused naming its pid; a dead or reused one is taken over', () => {
    const file = join(dir, 'claimed.db');
    new RecordingWriter(file).close();
    const claim = (pid: string, start: string) => {
      const d = new Database(file);
      d.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('writer_pid', ?), ('writer_start', ?)").run(
        pid,
        start,
      );
      d.close();
    };
    // pid 1 (init) is alive: its claim holds when the start time matches.
    const initStart = readFileSync('/proc/1/stat', 'utf8').split(') ')[1]!.split(' ')[19]!;
    claim('1', initStart);
    let err: unknown;
    try {
      new RecordingWriter(file);
    } catch (e) {
      err = e;
    }
    expect(isMemsleuthError(err) && err.message).toBe(`${file}: pid 1 is recording into it already`);
    expect(isMemsleuthError(err) && err.hint).toMatch(/stop pid 1 first, or record into another --db file/);
    // The same pid with another start time: a reused pid, the claim is stale.
    claim('1', 'not-its-start');
    new RecordingWriter(file).close();
    // A pid that does not exist.
    claim('4194303', '1');
    const w = new RecordingWriter(file);
    const meta = () => {
      const r = new RecordingReader(file);
      try {
        return r.meta();
      } finally {
        r.close();
      }
    };
    expect(meta().writer_pid).toBe(String(process.pid));
    w.close();
    expect(meta().writer_pid).toBeUndefined();
  });

  it('a path that is not a regular file is refused before SQLite touches it', () => {
    for (const f of ['/dev/null', dir]) {
      expect(() => new RecordingWriter(f)).toThrow(`${f}: not a regular file`);
      expect(() => new RecordingReader(f)).toThrow(`${f}: not a regular file`);
    }
  });

  it('a missing file is an IO error with a hint', () => {
    try {
      new RecordingReader(join(dir, 'nope.db'));
      expect.unreachable();
    } catch (e) {
      expect(isMemsleuthError(e) && e.code).toBe('IO');
    }
  });

  it('a file that is not a recording is BAD_INPUT', () => {
    const f = join(dir, 'garbage.db');
    writeFileSync(f, 'this is not sqlite at all, just text\n'.repeat(200));
    expect(() => new RecordingReader(f)).toThrow(/not a memsleuth recording/);
    const other = join(dir, 'other.db');
    const d = new Database(other);
    d.exec('CREATE TABLE t (x)');
    d.close();
    expect(() => new RecordingReader(other)).toThrow(/not a memsleuth recording/);
  });

  it('a recording from a newer schema is refused, not misread', () => {
    const f = join(dir, 'newer.db');
    const d = new Database(f);
    d.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    d.close();
    expect(() => new RecordingWriter(f)).toThrow(/newer than this memsleuth understands/);
  });
});

describe('entities that end when their layer is read without them', () => {
  it('ends a tmpfs file deleted between two reads, and carries its value no further', async () => {
    const file = `/dev/shm/memsleuth-store-test-${process.pid}.dat`;
    writeFileSync(file, Buffer.alloc(256 << 10, 1));
    const db = join(dir, 'ends.db');
    const sampler = new Sampler({ tmpfsEvery: 1, pidFilter: () => false });
    const w = new RecordingWriter(db);
    try {
      w.writeTick(await sampler.sample(1_800_000_000_000));
      w.writeTick(await sampler.sample(1_800_000_001_000));
      rmSync(file);
      w.writeTick(await sampler.sample(1_800_000_002_000));
      w.writeTick(await sampler.sample(1_800_000_003_000));
    } finally {
      rmSync(file, { force: true });
      w.close();
    }
    const r = new RecordingReader(db);
    try {
      const s = r
        .load()
        .series.find((x) => x.layer === 'tmpfs-file' && x.key === file && x.metric === 'allocated_bytes');
      expect(s?.v).toEqual([256 << 10, 256 << 10]);
      expect(s?.endedMs).toBe(1_800_000_001_000);
      // The mount lives on (other tests write to /dev/shm meanwhile: its bytes are theirs too).
      const shm = r
        .load()
        .series.find((x) => x.layer === 'tmpfs' && x.key === '/dev/shm' && x.metric === 'used_bytes');
      expect(shm?.t.length).toBe(4);
      expect(shm?.endedMs).toBeUndefined();
    } finally {
      r.close();
    }
  });
});

/**
 * The reader as it was before load() grouped samples per tick in SQL: one row at a time,
 * every selected series checked at every kept tick. The reference the faster paths must match.
 */
function loadOneRowAtATime(file: string, opts: LoadOptions = {}): SeriesData[] {
  const db = new Database(file, { readonly: true });
  try {
    const ticks = db
      .prepare('SELECT id, t_ms FROM ticks WHERE t_ms >= ? AND t_ms <= ? ORDER BY id')
      .all(opts.sinceMs ?? Number.MIN_SAFE_INTEGER, opts.untilMs ?? Number.MAX_SAFE_INTEGER) as {
      id: number;
      t_ms: number;
    }[];
    if (ticks.length === 0) return [];
    const tickMs = new Map(ticks.map((t) => [t.id, t.t_ms]));
    const firstTick = ticks[0]!.id;
    const lastTick = ticks[ticks.length - 1]!.id;
    const step = Math.ceil(ticks.length / Math.max(2, opts.maxPoints ?? 1500));
    const rows = db
      .prepare(
        `SELECT s.id, s.metric, s.unit, s.fill, e.layer, e.key, e.label, e.pid, e.first_tick, e.last_tick
         FROM series s JOIN entities e ON e.id = s.entity_id ORDER BY s.id`,
      )
      .all() as {
      id: number;
      metric: string;
      unit: 'bytes' | 'count';
      fill: number;
      layer: Layer;
      key: string;
      label: string | null;
      pid: number | null;
      first_tick: number;
      last_tick: number | null;
    }[];
    const accs = new Map<
      number,
      {
        data: SeriesData;
        fill: boolean;
        first: number;
        last: number;
        cur?: number;
        pending?: { t: number; v: number };
      }
    >();
    for (const r of rows) {
      if (opts.layers && !opts.layers.includes(r.layer)) continue;
      if (opts.filter && !opts.filter(r.layer, r.key, r.metric, r.label ?? undefined)) continue;
      const last = r.last_tick ?? Number.MAX_SAFE_INTEGER;
      if (last < firstTick || r.first_tick > lastTick) continue;
      const data: SeriesData = {
        id: r.id,
        layer: r.layer,
        key: r.key,
        label: r.label ?? undefined,
        pid: r.pid ?? undefined,
        metric: r.metric,
        unit: r.unit,
        t: [],
        v: [],
      };
      const endedMs = r.last_tick === null ? undefined : tickMs.get(r.last_tick);
      if (endedMs !== undefined) data.endedMs = endedMs;
      accs.set(r.id, { data, fill: r.fill === 1, first: r.first_tick, last });
    }
    const seed = db
      .prepare(
        `SELECT s.series_id, s.value FROM samples s
         JOIN (SELECT series_id, max(tick_id) AS tick_id FROM samples WHERE tick_id < ? GROUP BY series_id) m
         ON m.series_id = s.series_id AND m.tick_id = s.tick_id`,
      )
      .all(firstTick) as { series_id: number; value: number }[];
    for (const r of seed) {
      const a = accs.get(r.series_id);
      if (a?.fill) a.cur = r.value;
    }
    const samples = db
      .prepare(
        'SELECT tick_id, series_id, value FROM samples WHERE tick_id >= ? AND tick_id <= ? ORDER BY tick_id',
      )
      .all(firstTick, lastTick) as { tick_id: number; series_id: number; value: number }[];
    let j = 0;
    for (let i = 0; i < ticks.length; i++) {
      const tk = ticks[i]!;
      for (; j < samples.length && samples[j]!.tick_id <= tk.id; j++) {
        const a = accs.get(samples[j]!.series_id);
        if (!a) continue;
        if (a.fill) a.cur = samples[j]!.value;
        else a.pending = { t: tk.t_ms, v: samples[j]!.value };
      }
      if (i % step !== 0 && i !== ticks.length - 1) continue;
      for (const a of accs.values()) {
        if (a.fill) {
          if (a.cur === undefined || tk.id < a.first || tk.id > a.last) continue;
          a.data.t.push(tk.t_ms);
          a.data.v.push(a.cur);
        } else if (a.pending) {
          a.data.t.push(a.pending.t);
          a.data.v.push(a.pending.v);
          a.pending = undefined;
        }
      }
    }
    return [...accs.values()].map((a) => a.data).filter((s) => s.t.length > 0);
  } finally {
    db.close();
  }
}

describe('load, points and eachSeries on a recording with churn', () => {
  const base = 1_800_000_000_000;
  const db = join(dir, 'churn.db');
  const rng = mulberry32;

  const TICKS = 400;
  beforeAll(() => {
    const r = rng(7);
    const w = new RecordingWriter(db);
    // Processes come and go (a new pid when one ends), values change now and then, a slab cache
    // vanishes for a while (zero), PSS is sparse; values include doubles that need 17 digits.
    let procs = Array.from({ length: 12 }, (_, i) => ({
      pid: 100 + i,
      ends: 20 + Math.floor(r() * 300),
      rss: 4096,
    }));
    for (let k = 0; k < TICKS; k++) {
      procs = procs.map((p) =>
        k < p.ends
          ? p
          : { pid: 1000 + k * 10 + Math.floor(r() * 10), ends: k + 5 + Math.floor(r() * 200), rss: 4096 },
      );
      const ents: EntitySample[] = procs.map((p) => {
        if (r() < 0.3) p.rss = 4096 * Math.floor(1 + r() * 100);
        return {
          layer: 'process',
          key: `${p.pid}:${p.ends}`,
          label: `p${p.pid}`,
          pid: p.pid,
          values: { rss_bytes: p.rss, fds: 3 + (k % 4) },
          ...(k % 6 === 0 ? { sparse: { pss_bytes: p.rss / 3 } } : {}),
        };
      });
      if (k < 100 || k > 150)
        ents.push({ layer: 'slab', key: 'kmalloc-96', values: { bytes: 4096 * (1 + (k % 9)) } });
      ents.push({ layer: 'meminfo', key: 'MemFree', values: { bytes: 1e9 * r() + (k + 1) / 3 } });
      w.writeTick({ tMs: base + k * 10_000, entities: ents });
    }
    w.close();
  });

  const cases: LoadOptions[] = [
    {},
    { maxPoints: 7 },
    { maxPoints: 50, sinceMs: base + 1_234_000 },
    { sinceMs: base + 500_000, untilMs: base + 2_500_000, maxPoints: 33 },
    { layers: ['process'], maxPoints: 100 },
    { filter: (_l, _k, m) => m === 'pss_bytes' || m === 'bytes', maxPoints: 20 },
  ];

  it('load() gives exactly what reading one row at a time gives, doubles to the last bit', () => {
    const r = new RecordingReader(db);
    try {
      for (const opts of cases) {
        const got = r.load(opts).series;
        expect(got.length).toBeGreaterThan(0);
        expect(got).toEqual(loadOneRowAtATime(db, opts));
      }
      const free = r.load().series.find((s) => s.key === 'MemFree')!;
      expect(free.v.filter((x) => !Number.isInteger(x)).length).toBeGreaterThan(TICKS / 2);
    } finally {
      r.close();
    }
  });

  it('points() gives the same points tick by tick, in series order within a tick', () => {
    const r = new RecordingReader(db);
    try {
      for (const opts of cases) {
        const want = r.load(opts).series;
        const got = new Map<number, { t: number[]; v: number[] }>();
        let lastT = Number.NEGATIVE_INFINITY;
        for (const tick of r.points(opts)) {
          expect(tick.tMs).toBeGreaterThan(lastT);
          lastT = tick.tMs;
          const ids = tick.points.map((p) => p.series.id);
          expect(ids).toEqual([...ids].sort((a, b) => a - b));
          for (const p of tick.points) {
            const s = got.get(p.series.id) ?? { t: [], v: [] };
            s.t.push(p.t);
            s.v.push(p.v);
            got.set(p.series.id, s);
          }
        }
        expect(got.size).toBe(want.length);
        for (const s of want) expect(got.get(s.id)).toEqual({ t: s.t, v: s.v });
      }
    } finally {
      r.close();
    }
  });

  it("eachSeries() gives load()'s series in order, whatever the batch size", () => {
    const r = new RecordingReader(db);
    try {
      for (const opts of cases) {
        const want = r.load(opts).series;
        for (const budget of [1, 500, 1e9]) expect([...r.eachSeries(opts, budget)]).toEqual(want);
      }
    } finally {
      r.close();
    }
  });

  it('reports progress up to every tick, and shares t between series of one lifetime', () => {
    const r = new RecordingReader(db);
    try {
      const calls: [number, number][] = [];
      const rec = r.load({ onProgress: (done, total) => calls.push([done, total]) });
      expect(calls.at(-1)).toEqual([TICKS, TICKS]);
      const byKey = new Map<string, SeriesData[]>();
      for (const s of rec.series) byKey.set(s.key, [...(byKey.get(s.key) ?? []), s]);
      const proc = [...byKey.values()].find((l) => l.length === 3)!;
      const [rss, fds] = [proc.find((s) => s.metric === 'rss_bytes')!, proc.find((s) => s.metric === 'fds')!];
      expect(rss.t).toBe(fds.t);
    } finally {
      r.close();
    }
  });
});
