/**
 * SVD benchmark (a command, not a test):
 *
 *   npx tsx bench/svd.ts [--rows 576] [--cols 1536] [--repeat 5] [--model <export folder>]
 *
 * 1. Exact decomposition (LAPACKE_sgesdd through koffi, async) of a random float32 matrix (default
 *    576 x 1536, a SmolLM2-135M MLP weight) vs numpy.linalg.svd on the same matrix (python with numpy:
 *    $ICL_PYTHON or python3; skipped with a message when absent). Target: <= 2x numpy.
 * 2. A ratio sweep over the paper's grid through the decomposition cache: one SVD, then hits.
 * 3. The randomized mode (q = k, niter = 2) per ratio.
 * 4. With --model: the cost of an edit (read, decomposition from the cache, reconstruction, the session
 *    of the edited matrices, made once per (module, layer)) and tokens/s of a batch of queries, with the
 *    vocabulary projection at the needed positions only and at every position.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { contentKey, DecompositionCache } from '../engine/linalg/cache.ts';
import { createRng, randomBelow } from '../engine/random.ts';
import { exactSvd, gaussianMatrix, keptRank, randomizedSvd, reconstruct } from '../engine/linalg/svd.ts';
import { loadModel } from '../engine/model/index.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '576' },
    cols: { type: 'string', default: '1536' },
    repeat: { type: 'string', default: '5' },
    model: { type: 'string' },
    threads: { type: 'string' },
  },
});
const m = Number(values.rows);
const n = Number(values.cols);
const repeat = Number(values.repeat);
const RATIOS = [0, 0.1, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

function findNumpy(): string | null {
  for (const py of [process.env.ICL_PYTHON, 'python3'].filter(Boolean) as string[]) {
    try {
      execFileSync(py, ['-c', 'import numpy'], { stdio: 'ignore' });
      return py;
    } catch {
      // next
    }
  }
  return null;
}

const work = mkdtempSync(join(tmpdir(), 'icl-bench-svd-'));
try {
  const a = gaussianMatrix(m * n, 'bench');
  console.log(`matrix ${m} x ${n} float32, ${repeat} repeats (median)`);

  // numpy first: once this process has used OpenBLAS its threads spin for a while and would slow python down
  let numpySeconds: number | null = null;
  const py = findNumpy();
  if (!py) {
    console.log('numpy: not found (set ICL_PYTHON to a python with numpy); comparison skipped');
  } else {
    const file = join(work, 'a.f32');
    writeFileSync(file, new Uint8Array(a.buffer));
    const out = execFileSync(py, ['-c', `
import numpy as np, time, sys
a = np.fromfile(sys.argv[1], dtype=np.float32).reshape(${m}, ${n})
np.linalg.svd(a, full_matrices=False)
ts = []
for _ in range(${repeat}):
    t = time.perf_counter(); np.linalg.svd(a, full_matrices=False); ts.append(time.perf_counter() - t)
print(sorted(ts)[len(ts)//2], np.__version__)
`, file], { encoding: 'utf8' }).trim().split(/\s+/);
    const np = Number(out[0]);
    numpySeconds = np;
    console.log(`numpy ${out[1]} linalg.svd (float32, full_matrices=False): ${(np * 1000).toFixed(1)} ms`);
  }

  // event-loop responsiveness while the SVD runs (it runs on koffi's worker threads)
  let maxGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  await exactSvd(a, m, n); // warm-up
  const ours: number[] = [];
  for (let i = 0; i < repeat; i++) ours.push(await time(() => exactSvd(a, m, n)));
  clearInterval(timer);
  const oursMed = median(ours);
  console.log(`exact  sgesdd (koffi, async): ${(oursMed * 1000).toFixed(1)} ms   [event loop max gap ${maxGap.toFixed(1)} ms]`);
  if (numpySeconds !== null) {
    const ratio = oursMed / numpySeconds;
    console.log(`ours / numpy = ${ratio.toFixed(2)}x  (target <= 2x: ${ratio <= 2 ? 'OK' : 'MISSED'})`);
  }

  // ratio sweep through the cache: one decomposition, then hits
  const cache = new DecompositionCache(join(work, 'cache'), 1 << 30);
  const key = contentKey(a, m, n, 'exact-sgesdd');
  let svds = 0;
  const sweepStart = performance.now();
  const rows: string[] = [];
  for (const ratio of RATIOS) {
    const k = keptRank(m, n, ratio);
    if (ratio === 0) {
      rows.push(`  ratio ${ratio}: k ${k}, untouched (no SVD)`);
      continue;
    }
    const t0 = performance.now();
    const d = await cache.get(key, () => (svds++, exactSvd(a, m, n)));
    const t1 = performance.now();
    await reconstruct(d, k);
    const t2 = performance.now();
    rows.push(`  ratio ${ratio}: k ${k}, decomposition ${(t1 - t0).toFixed(1)} ms, reconstruction ${(t2 - t1).toFixed(1)} ms`);
  }
  console.log(`ratio sweep (exact): ${svds} SVD for ${RATIOS.length - 1} non-zero ratios, cache hits ${cache.stats.hits}, misses ${cache.stats.misses}, total ${(performance.now() - sweepStart).toFixed(0)} ms`);
  for (const r of rows) console.log(r);

  console.log('randomized (q = k, niter = 2; one decomposition per k):');
  for (const ratio of RATIOS.slice(1)) {
    const k = keptRank(m, n, ratio);
    const s = await time(() => randomizedSvd(a, m, n, k, 2, 1));
    console.log(`  ratio ${ratio}: k ${k}, ${(s * 1000).toFixed(1)} ms`);
  }

  if (values.model) {
    await benchModel(values.model, values.threads ? Number(values.threads) : undefined);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

async function benchModel(dir: string, threads?: number): Promise<void> {
  console.log(`\nedits and runs on ${dir}`);
  for (const selectLogits of [true, false]) {
    const cacheDir = join(work, `model-${selectLogits}`);
    const t0 = performance.now();
    const lm = await loadModel(dir, { executionProvider: 'cpu', cacheDir, decompositionCacheBytes: 1 << 30, threads, selectLogits });
    const load = (performance.now() - t0) / 1000;
    const vocab = lm.sizes.vocab;
    const rng = createRng(5);
    const tok = () => randomBelow(rng, Math.min(vocab, 500));
    const prefixIds = Array.from({ length: 200 }, tok);
    const queries = Array.from({ length: 16 }, (_, i) => Array.from({ length: 20 + (i % 7) }, tok));
    const layer = lm.info.numLayers - 1;
    // warm the decomposition cache so the edit timings below are about reads and sessions, not SVD
    (await lm.withEdit({ module: 'mlp', layer, ratio: 0.5, svd: 'exact', seed: 0 })).release();
    const cells: string[] = [];
    let tokens = 0;
    let runSeconds = 0;
    for (const ratio of [0, 0.5, 0.9, 0.99]) {
      const e0 = performance.now();
      const e = await lm.withEdit(ratio === 0 ? null : { module: 'mlp', layer, ratio, svd: 'exact', seed: 0 });
      const e1 = performance.now();
      const pre = await e.prefill(prefixIds);
      await e.nextTokenLogprobs(pre, queries);
      const e2 = performance.now();
      tokens += e.forwardTokens;
      runSeconds += (e2 - e1) / 1000;
      cells.push(`ratio ${ratio}: edit ${(e1 - e0).toFixed(0)} ms, prefill + 16 queries ${(e2 - e1).toFixed(0)} ms (${e.forwardTokens} tokens)`);
      e.release();
    }
    const rss = process.memoryUsage().rss / 2 ** 20;
    console.log(`  ${selectLogits ? 'logits where needed' : 'full logits at every position'}: load ${load.toFixed(2)} s, ${(tokens / runSeconds).toFixed(0)} tokens/s, rss ${rss.toFixed(0)} MiB`);
    for (const c of cells) console.log(`    ${c}`);
    await lm.dispose();
  }
}
