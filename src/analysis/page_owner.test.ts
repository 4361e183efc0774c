import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ODD_RECORDS, writeVariedDump } from '../../test/page-owner-c/varied.js';
import { type LabKernel, labFixture } from '../../test/paths.js';
import { culpritFrame, type Frame, stackKey } from '../index.js';
import { MemsleuthError } from '../model/errors.js';
import { type PageOwnerParseOptions, parsePageOwner } from '../sources/page_owner.js';
import {
  allocatorOf,
  diffPageOwner,
  type GroupPageOwnerOptions,
  groupLabel,
  groupPageOwner,
  KERNEL_ALLOCATORS,
  PAGE_OWNER_GROUP_BY,
  type PageOwnerGroupBy,
} from './page_owner.js';
import { type StackGroup, toCollapsed, topGroups, toSpeedscope } from './stacks.js';

const dump = (k: LabKernel, m: 'before' | 'mid' | 'after') => join(labFixture(k, m), 'page_owner');

/** Pages the kernel printed: sum of 2^order over every header line. */
function pagesInText(file: string): number {
  let n = 0;
  for (const m of readFileSync(file, 'latin1').matchAll(/^Page allocated via order (\d+),/gm))
    n += 2 ** Number(m[1]);
  return n;
}

describe('groupPageOwner', () => {
  for (const k of ['6.1', '6.12'] as const) {
    it(`${k}: every grouping accounts for every page`, async () => {
      const total = pagesInText(dump(k, 'after'));
      for (const by of PAGE_OWNER_GROUP_BY) {
        const r = await groupPageOwner(dump(k, 'after'), { by });
        // Counted without building the groups (top prints it for hundreds of thousands).
        const n = r.groupCount;
        expect(n).toBeGreaterThan(0);
        expect(r.groups.length).toBe(n);
        expect(r.pages).toBe(total);
        expect(r.groups.reduce((s, g) => s + g.weights.pages, 0)).toBe(total);
        expect(r.bytes).toBe(total * 4096);
      }
    });
  }

  it('by module: msl_leaky holds the pages it leaked', async () => {
    const r = await groupPageOwner(dump('6.12', 'after'), { by: 'module' });
    const leaky = r.groups.find((g) => g.key === '[msl_leaky]')!;
    // 200 pages from msl_page_leak, 80+ from msl_vmalloc_leak, slab pages for the rest.
    expect(leaky.weights.pages).toBeGreaterThanOrEqual(280);
    const before = await groupPageOwner(dump('6.12', 'before'), { by: 'module' });
    expect(before.groups.find((g) => g.key === '[msl_leaky]')).toBeUndefined();
  });

  it('allocator classes: slab by page flag (6.1) or stack (6.12), vmalloc, page cache', async () => {
    for (const k of ['6.1', '6.12'] as const) {
      const r = await groupPageOwner(dump(k, 'after'), { by: 'allocator' });
      const keys = r.groups.map((g) => g.key).sort();
      expect(keys).toEqual(expect.arrayContaining(['slab', 'vmalloc', 'other']));
    }
    expect(allocatorOf({ frames: [], pageFlags: '0x10200(slab|head|zone=0)' })).toBe('slab');
    expect(allocatorOf({ frames: [{ func: 'vm_area_alloc_pages' }], pageFlags: '0x0(zone=0)' })).toBe(
      'vmalloc',
    );
    expect(allocatorOf({ frames: [{ func: 'shmem_get_folio_gfp.constprop.0' }] })).toBe('page cache');
    expect(allocatorOf({ frames: [{ func: 'do_anonymous_page' }] })).toBe('anonymous');
  });

  it('a stream (stdin) gives the same groups as the file', async () => {
    const a = await groupPageOwner(dump('6.12', 'mid'), { by: 'function' });
    const b = await groupPageOwner(createReadStream(dump('6.12', 'mid'), { highWaterMark: 5000 }), {
      by: 'function',
    });
    expect(b.groups).toEqual(a.groups);
  });

  it('flame exports carry every page', async () => {
    const r = await groupPageOwner(dump('6.1', 'after'));
    const text = toCollapsed(r.groups, 'pages');
    const sum = text
      .trim()
      .split('\n')
      .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(sum).toBe(r.pages);
    expect(text).toMatch(/;msl_page_leak_\[msl_leaky\];\S* 200$/m);
    const ss = toSpeedscope(r.groups, 'pages', 'x') as { profiles: { weights: number[] }[] };
    expect(ss.profiles[0]!.weights.reduce((s, w) => s + w, 0)).toBe(r.pages);
  });
});

describe('diffPageOwner on the lab before/after dumps', () => {
  for (const k of ['6.1', '6.12'] as const) {
    it(`${k}: msl_page_leak gains most, msl_balanced_churn ranks below every leak`, async () => {
      const d = await diffPageOwner(dump(k, 'before'), dump(k, 'after'), { allocators: KERNEL_ALLOCATORS });
      const top = d.deltas[0]!;
      expect(top.frames.some((f) => f.func === 'msl_page_leak' && f.module === 'msl_leaky')).toBe(true);
      expect(top.delta.pages).toBe(200);
      expect(top.isNew).toBe(true);
      const firstRank = (fn: string) => d.deltas.findIndex((x) => x.frames.some((f) => f.func === fn));
      const churn = firstRank('msl_balanced_churn');
      for (const leak of ['msl_page_leak', 'msl_vmalloc_leak', 'msl_slab_leak']) {
        expect(firstRank(leak)).toBeGreaterThanOrEqual(0);
        expect(firstRank(leak)).toBeLessThan(churn === -1 ? Infinity : churn);
      }
    });
  }

  it('by function: the leak functions are named, page cache excluded by default', async () => {
    const d = await diffPageOwner(dump('6.12', 'before'), dump('6.12', 'after'), {
      by: 'function',
      allocators: KERNEL_ALLOCATORS,
    });
    expect(d.deltas[0]!.key).toBe('msl_page_leak [msl_leaky]');
    const all = await diffPageOwner(dump('6.12', 'before'), dump('6.12', 'after'), { by: 'function' });
    // The guest writes each capture to tmpfs before copying it out: `after` was being
    // written while page_owner was read, and its page cache outranks the leak.
    expect(all.deltas[0]!.key).toMatch(/^shmem_/);
    expect(all.after.pages - all.before.pages).toBe(
      pagesInText(dump('6.12', 'after')) - pagesInText(dump('6.12', 'before')),
    );
  });
});

/**
 * The grouping written the plain way, from parsePageOwner's typed records: what the
 * byte-level engine (scanner, worker threads, interned stacks) must give.
 */
async function reference(file: string, by: PageOwnerGroupBy, opts: GroupPageOwnerOptions = {}) {
  const groups = new Map<string, { frames: Frame[]; count: number; pages: number }>();
  let records = 0;
  let kept = 0;
  let pages = 0;
  const allow = opts.allocators ? new Set(opts.allocators) : undefined;
  await parsePageOwner(file, (r) => {
    records++;
    if (allow && !allow.has(allocatorOf(r))) return;
    if (opts.module !== undefined && !r.frames.some((f) => f.module === opts.module)) return;
    kept++;
    pages += r.pages;
    let frames: Frame[];
    if (by === 'stack') frames = r.frames;
    else if (by === 'function') {
      const c = culpritFrame(r.frames);
      frames = c ? [{ func: c.func, ...(c.module !== undefined ? { module: c.module } : {}) }] : [];
    } else frames = [{ func: groupLabel(r, by) }];
    const key = stackKey(frames);
    let g = groups.get(key);
    if (!g) {
      g = { frames, count: 0, pages: 0 };
      groups.set(key, g);
    }
    g.count++;
    g.pages += r.pages;
  });
  return { groups, records, kept, pages };
}

function asMap(gs: readonly StackGroup[]) {
  return new Map(
    gs.map((g) => [g.key, { frames: g.frames, count: g.weights.count, pages: g.weights.pages }]),
  );
}

describe('the byte-level engine against a plain grouping of parsed records', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'po-group-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const dump = join(tmp, 'varied');
  const made = writeVariedDump(dump, {
    source: dump612(),
    bytes: 2 << 20,
    variants: 30,
    seed: 9,
    odd: ODD_RECORDS,
    every: 173,
  });
  function dump612() {
    return join(labFixture('6.12', 'after'), 'page_owner');
  }
  let fifos = 0;
  /**
   * The input of a way of reading: the file, a stream of it, or a named pipe `cat` writes it
   * into (read by a reader thread when threads read it); `done` ends the writer.
   */
  function inputFor(file: string, way: { stream?: boolean; fifo?: boolean }) {
    if (way.stream) return { input: createReadStream(file, { highWaterMark: 40_000 }), done: () => {} };
    if (!way.fifo) return { input: file, done: () => {} };
    const path = join(tmp, `fifo-${fifos++}`);
    execFileSync('mkfifo', [path]);
    const cat = spawn('sh', ['-c', 'exec cat "$1" > "$2"', 'sh', file, path], { stdio: 'ignore' });
    return {
      input: path,
      done: () => {
        cat.kill();
        rmSync(path, { force: true });
      },
    };
  }

  it('every grouping, filters, in this thread, worker threads and from a stream', async () => {
    await made;
    const cases: [PageOwnerGroupBy, GroupPageOwnerOptions][] = PAGE_OWNER_GROUP_BY.map((by) => [by, {}]);
    cases.push(['stack', { allocators: KERNEL_ALLOCATORS }], ['function', { module: 'leaky' }]);
    for (const [by, o] of cases) {
      const want = await reference(dump, by, o);
      for (const how of [
        { workers: 0 },
        // Two workers and the calling thread; one worker and the calling thread; workers alone.
        { workers: 2, chunkBytes: 200_000 },
        { workers: 1, chunkBytes: 120_000 },
        { workers: 2, helper: false, chunkBytes: 200_000 },
        { stream: true, workers: 2, chunkBytes: 150_000 },
        // A stream read here (grouping takes workers only when asked; the hand-over of a big
        // pipe to workers is page_owner_sort.test.ts's).
        { stream: true, chunkBytes: 100_000 },
        // A named pipe: read by a reader thread for two workers; read here, then handed over.
        { fifo: true, workers: 2, chunkBytes: 150_000 },
        { fifo: true, chunkBytes: 150_000, minParallelBytes: 300_000, idleCores: () => 2 },
      ]) {
        const { stream, fifo, ...parallel } = how as {
          stream?: boolean;
          fifo?: boolean;
          workers?: number;
          helper?: boolean;
          chunkBytes?: number;
          minParallelBytes?: number;
          idleCores?: () => number;
        };
        const { input, done } = inputFor(dump, { stream, fifo });
        const got = await groupPageOwner(input, { by, ...o, ...parallel }).finally(done);
        expect(got.records).toBe(want.records);
        expect(got.kept).toBe(want.kept);
        expect(got.pages).toBe(want.pages);
        expect(asMap(got.groups)).toEqual(want.groups);
        // top(n) is topGroups(groups) cut at n, without building the other groups.
        expect(got.top('pages', 9).map((g) => g.key)).toEqual(
          topGroups(got.groups, 'pages', 9).map((g) => g.key),
        );
      }
    }
  }, 300_000);

  it('shows the frames of the first record kept when a filter skipped the first of its stack', async () => {
    // Two records of one stack (same functions, other offsets): the first a slab page, the
    // second not. Keeping only the second, its own offsets are the ones shown.
    const rec = (pid: number, flags: string, off: string) =>
      `Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid ${pid}, tgid ${pid} (insmod), ts ${pid}000 ns\n` +
      `PFN 0x${(0x1000 + pid).toString(16)} type Unmovable Block 4 type Unmovable Flags ${flags}\n` +
      ` msl_page_leak+${off}/0x43 [msl_leaky]\n do_one_initcall+0x41/0x1e0\n\n`;
    const file = join(tmp, 'filtered-first');
    writeFileSync(
      file,
      rec(1, '0x200(slab|section=0|zone=1)', '0x21') + rec(2, '0x0(section=0|zone=1)', '0x35'),
    );
    for (const o of [{ allocators: ['other' as const] }, {}]) {
      const want = await reference(file, 'stack', o);
      const got = await groupPageOwner(file, { ...o, workers: 0 });
      expect(asMap(got.groups)).toEqual(want.groups);
    }
    const kept = await groupPageOwner(file, { allocators: ['other'] });
    expect(kept.groups.map((g) => g.frames[0]!.offset)).toEqual([0x35]);
  });

  it('diff: the same deltas as the plain groupings of both dumps', async () => {
    await made;
    const before = join(tmp, 'before');
    await writeVariedDump(before, {
      source: join(labFixture('6.12', 'before'), 'page_owner'),
      bytes: 1 << 20,
      variants: 30,
      seed: 10,
    });
    const d = await diffPageOwner(before, dump, { workers: 2, chunkBytes: 150_000 });
    const b = await reference(before, 'stack');
    const a = await reference(dump, 'stack');
    const keys = new Set([...b.groups.keys(), ...a.groups.keys()]);
    expect(d.deltas.length).toBe(keys.size);
    for (const x of d.deltas) {
      const wb = b.groups.get(x.key);
      const wa = a.groups.get(x.key);
      expect(x.delta.pages).toBe((wa?.pages ?? 0) - (wb?.pages ?? 0));
      expect(x.isNew).toBe(wb === undefined);
      expect(x.frames).toEqual((wa ?? wb)!.frames);
    }
    expect(d.before.records).toBe(b.records);
    expect(d.after.pages).toBe(a.pages);
  }, 300_000);

  it('reports a bad stack line with its line and byte, also from a worker thread', async () => {
    await made;
    const bad = join(tmp, 'bad');
    const text = readFileSync(dump, 'latin1');
    const at = text.indexOf('\n\n', text.length >> 1) + 2;
    const rec =
      'Page allocated via order 0, mask 0x0(), pid 1, tgid 1 (x), ts 1 ns\nPFN 0x1 type Unmovable Block 0 type Unmovable Flags 0x0()\n frame+0x1/0x2\nnot a frame line\n\n';
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, text.slice(0, at) + rec + text.slice(at), 'latin1');
    const line = text.slice(0, at).split('\n').length + 3;
    for (const [workers, helper] of [
      [0, true],
      [2, true],
      [2, false],
    ] as const) {
      await expect(groupPageOwner(bad, { workers, helper, chunkBytes: 150_000 })).rejects.toThrow(
        new RegExp(`bad:${line} \\(byte ${at}\\): expected a stack frame, PFN line`),
      );
    }
  }, 120_000);
  it('the first bad record in the input is the one reported, whichever thread scanned it', async () => {
    await made;
    const text = readFileSync(dump, 'latin1');
    const bad = (n: number) =>
      `Page allocated via order 0, mask 0x0(), pid ${n}, tgid ${n} (x), ts 1 ns\nPFN 0x1 type Unmovable Block 0 type Unmovable Flags 0x0()\n frame+0x1/0x2\nbad line ${n}\n\n`;
    const chunk = 100_000;
    // The calling thread takes chunk 0, each worker four queued (1-4, then 5-8), the calling
    // thread the next ones while it waits: errors in either, and in both. The grouping finds
    // these bad records (the scanner hands them on to the record parser): a bad record in the
    // calling thread's first chunk went unreported when the grouping of the chunk it had just
    // scanned was taken for the scan's error.
    for (const chunks of [[0], [2], [0, 3], [2, 6], [1, 2], [12, 15]]) {
      let out = '';
      let from = 0;
      for (const c of chunks) {
        const at = text.indexOf('\n\n', c * chunk + chunk / 2) + 2;
        out += text.slice(from, at) + bad(c);
        from = at;
      }
      out += text.slice(from);
      const file = join(tmp, `bad-in-${chunks.join('-')}`);
      writeFileSync(file, out, 'latin1');
      const want = await parserError(file);
      expect(want).toMatch(new RegExp(`expected a stack frame, PFN line.*bad line ${chunks[0]}`));
      for (const workers of [1, 2]) {
        const e = await groupPageOwner(file, { workers, chunkBytes: chunk }).then(
          () => new Error('no error'),
          (x: Error) => x,
        );
        expect(e.message, `workers ${workers}, bad records in chunks ${chunks}`).toBe(want);
      }
    }
  }, 120_000);

  /** Every way of reading a dump: this thread (a file or a stream), worker threads over the file or a stream. */
  const WAYS: {
    stream?: boolean;
    fifo?: boolean;
    workers?: number;
    helper?: boolean;
    chunkBytes: number;
    minParallelBytes?: number;
    idleCores?: () => number;
  }[] = [
    { workers: 0, chunkBytes: 100_000 },
    { workers: 2, chunkBytes: 150_000 },
    { workers: 1, chunkBytes: 120_000 },
    { workers: 2, helper: false, chunkBytes: 150_000 },
    { stream: true, workers: 2, chunkBytes: 150_000 },
    { stream: true, chunkBytes: 100_000 },
    { fifo: true, workers: 2, chunkBytes: 150_000 },
    { fifo: true, chunkBytes: 150_000, minParallelBytes: 300_000, idleCores: () => 2 },
  ];

  /** The error of groupPageOwner on `file` read each way (all the same: returned once). */
  async function errorsOf(file: string, o: GroupPageOwnerOptions = {}): Promise<string> {
    const got = new Set<string>();
    for (const { stream, fifo, ...parallel } of WAYS) {
      const { input, done } = inputFor(file, { stream, fifo });
      const e = await groupPageOwner(input, { ...o, ...parallel, file })
        .then(
          () => new Error('no error'),
          (x: Error) => x,
        )
        .finally(done);
      expect(e, JSON.stringify(parallel)).toBeInstanceOf(MemsleuthError);
      got.add(e.message);
    }
    expect([...got]).toHaveLength(1);
    return [...got][0]!;
  }

  /** The error parsePageOwner (the record parser) gives for `file`. */
  async function parserError(file: string, o: PageOwnerParseOptions = {}): Promise<string> {
    return parsePageOwner(file, () => {}, o).then(
      () => 'no error',
      (x: Error) => x.message,
    );
  }

  it('refuses the numbers the record parser refuses, with its error, in every thread', async () => {
    await made;
    const text = readFileSync(dump, 'latin1');
    const at = text.indexOf('\n\n', Math.floor(text.length * 0.6)) + 2;
    const head = (order: string, mask: string) =>
      `Page allocated via order ${order}, mask ${mask}(GFP_KERNEL), pid 1, tgid 1 (x), ts 1 ns\n`;
    const pfn = (p: string) => `PFN ${p} type Unmovable Block 0 type Unmovable Flags 0x0()\n`;
    const stack = ' frame+0x1/0x2\n\n';
    const cases: [string, RegExp][] = [
      [head('21', '0xcc0') + pfn('0x1') + stack, /expected an order of at most 20/],
      [
        head('99999999999999999999', '0xcc0') + pfn('0x1') + stack,
        /the order \(a whole number below 2\^53\)/,
      ],
      [head('0', '0x20000000000000') + pfn('0x1') + stack, /the mask \(a number below 2\^53\)/],
      [head('0', '0xcc0') + pfn('0x20000000000000') + stack, /the PFN \(a number below 2\^53\)/],
      [head('0', '0xcc0') + pfn('99999999999999999999') + stack, /the PFN \(a whole number below 2\^53\)/],
    ];
    const line = text.slice(0, at).split('\n').length;
    for (const [i, [rec, what]] of cases.entries()) {
      const bad = join(tmp, `absurd-${i}`);
      writeFileSync(bad, text.slice(0, at) + rec + text.slice(at), 'latin1');
      const want = await parserError(bad);
      expect(want).toMatch(what);
      expect(want).toMatch(new RegExp(`^${bad}:${line + (i >= 3 ? 1 : 0)}[: ]`));
      expect(await errorsOf(bad)).toBe(want);
    }
  }, 300_000);

  it('a record over the limit is an error at its first byte, in every thread and from a stream', async () => {
    await made;
    const text = readFileSync(dump, 'latin1');
    const at = text.indexOf('\n\n', Math.floor(text.length * 0.4)) + 2;
    const rec = text.slice(at, text.indexOf('\n\n', at) + 2);
    const max = 100_000;
    const cases = [
      // A record of 150 kB, complete: its blank line comes after the limit.
      rec.replace('\n ', `\n${' deep+0x1/0x2\n'.repeat(10_000)} `),
      // 300 kB without a blank line, then records again.
      `${'x'.repeat(299_999)}\n\n`,
    ];
    for (const [i, insert] of cases.entries()) {
      const bad = join(tmp, `long-${i}`);
      writeFileSync(bad, text.slice(0, at) + insert + text.slice(at), 'latin1');
      const want = await parserError(bad, { maxRecordBytes: max });
      expect(want).toBe(
        `${bad} (byte ${at}): expected records of at most 100000 bytes, each followed by a blank line, found "no blank line within 100000 bytes"`,
      );
      expect(await errorsOf(bad, { maxRecordBytes: max })).toBe(want);
    }
    // The same at the end: 300 kB that never end.
    const tail = join(tmp, 'long-tail');
    writeFileSync(tail, `${text}${'y'.repeat(300_000)}`, 'latin1');
    expect(await errorsOf(tail, { maxRecordBytes: max })).toBe(
      `${tail} (byte ${text.length}): expected records of at most 100000 bytes, each followed by a blank line, found "no blank line within 100000 bytes"`,
    );
    // Records up to the limit are read.
    const fits = join(tmp, 'long-fits');
    writeFileSync(fits, text.slice(0, at) + cases[0]! + text.slice(at), 'latin1');
    const records = (await groupPageOwner(dump)).records + 1;
    const g = await groupPageOwner(fits, { workers: 2, chunkBytes: 150_000, maxRecordBytes: 200_000 });
    expect(g.records).toBe(records);
    // In this thread, the 150 kB record is joined from reads of 50 kB (more than the room
    // kept before each read for an unfinished record).
    const here = await groupPageOwner(fits, { workers: 0, chunkBytes: 100_000, maxRecordBytes: 200_000 });
    expect(here.records).toBe(records);
    expect(asMap(here.groups)).toEqual(asMap(g.groups));
  }, 300_000);
});
