import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import {
  parseFtraceCpuStats,
  parseFtraceFields,
  parseFtraceFormat,
  parseFtraceStatsFile,
} from './ftrace_format.js';

describe('event format files (Linux 6.18)', () => {
  it('kmem_cache_alloc: id, fields after the common ones, the name string, print fmt', () => {
    const f = parseFtraceFormat(fixture('trace-6.18', 'format.kmem.kmem_cache_alloc'));
    expect(f.name).toBe('kmem_cache_alloc');
    expect(f.common.map((x) => x.name)).toEqual([
      'common_type',
      'common_flags',
      'common_preempt_count',
      'common_pid',
    ]);
    expect(f.fields.map((x) => x.name)).toEqual([
      'call_site',
      'ptr',
      'name',
      'bytes_req',
      'bytes_alloc',
      'gfp_flags',
      'node',
      'accounted',
    ]);
    expect(f.fields[1]).toEqual({ type: 'const void *', name: 'ptr', offset: 16, size: 8, signed: false });
    expect(f.fields[2]).toEqual({
      type: '__data_loc char[]',
      name: 'name',
      offset: 24,
      size: 4,
      signed: false,
    });
    expect(f.printFmt).toMatch(/^"call_site=%pS ptr=%p name=%s /);
  });

  it('kmalloc has no name (the cache is implied by bytes_alloc); the stack event has an array', () => {
    expect(
      parseFtraceFormat(fixture('trace-6.18', 'format.kmem.kmalloc')).fields.some((f) => f.name === 'name'),
    ).toBe(false);
    const st = parseFtraceFormat(fixture('trace-6.18', 'format.ftrace.kernel_stack'));
    expect(st.fields).toEqual([
      { type: 'int', name: 'size', offset: 8, size: 4, signed: true },
      { type: 'unsigned long[8]', name: 'caller', offset: 16, size: 64, signed: false },
    ]);
  });

  it('header_page has fields only', () => {
    expect(
      parseFtraceFields(fixture('trace-6.18', 'header_page')).map((f) => [f.name, f.offset, f.size]),
    ).toEqual([
      ['timestamp', 0, 8],
      ['commit', 8, 8],
      ['overwrite', 8, 1],
      ['data', 16, 4080],
    ]);
  });

  it('rejects a file without name and ID, and a broken field line', () => {
    expectParseError(() => parseFtraceFormat('format:\n', { file: 'f' }), { message: ['`name:` and `ID:`'] });
    expectParseError(() => parseFtraceFields('\tfield:int x;\toffset:zero;\n', { file: 'f' }), {
      line: 1,
      message: ['field:TYPE NAME'],
    });
  });
});

describe('per-CPU buffer stats', () => {
  it('reads a CPU’s counters', () => {
    expect(parseFtraceCpuStats(fixture('trace-6.18', 'kmem.stats'))).toEqual({
      entries: 0,
      overrun: 0,
      commitOverrun: 0,
      bytes: 0,
      droppedEvents: 0,
      readEvents: 0,
    });
  });

  it('sums the collector’s `cpuN:` blocks', () => {
    const one = fixture('trace-6.18', 'kmem.stats').replace('dropped events: 0', 'dropped events: 7');
    const r = parseFtraceStatsFile(`cpu0:\n${one}cpu1:\n${one}`);
    expect(r.cpus).toBe(2);
    expect(r.total.droppedEvents).toBe(14);
    expectParseError(() => parseFtraceCpuStats('overrun: 1\n', { file: 's' }), {
      message: ['an `entries:` line'],
    });
  });
});
