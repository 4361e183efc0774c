import { execFileSync, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLI_BIN, labBundle, labFixture } from '../../test/paths.js';
import { cli } from '../../test/run.js';
import { MemsleuthError } from '../model/errors.js';
import { liveTempDirs, openBundleMember } from './archive.js';
import { openSnapshot } from './snapshot.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-archive-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A 512-byte tar header. */
function header(path: string, size: number, type = 'File', linkpath?: string): Buffer {
  const h = new Header({
    path,
    size,
    type: type as Header['type'],
    mode: 0o644,
    mtime: new Date(0),
    ...(linkpath ? { linkpath } : {}),
  });
  const b = Buffer.alloc(512);
  h.encode(b, 0);
  return b;
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
const member = (path: string, body: Buffer) =>
  Buffer.concat([header(path, body.length), body, pad(body.length)]);
const END = Buffer.alloc(1024);
const MANIFEST = readFileSync(join(labFixture('6.12', 'after'), 'manifest.json'));

function writeBundle(name: string, parts: Buffer[]): string {
  const f = join(work, name);
  writeFileSync(f, gzipSync(Buffer.concat(parts)));
  return f;
}

/** Temporary directories of this process's bundles, and of the given TMPDIR. */
// Bundles unpack under a temporary directory of this file's own: other tests and other users'
// runs unpack under the shared one at the same time, and their directories are no leftovers.
const ownTmp = mkdtempSync(join(tmpdir(), 'memsleuth-archive-tmp-'));
const sharedTmp = process.env.TMPDIR;
beforeAll(() => {
  process.env.TMPDIR = ownTmp;
});
afterAll(() => {
  if (sharedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = sharedTmp;
  rmSync(ownTmp, { recursive: true, force: true });
});
const leftovers = (dir = ownTmp) => readdirSync(dir).filter((n) => n.startsWith('memsleuth-bundle-'));

describe('bundle unpacking is bounded', () => {
  it('a 3 MB gzip that expands to 3 GiB is refused at its header: nothing written, nothing left', async () => {
    // One gzip member per GiB-slice of zeros: gunzip reads concatenated members as one stream.
    const mib = gzipSync(Buffer.alloc(1 << 20), { level: 9 });
    const parts = [gzipSync(member('manifest.json', MANIFEST)), gzipSync(header('meminfo', 3 * 2 ** 30))];
    for (let i = 0; i < 3 * 1024; i++) parts.push(mib);
    const f = join(work, 'bomb.tar.gz');
    writeFileSync(f, Buffer.concat(parts));
    expect(readFileSync(f).length).toBeLessThan(3.5e6);
    const before = leftovers();
    const t0 = Date.now();
    const r = await cli(['report', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `memsleuth: ${f}: not a usable snapshot bundle: "meminfo" is 3.0 GiB: larger than any kernel text source (256.0 MiB)\n` +
        'hint: bundles are .tar.gz files written by `memsleuth snapshot -o FILE` or memsleuth-collect.sh\n',
    );
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(leftovers()).toEqual(before);
    expect(liveTempDirs()).toEqual([]);
  });

  it('stops at MEMSLEUTH_BUNDLE_MAX_BYTES over all members, before writing the one that crosses it', async () => {
    const body = Buffer.alloc(600_000, 0x61);
    const f = writeBundle('many.tar.gz', [
      member('manifest.json', MANIFEST),
      member('a', body),
      member('b', body),
      END,
    ]);
    vi.stubEnv('MEMSLEUTH_BUNDLE_MAX_BYTES', '1000000');
    const r = await cli(['report', f]);
    vi.unstubAllEnvs();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /not a usable snapshot bundle: unpacking it takes more than 976\.6 KiB, the limit of 976\.6 KiB \(MEMSLEUTH_BUNDLE_MAX_BYTES\)\nhint: a real snapshot is far smaller; raise MEMSLEUTH_BUNDLE_MAX_BYTES if this one is real\n$/,
    );
    expect(liveTempDirs()).toEqual([]);
  });

  it('stops at MEMSLEUTH_BUNDLE_MAX_ENTRIES, and the limits are read from the environment', async () => {
    vi.stubEnv('MEMSLEUTH_BUNDLE_MAX_ENTRIES', '100');
    const r = await cli(['report', labBundle('6.1', 'after')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /not a usable snapshot bundle: more than 100 entries \(MEMSLEUTH_BUNDLE_MAX_ENTRIES\)/,
    );
    vi.stubEnv('MEMSLEUTH_BUNDLE_MAX_ENTRIES', 'lots');
    const bad = await cli(['report', labBundle('6.1', 'after')]);
    vi.unstubAllEnvs();
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(
      'memsleuth: MEMSLEUTH_BUNDLE_MAX_ENTRIES: expected a whole number >= 1, found "lots"\n',
    );
    expect(liveTempDirs()).toEqual([]);
  });

  it('refuses symbolic and hard links (two absolute symlinks used to leave the directory behind)', async () => {
    const src = join(work, 'links');
    mkdirSync(src);
    writeFileSync(join(src, 'manifest.json'), MANIFEST);
    symlinkSync('/etc/passwd', join(src, 'meminfo'));
    symlinkSync('/proc/self/environ', join(src, 'vmstat'));
    const f = join(work, 'links.tar.gz');
    execFileSync('tar', ['czf', f, '-C', src, 'manifest.json', 'meminfo', 'vmstat']);
    const before = leftovers();
    const r = await cli(['report', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^memsleuth: .*links\.tar\.gz: not a usable snapshot bundle: "meminfo" is a SymbolicLink: only regular files and directories\n/,
    );
    expect(leftovers()).toEqual(before);
    const hard = writeBundle('hard.tar.gz', [
      member('manifest.json', MANIFEST),
      header('meminfo', 0, 'Link', 'manifest.json'),
      END,
    ]);
    await expect(openSnapshot(hard)).rejects.toThrow(
      /"meminfo" is a Link: only regular files and directories/,
    );
    expect(liveTempDirs()).toEqual([]);
  });

  it('a bad manifest is one error naming the field, and the unpacked directory is removed', async () => {
    const before = leftovers();
    const cases: [unknown, RegExp][] = [
      [null, /manifest\.json: expected a JSON object with the snapshot's fields, found "null"/],
      [
        { format: 'memsleuth-snapshot/1' },
        /manifest\.json: field "tool": expected a string, found nothing \(the field is missing\)/,
      ],
      [
        { ...JSON.parse(MANIFEST.toString()), pageSizeBytes: 'big' },
        /manifest\.json: field "pageSizeBytes": expected the page size in bytes, a power of two from 1024 to 1048576 \(e\.g\. 4096\), found "\\"big\\""/,
      ],
      [
        { ...JSON.parse(MANIFEST.toString()), files: ['../../etc/passwd'] },
        /field "files\[0\]": expected a relative snapshot path/,
      ],
      [
        { ...JSON.parse(MANIFEST.toString()), missing: [{ path: 'x' }] },
        /field "missing\[0\]\.reason": expected a string/,
      ],
    ];
    for (const [manifest, message] of cases) {
      const f = writeBundle('bad-manifest.tar.gz', [
        member('manifest.json', Buffer.from(JSON.stringify(manifest))),
        member('meminfo', readFileSync(join(labFixture('6.12', 'after'), 'meminfo'))),
        END,
      ]);
      for (const cmd of [['report'], ['ps'], ['slab', 'top']]) {
        const r = await cli([...cmd, f]);
        expect(r.status, `${cmd.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).not.toMatch(/TypeError|internal error|undefined|NaN/);
      }
      const d = await cli(['diff', f, f]);
      expect(d.status).toBe(2);
      expect(d.stderr).toMatch(message);
    }
    expect(leftovers()).toEqual(before);
    expect(liveTempDirs()).toEqual([]);
  });

  it('a member that is not there, and garbage that is not gzip, are clear errors', async () => {
    const f = join(work, 'garbage.tar.gz');
    writeFileSync(f, Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(4000, 7)]));
    const r = await cli(['report', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/garbage\.tar\.gz: not a usable snapshot bundle: /);
    expect(liveTempDirs()).toEqual([]);
  });
});

describe('one member without unpacking', () => {
  it('streams page_owner out of the bundle, byte for byte', async () => {
    const s = await openBundleMember(labBundle('6.12', 'after'), 'page_owner');
    const chunks: Buffer[] = [];
    for await (const c of s!) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(readFileSync(join(labFixture('6.12', 'after'), 'page_owner')))).toBe(
      true,
    );
    expect(await openBundleMember(labBundle('6.1', 'after'), 'allocinfo')).toBeUndefined();
  });

  it('page-owner top reads a bundle without a temporary directory; report streams page_owner from it', async () => {
    const dir = mkdtempSync(join(work, 'tmp-'));
    const r = await cli(['page-owner', 'top', '-n', '3', labBundle('6.12', 'after')], {
      env: { TMPDIR: dir },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^7017 records, 7017 kept, 8189 pages/m);
    const snap = await openSnapshot(labBundle('6.12', 'after'));
    try {
      // Unpacked, except the streamed members.
      const root = (snap as unknown as { root: string }).root;
      expect(readdirSync(root)).not.toContain('page_owner');
      expect(readdirSync(root)).not.toContain('kmemleak');
      expect(readdirSync(root)).toContain('meminfo');
      expect(snap.localFile?.('page_owner')).toBeUndefined();
      const text = await snap.readText('kmemleak');
      expect(text).toBe(readFileSync(join(labFixture('6.12', 'after'), 'kmemleak'), 'utf8'));
    } finally {
      await snap.close();
    }
    expect(liveTempDirs()).toEqual([]);
  });

  it('a snapshot file that is a device or larger than 256 MiB is refused, not read forever', async () => {
    const dir = join(work, 'zero');
    mkdirSync(dir);
    writeFileSync(join(dir, 'manifest.json'), MANIFEST);
    symlinkSync('/dev/zero', join(dir, 'meminfo'));
    const r = await cli(['report', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/zero:meminfo: more: larger than 268435456 bytes, not a kernel text source\n/);
    const snap = await openSnapshot(dir);
    await expect(snap.readText('meminfo')).rejects.toBeInstanceOf(MemsleuthError);
  });
});

describe('the temporary directory on SIGINT and SIGTERM', () => {
  /** A bundle that takes seconds to unpack: 30,000 small files. */
  function slowBundle(): string {
    const parts = [member('manifest.json', MANIFEST)];
    for (let i = 0; i < 30_000; i++) parts.push(member(`slab/c${i}.reclaim_account`, Buffer.from('0\n')));
    parts.push(END);
    return writeBundle('slow.tar.gz', parts);
  }

  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s while unpacking removes it and ends the process',
    async (signal) => {
      const f = slowBundle();
      const tmp = mkdtempSync(join(work, `sig-${signal}-`));
      const child = spawn(process.execPath, [CLI_BIN, 'report', f], {
        env: { ...process.env, TMPDIR: tmp },
        stdio: 'ignore',
      });
      const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_c, s) => res(s)));
      // Wait until unpacking has started: the directory exists and holds files.
      const t0 = Date.now();
      for (;;) {
        const d = leftovers(tmp)[0];
        if (d && readdirSync(join(tmp, d)).length > 0) break;
        if (Date.now() - t0 > 30_000) throw new Error('unpacking did not start');
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill(signal);
      expect(await exited).toBe(signal);
      expect(readdirSync(tmp)).toEqual([]);
    },
    60_000,
  );
});
