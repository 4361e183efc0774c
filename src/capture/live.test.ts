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

describe('LiveSnapshot.slabTraceFiles', () => {
  /** `files`: paths under the root, each made as an empty file (with its directories). */
  function tree(files: string[]) {
    const roots = fakeRoots('CONFIG_X=y\n');
    for (const f of files) {
      const path = join(roots.proc, f);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, '');
    }
    return roots;
  }
  const asObject = (m: Map<string, Set<string>>) =>
    Object.fromEntries([...m].map(([k, v]) => [k, [...v].sort()]).sort());

  it('5.14+: the caches debugfs has trace files for, and nothing from sysfs without its files', async () => {
    const roots = tree([
      'debug/slab/kmalloc-64/alloc_traces',
      'debug/slab/kmalloc-64/free_traces',
      'debug/slab/dentry/alloc_traces',
      'slab/kmalloc-64/objects',
      'slab/dentry/objects',
    ]);
    const snap = new LiveSnapshot(roots);
    expect(asObject(await snap.slabTraceFiles())).toEqual({
      dentry: ['alloc_traces'],
      'kmalloc-64': ['alloc_traces', 'free_traces'],
    });
  });

  it('<= 5.13: every sysfs cache with alloc_calls/free_calls; nothing when neither tree has them', async () => {
    const roots = tree([
      'slab/a-cache/alloc_calls',
      'slab/a-cache/free_calls',
      'slab/b-cache/alloc_calls',
      'slab/b-cache/free_calls',
      'slab/:0000064/alloc_calls',
      'slab/:0000064/free_calls',
    ]);
    expect(asObject(await new LiveSnapshot(roots).slabTraceFiles())).toEqual({
      ':0000064': ['alloc_calls', 'free_calls'],
      'a-cache': ['alloc_calls', 'free_calls'],
      'b-cache': ['alloc_calls', 'free_calls'],
    });
    const none = tree(['slab/a-cache/objects']);
    expect((await new LiveSnapshot(none).slabTraceFiles()).size).toBe(0);
    // No debugfs and no sysfs slab at all.
    rmSync(join(none.proc, 'slab'), { recursive: true });
    rmSync(none.debugfs, { recursive: true });
    expect((await new LiveSnapshot(none).slabTraceFiles()).size).toBe(0);
  });
});
