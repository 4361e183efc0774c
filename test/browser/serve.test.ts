/**
 * `memsleuth serve` in a real browser: the dashboard on the lab snapshots and the scenario
 * suite's recording, its /api against the CLI's --json, the access token, a live recording,
 * and a synthetic week at 10 s. Every server binds 127.0.0.1 and is stopped by the test.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Server, startServer } from '../../src/web/server.js';
import { CLI_BIN, labBundle, REPO_FIXTURES } from '../paths.js';
import { cli as run } from '../run.js';
import { type Browser, chartRaw, launchChromium } from './chromium.js';
import { screenshot } from './shots.js';
import { WEEK_TICKS, writeSyntheticWeek } from './week.js';

const dir = mkdtempSync(join(tmpdir(), 'memsleuth-serve-'));
const RECORDING = join(REPO_FIXTURES, 'recordings', 'bench-linux-6.18.db');
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function getJson(url: string): Promise<unknown> {
  const r = await fetch(url);
  expect(r.status).toBe(200);
  return r.json();
}

describe('the dashboard on the lab 6.12 snapshots and the scenario suite recording', () => {
  // test/fixtures/lab-6.12: before.tar.gz, mid.tar.gz, after.tar.gz (bundles, opened as they are)
  const snapshots = dirname(labBundle('6.12', 'after'));
  let server: Server;
  beforeAll(async () => {
    server = await startServer({ db: RECORDING, snapshotsDir: snapshots });
  });
  afterAll(() => server?.close());

  it('/api/report, /api/diff and /api/leaks return what the CLI prints with --json', async () => {
    const base = server.url.replace(/\/$/, '');
    const report = await getJson(`${base}/api/report?snapshot=after.tar.gz`);
    expect(report).toEqual(JSON.parse((await run(['report', '--json', labBundle('6.12', 'after')])).stdout));
    const diff = await getJson(`${base}/api/diff?before=before.tar.gz&after=after.tar.gz`);
    const cliDiff = await run(['diff', '--json', labBundle('6.12', 'before'), labBundle('6.12', 'after')]);
    expect(diff).toEqual(JSON.parse(cliDiff.stdout));
    const leaks = await getJson(`${base}/api/leaks`);
    expect(leaks).toEqual(JSON.parse((await run(['leaks', '--json', '--db', RECORDING])).stdout));
    const since = await getJson(`${base}/api/leaks?since=2m`);
    expect(since).toEqual(
      JSON.parse((await run(['leaks', '--json', '--since', '2m', '--db', RECORDING])).stdout),
    );
    expect((await fetch(`${base}/api/report?snapshot=../../etc`)).status).toBe(404);
  });

  it('refuses a request that names another host (DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/api/info',
          headers: { Host: `evil.example:${server.port}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('shows the suspects, drills down, diffs two snapshots and draws their flame graph, with no console error', async () => {
    const { page, errors } = await browser.page();
    await page.goto(`${server.url}#suspects`);
    await page.waitForSelector('table.suspects tbody tr');
    await page.click('table.suspects tbody tr:first-child');
    await page.waitForSelector('[data-chart="suspect"] canvas');
    const leaks = JSON.parse((await run(['leaks', '--json', '--db', RECORDING])).stdout) as {
      suspects: { id: string; last: number }[];
    };
    const view = await chartRaw<{ id: string; points: { v: number[] } }>(page, 'suspect');
    expect(view.id).toBe(leaks.suspects[0]!.id);
    expect(view.points.v[view.points.v.length - 1]).toBe(leaks.suspects[0]!.last);
    await page.click('a[data-tab="diff"]');
    await page.waitForSelector('button.run-diff');
    await page.selectOption('select >> nth=0', 'before.tar.gz');
    await page.selectOption('select >> nth=1', 'after.tar.gz');
    await page.click('button.run-diff');
    await page.waitForSelector('.diff-rows tbody tr', { timeout: 60_000 });
    await page.waitForSelector('.flame-root');
    await screenshot(page, 'web-serve-diff');
    await page.click('a[data-tab="series"]');
    await page.fill('.series-filter', 'meminfo/Shmem');
    await page.click('tr.pick >> nth=0');
    await page.waitForSelector('[data-chart="series"] canvas');
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('the access token', () => {
  it('is printed in the URL, and a request without it is refused', async () => {
    const child = spawn(
      process.execPath,
      [CLI_BIN, 'serve', '--listen', '127.0.0.1:0', '--token', '--duration', '60s'],
      {
        env: { ...process.env, MEMSLEUTH_DB: join(dir, 'none.db') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.trim());
        });
        child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
      });
      const token = new URL(url).searchParams.get('token');
      expect(token).toMatch(/^[0-9a-f]{32}$/);
      const api = new URL('/api/info', url);
      expect((await fetch(api)).status).toBe(403);
      api.searchParams.set('token', 'x'.repeat(32));
      expect((await fetch(api)).status).toBe(403);
      api.searchParams.set('token', token!);
      expect((await fetch(api)).status).toBe(200);
      expect((await fetch(url)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  it('is required beyond loopback, with a warning', async () => {
    const { isLoopback } = await import('../../src/web/server.js');
    const { parseListen } = await import('../../src/cli/commands/serve.js');
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.4', '10.0.0.1'].some(isLoopback)).toBe(false);
    expect(parseListen('0.0.0.0:8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('8080')).toEqual({ host: '127.0.0.1', port: 8080 });
  });
});

describe('a live recording (serve --record)', () => {
  it('updates the accounting over time at every tick', async () => {
    const db = join(dir, 'live.db');
    const server = await startServer({
      db,
      record: { intervalMs: 1000, pidFilter: (pid) => pid === process.pid || pid === 1 },
      durationMs: 120_000,
    });
    try {
      const { page, errors } = await browser.page();
      await page.goto(server.url);
      await page.waitForSelector('.last-tick[data-ticks]', { timeout: 30_000 });
      const ticksAt = async () => Number(await page.$eval('.last-tick', (e) => e.getAttribute('data-ticks')));
      const first = await ticksAt();
      // Two more ticks drawn (the page's CSP forbids the evaluated predicates of waitForFunction).
      const deadline = Date.now() + 30_000;
      while ((await ticksAt()) < first + 2) {
        expect(Date.now()).toBeLessThan(deadline);
        await page.waitForTimeout(250);
      }
      // What the page drew last is the recording's last tick, as `series` prints it.
      const raw = await chartRaw<{ t: number[]; layers: { name: string; bytes: number[] }[] }>(
        page,
        'accounting',
      );
      const cli = await run(['series', '--json', '--db', db, '--layer', 'unaccounted']);
      const points = new Map((JSON.parse(cli.stdout) as { points: [number, number][] }[])[0]!.points);
      const lastT = raw.t[raw.t.length - 1]!;
      expect(raw.layers.find((l) => l.name === 'unaccounted')!.bytes.at(-1)).toBe(points.get(lastT));
      await screenshot(page, 'web-live');
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await server.close();
    }
    const r = await server.done;
    expect(r?.ticks).toBeGreaterThanOrEqual(3);
  });
});

describe('a synthetic week at 10 s (60,480 ticks through the real RecordingWriter)', () => {
  const db = join(dir, 'week.db');
  let server: Server;
  let prepareMs = 0;
  beforeAll(async () => {
    const t0 = performance.now();
    writeSyntheticWeek(db);
    const t1 = performance.now();
    server = await startServer({ db });
    prepareMs = performance.now() - t1;
    process.stderr.write(
      `week: written in ${((t1 - t0) / 1000).toFixed(1)} s, analysed by the server in ${(prepareMs / 1000).toFixed(1)} s\n`,
    );
  }, 30 * 60_000);
  afterAll(() => server?.close());

  it('shows its first view in under 2 s, downsampled to min and max per pixel', async () => {
    const { page, errors } = await browser.page();
    const t0 = Date.now();
    await page.goto(server.url);
    await page.waitForSelector('[data-chart="accounting"] canvas');
    const firstViewMs = Date.now() - t0;
    process.stderr.write(`week: first view in ${firstViewMs} ms\n`);
    expect(firstViewMs).toBeLessThan(2000);
    const raw = await chartRaw<{ t: number[]; ticks: number }>(page, 'accounting');
    expect(raw.ticks).toBe(WEEK_TICKS);
    expect(raw.t.length).toBeLessThanOrEqual(2 * 1280 + 2);
    // The leak written into the week is found, and its series opens.
    await page.click('a[data-tab="suspects"]');
    await page.waitForSelector('table.suspects tbody tr[data-id="slab/kmalloc-96"]');
    await page.click('table.suspects tbody tr[data-id="slab/kmalloc-96"]');
    await page.waitForSelector('[data-chart="suspect"] canvas');
    const s = await chartRaw<{ rawPoints: number; points: { t: number[] } }>(page, 'suspect');
    expect(s.rawPoints).toBe(WEEK_TICKS);
    expect(s.points.t.length).toBeLessThanOrEqual(2 * 1280 + 2);
    await screenshot(page, 'web-week');
    expect(errors).toEqual([]);
    await page.close();
  });
});
