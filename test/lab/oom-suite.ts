/**
 * The OOM boot of the lab (lab/oom.ts, lab/guest/oom.sh), checked live on each kernel: the
 * console log of a real boot is parsed and explained, and every scenario gets the verdict it
 * should. The same boots' logs are committed as test/fixtures/oom-<kernel>/console.log for
 * the unit tests; this suite boots (or takes from the cache) a fresh one.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { explainOomLog, type OomExplanation } from '../../src/analysis/oom.js';
import { type OomLog, parseOomReports } from '../../src/sources/oom_report.js';
import {
  LAB_HOOK_TIMEOUT_MS,
  labOomRun,
  MODULE_ALLOC_SITES,
  moduleSourceLine,
  type OomRun,
} from '../lab-captures.js';

export function describeOomLab(kernel: '6.1' | '6.12'): void {
  describe(`lab ${kernel}: the OOM boot`, () => {
    let run: OomRun;
    let log: OomLog;
    let ex: OomExplanation[];
    beforeAll(async () => {
      run = await labOomRun(kernel);
      log = parseOomReports(readFileSync(run.console, 'utf8'), { file: run.console });
      ex = explainOomLog(log);
    }, LAB_HOOK_TIMEOUT_MS);

    it('every report is whole, and the page size comes from the free areas', () => {
      expect(log.reports.length).toBeGreaterThanOrEqual(4);
      for (const r of log.reports) expect(r.missing, `report at line ${r.line}`).toEqual([]);
      expect(log.pageSizeBytes).toBe(4096);
      expect(log.reports[0]!.task?.kernelRelease).toBe(run.kernel.release);
    });

    it('(a) the user hog: a global OOM, user space, msl_hog killed as the largest', () => {
      const e = ex.find((x) => x.request?.comm === 'msl_hog')!;
      expect(e.scope).toBe('global');
      expect(e.culprit).toBe('user');
      expect(e.victim).toMatchObject({ comm: 'msl_hog', rank: 0 });
      expect(e.headline).toContain('msl_hog (pid');
      expect(e.accounting!.layers.user).toBeGreaterThan(e.accounting!.memTotalBytes * 0.7);
      expect(e.accounting!.parts.reduce((s, p) => s + p.bytes, 0)).toBe(e.accounting!.memTotalBytes);
    });

    it('(b) the memory cgroup: names /msl-oom at its 32 MiB memory.max and the hog inside', () => {
      const e = ex.find((x) => x.scope === 'memcg')!;
      expect(e.culprit).toBe('memcg-limit');
      expect(e.memcg).toMatchObject({ path: '/msl-oom', limitBytes: run.scenario.memcgMaxMiB << 20 });
      expect(e.victim?.comm).toBe('msl_memcg_hog');
      expect(e.headline).toContain('memory cgroup /msl-oom used');
    });

    it('(c) the module leak: points at the kernel and the unaccounted remainder, then the panic', () => {
      const leaks = ex.filter((x) => x.request?.site === 'msl_page_leak [msl_leaky]');
      expect(leaks.length).toBeGreaterThanOrEqual(2);
      for (const e of leaks) {
        expect(e.culprit).toBe('kernel-unaccounted');
        expect(e.accounting!.unaccountedBytes).toBeGreaterThan(e.accounting!.memTotalBytes * 0.6);
        expect(e.headline).toMatch(/^the kernel held .* that no counter accounts for/);
        expect(e.request?.workqueue).toBe('events msl_work_fn [msl_leaky]');
      }
      const bystander = leaks.find((e) => e.victim);
      expect(bystander?.victim?.comm).toBe('msl_hog');
      expect(bystander?.notes.join('\n')).toMatch(/killing msl_hog \(pid \d+\) freed only about/);
      const last = log.reports[log.reports.length - 1]!;
      expect(last.noKillableProcesses).toBe(true);
      expect(last.panic).toBe('System is deadlocked on memory');
    });

    if (kernel === '6.12') {
      it('allocation profiling in the report names the leak’s own source line', () => {
        const e = ex.find((x) => x.culprit === 'kernel-unaccounted' && x.allocations.length)!;
        const top = e.allocations[0]!;
        expect(top).toMatchObject({ func: 'msl_page_leak', module: 'msl_leaky' });
        expect(top.file).toMatch(/msl_leaky\.c$/);
        expect(top.line).toBe(moduleSourceLine(MODULE_ALLOC_SITES.msl_page_leak));
        // The counter's pages and the identity's remainder agree within 3%.
        expect(Math.abs(top.calls * 4096 - e.accounting!.unaccountedBytes)).toBeLessThan(
          e.accounting!.unaccountedBytes * 0.03,
        );
      });
    }
  });
}
