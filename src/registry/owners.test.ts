import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_FIXTURES } from '../../test/paths.js';
import { DirectorySnapshot } from '../capture/snapshot.js';
import type { EntitySample } from '../model/samples.js';
import { Sampler } from '../record/sampler.js';
import { buildReport, reportTables } from './report.js';
import { classifyShm, scanShmHolders } from './sources/shm_holders.js';
import { sysvipcShm } from './sources/sysvipc_shm.js';
import { tmpfs } from './sources/tmpfs.js';

// test/fixtures/owners-6.18: one moment of Linux 6.18 with every kind of shared memory object,
// staged by holder.c (SOURCES.md), as `memsleuth snapshot` wrote it and as the sh collector did.
const SNAP = join(REPO_FIXTURES, 'owners-6.18', 'snapshot');
const COLLECTOR = join(REPO_FIXTURES, 'owners-6.18', 'collector');
const PID = Number(readdirSync(join(SNAP, 'proc'))[0]);
const SPACED = '/tmp/own/fx/msl fixture tmpfs';
const MOUNTS = ['/dev/shm', '/sys/fs/cgroup', SPACED];

describe('classifyShm: what shared memory object a path is', () => {
  it.each([
    ['/dev/shm/x', undefined, { kind: 'tmpfs', key: 'tmpfs:/dev/shm/x' }],
    ['/dev/shm/x (deleted)', 25, { kind: 'deleted', key: 'deleted:25:/dev/shm/x' }],
    [
      '/memfd:msl-ring (deleted)',
      8591,
      { kind: 'memfd', key: 'memfd:8591:msl-ring', name: '/memfd:msl-ring' },
    ],
    ['/SYSV4d534c31 (deleted)', 32809, { kind: 'sysv', key: 'sysv:32809' }],
    [`${SPACED}/grow.bin`, undefined, { kind: 'tmpfs', key: `tmpfs:${SPACED}/grow.bin` }],
  ] as const)('%s', (path, inode, want) => {
    expect(classifyShm(path, inode, MOUNTS)).toMatchObject(want);
  });

  it('is nothing for files on other file systems, deleted or not, and for shared anonymous memory', () => {
    expect(classifyShm('/var/log/syslog', undefined, MOUNTS)).toBeUndefined();
    expect(classifyShm('/var/log/syslog (deleted)', 9, MOUNTS)).toBeUndefined();
    expect(classifyShm('/dev/zero (deleted)', 9, MOUNTS)).toBeUndefined();
    expect(classifyShm('socket:[1]', undefined, MOUNTS)).toBeUndefined();
  });
});

describe('the shared memory holders of the 6.18 capture', () => {
  it('finds every object the holder staged, with how it holds it', async () => {
    const snap = new DirectorySnapshot(SNAP);
    const { holders } = await scanShmHolders(snap, { tmpfsMounts: MOUNTS });
    const byKey = Object.fromEntries(holders.map((h) => [h.object.key, h]));
    expect(Object.keys(byKey).sort()).toEqual([
      'deleted:25:/dev/shm/msl-deleted.dat',
      'memfd:8591:msl-ring',
      'sysv:32809',
      'sysv:32810',
      'tmpfs:/dev/shm/msl-fixture.dat',
    ]);
    for (const h of holders) {
      expect(h.pid).toBe(PID);
      expect(h.comm).toBe('msl-holder');
    }
    expect(byKey['tmpfs:/dev/shm/msl-fixture.dat']).toMatchObject({
      fds: [4],
      writableFds: 1,
      mappedBytes: 0,
    });
    expect(byKey['deleted:25:/dev/shm/msl-deleted.dat']).toMatchObject({ fds: [5], objectBytes: 3 << 19 });
    // The memfd: open (fd 3) and mapped; its fd shows 1 MiB written of the 3 MiB mapped.
    expect(byKey['memfd:8591:msl-ring']).toMatchObject({
      fds: [3],
      objectBytes: 1 << 20,
      mappedBytes: 3 << 20,
      mappedRssBytes: 1 << 20,
    });
    // SysV segments are mapped only; smaps gives what the mapping holds resident.
    expect(byKey['sysv:32809']).toMatchObject({ fds: [], mappedBytes: 4 << 20, mappedRssBytes: 1 << 20 });
    expect(byKey['sysv:32810']).toMatchObject({ mappedBytes: 2 << 20, mappedRssBytes: 512 << 10 });
  });

  it('finds the same open fds in the busybox capture', async () => {
    const fromSh = await scanShmHolders(new DirectorySnapshot(COLLECTOR), { tmpfsMounts: MOUNTS });
    const fromNode = await scanShmHolders(new DirectorySnapshot(SNAP), { tmpfsMounts: MOUNTS });
    const fds = (h: typeof fromSh.holders) =>
      h
        .filter((x) => x.fds.length)
        .map((x) => [x.object.key, x.comm, x.fds, x.writableFds, x.objectBytes])
        .sort();
    expect(fds(fromSh.holders)).toEqual(fds(fromNode.holders));
    expect(fds(fromSh.holders).length).toBe(3);
  });
});

describe('report on the 6.18 capture', () => {
  let report: Awaited<ReturnType<typeof buildReport>>;
  beforeAll(async () => {
    report = await buildReport(new DirectorySnapshot(SNAP));
  });

  it('lists tmpfs mounts by used bytes and the largest files', () => {
    expect(report.tmpfs?.mounts.map((m) => [m.mount, m.usedBytes])).toEqual([
      ['/dev/shm', (2 << 20) + (3 << 19)],
      [SPACED, 832 << 10],
      ['/sys/fs/cgroup', 0],
    ]);
    expect(report.tmpfs?.files[0]).toMatchObject({
      path: '/dev/shm/msl-fixture.dat',
      allocatedBytes: 2 << 20,
    });
  });

  it('lists SysV segments by resident bytes with their creator’s name', () => {
    const s = report.sysvShm!;
    expect(s.count).toBe(3);
    expect(s.segments.map((x) => [x.shmid, x.key, x.rssBytes, x.creator, x.removed])).toEqual([
      [32809, '0x4d534c31', 1 << 20, 'msl-holder', false],
      [32810, '0x00000000', 512 << 10, 'msl-holder', true],
      // ipcmk made it and exited: no name for pid 12222 in this capture.
      [32808, '0x7aed752c', 0, undefined, false],
    ]);
  });

  it('names each object’s holder, largest object first', () => {
    const h = report.shmHolders!;
    expect(h.objects.map((o) => [o.object.name, o.bytes])).toEqual([
      ['/dev/shm/msl-fixture.dat', 2 << 20],
      ['/dev/shm/msl-deleted.dat (deleted)', 3 << 19],
      ['/memfd:msl-ring', 1 << 20],
      ['SysV shmid 32809', 1 << 20],
      ['SysV shmid 32810', 512 << 10],
    ]);
    expect(h.deletedBytes).toBe(3 << 19);
    const t = reportTables(report).find((x) => x.source === 'shm_holders')!;
    expect(t.rows[0]).toEqual([
      '/dev/shm/msl-fixture.dat',
      '2.0 MiB',
      `msl-holder (${PID}) fd 4 open for writing`,
    ]);
    expect(t.rows[2]![2]).toBe(`msl-holder (${PID}) fd 3 open for writing, mapped 3.0 MiB`);
    // 1.5 MiB of deleted files is below the finding's 16 MiB.
    expect(report.findings.some((f) => f.title.startsWith('Deleted tmpfs files'))).toBe(false);
  });

  it('renders the SysV table with creator and last pid', () => {
    const t = reportTables(report).find((x) => x.source === 'sysvipc_shm')!;
    expect(t.title).toBe('System V shared memory (3 segments, 1.5 MiB resident)');
    expect(t.rows[1]).toEqual([
      '32810',
      '0x00000000 (removed)',
      '2.0 MiB',
      '512.0 KiB',
      '0 B',
      '1',
      `msl-holder (${PID})`,
      `msl-holder (${PID})`,
    ]);
    expect(t.rows[2]![6]).toBe('12222');
    expect(t.rows[2]![7]).toBe('-');
  });
});

describe('diff of the new sources', () => {
  it('ranks a segment’s resident growth and a file’s allocated growth', async () => {
    const snap = new DirectorySnapshot(SNAP);
    const shm = (await sysvipcShm.load(snap, {}, undefined as never))!;
    const after = structuredClone(shm);
    after.segments[1]!.rssBytes! += 3 << 20;
    const rows = sysvipcShm.diff!(shm, after, { pageSizeBytes: 4096 }).rows.filter((r) => r.deltaBytes);
    expect(rows).toEqual([
      expect.objectContaining({ name: 'SysV shm 32809 (key 0x4d534c31)', deltaBytes: 3 << 20 }),
    ]);
    const l = (await tmpfs.load(snap, {}, undefined as never))!;
    const grown = structuredClone(l);
    grown.files[0]!.allocatedBytes += 1 << 20;
    grown.mounts[0]!.usedBytes += 1 << 20;
    const t = tmpfs.diff!(l, grown, { pageSizeBytes: 4096 }).rows.filter((r) => r.deltaBytes);
    expect(t.map((r) => [r.name, r.deltaBytes])).toEqual([
      ['tmpfs /dev/shm', 1 << 20],
      ['/dev/shm/msl-fixture.dat', 1 << 20],
    ]);
  });
});

describe('sampling the 6.18 capture', () => {
  it('records mounts, files of 64 KiB and more, and segments with their creator as pid', async () => {
    const tick = await new Sampler({ snapshot: () => new DirectorySnapshot(SNAP), tmpfsEvery: 1 }).sample(1);
    const of = (layer: string) => tick.entities.filter((e) => e.layer === layer);
    expect(of('tmpfs').map((e) => [e.key, e.values?.used_bytes])).toEqual([
      ['/dev/shm', (2 << 20) + (3 << 19)],
      ['/sys/fs/cgroup', 0],
      [SPACED, 832 << 10],
    ]);
    expect(of('tmpfs-file').map((e) => e.key)).toEqual([
      '/dev/shm/msl-fixture.dat',
      `${SPACED}/grow.bin`,
      `${SPACED}/sparse.bin`,
    ]);
    const seg = of('sysv-shm').find((e) => e.key === '32809') as EntitySample;
    expect(seg).toMatchObject({
      pid: PID,
      label: 'key 0x4d534c31',
      values: { rss_bytes: 1 << 20, nattch: 1 },
    });
    // Nothing grew yet: the first tick only marks what each object holds.
    expect(of('shm-holder')).toEqual([]);
    expect(tick.layersRead?.sort()).toEqual(['sysv-shm', 'tmpfs', 'tmpfs-file']);
  });
});

describe('the holders search on this machine', () => {
  const work = mkdtempSync(join(tmpdir(), 'memsleuth-owners-'));
  const file = `/dev/shm/memsleuth-owners-test-${process.pid}.dat`;
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(file, { force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('looks for holders only once a file grew, and names the process that writes it', async () => {
    // A shell that keeps the file open on fd 7 and appends 1 MiB when told (a line on stdin).
    child = spawn(
      'sh',
      ['-c', `exec 7>>${file}; while read -r _; do head -c 2097152 /dev/zero >&7; echo ok; done`],
      {
        stdio: ['pipe', 'pipe', 'ignore'],
      },
    );
    const grow = () =>
      new Promise<void>((resolve) => {
        child!.stdout!.once('data', () => resolve());
        child!.stdin!.write('\n');
      });
    await grow();
    const sampler = new Sampler({ tmpfsEvery: 1, pidFilter: (p) => p === child!.pid });
    const t1 = await sampler.sample();
    expect(t1.entities.filter((e) => e.layer === 'shm-holder')).toEqual([]);
    expect(t1.entities.some((e) => e.layer === 'tmpfs-file' && e.key === file)).toBe(true);
    // Nothing grew: no search.
    expect((await sampler.sample()).entities.filter((e) => e.layer === 'shm-holder')).toEqual([]);
    await grow();
    const t3 = await sampler.sample();
    const held = t3.entities.filter((e) => e.layer === 'shm-holder');
    expect(held).toEqual([
      expect.objectContaining({
        key: expect.stringMatching(new RegExp(`^tmpfs:${file} ${child.pid}:\\d+$`)),
        label: 'sh',
        pid: child.pid,
        sparse: { fds: 1, fds_writable: 1, mapped_bytes: 0, first_fd: 7 },
      }),
    ]);
    expect(t3.layersRead).toContain('shm-holder');
  });
});
