/**
 * The HTML reports in a real browser (Debian's chromium, headless), opened from file:// with
 * every request blocked: the page draws from its inlined data alone, logs no error, and what
 * it draws equals what the CLI's --json prints.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceReport } from '../../src/analysis/alloc_trace.js';
import type { LeakReport } from '../../src/analysis/leaks.js';
import type { SnapshotDiff } from '../../src/registry/diff.js';
import type { Report } from '../../src/registry/types.js';
import { labCounters, labFixture, REPO_FIXTURES } from '../paths.js';
import { cli as run } from '../run.js';
import { type Browser, chartRaw, launchChromium, styleOf } from './chromium.js';
import { screenshot } from './shots.js';

const dir = mkdtempSync(join(tmpdir(), 'memsleuth-html-'));
const RECORDING = join(REPO_FIXTURES, 'recordings', 'bench-linux-6.18.db');
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Open a written HTML file offline; fail on console errors or any request beyond the file. */
async function open(file: string, hash = '') {
  const p = await browser.page({ offline: true });
  await p.page.goto(`file://${file}${hash}`);
  return p;
}

/** Pages blocks of every `Page allocated via order N` record: 2^N each, counted without our parser. */
function pagesInDump(file: string): number {
  let pages = 0;
  for (const m of readFileSync(file, 'utf8').matchAll(/^Page allocated via order (\d+)/gm))
    pages += 2 ** Number(m[1]);
  return pages;
}

describe('report --html (lab 6.12, after msl_leaky leaked)', () => {
  const snap = labFixture('6.12', 'after');
  const file = join(dir, 'report.html');
  let json: Report;
  beforeAll(async () => {
    const r = await run(['report', '--json', '--html', file, snap]);
    expect(r.stderr).toMatch(/wrote .*report\.html/);
    expect(r.status).toBe(0);
    json = JSON.parse(r.stdout) as Report;
    // --html does not change what --json prints.
    const plain = await run(['report', '--json', snap]);
    expect(JSON.parse(plain.stdout)).toEqual(json);
  });

  it('draws the accounting identity as the JSON has it, unaccounted marked, no error, no request', async () => {
    const { page, errors, requests } = await open(file);
    await page.waitForSelector('.identity .seg');
    const segs = await page.$$eval('.identity .seg', (els) =>
      els.map((e) => [e.getAttribute('data-layer'), Number(e.getAttribute('data-bytes'))]),
    );
    expect(Object.fromEntries(segs)).toEqual(json.accounting!.layers);
    const unacc = await styleOf(page, '.seg-unaccounted', 'backgroundImage');
    expect(unacc).toMatch(/repeating-linear-gradient/);
    // The buddy heat table: blocks per zone and order.
    const cells = await page.$$eval('.heat tbody tr', (rows) =>
      rows.map((r) =>
        [...r.querySelectorAll('td[data-order]')].map((td) => Number(td.getAttribute('data-blocks'))),
      ),
    );
    expect(cells).toEqual(json.buddy!.zones.map((z) => z.freeBlocks));
    // Every table of the registry, by title.
    const titles = await page.$$eval('.rtable h3', (hs) => hs.map((h) => h.textContent));
    expect(titles.length).toBeGreaterThan(3);
    await screenshot(page, 'web-report-accounting');
    expect(errors.join('\n')).toBe('');
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    await page.close();
  });

  it("draws page_owner's flame graph with the dump's page count at its root; search highlights", async () => {
    const { page, errors } = await open(file, '#flames');
    await page.waitForSelector('.flame[data-source="page_owner"] .flame-root');
    const root = Number(await page.$eval('.flame-root', (e) => e.getAttribute('data-value')));
    expect(root).toBe(pagesInDump(join(snap, 'page_owner')));
    const top = await run(['page-owner', 'top', '--json', join(snap, 'page_owner')]);
    expect(root).toBe((JSON.parse(top.stdout) as { pages: number }).pages);
    await page.fill('.flame-search', 'msl_page_leak');
    const matched = Number(await page.$eval('.flame-matched', (e) => e.getAttribute('data-value')));
    // The lab module's own counters: blocks it leaked, of 2^page_order pages each.
    const c = labCounters('6.12', 'after');
    expect(matched).toBe(c.page_blocks_leaked! * 2 ** c.page_order!);
    await page.fill('.flame-search', '');
    await screenshot(page, 'web-report-flame');
    // Every stack source of the snapshot has its own graph.
    const sources = await page.$$eval('.pills .pill', (b) => b.map((x) => x.getAttribute('data-source')));
    expect(sources).toEqual(['page_owner', 'page_owner_stacks', 'slab_traces', 'kmemleak', 'allocinfo']);
    // Clicking a frame zooms into it: the root row stays, the clicked frame fills the width.
    const box = (await page.$('.flame-canvas canvas'))!;
    const b = (await box.boundingBox())!;
    await page.mouse.click(b.x + 5, b.y + 18 + 9);
    await page.waitForSelector('.flame-head button');
    expect(errors.join('\n')).toBe('');
    await page.close();
  });
});

describe('diff --html (lab 6.12, before → after)', () => {
  const before = labFixture('6.12', 'before');
  const after = labFixture('6.12', 'after');
  const file = join(dir, 'diff.html');
  let json: SnapshotDiff;
  beforeAll(async () => {
    const r = await run(['diff', '--json', '--html', file, before, after]);
    expect(r.status).toBe(0);
    json = JSON.parse(r.stdout) as SnapshotDiff;
  });

  it('ranks the gainers as the JSON does and colours growth in the differential flame graph', async () => {
    const { page, errors, requests } = await open(file);
    await page.waitForSelector('.diff-rows tbody tr');
    const rows = await page.$$eval('.diff-rows tbody tr', (trs) =>
      trs.map((t) => [t.getAttribute('data-source'), Number(t.getAttribute('data-delta'))]),
    );
    const gainers = json.rows.filter((r) => r.deltaBytes > 0).slice(0, rows.length);
    expect(rows).toEqual(gainers.map((r) => [r.source, r.deltaBytes]));
    await page.waitForSelector('.flame[data-source="page_owner"]');
    const rootAttrs = await page.$eval('.flame-root', (e) => [
      e.getAttribute('data-value'),
      e.getAttribute('data-before'),
    ]);
    // page_owner as the diff reads it (kernel allocations: slab, vmalloc, other), as `page-owner top` counts it.
    const kernelPages = async (snap: string) => {
      const r = await run([
        'page-owner',
        'top',
        '--json',
        '--allocator',
        'slab,vmalloc,other',
        join(snap, 'page_owner'),
      ]);
      return (JSON.parse(r.stdout) as { pages: number }).pages;
    };
    expect(rootAttrs.map(Number)).toEqual([await kernelPages(after), await kernelPages(before)]);
    // The graph's growth is the diff's: page_owner rows' pages gained add up to after − before.
    const po = json.rows.filter((r) => r.source === 'page_owner');
    expect(po.reduce((s, r) => s + (r.deltaCount ?? 0), 0)).toBe(Number(rootAttrs[0]) - Number(rootAttrs[1]));
    await screenshot(page, 'web-diff');
    expect(errors.join('\n')).toBe('');
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    await page.close();
  });
});

describe('leaks --html (the scenario suite recording, bench-linux-6.18.db)', () => {
  const file = join(dir, 'leaks.html');
  let json: LeakReport;
  beforeAll(async () => {
    const r = await run(['leaks', '--json', '--html', file, '--db', RECORDING]);
    expect(r.status).toBe(1); // suspects found
    json = JSON.parse(r.stdout) as LeakReport;
    const plain = await run(['leaks', '--json', '--db', RECORDING]);
    expect(JSON.parse(plain.stdout)).toEqual(json);
  });

  it('stacks the accounting layers over time, summing to MemTotal at every tick', async () => {
    const { page, errors } = await open(file);
    await page.waitForSelector('[data-chart="accounting"] canvas');
    const raw = await chartRaw<{
      t: number[];
      layers: { name: string; bytes: number[] }[];
      ticks: number;
    }>(page, 'accounting');
    expect(raw.ticks).toBe(json.ticks);
    const mem = await run(['series', '--json', '--db', RECORDING, '--layer', 'meminfo', '--key', 'MemTotal']);
    const memTotal = new Map(
      (JSON.parse(mem.stdout) as { points: [number, number][] }[])[0]!.points.map(([t, v]) => [t, v]),
    );
    raw.t.forEach((t, i) => {
      expect(raw.layers.reduce((s, l) => s + l.bytes[i]!, 0)).toBe(memTotal.get(t));
    });
    // The recorder's own unaccounted series, as `series --json` prints it.
    const un = await run(['series', '--json', '--db', RECORDING, '--layer', 'unaccounted']);
    const unacc = new Map((JSON.parse(un.stdout) as { points: [number, number][] }[])[0]!.points);
    const layer = raw.layers.find((l) => l.name === 'unaccounted')!;
    expect(layer.bytes).toEqual(raw.t.map((t) => unacc.get(t)));
    await screenshot(page, 'web-over-time');
    // Free memory stacked too: the top edge is MemTotal.
    await page.check('.show-free');
    await page.waitForSelector('[data-chart="accounting"] canvas');
    expect(errors.join('\n')).toBe('');
    await page.close();
  });

  it("lists the suspects as leaks --json ranks them; clicking one shows its series, trend and 'since'", async () => {
    const { page, errors } = await open(file, '#suspects');
    await page.waitForSelector('table.suspects tbody tr');
    const ids = await page.$$eval('table.suspects tbody tr', (trs) =>
      trs.map((t) => t.getAttribute('data-id')),
    );
    expect(ids).toEqual(json.suspects.map((s) => s.id));
    const s = json.suspects[1]!;
    await page.click(`table.suspects tbody tr:nth-child(2)`);
    await page.waitForSelector(`.detail[data-suspect="${s.id}"] [data-chart="suspect"] canvas`);
    const view = await chartRaw<{
      id: string;
      points: { t: number[]; v: number[] };
      fit: { fromMs: number; slopePerMs: number };
      sinceMs: number;
    }>(page, 'suspect');
    expect(view.id).toBe(s.id);
    expect(view.points.v[view.points.v.length - 1]).toBe(s.last);
    expect(view.sinceMs).toBe(s.sinceMs);
    expect(view.fit.slopePerMs * 3_600_000).toBeCloseTo(s.ratePerHour, 6);
    // The projection: MemAvailable and the line to zero at the suspects' combined rate.
    const proj = await page.$eval('.projection-text', (e) => e.textContent);
    expect(proj).toContain(`exhausted in ${json.hoursToExhaustion!.toFixed(1)} h`);
    await screenshot(page, 'web-suspects');
    expect(errors.join('\n')).toBe('');
    await page.close();
  });
});

describe('trace report --html (the lab 6.12 kmem trace, msl_leaky leaking)', () => {
  const trace = join(REPO_FIXTURES, 'lab-trace', 'lab-6.12.kmem.trace');
  const file = join(dir, 'trace.html');
  let json: TraceReport & { events: Record<string, number> };
  beforeAll(async () => {
    const r = await run(['trace', 'report', '--json', '--html', file, trace]);
    expect(r.stderr).toMatch(/wrote .*trace\.html/);
    expect(r.status).toBe(0);
    json = JSON.parse(r.stdout) as typeof json;
  });

  it("draws the outstanding bytes by stack; the top stack's function is found by the search", async () => {
    const { page, errors, requests } = await open(file);
    // The title line: what was traced, events, lost events, as the JSON counts them.
    const line = await page.waitForSelector('.trace-line');
    expect(await line.textContent()).toContain('lab-6.12.kmem.trace');
    const events = Object.values(json.events).reduce((a, b) => a + b, 0);
    expect(await line.getAttribute('data-events')).toBe(String(events));
    expect(await line.getAttribute('data-lost')).toBe('0');
    expect((await line.textContent())!.replace(/\s+/g, ' ')).toContain(
      `${events} events (${json.counters.allocs} allocations, ${json.counters.frees} frees), 0 lost; outstanding ${json.outstanding.count} allocations`,
    );
    expect(await page.$('.finding.warning')).toBeNull();
    // The root is every outstanding byte.
    await page.waitForSelector('.flame[data-source="kmem_trace"] .flame-root');
    const root = Number(await page.$eval('.flame-root', (e) => e.getAttribute('data-value')));
    expect(root).toBe(json.outstanding.bytes);
    expect(root).toBe(json.byStack.reduce((s, g) => s + g.weights.bytes, 0));
    // The lab module's page leak is the top stack; the icicle's frames under it hold its bytes.
    expect(json.byStack[0]!.culprit).toMatchObject({ func: 'msl_page_leak', module: 'msl_leaky' });
    await page.fill('.flame-search', 'msl_page_leak');
    const matched = Number(await page.$eval('.flame-matched', (e) => e.getAttribute('data-value')));
    const inStacks = json.byStack
      .filter((g) => g.frames.some((f) => f.func === 'msl_page_leak'))
      .reduce((s, g) => s + g.weights.bytes, 0);
    expect(matched).toBe(inStacks);
    expect(matched).toBeGreaterThanOrEqual(json.byStack[0]!.weights.bytes);
    await page.fill('.flame-search', '');
    await screenshot(page, 'web-trace');
    // Down the left edge (each row's heaviest frame first): the hover names the top stack's frames.
    const box = (await (await page.$('.flame-canvas canvas'))!.boundingBox())!;
    const names: string[] = [];
    for (let row = 0; ; row++) {
      await page.mouse.move(box.x + 2, box.y + row * 18 + 9);
      const tip = await page.$('.tip b');
      if (!tip) break;
      names.push((await tip.textContent())!);
    }
    expect(names[0]).toBe('all');
    expect(names).toContain('msl_page_leak [msl_leaky]');
    expect(errors.join('\n')).toBe('');
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    await page.close();
  });

  it('a trace that lost events says so on the page', async () => {
    const lost = join(dir, 'lost.html');
    const r = await run([
      'trace',
      'report',
      '--json',
      '--html',
      lost,
      join(REPO_FIXTURES, 'trace-6.18', 'lost.trace'),
    ]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as TraceReport;
    expect(j.counters.lostEvents).toBeGreaterThan(0);
    const { page, errors } = await open(lost);
    const line = await page.waitForSelector('.trace-line');
    expect(await line.getAttribute('data-lost')).toBe(String(j.counters.lostEvents));
    expect(await page.$eval('.finding.warning', (e) => e.textContent)).toMatch(/Events were lost/);
    expect(errors.join('\n')).toBe('');
    await page.close();
  });
});
