import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MemsleuthError } from '../model/errors.js';
import {
  ENDS_WHEN_ABSENT,
  type Layer,
  type LoadedRecording,
  metricUnit,
  type SeriesData,
  type TickSample,
  ZERO_WHEN_ABSENT,
} from '../model/samples.js';
import { migrate } from './schema.js';

/** Mapping entities not read for this many ticks are dropped from the writer's memory. */
const MAPPING_IDLE_TICKS = 100;

/** The default database: $MEMSLEUTH_DB, else $XDG_STATE_HOME/memsleuth/recording.db (~/.local/state/...). */
export function defaultDbPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MEMSLEUTH_DB) return env.MEMSLEUTH_DB;
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(state, 'memsleuth', 'recording.db');
}

/** A recording is a regular file: /dev/null or a directory would get SQLite's -journal beside it. */
function requireRegularFile(file: string): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch {
    return; // absent: created by the writer, reported by the reader
  }
  if (!st.isFile()) {
    throw new MemsleuthError('USAGE', `${file}: not a regular file`, {
      file,
      hint: 'a recording is a database file: give a path such as ./memory.db',
    });
  }
}

/** Errors of a read-only open that only mean "cannot create the -shm beside it". */
function isReadonlyOpenError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN');
}

/**
 * A private copy of a recording (and its -wal) to read from, for a WAL database in a
 * directory we cannot write: SQLite cannot create the -shm it needs there.
 */
function openCopy(file: string): { db: Database.Database; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'memsleuth-recording-'));
  try {
    const copy = join(dir, 'recording.db');
    copyFileSync(file, copy);
    if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);
    return { db: new Database(copy, { fileMustExist: true }), dir };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function openDb(file: string, readonly: boolean, onCopy?: (dir: string) => void): Database.Database {
  requireRegularFile(file);
  if (readonly && !existsSync(file)) {
    throw new MemsleuthError('IO', `${file}: no such recording`, {
      file,
      hint: 'record one first: memsleuth record --db FILE --interval 10s',
    });
  }
  let db: Database.Database;
  try {
    db = new Database(file, { readonly, fileMustExist: readonly });
  } catch (e) {
    throw new MemsleuthError('IO', `${file}: cannot open recording: ${(e as Error).message}`, {
      file,
      cause: e,
    });
  }
  try {
    if (!readonly) {
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a commit is durable against a process crash (kill -9), which
      // is what we promise; only a power loss may drop the last commits.
      db.pragma('synchronous = NORMAL');
      migrate(db, file);
    } else {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'samples'")
        .all();
      if (tables.length === 0) throw new Error('no samples table');
    }
  } catch (e) {
    db.close();
    if (e instanceof MemsleuthError) throw e;
    if (readonly && onCopy && isReadonlyOpenError(e)) {
      // A read-only file or directory (another user's recording, a read-only mount).
      try {
        const c = openCopy(file);
        onCopy(c.dir);
        return openCopyChecked(c.db, file, c.dir);
      } catch (e2) {
        if (e2 instanceof MemsleuthError) throw e2;
        throw new MemsleuthError('IO', `${file}: cannot read the recording: ${(e2 as Error).message}`, {
          file,
          cause: e2,
        });
      }
    }
    throw new MemsleuthError('BAD_INPUT', `${file}: not a memsleuth recording (${(e as Error).message})`, {
      file,
      cause: e,
      hint: 'pass the file written by `memsleuth record --db FILE`',
    });
  }
  return db;
}

function openCopyChecked(db: Database.Database, file: string, dir: string): Database.Database {
  try {
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'samples'")
      .all();
    if (tables.length === 0) throw new Error('no samples table');
    return db;
  } catch (e) {
    db.close();
    rmSync(dir, { recursive: true, force: true });
    throw new MemsleuthError('BAD_INPUT', `${file}: not a memsleuth recording (${(e as Error).message})`, {
      file,
      cause: e,
      hint: 'pass the file written by `memsleuth record --db FILE`',
    });
  }
}

/** A process's start time (clock ticks since boot, /proc/PID/stat field 22), or undefined. */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Is the writer recorded in the meta table (pid and start time) still running? */
function writerAlive(pid: number, start: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // A reused pid has another start time.
  const now = startTicks(pid);
  return start === undefined || now === undefined || now === start;
}

interface SeriesState {
  id: number;
  last: number | undefined;
}

interface EntityState {
  id: number;
  layer: Layer;
  label: string | undefined;
  series: Map<string, SeriesState>;
  /** Tick id at which this entity was last seen. */
  seenTick: number;
  /**
   * The `values` object written last: the sampler hands the same object again for an entity
   * whose values have not changed (a still process), and then there is nothing to compare.
   */
  lastValues?: Readonly<Record<string, number>> | undefined;
}

/**
 * Appends ticks to a recording. Each tick is one transaction, so a recorder killed with
 * SIGKILL loses at most the tick being written (WAL keeps every committed one).
 */
export class RecordingWriter {
  readonly file: string;
  private readonly db: Database.Database;
  /** Live entities by layer, then key (the sampler's key strings are reused tick to tick). */
  private readonly entities = new Map<Layer, Map<string, EntityState>>();
  private readonly insTick;
  private readonly insEntity;
  private readonly reviveEntity;
  private readonly endEntity;
  private readonly setLabel;
  private readonly findEntityRow: Database.Statement<[string, string], { id: number; label: string | null }>;
  private readonly findSeries: Database.Statement<[number], { id: number; metric: string }>;
  private readonly insSeries;
  private readonly insSample;
  private lastTick = 0;
  private closed = false;

  /**
   * `opts.cacheKiB`: SQLite's page cache for this connection (default 2 MiB). Ticks append at
   * the right edge of every table, so a long-lived recorder needs only a few pages of it.
   */
  constructor(file: string, meta: Record<string, string> = {}, opts: { cacheKiB?: number } = {}) {
    this.file = file;
    this.db = openDb(file, false);
    const db = this.db;
    if (opts.cacheKiB !== undefined) db.pragma(`cache_size = -${Math.max(1, Math.round(opts.cacheKiB))}`);
    this.takeWriterLock();
    this.insTick = db.prepare('INSERT INTO ticks (t_ms, read_ms) VALUES (?, ?)');
    this.insEntity = db.prepare(
      'INSERT INTO entities (layer, key, label, pid, start_ticks, first_tick) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.reviveEntity = db.prepare('UPDATE entities SET last_tick = NULL, label = ? WHERE id = ?');
    this.endEntity = db.prepare('UPDATE entities SET last_tick = ? WHERE id = ?');
    this.setLabel = db.prepare('UPDATE entities SET label = ? WHERE id = ?');
    this.findEntityRow = db.prepare(
      'SELECT id, label FROM entities WHERE layer = ? AND key = ?',
    ) as Database.Statement<[string, string], { id: number; label: string | null }>;
    this.findSeries = db.prepare('SELECT id, metric FROM series WHERE entity_id = ?') as Database.Statement<
      [number],
      { id: number; metric: string }
    >;
    this.insSeries = db.prepare('INSERT INTO series (entity_id, metric, unit, fill) VALUES (?, ?, ?, ?)');
    this.insSample = db.prepare('INSERT INTO samples (tick_id, series_id, value) VALUES (?, ?, ?)');
    const setMeta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    db.transaction(() => {
      for (const [k, v] of Object.entries(meta)) setMeta.run(k, v);
    })();
    this.loadState();
  }

  /**
   * One writer per recording: claim it in the meta table (writer_pid, writer_start) inside
   * an IMMEDIATE transaction, so two recorders starting together are serialised by SQLite's
   * write lock and the second sees the first. A claim left by a killed recorder (its pid gone
   * or reused) is taken over.
   */
  private takeWriterLock(): void {
    const db = this.db;
    const get = db.prepare('SELECT value FROM meta WHERE key = ?');
    const set = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    let holder: number | undefined;
    db.transaction(() => {
      const pid = Number((get.get('writer_pid') as { value: string } | undefined)?.value);
      const start = (get.get('writer_start') as { value: string } | undefined)?.value;
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && writerAlive(pid, start)) {
        holder = pid;
        return;
      }
      set.run('writer_pid', String(process.pid));
      set.run('writer_start', startTicks(process.pid) ?? '');
    }).immediate();
    if (holder !== undefined) {
      db.close();
      this.closed = true;
      throw new MemsleuthError('IO', `${this.file}: pid ${holder} is recording into it already`, {
        file: this.file,
        hint: `one recorder per database: stop pid ${holder} first, or record into another --db file`,
      });
    }
  }

  /** Resume an existing recording: reload ids and last values so change-only encoding continues. */
  private loadState(): void {
    const db = this.db;
    const last = db.prepare('SELECT max(id) AS id FROM ticks').get() as { id: number | null };
    this.lastTick = last.id ?? 0;
    const ents = db.prepare('SELECT id, layer, key, label, last_tick FROM entities').all() as {
      id: number;
      layer: Layer;
      key: string;
      label: string | null;
      last_tick: number | null;
    }[];
    const byId = new Map<number, EntityState>();
    for (const e of ents) {
      // A process that lived when the previous recorder stopped cannot be known to live on.
      if (e.last_tick === null && e.layer === 'process') this.endEntity.run(this.lastTick, e.id);
      // Ended processes and their mappings stay on disk only; a lookup finds them if needed.
      if (e.layer === 'process' || e.layer === 'mapping') continue;
      // Ended files and segments too; the living ones were seen at the last tick.
      if (ENDS_WHEN_ABSENT.has(e.layer) && e.last_tick !== null) continue;
      const st: EntityState = {
        id: e.id,
        layer: e.layer,
        label: e.label ?? undefined,
        series: new Map(),
        seenTick: e.last_tick ?? (ENDS_WHEN_ABSENT.has(e.layer) ? this.lastTick : 0),
      };
      this.layerMap(e.layer).set(e.key, st);
      byId.set(e.id, st);
    }
    const series = db.prepare('SELECT id, entity_id, metric FROM series').all() as {
      id: number;
      entity_id: number;
      metric: string;
    }[];
    for (const s of series) {
      const e = byId.get(s.entity_id);
      // The first value after resuming is always written again (last unknown).
      if (e) e.series.set(s.metric, { id: s.id, last: undefined });
    }
  }

  /** Write one tick in one transaction; returns its id. */
  writeTick(tick: TickSample): number {
    if (this.closed) throw new Error('recording is closed');
    return this.db.transaction(() => {
      const tickId = Number(this.insTick.run(tick.tMs, tick.readMs ?? null).lastInsertRowid);
      const layersSeen = new Set<Layer>(tick.layersRead);
      let layer: Layer | undefined;
      let inLayer: Map<string, EntityState> | undefined;
      for (const s of tick.entities) {
        if (s.layer !== layer) {
          layer = s.layer;
          inLayer = this.layerMap(layer);
          layersSeen.add(layer);
        }
        let e = inLayer!.get(s.key);
        if (!e) {
          e = this.findEntity(s.layer, s.key);
          if (e) {
            // Seen before and dropped from memory (a process missed for a tick, a mapping read
            // again after a while, a file back among the largest): the same entity, alive again.
            if (ENDS_WHEN_ABSENT.has(e.layer)) this.reviveEntity.run(s.label ?? null, e.id);
          } else {
            const id = Number(
              this.insEntity.run(s.layer, s.key, s.label ?? null, s.pid ?? null, s.startTicks ?? null, tickId)
                .lastInsertRowid,
            );
            e = { id, layer: s.layer, label: s.label, series: new Map(), seenTick: tickId };
          }
          inLayer!.set(s.key, e);
        }
        // A process that execs changes its comm (a shell wrapper becoming python3): keep the latest.
        if (s.label !== undefined && s.label !== e.label) {
          this.setLabel.run(s.label, e.id);
          e.label = s.label;
        }
        e.seenTick = tickId;
        // for-in: no array per entity per tick (a tick has one entity per process).
        const { values, sparse } = s;
        if (values && values !== e.lastValues) {
          for (const m in values) this.put(e, m, values[m]!, tickId, true);
          e.lastValues = values;
        }
        if (sparse) for (const m in sparse) this.put(e, m, sparse[m]!, tickId, false);
      }
      // forEach, not for-of: the recorder runs without the optimizing compiler (cli/daemon.ts),
      // where for-of makes an entry array per entity per tick.
      this.entities.forEach((byKey, layer) => {
        const seen = layersSeen.has(layer);
        byKey.forEach((e, key) => {
          // Memory stays bounded by what lives: mappings not read for a while are dropped.
          if (layer === 'mapping' && e.seenTick < tickId - MAPPING_IDLE_TICKS) byKey.delete(key);
          // Files and segments are read at their own cadence: one missing from a tick that read
          // their layer is gone (deleted, removed, unmounted) since the tick it was last seen.
          if (layer !== 'process' && ENDS_WHEN_ABSENT.has(layer)) {
            if (e.seenTick < tickId && seen) {
              this.endEntity.run(e.seenTick, e.id);
              byKey.delete(key);
            }
            return;
          }
          if (e.seenTick !== this.lastTick || this.lastTick === 0) return;
          if (layer === 'process') {
            // Vanished since the previous tick: end it and forget it (pid + start time never return).
            this.endEntity.run(this.lastTick, e.id);
            byKey.delete(key);
          } else if (ZERO_WHEN_ABSENT.has(layer) && seen) {
            for (const [m, st] of e.series) this.put(e, m, 0, tickId, true, st);
            e.seenTick = tickId;
            e.lastValues = undefined;
          }
        });
      });
      this.lastTick = tickId;
      return tickId;
    })();
  }

  private layerMap(layer: Layer): Map<string, EntityState> {
    let m = this.entities.get(layer);
    if (!m) {
      m = new Map();
      this.entities.set(layer, m);
    }
    return m;
  }

  private findEntity(layer: Layer, key: string): EntityState | undefined {
    const row = this.findEntityRow.get(layer, key);
    if (!row) return undefined;
    const e: EntityState = {
      id: row.id,
      layer,
      label: row.label ?? undefined,
      series: new Map(),
      seenTick: 0,
    };
    // The first value after a gap is always written (last unknown).
    for (const r of this.findSeries.all(row.id)) e.series.set(r.metric, { id: r.id, last: undefined });
    return e;
  }

  private put(
    e: EntityState,
    metric: string,
    value: number,
    tickId: number,
    fill: boolean,
    st0?: SeriesState,
  ) {
    if (!Number.isFinite(value)) return;
    let st = st0 ?? e.series.get(metric);
    if (!st) {
      st = {
        id: Number(this.insSeries.run(e.id, metric, metricUnit(metric), fill ? 1 : 0).lastInsertRowid),
        last: undefined,
      };
      e.series.set(metric, st);
    }
    if (fill && st.last === value) return;
    st.last = value;
    this.insSample.run(tickId, st.id, value);
  }

  /** Database size in bytes (main file plus WAL). */
  sizeBytes(): number {
    let n = 0;
    for (const f of [this.file, `${this.file}-wal`]) {
      try {
        n += statSync(f).size;
      } catch {
        // the WAL does not exist after a checkpoint on close
      }
    }
    return n;
  }

  /** Mark live processes as ended at the last tick, checkpoint the WAL and close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.transaction(() => {
      for (const e of this.entities.get('process')?.values() ?? [])
        if (e.seenTick === this.lastTick && this.lastTick > 0) this.endEntity.run(this.lastTick, e.id);
    })();
    this.db.prepare("DELETE FROM meta WHERE key IN ('writer_pid', 'writer_start')").run();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    // A finished recording is a plain file again, readable where no -shm can be created
    // (read-only mounts, another user's directory). Busy while a reader has it open: then
    // it stays in WAL mode and readers copy it.
    try {
      this.db.pragma('journal_mode = DELETE');
    } catch {
      // SQLITE_BUSY
    }
    this.db.close();
  }
}

export interface LoadOptions {
  /** Only ticks at or after this time (ms since epoch). */
  sinceMs?: number;
  /** Only ticks at or before this time (ms since epoch). */
  untilMs?: number;
  /**
   * Keep at most about this many points per series (every k-th tick); a week at 10 s is
   * 60,480 ticks, far more than a trend needs. Default 1500.
   */
  maxPoints?: number;
  /** Only these layers. */
  layers?: readonly Layer[];
  /** Only series whose `layer/key/metric` matches. */
  filter?: (layer: Layer, key: string, metric: string, label: string | undefined) => boolean;
  /** Called now and then (every 1,024 ticks and at the end) with the ticks read so far. */
  onProgress?: (ticksRead: number, ticks: number) => void;
}

/** A series without its points: what `points()` gives beside each value. */
export type SeriesInfo = Omit<SeriesData, 't' | 'v'>;

/** The points of one kept tick (`RecordingReader.points`). */
export interface TickPoints {
  /** The kept tick's time (ms since epoch). */
  tMs: number;
  /** In series order; a sparse series' point carries the time of its reading. */
  points: { series: SeriesInfo; t: number; v: number }[];
}

/** One series being read: its carried-forward value, and the points kept so far. */
interface Acc {
  info: SeriesInfo;
  fill: boolean;
  /** The entity's first and last tick ids (last: MAX_SAFE_INTEGER while alive). */
  first: number;
  last: number;
  cur: number | undefined;
  /** Sparse: last reading since the previous kept tick. */
  pending: { t: number; v: number } | undefined;
}

/** What load() and points() read: the ticks in range and the selected series. */
interface Plan {
  meta: Record<string, string>;
  /** Tick ids and times in range, ascending by id. */
  ids: number[];
  times: number[];
  /** Keep every step-th tick (and the last). */
  step: number;
  /** Selected series, ascending by id. */
  accs: Acc[];
  /** How many series the recording has (the selection may be all of them, or a few). */
  seriesInRecording: number;
}

/** Ticks per progress call. */
const PROGRESS_TICKS = 1024;

export class RecordingReader {
  readonly file: string;
  private readonly db: Database.Database;

  private copyDir: string | undefined;

  constructor(file: string) {
    this.file = file;
    this.db = openDb(file, true, (dir) => {
      this.copyDir = dir;
    });
  }

  meta(): Record<string, string> {
    const rows = this.db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  /** Sample rows and entities per layer: what the storage is spent on. */
  stats(): { ticks: number; rowsByLayer: Record<string, number>; entitiesByLayer: Record<string, number> } {
    const ticks = (this.db.prepare('SELECT count(*) AS n FROM ticks').get() as { n: number }).n;
    const rows = this.db
      .prepare(
        `SELECT e.layer, count(*) AS n FROM samples s JOIN series r ON r.id = s.series_id
         JOIN entities e ON e.id = r.entity_id GROUP BY e.layer`,
      )
      .all() as { layer: string; n: number }[];
    const ents = this.db.prepare('SELECT layer, count(*) AS n FROM entities GROUP BY layer').all() as {
      layer: string;
      n: number;
    }[];
    return {
      ticks,
      rowsByLayer: Object.fromEntries(rows.map((r) => [r.layer, r.n])),
      entitiesByLayer: Object.fromEntries(ents.map((r) => [r.layer, r.n])),
    };
  }

  /** How many ticks, and the first and last time: cheap (the ticks table only), for a live view. */
  span(): { ticks: number; firstMs: number | undefined; lastMs: number | undefined } {
    const r = this.db
      .prepare('SELECT count(*) AS n, min(t_ms) AS first, max(t_ms) AS last FROM ticks')
      .get() as {
      n: number;
      first: number | null;
      last: number | null;
    };
    return { ticks: r.n, firstMs: r.first ?? undefined, lastMs: r.last ?? undefined };
  }

  /** Every series name, for `memsleuth series --list`. */
  listSeries(): { layer: Layer; key: string; label: string | null; metric: string; unit: string }[] {
    return this.db
      .prepare(
        `SELECT e.layer, e.key, e.label, s.metric, s.unit FROM series s JOIN entities e ON e.id = s.entity_id
         ORDER BY e.layer, e.key, s.metric`,
      )
      .all() as { layer: Layer; key: string; label: string | null; metric: string; unit: string }[];
  }

  /**
   * Load series for analysis, streaming the samples in tick order: memory stays bounded by
   * series × maxPoints whatever the recording's length. Every series of one entity shares one
   * `t` array (and series alive over the whole range share one): treat `t` and `v` as read-only.
   */
  load(opts: LoadOptions = {}): LoadedRecording {
    const plan = this.plan(opts);
    const result: LoadedRecording = {
      file: this.file,
      meta: plan.meta,
      tickCount: plan.ids.length,
      firstMs: plan.times[0],
      lastMs: plan.times[plan.times.length - 1],
      series: [],
    };
    if (plan.ids.length === 0) return result;
    result.series = this.loadAccs(plan, plan.accs, opts.onProgress);
    return result;
  }

  /**
   * The points load() would return, tick by tick instead of series by series: for each kept
   * tick, the value of every selected series at it. Memory is one value per series whatever the
   * range, and the first ticks come at once; a generator, so a writer can wait for a slow pipe
   * between ticks. Do not use the reader for anything else until the generator is done.
   */
  *points(opts: LoadOptions = {}): Generator<TickPoints> {
    const plan = this.plan(opts);
    if (plan.ids.length === 0) return;
    // Alive series in id order: entered at their first tick, left after their last.
    const byFirst = [...plan.accs].sort((a, b) => a.first - b.first || a.info.id - b.info.id);
    let entered = 0;
    let active: Acc[] = [];
    const sparse = plan.accs.filter((a) => !a.fill);
    for (const k of this.scan(plan, plan.accs, opts.onProgress)) {
      const id = plan.ids[k]!;
      if (entered < byFirst.length && byFirst[entered]!.first <= id) {
        while (entered < byFirst.length && byFirst[entered]!.first <= id) {
          const a = byFirst[entered++]!;
          if (a.fill) active.push(a);
        }
        active.sort((a, b) => a.info.id - b.info.id);
      }
      const tMs = plan.times[k]!;
      const points: TickPoints['points'] = [];
      let gone = false;
      for (const a of active) {
        if (a.last < id) gone = true;
        else if (a.cur !== undefined) points.push({ series: a.info, t: tMs, v: a.cur });
      }
      if (gone) active = active.filter((a) => a.last >= id);
      const filled = points.length;
      for (const a of sparse) {
        if (!a.pending) continue;
        points.push({ series: a.info, t: a.pending.t, v: a.pending.v });
        a.pending = undefined;
      }
      if (points.length > filled) points.sort((a, b) => a.series.id - b.series.id);
      yield { tMs, points };
    }
  }

  /**
   * The series load() would return, one at a time and in the same order, holding at most
   * about `maxBufferedPoints` points at once: the series are read in batches, one pass over
   * the samples per batch. For exporting a long recording without holding all of it.
   */
  *eachSeries(opts: LoadOptions = {}, maxBufferedPoints = 1_000_000): Generator<SeriesData> {
    const plan = this.plan(opts);
    if (plan.ids.length === 0) return;
    // Points a series can have at most: the kept ticks over its lifetime in range.
    const kept = keptTicks(plan);
    const bound = (a: Acc) => countUpTo(kept, a.last) - countUpTo(kept, a.first - 1);
    const batches: Acc[][] = [];
    let batch: Acc[] = [];
    let points = 0;
    for (const a of plan.accs) {
      const n = bound(a);
      if (batch.length && points + n > maxBufferedPoints) {
        batches.push(batch);
        batch = [];
        points = 0;
      }
      batch.push(a);
      points += n;
    }
    if (batch.length) batches.push(batch);
    for (const accs of batches) yield* this.loadAccs(plan, accs, undefined);
  }

  /** The ticks in range and the series selected by layers and filter. */
  private plan(opts: LoadOptions): Plan {
    const db = this.db;
    const since = opts.sinceMs ?? Number.MIN_SAFE_INTEGER;
    const until = opts.untilMs ?? Number.MAX_SAFE_INTEGER;
    const ids: number[] = [];
    const times: number[] = [];
    for (const [id, t] of (
      db.prepare(
        'SELECT id, t_ms FROM ticks WHERE t_ms >= ? AND t_ms <= ? ORDER BY id',
      ) as Database.Statement<[number, number], [number, number]>
    )
      .raw(true)
      .iterate(since, until)) {
      ids.push(id);
      times.push(t);
    }
    const plan: Plan = {
      meta: this.meta(),
      ids,
      times,
      step: Math.ceil(ids.length / Math.max(2, opts.maxPoints ?? 1500)),
      accs: [],
      seriesInRecording: 0,
    };
    if (ids.length === 0) return plan;
    const firstTick = ids[0]!;
    const lastTick = ids[ids.length - 1]!;
    const tickMs = new Map<number, number>();
    for (let i = 0; i < ids.length; i++) tickMs.set(ids[i]!, times[i]!);

    const rows = db
      .prepare(
        `SELECT s.id, s.metric, s.unit, s.fill, e.layer, e.key, e.label, e.pid, e.first_tick, e.last_tick
         FROM series s JOIN entities e ON e.id = s.entity_id ORDER BY s.id`,
      )
      .iterate() as IterableIterator<{
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
    }>;
    const layers = opts.layers ? new Set(opts.layers) : undefined;
    let inRecording = 0;
    for (const r of rows) {
      inRecording++;
      if (layers && !layers.has(r.layer)) continue;
      if (opts.filter && !opts.filter(r.layer, r.key, r.metric, r.label ?? undefined)) continue;
      const last = r.last_tick ?? Number.MAX_SAFE_INTEGER;
      if (last < firstTick || r.first_tick > lastTick) continue;
      const info: SeriesInfo = {
        id: r.id,
        layer: r.layer,
        key: r.key,
        label: r.label ?? undefined,
        pid: r.pid ?? undefined,
        metric: r.metric,
        unit: r.unit,
      };
      const endedMs = r.last_tick === null ? undefined : tickMs.get(r.last_tick);
      if (endedMs !== undefined) info.endedMs = endedMs;
      plan.accs.push({
        info,
        fill: r.fill === 1,
        first: r.first_tick,
        last,
        cur: undefined,
        pending: undefined,
      });
    }
    plan.seriesInRecording = inRecording;
    return plan;
  }

  /**
   * Read the samples of `accs` over the plan's ticks, carrying fill series forward, and yield
   * the index of each kept tick (every step-th and the last) once every sample up to it is in.
   *
   * SQLite groups the samples of each tick into two JSON arrays (series ids, values): handing
   * one row per tick to JavaScript instead of one per sample reads a week of change-only
   * samples 3-4x faster (the per-row cost of the driver dominates). JSON keeps every double
   * exact (SQLite writes 17 significant digits; recording.test.ts checks the round trip).
   */
  private *scan(plan: Plan, accs: readonly Acc[], onProgress: LoadOptions['onProgress']): Generator<number> {
    const db = this.db;
    const { ids, times, step } = plan;
    const firstTick = ids[0]!;
    const lastTick = ids[ids.length - 1]!;
    let maxId = 0;
    for (const a of accs) if (a.info.id > maxId) maxId = a.info.id;
    const bySeries: (Acc | undefined)[] = new Array(maxId + 1);
    for (const a of accs) bySeries[a.info.id] = a;

    // When layers or a filter leave most series out, SQLite skips their samples itself (in C,
    // ~10x faster than handing every row to JavaScript): one series of a week-long recording is
    // read in the time of a table scan, not of a walk over every sample. When most series are
    // kept, the IN test costs more per sample than it saves (measured on a week: 4.0 s against
    // 2.6 s for a third of it, keeping 52,036 of 69,626 series), and JavaScript skips the rest.
    const only =
      4 * accs.length < plan.seriesInRecording ? JSON.stringify(accs.map((a) => a.info.id)) : undefined;
    const inSeries = only === undefined ? '' : 'AND series_id IN (SELECT value FROM json_each(?))';
    const args = (...xs: number[]): unknown[] => (only === undefined ? xs : [...xs, only]);

    // Values before the range seed the carried-forward state.
    const seed = db.prepare(
      `SELECT s.series_id, s.value FROM samples s
       JOIN (SELECT series_id, max(tick_id) AS tick_id FROM samples WHERE tick_id < ? ${inSeries} GROUP BY series_id) m
       ON m.series_id = s.series_id AND m.tick_id = s.tick_id`,
    ) as Database.Statement<unknown[], { series_id: number; value: number }>;
    for (const r of seed.iterate(...args(firstTick))) {
      const a = bySeries[r.series_id];
      if (a?.fill) a.cur = r.value;
    }

    const it = (
      db.prepare(
        `SELECT tick_id, json_group_array(series_id), json_group_array(value) FROM samples
         WHERE tick_id >= ? AND tick_id <= ? ${inSeries} GROUP BY tick_id ORDER BY tick_id`,
      ) as Database.Statement<unknown[], [number, string, string]>
    )
      .raw(true)
      .iterate(...args(firstTick, lastTick));
    try {
      let next = it.next();
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        while (!next.done && next.value[0] <= id) {
          const sids = JSON.parse(next.value[1]) as number[];
          const values = JSON.parse(next.value[2]) as number[];
          const t = times[i]!;
          for (let j = 0; j < sids.length; j++) {
            const a = bySeries[sids[j]!];
            if (!a) continue;
            if (a.fill) a.cur = values[j]!;
            else a.pending = { t, v: values[j]! };
          }
          next = it.next();
        }
        if (onProgress && ((i + 1) % PROGRESS_TICKS === 0 || i === ids.length - 1))
          onProgress(i + 1, ids.length);
        if (i % step === 0 || i === ids.length - 1) yield i;
      }
    } finally {
      it.return?.();
    }
  }

  /** load() for some of the plan's series: every kept point, t shared where lifetimes agree. */
  private loadAccs(plan: Plan, accs: readonly Acc[], onProgress: LoadOptions['onProgress']): SeriesData[] {
    interface Out {
      a: Acc;
      /** Fill series: index of the first kept tick with a point. */
      k0: number;
      t: number[] | undefined;
      v: number[];
      /** Points in v (a fill series' v is allocated once, for every kept tick of its life). */
      n: number;
    }
    const outs: Out[] = accs.map((a) => ({ a, k0: -1, t: a.fill ? undefined : [], v: [], n: 0 }));
    const fill = outs.filter((o) => o.a.fill).sort((x, y) => x.a.first - y.a.first);
    const sparse = outs.filter((o) => !o.a.fill);
    const keptIds = keptTicks(plan);
    const keptT: number[] = [];
    let entered = 0;
    let active: Out[] = [];
    for (const k of this.scan(plan, accs, onProgress)) {
      const id = plan.ids[k]!;
      const tMs = plan.times[k]!;
      keptT.push(tMs);
      while (entered < fill.length && fill[entered]!.a.first <= id) {
        const o = fill[entered++]!;
        // Sized once: pushing a week's points one at a time copies each array ~15 times.
        o.v = new Array(countUpTo(keptIds, o.a.last) - (keptT.length - 1));
        active.push(o);
      }
      let gone = false;
      for (const o of active) {
        const a = o.a;
        if (a.last < id) {
          gone = true;
          continue;
        }
        if (a.cur === undefined) continue;
        if (o.k0 < 0) o.k0 = keptT.length - 1;
        o.v[o.n++] = a.cur;
      }
      if (gone) active = active.filter((o) => o.a.last >= id);
      for (const o of sparse) {
        const a = o.a;
        if (!a.pending) continue;
        o.t!.push(a.pending.t);
        o.v.push(a.pending.v);
        a.pending = undefined;
      }
    }
    // A fill series' points are the kept ticks from its first value to its end, in a row.
    const shared = new Map<string, number[]>();
    const series: SeriesData[] = [];
    for (const o of outs) {
      if (o.a.fill) o.v.length = o.n;
      if (o.v.length === 0) continue;
      let t = o.t;
      if (!t) {
        const key = `${o.k0}:${o.v.length}`;
        t = shared.get(key);
        if (!t) {
          t = keptT.slice(o.k0, o.k0 + o.v.length);
          shared.set(key, t);
        }
      }
      series.push({ ...o.a.info, t, v: o.v });
    }
    return series;
  }

  close(): void {
    this.db.close();
    if (this.copyDir) rmSync(this.copyDir, { recursive: true, force: true });
  }
}

/** Ids of the ticks a load keeps: every step-th and the last. */
function keptTicks(plan: Plan): number[] {
  const kept: number[] = [];
  const n = plan.ids.length;
  for (let i = 0; i < n; i++) if (i % plan.step === 0 || i === n - 1) kept.push(plan.ids[i]!);
  return kept;
}

/** How many of the ascending `ids` are at most `id`. */
function countUpTo(ids: readonly number[], id: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid]! <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
