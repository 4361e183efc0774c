import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FIX, KO, lineOf, returnOffset, spanOf, TREE, VMLINUX } from '../symbols-fixtures.js';
import { runCli } from './cli.js';
import { runInProcess } from './in-process.js';

const hex = (n: number) => `0x${n.toString(16)}`;

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
    const r = await runInProcess(['symbolize', '--symbols', TREE, '--symbols', join(FIX, 'module'), '-'], {
      stdin: report,
    });
    expect(r.code).toBe(0);
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
      const r = await runInProcess([
        'symbolize',
        '--no-inlines',
        '--symbols',
        VMLINUX,
        '--symbols',
        KO,
        join(dir, 'kmemleak'),
      ]);
      expect(r.code).toBe(0);
      expect(r.stdout.split('\n')[4]).toMatch(new RegExp(`\\[fixture_mod\\] fixture_mod\\.c:${lines.leak}$`));
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('refuses what it cannot read, with exit code 2', async () => {
    const missing = await runInProcess(['symbolize', '--symbols', join(FIX, 'absent'), '-'], { stdin: '' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^memsleuth: --symbols .*absent: ENOENT\nhint: give a vmlinux/);
    const dir = await runInProcess(['symbolize', FIX]);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toMatch(/is a directory/);
    const two = await runInProcess(['symbolize', 'a', 'b']);
    expect(two.code).toBe(2);
  });

  it('works as a pipe in the built CLI', () => {
    const r = runCli(['symbolize', '--symbols', TREE, '--symbols', KO], { input: report });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[4]).toContain(`fixture_mod.c:${lines.leak}`);
  });
});
