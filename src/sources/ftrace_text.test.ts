import { describe, expect, it } from 'vitest';
import { expectParseError, fixture } from '../../test/parsers.js';
import {
  contextLevel,
  type FtraceRecord,
  FtraceTextParser,
  formatFtraceRecord,
  parseEventFields,
  parseFtraceText,
  parseUprobeBody,
} from './ftrace_text.js';

const KMEM = fixture('trace-6.18', 'kmem.trace');
const UPROBE = fixture('trace-6.18', 'uprobe.trace');
const LOST = fixture('trace-6.18', 'lost.trace');

describe('ftrace text: kmem events with stacks (Linux 6.18 `trace`)', () => {
  const records = parseFtraceText(KMEM, { file: 'kmem.trace' });

  it('reads every entry the header counts, events and stacks', () => {
    // `# entries-in-buffer/entries-written: 941/941`
    const n = Number(/entries-in-buffer\/entries-written: (\d+)\//.exec(KMEM)![1]);
    expect(records.length).toBe(n);
    const stacks = records.filter((r) => r.type === 'kernel-stack');
    expect(stacks.length).toBeGreaterThan(50);
    // Every `=>` line belongs to a stack.
    const frames = stacks.reduce((s, r) => s + (r.type === 'kernel-stack' ? r.frames.length : 0), 0);
    expect(frames).toBe(KMEM.split('\n').filter((l) => l.startsWith(' => ')).length);
  });

  it('splits the header: comm with dashes, pid, cpu, flags, timestamp', () => {
    const first = records[0]!;
    expect(first).toMatchObject({
      type: 'event',
      comm: 'msl-fixture-ker',
      pid: 3242,
      cpu: 1,
      flags: '.....',
      timestamp: 5616.599716,
      event: 'kfree',
      line: 13,
    });
    if (first.type === 'event')
      expect(parseEventFields(first.body)).toEqual({
        call_site: 'skb_release_data+0x16b/0x1d0',
        ptr: 'ffff88820ef8ce00',
      });
  });

  it('every stack follows an allocation event of its CPU and context, and names it', () => {
    // Interrupts can come between an event and its stack: at line 358 an RCU softirq
    // (`..s4.`) frees objects between a kmem_cache_alloc and the stack recorded after it.
    const lastAlloc = new Map<string, FtraceRecord>();
    let checked = 0;
    let interleaved = 0;
    let previous: FtraceRecord | undefined;
    for (const r of records) {
      if (r.type === 'kernel-stack') {
        const ev = lastAlloc.get(`${r.cpu}/${contextLevel(r.flags)}`);
        expect(ev?.type).toBe('event');
        if (ev?.type === 'event') expect(r.frames[0]!.func).toBe(`trace_event_raw_event_${ev.event}`);
        if (previous !== ev) interleaved++;
        checked++;
      } else if (r.type === 'event' && ['kmalloc', 'kmem_cache_alloc', 'mm_page_alloc'].includes(r.event))
        lastAlloc.set(`${r.cpu}/${contextLevel(r.flags)}`, r);
      previous = r;
    }
    expect(checked).toBeGreaterThan(50);
    expect(interleaved).toBeGreaterThan(0);
  });

  it('reads frames with offsets and modules (sym-offset)', () => {
    const s = records.find((r) => r.type === 'kernel-stack');
    expect(s?.type === 'kernel-stack' && s.frames[1]).toEqual({
      func: 'kmem_cache_alloc_lru_noprof',
      offset: 0x22c,
      length: 0x570,
    });
  });

  it('gives the same records fed in small chunks', () => {
    const out: FtraceRecord[] = [];
    const p = new FtraceTextParser((r) => out.push(r));
    const buf = Buffer.from(KMEM);
    for (let i = 0; i < buf.length; i += 97) p.push(buf.subarray(i, i + 97));
    p.end();
    expect(out).toEqual(records.map((r) => ({ ...r })));
  });

  it('formats records back to text the parser reads the same', () => {
    const text = records.map(formatFtraceRecord).join('');
    const again = parseFtraceText(text);
    const strip = (r: FtraceRecord) => {
      const { line: _l, ...rest } = r;
      return rest;
    };
    expect(again.map(strip)).toEqual(records.map(strip));
  });
});

describe('ftrace text: uprobes and user stacks', () => {
  const records = parseFtraceText(UPROBE, { file: 'uprobe.trace' });

  it('reads entry and return probes with their addresses and arguments', () => {
    const calloc = records.find((r) => r.type === 'event' && r.event === 'calloc');
    expect(calloc?.type === 'event' && parseUprobeBody(calloc.body)).toEqual({
      funcAddress: '7fe362d2f6e0',
      args: { nmemb: '20', size: '8' },
    });
    const ret = records.find((r) => r.type === 'event' && r.event === 'calloc_ret');
    expect(ret?.type === 'event' && parseUprobeBody(ret.body)).toEqual({
      funcAddress: '7fe362d2f6e0',
      returnAddress: '5642bb3ce1e6',
      args: { ptr: '0x5642c86d12b0' },
    });
    // The odd flags uprobe handlers print on 6.18 are kept as they are.
    expect(calloc?.type === 'event' && calloc.flags).toBe('DBZff');
  });

  it('reads user stacks as addresses, after every event', () => {
    const stacks = records.filter((r) => r.type === 'user-stack');
    const events = records.filter((r) => r.type === 'event');
    expect(stacks.length).toBe(events.length);
    const s = stacks[1]!;
    expect(s.type === 'user-stack' && s.frames).toEqual([
      { address: '00005642bb3ce1e6' },
      { address: '00005642bb3ce37b' },
      { address: '00007fe362cbd24a' },
    ]);
  });

  it('reads user frames printed with sym-userobj', () => {
    const [s] = parseFtraceText(
      ' t-1 [000] ..... 1.000000: <user stack trace>\n => /usr/lib/x86_64-linux-gnu/libc.so.6[+0x98930]\n =>  <000055f63260a192>\n',
    );
    expect(s?.type === 'user-stack' && s.frames).toEqual([
      { object: '/usr/lib/x86_64-linux-gnu/libc.so.6', objectOffset: 0x98930 },
      { address: '000055f63260a192' },
    ]);
  });
});

describe('ftrace text: format variants', () => {
  it('reads lost-event markers (a buffer of 8 KiB overflowing on 6.18)', () => {
    const lost = parseFtraceText(LOST).filter((r) => r.type === 'lost');
    expect(lost).toEqual([
      { type: 'lost', cpu: 0, events: 13379, line: 1 },
      { type: 'lost', cpu: 1, events: 16998, line: 8 },
    ]);
    expect(parseFtraceText('CPU:3 [LOST EVENTS]\n')).toEqual([
      { type: 'lost', cpu: 3, events: undefined, line: 1 },
    ]);
  });

  it('reads the record-tgid column, no flags column, counter clocks and comms with spaces', () => {
    const text = [
      '          <idle>-0       (-------) [001] d..1.   100.000001: kfree: call_site=a ptr=0',
      ' Web Content-4711    (   4700) [000] .....   100.000002: kfree: call_site=b ptr=1',
      '      kworker/0:1-42    [000]   123456789: kfree: call_site=c ptr=2',
      '  a-b [c]-12 [003] .... 7.5: tracing_mark_write: hello world',
    ].join('\n');
    const r = parseFtraceText(text);
    expect(
      r.map((x) => (x.type === 'event' ? [x.comm, x.pid, x.tgid, x.cpu, x.flags, x.timestamp] : x)),
    ).toEqual([
      ['<idle>', 0, undefined, 1, 'd..1.', 100.000001],
      ['Web Content', 4711, 4700, 0, '.....', 100.000002],
      ['kworker/0:1', 42, undefined, 0, '', 123456789],
      ['a-b [c]', 12, undefined, 3, '....', 7.5],
    ]);
  });

  it('keeps a `[module]` with its symbol value and text before the first field', () => {
    expect(
      parseEventFields('call_site=msl_slab_leak+0x1d/0x60 [msl_leaky] ptr=ffff8881 bytes_req=96'),
    ).toEqual({
      call_site: 'msl_slab_leak+0x1d/0x60 [msl_leaky]',
      ptr: 'ffff8881',
      bytes_req: '96',
    });
    expect(parseEventFields('(0x7f) size=1')).toEqual({ '': '(0x7f)', size: '1' });
  });

  it('names the context of an entry from its flags', () => {
    expect(['.....', 'd.s1.', 'd.h1.', 'dNH2.', 'd.z..', 'DBZff', ''].map(contextLevel)).toEqual([
      0, 1, 2, 2, 3, 3, 0,
    ]);
  });

  it('rejects garbage with file, line, expected and found', () => {
    expectParseError(() => parseFtraceText('# tracer: nop\nthis is not a trace line\n', { file: 't' }), {
      file: 't',
      line: 2,
      message: ['t:2', 'expected a trace line', 'this is not a trace line'],
    });
    expectParseError(() => parseFtraceText(' => orphan_frame+0x1/0x2\n', { file: 't' }), {
      line: 1,
      message: ['a frame outside a stack block'],
    });
    expectParseError(
      () => parseFtraceText(' t-1 [000] ..... 1.0: <stack trace>\n => 12 34 56\n', { file: 't' }),
      {
        line: 2,
        message: ['a kernel stack frame'],
      },
    );
    expectParseError(() => parseUprobeBody('size=1', { file: 'u', line: 9 }), {
      line: 9,
      message: ['a uprobe event body'],
    });
  });
});

describe.each(['6.1', '6.12'])(
  'ftrace text: the lab kernel %s (collector trace_pipe, module frames)',
  (v) => {
    const records = parseFtraceText(fixture('lab-trace', `lab-${v}.kmem.trace`), { file: 'kmem' });

    it('reads module frames and the empty gfp_flags= of a tinyconfig kernel', () => {
      const slab = records.find(
        (r) => r.type === 'event' && r.event === 'kmalloc' && r.body.includes('msl_slab_leak'),
      );
      expect(slab?.type === 'event' && parseEventFields(slab.body)).toMatchObject({
        call_site: expect.stringMatching(/^msl_slab_leak\+0x[0-9a-f]+\/0x[0-9a-f]+ \[msl_leaky\]$/),
        bytes_req: '96',
        gfp_flags: expect.any(String),
      });
      const stacks = records.filter((r) => r.type === 'kernel-stack');
      const mod = stacks
        .flatMap((s) => (s.type === 'kernel-stack' ? s.frames : []))
        .filter((f) => f.module === 'msl_leaky');
      expect(mod.map((f) => f.func)).toEqual(
        expect.arrayContaining(['msl_slab_leak', 'msl_page_leak', 'msl_step', 'msl_work_fn']),
      );
    });
  },
);
