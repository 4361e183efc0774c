import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RecordingReader } from '../../src/store/recording.js';
import { labBundle, REPO_FIXTURES } from '../paths.js';
import { cli } from '../run.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-record-from-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A directory holding copies of the lab 6.12 bundles (before, mid, after). */
function labDir(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const m of ['before', 'mid', 'after'] as const) cpSync(labBundle('6.12', m), join(dir, `${m}.tar.gz`));
  return dir;
}

describe('memsleuth record --from DIR', () => {
  it('records the lab captures in manifest time order, one tick each, through the registry', async () => {
    const dir = labDir('lab');
    const db = join(work, 'lab.db');
    const r = await cli(['record', '--from', dir, '--db', db]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${db}\n`);
    expect(r.stderr).toMatch(/^recorded 3 captures of \S+ from 20\d\d-\S+ to 20\d\d-\S+ into /m);
    const rec = new RecordingReader(db);
    try {
      const all = rec.load();
      expect(all.tickCount).toBe(3);
      expect(all.meta.imported_from).toBe(dir);
      // By name after < before < mid: the manifest times decide the order.
      const ticks = all.series.find((s) => s.layer === 'meminfo' && s.key === 'MemTotal')!.t;
      expect(ticks).toEqual([...ticks].sort((a, b) => a - b));
      // msl_leaky's vmalloc leak grows between the moments: 0 → 40 areas.
      const v = all.series.find(
        (s) => s.layer === 'vmalloc' && s.key === 'msl_vmalloc_leak [msl_leaky]' && s.metric === 'areas',
      );
      expect(v?.v.at(-1)).toBe(40);
      expect(v!.v[0]!).toBeLessThan(40);
    } finally {
      rec.close();
    }
    // The same captures again: already recorded.
    const again = await cli(['record', '--from', dir, '--db', db]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(
      /already records up to .* after the first capture \(before\.tar\.gz\)\nhint: import into a new --db/,
    );
  }, 120_000);

  it('refuses one snapshot, an empty directory, captures of two machines and live-only options', async () => {
    const one = await cli([
      'record',
      '--from',
      join(REPO_FIXTURES, 'owners-6.18', 'snapshot'),
      '--db',
      join(work, 'x.db'),
    ]);
    expect(one.status).toBe(2);
    expect(one.stderr).toMatch(
      /is one snapshot, not a directory of snapshots\nhint: record --from takes the directory/,
    );
    const empty = join(work, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'notes.txt'), 'not a capture\n');
    const none = await cli(['record', '--from', empty, '--db', join(work, 'x.db')]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/no snapshots with a manifest time/);
    const mixed = labDir('mixed');
    cpSync(join(REPO_FIXTURES, 'owners-6.18', 'snapshot'), join(mixed, 'vm-snapshot'), { recursive: true });
    const two = await cli(['record', '--from', mixed, '--db', join(work, 'x.db')]);
    expect(two.status).toBe(2);
    expect(two.stderr).toMatch(/captures of 2 machines \(.*vm.*\)\nhint: a recording follows one machine/);
    const opt = await cli(['record', '--from', empty, '--interval', '5s']);
    expect(opt.status).toBe(2);
    expect(opt.stderr).toMatch(/--interval apply to live recording only/);
  }, 120_000);
});

describe('memsleuth collector --interval', () => {
  it('prints the collector with its periodic defaults set', async () => {
    const r = await cli(['collector', '--interval', '10m', '--count', '6', '--keep', '4']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^EVERY=600$/m);
    expect(r.stdout).toMatch(/^COUNT=6$/m);
    expect(r.stdout).toMatch(/^KEEP=4$/m);
    const plain = await cli(['collector']);
    expect(plain.stdout).toMatch(/^EVERY=0$/m);
    expect(plain.stdout).toMatch(/^KEEP=144$/m);
  });

  it('refuses --count without --interval and intervals busybox sleep cannot count', async () => {
    const a = await cli(['collector', '--count', '3']);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/--count and --keep need --interval/);
    const b = await cli(['collector', '--interval', '1500ms']);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/whole seconds, at least 1s/);
    const c = await cli(['collector', '--interval', '1m', '--keep', '0']);
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/--keep: expected a whole number >= 1/);
  });
});
