/** Deterministic PRNG (mulberry32): see rng.mjs. */
export declare function mulberry32(seed: number): () => number;
