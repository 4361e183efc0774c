import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../run.js';
import { FIX, KO, lineOf, returnOffset, spanOf, TREE, VMLINUX } from '../symbols-fixtures.js';
import { runCli } from './cli.js';

const hex = (n: number) => `0x${n.toString(16)}`;
const tmp = mkdtempSync(join(tmpdir(), 'memsleuth-symbolize-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A kmemleak-style report whose frames are the fixtures' (6.2+ form, and the older form with addresses). */
let report: string;
let lines: { leak: number; grab: number; kmalloc: number; slab: number; init: number };
beforeAll(async () => {
  const leak = returnOffset(KO, 'fx_leak', 'fx_alloc');
  const init = returnOffset(KO, 'fx_init', 'fx_leak');
  const km = returnOffset(VMLINUX, 'fx_kmalloc', 'fx_page_get');
  const frame = (f: string, off: number, len: number, mod?: string) =>
    `${f}+${hex(off)}/${hex(len)}${mod ? ` [${mod}]` : ''}`;
  report = [
    'unreferenced object 0xffff888003150f00 (size 96):',
    '  comm "kworker/0:0", pid 8, jiffies 4294899621',
    '  backtrace (crc a4d68168):',
    `    ${frame('fx_kmalloc', km.offset, await spanOf(VMLINUX, 'fx_kmalloc'))}`,
    `    ${frame('fx_leak', leak.offset, await spanOf(KO, 'fx_leak'), 'fixture_mod')}`,
    `    [<ffffffffa0000021>] ${frame('fx_init', init.offset, await spanOf(KO, 'fx_init'), 'fixture_mod')}`,
    `    ${frame('ret_from_fork', 0x1c, 0x2e)}`,
    '',
  ].join('\n');
  lines = {
    leak: lineOf('module/fixture_mod.c', 'fx_leak'),
    grab: lineOf('module/fixture_mod.c', 'fx_grab'),
    kmalloc: lineOf('tree/mm/fx_slab.c', 'fx_kmalloc'),
    slab: lineOf('tree/mm/fx_slab.c', 'fx_slab_alloc_node'),
    init: lineOf('module/fixture_mod.c', 'fx_init'),
  };
});

describe('memsleuth symbolize', () => {
  it('adds file:line and inlined functions after each frame, and nothing else', async () => {
    const r = await cli(['symbolize', '--symbols', TREE, '--symbols', join(FIX, 'module'), '-'], {
      input: report,
    });
    expect(r.status).toBe(0);
    const inLines = report.split('\n');
    const out = r.stdout.split('\n');
    expect(out).toHaveLength(inLines.length);
    expect(out.slice(0, 3)).toEqual(inLines.slice(0, 3));
    expect(out[3]).toBe(
      `${inLines[3]} mm/fx_slab.c:${lines.kmalloc} (inlined fx_slab_alloc_node mm/fx_slab.c:${lines.slab})`,
    );
    expect(out[4]).toBe(
      `${inLines[4]} fixture_mod.c:${lines.leak} (inlined fx_grab fixture_mod.c:${lines.grab})`,
    );
    expect(out[5]).toBe(`${inLines[5]} fixture_mod.c:${lines.init}`);
    // ret_from_fork is not in the fixture kernel: left as it was, and said so
    expect(out[6]).toBe(inLines[6]);
    expect(r.stderr).toBe(
      `memsleuth: warning: vmlinux: ret_from_fork is not a function in ${VMLINUX}: the file is not the code that ran?\n` +
        'memsleuth: symbolize: 3 of 4 frames resolved\n',
    );
  });

  it('reads a FILE, and leaves the inlines out with --no-inlines', async () => {
    const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-symbolize-'));
    try {
      writeFileSync(join(dir, 'kmemleak'), report);
      const r = await cli([
        'symbolize',
        '--no-inlines',
        '--symbols',
        VMLINUX,
        '--symbols',
        KO,
        join(dir, 'kmemleak'),
      ]);
      expect(r.status).toBe(0);
      expect(r.stdout.split('\n')[4]).toMatch(new RegExp(`\\[fixture_mod\\] fixture_mod\\.c:${lines.leak}$`));
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('refuses what it cannot read, with exit code 2', async () => {
    const missing = await cli(['symbolize', '--symbols', join(FIX, 'absent'), '-'], { input: '' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^memsleuth: --symbols .*absent: ENOENT\nhint: give a vmlinux/);
    const dir = await cli(['symbolize', FIX]);
    expect(dir.status).toBe(2);
    expect(dir.stderr).toMatch(/is a directory/);
    const two = await cli(['symbolize', 'a', 'b']);
    expect(two.status).toBe(2);
  });

  it('works as a pipe in the built CLI', () => {
    const r = runCli(['symbolize', '--symbols', TREE, '--symbols', KO], { input: report });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[4]).toContain(`fixture_mod.c:${lines.leak}`);
  });
});

describe('--symbols on the commands that print stacks', () => {
  /** The report as two kmemleak objects (so the kmemleak parser takes it), and as page_owner records. */
  function inputs(): { kmemleak: string; pageOwner: string } {
    const stack = report.split('\n').filter((l) => /^ {4}\S/.test(l) && !l.includes('ret_from_fork'));
    const object = (addr: string) =>
      [
        `unreferenced object 0x${addr} (size 96):`,
        '  comm "kworker/0:0", pid 8, jiffies 4294899621',
        '  hex dump (first 32 bytes):',
        '    6d 6d 6d 6d 6d 6d 6d 6d 6d 6d 6d 6d 6d 6d 6d 6d  mmmmmmmmmmmmmmmm',
        '  backtrace (crc a4d68168):',
        ...stack,
      ].join('\n');
    const record = (pfn: number) =>
      [
        'Page allocated via order 0, mask 0xcc0(GFP_KERNEL), pid 8, tgid 8 (kworker/0:0), ts 4011521037 ns',
        `PFN 0x${pfn.toString(16)} type Unmovable Block 0 type Unmovable Flags 0x0(section=0|zone=0)`,
        ...stack.map((l) => ` ${l.trim().replace(/^\[<[0-9a-f]+>\] /, '')}`),
        '',
      ].join('\n');
    return {
      kmemleak: `${object('ffff888003150f00')}\n${object('ffff888003150b40')}\n`,
      pageOwner: `${record(0x100)}\n${record(0x101)}\n`,
    };
  }
  const symbols = () => ['--symbols', TREE, '--symbols', join(FIX, 'module')];

  it('kmemleak report: a SOURCE column, stack lines and --json carry file:line', async () => {
    const file = join(tmp, 'kmemleak-report');
    writeFileSync(file, inputs().kmemleak);
    const text = await cli(['kmemleak', 'report', '--stacks', ...symbols(), file]);
    expect(text.status).toBe(0);
    const out = text.stdout.split('\n');
    // fx_kmalloc is not one of the kernel's allocators: it is the culprit
    expect(out[1]).toMatch(/CULPRIT +SOURCE$/);
    expect(out[2]).toMatch(new RegExp(` fx_kmalloc +mm/fx_slab\\.c:${lines.kmalloc}$`));
    expect(out).toContain(
      `      fx_leak [fixture_mod] fixture_mod.c:${lines.leak} (inlined fx_grab fixture_mod.c:${lines.grab})`,
    );
    const json = JSON.parse((await cli(['kmemleak', 'report', '--json', ...symbols(), file])).stdout);
    expect(json.groups[0].culprit.source).toEqual({
      file: 'mm/fx_slab.c',
      line: lines.kmalloc,
      inlined: [{ function: 'fx_slab_alloc_node', file: 'mm/fx_slab.c', line: lines.slab }],
    });
    expect(json.groups[0].frames[1].source).toEqual({
      file: 'fixture_mod.c',
      line: lines.leak,
      inlined: [{ function: 'fx_grab', file: 'fixture_mod.c', line: lines.grab }],
    });
    // without --symbols nothing changes
    const plain = JSON.parse((await cli(['kmemleak', 'report', '--json', file])).stdout);
    expect(plain.groups[0].culprit.source).toBeUndefined();
  });

  it('page-owner top: the SOURCE of each culprit and file:line on every stack line', async () => {
    const file = join(tmp, 'page_owner');
    writeFileSync(file, inputs().pageOwner);
    const r = await cli(['page-owner', 'top', '--stacks', ...symbols(), file]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(` fx_kmalloc +mm/fx_slab\\.c:${lines.kmalloc}\n`));
    expect(r.stdout).toContain(
      `fx_init+${hex(returnOffset(KO, 'fx_init', 'fx_leak').offset)}/${hex(await spanOf(KO, 'fx_init'))} [fixture_mod] fixture_mod.c:${lines.init}\n`,
    );
  });
});
