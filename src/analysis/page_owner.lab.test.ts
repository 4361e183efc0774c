/**
 * The project's own kernel lab (test/lab-captures.ts: kernels built from Debian's
 * linux-source-6.1 and -6.12, booted under qemu with page_owner=on and the msl_leaky
 * module): the C page_owner_sort of both versions against ours on its dumps, and the
 * diff of before/after naming the module's page leak. The first run builds and boots
 * (cached afterwards); a missing prerequisite fails, never skips.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAB_HOOK_TIMEOUT_MS, type LabRun, labCaptures } from '../../test/lab-captures.js';
import { pageOwnerSortBinary } from '../../test/page-owner-c/tools.js';
import { diffPageOwner, KERNEL_ALLOCATORS } from './page_owner.js';
import { parseSortArgv, runPageOwnerSort, type SortCompat } from './page_owner_sort.js';

const tmp = mkdtempSync(join(tmpdir(), 'pos-lab-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function ours(compat: SortCompat, args: string[]): Promise<{ stdout: string; output: string }> {
  const p = parseSortArgv(args, compat, 'page_owner_sort');
  if (!p.ok) throw new Error(p.stderr);
  let stdout = '';
  const out: Buffer[] = [];
  await runPageOwnerSort(p.config, p.config.input, {
    progressOut: (s) => {
      stdout += s;
    },
    errOut: () => {},
    write: (s) => out.push(s),
  });
  return { stdout, output: Buffer.concat(out).toString('latin1') };
}

const MATRIX = [[], ['-m'], ['--cull=stacktrace', '-m'], ['-a'], ['--cull=pid,name,allocator'], ['-s']];

for (const kernel of ['6.1', '6.12'] as const) {
  describe(`lab ${kernel}`, () => {
    let run: LabRun;
    beforeAll(async () => {
      run = await labCaptures(kernel);
    }, LAB_HOOK_TIMEOUT_MS);

    it('page_owner_sort 6.1 and 6.12 (C) and ours agree on every moment', async () => {
      for (const moment of ['before', 'after'] as const) {
        const input = join(run.captures[moment], 'page_owner');
        for (const compat of ['6.1', '6.12'] as const) {
          for (const opts of MATRIX) {
            const cOut = join(tmp, 'c.out');
            const c = spawnSync(pageOwnerSortBinary(compat), [...opts, input, cOut], { encoding: 'latin1' });
            expect(c.status).toBe(0);
            const o = await ours(compat, [...opts, input, 'unused']);
            expect(o.stdout).toBe(c.stdout);
            expect(o.output === readFileSync(cOut, 'latin1')).toBe(true);
          }
        }
      }
    }, 300_000);

    it("diff before -> after puts msl_page_leak's pages first", async () => {
      const d = await diffPageOwner(
        join(run.captures.before, 'page_owner'),
        join(run.captures.after, 'page_owner'),
        { allocators: KERNEL_ALLOCATORS },
      );
      const top = d.deltas[0]!;
      expect(top.frames.some((f) => f.func === 'msl_page_leak' && f.module === 'msl_leaky')).toBe(true);
      expect(top.delta.pages).toBe(run.expected.pages);
      const rank = (fn: string) => d.deltas.findIndex((x) => x.frames.some((f) => f.func === fn));
      const churn = rank('msl_balanced_churn');
      for (const leak of ['msl_page_leak', 'msl_vmalloc_leak']) {
        expect(rank(leak)).toBeGreaterThanOrEqual(0);
        if (churn >= 0) expect(rank(leak)).toBeLessThan(churn);
      }
    });
  });
}
