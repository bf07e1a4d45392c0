/** mulberry32: a small seeded PRNG, so a randomized test's failure reproduces. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** An integer in [0, n) from `rnd`. */
export const randInt = (rnd: () => number, n: number): number => Math.floor(rnd() * n);

/** Fills `buf` with bytes from `rnd` and returns it. */
export function fillRandom(buf: Uint8Array, rnd: () => number): Uint8Array {
  for (let i = 0; i < buf.length; i++) buf[i] = randInt(rnd, 256);
  return buf;
}
