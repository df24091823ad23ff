/**
 * LAPACK / BLAS through koffi (Debian: liblapacke.so.3 + OpenBLAS). Every call used by the engine goes
 * through `fn.async`, so the work runs on koffi's worker threads and the event loop stays free.
 * Matrices are row-major float32 (LAPACK_ROW_MAJOR = 101, CblasRowMajor = 101).
 */
import koffi from 'koffi';

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

type Fn = ReturnType<ReturnType<typeof koffi.load>['func']>;

interface Lib {
  sgesdd: Fn;
  dgesdd: Fn;
  sgeqrf: Fn;
  sorgqr: Fn;
  sgemm: Fn;
}

let lib: Lib | null = null;

function candidates(env: string | undefined, names: string[]): string[] {
  return env ? [env, ...names] : names;
}

function loadFirst(paths: string[]): ReturnType<typeof koffi.load> {
  const errors: string[] = [];
  for (const p of paths) {
    try {
      return koffi.load(p);
    } catch (e) {
      errors.push(`${p}: ${(e as Error).message}`);
    }
  }
  throw new Error(`cannot load a native library (tried ${errors.join('; ')})`);
}

export function linalg(): Lib {
  if (lib) return lib;
  const lapacke = loadFirst(candidates(process.env.ICL_LAPACKE, ['liblapacke.so.3', 'liblapacke.so', 'libopenblas.so.0']));
  const blas = loadFirst(candidates(process.env.ICL_CBLAS, ['libopenblas.so.0', 'libcblas.so.3', 'libblas.so.3', 'libopenblas.so']));
  lib = {
    // lapack_int LAPACKE_sgesdd(int layout, char jobz, lapack_int m, lapack_int n, float* a, lapack_int lda,
    //                           float* s, float* u, lapack_int ldu, float* vt, lapack_int ldvt)
    sgesdd: lapacke.func('int LAPACKE_sgesdd(int, char, int, int, float *, int, float *, float *, int, float *, int)'),
    dgesdd: lapacke.func('int LAPACKE_dgesdd(int, char, int, int, double *, int, double *, double *, int, double *, int)'),
    sgeqrf: lapacke.func('int LAPACKE_sgeqrf(int, int, int, float *, int, float *)'),
    sorgqr: lapacke.func('int LAPACKE_sorgqr(int, int, int, int, float *, int, float *)'),
    // void cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
    sgemm: blas.func('void cblas_sgemm(int, int, int, int, int, int, float, float *, int, float *, int, float, float *, int)'),
  };
  singleThreaded(blas);
  return lib;
}

/**
 * One thread per call: OpenBLAS splits work by its thread count, which changes the rounding, so a threaded
 * decomposition's bits would depend on the machine's core count; the engine runs independent calls side by
 * side instead (an edit's matrices), and no idle OpenBLAS threads spin beside ONNX Runtime's. Other BLAS
 * builds (no such function) are left as they are.
 */
function singleThreaded(blas: ReturnType<typeof koffi.load>): void {
  try {
    blas.func('void openblas_set_num_threads(int)')(1);
  } catch {
    // not OpenBLAS
  }
}

function callAsync<T>(fn: Fn, args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** Thin SVD of a row-major m x n matrix (destroyed). Returns U [m, r], S [r], VT [r, n], r = min(m, n). */
export async function sgesdd(a: Float32Array, m: number, n: number): Promise<{ u: Float32Array; s: Float32Array; vt: Float32Array }> {
  const r = Math.min(m, n);
  const s = new Float32Array(r);
  const u = new Float32Array(m * r);
  const vt = new Float32Array(r * n);
  const info = await callAsync<number>(linalg().sgesdd, [ROW_MAJOR, 'S'.charCodeAt(0), m, n, a, n, s, u, r, vt, n]);
  if (info !== 0) throw new Error(`LAPACKE_sgesdd failed (info ${info}) on a ${m}x${n} matrix`);
  return { u, s, vt };
}

/** Same in double precision (input converted), results rounded to float32. */
export async function dgesdd(a: Float32Array, m: number, n: number): Promise<{ u: Float32Array; s: Float32Array; vt: Float32Array }> {
  const r = Math.min(m, n);
  const ad = Float64Array.from(a);
  const s = new Float64Array(r);
  const u = new Float64Array(m * r);
  const vt = new Float64Array(r * n);
  const info = await callAsync<number>(linalg().dgesdd, [ROW_MAJOR, 'S'.charCodeAt(0), m, n, ad, n, s, u, r, vt, n]);
  if (info !== 0) throw new Error(`LAPACKE_dgesdd failed (info ${info}) on a ${m}x${n} matrix`);
  return { u: Float32Array.from(u), s: Float32Array.from(s), vt: Float32Array.from(vt) };
}

/** Orthonormal basis Q [m, n] (m >= n) of the columns of row-major x [m, n] (destroyed and returned). */
export async function orthonormalize(x: Float32Array, m: number, n: number): Promise<Float32Array> {
  const l = linalg();
  const tau = new Float32Array(Math.min(m, n));
  let info = await callAsync<number>(l.sgeqrf, [ROW_MAJOR, m, n, x, n, tau]);
  if (info !== 0) throw new Error(`LAPACKE_sgeqrf failed (info ${info})`);
  info = await callAsync<number>(l.sorgqr, [ROW_MAJOR, m, n, Math.min(m, n), x, n, tau]);
  if (info !== 0) throw new Error(`LAPACKE_sorgqr failed (info ${info})`);
  return x;
}

/**
 * C [m, n] = op(A) op(B), row-major. op(A) is m x k, op(B) is k x n. lda / ldb are the row strides
 * of A and B as stored (defaults: their stored column counts).
 */
export async function sgemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c?: Float32Array, lda?: number, ldb?: number,
): Promise<Float32Array> {
  const out = c ?? new Float32Array(m * n);
  const la = lda ?? (transA ? m : k);
  const lb = ldb ?? (transB ? k : n);
  await callAsync<void>(linalg().sgemm, [ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, 1, a, la, b, lb, 0, out, n]);
  return out;
}
