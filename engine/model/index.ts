/**
 * The model layer: an exported causal LM (optimum layout) run by ONNX Runtime, with the paper's
 * rank-truncation edits.
 *
 *   loadModel(dir, { file }) -> CausalLM -> withEdit(edit | null) -> EditedLM (prefill / nextTokenLogprobs / continuationScores)
 *
 * The runtime reads the weights from the export's own files (model.onnx and its external data); the engine
 * only rewrites the graph's structure. A cell's edited matrices are fed as graph inputs of a session made for
 * that set of matrices (every ratio of a (module, layer) shares it); everything else stays in the runtime, on
 * the device under CUDA. The files: graph.ts (rewrites), weight-store.ts (positioned reads of the matrices a
 * cell edits), session.ts (options, the session pool), edits.ts (SVD and reconstruction), runs.ts (prefix
 * reuse, batches, logits), io.ts, tokenizer.ts, weights.ts (the module map by graph structure).
 */
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type DecompositionCache, sharedCache } from '../linalg/cache.ts';
import { EngineInputError, type ModelInfo } from '../types.ts';
import { fingerprintFolder } from '../fingerprint.ts';
import { modelFileFilter } from '../hub.ts';
import { Editor, type EditStats, type WeightEdit } from './edits.ts';
import { feedName, float32Boundary, selectableLogits, sessionGraph, sharedPastBatch, widenGraph } from './graph.ts';
import { ioSpec } from './io.ts';
import { DT_BFLOAT16, DT_FLOAT, DT_FLOAT16, externalDataFiles, floatTypeOf, type FloatType, fromFloat32, graphOf, type ModelProto, readModelProto, type TensorProto } from './onnx.ts';
import { LayerStates } from './layer-states.ts';
import { feedMask, maskTensor, probeMask } from './mask.ts';
import { Edited, type Slicing } from './runs.ts';
import { createSession, SessionPool, type SessionLease, sessionOptions } from './session.ts';
import { captureGraph, layerCuts, sliceGraph } from './slices.ts';
import { StateStore } from './states.ts';
import { loadTokenizer, type ModelTokenizer, readJson } from './tokenizer.ts';
import { realExternalFolder, WeightStore, type WidenedFile, widenInitializers } from './weight-store.ts';
import { type Family, familyModules, familyOf, mapWeights, type Sizes, sizesOf, type WeightMap } from './weights.ts';

export { EngineInputError };
export type { Family, FloatType, Sizes, WeightEdit };

export interface LoadOptions {
  executionProvider: 'cpu' | 'cuda';
  /** CUDA device ordinal; default 0. */
  deviceId?: number;
  threads?: number;
  cacheDir: string;
  decompositionCacheBytes: number;
  /** Disk bound of the decomposition cache (default: the cache's). */
  decompositionDiskBytes?: number;
  /** The ONNX file within the model folder (e.g. onnx/model_fp16.onnx); default model.onnx. Its external data is
   *  found relative to the ONNX file's own folder; config.json and the tokenizer are in the model folder. */
  file?: string;
  /** Upper bound of one run's logits buffer in bytes (batches are split to fit); default 64 MiB. */
  maxLogitsBytes?: number;
  /** Most queries per run; default 16. */
  maxBatch?: number;
  /** Upper bound of the prefix's past key values expanded to a batch, in bytes (batches are split to fit; at
   *  least one row); default 512 MiB on CPU, 4 GiB on CUDA. Bounds the runtime's activation memory; every run
   *  costs about the same fixed time, so a batch split for a smaller bound runs slower. */
  maxKvBytes?: number;
  /** Idle sessions kept (each holds the weights on the device under CUDA); default 1: with one cell at a time,
   *  one copy of the weights. Sessions in use are never dropped. */
  maxSessions?: number;
  /** ONNX Runtime's CPU memory arena (faster, but keeps its high-water mark); default true. */
  cpuMemArena?: boolean;
  /** ONNX Runtime's intra-op threads spin while waiting for work; default false (see session.ts). */
  spinning?: boolean;
  /** Compute the vocabulary projection only at the positions a call needs (graph rewrite); default true. */
  selectLogits?: boolean;
  /** Lay several queries side by side in one row of a batch where the graph's attention mask can be fed
   *  (mask.ts); default true. */
  packSequences?: boolean;
  /** Run a cell whose edits start at layer L >= 1 as layers L..N-1 on top of the unpruned model's hidden
   *  states entering L, captured once per prompt set (layer-states.ts); default true. */
  layerSlices?: boolean;
  /** Captured hidden states kept in memory, in bytes; beyond it they are spilled to <cacheDir>/states;
   *  default 512 MiB. */
  maxStatesBytes?: number;
  /** Spilled states kept on disk, in bytes (whole prompt sets dropped beyond it); default 8 GiB. */
  maxStatesDiskBytes?: number;
  /** 'float32': 16-bit weights and graphs widened to float32 (default on CPU); 'stored': run in the export's own
   *  types (default on CUDA; on CPU it exercises the 16-bit path where the CPU provider has the kernels). */
  computeIn?: 'float32' | 'stored';
}

/** Opaque handle returned by prefill. */
export interface Prefix {
  readonly ids: readonly number[];
}

/** Optional hints; without them, each call computes what it needs when it needs it. */
export interface PrefillHints {
  /** The prefix's raw-logit sum will be needed (the paper's COPA mean-logit mode): compute it during this
   *  prefill instead of re-running the prefix on the first continuationScores call. */
  logitSum?: boolean;
}
export interface ContinuationHints {
  /** false: no mean logit is needed (loglik modes): neither the prefix's logit sum nor the logits of the
   *  context positions are computed, and meanLogit is NaN. Default true. */
  meanLogit?: boolean;
}

export interface EditedLM {
  /** Run a prefix once; later calls reuse its past key values. Without past-KV support, stores the ids and the full path is used. */
  prefill(ids: number[], hints?: PrefillHints): Promise<Prefix>;
  /** log-softmax over the vocabulary of the next token after prefix+query, one row per query (batched). */
  nextTokenLogprobs(prefix: Prefix, queries: number[][]): Promise<Float32Array[]>;
  /** Per-token log-probabilities of `continuation` given prefix+context, and the mean of the raw logits over
   *  ALL positions of prefix+context+continuation and the whole vocabulary (the paper's COPA quirk). */
  continuationScores(
    prefix: Prefix,
    items: { context: number[]; continuation: number[] }[],
    hints?: ContinuationHints,
  ): Promise<{ logprobs: number[]; meanLogit: number }[]>;
  /** Real tokens run through the model since this EditedLM was made (prefix once + queries; padding excluded). */
  readonly forwardTokens: number;
  /** Padding positions run in batches (not included in forwardTokens). */
  readonly paddingTokens: number;
  /** The first layer its runs go through: L for a cell run as the slice of layers L..N-1, else 0. */
  readonly firstLayer: number;
  /** Tokens run through the unpruned model to capture the hidden states a slice starts from (not included
   *  in forwardTokens; 0 once a prompt set's states are kept). */
  readonly capturedTokens: number;
  readonly svdSeconds: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  /** Seconds spent building the edited weights (reads, decomposition, reconstruction, session). */
  readonly editSeconds: number;
  /** Gives its session back to the model's pool; do not use it afterwards. */
  release(): void;
}

export interface CausalLM {
  info: ModelInfo;
  /** encode never adds special tokens; bosId is the token the model's tokenizer puts at the start of a sequence (null if none). */
  tokenizer: ModelTokenizer;
  /** Pristine weights when edit is null; otherwise the cell's pruned weights (never mutates the pristine ones). */
  withEdit(edit: WeightEdit | null): Promise<EditedLM>;
  dispose(): Promise<void>;
  /** Family sizes from config.json and the vocabulary size of the logits. */
  readonly sizes: Sizes & { vocab: number };
  readonly loadSeconds: number;
  /** The process-wide decomposition cache this model uses. */
  readonly cache: DecompositionCache;
  /** Whether runs compute the vocabulary projection only at the positions they need. */
  readonly selectsLogits: boolean;
  /** Whether runs lay several sequences side by side in a row (the graph's attention mask is fed; known once
   *  a first session is made). */
  readonly packsSequences: boolean;
  /** The float type the runtime computes the weights in: their own (CUDA), or float32 where the provider lacks
   *  16-bit kernels (CPU). */
  readonly computeType: string;
  /** ONNX Runtime's version. */
  readonly runtimeVersion: string;
}

/** The session a cell runs on, and the layer states it reads (a slice) or keeps (the capture graph). */
interface Runner {
  lease: SessionLease;
  slicing: Slicing | null;
}

/** The stored type of the prunable matrices ('float16+float32' when they differ). */
function weightDtypeOf(model: ModelProto, map: WeightMap): string {
  const types = new Set<FloatType>();
  for (const t of graphOf(model).initializer as TensorProto[]) if (map.tensors.has(t.name)) types.add(floatTypeOf(t.dataType, `weight ${t.name}`));
  return [...types].sort().join('+');
}

/**
 * What the runtime executes: on CPU (whose 16-bit kernels cover only some ops, depending on the version) every
 * 16-bit float is widened to float32, the weights through an in-memory data file; on CUDA 16-bit weights stay
 * as they are and only bfloat16 inputs and outputs become float32 at the boundary (JavaScript tensors cannot
 * hold bfloat16).
 */
function prepareGraph(model: ModelProto, opts: LoadOptions, onnxDir: string, onnxPath: string): WidenedFile | null {
  let widened: WidenedFile | null = null;
  if (widens(opts)) {
    widenGraph(model);
    widened = widenInitializers(model, onnxDir, onnxPath);
  } else {
    float32Boundary(model);
  }
  if (opts.selectLogits !== false) selectableLogits(model);
  return widened;
}

function widens(opts: LoadOptions): boolean {
  return (opts.computeIn ?? (opts.executionProvider === 'cpu' ? 'float32' : 'stored')) === 'float32';
}

/**
 * The edited matrices as feeds, by the graph input each goes through, in the type the graph takes them
 * (bfloat16 crosses as float32 and is cast inside the graph).
 */
function weightFeeds(edited: Map<string, Float32Array>, map: WeightMap, graphType: Map<string, number>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, values] of edited) {
    const { rows, cols } = map.tensors.get(name)!;
    const type = graphType.get(name)!;
    const fed = feedType(type);
    feeds[feedName(name, type, fed)] =
      fed === DT_FLOAT16 ? new ort.Tensor('float16', fromFloat32(values, DT_FLOAT16), [rows, cols]) : new ort.Tensor('float32', values, [rows, cols]);
  }
  return feeds;
}

function feedType(graphType: number): number {
  return graphType === DT_BFLOAT16 ? DT_FLOAT : graphType;
}

/** Session variants besides the whole model: the capture graph, and the slice from a layer ('from 3'). */
const CAPTURE = 'capture';
const FROM = 'from ';

export async function loadModel(dir: string, opts: LoadOptions): Promise<CausalLM> {
  const t0 = performance.now();
  const onnxPath = resolve(dir, opts.file ?? 'model.onnx');
  const onnxDir = dirname(onnxPath);
  const { model } = readModelProto(dir, onnxPath);
  // The folder's identity: every file but the ONNX variants (and their data) this graph does not use.
  const external = externalDataFiles(model).map((f) => relative(dir, join(onnxDir, f)).split(sep).join('/'));
  const fingerprintP = fingerprintFolder(dir, opts.cacheDir, modelFileFilter(relative(dir, onnxPath).split(sep).join('/'), external));
  const configPath = join(dir, 'config.json');
  const config = readJson(configPath);
  const family = familyOf(config, configPath);
  const baseSizes = sizesOf(family, config);
  const map = mapWeights(model, family, baseSizes, onnxPath);
  const tokenizer = loadTokenizer(dir);
  const weightDtype = weightDtypeOf(model, map);
  // the prunable matrices as stored, before any rewrite points them elsewhere
  const store = WeightStore.open(model, new Set(map.tensors.keys()), onnxDir, onnxPath);
  const widened = prepareGraph(model, opts, onnxDir, onnxPath);
  const externalFolder = realExternalFolder(model, onnxDir, onnxPath, new Set(widened ? [widened.path] : []));
  const io = ioSpec(model, onnxPath);
  sharedPastBatch(model, io.past.map((p) => p.input));
  const fingerprint = await fingerprintP;

  const cuda = opts.executionProvider === 'cuda';
  // each prunable weight's type in the graph the sessions run (float32 on CPU after widening)
  const graphType = new Map((graphOf(model).initializer as TensorProto[]).filter((t) => map.tensors.has(t.name)).map((t) => [t.name, t.dataType]));
  // Sessions (and a widened model's float32 weights) are made when a cell first needs them: describing a
  // model reads its graph and hashes its files, nothing more.
  let options: Promise<ort.InferenceSession.SessionOptions> | null = null;
  const optionsOnce = () => {
    options ??= (async () =>
      sessionOptions({
        executionProvider: opts.executionProvider,
        deviceId: opts.deviceId,
        threads: opts.threads,
        cpuMemArena: opts.cpuMemArena,
        spinning: opts.spinning,
        externalFolder,
        externalData: widened ? [{ path: widened.path, data: await widened.fill() }] : undefined,
      }))();
    options.catch(() => (options = null)); // a failed read is tried again by the next cell
    return options;
  };
  const sizes = { ...baseSizes, vocab: Number(config.vocab_size) };
  const limits = {
    maxLogitsBytes: opts.maxLogitsBytes ?? 64 * 2 ** 20,
    maxBatch: opts.maxBatch ?? 16,
    maxKvBytes: opts.maxKvBytes ?? (cuda ? 4 * 2 ** 30 : 512 * 2 ** 20),
  };
  const cuts = layerCuts(model, map, sizes.layers);
  // the graph a session runs: the whole model, the capture graph, or the slice from layer L ('from L')
  const variantGraph = (variant: string): ModelProto => {
    if (variant === '') return model;
    if (variant === CAPTURE) return captureGraph(model, cuts.filter((c): c is string => c !== null));
    const layer = Number(variant.slice(FROM.length));
    const presents = io.past.map((p) => p.output).filter((o) => Number(o.split('.')[1]) >= layer);
    const type = states!.hiddenType === 'float16' ? DT_FLOAT16 : DT_FLOAT;
    return sliceGraph(model, [io.logits, ...presents], { name: cuts[layer]!, elemType: type, hidden: sizes.hidden });
  };
  // the attention mask fed instead of computed, once, before the first session: every graph variant takes it
  const maskAt = opts.packSequences === false ? null : maskTensor(model, sizes.layers);
  let maskReady: Promise<void> | null = null;
  const prepareMask = async () => {
    maskReady ??= (async () => {
      const fed = maskAt ? await probeMask(model, maskAt, io, await optionsOnce()).catch(() => null) : null;
      if (fed) io.mask = feedMask(model, maskAt!, fed);
    })();
    return maskReady;
  };
  const pool = new SessionPool(async (fed, variant) => {
    await prepareMask();
    return createSession(sessionGraph(variantGraph(variant), new Set(fed), feedType), await optionsOnce(), onnxPath, opts.executionProvider);
  }, opts.maxSessions ?? 1);
  const states =
    opts.layerSlices === false || !cuts.some((c) => c !== null)
      ? null
      : new LayerStates(
          new StateStore(join(opts.cacheDir, 'states'), {
            memoryBytes: opts.maxStatesBytes ?? 512 * 2 ** 20,
            diskBytes: opts.maxStatesDiskBytes ?? 8 * 2 ** 30,
            promptSets: 8,
          }),
          cuts,
          io,
          sizes.hidden,
          limits,
          () => pool.acquire([], CAPTURE),
        );

  const cache = sharedCache(opts.cacheDir, opts.decompositionCacheBytes, opts.decompositionDiskBytes);
  const editor = new Editor(family, baseSizes, map, store, cache);
  const info: ModelInfo = {
    family,
    numLayers: sizes.layers,
    modules: familyModules(family),
    fingerprint,
    hasPastKeyValues: io.past.length > 0,
    weightDtype,
  };
  const computeType = widens(opts) ? 'float32' : weightDtype;
  const loadSeconds = (performance.now() - t0) / 1000;

  /**
   * Where a cell feeding these matrices runs: the unpruned model runs the capture graph, keeping the hidden
   * states of what it runs; a cell whose edits start at layer L >= 1 runs layers L..N-1 from the unpruned
   * model's hidden states entering L; anything else runs the whole model.
   */
  async function runnerFor(fed: string[]): Promise<Runner> {
    const lowest = Math.min(...fed.map((name) => map.tensors.get(name)!.layer));
    if (!states || (fed.length > 0 && !states.sliceable(lowest))) {
      const lease = await pool.acquire(fed);
      return { lease, slicing: null };
    }
    const cell = states.open();
    try {
      if (fed.length === 0) return { lease: await states.capture(), slicing: { states: cell, from: null } };
      const half = (await cell.hiddenType()) === 'float16';
      const lease = await pool.acquire(fed, `${FROM}${lowest}`);
      return { lease, slicing: { states: cell, from: { layer: lowest, input: cuts[lowest]!, hiddenSize: sizes.hidden, half } } };
    } catch (e) {
      cell.release();
      throw e;
    }
  }

  async function withEdit(edit: WeightEdit | null): Promise<EditedLM> {
    const e0 = performance.now();
    const stats: EditStats = { svdSeconds: 0, hits: 0, misses: 0 };
    const fed = edit ? editor.fedNames(edit) : [];
    let started = () => {};
    const decomposing = new Promise<void>((resolve) => (started = resolve));
    const values = edit ? editor.edited(edit, stats, started) : Promise.resolve(new Map<string, Float32Array>());
    // A session depends only on which matrices are fed, so it is made while they are decomposed; making one
    // holds this thread (ONNX Runtime's binding), so it starts once the decompositions run on theirs.
    const runner = Promise.race([decomposing, values]).then(() => runnerFor(fed));
    runner.catch(() => undefined); // seen where it is awaited below
    let edited: Map<string, Float32Array>;
    try {
      edited = await values;
    } catch (e) {
      await runner.then(({ lease, slicing }) => (lease.release(), slicing?.states.release()), () => undefined);
      throw e;
    }
    const { lease, slicing } = await runner;
    const seconds = (performance.now() - e0) / 1000;
    return new Edited(lease.session, weightFeeds(edited, map, graphType), io, sizes.vocab, limits, stats, seconds, lease.release, slicing);
  }

  return {
    info,
    tokenizer,
    withEdit,
    sizes,
    loadSeconds,
    cache,
    selectsLogits: io.selectable,
    get packsSequences() {
      return io.mask !== null;
    },
    computeType,
    runtimeVersion: ort.env.versions.common ?? 'unknown',
    dispose: async () => {
      states?.store.clear();
      await pool.dispose();
    },
  };
}
