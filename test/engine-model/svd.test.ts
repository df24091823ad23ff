/** The SVD (LAPACK through koffi), the randomized mode, the k rule and the decomposition cache. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sgemm } from '../../engine/linalg/blas.ts';
import { contentKey, DecompositionCache } from '../../engine/linalg/cache.ts';
import { decompositionBytes, exactSvd, gaussianMatrix, keptRank, randomizedSvd, reconstruct } from '../../engine/linalg/svd.ts';
import { loadModel } from '../../engine/model/index.ts';

const work = mkdtempSync(join(tmpdir(), 'icl-svd-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function randomMatrix(m: number, n: number, seed: number): Float32Array {
  return gaussianMatrix(m * n, seed);
}

/** A rank-r matrix (plus optional noise). */
async function lowRank(m: number, n: number, r: number, seed: number, noise = 0): Promise<Float32Array> {
  const a = randomMatrix(m, r, seed);
  const b = randomMatrix(r, n, seed + 1);
  const c = await sgemm(false, false, m, n, r, a, b);
  if (noise) {
    const e = randomMatrix(m, n, seed + 2);
    for (let i = 0; i < c.length; i++) c[i] += noise * e[i];
  }
  return c;
}

function frob(a: Float32Array, b?: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - (b ? b[i] : 0);
    s += d * d;
  }
  return Math.sqrt(s);
}

function orthogonalityError(x: Float32Array, rows: number, cols: number, byRows: boolean): number {
  // max |X^T X - I| (columns orthonormal) or |X X^T - I| (rows orthonormal)
  let worst = 0;
  const count = byRows ? rows : cols;
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < count; j++) {
      let s = 0;
      if (byRows) for (let t = 0; t < cols; t++) s += x[i * cols + t] * x[j * cols + t];
      else for (let t = 0; t < rows; t++) s += x[t * cols + i] * x[t * cols + j];
      worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

describe('k rule', () => {
  it('k = floor(min(rows, cols) * (1 - ratio)) exactly, for the decimal ratio as written', () => {
    expect(keptRank(576, 1536, 0)).toBe(576);
    expect(keptRank(576, 1536, 0.5)).toBe(288);
    expect(keptRank(576, 1536, 0.9)).toBe(57); // 57.6
    expect(keptRank(32, 48, 0.9)).toBe(3);
    expect(keptRank(16, 32, 0.95)).toBe(0); // 0.8
    expect(keptRank(4096, 11008, 0.995)).toBe(20);
    // widths that are multiples of 10: floating point lands just below the integer (1280 * (1 - 0.9) = 127.99999999999997)
    expect(Math.floor(1280 * (1 - 0.9))).toBe(127);
    expect(keptRank(1280, 5120, 0.9)).toBe(128);
    expect(keptRank(1600, 6400, 0.9)).toBe(160);
    expect(keptRank(2560, 10240, 0.9)).toBe(256);
    expect(keptRank(5120, 13824, 0.9)).toBe(512);
    expect(keptRank(1000, 4000, 0.99)).toBe(10);
    expect(keptRank(4096, 16384, 0.9)).toBe(409); // 409.6
    expect(keptRank(4096, 4096, 0.995)).toBe(20); // 20.48
    expect(keptRank(4096, 4096, 0.75)).toBe(1024);
    expect(keptRank(1000, 1000, 0.001)).toBe(999);
    expect(keptRank(1000, 1000, 1e-7)).toBe(999); // 999.9999
    expect(keptRank(20, 20, 0.05)).toBe(19);
    expect(keptRank(4, 4, 1)).toBe(0);
    expect(() => keptRank(4, 4, -0.1)).toThrow(RangeError);
    expect(() => keptRank(4, 4, Number.NaN)).toThrow(RangeError);
  });
});

describe('exact SVD', () => {
  it('reconstructs the matrix, has orthonormal factors and sorted singular values', async () => {
    const m = 40;
    const n = 70;
    const a = randomMatrix(m, n, 7);
    const copy = a.slice();
    const d = await exactSvd(a, m, n);
    expect(Array.from(a)).toEqual(Array.from(copy)); // input untouched
    expect(d.r).toBe(40);
    for (let i = 1; i < d.r; i++) expect(d.s[i]).toBeLessThanOrEqual(d.s[i - 1]);
    const full = await reconstruct(d, d.r);
    expect(frob(full, a) / frob(a)).toBeLessThan(1e-5);
    expect(orthogonalityError(d.u, m, d.r, false)).toBeLessThan(1e-4);
    expect(orthogonalityError(d.vt, d.r, n, true)).toBeLessThan(1e-4);
  });

  it('truncation error is the tail of the spectrum (Eckart-Young) and k = 0 gives zeros', async () => {
    const m = 50;
    const n = 30;
    const a = randomMatrix(m, n, 11);
    const d = await exactSvd(a, m, n);
    const k = 12;
    const approx = await reconstruct(d, k);
    let tail = 0;
    for (let i = k; i < d.r; i++) tail += d.s[i] * d.s[i];
    expect(Math.abs(frob(approx, a) - Math.sqrt(tail)) / Math.sqrt(tail)).toBeLessThan(1e-4);
    const zero = await reconstruct(d, 0);
    expect(zero.every((v) => v === 0)).toBe(true);
  });
});

/** sha256 of the exact SVD of a seeded 1024 x 384 matrix, computed in a process whose OpenBLAS is told `threads`. */
function decompositionDigest(threads: number): string {
  const svd = join(import.meta.dirname, '../../engine/linalg/svd.ts');
  const code = `const { exactSvd, gaussianMatrix } = await import(${JSON.stringify(svd)});
    const d = await exactSvd(gaussianMatrix(1024 * 384, 7), 1024, 384);
    const h = (await import('node:crypto')).createHash('sha256');
    for (const x of [d.u, d.s, d.vt]) h.update(new Uint8Array(x.buffer));
    console.log(h.digest('hex'));`;
  return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads) }, encoding: 'utf8' }).trim();
}

describe('exact SVD across machines', () => {
  it("gives the same bits whatever thread count the machine's OpenBLAS would use", () => {
    expect(decompositionDigest(1)).toMatch(/^[0-9a-f]{64}$/);
    expect(decompositionDigest(4)).toBe(decompositionDigest(1));
  });
});

describe('randomized SVD (torch.svd_lowrank: q = k, niter = 2)', () => {
  it('is close to exact on a low-rank matrix, in both branch shapes', async () => {
    for (const [m, n] of [[60, 90], [90, 60]]) {
      const a = await lowRank(m, n, 8, 3, 1e-3);
      const exact = await reconstruct(await exactSvd(a, m, n), 8);
      const r = await randomizedSvd(a, m, n, 8, 2, 'seed-1');
      expect(r.r).toBe(8);
      const approx = await reconstruct(r, 8);
      expect(frob(approx, exact) / frob(exact)).toBeLessThan(1e-3);
      expect(orthogonalityError(r.u, m, 8, false)).toBeLessThan(1e-4);
      expect(orthogonalityError(r.vt, 8, n, true)).toBeLessThan(1e-4);
    }
  });

  it('is deterministic per seed and depends on it', async () => {
    const a = randomMatrix(30, 50, 5);
    const x = await randomizedSvd(a, 30, 50, 10, 2, 42);
    const y = await randomizedSvd(a, 30, 50, 10, 2, 42);
    const z = await randomizedSvd(a, 30, 50, 10, 2, 43);
    expect(Array.from(x.s)).toEqual(Array.from(y.s));
    expect(Array.from(x.s)).not.toEqual(Array.from(z.s));
    // on a full-rank matrix with k << rank the randomized one is worse than the exact one but not by much
    const exactErr = frob(await reconstruct(await exactSvd(a, 30, 50), 10), a);
    const randErr = frob(await reconstruct(x, 10), a);
    expect(randErr).toBeGreaterThanOrEqual(exactErr * 0.999);
    expect(randErr).toBeLessThan(exactErr * 1.2);
  });

  it('Gaussian test matrix has mean 0 and variance 1', () => {
    const g = gaussianMatrix(200_000, 1);
    let s = 0;
    let s2 = 0;
    for (const v of g) {
      s += v;
      s2 += v * v;
    }
    expect(Math.abs(s / g.length)).toBeLessThan(0.01);
    expect(Math.abs(s2 / g.length - 1)).toBeLessThan(0.02);
  });
});

describe('decomposition cache', () => {
  it('keys by content, hits in memory and on disk, evicts by bytes', async () => {
    const dir = join(work, 'c1');
    const a = randomMatrix(20, 30, 1);
    const key = contentKey(a, 20, 30, 'exact');
    expect(contentKey(a.slice(), 20, 30, 'exact')).toBe(key);
    expect(contentKey(a, 30, 20, 'exact')).not.toBe(key);
    const b = a.slice();
    b[7] += 1e-6;
    expect(contentKey(b, 20, 30, 'exact')).not.toBe(key);

    let computed = 0;
    const compute = () => {
      computed++;
      return exactSvd(a, 20, 30);
    };
    const cache = new DecompositionCache(dir, 1 << 20);
    const d1 = await cache.get(key, compute);
    const d2 = await cache.get(key, compute);
    expect(computed).toBe(1);
    expect(d2).toBe(d1);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 1 });
    expect(readdirSync(join(dir, 'decompositions')).filter((f) => f.endsWith('.svd'))).toHaveLength(1);

    const other = new DecompositionCache(dir, 1 << 20); // a new process: disk hit, no SVD
    const d3 = await other.get(key, compute);
    expect(computed).toBe(1);
    expect(other.stats).toMatchObject({ hits: 1, misses: 0, diskHits: 1 });
    expect(Array.from(d3.s)).toEqual(Array.from(d1.s));

    const tiny = new DecompositionCache(null, 100); // too small to keep anything in memory
    await tiny.get(key, compute);
    await tiny.get(key, compute);
    expect(computed).toBe(3);
    expect(tiny.stats.bytes).toBe(0);
  });

  it('keeps the decompositions on disk under their byte bound, dropping the least recently used first', async () => {
    const dir = join(work, 'bounded');
    const matrices = [1, 2, 3, 4].map((seed) => randomMatrix(32, 48, seed));
    const bytes = 16 + decompositionBytes(await exactSvd(matrices[0], 32, 48));
    // Room for two files on disk, none in memory (so every read goes to disk and marks it used).
    const cache = new DecompositionCache(dir, 0, 2 * bytes + 100);
    const files = () => readdirSync(join(dir, 'decompositions')).filter((f) => f.endsWith('.svd')).sort();
    const key = (i: number) => contentKey(matrices[i], 32, 48, 'exact');
    let computed = 0;
    const get = (i: number) => cache.get(key(i), () => (computed++, exactSvd(matrices[i], 32, 48)));
    await get(0);
    await new Promise((r) => setTimeout(r, 20));
    await get(1);
    expect(files()).toEqual([`${key(0)}.svd`, `${key(1)}.svd`].sort());
    await new Promise((r) => setTimeout(r, 20));
    await get(0); // read from disk: now the most recently used
    expect(computed).toBe(2);
    await new Promise((r) => setTimeout(r, 20));
    await get(2); // over the bound: the least recently used (1) goes
    expect(files()).toEqual([`${key(0)}.svd`, `${key(2)}.svd`].sort());
    await get(1); // gone: computed again
    expect(computed).toBe(4);
    const total = files().reduce((n, f) => n + statSync(join(dir, 'decompositions', f)).size, 0);
    expect(total).toBeLessThanOrEqual(2 * bytes + 100);
    // A decomposition larger than the whole bound is never written.
    const small = new DecompositionCache(join(work, 'too-small'), 0, bytes - 1);
    await small.get(key(3), () => exactSvd(matrices[3], 32, 48));
    expect(existsSync(join(work, 'too-small', 'decompositions'))).toBe(false);
  });

  it('concurrent requests for one key run one SVD', async () => {
    const a = randomMatrix(64, 64, 9);
    let computed = 0;
    const cache = new DecompositionCache(null, 1 << 24);
    await Promise.all([1, 2, 3].map(() => cache.get('k', () => (computed++, exactSvd(a, 64, 64)))));
    expect(computed).toBe(1);
  });

  it('a ratio sweep decomposes each matrix once (through the model)', async () => {
    const cacheDir = join(work, 'sweep');
    const lm = await loadModel(join(import.meta.dirname, '../fixtures/models/gpt_neox'), {
      executionProvider: 'cpu', cacheDir, decompositionCacheBytes: 1 << 24, threads: 1,
    });
    const first = await lm.withEdit({ module: 'attn', layer: 1, ratio: 0.5, svd: 'exact', seed: 0 });
    expect(first.cacheMisses).toBe(4); // q, k, v slices + dense
    expect(first.cacheHits).toBe(0);
    expect(first.svdSeconds).toBeGreaterThan(0);
    for (const ratio of [0.1, 0.75, 0.9, 0.95, 0.99, 0.995]) {
      const e = await lm.withEdit({ module: 'attn', layer: 1, ratio, svd: 'exact', seed: 0 });
      expect(e.cacheMisses).toBe(0);
      expect(e.cacheHits).toBe(4);
      expect(e.svdSeconds).toBe(0);
    }
    expect(existsSync(join(cacheDir, 'decompositions'))).toBe(true);
    // randomized mode: one decomposition per (matrix, k, seed), deterministic, close to exact at high k on this model
    const r1 = await lm.withEdit({ module: 'fc_in', layer: 0, ratio: 0.5, svd: 'randomized', seed: 1 });
    const r2 = await lm.withEdit({ module: 'fc_in', layer: 0, ratio: 0.5, svd: 'randomized', seed: 1 });
    expect(r1.cacheMisses).toBe(1);
    expect(r2.cacheHits).toBe(1);
    const ids = lm.tokenizer.encode('text: a fine film\n sentiment :');
    const [a] = await r1.nextTokenLogprobs(await r1.prefill([]), [ids]);
    const [b] = await r2.nextTokenLogprobs(await r2.prefill([]), [ids]);
    expect(Array.from(a)).toEqual(Array.from(b));
    await lm.dispose();
  });
});
