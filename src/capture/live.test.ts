import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { LiveSnapshot } from './live.js';

const root = mkdtempSync(join(tmpdir(), 'memsleuth-live-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A /proc with meminfo and a kernel config, and an empty debugfs: page_owner and kmemleak are missing. */
function fakeRoots(config: string) {
  const proc = join(root, `proc-${Math.random().toString(36).slice(2)}`);
  mkdirSync(proc);
  writeFileSync(join(proc, 'meminfo'), 'MemTotal: 1024 kB\n');
  writeFileSync(join(proc, 'config.gz'), gzipSync(config));
  const debugfs = join(proc, 'debug');
  mkdirSync(debugfs);
  return { proc, debugfs, sysSlab: join(proc, 'slab') };
}

describe('LiveSnapshot: how to enable a missing source', () => {
  it('says a rebuild is needed when the kernel config has the option not set', async () => {
    const snap = new LiveSnapshot(fakeRoots('# CONFIG_PAGE_OWNER is not set\nCONFIG_DEBUG_KMEMLEAK=y\n'));
    const m = await snap.manifest();
    const po = m.missing.find((x) => x.path === 'page_owner')!;
    expect(po.enable).toMatch(
      /^this kernel is built without CONFIG_PAGE_OWNER: rebuild it with CONFIG_PAGE_OWNER=y/,
    );
    // Built in: the boot-option hint stays.
    const kl = m.missing.find((x) => x.path === 'kmemleak')!;
    expect(kl.enable).toMatch(/^needs CONFIG_DEBUG_KMEMLEAK \(and kmemleak=on/);
  });

  it('keeps the plain hint when the config is unknown', async () => {
    const roots = fakeRoots('CONFIG_X=y\n');
    rmSync(join(roots.proc, 'config.gz'));
    const m = await new LiveSnapshot(roots).manifest();
    expect(m.missing.find((x) => x.path === 'page_owner')!.enable).toMatch(/^boot with page_owner=on/);
  });
});
