import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import {
  formatUprobeDefinition,
  formatUprobeRemoval,
  LIBC_PROBES,
  libcProbeDefinitions,
  parseUprobeEvents,
} from './uprobe_events.js';

describe('uprobe_events', () => {
  it('reads the probes a 6.18 kernel lists', () => {
    const defs = parseUprobeEvents(fixture('trace-6.18', 'uprobe_events'));
    expect(defs.map((d) => `${d.kind}:${d.group}/${d.event}`)).toEqual([
      'p:msl_fixture_3096/malloc',
      'r:msl_fixture_3096/malloc_ret',
      'p:msl_fixture_3096/calloc',
      'r:msl_fixture_3096/calloc_ret',
      'p:msl_fixture_3096/free',
    ]);
    expect(defs[2]).toMatchObject({
      path: '/usr/lib/x86_64-linux-gnu/libc.so.6',
      offset: 0x996e0n,
      args: ['nmemb=%di:u64', 'size=%si:u64'],
    });
  });

  it('writes definitions the kernel lists back the same (offsets unpadded in, padded out)', () => {
    for (const d of parseUprobeEvents(fixture('trace-6.18', 'uprobe_events'))) {
      const { line: _l, ...def } = d;
      expect(parseUprobeEvents(formatUprobeDefinition(def))[0]).toEqual({ ...def, line: 1 });
    }
    expect(formatUprobeRemoval('memsleuth_1', 'malloc')).toBe('-:memsleuth_1/malloc');
    expect(() =>
      formatUprobeDefinition({ kind: 'p', group: 'g', event: 'e', path: '/a b', offset: 1n, args: [] }),
    ).toThrow(/white space/);
  });

  it('libc probes: entry arguments in the ABI registers, a return probe for the result', () => {
    const malloc = LIBC_PROBES.find((p) => p.fn === 'realloc')!;
    expect(
      libcProbeDefinitions(malloc, 'g', '/lib/libc.so.6', 0x99130n, 62).map(formatUprobeDefinition),
    ).toEqual([
      'p:g/realloc /lib/libc.so.6:0x99130 ptr=%di:x64 size=%si:u64',
      'r:g/realloc_ret /lib/libc.so.6:0x99130 ptr=$retval:x64',
    ]);
    const free = LIBC_PROBES.find((p) => p.fn === 'free')!;
    expect(libcProbeDefinitions(free, 'g', '/l', 1n, 183).map(formatUprobeDefinition)).toEqual([
      'p:g/free /l:0x1 ptr=%x0:x64',
    ]);
    expect(() => libcProbeDefinitions(free, 'g', '/l', 1n, 3)).toThrow(/ELF machine 3/);
  });

  it('rejects lines that are not probes', () => {
    expectParseError(() => parseUprobeEvents('p:nogroup /lib:0x1\n', { file: 'u' }), {
      line: 1,
      message: ['p:GROUP/EVENT'],
    });
  });
});
