import { describe, expect, it } from 'vitest';
import { rng } from '../../test/rng.js';
import { emptyTextKey, Rows } from './page_owner_sort_engine.js';

describe('Rows (the sort engine lookup table)', () => {
  // Slots carry the top 8 bits of a row's hash beside its number while rows fit in 24 bits,
  // and the row number alone past that: both must find every key, whatever the hashes share.
  it('finds every text key and cull key, with tags and after dropping them', () => {
    for (const tagRows of [undefined, 700]) {
      const text = tagRows === undefined ? new Rows(false) : new Rows(false, tagRows);
      const cull = tagRows === undefined ? new Rows(true) : new Rows(true, tagRows);
      const next = rng(5);
      const n = 3000;
      // Few hash values, so that keys share whole hashes, tags (top byte) and slots (low bits).
      const hashOf = (i: number) => ((((i * 7) % 5) << 24) | (i % 37)) >>> 0;
      const key = (i: number) => ({ ...emptyTextKey(), tmpl: i % 3, pid: i, tgid: i + 1, rest: i % 11 });
      const rowOf = new Map<number, number>();
      // Keys arrive in a random order, each several times.
      for (let j = 0; j < 3 * n; j++) {
        const i = next() % n;
        const h = hashOf(i);
        const found = text.findText(h, key(i));
        const culled = cull.findCull(h, i % 11, i, i + 1, 0, 0, 0);
        expect(culled).toBe(found);
        if (found >= 0) {
          expect(found).toBe(rowOf.get(i));
          continue;
        }
        expect(rowOf.has(i)).toBe(false);
        const row = text.add(h);
        expect(cull.add(h)).toBe(row);
        text.num.push(1);
        text.tmpl.push(i % 3);
        text.pid.push(i);
        text.tgid.push(i + 1);
        text.rest.push(i % 11);
        text.form.push(0);
        text.alloc.push(0);
        cull.num.push(1);
        cull.pages.push(1);
        cull.rest.push(i % 11);
        cull.kpid.push(i);
        cull.ktgid.push(i + 1);
        cull.kcomm.push(0);
        cull.kflag.push(0);
        cull.alloc.push(0);
        rowOf.set(i, row);
      }
      expect(rowOf.size).toBeGreaterThan(tagRows ?? 0);
      for (const [i, row] of rowOf) {
        expect(text.findText(hashOf(i), key(i))).toBe(row);
        expect(cull.findCull(hashOf(i), i % 11, i, i + 1, 0, 0, 0)).toBe(row);
      }
      // A key never added is not found, though its hash is everywhere.
      expect(text.findText(hashOf(1), { ...key(1), pid: n + 5 })).toBe(-1);
      expect(cull.findCull(hashOf(1), 1, n + 5, 2, 0, 0, 0)).toBe(-1);
    }
  });
});
