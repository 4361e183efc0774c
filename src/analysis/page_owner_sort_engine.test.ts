import { describe, expect, it } from 'vitest';
import { rng } from '../../test/rng.js';
import { type CullKey, cullKeyHash, emptyTextKey, Rows, textKeyHash } from './page_owner_sort_engine.js';

describe('Rows (the sort engine lookup table)', () => {
  // Slots carry the top 8 bits of a row's hash beside its number while rows fit in 24 bits,
  // and the row number alone past that: both must find every key, whatever the hashes share.
  it('finds every text key and cull key, with tags and after dropping them', () => {
    for (const tagRows of [undefined, 700]) {
      const next = rng(5);
      const n = 3000;
      // Few hash values, so that keys share whole hashes, tags (top byte) and slots (low bits).
      const hashOf = (i: number) => ((((i * 7) % 5) << 24) | (i % 37)) >>> 0;
      // Growing the table rehashes rows from their columns: here key i's pid is i.
      const text: Rows = new Rows(false, { tagRows, rowHash: (r) => hashOf(text.pid.get(r)) });
      const cull: Rows = new Rows(true, { tagRows, rowHash: (r) => hashOf(cull.kpid.get(r)) });
      const key = (i: number) => ({ ...emptyTextKey(), tmpl: i % 3, pid: i, tgid: i + 1, rest: i % 11 });
      const ckey = (i: number): CullKey => ({
        rest: i % 11,
        kpid: i,
        ktgid: i + 1,
        kcomm: 0,
        kflag: 0,
        kalloc: 0,
      });
      const rowOf = new Map<number, number>();
      // Keys arrive in a random order, each several times.
      for (let j = 0; j < 3 * n; j++) {
        const i = next() % n;
        const h = hashOf(i);
        const found = text.findText(h, key(i));
        const culled = cull.findCull(h, ckey(i));
        expect(culled).toBe(found);
        if (found >= 0) {
          expect(found).toBe(rowOf.get(i));
          continue;
        }
        expect(rowOf.has(i)).toBe(false);
        const row = text.addText(h, key(i), 0);
        expect(cull.addCull(h, ckey(i), 0, 1, i, i + 1, 0, 0)).toBe(row);
        rowOf.set(i, row);
      }
      expect(rowOf.size).toBeGreaterThan(tagRows ?? 0);
      for (const [i, row] of rowOf) {
        expect(text.findText(hashOf(i), key(i))).toBe(row);
        expect(cull.findCull(hashOf(i), ckey(i))).toBe(row);
      }
      // A key never added is not found, though its hash is everywhere.
      expect(text.findText(hashOf(1), { ...key(1), pid: n + 5 })).toBe(-1);
      expect(cull.findCull(hashOf(1), { ...ckey(1), kpid: n + 5 })).toBe(-1);
    }
  });

  it('finds every key after growing with the real hashes, ts fields and the allocator in the key', () => {
    const next = rng(9);
    const n = 20000;
    const text = new Rows(false);
    const cull = new Rows(true, { cullByAllocator: true });
    // Half the text keys carry ts digits (form 1: the wide columns), the rest none.
    const key = (i: number) => ({
      ...emptyTextKey(),
      tmpl: i % 4,
      pid: i * 13,
      tgid: i % 97,
      rest: i % 500,
      ...(i % 2 ? { form: 1, d3hi: i * 1_000_003, d3lo: (i * 7919) % 65536, d3n: 12 } : {}),
    });
    const textHash = (i: number) => textKeyHash(key(i));
    const ckey = (i: number): CullKey => ({
      rest: i % 500,
      kpid: i * 13,
      ktgid: i % 97,
      kcomm: i % 5,
      kflag: i % 3,
      kalloc: 1 + (i % 4),
    });
    const rowOf = new Map<number, number>();
    for (let j = 0; j < 2 * n; j++) {
      const i = next() % n;
      const found = text.findText(textHash(i), key(i));
      expect(cull.findCull(cullKeyHash(ckey(i)), ckey(i))).toBe(found);
      if (found >= 0) {
        expect(found).toBe(rowOf.get(i));
        continue;
      }
      // Half the keys make the wide (ts) columns: zeros for the rows before them.
      const row = text.addText(textHash(i), key(i), 0);
      expect(cull.addCull(cullKeyHash(ckey(i)), ckey(i), ckey(i).kalloc, 1, 0, 0, 0, 0)).toBe(row);
      rowOf.set(i, row);
    }
    expect(rowOf.size).toBeGreaterThan(10000);
    for (const [i, row] of rowOf) {
      expect(text.findText(textHash(i), key(i))).toBe(row);
      expect(cull.findCull(cullKeyHash(ckey(i)), ckey(i))).toBe(row);
    }
  });

  it('finds every key after reserve() sized the table for more rows midway', () => {
    const n = 5000;
    const rows = new Rows(false);
    const key = (i: number) => ({ ...emptyTextKey(), tmpl: i % 3, pid: i * 7, tgid: i % 13, rest: i % 101 });
    const add = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const k = key(i);
        expect(rows.findText(textKeyHash(k), k)).toBe(-1);
        expect(rows.addText(textKeyHash(k), k, 0)).toBe(i);
      }
    };
    const all = (to: number) => {
      for (let i = 0; i < to; i++) expect(rows.findText(textKeyHash(key(i)), key(i))).toBe(i);
    };
    add(0, 1500);
    rows.reserve(3 * n); // placed again in a table for 15,000 rows
    all(1500);
    rows.reserve(10); // smaller than the table: nothing moves
    all(1500);
    add(1500, n);
    all(n);
  });
});
