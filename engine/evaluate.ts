/**
 * One cell's evaluation above the model layer: dataset -> sample -> prompts -> tokens -> scores.
 *
 * Per cell: the demonstration prefix (BOS when the tokenizer has one, then the demonstrations)
 * is tokenized and prefilled once; queries (or multiple-choice candidates) are batched, shortest
 * first so batches pad little, and scored against the prefix's past key values. With
 * `reusePrefix: false` the prefix is empty and every query carries the whole prompt (the plain
 * full-prompt path; the same token ids, so the same scores).
 *
 * Each full prompt is tokenized at once (as the paper does); the shared prefix is the longest common
 * token prefix of the cell's prompts and queries are the remainders, so a model reads exactly the full
 * prompt's ids on both paths (see tokenizeCell).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { MODULES } from './vocabulary.ts';
import type { WeightEdit } from './model/index.ts';
import type { CellsCheck, DatasetSpec, ModelSpec } from './types.ts';
import { canonicalJson, DatasetCache, type PreparedDataset } from './data/index.ts';
import { DataRoots } from './paths.ts';
import type { ResolvedTask } from './tasks/definitions.ts';
import { renderChoices, renderDemos, renderQuery } from './tasks/render.ts';
import { sampleCell, sampleRecord, type CellSample } from './tasks/sampling.ts';
import { classify, macroF1, scoreChoices, utf8Length } from './tasks/scoring.ts';
import { isHubId, locateModel, type ModelLocation } from './hub.ts';
import { continuationIds, promptIds } from './prompts.ts';
import {
  EngineInputError,
  type CellOutcome,
  type CellRequest,
  type DatasetInfo,
  type Engine,
  type EngineOptions,
  type EvaluateOptions,
  type ExampleOutcome,
  type ModelInfo,
} from './types.ts';

// ---- The part of the model layer's contract (engine/model/index.ts) this file uses, as structural
// ---- types, so tests can inject a fake model layer.

export interface LMTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  bosId: number | null;
}
/**
 * Hints the engine passes beyond the contract (a model layer may ignore them): `logitSum` on prefill
 * says the prefix's raw-logit sum will be needed (the paper's COPA mode), so it can be summed during the
 * prefill instead of re-running the prefix; `meanLogit: false` says no mean logit is needed (loglik modes).
 */
export interface EditedLMLike {
  prefill(ids: number[], hints?: { logitSum?: boolean }): Promise<unknown>;
  nextTokenLogprobs(prefix: any, queries: number[][]): Promise<Float32Array[]>;
  continuationScores(
    prefix: any,
    items: { context: number[]; continuation: number[] }[],
    hints?: { meanLogit?: boolean },
  ): Promise<{ logprobs: number[]; meanLogit: number }[]>;
  readonly forwardTokens: number;
  readonly svdSeconds: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  /** Frees what the edit holds (optional in the contract). */
  release?(): void;
}
export interface CausalLMLike {
  info: ModelInfo;
  /** Version of the runtime that runs the model (e.g. ONNX Runtime's). */
  readonly runtimeVersion?: string;
  /** The float type the runtime computes the weights in (default: their stored type). */
  readonly computeType?: string;
  tokenizer: LMTokenizer;
  withEdit(edit: WeightEdit | null): Promise<EditedLMLike>;
  dispose(): Promise<void>;
}
export type { WeightEdit };
export type LoadModelFn = (
  dir: string,
  /** `file`: the ONNX file within `dir` (engine/hub.ts). */
  opts: { executionProvider: 'cpu' | 'cuda'; threads?: number; cacheDir: string; decompositionCacheBytes: number; decompositionDiskBytes?: number; maxStatesDiskBytes?: number; file: string },
) => Promise<CausalLMLike>;

/** Options beyond the contract's EngineOptions. */
export interface EngineTuning {
  /** Queries (or multiple-choice candidates) per model call (the model layer plans its own runs within a
   *  call; calls are where progress is reported and an abort is seen); default 64. */
  batchSize?: number;
  /** Rows tokenized between two yields to the event loop; default 64. */
  tokenizeChunk?: number;
  /** The model loader; default: engine/model/index.ts's loadModel. */
  loadModel?: LoadModelFn;
  /** Where a model spec's folder and ONNX file are; default: engine/hub.ts's locateModel (a fake model layer has no files). */
  locateModel?: (model: ModelSpec) => ModelLocation;
}

async function defaultLoadModel(): Promise<LoadModelFn> {
  const mod = (await import(new URL('./model/index.ts', import.meta.url).href)) as { loadModel: LoadModelFn };
  return mod.loadModel;
}

// ---- Model cache: LRU of loaded models, one load per (folder, ONNX file) per process.

interface ModelEntry {
  key: string;
  promise: Promise<CausalLMLike>;
  users: number;
  loadSeconds: number;
}

class ModelCache {
  private entries = new Map<string, ModelEntry>();
  constructor(
    private readonly max: number,
    private readonly load: (at: ModelLocation) => Promise<CausalLMLike>,
    private readonly onLoad?: (seconds: number, dir: string) => void,
  ) {}

  /**
   * The model and how long loading it took in this call: the load's seconds for the caller that caused
   * it, 0 when the model was loaded (or being loaded) already. Every load is reported to onLoad.
   */
  async acquire(at: ModelLocation): Promise<{ lm: CausalLMLike; loadSeconds: number; release: () => void }> {
    const key = `${at.dir}\0${at.file}`;
    let entry = this.entries.get(key);
    let loadedHere = false;
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      const t0 = performance.now();
      const e: ModelEntry = { key, users: 0, loadSeconds: 0, promise: undefined as unknown as Promise<CausalLMLike> };
      e.promise = this.load(at).then((lm) => {
        e.loadSeconds = (performance.now() - t0) / 1000;
        try {
          this.onLoad?.(e.loadSeconds, at.dir);
        } catch {
          /* an observer's failure must not fail the load */
        }
        return lm;
      });
      e.promise.catch(() => {
        if (this.entries.get(key) === e) this.entries.delete(key);
      });
      this.entries.set(key, e);
      entry = e;
      loadedHere = true;
    }
    entry.users++;
    const e = entry;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      e.users--;
      void this.evict();
    };
    try {
      const lm = await e.promise;
      void this.evict();
      return { lm, loadSeconds: loadedHere ? e.loadSeconds : 0, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  private async evict(): Promise<void> {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.max) break;
      if (e.users > 0) continue;
      this.entries.delete(key);
      try {
        await (await e.promise).dispose();
      } catch {
        /* a failed load has nothing to dispose */
      }
    }
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map(async (e) => (await e.promise.catch(() => null))?.dispose()));
  }
}

// ---- Prompts of one cell, tokenized.

interface ClassificationPrompts {
  kind: 'classification';
  prefixIds: number[];
  queries: number[][];
  verbalizerIds: number[];
}
interface ChoicePrompts {
  kind: 'multiple-choice';
  prefixIds: number[];
  /** Per example: the context's ids and each choice's continuation ids and UTF-8 byte length. */
  items: { context: number[]; continuations: number[][]; bytes: number[] }[];
}
type CellPrompts = ClassificationPrompts | ChoicePrompts;

/** Each verbalizer must be exactly one token of this model's tokenizer. */
export function verbalizerTokenIds(task: ResolvedTask, tokenizer: LMTokenizer, modelName: string): number[] {
  return task.verbalizers!.map((v) => {
    const ids = tokenizer.encode(v);
    if (ids.length !== 1) {
      throw new EngineInputError(
        `verbalizer ${JSON.stringify(v)} of task ${task.name} is ${ids.length} tokens for model ${modelName} (ids ${JSON.stringify(ids)}); each must be exactly one token`,
        v,
      );
    }
    return ids[0];
  });
}

/**
 * Length of the longest common prefix of all `seqs`, capped so that every sequence keeps at least
 * `keep` ids after it (0 when there is no sequence).
 */
export function sharedPrefixLength(seqs: readonly (readonly number[])[], keep = 1): number {
  if (seqs.length === 0) return 0;
  let n = Infinity;
  for (const s of seqs) n = Math.min(n, s.length - keep);
  n = Math.max(0, n);
  const first = seqs[0];
  for (let k = 1; k < seqs.length && n > 0; k++) {
    const s = seqs[k];
    let j = 0;
    while (j < n && s[j] === first[j]) j++;
    n = j;
  }
  return n;
}

/**
 * Tokenizes a cell the way the paper does: each full prompt at once, `[BOS] + encode(demonstrations +
 * query)` (multiple choice: `[BOS] + encode(demonstrations + context)`, and each continuation
 * lm-evaluation-harness style, `encode(demonstrations + context + continuation)` minus the first
 * `encode(demonstrations + context).length` ids). The shared prefix is the longest common token prefix
 * of all the cell's prompts (so it never cuts a token the full tokenization would merge, e.g. the
 * byte-level " \n" at the end of the last demonstration), capped so each query / context keeps at least
 * one token; queries are the remainders, so prefix + query is exactly the full prompt's ids.
 * Yields to the event loop every `chunk` rows and at least every ~20 ms.
 */
export async function tokenizeCell(
  task: ResolvedTask,
  sample: CellSample,
  tokenizer: LMTokenizer,
  modelName: string,
  chunk = 64,
): Promise<CellPrompts> {
  const demoText = renderDemos(task, sample.demos);
  const bos = tokenizer.bosId !== null ? [tokenizer.bosId] : [];
  const full = promptIds(tokenizer);
  let last = performance.now();
  const maybeYield = async (i: number) => {
    if (i > 0 && (i % chunk === 0 || performance.now() - last > 20)) {
      await yieldToLoop();
      last = performance.now();
    }
  };
  const split = (prompts: number[][]) => {
    const n = sharedPrefixLength(prompts, 1);
    const prefixIds = prompts.length ? prompts[0].slice(0, n) : bos.slice();
    return { prefixIds, rest: prompts.map((p) => p.slice(n)) };
  };
  if (task.kind === 'classification') {
    const verbalizerIds = verbalizerTokenIds(task, tokenizer, modelName);
    const prompts: number[][] = [];
    for (let i = 0; i < sample.examples.length; i++) {
      await maybeYield(i);
      prompts.push(full(demoText + renderQuery(task, sample.examples[i].row)));
    }
    const { prefixIds, rest } = split(prompts);
    return { kind: 'classification', prefixIds, queries: rest, verbalizerIds };
  }
  const contexts: number[][] = [];
  const conts: number[][][] = [];
  const bytes: number[][] = [];
  for (let i = 0; i < sample.examples.length; i++) {
    await maybeYield(i);
    const { context, continuations } = renderChoices(task, sample.examples[i].row);
    const ctx = full(demoText + context);
    const cs = continuations.map((c, j) => {
      const ids = continuationIds(full, demoText + context, ctx, c);
      if (c.length === 0 || ids.length === 0) throw new EngineInputError(`choice ${j + 1} of example ${sample.examples[i].index} is empty`, task.choices!.fields[j]);
      return ids;
    });
    contexts.push(ctx);
    conts.push(cs);
    bytes.push(continuations.map(utf8Length));
  }
  const { prefixIds, rest } = split(contexts);
  return { kind: 'multiple-choice', prefixIds, items: rest.map((context, i) => ({ context, continuations: conts[i], bytes: bytes[i] })) };
}

class Lru<V> {
  private map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cell evaluation aborted');
}

/** Indices 0..n-1 ordered by length (stable), cut into model calls. */
function batchesByLength(lengths: number[], batchSize: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
}

/** The model's context length from config.json (null when it does not say). */
async function maxPositions(dir: string): Promise<number | null> {
  try {
    const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const v = c.max_position_embeddings ?? c.n_positions ?? c.n_ctx;
    return typeof v === 'number' && v > 0 ? v : null;
  } catch {
    return null;
  }
}

function longestPrompt(p: CellPrompts): number {
  let longest = 0;
  if (p.kind === 'classification') for (const q of p.queries) longest = Math.max(longest, q.length);
  else for (const it of p.items) for (const c of it.continuations) longest = Math.max(longest, it.context.length + c.length);
  return p.prefixIds.length + longest;
}

export class IclEngine implements Engine {
  private readonly models: ModelCache;
  private readonly datasets: DatasetCache;
  private readonly samples = new Lru<CellSample>(16);
  private readonly prompts = new Lru<Promise<CellPrompts>>(8);
  private readonly batchSize: number;
  private readonly tokenizeChunk: number;
  private readonly locate: (model: ModelSpec) => ModelLocation;
  private readonly roots?: DataRoots;
  private readonly executionProvider: EngineOptions['executionProvider'];

  constructor(opts: EngineOptions & EngineTuning) {
    if (!Number.isInteger(opts.maxModels) || opts.maxModels < 1) throw new EngineInputError(`maxModels must be >= 1, got ${opts.maxModels}`, 'maxModels');
    this.batchSize = Math.max(1, Math.floor(opts.batchSize ?? 64));
    this.executionProvider = opts.executionProvider;
    this.tokenizeChunk = Math.max(1, Math.floor(opts.tokenizeChunk ?? 64));
    this.locate = opts.locateModel ?? locateModel;
    let loader: Promise<LoadModelFn> | undefined;
    const load = async (at: ModelLocation) => {
      loader ??= opts.loadModel ? Promise.resolve(opts.loadModel) : defaultLoadModel();
      return (await loader)(at.dir, {
        executionProvider: opts.executionProvider,
        threads: opts.threads,
        cacheDir: opts.cacheDir,
        decompositionCacheBytes: opts.decompositionCacheBytes,
        file: at.file,
        decompositionDiskBytes: opts.decompositionDiskBytes,
        maxStatesDiskBytes: opts.statesDiskBytes,
      });
    };
    this.models = new ModelCache(opts.maxModels, load, opts.onModelLoad);
    if (opts.dataRoots) this.roots = new DataRoots(opts.dataRoots);
    this.datasets = new DatasetCache(opts.cacheDir, { limits: opts.datasetLimits, maxBytes: opts.datasetCacheBytes, roots: this.roots, taskDirs: opts.taskDirs ?? [] });
  }

  /**
   * The model's folder and ONNX file. With allowed roots, a local path is checked before anything is
   * looked up in it (a path outside is refused the same way whether or not it exists), and the folder
   * found (a Hub id's snapshot too) must lie under the roots.
   */
  private async modelLocation(model: ModelSpec): Promise<ModelLocation> {
    if (!this.roots) return this.locate(model);
    if (!isHubId(model.path)) await this.roots.folder('model folder', model.path);
    const at = this.locate(model);
    return { ...at, dir: await this.roots.folder('model folder', at.dir) };
  }

  async describeModel(model: ModelSpec): Promise<ModelInfo> {
    const m = await this.models.acquire(await this.modelLocation(model));
    try {
      return m.lm.info;
    } finally {
      m.release();
    }
  }

  async describeDataset(dataset: DatasetSpec): Promise<DatasetInfo> {
    return (await this.datasets.get(dataset)).info;
  }

  /** The prepared dataset and the cell's sample (exposed for tests and tools). */
  async sample(request: Pick<CellRequest, 'dataset' | 'split' | 'shots' | 'seed' | 'sizes'>): Promise<{ dataset: PreparedDataset; sample: CellSample }> {
    const dataset = await this.datasets.get(request.dataset);
    const key = canonicalJson([dataset.fingerprint, request.split, request.shots ?? null, request.seed ?? null, request.sizes ?? {}]);
    let sample = this.samples.get(key);
    if (!sample) {
      sample = sampleCell(dataset, { split: request.split, shots: request.shots, seed: request.seed, sizes: request.sizes ?? {} });
      if (sample.examples.length === 0) {
        throw new EngineInputError(`${sample.source.file}: no examples for the ${request.split} split`, sample.source.file);
      }
      this.samples.set(key, sample);
    }
    return { dataset, sample };
  }

  async checkCells(check: CellsCheck): Promise<void> {
    (await this.cellInputs(check)).model.release();
  }

  /**
   * What every cell of a (model, dataset, split) needs, with the checks that hold for all of them: the
   * sample, the model (acquired: the caller releases it), the prompts tokenized (each verbalizer one
   * token) and within the model's context.
   */
  private async cellInputs(request: CellsCheck, signal?: AbortSignal) {
    const { dataset, sample } = await this.sample(request);
    checkAbort(signal);
    const location = await this.modelLocation(request.model);
    const model = await this.models.acquire(location);
    try {
      const lm = model.lm;
      const promptKey = canonicalJson([lm.info.fingerprint, dataset.fingerprint, request.split, sample.shots, sample.seed, request.sizes ?? {}]);
      let promptsP = this.prompts.get(promptKey);
      if (!promptsP) {
        promptsP = tokenizeCell(dataset.task, sample, lm.tokenizer, request.model.name, this.tokenizeChunk);
        promptsP.catch(() => undefined);
        this.prompts.set(promptKey, promptsP);
      }
      let prompts: CellPrompts;
      try {
        prompts = await promptsP;
      } catch (e) {
        this.prompts.delete(promptKey);
        throw e;
      }
      checkAbort(signal);
      const positions = await maxPositions(location.dir);
      const longest = longestPrompt(prompts);
      if (positions !== null && longest > positions) {
        throw new EngineInputError(
          `the longest prompt of this cell is ${longest} tokens (${prompts.prefixIds.length} shared by all prompts: BOS, demonstrations and any common start of the queries); model ${request.model.name} has ${positions} positions: use fewer shots`,
          'shots',
        );
      }
      return { dataset, sample, model, prompts };
    } catch (e) {
      model.release();
      throw e;
    }
  }

  async evaluate(request: CellRequest, options: EvaluateOptions = {}): Promise<CellOutcome> {
    const t0 = performance.now();
    const { signal, onProgress } = options;
    const reusePrefix = options.reusePrefix ?? true;
    checkAbort(signal);
    if (request.split !== 'validation' && request.split !== 'test') throw new EngineInputError(`split must be "validation" or "test", got ${JSON.stringify(request.split)}`, 'split');
    const mcMode = request.scoring?.multipleChoice ?? 'loglik';
    const svdMode = request.scoring?.svd ?? 'exact';
    if (!['loglik', 'loglik-norm', 'mean-logits'].includes(mcMode)) throw new EngineInputError(`unknown multiple-choice scoring "${mcMode}"`, 'scoring.multipleChoice');
    if (svdMode !== 'exact' && svdMode !== 'randomized') throw new EngineInputError(`unknown svd mode "${svdMode}"`, 'scoring.svd');
    if (!MODULES.includes(request.module)) throw new EngineInputError(`unknown module "${request.module}"`, String(request.module));
    if (!(request.ratio >= 0 && request.ratio < 1)) throw new EngineInputError(`ratio must be in [0, 1), got ${request.ratio}`, 'ratio');
    if (!Number.isInteger(request.layer) || request.layer < -1) throw new EngineInputError(`layer must be an integer >= -1, got ${request.layer}`, 'layer');

    const { dataset, sample, model, prompts } = await this.cellInputs(request, signal);
    const task = dataset.task;
    try {
      const lm = model.lm;
      if (request.ratio > 0) {
        if (!lm.info.modules.includes(request.module)) {
          throw new EngineInputError(`model family ${lm.info.family} has no module "${request.module}" (it has ${lm.info.modules.join(', ')})`, request.module);
        }
        if (request.layer >= lm.info.numLayers) {
          throw new EngineInputError(`layer ${request.layer} is out of range for ${request.model.name} (${lm.info.numLayers} layers)`, 'layer');
        }
      }

      const edit: WeightEdit | null =
        request.ratio === 0 ? null : { module: request.module, layer: request.layer, ratio: request.ratio, svd: svdMode, seed: sample.seed };
      const elm = await lm.withEdit(edit);
      try {
        checkAbort(signal);
        const prefixIds = prompts.prefixIds;
        const needMeanLogit = task.kind === 'multiple-choice' && mcMode === 'mean-logits';
        const prefix = await elm.prefill(reusePrefix ? prefixIds : [], { logitSum: needMeanLogit });
        const withPrefix = (ids: number[]) => (reusePrefix ? ids : prefixIds.concat(ids));
        const total = sample.examples.length;
        const examples: ExampleOutcome[] = new Array(total);
        let done = 0;
        onProgress?.(0, total);
        let promptTokens = prefixIds.length;
        let correct = 0;
        let correctNorm = 0;

        if (prompts.kind === 'classification') {
          for (const q of prompts.queries) promptTokens += q.length;
          for (const batch of batchesByLength(prompts.queries.map((q) => q.length), this.batchSize)) {
            checkAbort(signal);
            const rows = await elm.nextTokenLogprobs(
              prefix,
              batch.map((i) => withPrefix(prompts.queries[i])),
            );
            if (rows.length !== batch.length) throw new Error(`model returned ${rows.length} rows for ${batch.length} queries`);
            batch.forEach((i, k) => {
              const { scores, prediction } = classify(rows[k], prompts.verbalizerIds);
              const ex = sample.examples[i];
              examples[i] = { index: ex.index, label: ex.label, prediction, scores };
              if (prediction === ex.label) correct++;
            });
            done += batch.length;
            onProgress?.(done, total);
          }
        } else {
          const mode = mcMode;
          const flat: { ex: number; choice: number; context: number[]; continuation: number[] }[] = [];
          prompts.items.forEach((it, ex) => it.continuations.forEach((c, choice) => flat.push({ ex, choice, context: it.context, continuation: c })));
          for (const f of flat) promptTokens += f.context.length + f.continuation.length;
          const results: { logprobs: number[]; meanLogit: number }[][] = prompts.items.map((it) => new Array(it.continuations.length));
          const remaining = prompts.items.map((it) => it.continuations.length);
          const finish = (ex: number) => {
            const s = sample.examples[ex];
            const r = scoreChoices(results[ex], prompts.items[ex].bytes, mode);
            examples[ex] = { index: s.index, label: s.label, prediction: r.prediction, scores: r.scores };
            if (r.prediction === s.label) correct++;
            if (r.predictionNorm === s.label) correctNorm++;
            done++;
          };
          for (const batch of batchesByLength(flat.map((f) => f.context.length + f.continuation.length), this.batchSize)) {
            checkAbort(signal);
            const out = await elm.continuationScores(
              prefix,
              batch.map((j) => ({ context: withPrefix(flat[j].context), continuation: flat[j].continuation })),
              { meanLogit: needMeanLogit },
            );
            if (out.length !== batch.length) throw new Error(`model returned ${out.length} results for ${batch.length} candidates`);
            const before = done;
            batch.forEach((j, k) => {
              const f = flat[j];
              results[f.ex][f.choice] = out[k];
              if (--remaining[f.ex] === 0) finish(f.ex);
            });
            if (done > before) onProgress?.(done, total);
          }
        }

        return {
          accuracy: correct / total,
          accuracyNorm: task.kind === 'multiple-choice' ? correctNorm / total : null,
          f1Macro: task.kind === 'classification' ? macroF1(examples, task.classes.length) : null,
          n: total,
          examples,
          sample: sampleRecord(sample),
          cost: {
            forwardTokens: elm.forwardTokens,
            promptTokens,
            demoTokens: prefixIds.length,
            seconds: (performance.now() - t0) / 1000,
            svdSeconds: elm.svdSeconds,
            decompositionCacheHits: elm.cacheHits,
            decompositionCacheMisses: elm.cacheMisses,
            modelLoadSeconds: model.loadSeconds,
          },
          runtime: { executionProvider: this.executionProvider, weightDtype: lm.computeType ?? lm.info.weightDtype, onnxruntime: lm.runtimeVersion ?? 'unknown' },
        };
      } finally {
        elm.release?.();
      }
    } finally {
      model.release();
    }
  }

  async close(): Promise<void> {
    await this.models.close();
  }
}

export function createIclEngine(opts: EngineOptions & EngineTuning): IclEngine {
  return new IclEngine(opts);
}
