import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import { parseSysvipcShm, SHM_DEST, sysvMapName } from './sysvipc_shm.js';

// test/fixtures/owners-6.18: three segments staged by holder.c on Linux 6.18 (SOURCES.md).
const TEXT = fixture('owners-6.18', 'sysvipc_shm');

describe('parseSysvipcShm', () => {
  it('reads the staged segments of the 6.18 capture by the header’s names', () => {
    const shm = parseSysvipcShm(TEXT);
    expect(shm.hasRss).toBe(true);
    expect(shm.segments.map((s) => [s.shmid, s.key, s.sizeBytes, s.nattch, s.rssBytes, s.swapBytes])).toEqual(
      [
        [32808, 2062382380, 1048576, 0, 0, 0], // ipcmk -M 1048576: never attached
        [32809, 0x4d534c31, 4194304, 1, 1048576, 0], // 1 MiB of 4 MiB touched
        [32810, 0, 2097152, 1, 524288, 0], // IPC_RMID while attached: key 0, SHM_DEST
      ],
    );
    const [made, keyed, removed] = shm.segments;
    // ipcmk exited at once: it created the segment and never attached it.
    expect(made!.lpid).toBe(0);
    expect(keyed!.cpid).toBe(keyed!.lpid);
    expect(keyed!.mode & 0o777).toBe(0o600);
    expect(removed!.mode & SHM_DEST).toBe(SHM_DEST);
    expect(keyed!.mode & SHM_DEST).toBe(0);
    expect(removed!.line).toBe(4);
  });

  it('names the mapping /proc/PID/maps shows for a segment, inode = shmid', () => {
    const maps = fixture('owners-6.18', 'holder.maps');
    for (const s of parseSysvipcShm(TEXT).segments.filter((x) => x.nattch > 0)) {
      const line = maps.split('\n').find((l) => l.endsWith(`${sysvMapName(s.key)} (deleted)`))!;
      expect(line, sysvMapName(s.key)).toBeDefined();
      expect(Number(line.split(/\s+/)[4])).toBe(s.shmid);
    }
    expect(sysvMapName(-1)).toBe('/SYSVffffffff');
  });

  it('reads this machine’s /proc/sysvipc/shm (a header alone when no segment exists)', () => {
    const text = readFileSync('/proc/sysvipc/shm', 'utf8');
    const shm = parseSysvipcShm(text);
    expect(shm.segments.length).toBe(text.trim().split('\n').length - 1);
  });

  it('rejects damaged input with file and line', () => {
    expectParseError(() => parseSysvipcShm(''), { message: ['<empty input>'], line: 1 });
    expectParseError(() => parseSysvipcShm(TEXT.replace('nattch', 'attach')), {
      message: ['a header naming the columns'],
      line: 1,
    });
    const lines = TEXT.split('\n');
    // A line cut short (a read that stopped mid-line).
    const cut = [lines[0], lines[1], lines[2]!.slice(0, 40), ''].join('\n');
    expectParseError(() => parseSysvipcShm(cut, { file: 'x/sysvipc_shm' }), {
      message: ['16 columns like the header'],
      line: 3,
      file: 'x/sysvipc_shm',
    });
    const twice = [lines[0], lines[1], lines[1], ''].join('\n');
    expectParseError(() => parseSysvipcShm(twice), { message: ['each shmid once (32808 repeats)'], line: 3 });
    expectParseError(() => parseSysvipcShm(TEXT.replace(' 644 ', ' 6x4 ')), {
      message: ['perms: octal'],
      line: 2,
    });
  });
});
