#!/usr/bin/env node
// Cut a scenario-suite recording down to a test fixture: the kernel layers, the scenario
// processes (from the `bench_scenarios` meta row) and nothing else of the machine.
// Usage: node bench/leaks/trim-fixture.mjs IN.db OUT.db
import { copyFileSync } from 'node:fs';
import Database from 'better-sqlite3';

const [src, out] = process.argv.slice(2);
if (!src || !out) {
  console.error('usage: trim-fixture.mjs IN.db OUT.db');
  process.exit(2);
}
copyFileSync(src, out);
const db = new Database(out);
const labels = JSON.parse(
  db.prepare("SELECT value FROM meta WHERE key = 'bench_scenarios'").get()?.value ?? '{}',
);
const keepKeys = Object.keys(labels)
  .filter((w) => w.startsWith('process/'))
  .map((w) => w.slice('process/'.length));
const keepComms = Object.keys(labels).filter((w) => !w.includes('/'));
const ents = db
  .prepare("SELECT id, key, label, pid, start_ticks FROM entities WHERE layer IN ('process', 'mapping')")
  .all();
// Scenario processes without a label of their own (the socket and tmpfs writers): the bench
// lists their pids; recordings made before it did are matched by start time (all scenarios
// start within a second of each other).
const pids = new Set(
  JSON.parse(db.prepare("SELECT value FROM meta WHERE key = 'bench_pids'").get()?.value ?? '[]'),
);
const starts = ents.filter((e) => keepKeys.includes(e.key)).map((e) => e.start_ticks);
const lo = Math.min(...starts) - 100;
const hi = Math.max(...starts) + 100;
const keep = ents
  .filter(
    (e) =>
      keepKeys.some((k) => e.key === k || e.key.startsWith(`${k}:`)) ||
      keepComms.includes(e.label) ||
      pids.has(e.pid) ||
      (pids.size === 0 && e.start_ticks >= lo && e.start_ticks <= hi),
  )
  .map((e) => e.id);
// The mappings of every kept process.
const keptPids = new Set(ents.filter((e) => keep.includes(e.id) && e.pid !== null).map((e) => e.pid));
for (const e of ents) if (!keep.includes(e.id) && keptPids.has(e.pid) && e.key.includes(':')) keep.push(e.id);
db.exec('CREATE TEMP TABLE keep (id INTEGER PRIMARY KEY)');
// The holders of shared memory kept: those of the kept processes (the machine's others hold
// their own memfds).
for (const e of db.prepare("SELECT id, pid FROM entities WHERE layer = 'shm-holder'").all())
  if (keptPids.has(e.pid)) keep.push(e.id);
// The build sandbox's own (empty, read-only) tmpfs is no part of the machine under test.
db.exec(
  "DELETE FROM samples WHERE series_id IN (SELECT s.id FROM series s JOIN entities e ON e.id = s.entity_id WHERE e.layer = 'tmpfs' AND e.key LIKE '/mnt/sandboxing/%')",
);
db.exec(
  "DELETE FROM series WHERE entity_id IN (SELECT id FROM entities WHERE layer = 'tmpfs' AND key LIKE '/mnt/sandboxing/%')",
);
db.exec("DELETE FROM entities WHERE layer = 'tmpfs' AND key LIKE '/mnt/sandboxing/%'");
const ins = db.prepare('INSERT INTO keep VALUES (?)');
for (const id of keep) ins.run(id);
const trimmed = "('process', 'mapping', 'shm-holder')";
db.exec(`
  DELETE FROM samples WHERE series_id IN (SELECT s.id FROM series s JOIN entities e ON e.id = s.entity_id
    WHERE e.layer IN ${trimmed} AND e.id NOT IN (SELECT id FROM keep));
  DELETE FROM series WHERE entity_id IN (SELECT id FROM entities WHERE layer IN ${trimmed} AND id NOT IN (SELECT id FROM keep));
  DELETE FROM entities WHERE layer IN ${trimmed} AND id NOT IN (SELECT id FROM keep);
`);
db.pragma('journal_mode = DELETE');
db.exec('VACUUM');
db.close();
console.log(`${out}: kept ${keep.length} process/mapping entities`);
