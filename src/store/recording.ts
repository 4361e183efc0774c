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
}

/**
 * Appends ticks to a recording. Each tick is one transaction, so a recorder killed with
 * SIGKILL loses at most the tick being written (WAL keeps every committed one).
 */
export class RecordingWriter {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly entities = new Map<string, EntityState>();
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

  constructor(file: string, meta: Record<string, string> = {}) {
    this.file = file;
    this.db = openDb(file, false);
    const db = this.db;
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
      this.entities.set(`${e.layer}\0${e.key}`, st);
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
      for (const s of tick.entities) {
        layersSeen.add(s.layer);
        const ek = `${s.layer}\0${s.key}`;
        let e = this.entities.get(ek);
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
          this.entities.set(ek, e);
        }
        // A process that execs changes its comm (a shell wrapper becoming python3): keep the latest.
        if (s.label !== undefined && s.label !== e.label) {
          this.setLabel.run(s.label, e.id);
          e.label = s.label;
        }
        e.seenTick = tickId;
        // for-in: no array per entity per tick (a tick has one entity per process).
        const { values, sparse } = s;
        if (values) for (const m in values) this.put(e, m, values[m]!, tickId, true);
        if (sparse) for (const m in sparse) this.put(e, m, sparse[m]!, tickId, false);
      }
      for (const [ek, e] of this.entities) {
        // Memory stays bounded by what lives: mappings not read for a while are dropped.
        if (e.layer === 'mapping' && e.seenTick < tickId - MAPPING_IDLE_TICKS) this.entities.delete(ek);
        // Files and segments are read at their own cadence: one missing from a tick that read
        // their layer is gone (deleted, removed, unmounted) since the tick it was last seen.
        if (e.layer !== 'process' && ENDS_WHEN_ABSENT.has(e.layer)) {
          if (e.seenTick < tickId && layersSeen.has(e.layer)) {
            this.endEntity.run(e.seenTick, e.id);
            this.entities.delete(ek);
          }
          continue;
        }
        if (e.seenTick !== this.lastTick || this.lastTick === 0) continue;
        if (e.layer === 'process') {
          // Vanished since the previous tick: end it and forget it (pid + start time never return).
          this.endEntity.run(this.lastTick, e.id);
          this.entities.delete(ek);
        } else if (ZERO_WHEN_ABSENT.has(e.layer) && layersSeen.has(e.layer)) {
          for (const [m, st] of e.series) this.put(e, m, 0, tickId, true, st);
          e.seenTick = tickId;
        }
      }
      this.lastTick = tickId;
      return tickId;
    })();
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
      for (const e of this.entities.values())
        if (e.layer === 'process' && e.seenTick === this.lastTick && this.lastTick > 0)
          this.endEntity.run(this.lastTick, e.id);
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
}

/** Read-only access to a recording. */
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
   * series × maxPoints whatever the recording's length.
   */
  load(opts: LoadOptions = {}): LoadedRecording {
    const db = this.db;
    const since = opts.sinceMs ?? Number.MIN_SAFE_INTEGER;
    const until = opts.untilMs ?? Number.MAX_SAFE_INTEGER;
    const ticks = db
      .prepare('SELECT id, t_ms FROM ticks WHERE t_ms >= ? AND t_ms <= ? ORDER BY id')
      .all(since, until) as { id: number; t_ms: number }[];
    const tickMs = new Map(ticks.map((t) => [t.id, t.t_ms]));
    const result: LoadedRecording = {
      file: this.file,
      meta: this.meta(),
      tickCount: ticks.length,
      firstMs: ticks[0]?.t_ms,
      lastMs: ticks[ticks.length - 1]?.t_ms,
      series: [],
    };
    if (ticks.length === 0) return result;
    const firstTick = ticks[0]!.id;
    const lastTick = ticks[ticks.length - 1]!.id;
    const maxPoints = Math.max(2, opts.maxPoints ?? 1500);
    const step = Math.ceil(ticks.length / maxPoints);

    const rows = db
      .prepare(
        `SELECT s.id, s.metric, s.unit, s.fill, e.layer, e.key, e.label, e.pid, e.first_tick, e.last_tick
         FROM series s JOIN entities e ON e.id = s.entity_id`,
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
    interface Acc {
      data: SeriesData;
      fill: boolean;
      first: number;
      last: number;
      cur: number | undefined;
      /** Sparse: last reading in the current bucket. */
      pending: { t: number; v: number } | undefined;
    }
    const accs = new Map<number, Acc>();
    const layers = opts.layers ? new Set(opts.layers) : undefined;
    for (const r of rows) {
      if (layers && !layers.has(r.layer)) continue;
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
      accs.set(r.id, {
        data,
        fill: r.fill === 1,
        first: r.first_tick,
        last,
        cur: undefined,
        pending: undefined,
      });
    }
    const fillAccs = [...accs.values()].filter((a) => a.fill);
    const sparseAccs = [...accs.values()].filter((a) => !a.fill);

    // When layers or a filter leave series out, SQLite skips their samples itself (in C, ~10x
    // faster than handing every row to JavaScript): one series of a week-long recording is read
    // in the time of a table scan, not of a walk over every sample.
    const only = accs.size < rows.length ? JSON.stringify([...accs.keys()]) : undefined;
    const inSeries = only === undefined ? '' : 'AND series_id IN (SELECT value FROM json_each(?))';
    const args = (...xs: number[]): unknown[] => (only === undefined ? xs : [...xs, only]);

    // Values before the range seed the carried-forward state.
    const seed = db.prepare(
      `SELECT s.series_id, s.value FROM samples s
       JOIN (SELECT series_id, max(tick_id) AS tick_id FROM samples WHERE tick_id < ? ${inSeries} GROUP BY series_id) m
       ON m.series_id = s.series_id AND m.tick_id = s.tick_id`,
    ) as Database.Statement<unknown[], { series_id: number; value: number }>;
    for (const r of seed.iterate(...args(firstTick))) {
      const a = accs.get(r.series_id);
      if (a?.fill) a.cur = r.value;
    }

    const it = (
      db.prepare(
        `SELECT tick_id, series_id, value FROM samples WHERE tick_id >= ? AND tick_id <= ? ${inSeries} ORDER BY tick_id`,
      ) as Database.Statement<unknown[], { tick_id: number; series_id: number; value: number }>
    ).iterate(...args(firstTick, lastTick));
    let next = it.next();
    for (let i = 0; i < ticks.length; i++) {
      const tk = ticks[i]!;
      while (!next.done && next.value.tick_id <= tk.id) {
        const r = next.value;
        const a = accs.get(r.series_id);
        if (a) {
          if (a.fill) a.cur = r.value;
          else a.pending = { t: tk.t_ms, v: r.value };
        }
        next = it.next();
      }
      const keep = i % step === 0 || i === ticks.length - 1;
      if (!keep) continue;
      for (const a of fillAccs) {
        if (a.cur === undefined || tk.id < a.first || tk.id > a.last) continue;
        a.data.t.push(tk.t_ms);
        a.data.v.push(a.cur);
      }
      for (const a of sparseAccs) {
        if (!a.pending) continue;
        a.data.t.push(a.pending.t);
        a.data.v.push(a.pending.v);
        a.pending = undefined;
      }
    }
    result.series = [...accs.values()].map((a) => a.data).filter((s) => s.t.length > 0);
    return result;
  }

  close(): void {
    this.db.close();
    if (this.copyDir) rmSync(this.copyDir, { recursive: true, force: true });
  }
}
