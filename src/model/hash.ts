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

/** The 32-bit hash (signed) of a string's UTF-16 code units from index `from`, mixed into `h`. */
export function hashText(t: string, h = 0x811c9dc5 | 0, from = 0): number {
  for (let i = from; i < t.length; i++) h = Math.imul(h ^ t.charCodeAt(i), 0x01000193);
  return h;
}
