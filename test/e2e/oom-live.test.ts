// A real memory-cgroup OOM on this machine (this kernel's newest format), read back by
// `memsleuth oom` from /dev/kmsg. The cgroup is our own and removed afterwards (test/cgroup-oom.ts).
import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { OomExplanation } from '../../src/analysis/oom.js';
import type { OomReport } from '../../src/sources/oom_report.js';
import { findMemcgRoot, memcgOom } from '../cgroup-oom.js';
import { cli } from '../run.js';

describe('memsleuth oom on a live memcg OOM', () => {
  it('finds the report in /dev/kmsg, names the cgroup and the hog, and leaves nothing behind', async () => {
    const oom = await memcgOom(16 << 20);
    expect(oom.signal).toBe('SIGKILL');
    const root = findMemcgRoot()!;
    expect(readdirSync(root.mount).filter((n) => n.startsWith('memsleuth-oom-test-'))).toEqual([]);
    expect(existsSync(`${root.mount}${oom.path}`)).toBe(false);

    const r = await cli(['oom', '--source', 'kmsg', '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as {
      ring: { firstSeq: number; lastSeq: number };
      reports: { report: OomReport; explanation: OomExplanation }[];
    };
    // A ring that has wrapped (earlier records of this boot overwritten) is said, with the way out.
    expect(j.ring.lastSeq).toBeGreaterThan(j.ring.firstSeq);
    if (j.ring.firstSeq > 0)
      expect(r.stderr).toContain(`/dev/kmsg starts at record ${j.ring.firstSeq} of this boot`);
    else expect(r.stderr).not.toContain('starts at record');
    const ours = j.reports.filter((x) => x.report.constraint?.oomMemcg === oom.path);
    expect(ours.length).toBeGreaterThanOrEqual(1);
    const { report, explanation } = ours[ours.length - 1]!;
    expect(report.missing).toEqual([]);
    expect(report.memcg?.memory?.limitKB).toBe(16 * 1024);
    expect(report.memcg?.path).toBe(oom.path);
    if (oom.version === 1) expect(report.memcg?.memsw).toBeDefined();
    else expect(report.memcg?.swap).toBeDefined();
    expect(report.killed?.comm).toBe('tail');
    expect(report.killed?.message).toBe('Memory cgroup out of memory');
    expect(explanation.culprit).toBe('memcg-limit');
    expect(explanation.headline).toContain(`memory cgroup ${oom.path} used`);
    expect(explanation.headline).toContain('tail (pid');
    expect(explanation.memcg?.anonBytes).toBeGreaterThan(8 << 20);
    expect(explanation.victim?.rank).toBe(0);
  });
});
