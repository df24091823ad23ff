/**
 * The project's one seeded random generator, used for the demonstration shuffle, the randomized
 * SVD's Gaussian test matrix and the bootstrap. Pure (no Node imports).
 *
 * Generator: sfc32 (Small Fast Counter, 128-bit state, 32-bit integer arithmetic only, so it is
 * bit-identical on every platform and JS engine), seeded through splitmix32 from the integer
 * seed, with 12 warm-up rounds. Text seeds are hashed to an integer first (FNV-1a, 32 bits).
 * Shuffle: Fisher-Yates from the last position down, drawing j uniformly in [0, i] by rejection
 * sampling (no modulo bias). Normals: Box-Muller.
 *
 * numpy's / Hugging Face `datasets`' shuffle (PCG64 through `Dataset.shuffle(seed)`) and torch's
 * generator cannot be reproduced here, so the rows drawn for a seed differ from the paper's; the
 * procedure (shuffle, then class-balanced, interleaved picks) is the same.
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
export function createRng(seed: number | string): () => number {
  if (typeof seed === 'string') seed = fnv1a(seed);
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

function fnv1a(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** Uniform in [0, 1). */
export function uniform(rng: () => number): number {
  return rng() / 0x100000000;
}

/** A generator of standard normal numbers (Box-Muller; the second value of each pair is kept for the next call). */
export function createGaussian(seed: number | string): () => number {
  const rng = createRng(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = uniform(rng);
    const r = Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * uniform(rng);
    spare = r * Math.sin(angle);
    return r * Math.cos(angle);
  };
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
