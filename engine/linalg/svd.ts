/**
 * Truncated SVD for rank truncation: exact (LAPACK sgesdd, thin) and the paper's randomized mode
 * (torch.svd_lowrank's algorithm, q = k, niter = 2, Halko et al. 2009 Alg. 5, with our own seeded
 * Gaussian test matrix), and the reconstruction U_k S_k V_k^T (cblas_sgemm). All native work is async.
 */
import { orthonormalize, sgemm, sgesdd } from './blas.ts';
import { createGaussian } from '../random.ts';

/** A (possibly partial) SVD of an m x n matrix: A ~ U diag(S) VT with U [m, r], S [r], VT [r, n]. */
export interface Decomposition {
  m: number;
  n: number;
  r: number;
  u: Float32Array;
  s: Float32Array;
  vt: Float32Array;
}

export function decompositionBytes(d: Decomposition): number {
  return (d.u.length + d.s.length + d.vt.length) * 4;
}

/**
 * The ratio as the decimal the user wrote, numerator / 10^digits: JavaScript prints a number as the
 * shortest decimal that reads back to it, so 0.9 gives 9 / 10, not the binary double just below it.
 */
function decimalFraction(ratio: number): { num: bigint; den: bigint } {
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(ratio));
  if (!m) throw new RangeError(`ratio ${ratio} is not a plain decimal`);
  const digits = `${m[1]}${m[2] ?? ''}`;
  const scale = (m[2]?.length ?? 0) - Number(m[3] ?? 0);
  if (scale <= 0) return { num: BigInt(digits) * 10n ** BigInt(-scale), den: 1n };
  return { num: BigInt(digits), den: 10n ** BigInt(scale) };
}

/**
 * k = floor(min(rows, cols) * (1 - ratio)), the paper's kept rank, computed exactly for the decimal ratio
 * (integer arithmetic): 1280 at 0.9 keeps 128, where floating point gives floor(127.99999999999997) = 127.
 */
export function keptRank(rows: number, cols: number, ratio: number): number {
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`ratio must be in [0, 1], got ${ratio}`);
  const { num, den } = decimalFraction(ratio);
  return Number((BigInt(Math.min(rows, cols)) * (den - num)) / den);
}

/** Exact thin SVD (input is not modified). */
export async function exactSvd(a: Float32Array, m: number, n: number): Promise<Decomposition> {
  const { u, s, vt } = await sgesdd(a.slice(), m, n);
  return { m, n, r: Math.min(m, n), u, s, vt };
}

/** A matrix of independent standard normals, seeded (the randomized SVD's test matrix). */
export function gaussianMatrix(length: number, seed: number | string): Float32Array {
  const normal = createGaussian(seed);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = normal();
  return out;
}

/**
 * Orthonormal basis [rows(op(A)), q] for the range of op(A), op(A) = A ([m, n]) or A^T when `t`;
 * torch._lowrank.get_approximate_basis with niter power iterations.
 */
async function approximateBasis(a: Float32Array, m: number, n: number, t: boolean, q: number, niter: number, seed: number | string): Promise<Float32Array> {
  const rows = t ? n : m; // op(A) is rows x cols
  const cols = t ? m : n;
  const r = gaussianMatrix(cols * q, seed);
  // X = op(A) R
  let x = await sgemm(t, false, rows, q, cols, a, r, undefined, n, q);
  let basis = await orthonormalize(x, rows, q);
  for (let i = 0; i < niter; i++) {
    // X = op(A)^T Q  [cols, q]
    x = await sgemm(!t, false, cols, q, rows, a, basis, undefined, n, q);
    const q2 = await orthonormalize(x, cols, q);
    // X = op(A) Q  [rows, q]
    x = await sgemm(t, false, rows, q, cols, a, q2, undefined, n, q);
    basis = await orthonormalize(x, rows, q);
  }
  return basis;
}

/**
 * torch.svd_lowrank(A, q, niter): rank-q approximation A ~ U diag(S) V^T. Follows torch's branch
 * choice (the transposed problem when m < n or n > q).
 */
export async function randomizedSvd(a: Float32Array, m: number, n: number, q: number, niter: number, seed: number | string): Promise<Decomposition> {
  if (q <= 0) return { m, n, r: 0, u: new Float32Array(0), s: new Float32Array(0), vt: new Float32Array(0) };
  if (m < n || n > q) {
    // Q = basis of range(A^T) [n, q]; B_t = A Q [m, q]; svd(B_t) = U S Vh; V = Q Vh^T
    const basis = await approximateBasis(a, m, n, true, q, niter, seed);
    const bt = await sgemm(false, false, m, q, n, a, basis);
    const small = await sgesdd(bt, m, q); // u [m, q], s [q], vt(h) [q, q]
    // VT = (Q Vh^T)^T = Vh Q^T  [q, n]
    const vt = await sgemm(false, true, q, n, q, small.vt, basis);
    return { m, n, r: q, u: small.u, s: small.s, vt };
  }
  // Q = basis of range(A) [m, q]; B = Q^T A [q, n]; svd(B) = Ub S VT; U = Q Ub
  const basis = await approximateBasis(a, m, n, false, q, niter, seed);
  const b = await sgemm(true, false, q, n, m, basis, a);
  const small = await sgesdd(b, q, n); // u [q, q], s [q], vt [q, n]
  const u = await sgemm(false, false, m, q, q, basis, small.u);
  return { m, n, r: q, u, s: small.s, vt: small.vt };
}

/** U_k diag(S_k) VT_k as a fresh [m, n] matrix (zeros when k = 0). */
export async function reconstruct(d: Decomposition, k: number): Promise<Float32Array> {
  const { m, n, r } = d;
  if (k > r) throw new RangeError(`rank ${k} exceeds the decomposition's ${r}`);
  if (k === 0) return new Float32Array(m * n);
  const us = new Float32Array(m * k);
  for (let i = 0; i < m; i++) {
    const row = i * r;
    const o = i * k;
    for (let j = 0; j < k; j++) us[o + j] = d.u[row + j] * d.s[j];
  }
  return sgemm(false, false, m, n, k, us, d.vt.subarray(0, k * n));
}
