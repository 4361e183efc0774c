import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import { formatFdListing, parseFdListing, parseMaps } from './fd_listing.js';
import { parseSmaps } from './smaps.js';

const PID = readdirSync(`${import.meta.dirname}/../../test/fixtures/owners-6.18/snapshot/proc`)[0]!;
const NODE = fixture(`owners-6.18/snapshot/proc/${PID}/fd`);
const SH = fixture(`owners-6.18/collector/proc/${PID}/fd`);

describe('the fd listing', () => {
  it('reads the holder’s fds: open mode, and size and inode of the memfd and the deleted file', () => {
    const fds = parseFdListing(NODE);
    expect(fds.map((f) => [f.fd, f.mode, f.allocatedBytes, f.target])).toEqual([
      [0, 'r', undefined, '/dev/null'],
      [1, 'w', undefined, '/tmp/own/fx/ids'],
      [2, 'w', undefined, '/tmp/own/fx/holder.err'],
      [3, 'rw', 1 << 20, '/memfd:msl-ring (deleted)'],
      [4, 'w', undefined, '/dev/shm/msl-fixture.dat'],
      [5, 'rw', 3 << 19, '/dev/shm/msl-deleted.dat (deleted)'],
    ]);
    // The memfd's inode is the one its mapping shows in maps.
    const maps = parseMaps(fixture('owners-6.18/holder.maps'));
    expect(maps.find((m) => m.pathname === '/memfd:msl-ring (deleted)')?.inode).toBe(fds[3]!.inode);
  });

  it('is the same from busybox ls -l and stat -L (in ls order)', () => {
    const byFd = (t: string) => parseFdListing(t).sort((a, b) => a.fd - b.fd);
    expect(byFd(SH)).toEqual(byFd(NODE));
  });

  it('formats what it parses', () => {
    expect(formatFdListing(parseFdListing(NODE))).toBe(NODE);
  });

  it('lists this process’s fds with the targets readlink gives', async () => {
    const { liveFdListing } = await import('../capture/fds.js');
    const fds = parseFdListing(liveFdListing('/proc', process.pid));
    expect(fds.length).toBeGreaterThanOrEqual(3);
    for (const f of fds.slice(0, 3)) {
      let live: string | undefined;
      try {
        live = readlinkSync(`/proc/self/fd/${f.fd}`);
      } catch {}
      if (live !== undefined) expect(f.target).toBe(live);
    }
  });

  it('rejects damaged input with file and line', () => {
    expectParseError(() => parseFdListing('0 r - - /dev/null\n'), { message: ['the header line'], line: 1 });
    const lines = NODE.split('\n');
    expectParseError(() => parseFdListing([lines[0], '3 x - - /a', ''].join('\n'), { file: 'p/fd' }), {
      message: ['<fd> <r|w|rw|->'],
      line: 2,
      file: 'p/fd',
    });
  });
});

describe('parseMaps', () => {
  it('reads /proc/PID/maps: the SysV segments (inode = shmid) and the memfd the holder mapped', () => {
    const maps = parseMaps(fixture('owners-6.18/holder.maps'));
    const shared = maps.filter((m) => m.perms.endsWith('s')).map((m) => [m.pathname, m.inode, m.sizeBytes]);
    expect(shared).toEqual([
      ['/memfd:msl-ring (deleted)', expect.any(Number), 3 << 20],
      ['/SYSV00000000 (deleted)', 32810, 2 << 20],
      ['/SYSV4d534c31 (deleted)', 32809, 4 << 20],
    ]);
  });

  it('agrees with the headers of smaps for this process', () => {
    const maps = parseMaps(readFileSync('/proc/self/maps', 'utf8'));
    const smaps = parseSmaps(readFileSync('/proc/self/smaps', 'utf8'));
    // Both read at different moments: compare the file-backed mappings, which do not move.
    const files = (l: { pathname: string; start: string }[]) =>
      l.filter((m) => m.pathname.startsWith('/usr')).map((m) => `${m.start} ${m.pathname}`);
    expect(files(maps)).toEqual(files(smaps));
  });

  it('rejects a line that is no mapping', () => {
    expectParseError(() => parseMaps('00400000-00401000 r--p 00000000 00:02 12   /bin/x\nnot a mapping\n'), {
      message: ['a mapping line'],
      line: 2,
    });
  });
});
