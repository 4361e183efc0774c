/**
 * Symbolization on the kernel lab (both kernels): the captures' page_owner and kmemleak
 * output, symbolized with the lab's vmlinux (its build tree) and msl_leaky.ko, name
 * msl_leaky.c and the line of each leak function's allocation call; kernel frames name
 * files of the build tree that define the function; a module of the other kernel is
 * refused as not the code that ran. A missing prerequisite fails, never skips.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { framesInLine } from '../../src/symbols/text.js';
import {
  LAB_HOOK_TIMEOUT_MS,
  type LabRun,
  labCaptures,
  labModule,
  MODULE_ALLOC_SITES,
  moduleSourceLine,
} from '../lab-captures.js';
import { cli } from '../run.js';

const tmp = mkdtempSync(join(tmpdir(), 'memsleuth-symbolize-lab-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const LEAKS = Object.keys(MODULE_ALLOC_SITES) as (keyof typeof MODULE_ALLOC_SITES)[];

/** Each frame line of symbolized output: the frame and what follows it. */
function annotated(out: string): { func: string; module?: string; note: string }[] {
  const rows: { func: string; module?: string; note: string }[] = [];
  for (const line of out.split('\n')) {
    const f = framesInLine(line)[0];
    if (!f) continue;
    const row: { func: string; module?: string; note: string } = {
      func: f.frame.func,
      note: line.slice(f.end).trim(),
    };
    if (f.frame.module) row.module = f.frame.module;
    rows.push(row);
  }
  return rows;
}

/**
 * Whether `file` (in the tree) names function `fn`: its definition, a macro that makes it
 * (SYSCALL_DEFINE, DEFINE_IDTENTRY: the name without the prefix the macro pastes on), or
 * an assembly entry.
 */
function names(tree: string, file: string, fn: string): boolean {
  const text = readFileSync(join(tree, file), 'utf8');
  const bare = fn.replace(/^(?:__x64_sys_|__do_sys_|__se_sys_|asm_)/, '');
  return new RegExp(`\\b(?:${fn}|${bare})\\b`).test(text);
}

for (const kernel of ['6.1', '6.12'] as const) {
  describe(`symbolize on the lab ${kernel} kernel`, () => {
    let run: LabRun;
    let ko: string;
    let other: string;
    const outputs: Record<string, { stdout: string; stderr: string }> = {};
    beforeAll(async () => {
      run = await labCaptures(kernel);
      ko = await labModule(run);
      other = await labModule(await labCaptures(kernel === '6.1' ? '6.12' : '6.1'));
      for (const source of ['page_owner', 'kmemleak']) {
        const r = await cli([
          'symbolize',
          '--symbols',
          run.kernel.tree,
          '--symbols',
          dirname(ko),
          join(run.captures.after, source),
        ]);
        expect(r.status).toBe(0);
        outputs[source] = r;
      }
    }, LAB_HOOK_TIMEOUT_MS);

    it('resolves every frame of page_owner and kmemleak, warning about none', () => {
      for (const source of ['page_owner', 'kmemleak']) {
        const o = outputs[source]!;
        expect(o.stderr).toBe('');
        const rows = annotated(o.stdout);
        expect(rows.length).toBeGreaterThan(100);
        expect(rows.filter((r) => !/\S+:\d+/.test(r.note))).toEqual([]);
      }
    });

    for (const fn of LEAKS) {
      it(`names msl_leaky.c at the allocation call of ${fn}`, () => {
        const line = moduleSourceLine(MODULE_ALLOC_SITES[fn]);
        const sources = fn === 'msl_page_leak' ? ['page_owner'] : ['page_owner', 'kmemleak'];
        for (const source of sources) {
          const rows = annotated(outputs[source]!.stdout).filter(
            (r) => r.func === fn && r.module === 'msl_leaky',
          );
          expect(rows.length, `${fn} in ${source}`).toBeGreaterThan(0);
          // the frame's own place first; kmalloc/alloc_pages inlines may follow in parentheses
          expect(new Set(rows.map((r) => r.note.split(' ')[0]))).toEqual(new Set([`msl_leaky.c:${line}`]));
        }
      });
    }

    it('names the inlined allocation helper the call went through', () => {
      const slab = annotated(outputs.kmemleak!.stdout).find((r) => r.func === 'msl_slab_leak')!;
      // kmalloc() is inline in include/linux/slab.h (kmalloc_noprof since 6.10)
      expect(slab.note).toMatch(
        /^msl_leaky\.c:\d+ \(inlined kmalloc(?:_noprof)? include\/linux\/slab\.h:\d+\)$/,
      );
    });

    it('resolves kernel frames to files of the build tree that name the function (mm/ for the allocators)', () => {
      const rows = annotated(outputs.page_owner!.stdout).filter((r) => r.module === undefined);
      const byFunc = new Map(
        rows.map((r) => [
          r.func.replace(/(?:\.(?:constprop|isra|part|cold)(?:\.\d+)?)+$/, ''),
          r.note.split(' ')[0]!,
        ]),
      );
      const alloc = kernel === '6.1' ? '__alloc_pages' : '__alloc_pages_noprof';
      for (const fn of ['get_page_from_freelist', alloc]) {
        const at = byFunc.get(fn);
        expect(at, fn).toMatch(/^mm\/page_alloc\.c:\d+$/);
      }
      // every kernel frame's file exists in the tree and is long enough; a .c or .S names the function
      let checked = 0;
      for (const [fn, at] of byFunc) {
        const m = /^(.+):(\d+)$/.exec(at)!;
        const file = m[1]!;
        expect(existsSync(join(run.kernel.tree, file)), `${fn}: ${file}`).toBe(true);
        const lines = readFileSync(join(run.kernel.tree, file), 'utf8').split('\n').length;
        expect(Number(m[2])).toBeLessThanOrEqual(lines);
        // a header is where inline code or an #include inside the function body came from
        if (!/\.[cS]$/.test(file)) continue;
        expect(names(run.kernel.tree, file, fn), `${fn} in ${file}`).toBe(true);
        checked++;
      }
      expect(checked).toBeGreaterThan(50);
    });

    it('gives --symbols commands the allocation line of each leak function (text and --json)', async () => {
      // the module's directory through a symbolic link: DWARF names the real path, the
      // output still names msl_leaky.c relative to it
      const link = join(tmp, `msl_leaky-${kernel}`);
      symlinkSync(dirname(ko), link);
      const sym = ['--symbols', run.kernel.tree, '--symbols', link];
      const at = (fn: keyof typeof MODULE_ALLOC_SITES) =>
        `msl_leaky.c:${moduleSourceLine(MODULE_ALLOC_SITES[fn])}`;
      const { before, after } = run.captures;
      const rowOf = (out: string, fn: string) =>
        out.split('\n').find((l) => l.includes(`${fn} [msl_leaky]`)) ?? '';
      // page-owner top and diff: the culprit's SOURCE column
      const top = await cli(['page-owner', 'top', ...sym, after]);
      expect(rowOf(top.stdout, 'msl_page_leak')).toMatch(new RegExp(` ${at('msl_page_leak')}$`));
      const pdiff = await cli(['page-owner', 'diff', ...sym, before, after]);
      expect(rowOf(pdiff.stdout, 'msl_vmalloc_leak')).toMatch(new RegExp(` ${at('msl_vmalloc_leak')}$`));
      // kmemleak report --json: the culprit frame carries its source
      const km = JSON.parse((await cli(['kmemleak', 'report', '--json', ...sym, after])).stdout) as {
        groups: { culprit: { func: string; source?: { file: string; line: number } } }[];
      };
      const culprits = Object.fromEntries(
        km.groups.map((g) => [g.culprit.func, `${g.culprit.source?.file}:${g.culprit.source?.line}`]),
      );
      expect(culprits).toEqual({
        msl_slab_leak: at('msl_slab_leak'),
        msl_vmalloc_leak: at('msl_vmalloc_leak'),
      });
      const watch = await cli(['kmemleak', 'watch', ...sym, before, run.captures.mid, after]);
      expect(rowOf(watch.stdout, 'msl_slab_leak')).toMatch(new RegExp(` ${at('msl_slab_leak')}$`));
      // slab traces, vmalloc top and diff
      const slab = await cli(['slab', 'traces', '--cache', 'kmalloc-96', ...sym, after]);
      expect(rowOf(slab.stdout, 'msl_slab_leak')).toMatch(new RegExp(` ${at('msl_slab_leak')}$`));
      const vtop = await cli(['vmalloc', 'top', ...sym, after]);
      expect(rowOf(vtop.stdout, 'msl_vmalloc_leak')).toMatch(new RegExp(` ${at('msl_vmalloc_leak')}$`));
      const vdiff = await cli(['vmalloc', 'diff', ...sym, before, after]);
      expect(rowOf(vdiff.stdout, 'msl_vmalloc_leak')).toMatch(new RegExp(` ${at('msl_vmalloc_leak')}$`));
      // diff: the page_owner row of the page leak, in the text and in --json
      const diff = await cli(['diff', '--source', 'page_owner', ...sym, before, after]);
      expect(rowOf(diff.stdout, 'msl_page_leak')).toMatch(new RegExp(` ${at('msl_page_leak')}$`));
      const dj = JSON.parse(
        (await cli(['diff', '--json', '--source', 'page_owner', ...sym, before, after])).stdout,
      ) as {
        rows: { name: string; frames?: { func: string; source?: { file: string; line: number } }[] }[];
      };
      const row = dj.rows.find((r) => r.name === 'msl_page_leak [msl_leaky]')!;
      const f = row.frames!.find((x) => x.func === 'msl_page_leak')!;
      expect(`${f.source?.file}:${f.source?.line}`).toBe(at('msl_page_leak'));
    });

    it('refuses the other kernel’s msl_leaky.ko: its functions have other lengths', async () => {
      const r = await cli(['symbolize', '--symbols', other, join(run.captures.after, 'kmemleak')]);
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(
        /memsleuth: warning: msl_leaky: msl_\w+ is 0x[0-9a-f]+ bytes in .*msl_leaky\.ko, 0x[0-9a-f]+ in the frame: the file is not the code that ran/,
      );
      const mod = annotated(r.stdout).filter((x) => x.module === 'msl_leaky');
      expect(mod.length).toBeGreaterThan(0);
      expect(mod.filter((x) => x.note.startsWith('msl_leaky.c'))).toEqual([]);
    });
  });
}
