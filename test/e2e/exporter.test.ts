import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseExposition } from '../exposition.js';
import { labFixture, REPO_FIXTURES } from '../paths.js';
import { freePort } from '../prometheus.js';
import { cli } from '../run.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-exporter-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('memsleuth exporter', () => {
  it('--once prints one exposition: node_exporter’s meminfo, vmstat and buddyinfo names, memsleuth’s own', async () => {
    const r = await cli(['exporter', '--once', '--snapshot', labFixture('6.12', 'after')]);
    expect(r.status, r.stderr).toBe(0);
    const f = parseExposition(r.stdout);
    expect(f.get('node_memory_Active_anon_bytes')?.type).toBe('gauge');
    // The lab kernel counts no VM events (tinyconfig): none of node_exporter's default vmstat
    // fields exist there; this VM's capture has them.
    expect([...f.keys()].filter((n) => n.startsWith('node_vmstat_'))).toEqual([]);
    const live = await cli(['exporter', '--once', '--snapshot', join(REPO_FIXTURES, 'live-6.18')]);
    const vm = [...parseExposition(live.stdout).values()].filter((x) => x.name.startsWith('node_vmstat_'));
    expect(vm.map((x) => x.name)).toContain('node_vmstat_pgfault');
    expect(new Set(vm.map((x) => x.type))).toEqual(new Set(['untyped']));
    expect(f.get('node_buddyinfo_blocks')?.samples.length).toBeGreaterThan(10);
    expect(f.has('node_slabinfo_objects')).toBe(false); // opt-in: --node-families all
    expect(f.get('memsleuth_slab_bytes')?.samples.length).toBeGreaterThan(100);
    expect(f.get('memsleuth_vmalloc_bytes')?.samples.map((s) => s.labels.caller)).toContain(
      'msl_vmalloc_leak [msl_leaky]',
    );
    expect(f.get('memsleuth_kmemleak_caller_unreferenced_objects')?.samples).toContainEqual({
      labels: { caller: 'msl_slab_leak [msl_leaky]' },
      value: 400,
    });
  });

  it('serves until --duration ends, saying where and what a snapshot costs', async () => {
    const r = await cli([
      'exporter',
      '--listen',
      '127.0.0.1:0',
      '--duration',
      '1500ms',
      '--snapshot',
      labFixture('6.1', 'after'),
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /^serving http:\/\/127\.0\.0\.1:\d+\/metrics \(.*lab-6\.1.*at most one snapshot per 10 s\)/m,
    );
    expect(r.stderr).toMatch(/^first snapshot: \d+ series, [\d.]+ KiB, read in \d+ ms \(\d+ ms CPU\)$/m);
  });

  it('--textfile --once writes DIR/memsleuth.prom without node_exporter’s default families', async () => {
    const r = await cli([
      'exporter',
      '--textfile',
      work,
      '--once',
      '--snapshot',
      labFixture('6.12', 'after'),
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^wrote .*memsleuth\.prom: \d+ series/m);
    const f = parseExposition(readFileSync(join(work, 'memsleuth.prom'), 'utf8'));
    expect([...f.keys()].filter((n) => n.startsWith('node_'))).toEqual([]);
    expect(f.has('memsleuth_memory_layer_bytes')).toBe(true);
  });

  it('refuses bad options with a one-line error and a hint (exit 2)', async () => {
    const cases: [string[], RegExp][] = [
      [['--node-families', 'meminfo,bogus'], /--node-families: unknown family "bogus"/],
      [['--processes', 'many'], /--processes: expected a whole number/],
      [['--vmstat-fields', '('], /--vmstat-fields: /],
      [['--listen', '0.0.0.0:0', '--duration', '1s'], /beyond loopback a token is required/],
      [['--listen', 'nowhere'], /--listen: expected HOST:PORT/],
      [['--once', '--snapshot', join(work, 'absent')], /cannot open snapshot directory/],
      [
        ['--once', '--snapshot', join(REPO_FIXTURES, 'lab-6.12', 'after.tar.gz')],
        /not a directory.*\n.*tar xzf/,
      ],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(['exporter', ...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(msg);
    }
  });
});

describe('memsleuth fleet (without a Prometheus)', () => {
  it('needs --prometheus and says when nothing answers there', async () => {
    const none = await cli(['fleet']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/fleet needs --prometheus URL/);
    const port = await freePort();
    const down = await cli(['fleet', '--prometheus', `http://127.0.0.1:${port}`, '--since', '5m']);
    expect(down.status).toBe(2);
    expect(down.stderr).toMatch(/ECONNREFUSED/);
    expect(down.stderr).toMatch(/is Prometheus running there/);
  });
});
