import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { labFixture, REPO_FIXTURES } from '../../test/paths.js';
import { MemsleuthError } from '../model/errors.js';
import { type PageOwnerRecord, parsePageOwner, parsePageOwnerStacks, scanBlocks } from './page_owner.js';

async function records(input: Parameters<typeof parsePageOwner>[0], opts = {}) {
  const out: PageOwnerRecord[] = [];
  const warnings: string[] = [];
  const r = await parsePageOwner(input, (x) => out.push(x), { ...opts, onWarning: (w) => warnings.push(w) });
  return { out, warnings, ...r };
}

const text = (s: string) => Readable.from([Buffer.from(s, 'latin1')]);

describe('parsePageOwner on the lab dumps', () => {
  it('reads 6.1 (decimal PFN, free_ts) and every record header counts', async () => {
    const file = join(labFixture('6.1', 'after'), 'page_owner');
    const raw = readFileSync(file, 'latin1');
    const { out, warnings } = await records(file);
    expect(warnings).toEqual([]);
    expect(out.length).toBe(raw.split('Page allocated via order ').length - 1);
    const first = out[0]!;
    expect(first).toMatchObject({ order: 0, gfpMask: 0, pid: 1, tgid: 1, comm: 'swapper/0', pfn: 256 });
    expect(first.tsNs).toBe(613917848);
    expect(first.freeTsNs).toBe(0);
    expect(out.some((r) => r.pageFlags === '0x200(slab|section=0|zone=0)')).toBe(true);
    expect(first.frames[0]).toMatchObject({ func: 'register_early_stack', offset: 0x23, length: 0x3e });
    const grab = out.filter((r) => r.frames.some((f) => f.func === 'msl_page_leak'));
    // msl_leaky: an order-1 block every 4th of 400 steps, under the module's out-of-line
    // copies of the alloc_pages helpers (built with -fno-inline).
    expect(grab.length).toBe(100);
    expect(
      grab.every(
        (r) =>
          r.order === 1 &&
          r.pages === 2 &&
          r.frames[2]?.func === '__alloc_pages_node.constprop.0' &&
          r.frames[2]?.module === 'msl_leaky' &&
          r.frames[5]?.func === 'msl_page_leak',
      ),
    ).toBe(true);
  });

  it('reads 6.12 (hex PFN, no free_ts)', async () => {
    const file = join(labFixture('6.12', 'after'), 'page_owner');
    const { out } = await records(file);
    expect(out[0]).toMatchObject({ pid: 0, tgid: 0, comm: 'swapper', pfn: 0x100, tsNs: 184947139 });
    expect(out[0]!.freeTsNs).toBeUndefined();
    // 6.12 keeps PG_slab out of the flags (a page type since 6.10).
    expect(out[0]!.pageFlags).toBe('0x0(section=0|zone=0)');
    expect(out.some((r) => r.pageFlags?.includes('slab'))).toBe(false);
    expect(out.filter((r) => r.frames.some((f) => f.func === 'msl_page_leak')).length).toBe(100);
  });

  it('gives the same records whatever the chunk boundaries', async () => {
    const file = join(labFixture('6.12', 'before'), 'page_owner');
    const a = await records(file);
    const b = await records(file, { chunkBytes: 777 });
    const c = await records(Readable.from(chunksOf(readFileSync(file), 4093)));
    expect(b.out).toEqual(a.out);
    expect(c.out.map((r) => r.offset)).toEqual(a.out.map((r) => r.offset));
    expect(c.bytes).toBe(readFileSync(file).length);
  });
});

function* chunksOf(b: Buffer, n: number) {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

describe('older formats (from mm/page_owner.c history)', () => {
  it('4.9: no pid, decimal PFN, migrate reason', async () => {
    const { out } = await records(join(REPO_FIXTURES, 'page_owner-history', 'v4.9.txt'));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      order: 0,
      gfpMask: 0x24200ca,
      gfpFlags: 'GFP_HIGHUSER_MOVABLE',
      pfn: 262144,
    });
    expect(out[0]!.pid).toBeUndefined();
    expect(out[0]!.migrateReason).toBe('compaction');
    expect(out[0]!.frames.map((f) => f.func)).toEqual([
      '__alloc_pages_nodemask',
      'alloc_pages_vma',
      'handle_mm_fault',
    ]);
  });
  it('5.11: pid and free_ts, no tgid or comm', async () => {
    const { out } = await records(join(REPO_FIXTURES, 'page_owner-history', 'v5.11.txt'));
    expect(out[0]).toMatchObject({ order: 1, pages: 2, pid: 1, tsNs: 1040374690, freeTsNs: 0, pfn: 4096 });
    expect(out[0]!.tgid).toBeUndefined();
  });
  it('6.12 extra lines: migrated and memcg', async () => {
    const { out } = await records(join(REPO_FIXTURES, 'page_owner-history', 'v6.12-extras.txt'));
    expect(out[0]).toMatchObject({
      pfn: 0x12345,
      migrateReason: 'numa_misplaced',
      memcg: 'Charged to memcg user.slice',
    });
    expect(out[0]!.frames).toHaveLength(6);
  });
});

describe('bad input', () => {
  it('rejects a file that is not page_owner output, naming line and byte', async () => {
    const e = await records(join(labFixture('6.12', 'after'), 'meminfo')).catch((x) => x);
    expect(e).toBeInstanceOf(MemsleuthError);
    expect(e.code).toBe('PARSE');
    expect(e.line).toBe(1);
    expect(e.offset).toBe(0);
  });
  it('rejects an unknown line inside a record with its line number', async () => {
    const good = readFileSync(join(REPO_FIXTURES, 'page_owner-history', 'v5.11.txt'), 'latin1');
    const bad = `${good}${good.replace(' __alloc_pages+0x15b/0x310\n', 'garbage here\n')}`;
    const e = await records(text(bad)).catch((x) => x);
    expect(e).toBeInstanceOf(MemsleuthError);
    expect(e.line).toBe(13);
    expect(e.offset).toBe(good.length);
    expect(e.message).toContain('garbage here');
  });
  it('rejects a last record without its blank line (a cut dump); --lenient drops it with a warning', async () => {
    const good = readFileSync(join(REPO_FIXTURES, 'page_owner-history', 'v5.11.txt'), 'latin1');
    for (const cut of [good.slice(0, -1), good.slice(0, -30)]) {
      const e = await records(text(good + cut)).catch((x) => x);
      expect(e).toBeInstanceOf(MemsleuthError);
      expect(e.message).toMatch(/^page_owner:\d+: expected a blank line after the last record/);
      expect(e.line).toBe(good.split('\n').length);
      const { out, warnings } = await records(text(good + cut), { lenient: true });
      expect(out).toHaveLength(1);
      expect(warnings).toEqual([
        `page_owner:${e.line}: input cut short (--lenient): dropped the last record (byte ${good.length}, ${cut.length} bytes): no blank line after it`,
      ]);
    }
  });
  it('rejects empty input', async () => {
    await expect(records(text(''))).rejects.toThrow(/empty input/);
  });
  it('reads records over 128 KiB (page_owner_sort stops there), up to 1 MiB', async () => {
    const good = readFileSync(join(REPO_FIXTURES, 'page_owner-history', 'v5.11.txt'), 'latin1');
    const big = good.replace(' post_alloc_hook', `${' deep_frame+0x1/0x2\n'.repeat(10000)} post_alloc_hook`);
    expect(big.length).toBeGreaterThan(128 * 1024);
    const { out } = await records(text(big + good));
    expect(out).toHaveLength(2);
    expect(out[0]!.frames.length).toBe(10005);
  });
});

describe('scanBlocks', () => {
  it('splits like read_block(): empty lines at a block start are empty blocks', async () => {
    const blocks: string[] = [];
    await scanBlocks(text('\nA\nB\n\n\nC\n\nD'), (b) =>
      blocks.push(`${b.buf.toString('latin1', b.start, b.end)}${b.unterminated ? '|cut' : ''}`),
    );
    expect(blocks).toEqual(['', 'A\nB\n', '', 'C\n', 'D|cut']);
  });
  it('refuses a block over the limit at its first byte, whether its blank line comes or not', async () => {
    const opts = { maxRecordBytes: 10, file: 'po' };
    const want =
      'po (byte 5): expected records of at most 10 bytes, each followed by a blank line, found "no blank line within 10 bytes"';
    // A whole block of 11 bytes in one chunk, the same cut across chunks, one that never ends.
    const pieces = (...p: string[]) => Readable.from(p.map((x) => Buffer.from(x, 'latin1')));
    for (const input of [
      text('A\nB\n\n0123456789\n\nC\n\n'),
      pieces('A\nB\n\n01234', '56789\n', '\nC\n\n'),
      text('A\nB\n\n0123456789A'),
    ]) {
      await expect(scanBlocks(input, () => {}, opts)).rejects.toThrow(want);
    }
    // Exactly at the limit.
    const n = await scanBlocks(text('A\nB\n\n012345678\n\n'), () => {}, opts);
    expect(n.blocks).toBe(2);
  });
});

describe('parsePageOwnerStacks (6.9+ show_stacks)', () => {
  it('reads the 6.12 lab capture', () => {
    const file = join(labFixture('6.12', 'after'), 'page_owner_stacks');
    const stacks = parsePageOwnerStacks(readFileSync(file, 'utf8'), { file });
    expect(stacks.length).toBe(readFileSync(file, 'utf8').split('nr_base_pages: ').length - 1);
    const grab = stacks.filter((s) => s.frames.some((f) => f.func === 'msl_page_leak'));
    expect(grab.map((s) => s.nrBasePages)).toEqual([200]);
  });
  it('rejects garbage with a line number', () => {
    expect(() => parsePageOwnerStacks(' a+0x1/0x2\nnr_base_pages: x\n')).toThrow(
      /:2: expected nr_base_pages/,
    );
    expect(() => parsePageOwnerStacks('MemTotal: 1 kB\n')).toThrow(/:1:/);
    expect(() => parsePageOwnerStacks(' a+0x1/0x2\n')).toThrow(/nr_base_pages/);
  });
});
