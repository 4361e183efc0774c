import type Database from 'better-sqlite3';
import { MemsleuthError } from '../model/errors.js';

/**
 * The recording schema. A recording is a set of entities (a process, a slab cache, a
 * meminfo field, a vmalloc caller...) each with named series, and one row per tick.
 *
 * Samples are change-only for "filled" series: a row is written only when the value
 * differs from the last row written for that series, and readers carry the last value
 * forward over the entity's lifetime. A process's status fields rarely change between
 * two ticks, so this is what makes a week of recording fit (docs/recording.md has the
 * measured numbers). "Sparse" series (PSS from smaps_rollup, per-mapping sizes) are read
 * at a slower cadence and keep every reading, without carrying forward.
 *
 * samples is keyed by (tick_id, series_id) so inserts append at the end of the B-tree:
 * pages stay full and a tick costs one sequential write.
 */
export const SCHEMA_VERSION = 1;

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE ticks (
      id INTEGER PRIMARY KEY,
      t_ms INTEGER NOT NULL,
      -- wall time the sampler spent reading /proc for this tick
      read_ms REAL
    );
    CREATE TABLE entities (
      id INTEGER PRIMARY KEY,
      layer TEXT NOT NULL,
      key TEXT NOT NULL,
      label TEXT,
      pid INTEGER,
      start_ticks INTEGER,
      first_tick INTEGER NOT NULL,
      -- NULL while the entity lives (or when the recorder was killed): alive until the last tick
      last_tick INTEGER,
      UNIQUE (layer, key)
    );
    CREATE TABLE series (
      id INTEGER PRIMARY KEY,
      entity_id INTEGER NOT NULL REFERENCES entities(id),
      metric TEXT NOT NULL,
      unit TEXT NOT NULL,
      -- 1: change-only, carried forward; 0: sparse, every reading stored
      fill INTEGER NOT NULL,
      UNIQUE (entity_id, metric)
    );
    CREATE TABLE samples (
      tick_id INTEGER NOT NULL,
      series_id INTEGER NOT NULL,
      value NOT NULL,
      PRIMARY KEY (tick_id, series_id)
    ) WITHOUT ROWID;
  `,
};

/** Bring a database to SCHEMA_VERSION, one migration per transaction. */
export function migrate(db: Database.Database, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new MemsleuthError(
      'BAD_INPUT',
      `${file}: recording schema version ${version} is newer than this memsleuth understands (${SCHEMA_VERSION})`,
      { file, hint: 'upgrade memsleuth to read this recording' },
    );
  }
  for (let v = version + 1; v <= SCHEMA_VERSION; v++) {
    const sql = MIGRATIONS[v];
    if (sql === undefined) throw new Error(`missing migration ${v}`);
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v}`);
    })();
  }
}
