import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_FIXTURES } from '../../test/paths.js';
import { readRunningBuildIds } from './build_ids.js';

const FIX = join(REPO_FIXTURES, 'symbols');
const tmp = mkdtempSync(join(tmpdir(), 'memsleuth-sys-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('readRunningBuildIds', () => {
  it('reads the kernel’s and each loaded module’s build-id from a sysfs tree', async () => {
    const sys = join(tmp, 'sys');
    mkdirSync(join(sys, 'kernel'), { recursive: true });
    copyFileSync(join(FIX, 'live-6.18', 'kernel-notes'), join(sys, 'kernel', 'notes'));
    // a loaded module: sysfs shows its .note.gnu.build-id section as a file
    const notes = join(sys, 'module', 'fixture_mod', 'notes');
    mkdirSync(notes, { recursive: true });
    const ko = join(FIX, 'module', 'fixture_mod.ko');
    execFileSync('objcopy', [
      '-O',
      'binary',
      '--only-section=.note.gnu.build-id',
      ko,
      join(notes, '.note.gnu.build-id'),
    ]);
    // a built-in "module" that only has parameters: no notes
    mkdirSync(join(sys, 'module', 'printk', 'parameters'), { recursive: true });
    const ids = await readRunningBuildIds({ sysRoot: sys });
    const koId = /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', ko], { encoding: 'utf8' }))![1];
    expect(ids.kernel).toMatch(/^[0-9a-f]{40}$/);
    expect([...ids.modules]).toEqual([['fixture_mod', koId]]);
  });

  it('leaves the ids unknown where sysfs has nothing', async () => {
    expect(await readRunningBuildIds({ sysRoot: join(tmp, 'absent') })).toEqual({ modules: new Map() });
  });

  it('reads this machine', async () => {
    // /sys/kernel/notes is world-readable on every kernel with CONFIG_SYSFS
    const ids = await readRunningBuildIds();
    expect(ids.kernel).toMatch(/^[0-9a-f]{40}$/);
  });
});
