import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkKmemleak, kmemleakClear, kmemleakScan, readKmemleakReport } from './kmemleak.js';

// These run against this machine's real kernel (6.18, no CONFIG_DEBUG_KMEMLEAK): the error
// paths are what a user without kmemleak meets.
const debugfsMounted = () =>
  readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === '/sys/kernel/debug' && l.split(' ')[2] === 'debugfs');
const hasKmemleak = () => {
  try {
    readFileSync('/sys/kernel/debug/kmemleak');
    return true;
  } catch {
    return false;
  }
};

describe('kmemleak control on this machine', () => {
  it('refuses without root, before touching anything', async () => {
    await expect(kmemleakScan({ uid: 65534 })).rejects.toMatchObject({
      code: 'PERMISSION',
      hint: expect.stringMatching(/root/),
    });
    await expect(kmemleakClear({ uid: 65534 })).rejects.toMatchObject({ code: 'PERMISSION' });
  });

  it('says what is missing at the default debugfs path', async () => {
    expect(hasKmemleak()).toBe(false); // this VM's kernel has no kmemleak
    const err = debugfsMounted()
      ? /does not exist: this kernel was built without CONFIG_DEBUG_KMEMLEAK/
      : /debugfs is not mounted at \/sys\/kernel\/debug/;
    await expect(kmemleakScan()).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(err),
    });
    await expect(readKmemleakReport()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('names CONFIG_DEBUG_KMEMLEAK when debugfs is mounted but has no kmemleak file', async () => {
    // A private debugfs mount (same kernel, own mount point), unmounted again in finally.
    const dir = mkdtempSync(join(tmpdir(), 'memsleuth-debugfs-'));
    execFileSync('mount', ['-t', 'debugfs', 'none', dir]);
    try {
      await expect(checkKmemleak({ debugfsRoot: dir })).rejects.toMatchObject({
        code: 'UNAVAILABLE',
        message: `${dir}/kmemleak does not exist: this kernel was built without CONFIG_DEBUG_KMEMLEAK`,
      });
    } finally {
      execFileSync('umount', [dir]);
      rmdirSync(dir);
    }
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(dir);
  });
});
