import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pageOwnerSortBinary } from '../page-owner-c/tools.js';
import { CLI_BIN, labFixture } from '../paths.js';
import { cli } from '../run.js';
import { runCli } from './cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'pos-e2e-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const dump = (k: '6.1' | '6.12', m: 'before' | 'after') => join(labFixture(k, m), 'page_owner');

describe('memsleuth page-owner sort', () => {
  it('reads stdin and writes stdout, same bytes as the C tool on the file', async () => {
    const input = readFileSync(dump('6.12', 'after'), 'latin1');
    const r = await cli(['page-owner', 'sort', '--cull=stacktrace', '-m', '-', '-'], { input });
    expect(r.status).toBe(0);
    const c = join(tmp, 'c.out');
    spawnSync(pageOwnerSortBinary('6.12'), ['--cull=stacktrace', '-m', dump('6.12', 'after'), c]);
    expect(r.stdout === readFileSync(c, 'latin1')).toBe(true);
    expect(r.stdout).toContain('msl_page_leak');
  });
  it('prints the C usage and exits 1 on a bad option; --compat picks the tool version', async () => {
    const r = await cli(['page-owner', 'sort', '-r', 'a', 'b']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("memsleuth page-owner sort: invalid option -- 'r'\n");
    expect(r.stdout).toMatch(/^Usage: \.\/page_owner_sort \[OPTIONS\] <input> <output>\n-a\t\t\tSort/);
    const out = join(tmp, 'r.out');
    const r61 = await cli(['page-owner', 'sort', '--compat', '6.1', '-r', dump('6.1', 'after'), out]);
    expect(r61.status).toBe(0);
    expect(existsSync(out)).toBe(true);
    const bad = await cli(['page-owner', 'sort', '--compat', '5.4', 'a', 'b']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--compat: expected 6.1 or 6.12/);
  });
  it('writes an output over 16 MiB from its writer thread, byte for byte; a full disk is an I/O error', async () => {
    const { writeVariedDump } = await import('../page-owner-c/varied.js');
    const f = join(tmp, 'big');
    // Nearly every record its own group: the output is about as big as the input.
    await writeVariedDump(f, { source: dump('6.12', 'after'), bytes: 24 << 20, variants: 100, seed: 9 });
    const c = join(tmp, 'big-c.out');
    spawnSync(pageOwnerSortBinary('6.12'), ['-m', f, c]);
    const out = join(tmp, 'big.out');
    const r = runCli(['page-owner', 'sort', '-m', f, out]);
    expect(r.status).toBe(0);
    expect(readFileSync(out).length).toBeGreaterThan(16 << 20);
    expect(readFileSync(out).equals(readFileSync(c))).toBe(true);
    // Over an existing file: a big one (80 MiB, cut to its first byte while the input is read)
    // and a small one longer than nothing; either way only the new output is left, as after
    // fopen("w"). Written from this thread (the input is read by it alone), and from the
    // writer's thread (a worker read it too).
    for (const [size, workers] of [
      [80 << 20, '0'],
      [4096, '0'],
      [80 << 20, '1'],
    ] as const) {
      writeFileSync(out, 'old bytes\n'.repeat(100));
      truncateSync(out, size);
      const again = runCli(['page-owner', 'sort', '-m', f, out], { env: { MEMSLEUTH_WORKERS: workers } });
      expect(again.status).toBe(0);
      expect(readFileSync(out).equals(readFileSync(c))).toBe(true);
    }
    // An empty input over a big file: nothing is left of it.
    const empty = join(tmp, 'empty');
    writeFileSync(empty, '');
    truncateSync(out, 80 << 20);
    const none = runCli(['page-owner', 'sort', empty, out]);
    expect(none.status).toBe(0);
    expect(statSync(out).size).toBe(0);
    // The input missing: the C tool has truncated its output already (exit 1), big or not.
    truncateSync(out, 80 << 20);
    const missing = runCli(['page-owner', 'sort', join(tmp, 'no-such-dump'), out]);
    expect(missing.status).toBe(1);
    expect(statSync(out).size).toBe(0);
    const full = runCli(['page-owner', 'sort', f, '/dev/full']);
    expect(full.status).toBe(2);
    expect(full.stderr).toBe('memsleuth: page-owner sort: writing /dev/full: No space left on device\n');
    // stdout a pipe: the same bytes, through the writer thread (which waits while the
    // non-blocking pipe is full instead of the stream holding the whole output).
    const piped = runCli(['page-owner', 'sort', '-m', f, '-']);
    expect(piped.status).toBe(0);
    expect(piped.stdout === readFileSync(c, 'utf8')).toBe(true);
    // A reader that waits a second first (the pipe fills; nothing is lost).
    const slow = spawnSync(
      'bash',
      ['-c', `"${process.execPath}" "${CLI_BIN}" page-owner sort -m "${f}" - | (sleep 1; cat) | wc -c`],
      { encoding: 'utf8' },
    );
    expect(Number(slow.stdout.trim())).toBe(readFileSync(c).length);
    // A reader that goes away (`| head`) ends the output quietly, as for every command.
    const head = spawnSync(
      'bash',
      [
        '-c',
        `"${process.execPath}" "${CLI_BIN}" page-owner sort -m "${f}" - | head -c 1000 >/dev/null; echo "\${PIPESTATUS[0]}"`,
      ],
      { encoding: 'utf8' },
    );
    expect(head.stdout).toBe('0\n');
    expect(head.stderr).toBe('');
  });
});

describe('worker threads from the built CLI (dist/)', () => {
  it('sort and top give the same bytes with and without workers', async () => {
    const { writeVariedDump, ODD_RECORDS } = await import('../page-owner-c/varied.js');
    const f = join(tmp, 'varied');
    await writeVariedDump(f, {
      source: dump('6.12', 'after'),
      bytes: 2 << 20,
      variants: 10,
      seed: 4,
      odd: ODD_RECORDS,
      every: 101,
    });
    const c = join(tmp, 'c.out');
    spawnSync(pageOwnerSortBinary('6.12'), [f, c]);
    const threads = { MEMSLEUTH_WORKERS: '2', MEMSLEUTH_CHUNK_KB: '200' };
    const out = join(tmp, 'w.out');
    const r = runCli(['page-owner', 'sort', f, out], { env: threads });
    expect(r.status).toBe(0);
    expect(readFileSync(out, 'latin1') === readFileSync(c, 'latin1')).toBe(true);
    // Standard input a pipe: read as /dev/stdin by a reader thread, which hands the workers
    // pieces of whole records: the same bytes; a record over the limit (no blank line in a
    // piece: joined here) refused at its byte, as in a file.
    // (A shell's pipe: Node's own child processes get a socket pair, read as a stream.)
    const fromPipe = (input: string) =>
      spawnSync(
        'bash',
        ['-c', 'cat "$1" | "$2" "$3" page-owner sort - "$4"', 'sh', input, process.execPath, CLI_BIN, out],
        {
          encoding: 'utf8',
          env: { ...process.env, ...threads },
        },
      );
    rmSync(out);
    const text = readFileSync(f);
    const piped = fromPipe(f);
    expect(piped.stderr).toBe('');
    expect(piped.status).toBe(0);
    expect(readFileSync(out, 'latin1') === readFileSync(c, 'latin1')).toBe(true);
    const at = text.indexOf('\n\n', 1_500_000) + 2;
    const long = Buffer.concat([
      text.subarray(0, at),
      Buffer.from(
        `Page allocated via order 0, mask 0x0(), pid 1, tgid 1 (x), ts 1 ns\n${' f+0x1/0x2\n'.repeat(110_000)}\n`,
      ),
      text.subarray(at),
    ]);
    const longFile = join(tmp, 'long');
    writeFileSync(longFile, long);
    const failed = fromPipe(longFile);
    expect(failed.status).toBe(2);
    expect(failed.stderr).toContain(`memsleuth: <stdin> (byte ${at}): expected records of at most 1 MiB`);
    const top = (env: Record<string, string>) =>
      JSON.parse(runCli(['page-owner', 'top', f, '--json'], { env }).stdout) as { groups: unknown[] };
    const a = top(threads);
    expect(a.groups.length).toBeGreaterThan(100);
    expect(a).toEqual(top({ MEMSLEUTH_WORKERS: '0' }));
    const many = runCli(['page-owner', 'top', f], { env: { MEMSLEUTH_WORKERS: 'many' } });
    expect(many.status).toBe(2);
    expect(many.stderr).toMatch(/MEMSLEUTH_WORKERS: expected a whole number/);
  });
});

describe('memsleuth page-owner top', () => {
  it('a pipe gives the same result as the file', async () => {
    const fromFile = await cli(['page-owner', 'top', dump('6.12', 'after'), '--json']);
    const fromPipe = await cli(['page-owner', 'top', '-', '--json'], {
      input: readFileSync(dump('6.12', 'after'), 'latin1'),
    });
    expect(fromFile.status).toBe(0);
    const a = JSON.parse(fromFile.stdout);
    const b = JSON.parse(fromPipe.stdout);
    expect(b.groups).toEqual(a.groups);
    expect(b.pages).toBe(a.pages);
  });
  it('groups by module in a table that fits 100 columns', async () => {
    const r = await cli(['page-owner', 'top', dump('6.1', 'after'), '--by', 'module']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^2 +292 +1\.1 MiB +192 +4\.0% +\[msl_leaky\]$/m);
    for (const l of r.stdout.split('\n')) expect(l.length).toBeLessThanOrEqual(100);
  });
  it('names another kernel file for what it is, exit 2', async () => {
    const r = await cli(['page-owner', 'top', join(labFixture('6.12', 'after'), 'meminfo')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/meminfo: this is meminfo, not page_owner\n/);
  });
  it('reports a file that is not page_owner output with line and byte, exit 2', async () => {
    const file = join(tmp, 'notes.txt');
    writeFileSync(file, 'hello\n');
    const r = await cli(['page-owner', 'top', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/notes.txt:1 \(byte 0\): expected a page_owner record header/);
  });
});

describe('memsleuth page-owner diff', () => {
  it('names msl_page_leak first, with flame exports of the gain', async () => {
    const collapsed = join(tmp, 'gain.folded');
    const speedscope = join(tmp, 'gain.speedscope.json');
    const r = await cli([
      'page-owner',
      'diff',
      dump('6.1', 'before'),
      dump('6.1', 'after'),
      '--collapsed',
      collapsed,
      '--speedscope',
      speedscope,
    ]);
    expect(r.status).toBe(0);
    const firstRow = r.stdout.split('\n').find((l) => /^\s*1 /.test(l))!;
    expect(firstRow).toMatch(/\+200 .* NEW\s+msl_page_leak \[msl_leaky\]/);
    const lines = r.stdout.split('\n');
    const rank = (fn: string) => lines.findIndex((l) => l.includes(fn));
    expect(rank('msl_slab_leak')).toBeGreaterThan(0);
    expect(rank('msl_balanced_churn') === -1 || rank('msl_balanced_churn') > rank('msl_slab_leak')).toBe(
      true,
    );
    expect(readFileSync(collapsed, 'utf8')).toMatch(/msl_page_leak_\[msl_leaky\];\S* 200$/m);
    expect(JSON.parse(readFileSync(speedscope, 'utf8')).exporter).toBe('memsleuth');
  });
  it('takes snapshot directories as well as dump files', async () => {
    const dirs = await cli([
      'page-owner',
      'diff',
      labFixture('6.12', 'before'),
      labFixture('6.12', 'after'),
      '--json',
    ]);
    const files = await cli(['page-owner', 'diff', dump('6.12', 'before'), dump('6.12', 'after'), '--json']);
    expect(dirs.status).toBe(0);
    expect(JSON.parse(dirs.stdout).deltas).toEqual(JSON.parse(files.stdout).deltas);
    const none = await cli(['page-owner', 'top', tmp]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(
      /page_owner: not in snapshot\nhint: this snapshot was captured without page_owner\. To capture it: boot with page_owner=on/,
    );
  });
  it('needs two dumps', async () => {
    const r = await cli(['page-owner', 'diff', dump('6.1', 'before')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/BEFORE AFTER/);
  });
});

describe('progress', () => {
  it('shows bytes, records and rate on a terminal stderr only', async () => {
    const { runCommand } = await import('../../src/cli/main.js');
    const { Writable } = await import('node:stream');
    const run = async (stderrIsTTY: boolean) => {
      let err = '';
      const sink = () =>
        new Writable({
          write(c, _e, cb) {
            cb();
            return void c;
          },
        });
      const stderr = new Writable({
        write(c, _e, cb) {
          err += String(c);
          cb();
        },
      });
      const code = await runCommand(['page-owner', 'top', dump('6.12', 'after')], {
        stdout: sink(),
        stderr,
        stdin: process.stdin,
        cwd: process.cwd(),
        env: {},
        stdoutIsTTY: false,
        stderrIsTTY,
      });
      return { code, err };
    };
    const tty = await run(true);
    expect(tty.code).toBe(0);
    expect(tty.err).toMatch(/page-owner top: \d+ MB, 7017 records, \d+ MB\/s/);
    expect((await run(false)).err).toBe('');
  });
});
