// `series` and `leaks` on a small recording, in process (runCommand) with captured streams.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../../../test/run.js';
import { RecordingReader, RecordingWriter } from '../../store/recording.js';

const dir = mkdtempSync(join(tmpdir(), 'memsleuth-series-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, 'r.db');
const T0 = Date.UTC(2026, 10, 2);

/** Run a command in this process, stderr a terminal or not. */
const run = (argv: string[], stderrIsTTY = false) => cli(argv, { cwd: dir, stderrIsTTY });

beforeAll(() => {
  const w = new RecordingWriter(db);
  for (let k = 0; k < 6; k++)
    w.writeTick({
      tMs: T0 + k * 10_000,
      entities: [
        { layer: 'slab', key: 'kmalloc-96', values: { bytes: 4096 * (1 + (k >> 1)) } },
        { layer: 'slab', key: 'dentry', values: { bytes: 8192 } },
        ...(k < 4
          ? [{ layer: 'process' as const, key: '7:99', label: 'a,b', pid: 7, values: { fds: 3 + k } }]
          : []),
      ],
    });
  w.close();
});

describe('memsleuth series', () => {
  it('writes CSV tick by tick, the series of a tick in recording order, values carried forward', async () => {
    const r = await run(['series', '--db', db]);
    expect(r.status).toBe(0);
    const iso = (k: number) => new Date(T0 + k * 10_000).toISOString();
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('time,layer,key,label,metric,unit,value');
    expect(lines.slice(1, 8)).toEqual([
      `${iso(0)},slab,kmalloc-96,,bytes,bytes,4096`,
      `${iso(0)},slab,dentry,,bytes,bytes,8192`,
      `${iso(0)},process,7:99,"a,b",fds,count,3`,
      `${iso(1)},slab,kmalloc-96,,bytes,bytes,4096`,
      `${iso(1)},slab,dentry,,bytes,bytes,8192`,
      `${iso(1)},process,7:99,"a,b",fds,count,4`,
      `${iso(2)},slab,kmalloc-96,,bytes,bytes,8192`,
    ]);
    // Two slab caches at every tick; the process lived for the first four.
    expect(lines.length).toBe(1 + 6 * 2 + 4);
    expect(lines.at(-1)).toBe(`${iso(5)},slab,dentry,,bytes,bytes,8192`);
  });

  it('--json gives the points of load(), series by series', async () => {
    const r = await run(['series', '--db', db, '--json', '--max-points', '3']);
    const reader = new RecordingReader(db);
    const want = reader.load({ maxPoints: 3 }).series.map((s) => ({
      layer: s.layer,
      key: s.key,
      label: s.label,
      pid: s.pid,
      metric: s.metric,
      unit: s.unit,
      points: s.t.map((t, i) => [t, s.v[i]]),
    }));
    reader.close();
    expect(r.stdout).toBe(`${JSON.stringify(want)}\n`);
  });
});

describe('memsleuth leaks progress', () => {
  it('draws a progress line on a terminal stderr and clears it at the end', async () => {
    const r = await run(['leaks', '--db', db], true);
    expect(r.stderr).toMatch(/^\r\x1b\[Kreading samples: tick \d+ of 6/);
    expect(r.stderr.endsWith('\r\x1b[K')).toBe(true);
    expect(r.stdout).toContain('No leak suspects');
  });

  it('writes nothing to a stderr that is not a terminal', async () => {
    const r = await run(['leaks', '--db', db], false);
    expect(r.stderr).toBe('');
  });
});
