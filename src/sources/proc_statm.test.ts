import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseErrorOf } from '../../test/parsers.js';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { parseProcStatm } from './proc_statm.js';
import { parseProcStatus } from './proc_status.js';

describe('parseProcStatm', () => {
  it('agrees with status on a live process (task_statm vs task_mem)', async () => {
    // A sleeping child: its counters do not move between the two reads.
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const pid = child.pid!;
      for (let i = 0; i < 200 && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(sleep) S '); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const m = parseProcStatm(readFileSync(`/proc/${pid}/statm`, 'utf8'));
      const s = parseProcStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
      const page = 4096;
      expect(m.sizePages * page).toBe(s.bytes.VmSize);
      expect(m.residentPages * page).toBe(s.bytes.VmRSS);
      expect(m.sharedPages * page).toBe(s.bytes.RssFile! + s.bytes.RssShmem!);
      expect(m.dataPages * page).toBe(s.bytes.VmData! + s.bytes.VmStk!);
      expect(m.libPages).toBe(0);
      expect(m.dtPages).toBe(0);
    } finally {
      child.kill();
    }
  });

  it('reads the lab captures: agrees with status; seven zeros for kernel threads', () => {
    let checked = 0;
    for (const kernel of ['6.1', '6.12'] as const) {
      // `after`: in 6.1 `mid` the collector's own shell faulted a page in between its reads
      // of status and statm (VmRSS 1844 kB, statm 1848 kB).
      const dir = join(labFixture(kernel, 'after'), 'proc');
      // The collector leaves kernel threads out: the 6.18 process fixture has one (kthreadd).
      const kthreadd = join(REPO_FIXTURES, 'linux-6.18-four-types', 'proc', '2');
      for (const pidDir of [...readdirSync(dir).map((p) => join(dir, p)), kthreadd]) {
        const pid = pidDir;
        checked++;
        const m = parseProcStatm(readFileSync(join(pid, 'statm'), 'utf8'));
        const s = parseProcStatus(readFileSync(join(pid, 'status'), 'utf8'));
        if (pid === kthreadd) expect(s.counts.Kthread).toBe(1);
        if (s.bytes.VmSize === undefined) {
          expect(Object.values(m).every((v) => v === 0)).toBe(true);
          continue;
        }
        expect(m.sizePages * 4096).toBe(s.bytes.VmSize);
        expect(m.residentPages * 4096).toBe(s.bytes.VmRSS);
        expect(m.sharedPages * 4096).toBe(s.bytes.RssFile! + s.bytes.RssShmem!);
        expect(m.textPages).toBeGreaterThan(0);
      }
    }
    // init and the collector's shell on each kernel, kthreadd twice.
    expect(checked).toBe(6);
  });

  it('rejects garbage with file and line', () => {
    const file = 'p/statm';
    expect(parseErrorOf(() => parseProcStatm('', { file })).line).toBe(1);
    expect(parseErrorOf(() => parseProcStatm('1 2 3 4 5 6\n', { file })).message).toContain('seven');
    parseErrorOf(() => parseProcStatm('1 2 3 4 5 6 7 8\n', { file }));
    parseErrorOf(() => parseProcStatm('1 2 3 4 5 -6 7\n', { file }));
    parseErrorOf(() => parseProcStatm('a b c d e f g\n', { file }));
    expect(parseErrorOf(() => parseProcStatm('1 2 3 4 5 6 7\n1 2 3 4 5 6 7\n', { file })).line).toBe(2);
  });
});
