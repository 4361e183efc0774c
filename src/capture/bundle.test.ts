import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSnapshot } from './bundle.js';
import { LiveSnapshot } from './live.js';
import { openSnapshot } from './snapshot.js';

/** Long-lived kernel threads (PF_KTHREAD in stat's flags) with a stable name. */
function kernelThreadPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        return (flags & 0x00200000) !== 0 && (name === 'kthreadd' || name.startsWith('ksoftirqd'));
      } catch {
        return false;
      }
    });
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'memsleuth-bundle-test-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('writeSnapshot on this machine', () => {
  it('writes a bundle that opens with the same raw text and a manifest', async () => {
    const out = join(work, 'live.tar.gz');
    const res = await writeSnapshot(new LiveSnapshot(), { out, tool: 'memsleuth test', pageOwner: false });
    expect(res.bytes).toBeGreaterThan(0);
    const snap = await openSnapshot(out);
    try {
      const m = await snap.manifest();
      expect(m.format).toBe('memsleuth-snapshot/1');
      expect(m.pageSizeBytes).toBeGreaterThanOrEqual(4096);
      expect(m.uptimeSeconds).toBeGreaterThan(0);
      expect(m.files).toContain('meminfo');
      // Every file the manifest lists is in the bundle.
      for (const f of m.files.slice(0, 50)) expect(await snap.readText(f), f).toBeDefined();
      // Raw text is kept: buddyinfo's zone lines are the kernel's (free counts move, names do not).
      const buddy = await snap.readText('buddyinfo');
      const liveBuddy = await readFile('/proc/buddyinfo', 'utf8');
      const zoneNames = (t: string) => t.split('\n').map((l) => l.split(/\s+/).slice(0, 4).join(' '));
      expect(zoneNames(buddy!)).toEqual(zoneNames(liveBuddy));
      // Our own process is in it, with every per-process file.
      const pids = await snap.pids();
      expect(pids).toContain(process.pid);
      const status = await snap.readText(`proc/${process.pid}/status`);
      expect(status).toMatch(/^Name:/);
      expect(await snap.readText(`proc/${process.pid}/smaps_rollup`)).toMatch(/Pss:/);
      // Kernel threads (no mm: smaps_rollup answers ESRCH) are kept, not taken for exited.
      const kthreads = kernelThreadPids();
      expect(kthreads.length).toBeGreaterThan(0);
      for (const pid of kthreads) expect(pids).toContain(pid);
      expect(await snap.readText(`proc/${kthreads[0]}/smaps_rollup`)).toBeUndefined();
      // page_owner was skipped on request and says so.
      expect(m.missing.find((x) => x.path === 'page_owner')?.reason).toBeTruthy();
    } finally {
      await snap.close();
    }
  });

  it('writes a directory snapshot and refuses to overwrite one', async () => {
    const out = join(work, 'dir-snap');
    await writeSnapshot(new LiveSnapshot(), {
      out,
      asDirectory: true,
      tool: 't',
      pageOwner: false,
      smaps: false,
    });
    const snap = await openSnapshot(out);
    expect(await snap.readText('meminfo')).toMatch(/^MemTotal:/);
    expect(await snap.readText(`proc/${process.pid}/smaps`)).toBeUndefined();
    await expect(
      writeSnapshot(new LiveSnapshot(), { out, asDirectory: true, tool: 't', pageOwner: false }),
    ).rejects.toThrow(/already exists/);
  });

  it('skips a process whose files vanish mid-read and records why', async () => {
    // A proc root with two real processes copied from /proc; one loses its smaps
    // (as when a process exits between reading status and smaps).
    const proc = join(work, 'proc');
    for (const pid of [process.pid, process.ppid]) {
      await mkdir(join(proc, String(pid)), { recursive: true });
      for (const f of ['status', 'statm', 'stat', 'cmdline', 'oom_score', 'oom_score_adj']) {
        await writeFile(join(proc, String(pid), f), await readFile(`/proc/${pid}/${f}`));
      }
    }
    await writeFile(join(proc, String(process.pid), 'smaps'), await readFile(`/proc/${process.pid}/smaps`));
    await writeFile(
      join(proc, String(process.pid), 'smaps_rollup'),
      await readFile(`/proc/${process.pid}/smaps_rollup`),
    );
    for (const f of ['meminfo', 'uptime']) await writeFile(join(proc, f), await readFile(`/proc/${f}`));
    const live = new LiveSnapshot({
      proc,
      debugfs: join(work, 'no-debugfs'),
      sysSlab: join(work, 'no-slab'),
    });
    const out = join(work, 'partial');
    const res = await writeSnapshot(live, { out, asDirectory: true, tool: 't' });
    expect(res.manifest.skippedPids).toEqual([{ pid: process.ppid, reason: 'exited during capture' }]);
    const snap = await openSnapshot(out);
    expect(await snap.pids()).toEqual([process.pid]);
    // Sources the fake root lacks are listed with a reason and how to enable them.
    const slabinfo = res.manifest.missing.find((m) => m.path === 'slabinfo');
    expect(slabinfo?.enable).toMatch(/root/);
  });
});

describe('openSnapshot', () => {
  it('names the path when it does not exist', async () => {
    await expect(openSnapshot(join(work, 'nope.tar.gz'))).rejects.toThrow(
      /nope\.tar\.gz: cannot open snapshot \(not present\)/,
    );
  });
  it('rejects a file that is not a bundle', async () => {
    const bad = join(work, 'bad.tar.gz');
    await writeFile(bad, 'MemTotal: 1 kB\n');
    await expect(openSnapshot(bad)).rejects.toMatchObject({ code: 'BAD_INPUT' });
  });
});
