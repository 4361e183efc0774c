import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import {
  escapeMountPath,
  formatTmpfsFiles,
  formatTmpfsMounts,
  mountOf,
  parseTmpfsFiles,
  parseTmpfsMounts,
  unescapeMountPath,
} from './tmpfs.js';

// The same moment written by `memsleuth snapshot` (Node) and by the sh collector under busybox
// (test/fixtures/owners-6.18, SOURCES.md): a tmpfs mounted at a path with spaces, a sparse file.
const NODE = {
  mounts: fixture('owners-6.18/snapshot/tmpfs/mounts'),
  files: fixture('owners-6.18/snapshot/tmpfs/files'),
};
const SH = {
  mounts: fixture('owners-6.18/collector/tmpfs/mounts'),
  files: fixture('owners-6.18/collector/tmpfs/files'),
};
const SPACED = '/tmp/own/fx/msl fixture tmpfs';

describe('the tmpfs listing', () => {
  it('reads the mounts with statfs used bytes, a mount point with spaces unescaped', () => {
    const { mounts } = parseTmpfsMounts(NODE.mounts);
    expect(mounts.map((m) => m.mount)).toEqual(['/dev/shm', '/sys/fs/cgroup', SPACED]);
    const spaced = mounts.find((m) => m.mount === SPACED)!;
    // size=16m; grow.bin 768 KiB + sparse.bin's 64 KiB written: 832 KiB of pages.
    expect(spaced.sizeBytes).toBe(16 << 20);
    expect(spaced.usedBytes).toBe((768 + 64) << 10);
    expect(spaced.inodesUsed).toBe(3); // the root directory and two files
    // /dev/shm: msl-fixture.dat 2 MiB and the deleted-but-open msl-deleted.dat 1.5 MiB.
    expect(mounts[0]!.usedBytes).toBe((2 << 20) + (3 << 19));
  });

  it('reads the largest files by allocated bytes: a sparse file holds what was written', () => {
    const { files } = parseTmpfsFiles(NODE.files);
    expect(files.map((f) => [f.path, f.allocatedBytes, f.sizeBytes])).toEqual([
      ['/dev/shm/msl-fixture.dat', 2 << 20, 2 << 20],
      [`${SPACED}/grow.bin`, 768 << 10, 768 << 10],
      [`${SPACED}/sparse.bin`, 64 << 10, 8 << 20],
    ]);
    expect(files[1]!.mount).toBe(SPACED);
  });

  it('is the same text from the Node writer and from busybox', () => {
    expect(SH.files).toBe(NODE.files);
    expect(parseTmpfsMounts(SH.mounts)).toEqual(parseTmpfsMounts(NODE.mounts));
  });

  it('formats what it parses, byte for byte', () => {
    const m = parseTmpfsMounts(NODE.mounts);
    expect(formatTmpfsMounts(m.mounts, m.notes)).toBe(NODE.mounts);
    const f = parseTmpfsFiles(NODE.files);
    expect(formatTmpfsFiles(f.files, f.notes)).toBe(NODE.files);
  });

  it('escapes mount points as /proc/mounts does', () => {
    expect(escapeMountPath('/a b\tc\\d')).toBe('/a\\040b\\011c\\134d');
    expect(unescapeMountPath(escapeMountPath('/a b\tc\\d\ne'))).toBe('/a b\tc\\d\ne');
  });

  it('finds the mount of a path: the longest mount point above it', () => {
    const mounts = ['/dev/shm', '/run', '/run/user/1000'];
    expect(mountOf('/run/user/1000/x', mounts)).toBe('/run/user/1000');
    expect(mountOf('/run/lock', mounts)).toBe('/run');
    expect(mountOf('/running', mounts)).toBeUndefined();
    expect(mountOf('/dev/shm', mounts)).toBe('/dev/shm');
  });

  it('rejects damaged input with file and line', () => {
    expectParseError(() => parseTmpfsMounts('/dev/shm 1 2 3 4\n'), { message: ['the header line'], line: 1 });
    const lines = NODE.mounts.split('\n');
    expectParseError(() => parseTmpfsMounts([lines[0], lines[1]!.slice(0, 20), ''].join('\n')), {
      message: ['<mount> <size_bytes>'],
      line: 2,
    });
    expectParseError(() => parseTmpfsMounts([lines[0], lines[1], lines[1], ''].join('\n')), {
      message: ['each mount once (/dev/shm repeats)'],
      line: 3,
    });
    const f = NODE.files.split('\n');
    expectParseError(() => parseTmpfsFiles([f[0], '/dev/shm 12 x 4 /dev/shm/a', ''].join('\n')), {
      message: ['<allocated_bytes>'],
      line: 2,
    });
  });
});
