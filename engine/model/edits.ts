/**
 * A cell's edit: the matrices of (module, layer) replaced by their best rank-k approximations. Each matrix is
 * decomposed in float32 once (the decomposition cache, keyed by content) and reconstructed per ratio; the
 * result is rounded to the model's weight type, as the model would store it.
 */
import type { ModuleName } from '../vocabulary.ts';
import { type DecompositionCache, matrixHash } from '../linalg/cache.ts';
import { exactSvd, keptRank, randomizedSvd, reconstruct } from '../linalg/svd.ts';
import { EngineInputError } from '../types.ts';
import { roundTo } from './onnx.ts';
import type { WeightStore } from './weight-store.ts';
import { extract, type Family, resolveTargets, scatter, type Sizes, type Target, type WeightMap } from './weights.ts';

export interface WeightEdit {
  module: ModuleName;
  layer: number;
  ratio: number;
  svd: 'exact' | 'randomized';
  seed: number;
}

export interface EditStats {
  svdSeconds: number;
  hits: number;
  misses: number;
}

export class Editor {
  /** sha256 of each (tensor, module) slice: the pristine matrices never change, so each is hashed once per process. */
  private readonly hashes = new Map<string, string>();

  constructor(
    private readonly family: Family,
    private readonly sizes: Sizes,
    private readonly map: WeightMap,
    private readonly store: WeightStore,
    private readonly cache: DecompositionCache,
  ) {}

  /** Checks the edit; its targets (none at ratio 0, which is the untouched model). */
  targets(edit: WeightEdit): Target[] {
    if (edit.svd !== 'exact' && edit.svd !== 'randomized') throw new EngineInputError(`unknown svd mode "${edit.svd}"`, 'svd');
    if (!(typeof edit.ratio === 'number' && edit.ratio >= 0 && edit.ratio < 1)) throw new EngineInputError(`ratio must be in [0, 1), got ${edit.ratio}`, 'ratio');
    const targets = resolveTargets(this.family, this.sizes, this.map, edit.module, edit.layer);
    return edit.ratio === 0 ? [] : targets;
  }

  /** The names of the stored matrices an edit feeds (known before any is decomposed). */
  fedNames(edit: WeightEdit): string[] {
    return [...new Set(this.targets(edit).map((t) => t.tensor.name))];
  }

  /**
   * The edited matrices by initializer name (float32, as stored: [rows, cols]). A stored matrix is read only
   * when something needs its values: hashing it the first time, slicing it, or a decomposition the caches lack.
   * The targets are decomposed side by side: each LAPACK call runs on one thread (linalg/blas.ts).
   * `onStarted` is called once every target's decomposition is running on its thread or found in a cache.
   */
  async edited(edit: WeightEdit, stats: EditStats, onStarted: () => void = () => {}): Promise<Map<string, Float32Array>> {
    const pristine = new Map<string, Promise<Float32Array>>();
    const read = (name: string) => {
      let p = pristine.get(name);
      if (!p) pristine.set(name, (p = this.store.matrix(name)));
      return p;
    };
    const clock = new BusyClock();
    const targets = this.targets(edit);
    let waiting = targets.length;
    const started = () => {
      if (--waiting === 0) onStarted();
    };
    if (waiting === 0) onStarted();
    const approximations = await Promise.all(targets.map((t) => this.approximation(t, edit, read, { clock, stats, started })));
    stats.svdSeconds += clock.seconds;
    const out = new Map<string, Float32Array>();
    for (const [i, t] of targets.entries()) {
      const w = t.tensor;
      let dst = out.get(w.name);
      if (!dst) {
        // a whole-matrix edit replaces every value; a slice keeps the rest of the stored matrix
        dst = t.slice ? (await read(w.name)).slice() : new Float32Array(w.rows * w.cols);
        out.set(w.name, dst);
      }
      scatter(dst, w, t.slice, approximations[i]!);
    }
    for (const [name, values] of out) roundTo(values, this.store.dataType(name));
    return out;
  }

  /** One target's rank-k approximation, through the decomposition cache (decomposing under `clock`). */
  private async approximation(t: Target, edit: WeightEdit, read: (name: string) => Promise<Float32Array>, progress: EditProgress): Promise<Float32Array> {
    const { clock, stats } = progress;
    let started = false;
    const start = () => {
      if (!started) progress.started();
      started = true;
    };
    const w = t.tensor;
    const sliceOf = async () => extract(await read(w.name), w, t.slice);
    const memoKey = `${w.name}\n${t.module}`;
    let hash = this.hashes.get(memoKey);
    const m = t.slice && t.slice.axis === 0 ? t.slice.index.length : w.rows;
    const n = t.slice && t.slice.axis === 1 ? t.slice.index.length : w.cols;
    if (!hash) {
      const { data } = await sliceOf();
      hash = await matrixHash(data, m, n);
      this.hashes.set(memoKey, hash);
    }
    const k = keptRank(m, n, edit.ratio);
    const method = edit.svd === 'exact' ? 'exact-sgesdd' : `randomized-q${k}-niter2-seed${edit.seed}`;
    const key = `${hash}-${method}`;
    const d = await this.cache.get(
      key,
      () =>
        clock.time(async () => {
          const { data } = await sliceOf();
          const decomposition = edit.svd === 'exact' ? exactSvd(data, m, n) : randomizedSvd(data, m, n, k, 2, `${edit.seed}:${key}`);
          start(); // its first native call is under way
          return decomposition;
        }),
      (hit) => {
        if (hit) stats.hits++;
        else stats.misses++;
      },
    );
    start();
    return reconstruct(d, k);
  }
}

interface EditProgress {
  clock: BusyClock;
  stats: EditStats;
  /** Called once per target, when its decomposition runs or was found. */
  started: () => void;
}

/** Wall time during which at least one timed job runs (jobs side by side count once). */
export class BusyClock {
  private running = 0;
  private since = 0;
  seconds = 0;

  async time<T>(job: () => Promise<T>): Promise<T> {
    if (this.running++ === 0) this.since = performance.now();
    try {
      return await job();
    } finally {
      if (--this.running === 0) this.seconds += (performance.now() - this.since) / 1000;
    }
  }
}
