import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTmpfsMounts } from '../sources/tmpfs.js';
import { liveTmpfsMounts } from './tmpfs.js';

const work = mkdtempSync(join(tmpdir(), 'memsleuth-tmpfs-live-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A proc root whose `mounts` lists the given lines (statfs then reads the real paths). */
function procWith(lines: string[]): string {
  const proc = join(work, 'proc');
  mkdirSync(proc, { recursive: true });
  writeFileSync(join(proc, 'mounts'), `${lines.join('\n')}\n`);
  return proc;
}

const mountsOf = (proc: string) => parseTmpfsMounts(liveTmpfsMounts(proc)).mounts.map((m) => m.mount);

describe('liveTmpfsMounts', () => {
  it('follows the mount table as it changes, the same table read again included', () => {
    const a = join(work, 'a');
    const b = join(tmpdir());
    mkdirSync(a, { recursive: true });
    const line = (p: string, type = 'tmpfs') => `tmpfs ${p.replace(/ /g, '\\040')} ${type} rw,nosuid 0 0`;
    let proc = procWith([line('/proc', 'proc'), line(a)]);
    expect(mountsOf(proc)).toEqual([a]);
    // Unchanged table: the same answer (the recorder asks every tick).
    expect(mountsOf(proc)).toEqual([a]);
    // A mount gone: no longer listed.
    proc = procWith([line('/proc', 'proc')]);
    expect(mountsOf(proc)).toEqual([]);
    // A mount back and a path that does not exist (another namespace's): only the reachable one.
    proc = procWith([line(a), line(join(work, 'missing'))]);
    expect(mountsOf(proc)).toEqual([a]);
    // Two paths on one device count once, at the first (a tmpfs bind-mounted twice).
    const c = join(a, 'c');
    mkdirSync(c, { recursive: true });
    proc = procWith([line(c), line(a)]);
    expect(mountsOf(proc)).toEqual([c]);
    // Another proc root with the same text is read on its own.
    const other = join(work, 'other');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'mounts'), `${line(b)}\n`);
    expect(mountsOf(other)).toEqual([b]);
    expect(mountsOf(proc)).toEqual([c]);
  });

  it('a proc root without mounts lists nothing', () => {
    expect(mountsOf(join(work, 'nowhere'))).toEqual([]);
  });
});
