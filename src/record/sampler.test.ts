import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { smapsByName } from '../analysis/process.js';
import { openLiveSnapshot } from '../capture/live.js';
import { ProcWatch } from '../capture/proc_watch.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import type { EntitySample, TickSample } from '../model/samples.js';
import { parseProcStatus } from '../sources/proc_status.js';
import { parseSmaps } from '../sources/smaps.js';
import { RecordingReader } from '../store/recording.js';
import { record } from './recorder.js';
import { Sampler } from './sampler.js';

function byKey(es: EntitySample[], layer: string, key: string): EntitySample | undefined {
  return es.find((e) => e.layer === layer && e.key === key);
}

describe('Sampler over the lab 6.12 captures (a snapshot directory)', () => {
  // The lab moments hold the files of a kernel running the msl_leaky module; a Sampler
  // pointed at them reads them as it reads this machine.
  const sample = async (moment: 'before' | 'mid' | 'after') =>
    (
      await new Sampler({
        snapshot: () => new DirectorySnapshot(labFixture('6.12', moment)),
        kmemleak: true,
      }).sample()
    ).entities;

  it('records allocinfo per call site, keyed file:line [module] func', async () => {
    const [before, after] = [await sample('before'), await sample('after')];
    const key =
      '/root/.cache/memsleuth-lab/module-6.12-137179507dd6-f670bc5bcaa1/msl_leaky.c:77 [msl_leaky] msl_slab_leak';
    expect(byKey(after, 'allocinfo', key)?.values).toEqual({ bytes: 76800, calls: 400 });
    expect(byKey(before, 'allocinfo', key)).toBeUndefined();
    // msl_balanced_churn frees what it allocates: zero tags are not stored.
    expect(after.some((e) => e.layer === 'allocinfo' && e.key.endsWith('msl_balanced_churn'))).toBe(false);
  });

  it('sums vmalloc areas by caller function and module', async () => {
    const v = byKey(await sample('after'), 'vmalloc', 'msl_vmalloc_leak [msl_leaky]');
    expect(v?.values?.areas).toBe(40);
    // Each area is vmalloc(8 KiB): pages=2, so 2 pages of backing per area.
    expect(v?.values?.bytes).toBe(40 * 2 * 4096);
  });

  it('groups kmemleak reports by the first frame that is not the allocator', async () => {
    const groups = (await sample('after')).filter((e) => e.layer === 'kmemleak');
    expect(groups.length).toBeGreaterThan(0);
    const leaks = groups.filter((g) => g.key.includes('[msl_leaky]'));
    expect(leaks.map((g) => g.key).sort()).toEqual([
      'msl_slab_leak [msl_leaky]',
      'msl_vmalloc_leak [msl_leaky]',
    ]);
    expect(leaks.every((g) => (g.values?.objects ?? 0) > 0 && (g.values?.bytes ?? 0) > 0)).toBe(true);
  });

  it('records every slab cache and every meminfo field, and the unaccounted remainder', async () => {
    const after = await sample('after');
    const caches = readFileSync(join(labFixture('6.12', 'after'), 'slabinfo'), 'utf8')
      .split('\n')
      .slice(2)
      .filter((l) => l.trim() !== '').length;
    expect(after.filter((e) => e.layer === 'slab').length).toBe(caches);
    expect(byKey(after, 'meminfo', 'MemTotal')?.values?.bytes).toBeGreaterThan(400 * 1024 * 1024);
    expect(byKey(after, 'unaccounted', 'unaccounted')?.values?.bytes).toBeTypeOf('number');
  });

  it('records every user process from its status, keyed by pid and start time from stat', async () => {
    const dir = labFixture('6.12', 'after');
    const withMm = readdirSync(join(dir, 'proc'))
      .filter((p) => /^\d+$/.test(p))
      .map((p) => ({
        pid: Number(p),
        status: parseProcStatus(readFileSync(join(dir, 'proc', p, 'status'), 'utf8')),
      }))
      .filter((p) => p.status.bytes.VmSize !== undefined);
    // init and the collector's shell: the collector leaves kernel threads out.
    expect(withMm.map((p) => p.status.name).sort()).toEqual(['init', 'sh']);
    const procs = (await sample('after')).filter((e) => e.layer === 'process');
    expect(procs.map((e) => e.pid).sort((a, b) => a! - b!)).toEqual(
      withMm.map((p) => p.pid).sort((a, b) => a - b),
    );
    for (const p of withMm) {
      const e = procs.find((x) => x.pid === p.pid)!;
      expect(e.label).toBe(p.status.name);
      const start = readFileSync(join(dir, 'proc', String(p.pid), 'stat'), 'utf8')
        .split(') ')[1]!
        .split(' ')[19];
      expect(e.key).toBe(`${p.pid}:${start}`);
      expect(e.values?.rss_bytes).toBe(p.status.bytes.VmRSS);
      expect(e.values?.vsz_bytes).toBe(p.status.bytes.VmSize);
    }
  });
});

describe('Sampler on this machine', () => {
  it('reads this process with the values of its own status file', async () => {
    const s = new Sampler({ pidFilter: (p) => p === process.pid, pssEvery: 1 });
    const t = await s.sample();
    const me = t.entities.find((e) => e.layer === 'process');
    expect(me?.pid).toBe(process.pid);
    expect(me?.key).toMatch(new RegExp(`^${process.pid}:\\d+$`));
    expect(me?.values?.vsz_bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(me?.values?.threads).toBeGreaterThanOrEqual(1);
    expect(me?.values?.fds).toBeGreaterThanOrEqual(3);
    expect(me?.sparse?.pss_bytes).toBeGreaterThan(0);
    expect(t.readMs).toBeGreaterThan(0);
  });

  it('reads stat once per process and PSS again only when its memory moved', async () => {
    // A sleeping child: same process every tick, memory that does not move.
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      const pid = child.pid!;
      const reads: string[] = [];
      const s = new Sampler({
        pidFilter: (p) => p === pid,
        pssEvery: 1,
        snapshot: async () => {
          const snap = await openLiveSnapshot();
          const read = snap.readText.bind(snap);
          snap.readText = (path) => {
            reads.push(path);
            return read(path);
          };
          return snap;
        },
      });
      const mine = (t: TickSample) => t.entities.find((e) => e.layer === 'process' && e.pid === pid);
      // sleep's exec image settles within its first ticks; sample until two agree.
      let first = mine(await s.sample());
      for (let i = 0; i < 20; i++) {
        const next = mine(await s.sample());
        if (next?.values?.rss_bytes === first?.values?.rss_bytes) break;
        first = next;
      }
      reads.length = 0;
      const again = mine(await s.sample());
      expect(again?.key).toBe(first?.key);
      expect(again?.key).toMatch(new RegExp(`^${pid}:\\d+$`));
      expect(again?.values?.rss_bytes).toBe(first?.values?.rss_bytes);
      expect(reads).toContain(`proc/${pid}/status`);
      expect(reads).not.toContain(`proc/${pid}/stat`);
      expect(reads).not.toContain(`proc/${pid}/smaps_rollup`);
      expect(again?.sparse?.pss_bytes).toBeUndefined();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('reads a live process from kept files: the values of its status, status again only when statm moves', async () => {
    // A sleeping child with two extra threads and a few open files.
    const code =
      'import threading, time\nfor _ in range(2): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\nprint("ready", flush=True)\ntime.sleep(60)';
    const child = spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const watch = new ProcWatch();
    try {
      await new Promise((r) => child.stdout!.once('data', r));
      const pid = child.pid!;
      const reads: string[] = [];
      const kept = new Sampler({
        pidFilter: (p) => p === pid,
        pssEvery: 0,
        snapshot: async () => {
          const snap = await openLiveSnapshot(undefined, { watch });
          const read = snap.readText.bind(snap);
          snap.readText = (path) => {
            if (path.startsWith(`proc/${pid}/`)) reads.push(path);
            return read(path);
          };
          return snap;
        },
      });
      const byStatus = new Sampler({
        pidFilter: (p) => p === pid,
        pssEvery: 0,
        snapshot: () => openLiveSnapshot(),
      });
      const mine = (t: TickSample) => t.entities.find((e) => e.layer === 'process' && e.pid === pid);
      const first = mine(await kept.sample());
      expect(reads).toEqual([`proc/${pid}/status`, `proc/${pid}/stat`]);
      for (let i = 0; i < 5; i++) {
        reads.length = 0;
        const k = mine(await kept.sample());
        const s = mine(await byStatus.sample());
        expect(k?.key).toBe(first?.key);
        expect(s?.key).toBe(k?.key);
        expect(k?.label).toBe('python3');
        // statm did not move (a sleeping process): nothing read but the kept files.
        if (reads.length === 0) {
          expect(k?.values).toEqual(s?.values);
          expect(k?.values?.threads).toBe(3);
          expect(k?.values?.fds).toBeGreaterThanOrEqual(3);
          return;
        }
        expect(reads).toEqual([`proc/${pid}/status`]);
      }
      throw new Error('statm of a sleeping process moved at every tick');
    } finally {
      child.kill('SIGKILL');
      watch.close();
    }
  });

  it('counts fds and threads of a process whose statm holds still every countsEvery ticks, carrying them between', async () => {
    const child = spawn('python3', ['-c', 'import time\nprint("ready", flush=True)\ntime.sleep(60)'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const watch = new ProcWatch();
    try {
      await new Promise((r) => child.stdout!.once('data', r));
      const pid = child.pid!;
      const counted: boolean[] = [];
      const s = new Sampler({
        pidFilter: (p) => p === pid,
        pssEvery: 0,
        countsEvery: 3,
        snapshot: async () => {
          const snap = await openLiveSnapshot(undefined, { watch });
          const read = snap.procCounters!.bind(snap);
          snap.procCounters = (p, unless) => {
            const c = read(p, unless);
            if (p === pid) counted.push(c!.counted);
            return c;
          };
          return snap;
        },
      });
      const values: Record<string, number>[] = [];
      const statm: string[] = [];
      for (let tick = 1; tick <= 7; tick++) {
        const e = (await s.sample()).entities.find((x) => x.layer === 'process' && x.pid === pid);
        values.push(e!.values!);
        statm.push(readFileSync(`/proc/${pid}/statm`, 'latin1'));
      }
      // A sleeping process's statm holds still after its first ticks: from then on fd/ and
      // task/ are looked at on the due ticks ((tick + pid) % 3 === 0) only.
      const still = statm.findIndex((t, i) => statm.slice(i).every((u) => u === t));
      expect(still).toBeGreaterThanOrEqual(0);
      expect(still).toBeLessThan(3);
      expect(counted[0]).toBe(true);
      for (let i = still + 1; i < 7; i++) expect(counted[i]).toBe((i + 1 + pid) % 3 === 0);
      expect(counted.slice(still + 1)).toContain(false);
      // Carried: every tick has both, as the process's own files say.
      const fds = readdirSync(`/proc/${pid}/fd`).length;
      for (const v of values.slice(still)) expect([v.fds, v.threads]).toEqual([fds, 1]);
    } finally {
      child.kill('SIGKILL');
      watch.close();
    }
  });

  it('reads no PSS for a live process at the tick it first appears in (after the first tick)', async () => {
    let pid = -1;
    const s = new Sampler({ pidFilter: (p) => p === pid, pssEvery: 1 });
    expect((await s.sample()).entities.filter((e) => e.layer === 'process')).toEqual([]);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      pid = child.pid!;
      const mine = (t: TickSample) => t.entities.find((e) => e.layer === 'process' && e.pid === pid);
      const first = mine(await s.sample());
      expect(first?.values?.rss_bytes).toBeGreaterThan(0);
      expect(first?.sparse).toBeUndefined();
      expect(mine(await s.sample())?.sparse?.pss_bytes).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
      s.close();
    }
  });

  it('groups this process smaps by mapping name, and the sizes add up to the total', () => {
    const maps = parseSmaps(readFileSync('/proc/self/smaps', 'utf8'));
    const g = smapsByName(maps);
    const total = maps.reduce((a, m) => a + (m.bytes.Size ?? 0), 0);
    const sum = [...g.values()].reduce((a, m) => a + m.size, 0);
    expect(sum).toBe(total);
    expect(g.has('[heap]') || g.has('[anon]')).toBe(true);
  });
});

describe('the kernel tables at the slabEvery cadence', () => {
  // test/fixtures/owners-6.18: tmpfs mounts and SysV segments; the lab's 6.12 moment: buddyinfo
  // and slabinfo. Read every 3rd tick (ticks 1, 4, 7); meminfo every tick.
  const layersAt = async (dir: string, layers: string[]) => {
    const sampler = new Sampler({ snapshot: () => new DirectorySnapshot(dir), slabEvery: 3 });
    const out: string[][] = [];
    for (let i = 0; i < 7; i++) {
      const t = await sampler.sample(1_000 * (i + 1));
      out.push(layers.filter((l) => t.entities.some((e) => e.layer === l)));
    }
    return out;
  };

  it('reads buddyinfo, tmpfs usage and SysV segments with slabinfo, meminfo every tick', async () => {
    const owners = await layersAt(join(REPO_FIXTURES, 'owners-6.18', 'snapshot'), [
      'meminfo',
      'tmpfs',
      'sysv-shm',
    ]);
    const all = ['meminfo', 'tmpfs', 'sysv-shm'];
    expect(owners).toEqual([all, ['meminfo'], ['meminfo'], all, ['meminfo'], ['meminfo'], all]);
    const lab = await layersAt(labFixture('6.12', 'after'), ['meminfo', 'slab', 'buddy']);
    const kernel = ['meminfo', 'slab', 'buddy'];
    expect(lab).toEqual([kernel, ['meminfo'], ['meminfo'], kernel, ['meminfo'], ['meminfo'], kernel]);
  });

  it('keeps the mounts and segments alive in the recording between their readings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-sampler-'));
    try {
      const snapshot = () => new DirectorySnapshot(join(REPO_FIXTURES, 'owners-6.18', 'snapshot'));
      await record({ db: join(dir, 'r.db'), intervalMs: 20, durationMs: 200, snapshot, slabEvery: 3 });
      const reader = new RecordingReader(join(dir, 'r.db'));
      try {
        const rec = reader.load();
        expect(rec.tickCount).toBeGreaterThanOrEqual(4);
        const shared = rec.series.filter((s) => s.layer === 'tmpfs' || s.layer === 'sysv-shm');
        // /dev/shm, /sys/fs/cgroup and the fixture's mount; three segments (owners.test.ts).
        expect(new Set(shared.filter((s) => s.layer === 'tmpfs').map((s) => s.key)).size).toBe(3);
        expect(new Set(shared.filter((s) => s.layer === 'sysv-shm').map((s) => s.key)).size).toBe(3);
        // Not read at ticks 2, 3, 5, ...: carried, not ended.
        expect(shared.every((s) => s.endedMs === undefined)).toBe(true);
      } finally {
        reader.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
