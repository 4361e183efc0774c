import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/parsers.js';
import { REPO_FIXTURES } from '../../test/paths.js';
import { parseFtraceFields, parseFtraceFormat } from '../sources/ftrace_format.js';
import { RawTraceDecoder, ringBufferPageEvents } from '../sources/ftrace_raw.js';
import { type FtraceRecord, parseFtraceText } from '../sources/ftrace_text.js';
import { KernelSymbols } from '../sources/kallsyms.js';
import { AllocationTracker } from './alloc_trace.js';
import { analyzeKmemTrace, KmemTraceAnalyzer, kmallocCache, kmallocRange, pointerKey } from './kmem_trace.js';

// kmem.trace: kernel-hold (test/trace/programs) making 50 pipes on Linux 6.18, traced
// with stacks and filtered to its pid (see test/fixtures/trace-6.18/make.mjs).
const PIPES = 50;

function analyze(records: Iterable<FtraceRecord>) {
  const t = new AllocationTracker();
  const a = new KmemTraceAnalyzer(t);
  for (const r of records) a.onRecord(r);
  a.finish();
  return t.report();
}

describe('kmem trace analysis', () => {
  const report = analyze(parseFtraceText(fixture('trace-6.18', 'kmem.trace')));
  const site = (name: string) => report.byCallSite.find((r) => r.name === name)?.weights.count;

  it('names what 50 pipes keep: per pipe two kmallocs, two files, an inode and a dentry', () => {
    // alloc_pipe_info: the pipe_inode_info and its buffer array.
    expect(site('alloc_pipe_info')).toBe(2 * PIPES);
    expect(site('alloc_empty_file')).toBe(2 * PIPES);
    expect(site('alloc_inode')).toBe(PIPES);
    expect(site('__d_alloc')).toBe(PIPES);
    const g = report.byStack.find(
      (x) => x.culprit?.func === 'alloc_pipe_info' && x.caches.includes('kmalloc-1k'),
    );
    expect(g?.weights.count).toBe(PIPES);
    expect(g?.frames.map((f) => f.func).slice(0, 4)).toEqual([
      '__kmalloc_noprof',
      'alloc_pipe_info',
      'create_pipe_files',
      'do_pipe2',
    ]);
  });

  it('every allocation got its stack, also where a softirq came between an event and its stack', () => {
    expect(report.counters.missingStacks).toBe(0);
    expect(report.counters.lostEvents).toBe(0);
    expect(report.byStack.every((g) => g.frames.length > 1)).toBe(true);
  });

  it('the binary pages of the same buffer give the same report', () => {
    const fmt = (n: string) => parseFtraceFormat(fixture('trace-6.18', `format.${n}`));
    const syms = KernelSymbols.parse(fixture('trace-6.18', 'kallsyms'));
    const text = parseFtraceText(fixture('trace-6.18', 'kmem.trace'));
    const comm = new Map(text.map((r) => (r.type === 'lost' ? [0, ''] : [r.pid, r.comm])));
    const decoder = new RawTraceDecoder({
      formats: [
        'kmalloc',
        'kmem_cache_alloc',
        'kfree',
        'kmem_cache_free',
        'mm_page_alloc',
        'mm_page_free',
        'mm_page_free_batched',
      ].map((e) => fmt(`kmem.${e}`)),
      kernelStack: fmt('ftrace.kernel_stack'),
      symbol: (a) => syms.frame(a),
      comm: (p) => comm.get(p) ?? '?',
    });
    const header = parseFtraceFields(fixture('trace-6.18', 'header_page'));
    const layout = { commitSize: header[1]!.size, dataOffset: header[3]!.offset, littleEndian: true };
    const all = readFileSync(join(REPO_FIXTURES, 'trace-6.18', 'kmem.raw'));
    const recs: FtraceRecord[] = [];
    for (let o = 0; o + 8 <= all.length; ) {
      const cpu = all.readUInt32LE(o);
      const len = all.readUInt32LE(o + 4);
      const page = all.subarray(o + 8, o + 8 + len);
      for (const e of ringBufferPageEvents(page, layout).events) {
        const r = decoder.decode(page, e, cpu);
        if (r) recs.push({ ...r, line: recs.length });
      }
      o += 8 + len;
    }
    recs.sort((a, b) =>
      a.type === 'lost' || b.type === 'lost' ? 0 : a.timestamp - b.timestamp || a.line - b.line,
    );
    const raw = analyze(recs);
    const view = (r: typeof report) => r.byStack.map((g) => [g.key, g.weights, g.caches]);
    expect(view(raw)).toEqual(view(report));
    expect(raw.byCallSite).toEqual(
      report.byCallSite.map((x) => ({
        ...x,
        oldestSeconds: expect.any(Number),
        newestSeconds: expect.any(Number),
        meanSeconds: expect.any(Number),
      })),
    );
  });

  it('streams a saved trace', async () => {
    const a = await analyzeKmemTrace(createReadStream(join(REPO_FIXTURES, 'trace-6.18', 'kmem.trace')), {
      file: 'kmem.trace',
    });
    expect(a.report.outstanding).toEqual(report.outstanding);
    expect(a.stacks).toBeGreaterThan(0);
    expect(a.events.kmem_cache_alloc).toBeGreaterThan(0);
  });
});

describe('kmem helpers', () => {
  it('kmalloc caches by requested size (bytes_alloc grows with slub_debug)', () => {
    expect([1, 8, 9, 65, 96, 97, 150, 1000, 1025, 8192, 8193].map(kmallocCache)).toEqual([
      'kmalloc-8',
      'kmalloc-8',
      'kmalloc-16',
      'kmalloc-96',
      'kmalloc-96',
      'kmalloc-128',
      'kmalloc-192',
      'kmalloc-1k',
      'kmalloc-2k',
      'kmalloc-8k',
      undefined,
    ]);
    expect(kmallocRange('kmalloc-96')).toEqual({ low: 64, high: 96 });
    expect(kmallocRange('kmalloc-rcl-1k')).toEqual({ low: 512, high: 1024 });
    expect(kmallocRange('dentry')).toBeUndefined();
  });

  it('pointer keys: raw, hashed and 0x-prefixed print the same object the same way; NULL is none', () => {
    expect(
      [
        'ffff888104fa2600',
        '0xffff888104fa2600',
        '00000000abcd1234',
        '0000000000000000',
        '0000000000000010',
      ].map(pointerKey),
    ).toEqual(['ffff888104fa2600', 'ffff888104fa2600', 'abcd1234', undefined, undefined]);
  });
});

describe.each(['6.1', '6.12'])('the lab kernel %s (trimmed collector trace)', (v) => {
  it('pairs the module’s churn with its frees and leaves its leaks outstanding', async () => {
    const t = new AllocationTracker({ onlyModule: 'msl_leaky' });
    const a = new KmemTraceAnalyzer(t);
    for (const r of parseFtraceText(fixture('lab-trace', `lab-${v}.kmem.trace`))) a.onRecord(r);
    a.finish();
    const r = t.report();
    expect(r.counters.missingStacks).toBe(0);
    const culprits = new Set(
      r.byStack.filter((g) => g.culprit?.module === 'msl_leaky').map((g) => g.culprit!.func),
    );
    expect(culprits.has('msl_slab_leak')).toBe(true);
    expect(culprits.has('msl_balanced_churn')).toBe(false);
    expect(r.byCallSite.find((s) => s.name === 'msl_slab_leak [msl_leaky]')?.weights.count).toBeGreaterThan(
      0,
    );
  });
});
