/**
 * 32-bit hashing of numbers and strings, for the open-addressing tables of the parsers and the
 * interners. Ground layer: imports nothing.
 */

/** Final avalanche (murmur3 fmix32): every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/**
 * An open-addressing table of `size` slots (a power of two) holding entries 0..n-1, each as its
 * index + 1 in the first free slot from `hashOf(index)` on (0: empty). What a table that doubles
 * does when it grows: every entry placed again.
 */
export function placeAll(size: number, n: number, hashOf: (i: number) => number): Uint32Array<ArrayBuffer> {
  const slots = new Uint32Array(size);
  const mask = size - 1;
  for (let i = 0; i < n; i++) {
    let sl = hashOf(i) & mask;
    while (slots[sl] !== 0) sl = (sl + 1) & mask;
    slots[sl] = i + 1;
  }
  return slots;
}

/** The 32-bit hash (signed) of a string's UTF-16 code units from index `from`, mixed into `h`. */
export function hashText(t: string, h = 0x811c9dc5 | 0, from = 0): number {
  for (let i = from; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 0x01000193);
  return h;
}
