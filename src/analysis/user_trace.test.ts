import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../../test/parsers.js';
import { REPO_ROOT } from '../../test/paths.js';
import { parseElf } from '../sources/elf_symbols.js';
import { type FtraceRecord, parseFtraceText } from '../sources/ftrace_text.js';
import { parseProcMaps } from '../sources/proc_maps.js';
import { AllocationTracker } from './alloc_trace.js';
import { UserSymbolizer, UserTraceAnalyzer, userCulprit } from './user_trace.js';

function run(records: Iterable<FtraceRecord>) {
  const t = new AllocationTracker({ culprit: userCulprit('libc.so.6') });
  const a = new UserTraceAnalyzer(t);
  for (const r of records) a.onRecord(r);
  return { t, a, report: t.report() };
}

/** A uprobe record the way the text parser gives it, for the pairing rules below. */
let line = 0;
function ev(pid: number, event: string, fields: Record<string, string>): FtraceRecord {
  return {
    type: 'event',
    comm: 't',
    pid,
    cpu: 0,
    flags: '.....',
    timestamp: ++line / 1000,
    line,
    event,
    body: '',
    fields,
  };
}
function ustack(pid: number, ...addresses: string[]): FtraceRecord {
  return {
    type: 'user-stack',
    comm: 't',
    pid,
    cpu: 0,
    flags: '.....',
    timestamp: line / 1000,
    line,
    frames: addresses.map((address) => ({ address })),
  };
}

describe('user trace analysis', () => {
  it('the fixture: user-leak 20 records of 100 bytes, half freed, 10 churned; what it printed stays', () => {
    const { report, a } = run(parseFtraceText(fixture('trace-6.18', 'uprobe.trace')));
    const printed = Number(/done (\d+)/.exec(fixture('trace-6.18', 'user-leak.out'))![1]);
    expect(report.outstanding.bytes).toBe(printed);
    // 10 records and the calloc'd table.
    expect(report.outstanding.count).toBe(11);
    expect(a.events).toEqual({ calloc: 1, calloc_ret: 1, malloc: 30, malloc_ret: 30, free: 20 });
    expect(report.counters).toMatchObject({ allocs: 31, frees: 20, unmatchedFrees: 0, missingStacks: 0 });
    // Stacks are the return probes': the malloc call site in leak_records (one stack for
    // the records, one for the table).
    expect(report.byStack.map((g) => [g.weights.count, g.weights.bytes])).toEqual([
      [10, 1000],
      [1, 160],
    ]);
  });

  it('realloc: frees the old block, allocates the new one; a malloc it makes inside is its own business', () => {
    const { report } = run([
      ev(1, 'malloc', { size: '10' }),
      ev(1, 'malloc_ret', { ptr: '0xa0' }),
      ustack(1, 'aaa'),
      ev(1, 'realloc', { ptr: '0xa0', size: '100' }),
      // glibc's realloc calling malloc (realloc(NULL, n) does): nested, not counted.
      ev(1, 'malloc', { size: '100' }),
      ev(1, 'malloc_ret', { ptr: '0xb0' }),
      ustack(1, 'ccc'),
      ev(1, 'realloc_ret', { ptr: '0xb0' }),
      ustack(1, 'bbb'),
    ]);
    expect(report.counters).toMatchObject({ allocs: 2, frees: 1 });
    expect(report.byStack.map((g) => [g.key, g.weights.bytes])).toEqual([['0xbbb', 100]]);
  });

  it('threads are paired separately; a return without its entry is dropped', () => {
    const { report } = run([
      ev(1, 'malloc', { size: '10' }),
      ev(2, 'malloc', { size: '20' }),
      ev(2, 'malloc_ret', { ptr: '0x2' }),
      ev(1, 'malloc_ret', { ptr: '0x1' }),
      ev(3, 'malloc_ret', { ptr: '0x3' }),
      ev(2, 'free', { ptr: '0x1' }),
    ]);
    expect(report.outstanding).toEqual({ count: 1, bytes: 20, pages: 0 });
  });

  it('anonymous mmap is an allocation in pages; munmap of its head leaves the rest; file mappings are not', () => {
    const { report } = run([
      ev(1, 'mmap', { addr: '0x0', len: '10000', prot: '0x3', flags: '0x22' }),
      ev(1, 'mmap_ret', { ptr: '0x7f0000000000' }),
      ev(1, 'mmap', { addr: '0x0', len: '4096', prot: '0x1', flags: '0x2' }),
      ev(1, 'mmap_ret', { ptr: '0x7f1000000000' }),
      ev(1, 'munmap', { addr: '0x7f0000000000', len: '4096' }),
      // free() of a big chunk calls munmap itself: nested in free? free has no return
      // probe, so this munmap is the program's own: of an unknown region, ignored.
      ev(1, 'munmap', { addr: '0x7f2000000000', len: '4096' }),
    ]);
    expect(report.outstanding).toEqual({ count: 1, bytes: 8192, pages: 2 });
  });

  it('a stack that never came is counted, and not given to the next event', () => {
    const { report } = run([
      ev(1, 'malloc', { size: '10' }),
      ev(1, 'malloc_ret', { ptr: '0xa0' }),
      ev(1, 'free', { ptr: '0xffff' }),
      ustack(1, 'dead'),
    ]);
    expect(report.counters.missingStacks).toBe(1);
    expect(report.byStack[0]!.key).toBe('');
  });
});

describe('user symbolization against addr2line', () => {
  let dir: string;
  let bin: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'msl-usym-'));
    bin = join(dir, 'user-leak');
    execFileSync('gcc', [
      '-O1',
      '-g',
      '-fno-omit-frame-pointer',
      '-fno-inline',
      '-o',
      bin,
      join(REPO_ROOT, 'test/trace/programs/user-leak.c'),
    ]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names addresses of a running program from /proc/PID/maps and its ELF symbols', async () => {
    const child = spawn(bin, ['1', '1'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((r) => child.stdout.once('data', () => r()));
      const maps = parseProcMaps(readFileSync(`/proc/${child.pid}/maps`, 'utf8'));
      const elf = parseElf(readFileSync(bin));
      const sym = new UserSymbolizer(maps, (p) => (p === bin ? elf : undefined));
      const text = maps.find((m) => m.pathname === bin && m.perms.includes('x'))!;
      let checked = 0;
      for (const name of ['leak_records', 'release_records', 'balanced_churn', 'main']) {
        const s = elf.byName.get(name)!;
        for (const off of [1, Math.floor(s.size / 2), s.size - 1]) {
          // vaddr -> file offset -> address in the running process
          const vaddr = s.value + BigInt(off);
          const seg = elf.loads.find((l) => vaddr >= l.vaddr && vaddr < l.vaddr + l.fileSize)!;
          const addr = text.start + (vaddr - seg.vaddr + seg.offset - text.offset);
          const want = execFileSync('addr2line', ['-f', '-e', bin, `0x${vaddr.toString(16)}`], {
            encoding: 'utf8',
          }).split('\n')[0];
          // As a return address the lookup is one byte before (a call can end a function).
          expect(sym.frame(addr.toString(16), false)).toEqual({
            func: want,
            offset: off,
            module: 'user-leak',
          });
          expect(sym.frame((addr + 1n).toString(16), true).func).toBe(want);
          checked++;
        }
      }
      expect(checked).toBe(12);
      expect(sym.frame('10', true)).toEqual({ func: '0x10' });
      const heap = maps.find((m) => m.pathname === '[heap]');
      if (heap)
        expect(sym.frame(heap.start.toString(16), false)).toEqual({
          func: `0x${heap.start.toString(16)}`,
          module: '[heap]',
        });
    } finally {
      child.kill();
    }
  });
});
