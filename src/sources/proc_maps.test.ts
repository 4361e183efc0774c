import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import { mappingAt, parseProcMaps } from './proc_maps.js';

describe('/proc/PID/maps', () => {
  const maps = parseProcMaps(fixture('trace-6.18', 'user-leak.maps'));

  it('reads every mapping with bigint addresses and names', () => {
    expect(maps[1]).toEqual({
      start: 0x5642bb3ce000n,
      end: 0x5642bb3cf000n,
      perms: 'r-xp',
      offset: 0x1000n,
      dev: 'fe:00',
      inode: 2146462,
      pathname: '/tmp/msl-fixture-user-leak',
      line: 2,
    });
    expect(maps.some((m) => m.pathname === '[heap]')).toBe(true);
    expect(maps.some((m) => m.pathname === '')).toBe(true);
    // [vsyscall] lies above 2^53: exact as a bigint.
    expect(maps.at(-1)).toMatchObject({ start: 0xffffffffff600000n, pathname: '[vsyscall]' });
  });

  it('finds the mapping of an address (a user stack frame of the fixture trace)', () => {
    expect(mappingAt(maps, 0x5642bb3ce1e6n)?.pathname).toBe('/tmp/msl-fixture-user-leak');
    expect(mappingAt(maps, 0x7fe362cbd24an)?.pathname).toBe('/usr/lib/x86_64-linux-gnu/libc.so.6');
    expect(mappingAt(maps, 1n)).toBeUndefined();
  });

  it('rejects a line that is not a mapping', () => {
    expectParseError(() => parseProcMaps('00400000 r-xp\n', { file: 'm' }), {
      line: 1,
      message: ['start-end perms'],
    });
  });
});
