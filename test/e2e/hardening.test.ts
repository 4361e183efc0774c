/**
 * The reproducers of issue 10 ("every bad input gets a clear error"), each as it was filed:
 * silently wrong results, absurd numbers, inputs that never end or die with a RangeError,
 * and option parsing. Bundles, manifests and recordings have their own tests beside the
 * code (src/capture/archive.test.ts, test/e2e/record.test.ts, src/store/recording.test.ts).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labFixture } from '../paths.js';
import { cli } from '../run.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-hardening-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the 6.12 `after` capture with one file replaced. */
function withFile(name: string, file: string, text: string | Buffer): string {
  const dir = join(work, name);
  cpSync(labFixture('6.12', 'after'), dir, { recursive: true });
  writeFileSync(join(dir, file), text);
  return dir;
}

const lab = (file: string) => readFileSync(join(labFixture('6.12', 'after'), file), 'utf8');

/** The one-line error and hint every bad input gets: no stack, no NaN/undefined/Infinity. */
function expectCleanError(
  r: { status: number | null; stdout: string; stderr: string },
  message: RegExp,
): void {
  expect(r.status).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(message);
  expect(r.stderr.split('\n').filter(Boolean).length).toBeLessThanOrEqual(2);
  expect(r.stderr).not.toMatch(/\n\s+at |internal error|NaN|undefined|Infinity/);
}

describe('cut files are errors, or warnings with --lenient (were silently wrong, exit 0)', () => {
  it('meminfo cut after 7 lines (was "kernel 0 B, unaccounted 24 MiB")', async () => {
    const cut = lab('meminfo').split('\n').slice(0, 7).join('\n').concat('\n');
    const dir = withFile('meminfo7', 'meminfo', cut);
    const r = await cli(['report', dir]);
    expectCleanError(
      r,
      /^memsleuth: .*meminfo7:meminfo:8: expected the fields every meminfo prints \(Inactive, SwapTotal, .*VmallocChunk missing\), found "<end of file>"\nhint: the input was cut short: capture it again, or pass --lenient to read what is complete\n$/,
    );
    const l = await cli(['report', '--lenient', dir]);
    expect(l.status).toBe(0);
    expect(l.stderr).toMatch(
      /^memsleuth: warning: .*meminfo7:meminfo:8: input cut short \(--lenient\): Inactive, SwapTotal, .* missing \(every meminfo prints them\): read as absent\n$/,
    );
  });

  it('a buddyinfo row cut mid-line (was "total free 28.0 KiB", and a diff of +454.2 MiB taken from free)', async () => {
    const dir = withFile('buddycut', 'buddyinfo', lab('buddyinfo').slice(0, 40));
    const r = await cli(['report', dir]);
    expectCleanError(
      r,
      /buddycut:buddyinfo:1: expected a last line ending in a newline .*found "Node 0, zone {4}DMA32/,
    );
    const d = await cli(['diff', '--source', 'buddyinfo', labFixture('6.12', 'before'), dir]);
    expect(d.status).toBe(1);
    expect(d.stdout).not.toMatch(/taken from free/);
    expect(d.stderr).toMatch(
      /buddyinfo left out: .*buddycut:buddyinfo:1: expected a last line ending in a newline/,
    );
  });

  it('a kmemleak report cut mid-frame (was counted with no warning)', async () => {
    const text = lab('kmemleak');
    const dir = withFile('kmemcut', 'kmemleak', text.slice(0, text.indexOf('msl_step', 100) + 4));
    const r = await cli(['kmemleak', 'report', dir]);
    expectCleanError(r, /kmemcut:kmemleak:9: expected a last line ending in a newline, found " {4}msl_"/);
    const l = await cli(['kmemleak', 'report', '--lenient', dir]);
    expect(l.status).toBe(0);
    expect(l.stdout).toMatch(/^0 unreferenced objects/);
    expect(l.stderr).toBe(
      `memsleuth: warning: ${dir}:kmemleak:9: input cut short (--lenient): dropped the report of object 0xffff888003150f00 (line 1) and the cut line "    msl_"\n`,
    );
  });

  it('a vmallocinfo line cut mid-field (was a caller named "d")', async () => {
    const lines = lab('vmallocinfo').split('\n');
    const dir = withFile(
      'vmcut',
      'vmallocinfo',
      `${lines.slice(0, 20).join('\n')}\n${lines[20]!.slice(0, 60)}`,
    );
    const r = await cli(['vmalloc', 'top', dir]);
    expectCleanError(r, /vmcut:vmallocinfo:21: expected a last line ending in a newline/);
    const l = await cli(['vmalloc', 'top', '--lenient', dir]);
    expect(l.status).toBe(0);
    expect(l.stdout).toMatch(/^20 areas from /);
    expect(l.stderr).toMatch(
      /vmcut:vmallocinfo:21: input cut short \(--lenient\): dropped "0xffffc90000039000-/,
    );
  });
});

describe('repeated lines', () => {
  it('a duplicated vmallocinfo line (was counted twice for its caller)', async () => {
    const lines = lab('vmallocinfo').trimEnd().split('\n');
    const dup = lines.find((l) => l.includes('msl_vmalloc_leak'))!;
    const dir = withFile('vmdup', 'vmallocinfo', `${[...lines, dup].join('\n')}\n`);
    const r = await cli(['vmalloc', 'top', dir]);
    expectCleanError(r, /vmdup:vmallocinfo:\d+: expected each area once \(the same line is line \d+\)/);
  });

  it('a repeated allocinfo key is kept as a second call site: the kernel prints such lines itself', async () => {
    // kernel/sched/sched.h:2632 alloc_user_cpus_ptr is printed twice by the 6.12 lab kernel (an
    // inline function, one code tag per file that includes it): a duplicated line cannot be
    // told from that, so it is read as what it says.
    const text = lab('allocinfo');
    expect(text.match(/kernel\/sched\/sched\.h:2632 func:alloc_user_cpus_ptr/g)).toHaveLength(2);
    const r = await cli(['allocinfo', 'top', '--json', labFixture('6.12', 'after')]);
    const tags = JSON.parse(r.stdout).tags as { func: string; line: number }[];
    expect(tags.filter((t) => t.func === 'alloc_user_cpus_ptr').map((t) => t.line)).toEqual([136, 138]);
  });
});

describe('absurd numbers are refused (were printed as PiB, negative, Infinity and NaN)', () => {
  it('MemFree: 99999999999999999999 kB, and a MemFree above MemTotal', async () => {
    for (const value of ['99999999999999999999', '9999999999']) {
      const dir = withFile(
        `memfree${value.length}`,
        'meminfo',
        lab('meminfo').replace(/^MemFree:.*$/m, `MemFree:        ${value} kB`),
      );
      const r = await cli(['report', dir]);
      expectCleanError(
        r,
        value.length > 16
          ? /meminfo:2: expected a value below 2\^53 \(or a wrapped negative 64-bit value\), found "MemFree: {8}99999999999999999999 kB"/
          : /meminfo:2: expected MemFree at most MemTotal \(497740 kB\): it counts pages of RAM, found "MemFree: 9999999999 kB"/,
      );
    }
  });

  it('page_owner order 99999999999999999999, and an order above any kernel maximum', async () => {
    const text = lab('page_owner');
    for (const [order, message] of [
      [
        '99999999999999999999',
        /po:1: expected the order \(a whole number below 2\^53\), found "99999999999999999999"/,
      ],
      ['21', /po:1 \(byte 0\): expected an order of at most 20, found "Page allocated via order 21,/],
    ] as const) {
      const f = join(work, 'po');
      writeFileSync(f, text.replace('order 0,', `order ${order},`));
      expectCleanError(await cli(['page-owner', 'top', f]), message);
    }
  });
});

describe('inputs that never ended or died with a RangeError', () => {
  it('page-owner top /dev/zero and page-owner sort /dev/zero OUT end with an error', async () => {
    expectCleanError(
      await cli(['page-owner', 'top', '/dev/zero']),
      /^memsleuth: \/dev\/zero \(byte 0\): expected records of at most 1 MiB, each followed by a blank line/,
    );
    const r = await cli(['page-owner', 'sort', '/dev/zero', join(work, 'sorted')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^memsleuth: \/dev\/zero \(byte 0\): expected records of at most 1 MiB/);
  });

  it('slab trace-diff and page-owner top on one 700 MB line (were a RangeError)', async () => {
    // A sparse file: 700 MB of NUL bytes without a newline, no disk used.
    const f = join(work, 'oneline');
    writeFileSync(f, 'Page allocated via order 0, mask 0x0(), pid 1 ');
    truncateSync(f, 700e6);
    expectCleanError(
      await cli(['slab', 'trace-diff', f, f]),
      /oneline: 700000000 bytes: larger than 268435456 bytes, not a kernel text source/,
    );
    expectCleanError(
      await cli(['page-owner', 'top', f]),
      /oneline \(byte 0\): expected records of at most 1 MiB/,
    );
    // Below the size limit, the line limit stops it after its first MiB.
    truncateSync(f, 200e6);
    expectCleanError(await cli(['slab', 'trace-diff', f, f]), /oneline:1: expected a line of at most 1 MiB/);
  });

  it('kmemleak report on one 64 MB line ends at the line limit (was quadratic: 30 s)', async () => {
    const f = join(work, 'kmemleak-long');
    writeFileSync(
      f,
      Buffer.concat([
        Buffer.from('unreferenced object 0xffff888003150f00 (size 96):\n  comm "x", pid 1, jiffies 1 '),
        Buffer.alloc(64e6, 0x79),
        Buffer.from('\n'),
      ]),
    );
    const t0 = Date.now();
    expectCleanError(
      await cli(['kmemleak', 'report', f]),
      /kmemleak-long:2: expected a line of at most 1 MiB/,
    );
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});

describe('option values', () => {
  it('--top -1 says what --top expects (was "argument is ambiguous")', async () => {
    for (const args of [
      ['vmalloc', 'top', '--top', '-1', labFixture('6.1', 'after')],
      ['report', '--top', '-1'],
      ['page-owner', 'top', '-n', '-3', '/dev/null'],
    ]) {
      const r = await cli(args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^memsleuth: --(top|limit): expected a whole number >= 1, found "-\d"\n$/);
    }
    // A value after -- stays a positional.
    const r = await cli(['vmalloc', 'top', '--', '-1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/-1: cannot open snapshot/);
  });
});
