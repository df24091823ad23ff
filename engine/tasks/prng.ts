/**
 * The engine's own seeded PRNG. We cannot reproduce numpy's / Hugging Face `datasets`' shuffle
 * (PCG64 through `Dataset.shuffle(seed)`), so the examples drawn for a seed differ from the
 * paper's; the procedure (shuffle, then class-balanced, interleaved picks) is the same.
 *
 * Generator: sfc32 (Small Fast Counter, 128-bit state, 32-bit integer arithmetic only, so it is
 * bit-identical on every platform and JS engine), seeded through splitmix32 from the integer
 * seed, with 12 warm-up rounds. Shuffle: Fisher-Yates from the last position down, drawing
 * j uniformly in [0, i] by rejection sampling (no modulo bias).
 */

function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** A generator of uniform 32-bit unsigned integers. */
export function createRng(seed: number): () => number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  // Fold seeds above 2^32 into the state so that every safe integer seed is distinct in practice.
  const init = splitmix32((seed >>> 0) ^ Math.floor(seed / 0x100000000));
  let a = init(), b = init(), c = init(), d = init();
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** Uniform integer in [0, n) (n <= 2^32), by rejection sampling. */
export function randomBelow(rng: () => number, n: number): number {
  if (n <= 0 || n > 0x100000000) throw new RangeError(`bad bound ${n}`);
  const limit = 0x100000000 - (0x100000000 % n);
  for (;;) {
    const x = rng();
    if (x < limit) return x % n;
  }
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function shuffledIndices(n: number, seed: number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  const rng = createRng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = randomBelow(rng, i + 1);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}
