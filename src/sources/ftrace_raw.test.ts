import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture } from '../../test/parsers.js';
import { REPO_FIXTURES } from '../../test/paths.js';
import { parseFrame } from '../model/frame.js';
import { parseFtraceFields, parseFtraceFormat } from './ftrace_format.js';
import { RawTraceDecoder, ringBufferPageEvents } from './ftrace_raw.js';
import {
  contextLevel,
  type FtraceRecord,
  parseEventFields,
  parseFtraceText,
  parseUprobeBody,
} from './ftrace_text.js';
import { KernelSymbols } from './kallsyms.js';

// make.mjs read `trace` (text, not consumed) and then the binary pages of the same
// buffer: both hold exactly the same events, printed by the kernel and decoded by us.
const DIR = join(REPO_FIXTURES, 'trace-6.18');
const fmt = (name: string) => parseFtraceFormat(fixture('trace-6.18', `format.${name}`), { file: name });
const header = parseFtraceFields(fixture('trace-6.18', 'header_page'));
const LAYOUT = {
  commitSize: header.find((f) => f.name === 'commit')!.size,
  dataOffset: header.find((f) => f.name === 'data')!.offset,
  littleEndian: true,
};

function pagesOf(file: string): { cpu: number; page: Buffer }[] {
  const all = readFileSync(join(DIR, file));
  const out: { cpu: number; page: Buffer }[] = [];
  for (let o = 0; o + 8 <= all.length; ) {
    const cpu = all.readUInt32LE(o);
    const len = all.readUInt32LE(o + 4);
    out.push({ cpu, page: all.subarray(o + 8, o + 8 + len) });
    o += 8 + len;
  }
  return out;
}

function decodeAll(file: string, decoder: RawTraceDecoder): FtraceRecord[] {
  const recs: { r: FtraceRecord; seq: number }[] = [];
  let seq = 0;
  for (const { cpu, page } of pagesOf(file)) {
    for (const e of ringBufferPageEvents(page, LAYOUT).events) {
      const r = decoder.decode(page, e, cpu);
      if (r) recs.push({ r, seq: seq++ });
    }
  }
  // The kernel merges CPUs by timestamp; on a tie the lower CPU comes first.
  const ts = (r: FtraceRecord) => (r.type === 'lost' ? 0 : Math.round(r.timestamp * 1e6));
  const cpu = (r: FtraceRecord) => r.cpu;
  return recs.sort((a, b) => ts(a.r) - ts(b.r) || cpu(a.r) - cpu(b.r) || a.seq - b.seq).map((x) => x.r);
}

describe('ring buffer pages', () => {
  it('a page header and its events: the commit covers the events, timestamps only grow', () => {
    const pages = pagesOf('kmem.raw');
    expect(pages.length).toBeGreaterThan(5);
    for (const { page } of pages) {
      const { events, missed } = ringBufferPageEvents(page, LAYOUT);
      expect(missed).toBe(0);
      for (let i = 1; i < events.length; i++) expect(events[i]!.ts).toBeGreaterThanOrEqual(events[i - 1]!.ts);
    }
  });

  it('reads the layout from events/header_page', () => {
    expect(LAYOUT).toEqual({ commitSize: 8, dataOffset: 16, littleEndian: true });
  });

  it('rejects a page whose commit runs past its end', () => {
    const page = Buffer.alloc(64);
    page.writeUInt32LE(4000, 8);
    expect(() => ringBufferPageEvents(page, LAYOUT, { file: 'p' })).toThrow(
      /p: expected a page commit of at most 48 bytes/,
    );
  });
});

describe('raw decoding agrees with the kernel’s own text (Linux 6.18)', () => {
  it('kmem events and kernel stacks: same events, fields, call sites and frames', () => {
    const text = parseFtraceText(fixture('trace-6.18', 'kmem.trace'));
    const comm = new Map(text.map((r) => (r.type === 'lost' ? [0, ''] : [r.pid, r.comm])));
    const syms = KernelSymbols.parse(fixture('trace-6.18', 'kallsyms'));
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
      comm: (pid) => comm.get(pid) ?? '?',
    });
    const raw = decodeAll('kmem.raw', decoder);
    expect(raw.length).toBe(text.length);
    let stacks = 0;
    for (let i = 0; i < text.length; i++) {
      const t = text[i]!;
      const r = raw[i]!;
      expect(r.type).toBe(t.type);
      if (t.type === 'lost' || r.type === 'lost') continue;
      expect([r.pid, r.cpu, r.comm, Math.round(r.timestamp * 1e6)]).toEqual([
        t.pid,
        t.cpu,
        t.comm,
        Math.round(t.timestamp * 1e6),
      ]);
      expect(contextLevel(r.flags)).toBe(contextLevel(t.flags));
      if (t.type === 'kernel-stack' && r.type === 'kernel-stack') {
        expect(r.frames).toEqual(t.frames);
        stacks++;
      }
      if (t.type === 'event' && r.type === 'event') {
        expect(r.event).toBe(t.event);
        const tf = parseEventFields(t.body);
        const rf = r.fields!;
        for (const k of ['ptr', 'bytes_req', 'bytes_alloc', 'name', 'order', 'node'])
          if (tf[k] !== undefined) expect(rf[k], `${t.line} ${k}`).toBe(tf[k]);
        if (tf.pfn !== undefined) expect(BigInt(rf.pfn!)).toBe(BigInt(tf.pfn));
        if (tf.call_site !== undefined) expect(r.callSite).toEqual(parseFrame(tf.call_site));
      }
    }
    expect(stacks).toBeGreaterThan(50);
  });

  it('uprobe events and user stacks: same arguments and addresses', () => {
    const text = parseFtraceText(fixture('trace-6.18', 'uprobe.trace'));
    const decoder = new RawTraceDecoder({
      formats: ['malloc', 'malloc_ret', 'calloc', 'calloc_ret', 'free'].map((e) => fmt(`uprobe.${e}`)),
      userStack: fmt('ftrace.user_stack'),
      symbol: () => ({ func: '?' }),
      comm: () => 'msl-fixture-use',
    });
    const raw = decodeAll('uprobe.raw', decoder);
    expect(raw.length).toBe(text.length);
    for (let i = 0; i < text.length; i++) {
      const t = text[i]!;
      const r = raw[i]!;
      expect(r.type).toBe(t.type);
      if (t.type === 'user-stack' && r.type === 'user-stack') expect(r.frames).toEqual(t.frames);
      if (t.type === 'event' && r.type === 'event') {
        expect(r.event).toBe(t.event);
        const args = parseUprobeBody(t.body).args;
        for (const [k, v] of Object.entries(args)) expect(r.fields![k]).toBe(v);
        const f = r.fields!;
        const body = parseUprobeBody(t.body);
        if (body.returnAddress)
          expect([BigInt(f.__probe_func!), BigInt(f.__probe_ret_ip!)]).toEqual([
            BigInt(`0x${body.funcAddress}`),
            BigInt(`0x${body.returnAddress}`),
          ]);
        else expect(BigInt(f.__probe_ip!)).toBe(BigInt(`0x${body.funcAddress}`));
      }
    }
  });
});
