/**
 * `--html FILE` on the trace commands, from committed traces (no root, no tracefs): one
 * self-contained page with the trace's outstanding allocations as an icicle, the other
 * outputs unchanged. The page in a browser: test/browser/html.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TraceReport } from '../../src/analysis/alloc_trace.js';
import type { FlameNode, PageData } from '../../src/web/types.js';
import { REPO_FIXTURES } from '../paths.js';
import { cli } from '../run.js';

const dir = mkdtempSync(join(tmpdir(), 'memsleuth-trace-html-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TRACE = join(REPO_FIXTURES, 'lab-trace', 'lab-6.12.kmem.trace');

/** The data the page inlines. */
function inlined(file: string): PageData {
  const m = /<script id="memsleuth-data" type="application\/json">(.*?)<\/script>/s.exec(
    readFileSync(file, 'utf8'),
  );
  expect(m, 'inlined data').not.toBeNull();
  return JSON.parse(m![1]!) as PageData;
}

/** Leaf paths of a tree (`a;b;c weight`), the way collapsed stacks are written (`f_[module]`). */
function collapsed(n: FlameNode, prefix: string[] = [], out: Map<string, number> = new Map()) {
  const kids = n.c ?? [];
  const self = n.v - kids.reduce((s, c) => s + c.v, 0);
  const key = prefix.join(';').replace(/\s+(?=\[)/g, '_');
  if (self > 0 && prefix.length) out.set(key, (out.get(key) ?? 0) + self);
  for (const c of kids) collapsed(c, [...prefix, c.n], out);
  return out;
}

describe('trace report --html', () => {
  it('writes a page of kind trace whose icicle holds the stacks --collapsed writes, JSON unchanged', async () => {
    const file = join(dir, 'trace.html');
    const col = join(dir, 'trace.collapsed');
    const r = await cli(['trace', 'report', TRACE, '--json', '--html', file, '--collapsed', col]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^wrote .*trace\.html \([\d.]+ KiB\)$/m);
    const plain = await cli(['trace', 'report', TRACE, '--json']);
    expect(r.stdout).toBe(plain.stdout);
    const json = JSON.parse(r.stdout) as TraceReport & { events: Record<string, number> };

    const d = inlined(file);
    expect(d.kind).toBe('trace');
    expect(d.title).toBe(`trace: ${TRACE}`);
    expect(d.trace).toEqual({
      what: TRACE,
      durationSeconds: json.durationSeconds,
      events: Object.values(json.events).reduce((a, b) => a + b, 0),
      lostEvents: 0,
      allocs: json.counters.allocs,
      frees: json.counters.frees,
      outstanding: json.outstanding,
      sample: 1,
    });
    expect(d.flames).toHaveLength(1);
    const g = d.flames![0]!;
    expect(g).toMatchObject({ source: 'kmem_trace', unit: 'bytes' });
    expect(g.root.v).toBe(json.outstanding.bytes);
    // The same stacks and weights as the collapsed file.
    const lines = readFileSync(col, 'utf8').trim().split('\n');
    const fromFile = new Map<string, number>();
    for (const l of lines) {
      const i = l.lastIndexOf(' ');
      fromFile.set(l.slice(0, i), (fromFile.get(l.slice(0, i)) ?? 0) + Number(l.slice(i + 1)));
    }
    expect(collapsed(g.root)).toEqual(fromFile);
    // Self-contained: the script and styles inline, nothing fetched.
    const text = readFileSync(file, 'utf8');
    expect(text).toContain("connect-src 'none'");
    expect(text).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
  });

  it('a trace that lost events: the count the text warns of is on the page', async () => {
    const file = join(dir, 'lost.html');
    const r = await cli(['trace', 'report', join(REPO_FIXTURES, 'trace-6.18', 'lost.trace'), '--html', file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/warning: \d+ events lost/);
    const lost = Number(/warning: (\d+) events lost/.exec(r.stdout)![1]);
    expect(inlined(file).trace!.lostEvents).toBe(lost);
  });

  it('an unwritable FILE is a user error naming it', async () => {
    const r = await cli(['trace', 'report', TRACE, '--html', join(dir, 'no', 'such', 'dir', 'x.html')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/x\.html: cannot write/);
  });

  it('trace kernel and trace user take --html too', async () => {
    for (const c of ['kernel', 'user', 'report']) {
      const r = await cli(['trace', c, '--help']);
      expect(r.stdout, c).toMatch(/--html FILE\s+also write a self-contained HTML page/);
    }
  });
});
