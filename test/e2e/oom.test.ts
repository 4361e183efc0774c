import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OomExplanation } from '../../src/analysis/oom.js';
import type { OomReport } from '../../src/sources/oom_report.js';
import { REPO_FIXTURES } from '../paths.js';
import { cli } from '../run.js';

const LOG_612 = join(REPO_FIXTURES, 'oom-6.12', 'console.log');
const LOG_61 = join(REPO_FIXTURES, 'oom-6.1', 'console.log');
const LIVE = join(REPO_FIXTURES, 'oom-live-6.18', 'memcg-v1.dmesg');

interface OomJson {
  origin: string;
  lines: number;
  pageSizeBytes: number;
  pageSizeAssumed: boolean;
  reports: { report: OomReport; explanation: OomExplanation }[];
}

describe('memsleuth oom FILE', () => {
  it('explains every report of the 6.12 lab log', async () => {
    const r = await cli(['oom', LOG_612]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(
      `4 OOM-killer reports in ${LOG_612} (511 lines): 1 user space, 1 memory cgroup limit, 2 kernel (unaccounted)`,
    );
    expect(r.stdout).toContain('OOM 1 of 4');
    expect(r.stdout).toMatch(/verdict {4}user space: processes held 216\.8 MiB/);
    expect(r.stdout).toMatch(/verdict {4}memory cgroup \/msl-oom used 32\.0 MiB of its 32\.0 MiB limit/);
    expect(r.stdout).toMatch(
      /verdict {4}the kernel held 194\.4 MiB \(83% of 234\.7 MiB\) that no counter accounts for/,
    );
    expect(r.stdout).toContain('unaccounted                  194.4 MiB   82.8%');
    expect(r.stdout).toContain(
      'total                        234.7 MiB  100.0%  = MemTotal (pages RAM − reserved)',
    );
    expect(r.stdout).toContain('193 MiB  49321  msl_page_leak [msl_leaky]');
    expect(r.stdout).toContain('no killable process was left, and the kernel panicked');
  });

  it('--json carries the parsed report and its explanation', async () => {
    const r = await cli(['oom', '--json', LOG_61]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as OomJson;
    expect(j.pageSizeBytes).toBe(4096);
    expect(j.pageSizeAssumed).toBe(false);
    expect(j.reports.map((x) => x.explanation.culprit)).toEqual([
      'user',
      'memcg-limit',
      'kernel-unaccounted',
      'kernel-unaccounted',
    ]);
    expect(j.reports[0]!.report.killed?.comm).toBe('msl_hog');
    expect(j.reports[1]!.explanation.memcg?.path).toBe('/msl-oom');
  });

  it('reads standard input with -, and --last N keeps the newest', async () => {
    const r = await cli(['oom', '--last', '1', '-'], { input: readFileSync(LOG_612, 'utf8') });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(
      '4 OOM-killer reports in stdin (511 lines), the last 1 shown: 1 kernel (unaccounted)',
    );
    expect(r.stdout).toContain('OOM 4 of 4');
    expect(r.stdout).not.toContain('OOM 3 of 4');
  });

  it('names the cgroup of this machine’s memcg v1 OOM', async () => {
    const r = await cli(['oom', LIVE]);
    expect(r.stdout).toContain(
      'memory cgroup /memsleuth-oom-manual-922 used 16.0 MiB of its 16.0 MiB limit (failcnt 19)',
    );
    expect(r.stdout).toContain('2771.3 s after boot');
  });

  it('says so when a log has no report', async () => {
    const r = await cli(['oom', '-'], { input: '[    0.000000] Linux version 6.1.0\n' });
    expect(r).toEqual({ status: 0, stdout: 'no OOM-killer reports in stdin (1 lines)\n', stderr: '' });
  });

  it('user errors: one line and a hint, exit 2', async () => {
    const missing = await cli(['oom', '/nonexistent/kern.log']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(
      'memsleuth: /nonexistent/kern.log: cannot read (ENOENT)\nhint: give a saved kernel log (dmesg > FILE), - for standard input, or nothing for this machine\n',
    );
    const bad = await cli(['oom', '--source', 'tea']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--source: expected auto, kmsg or journal');
    const both = await cli(['oom', '--source', 'kmsg', LIVE]);
    expect(both.stderr).toContain('not with FILE');
    const garbled = await cli(['oom', '-'], {
      input: 'x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=zero\n',
    });
    expect(garbled.status).toBe(2);
    expect(garbled.stderr).toMatch(/^memsleuth: stdin:1: expected "<comm> invoked oom-killer/);
  });
});
