import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../test/children.js';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { LiveSnapshot } from '../capture/live.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import { MemsleuthError } from '../model/errors.js';
import type { Snapshot } from '../model/snapshot.js';
import { parseProcStatus } from '../sources/proc_status.js';
import { parseSmaps } from '../sources/smaps.js';
import { mappingMemoryTypes, oomOrder, pmapView, processMemory, readProcesses } from './process.js';

const MiB = 1 << 20;
const FOUR = join(REPO_FIXTURES, 'linux-6.18-four-types');
const PROC_FILES = ['status', 'statm', 'stat', 'smaps', 'smaps_rollup', 'cmdline'];
const typesSum = (p: {
  privateAnonBytes?: number;
  sharedAnonBytes?: number;
  privateFileBytes?: number;
  sharedFileBytes?: number;
}) => p.privateAnonBytes! + p.sharedAnonBytes! + p.privateFileBytes! + p.sharedFileBytes!;

/** Copy live /proc/PID/* files into `dir/proc/PID/` (files that cannot be read are left out). */
function copyLive(dir: string, pids: number[]): void {
  for (const pid of pids) {
    const d = join(dir, 'proc', String(pid));
    mkdirSync(d, { recursive: true });
    for (const f of PROC_FILES) {
      try {
        writeFileSync(join(d, f), readFileSync(`/proc/${pid}/${f}`));
      } catch {
        // smaps_rollup of a kernel thread fails with ESRCH.
      }
    }
  }
}

describe('the four memory types on a process with known allocations (linux-6.18-four-types)', () => {
  it('finds 8 MiB private anon, 7 MiB shared anon (shmem), 3 MiB shared file, ≥1 MiB private file', async () => {
    // make.py: parent 17695, its forked child 17736, kthreadd 2.
    const snap = new DirectorySnapshot(FOUR);
    const { processes, skipped } = await readProcesses(snap);
    expect(skipped).toEqual([]);
    expect(processes.map((p) => p.pid)).toEqual([2, 17695, 17736]);
    const [kthreadd, parent, child] = processes as [
      (typeof processes)[0],
      (typeof processes)[0],
      (typeof processes)[0],
    ];
    const status = parseProcStatus(readFileSync(join(FOUR, 'proc/17695/status'), 'utf8'));

    expect(parent.name).toBe('python3');
    expect(parent.cmdline[0]).toMatch(/python3/);
    expect(parent.cmdline[1]).toBe('make.py');
    expect(parent.sources.sort()).toEqual(['cmdline', 'smaps', 'stat', 'statm', 'status']);
    // The 8 MiB bytearray, plus the interpreter's own heap.
    expect(parent.privateAnonBytes).toBeGreaterThanOrEqual(8 * MiB);
    expect(parent.privateAnonBytes).toBe(status.bytes.RssAnon);
    // MAP_SHARED|MAP_ANONYMOUS 4 MiB + /dev/shm 2 MiB + memfd 1 MiB: all shmem.
    expect(parent.sharedAnonBytes).toBe(7 * MiB);
    expect(parent.sharedAnonBytes).toBe(status.bytes.RssShmem);
    // The disk file mapped MAP_SHARED, and glibc's gconv-modules.cache (also MAP_SHARED).
    expect(parent.sharedFileBytes).toBeGreaterThanOrEqual(3 * MiB);
    expect(parent.sharedFileBytes).toBeLessThan(3 * MiB + 100 * 1024);
    // The MAP_PRIVATE disk file (1 MiB) plus python and its libraries.
    expect(parent.privateFileBytes).toBeGreaterThan(1 * MiB);
    expect(parent.privateFileBytes! + parent.sharedFileBytes!).toBe(status.bytes.RssFile);
    expect(typesSum(parent)).toBe(parent.rssBytes);
    expect(parent.rssBytes).toBe(status.bytes.VmRSS);
    // After fork the anonymous pages are mapped twice: Pss counts half of them, Uss none.
    expect(parent.ussBytes!).toBeLessThan(parent.pssBytes!);
    expect(parent.pssBytes!).toBeLessThan(parent.rssBytes);
    expect(parent.rssBytes - parent.pssBytes!).toBeGreaterThan(4 * MiB);
    expect(parent.threads).toBe(1);
    expect(parent.startTimeTicks).toBeGreaterThan(0);
    expect(parent.codeBytes).toBeGreaterThan(0);
    expect(parent.sharedBytes).toBe(status.bytes.RssFile! + status.bytes.RssShmem!);

    // The child touched nothing: its anonymous pages are the parent's, still private anonymous
    // by type (made by MAP_PRIVATE) though shared by count (Uss excludes them).
    expect(child.privateAnonBytes).toBeGreaterThanOrEqual(8 * MiB);
    expect(child.ussBytes!).toBeLessThan(2 * MiB); // a few COW copies of stack and heap pages
    expect(child.sharedAnonBytes).toBe(0);

    expect(kthreadd).toMatchObject({
      name: 'kthreadd',
      kernelThread: true,
      rssBytes: 0,
      pssBytes: 0,
      vszBytes: 0,
    });
    expect(kthreadd.cmdline).toEqual([]);
  });

  it('classifies each mapping by its backing and MAP_SHARED flag', () => {
    const maps = parseSmaps(readFileSync(join(FOUR, 'proc/17695/smaps'), 'utf8'));
    const by = (name: string) => {
      const m = maps.find((x) => x.pathname.includes(name));
      if (!m) throw new Error(`no mapping ${name}`);
      return mappingMemoryTypes(m);
    };
    expect(by('/dev/zero (deleted)')).toEqual({
      privateAnonBytes: 0,
      sharedAnonBytes: 4 * MiB,
      privateFileBytes: 0,
      sharedFileBytes: 0,
    });
    expect(by('/dev/shm/memsleuth-fixture').sharedAnonBytes).toBe(2 * MiB);
    expect(by('/memfd:memsleuth-fixture').sharedAnonBytes).toBe(1 * MiB);
    expect(by('memsleuth-fixture-shared.dat').sharedFileBytes).toBe(3 * MiB);
    expect(by('memsleuth-fixture-private.dat').privateFileBytes).toBe(1 * MiB);
  });
});

describe('processMemory on the lab captures', () => {
  it('init and the collector’s shell run from an initramfs (tmpfs): their file pages are shmem', async () => {
    for (const [kernel, shell] of [
      ['6.1', 2235],
      ['6.12', 2595],
    ] as const) {
      const dir = labFixture(kernel, 'after');
      const { processes, skipped } = await readProcesses(new DirectorySnapshot(dir));
      expect(skipped).toEqual([]);
      // The collector leaves kernel threads out (PF_KTHREAD in stat).
      expect(processes.map((p) => [p.pid, p.name, p.kernelThread])).toEqual([
        [1, 'init', false],
        [shell, 'sh', false],
      ]);
      for (const p of processes) {
        const status = parseProcStatus(readFileSync(join(dir, `proc/${p.pid}/status`), 'utf8'));
        expect(p.rssBytes).toBe(status.bytes.VmRSS);
        expect(p.privateAnonBytes).toBe(status.bytes.RssAnon);
        expect(p.sharedAnonBytes).toBe(status.bytes.RssShmem);
        expect(p.sharedAnonBytes).toBeGreaterThan(p.privateAnonBytes!);
        expect(p.privateFileBytes! + p.sharedFileBytes!).toBe(status.bytes.RssFile);
        expect(typesSum(p)).toBe(p.rssBytes);
        expect(p.sources.sort()).toEqual(['cmdline', 'smaps', 'stat', 'statm', 'status']);
      }
    }
  });

  it('tells kernel threads without stat: Kthread (6.7+), else no Vm lines under kthreadd', () => {
    // kthreadd as 6.18 prints it, then as kernels before 6.7 do (no Kthread line, as in the
    // 6.1 lab captures), then one of its children (PPid 2) likewise.
    const kthreadd = readFileSync(join(FOUR, 'proc/2/status'), 'utf8');
    const pre67 = kthreadd.replace(/^Kthread:.*\n/m, '');
    expect(pre67).not.toBe(kthreadd);
    expect(readFileSync(join(labFixture('6.1', 'after'), 'proc/1/status'), 'utf8')).not.toContain('Kthread');
    const child = pre67.replace(/^PPid:\t0$/m, 'PPid:\t2').replace(/^(Pid|Tgid):\t2$/gm, '$1:\t30');
    expect(child).toContain('PPid:\t2');
    for (const [pid, text] of [
      [2, kthreadd],
      [2, pre67],
      [30, child],
    ] as const) {
      const p = processMemory(pid, { status: text, statm: '0 0 0 0 0 0 0\n' }, 4096);
      expect(p.kernelThread, `pid ${pid}`).toBe(true);
      expect(p.rssBytes + (p.pssBytes ?? 0) + p.vszBytes).toBe(0);
    }
    // A user process with the same status but Vm lines is not one.
    const init = readFileSync(join(labFixture('6.1', 'after'), 'proc/1/status'), 'utf8');
    expect(processMemory(1, { status: init }, 4096).kernelThread).toBe(false);
  });
});

describe('readProcesses on live processes copied into a directory', () => {
  let child: ChildProcessWithoutNullStreams;
  let dir: string;
  const next = (): Promise<string> =>
    new Promise((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memsleuth-proc-test-'));
    // Waits, then allocates a 64 MiB Buffer and touches every page (fill), then waits again.
    const script = `
      const rl = require('node:readline').createInterface({ input: process.stdin });
      let held;
      console.log('ready');
      rl.on('line', () => { held = Buffer.alloc(64 << 20); held.fill(7); console.log('allocated'); });`;
    child = spawn(process.execPath, ['-e', script]);
    expect(await next()).toBe('ready');
  });
  afterAll(() => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sees a child’s 64 MiB Buffer as private anonymous growth; itself, a sleeper and kthreadd read too', async () => {
    const pid = child.pid!;
    const before = join(dir, 'before');
    copyLive(before, [pid, process.pid, 2]);
    child.stdin.write('go\n');
    expect(await next()).toBe('allocated');
    const after = join(dir, 'after');
    copyLive(after, [pid, process.pid, 2]);

    const a = await readProcesses(new DirectorySnapshot(before));
    const b = await readProcesses(new DirectorySnapshot(after));
    expect(a.skipped).toEqual([]);
    const pa = a.processes.find((p) => p.pid === pid)!;
    const pb = b.processes.find((p) => p.pid === pid)!;
    expect(pb.name).toBe('node');
    expect(pb.cmdline.slice(0, 2)).toEqual([process.execPath, '-e']);
    for (const key of ['privateAnonBytes', 'rssBytes', 'ussBytes', 'pssBytes'] as const) {
      const grew = pb[key]! - pa[key]!;
      expect(grew, key).toBeGreaterThanOrEqual(63 * MiB);
      expect(grew, key).toBeLessThan(64 * MiB + 16 * MiB);
    }
    expect(pb.sharedAnonBytes! - pa.sharedAnonBytes!).toBe(0);
    // statm and smaps are read one after the other from a running node: close, not equal.
    expect(Math.abs(typesSum(pb) - pb.rssBytes)).toBeLessThan(4 * MiB);
    const me = b.processes.find((p) => p.pid === process.pid)!;
    expect(me.kernelThread).toBe(false);
    expect(me.rssBytes).toBeGreaterThan(10 * MiB);
    const kthreadd = b.processes.find((p) => p.pid === 2)!;
    expect(kthreadd.kernelThread).toBe(true);
    expect(kthreadd.sources).not.toContain('smaps_rollup');
  });

  it('reads only the status of a kernel thread, live, in every mode, and gives it zeros', async () => {
    const live = new LiveSnapshot();
    for (const memory of ['types', 'pss', 'status'] as const) {
      const asked: string[] = [];
      const snap: Snapshot = Object.assign(Object.create(live) as Snapshot, {
        pids: async () => [2],
        readText: async (path: string) => {
          asked.push(path);
          return live.readText(path);
        },
      });
      const { processes } = await readProcesses(snap, { memory, details: false });
      expect(asked, memory).toEqual(['proc/2/status']);
      expect(processes[0]!.kernelThread).toBe(true);
      for (const k of ['rssBytes', 'pssBytes', 'ussBytes', 'hugetlbBytes', 'privateAnonBytes'] as const)
        expect(processes[0]![k], `${memory} ${k}`).toBe(0);
    }
  });

  it('withSmaps: false reads smaps_rollup: same Pss/Uss, no file split', async () => {
    const pid = child.pid!;
    const d = join(dir, 'rollup');
    copyLive(d, [pid]);
    const [full] = (await readProcesses(new DirectorySnapshot(d))).processes;
    const [quick] = (await readProcesses(new DirectorySnapshot(d), { withSmaps: false })).processes;
    expect(quick!.sources).toContain('smaps_rollup');
    expect(quick!.sources).not.toContain('smaps');
    // Read one after the other from an idle node: equal up to what a background task touches.
    expect(Math.abs(quick!.ussBytes! - full!.ussBytes!)).toBeLessThan(512 * 1024);
    expect(Math.abs(quick!.pssBytes! - full!.pssBytes!)).toBeLessThan(200 * 1024); // per-mapping kB truncation
    expect(quick!.privateFileBytes).toBeUndefined();
    // smaps_rollup splits Pss by backing (5.10+); the parts never exceed the whole.
    expect(quick!.pssAnonBytes).toBeGreaterThan(0);
    expect(quick!.pssFileBytes).toBeGreaterThan(0);
    expect(quick!.pssAnonBytes! + quick!.pssFileBytes! + quick!.pssShmemBytes!).toBeLessThanOrEqual(
      quick!.pssBytes!,
    );
    expect(full!.pssAnonBytes).toBeUndefined();
    expect(full!.privateFileBytes).toBeGreaterThan(0);
  });
});

/**
 * A python3 child holding each memory type (as linux-6.18-four-types/make.py does); with
 * `sharedFile` it also maps a disk file MAP_SHARED. Prints "ready" and sleeps.
 */
const HOLDER = (sharedFile: boolean) => `
import mmap, os, sys, tempfile, time
MiB = 1 << 20
PAGE = mmap.PAGESIZE
def touch(b, n, write=True):
    s = 0
    for i in range(0, n, PAGE):
        if write: b[i] = 1
        else: s += b[i]
    return s
priv = bytearray(8 * MiB); touch(priv, 8 * MiB)
shanon = mmap.mmap(-1, 4 * MiB, flags=mmap.MAP_SHARED); touch(shanon, 4 * MiB)
shm_path = '/dev/shm/memsleuth-test-%d' % os.getpid()
with open(shm_path, 'wb+') as f:
    f.truncate(2 * MiB)
    shm = mmap.mmap(f.fileno(), 2 * MiB, flags=mmap.MAP_SHARED)
os.unlink(shm_path)
touch(shm, 2 * MiB)
mfd = os.memfd_create('memsleuth-test'); os.ftruncate(mfd, MiB)
memfd = mmap.mmap(mfd, MiB, flags=mmap.MAP_SHARED); touch(memfd, MiB)
keep = []
for name, n, flags in (('private', MiB, mmap.MAP_PRIVATE),) + ((('shared', 3 * MiB, mmap.MAP_SHARED),) if ${sharedFile ? 'True' : 'False'} else ()):
    fd, p = tempfile.mkstemp(prefix='memsleuth-test-' + name)
    os.write(fd, b'\\x01' * n); os.fsync(fd)
    m = mmap.mmap(fd, n, flags=flags, prot=mmap.PROT_READ)
    os.unlink(p)
    touch(m, n, write=False); keep.append(m)
print('ready', flush=True)
time.sleep(120)
`;

describe('the four types of a live process from maps, smaps_rollup and status', () => {
  const children: ChildProcessWithoutNullStreams[] = [];
  afterAll(() => {
    for (const c of children) c.kill();
  });
  const holder = async (sharedFile: boolean): Promise<number> => {
    // LC_ALL=C: a UTF-8 locale makes glibc map gconv-modules.cache MAP_SHARED.
    const c = spawn('python3', ['-c', HOLDER(sharedFile)], { env: { ...process.env, LC_ALL: 'C' } });
    children.push(c);
    await new Promise<void>((resolve, reject) => {
      c.stdout.once('data', () => resolve());
      c.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    await until(() => readFileSync(`/proc/${c.pid}/stat`, 'utf8').includes(') S '));
    return c.pid!;
  };
  /** The same process read live (the fast path) and from a copy of its files (per-mapping smaps). */
  const both = async (pid: number) => {
    const live = new LiveSnapshot();
    const snap: Snapshot = Object.assign(Object.create(live) as Snapshot, { pids: async () => [pid] });
    const fast = (await readProcesses(snap)).processes[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-proc-types-'));
    try {
      copyLive(dir, [pid]);
      const full = (await readProcesses(new DirectorySnapshot(dir))).processes[0]!;
      return { fast, full };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('without a MAP_SHARED file: smaps_rollup, no per-mapping smaps, the same four types', async () => {
    const { fast, full } = await both(await holder(false));
    expect(fast.sources).toEqual(expect.arrayContaining(['status', 'maps', 'smaps_rollup']));
    expect(fast.sources).not.toContain('smaps');
    expect(full.sources).toContain('smaps');
    // An idle process: the page walks agree exactly; shmem comes from the kernel's RssShmem
    // counter on one side and named mappings on the other (equal once the counter is folded).
    expect(fast.privateAnonBytes).toBe(full.privateAnonBytes);
    expect(fast.sharedAnonBytes).toBe(7 * MiB);
    expect(fast.sharedAnonBytes).toBe(full.sharedAnonBytes);
    expect(fast.privateFileBytes).toBe(full.privateFileBytes);
    expect(fast.sharedFileBytes).toBe(0);
    expect(full.sharedFileBytes).toBe(0);
    expect(fast.swapBytes).toBe(full.swapBytes);
    expect(typesSum(fast)).toBe(typesSum(full));
    // Pss and Uss move when other processes sharing python's pages start or exit (a busy
    // machine), and smaps truncates Pss to kB per mapping where the rollup truncates once.
    expect(Math.abs(fast.pssBytes! - full.pssBytes!)).toBeLessThan(MiB);
    expect(Math.abs(fast.ussBytes! - full.ussBytes!)).toBeLessThan(MiB);
  });

  it('with a file mapped MAP_SHARED: the rollup, and of smaps the mappings it cannot split', async () => {
    const { fast, full } = await both(await holder(true));
    expect(fast.sources).toEqual(expect.arrayContaining(['status', 'maps', 'smaps_rollup', 'smaps']));
    expect(full.sources).not.toContain('smaps_rollup');
    expect(fast.sharedFileBytes).toBe(3 * MiB);
    for (const k of ['privateAnonBytes', 'sharedAnonBytes', 'privateFileBytes', 'sharedFileBytes'] as const)
      expect(fast[k], k).toBe(full[k]);
    expect(Math.abs(fast.pssBytes! - full.pssBytes!)).toBeLessThan(MiB);
  });
});

/** An smaps_rollup as the kernel sums it from `smaps` (every size field, over every mapping). */
function rollupOf(smaps: string): string {
  const sums = new Map<string, number>();
  for (const m of parseSmaps(smaps))
    for (const [k, v] of Object.entries(m.bytes)) sums.set(k, (sums.get(k) ?? 0) + (v ?? 0));
  const lines = [...sums].map(([k, v]) => `${`${k}:`.padEnd(16)}${String(v / 1024).padStart(8)} kB`);
  return `00400000-7ffff000 ---p 00000000 00:00 0                          [rollup]\n${lines.join('\n')}\n`;
}

describe('processMemory from smaps_rollup and the mappings it cannot split (a live read)', () => {
  const TYPES = ['privateAnonBytes', 'sharedAnonBytes', 'privateFileBytes', 'sharedFileBytes'] as const;
  /** The four types from the whole smaps, and from maps + rollup + smaps (the split path). */
  const both = (pid: number, status: string, smaps: string) => {
    const maps = `${smaps
      .split('\n')
      .filter((l) => /^[0-9a-f]+-/.test(l))
      .join('\n')}\n`;
    const full = processMemory(pid, { status, smaps }, 4096);
    const split = processMemory(pid, { status, smaps, smaps_rollup: rollupOf(smaps), maps }, 4096);
    return { full, split };
  };

  it('gives the per-mapping sums on every captured process, and the rollup’s totals', () => {
    let shared = 0;
    for (const root of [FOUR, labFixture('6.1', 'after'), labFixture('6.12', 'after')]) {
      for (const pid of readdirSync(join(root, 'proc'))
        .filter((p) => /^\d+$/.test(p))
        .map(Number)) {
        const read = (f: string) => readFileSync(join(root, `proc/${pid}/${f}`), 'utf8');
        const smaps = read('smaps');
        if (smaps === '') continue;
        const { full, split } = both(pid, read('status'), smaps);
        expect(split.sources, `${root} ${pid}`).toEqual(
          expect.arrayContaining(['smaps_rollup', 'maps', 'smaps']),
        );
        for (const k of TYPES) expect(split[k], `${root} ${pid} ${k}`).toBe(full[k]);
        expect(split.ussBytes).toBe(full.ussBytes);
        expect(split.pssBytes).toBe(full.pssBytes);
        if (/^[0-9a-f]+-[0-9a-f]+ ...s /m.test(smaps)) shared++;
      }
    }
    expect(shared).toBeGreaterThanOrEqual(1);
  });

  it('a tmpfs file not named as shmem and a MAP_PRIVATE /dev/shm file: RssShmem settles both the same way', () => {
    const status = readFileSync(join(FOUR, 'proc/17695/status'), 'utf8');
    const smaps = readFileSync(join(FOUR, 'proc/17695/smaps'), 'utf8');
    for (const [why, changed] of [
      // The /dev/shm file seen under another tmpfs mount: by name a disk file.
      [
        'tmpfs elsewhere',
        smaps.replace(/\/dev\/shm\/memsleuth-fixture[^\n]*/, '/run/memsleuth-fixture (deleted)'),
      ],
      // The /dev/shm file mapped MAP_PRIVATE (read only: its pages stay shmem).
      [
        'private /dev/shm',
        smaps.replace(/^([0-9a-f]+-[0-9a-f]+ [r-][w-][x-])s( [^\n]*\/dev\/shm\/)/m, '$1p$2'),
      ],
    ] as const) {
      expect(changed, why).not.toBe(smaps);
      const { full, split } = both(17695, status, changed);
      for (const k of TYPES) expect(split[k], `${why} ${k}`).toBe(full[k]);
      expect(split.sharedAnonBytes, why).toBe(7 * MiB);
    }
  });
});

describe('processes that vanish or lie', () => {
  it('skips a live process that exits while it is read, and keeps going', async () => {
    const victim = spawn('sleep', ['60'], { stdio: 'ignore' });
    const vpid = victim.pid!;
    await until(() => readFileSync(`/proc/${vpid}/stat`, 'utf8').includes('(sleep) S '));
    const live = new LiveSnapshot();
    // A live snapshot restricted to the victim and ourselves; the victim is killed (and reaped)
    // right after its first status read, as if it exited mid-capture.
    const snap: Snapshot = Object.assign(Object.create(live) as Snapshot, {
      pids: async () => [vpid, process.pid],
      readText: async (path: string) => {
        const t = await live.readText(path);
        if (
          path === `proc/${vpid}/status` &&
          t !== undefined &&
          victim.exitCode === null &&
          victim.signalCode === null
        ) {
          const exited = new Promise((r) => victim.once('exit', r));
          victim.kill('SIGKILL');
          await exited;
        }
        return t;
      },
    });
    const { processes, skipped } = await readProcesses(snap);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.pid).toBe(vpid);
    expect(skipped[0]!.reason).toContain('exited');
    expect(processes.map((p) => p.pid)).toEqual([process.pid]);
  });

  it('skips a live process that dies (a zombie nobody reaps) while it is read', async () => {
    // The exec'd `sleep 60` never reaps its background `sleep 30`: killed, that one stays a zombie.
    const parent = spawn('bash', ['-c', 'sleep 30 & exec sleep 60'], { stdio: 'ignore' });
    try {
      let vpid = 0;
      await until(() => {
        vpid = Number(readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim());
        return vpid > 0 && readFileSync(`/proc/${vpid}/stat`, 'utf8').includes('(sleep) S ');
      });
      const live = new LiveSnapshot();
      let killed = false;
      const snap: Snapshot = Object.assign(Object.create(live) as Snapshot, {
        pids: async () => [vpid],
        readText: async (path: string) => {
          const t = await live.readText(path);
          if (path === `proc/${vpid}/maps` && !killed) {
            killed = true;
            process.kill(vpid, 'SIGKILL');
            await until(() => readFileSync(`/proc/${vpid}/stat`, 'utf8').includes(') Z '));
          }
          return t;
        },
      });
      const { processes, skipped } = await readProcesses(snap);
      expect(killed).toBe(true);
      expect(processes).toEqual([]);
      expect(skipped).toEqual([{ pid: vpid, reason: 'exited while being read (its memory was released)' }]);
    } finally {
      parent.kill();
    }
  });

  it('reads a real zombie as a process with no memory, not a kernel thread and not an error', async () => {
    // `sleep 30` (exec'd over bash) never reaps the background `sleep 0.3`: when that one exits
    // (after the exec, so bash cannot reap it first) it stays a zombie.
    const parent = spawn('bash', ['-c', 'sleep 0.3 & exec sleep 30'], { stdio: 'ignore' });
    try {
      // Wait (the machine may be busy) until the child exists and has died.
      let zpid = 0;
      for (let i = 0; i < 200 && zpid === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const c = Number(readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim());
        if (c > 0 && readFileSync(`/proc/${c}/stat`, 'utf8').includes(') Z ')) zpid = c;
      }
      expect(zpid).toBeGreaterThan(0);
      const live = new LiveSnapshot();
      const snap: Snapshot = Object.assign(Object.create(live) as Snapshot, { pids: async () => [zpid] });
      const { processes, skipped } = await readProcesses(snap);
      expect(skipped).toEqual([]);
      expect(processes[0]).toMatchObject({
        pid: zpid,
        state: 'Z',
        kernelThread: false,
        rssBytes: 0,
        pssBytes: 0,
        ussBytes: 0,
        vszBytes: 0,
        privateAnonBytes: 0,
      });
      expect(processes[0]!.cmdline).toEqual([]);
    } finally {
      parent.kill();
    }
  });

  it('skips a pid whose status is gone; fails loudly on a malformed file with its path', async () => {
    const d = mkdtempSync(join(tmpdir(), 'memsleuth-proc-bad-'));
    try {
      mkdirSync(join(d, 'proc/5'), { recursive: true });
      mkdirSync(join(d, 'proc/6'), { recursive: true });
      copyFileSync(join(FOUR, 'proc/17695/status'), join(d, 'proc/6/status'));
      writeFileSync(join(d, 'proc/6/statm'), '1 2 3\n');
      const snap = new DirectorySnapshot(d);
      let err: unknown;
      try {
        await readProcesses(snap);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MemsleuthError);
      expect((err as MemsleuthError).message).toContain('proc/6/statm:1');
      rmSync(join(d, 'proc/6/statm'));
      const { processes, skipped } = await readProcesses(new DirectorySnapshot(d));
      expect(skipped).toEqual([{ pid: 5, reason: 'status: not present' }]);
      expect(processes[0]!.sources).toEqual(['status']);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('needs status or stat to name a process', () => {
    expect(() => processMemory(9, { statm: '1 1 1 1 0 1 0\n' }, 4096)).toThrow(/proc\/9\/status/);
  });
});

describe('pmapView', () => {
  it('matches procps pmap -x on a live sleeping process, row for row', async () => {
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pid = sleeper.pid!;
      await until(() => readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(sleep) S '));
      const maps = parseSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
      const startStack = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[25]);
      const view = pmapView(maps, { startStack });
      const real = spawnSync('pmap', ['-x', String(pid)], { encoding: 'utf8' });
      expect(real.status).toBe(0);
      const lines = real.stdout.trimEnd().split('\n');
      const rows = lines.slice(2, -2);
      expect(view.rows).toHaveLength(rows.length);
      view.rows.forEach((r, i) => {
        const [addr, kb, rss, dirty, mode, ...name] = rows[i]!.trim().split(/ +/);
        expect(r.address).toBe(addr);
        expect(String(r.sizeBytes / 1024)).toBe(kb);
        expect(String(r.rssBytes / 1024)).toBe(rss);
        expect(String(r.dirtyBytes / 1024)).toBe(dirty);
        expect(r.mode).toBe(mode);
        expect(r.mapping.trim()).toBe(name.join(' '));
      });
      expect(view.rows.some((r) => r.mapping === '  [ stack ]')).toBe(true);
      const total = lines.at(-1)!.split(/ +/);
      expect(total.slice(2).map(Number)).toEqual([
        view.total.sizeBytes / 1024,
        view.total.rssBytes / 1024,
        view.total.dirtyBytes / 1024,
      ]);
    } finally {
      sleeper.kill();
    }
  });
});

describe('oom_score and oomOrder', () => {
  it('reads this process’s oom_score and oom_score_adj as the kernel prints them', () => {
    const files = Object.fromEntries(
      ['status', 'statm', 'oom_score', 'oom_score_adj'].map((f) => [
        f,
        readFileSync(`/proc/self/${f}`, 'utf8'),
      ]),
    );
    const p = processMemory(process.pid, files, 4096);
    expect(p.oomScore).toBe(Number(files.oom_score!.trim()));
    expect(p.oomScoreAdj).toBe(Number(files.oom_score_adj!.trim()));
    expect(p.sources).toEqual(expect.arrayContaining(['oom_score', 'oom_score_adj']));
  });

  it('names a malformed oom_score', () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    expect(() => processMemory(7, { status, oom_score: 'lots\n' }, 4096)).toThrow(
      /proc\/7\/oom_score:1: expected a whole number \(oom_score\), found "lots"/,
    );
  });

  const proc = (pid: number, o: { score?: number; adj?: number; rss?: number; kthread?: boolean }) => ({
    pid,
    name: `p${pid}`,
    cmdline: [],
    kernelThread: o.kthread ?? false,
    rssBytes: o.rss ?? 0,
    swapBytes: 0,
    vszBytes: 0,
    sources: [],
    ...(o.score === undefined ? {} : { oomScore: o.score }),
    ...(o.adj === undefined ? {} : { oomScoreAdj: o.adj }),
  });

  it('orders by oom_score, -1000 last, kernel threads out', () => {
    const r = oomOrder([
      proc(1, { score: 666, adj: 0, rss: 10 }),
      proc(2, { score: 0, adj: -1000, rss: 999 }),
      proc(3, { score: 1400, adj: 1000 }),
      proc(4, { score: 700, adj: 0 }),
      proc(5, { kthread: true, score: 0 }),
    ]);
    expect(r.order.map((p) => p.pid)).toEqual([3, 4, 1, 2]);
    expect(r.by).toBe('oom_score');
    expect(r.unkillable).toBe(1);
  });

  it('falls back to RSS + swap without oom_score', () => {
    const r = oomOrder([proc(1, { rss: 10 }), proc(2, { rss: 30 }), proc(3, { rss: 20 })]);
    expect(r.order.map((p) => p.pid)).toEqual([2, 3, 1]);
    expect(r.by).toBe('rss+swap');
  });
});
