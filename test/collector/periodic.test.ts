/**
 * The periodic collector end to end, on this machine: `memsleuth collector --interval` prints
 * the script, busybox sh (with nothing but busybox applets on PATH) and bash run it while two
 * programs leak shared memory, `memsleuth record --from` turns the captures into a recording
 * and `memsleuth leaks` names each leak by its file or segment and its process.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeakReport } from '../../src/analysis/leaks.js';
import { cli } from '../run.js';

const BUSYBOX = '/bin/busybox';

// Two leakers, 256 KiB a second each, for at most `argv[1]` seconds.
const SHM_APPEND = `
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int c, char **v) { int secs = atoi(v[1]); static char buf[65536]; memset(buf, 7, sizeof buf);
  int fd = open(v[2], O_WRONLY | O_CREAT | O_APPEND, 0600); if (fd < 0) return 1;
  for (int t = 0; t < secs * 4; t++) { if (write(fd, buf, sizeof buf) < 0) return 1; usleep(250000); }
  unlink(v[2]); return 0; }`;
const SYSV_GROW = `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/shm.h>
int main(int c, char **v) { int secs = atoi(v[1]); size_t n = 256UL << 20, step = 64 << 10;
  int id = shmget(IPC_PRIVATE, n, IPC_CREAT | 0600); if (id < 0) return 1;
  char *p = shmat(id, 0, 0); if (p == (void *)-1) return 1; shmctl(id, IPC_RMID, 0);
  for (int t = 0; t < secs * 4 && (size_t)(t + 1) * step <= n; t++) { memset(p + (size_t)t * step, 1, step); usleep(250000); }
  return 0; }`;

const BASH = '/bin/bash';

let work: string;
let bb: string;
const kids: ChildProcess[] = [];
const shmFiles: string[] = [];

beforeAll(() => {
  for (const p of [BUSYBOX, BASH])
    if (!existsSync(p)) throw new Error(`${p} missing: run scripts/ensure-deps.sh (busybox-static, bash)`);
  work = mkdtempSync(join(tmpdir(), 'memsleuth-periodic-'));
  bb = join(work, 'bb');
  mkdirSync(bb);
  const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of applets) symlinkSync(BUSYBOX, join(bb, a));
  for (const [name, src] of [
    ['ms-shm-append', SHM_APPEND],
    ['ms-sysv-grow', SYSV_GROW],
  ] as const) {
    writeFileSync(join(work, `${name}.c`), src);
    execFileSync('gcc', ['-O1', '-o', join(work, name), join(work, `${name}.c`)]);
  }
});

afterAll(() => {
  for (const k of kids) k.kill('SIGKILL');
  for (const f of shmFiles) rmSync(f, { force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The shells the periodic script runs under, with the PATH each gets and count / keep. */
const SHELLS = [
  { name: 'busybox sh', argv: () => [BUSYBOX, 'sh'], env: () => ({ PATH: bb }), count: 10, keep: 9 },
  {
    name: 'bash',
    argv: () => [BASH],
    env: () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin' }),
    count: 10,
    keep: 9,
  },
] as const;

describe('a periodic collector run, recorded with record --from', () => {
  it.each(SHELLS)(
    'under $name: keeps the newest captures, and leaks names the /dev/shm file and the SysV segment with their processes',
    async ({ name, argv, env, count, keep }) => {
      const tag = name.replace(/\W+/g, '-');
      const shmFile = `/dev/shm/memsleuth-periodic-${process.pid}-${tag}.dat`;
      shmFiles.push(shmFile);
      const append = spawn(join(work, 'ms-shm-append'), ['400', shmFile], { stdio: 'ignore' });
      const grow = spawn(join(work, 'ms-sysv-grow'), ['400'], { stdio: 'ignore' });
      kids.push(append, grow);
      try {
        const script = await cli([
          'collector',
          '--interval',
          '2s',
          '--count',
          String(count),
          '--keep',
          String(keep),
        ]);
        expect(script.status).toBe(0);
        writeFileSync(join(work, `collect-${tag}.sh`), script.stdout);
        const out = join(work, `captures-${tag}`);
        // No smaps: a capture of every process is then a few seconds even on a busy machine.
        const [cmd, ...args] = argv();
        const run = spawn(cmd!, [...args, join(work, `collect-${tag}.sh`), '-o', out, '--no-smaps'], {
          env: env(),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        run.stdout.on('data', (d) => {
          stdout += d;
        });
        run.stderr.on('data', (d) => {
          stderr += d;
        });
        const code = await new Promise<number | null>((r) => run.on('exit', r));
        expect(code, stderr).toBe(0);
        const written = stdout.trim().split('\n');
        expect(written).toHaveLength(count);
        for (const p of written) expect(p).toMatch(new RegExp(`/captures-${tag}/\\d{8}T\\d{6}Z\\.tar\\.gz$`));
        // Disk use is bounded by --keep: the oldest captures went, nothing partial stayed.
        const kept = readdirSync(out).sort();
        expect(kept).toEqual(written.slice(count - keep).map((p) => p.slice(out.length + 1)));
        expect(stderr).toContain(`every 2s, ${count} times, keeping the newest ${keep}`);
        expect(stderr).not.toMatch(/failed/);

        const db = join(work, `periodic-${tag}.db`);
        const rec = await cli(['record', '--from', out, '--db', db]);
        expect(rec.status, rec.stderr).toBe(0);
        expect(rec.stderr).toMatch(new RegExp(`^recorded ${keep} captures of `, 'm'));

        const leaks = await cli(['leaks', '--db', db, '--json', '--all']);
        expect(leaks.status, leaks.stdout.slice(0, 2000)).toBe(1);
        const rep = JSON.parse(leaks.stdout) as LeakReport;
        const file = rep.suspects.find((s) => s.id === `tmpfs-file/${shmFile}`);
        expect(file?.kind).toBe('tmpfs-file');
        expect(file?.name).toBe(`${shmFile} (ms-shm-append pid ${append.pid})`);
        expect(file?.owners?.[0]).toEqual({
          pid: append.pid,
          name: 'ms-shm-append',
          how: 'fd 3 open for writing',
        });
        // 256 KiB a second, within the spread of capture times on a busy machine.
        expect(file!.ratePerHour / (256 * 1024 * 3600)).toBeGreaterThan(0.6);
        expect(file!.ratePerHour / (256 * 1024 * 3600)).toBeLessThan(1.4);
        const seg = rep.suspects.find((s) => s.kind === 'sysv-shm' && s.pid === grow.pid);
        expect(seg?.name).toMatch(new RegExp(`^SysV shm \\d+ \\(ms-sysv-grow pid ${grow.pid}\\)$`));
        expect(seg?.owners?.[0]).toMatchObject({ pid: grow.pid, name: 'ms-sysv-grow', how: 'created it' });
        // Shmem grows with the file; when it is a suspect too (the machine's other tmpfs users
        // can hide the trend), it says which parts.
        const shmem = rep.suspects.find((s) => s.id === 'meminfo/Shmem');
        if (shmem) expect(shmem.related?.join(' ')).toContain(shmFile);

        const text = await cli(['leaks', '--db', db, '--all']);
        expect(text.stdout).toMatch(
          new RegExp(`held by: ms-shm-append \\(pid ${append.pid}\\) fd 3 open for writing`),
        );
      } finally {
        append.kill('SIGKILL');
        grow.kill('SIGKILL');
        rmSync(shmFile, { force: true });
      }
    },
    600_000,
  );
});
