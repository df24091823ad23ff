/**
 * The model layer: an exported causal LM (optimum layout) in one ONNX Runtime session per model,
 * with the paper's rank-truncation edits applied by feeding weights as graph inputs.
 *
 *   loadModel(dir) -> CausalLM -> withEdit(edit | null) -> EditedLM (prefill / nextTokenLogprobs / continuationScores)
 *
 * Weight feeding ('inputs', the default): the graph is rewritten once so every prunable weight
 * initializer becomes a graph input; each run feeds the pristine tensors, or the edited copies of the
 * few matrices a cell touches. 'targeted' (default on CUDA) keeps everything but the edited matrices
 * as initializers, in one session per edited set; 'recreate' builds a fresh session per edit (kept for
 * benchmarks). See WeightFeeding.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import type { ModuleName } from '../vocabulary.ts';
import { type DecompositionCache, matrixHash, sharedCache } from '../linalg/cache.ts';
import { exactSvd, keptRank, randomizedSvd, reconstruct } from '../linalg/svd.ts';
import { EngineInputError, type ModelInfo } from '../types.ts';
import { parseJson } from '../json.ts';
import { fingerprintFolder } from '../fingerprint.ts';
import { modelFileFilter } from '../hub.ts';
import { DT_FLOAT, externalDataFiles, fromFloat32, graphOf, LOGITS_POSITIONS, selectableLogits, type ModelProto, onnx, readModelProto, type TensorProto, tensorToFloat32, toNum, weightsToInputs } from './onnx.ts';
import {
  extract, type Family, familyModules, familyOf, mapWeights, resolveTargets, scatter, type Sizes, sizesOf, type WeightMap, type WeightTensor,
} from './weights.ts';

export { EngineInputError };
export type { Family, Sizes };

/**
 * How edited weights reach ONNX Runtime:
 * - 'inputs' (default on CPU): one session whose prunable weights are all graph inputs; every run feeds
 *   the pristine tensors or the cell's edited copies. An edit costs only the SVD work.
 * - 'targeted' (default on CUDA): a session per set of edited matrices (e.g. one (module, layer)), in
 *   which only those matrices are inputs and everything else stays an initializer (resident on the
 *   device); all ratios of that (module, layer) reuse it, and a run uploads only the edited matrices.
 *   Sessions are kept in a small LRU (maxSessions).
 * - 'recreate': a fresh session per edit from a re-serialised model (for comparison).
 */
export type WeightFeeding = 'inputs' | 'targeted' | 'recreate';

export interface LoadOptions {
  executionProvider: 'cpu' | 'cuda';
  /** The ONNX graph within the model folder (engine/hub.ts locates it); default model.onnx. */
  file?: string;
  threads?: number;
  cacheDir: string;
  decompositionCacheBytes: number;
  /** How edited weights reach the session (default 'inputs'). */
  weightFeeding?: WeightFeeding;
  /** Upper bound of one run's logits buffer in bytes (batches are split to fit); default 64 MiB. */
  maxLogitsBytes?: number;
  /** Most queries per run; default 16. */
  maxBatch?: number;
  /** Upper bound of the prefix's past key values expanded to a batch, in bytes (batches are split to
   *  fit; at least one row); default 64 MiB on CPU, 4 GiB on CUDA. Bounds the worker's activation memory. */
  maxKvBytes?: number;
  /** 'targeted' only: edited-weight sessions kept at once besides the pristine one; default 2. */
  maxSessions?: number;
  /** ONNX Runtime's CPU memory arena (faster, but keeps its high-water mark); default true. */
  cpuMemArena?: boolean;
  /** Compute the vocabulary projection only at the positions a call needs (graph rewrite); default true. */
  selectLogits?: boolean;
}

export interface WeightEdit {
  module: ModuleName;
  layer: number;
  ratio: number;
  svd: 'exact' | 'randomized';
  seed: number;
}

/** Opaque handle returned by prefill. */
export interface Prefix {
  readonly ids: readonly number[];
}

/** Optional hints (backwards-compatible: without them, behaviour as before). */
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
  readonly svdSeconds: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  /** Seconds spent building the edited weights (decomposition + reconstruction + session work). */
  readonly editSeconds: number;
  /** Frees what this edit holds (its session under 'recreate', its hold on a 'targeted' session); do not use it afterwards. */
  release(): void;
}

export interface CausalLM {
  info: ModelInfo;
  /** encode never adds special tokens; bosId is the token the model's tokenizer puts at the start of a sequence (null if none). */
  tokenizer: { encode(text: string): number[]; decode(ids: number[]): string; bosId: number | null };
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
  /** How edited weights reach the session. */
  readonly weightFeeding: WeightFeeding;
}

/** A JSON file of the model folder; a parse error says where, never what the file holds. */
function readJson(path: string): Record<string, any> {
  if (!existsSync(path)) throw new EngineInputError(`file not found: ${path}`, path);
  const value = parseJson(readFileSync(path, 'utf8'), path, path);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new EngineInputError(`${path} is not a JSON object`, path);
  return value as Record<string, any>;
}

/** A model folder's tokenizer (tokenizer.json, tokenizer_config.json) and its BOS token, without the ONNX graph. */
export function loadTokenizer(dir: string) {
  const tj = readJson(join(dir, 'tokenizer.json'));
  const tcPath = join(dir, 'tokenizer_config.json');
  const tc = existsSync(tcPath) ? readJson(tcPath) : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tj, tc);
  } catch (e) {
    // The library's message may quote the file's contents: name only the file.
    throw new EngineInputError(`cannot build a tokenizer from ${join(dir, 'tokenizer.json')} (not a Hugging Face tokenizer.json this library reads)`, join(dir, 'tokenizer.json'));
  }
  const plain = tok.encode('a', { add_special_tokens: false }).ids;
  const special = tok.encode('a', { add_special_tokens: true }).ids;
  let bosId: number | null = null;
  if (special.length > plain.length && special.slice(1, 1 + plain.length).join() === plain.join()) {
    bosId = special[0]; // the post-processor puts a token first
  } else if (tc.add_bos_token === true && tc.bos_token) {
    const t = typeof tc.bos_token === 'string' ? tc.bos_token : tc.bos_token.content;
    bosId = tok.token_to_id(t) ?? null;
  }
  return {
    encode: (text: string) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids: number[]) => tok.decode(ids, { skip_special_tokens: false }),
    bosId,
  };
}

interface PastSpec {
  input: string;
  output: string;
  kvHeads: number;
  headDim: number;
}

interface IoSpec {
  inputs: Set<string>;
  idsType: 'int64' | 'int32';
  maskType: 'int64' | 'int32';
  posType: 'int64' | 'int32';
  past: PastSpec[];
  logits: string;
  /** The graph takes logits_positions and returns logits [N, V] for those flat positions only. */
  selectable: boolean;
}

function ioSpec(model: ModelProto, path: string): IoSpec {
  const g = graphOf(model);
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((i) => !inits.has(i.name!));
  const names = new Set(inputs.map((i) => i.name!));
  const typeOf = (name: string): 'int64' | 'int32' => {
    const i = inputs.find((x) => x.name === name);
    return i?.type?.tensorType?.elemType === 6 ? 'int32' : 'int64';
  };
  if (!names.has('input_ids')) throw new EngineInputError(`${path}: the graph has no input_ids input`, path);
  const outputs = new Set(g.output.map((o) => o.name!));
  if (!outputs.has('logits')) throw new EngineInputError(`${path}: the graph has no logits output`, path);
  const past: PastSpec[] = [];
  for (const i of inputs) {
    const m = i.name!.match(/^past_key_values\.(\d+)\.(key|value)$/);
    if (!m) continue;
    const dims = i.type!.tensorType!.shape!.dim!;
    const output = `present.${m[1]}.${m[2]}`;
    if (!outputs.has(output)) throw new EngineInputError(`${path}: input ${i.name} has no matching output ${output}`, path);
    if (i.type!.tensorType!.elemType !== DT_FLOAT) throw new EngineInputError(`${path}: only float32 past key values are supported (${i.name})`, path);
    past.push({ input: i.name!, output, kvHeads: toNum(dims[1].dimValue), headDim: toNum(dims[3].dimValue) });
  }
  past.sort((a, b) => a.input.localeCompare(b.input, 'en', { numeric: true }));
  return { inputs: names, idsType: typeOf('input_ids'), maskType: typeOf('attention_mask'), posType: typeOf('position_ids'), past, logits: 'logits', selectable: false };
}

function intTensor(type: 'int64' | 'int32', values: number[] | Int32Array, dims: number[]): ort.Tensor {
  if (type === 'int64') return new ort.Tensor('int64', BigInt64Array.from(values as number[], (v) => BigInt(v)), dims);
  return new ort.Tensor('int32', Int32Array.from(values), dims);
}

interface PrefixImpl extends Prefix {
  ids: number[];
  owner: object;
  /** Past key values of the prefix, batch 1 ([1, kvHeads, P, headDim] each), or null (no past support / empty). */
  past: Float32Array[] | null;
  /** Raw logits at the prefix's last position. */
  lastLogits: Float32Array | null;
  /** Sum of all raw logits over the prefix's positions. */
  logitSum: number | null;
}

export async function loadModel(dir: string, opts: LoadOptions): Promise<CausalLM> {
  const t0 = performance.now();
  const file = opts.file ?? 'model.onnx';
  const { model, path } = readModelProto(dir, file);
  // External data is named relative to the graph file (onnx/model.onnx -> onnx/model.onnx_data).
  const weightsDir = dirname(path);
  const configPath = join(dir, 'config.json');
  const config = readJson(configPath);
  const family = familyOf(config, configPath);
  const baseSizes = sizesOf(family, config);
  const map: WeightMap = mapWeights(model, family, baseSizes, path);
  const io = ioSpec(model, path);
  const tokenizer = loadTokenizer(dir);
  const external = externalDataFiles(model).map((f) => relative(dir, join(weightsDir, f)).split(sep).join('/'));
  const fingerprint = await fingerprintFolder(dir, opts.cacheDir, modelFileFilter(file, external));
  const feeding: WeightFeeding = opts.weightFeeding ?? (opts.executionProvider === 'cuda' ? 'targeted' : 'inputs');
  io.selectable = opts.selectLogits !== false && selectableLogits(model);

  // one pristine float32 copy per prunable matrix (the only copy JS keeps)
  const pristine = new Map<string, Float32Array>();
  for (const t of graphOf(model).initializer as TensorProto[]) {
    if (map.tensors.has(t.name)) pristine.set(t.name, await tensorToFloat32(t, weightsDir));
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [opts.executionProvider],
    graphOptimizationLevel: 'all',
    ...(opts.cpuMemArena === false ? { enableCpuMemArena: false } : {}),
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
  };
  const tensorOf = (w: WeightTensor, values: Float32Array): ort.Tensor => {
    const data = fromFloat32(values, w.dataType);
    return new ort.Tensor(data instanceof Float32Array ? 'float32' : w.dataType === 10 ? 'float16' : ('bfloat16' as any), data, [w.rows, w.cols]);
  };

  let session: ort.InferenceSession;
  let pristineFeeds: Record<string, ort.Tensor> = {};
  let keptModel: ModelProto | null = null;
  try {
    if (feeding === 'inputs') {
      const bytes = await weightsToInputs(model, weightsDir, new Set(map.tensors.keys()));
      session = await ort.InferenceSession.create(bytes, sessionOptions);
      for (const [name, w] of map.tensors) pristineFeeds[name] = tensorOf(w, pristine.get(name)!);
    } else {
      keptModel = model;
      session = await ort.InferenceSession.create(await serializeWith(model, weightsDir, new Map()), sessionOptions);
    }
  } catch (e) {
    if (e instanceof EngineInputError) throw e;
    const msg = (e as Error).message;
    if (opts.executionProvider !== 'cpu' && /ExecutionProvider|provider|cuda/i.test(msg)) {
      // the worker's setup, not the model: not an input error (another worker may have the provider)
      throw new Error(`ONNX Runtime cannot start the ${opts.executionProvider} execution provider for ${path}: ${msg}`);
    }
    throw new EngineInputError(`ONNX Runtime cannot load ${path}: ${msg}`, path);
  }
  const vocab = toNum(config.vocab_size);
  const sizes = { ...baseSizes, vocab };
  const cache = sharedCache(opts.cacheDir, opts.decompositionCacheBytes);
  const maxLogitsBytes = opts.maxLogitsBytes ?? 64 * 2 ** 20;
  const maxBatch = opts.maxBatch ?? 16;
  const maxKvBytes = opts.maxKvBytes ?? (opts.executionProvider === 'cuda' ? 4 * 2 ** 30 : 64 * 2 ** 20);
  const info: ModelInfo = {
    family,
    numLayers: sizes.layers,
    modules: familyModules(family),
    fingerprint,
    hasPastKeyValues: io.past.length > 0,
  };
  const loadSeconds = (performance.now() - t0) / 1000;
  const extraSessions = new Set<ort.InferenceSession>();
  // 'targeted': sessions by the set of matrices that are inputs, with users counted (LRU, evicted when unused)
  const targeted = new Map<string, { session: Promise<ort.InferenceSession>; users: number }>();
  const maxSessions = opts.maxSessions ?? 2;
  const evictTargeted = () => {
    for (const [key, entry] of targeted) {
      if (targeted.size <= maxSessions) break;
      if (entry.users > 0) continue;
      targeted.delete(key);
      void entry.session.then((s) => s.release()).catch(() => undefined);
    }
  };

  const hashes = new Map<string, string>();

  async function editedWeights(edit: WeightEdit, stats: { svdSeconds: number; hits: number; misses: number }): Promise<Map<string, Float32Array>> {
    if (edit.svd !== 'exact' && edit.svd !== 'randomized') throw new EngineInputError(`unknown svd mode "${edit.svd}"`, 'svd');
    if (!(typeof edit.ratio === 'number' && edit.ratio >= 0 && edit.ratio < 1)) throw new EngineInputError(`ratio must be in [0, 1), got ${edit.ratio}`, 'ratio');
    const targets = resolveTargets(family, baseSizes, map, edit.module, edit.layer);
    const out = new Map<string, Float32Array>();
    if (edit.ratio === 0) return out;
    for (const t of targets) {
      const w = t.tensor;
      const src = pristine.get(w.name)!;
      let dst = out.get(w.name);
      if (!dst) {
        dst = src.slice();
        out.set(w.name, dst);
      }
      const { data, m, n } = extract(src, w, t.slice);
      const k = keptRank(m, n, edit.ratio);
      // the pristine matrix never changes: hash each (tensor, slice) once per process
      const memoKey = `${w.name}\n${t.module}`;
      let hash = hashes.get(memoKey);
      if (!hash) {
        hash = await matrixHash(data, m, n);
        hashes.set(memoKey, hash);
      }
      const method = edit.svd === 'exact' ? 'exact-sgesdd' : `randomized-q${k}-niter2-seed${edit.seed}`;
      const key = `${hash}-${method}`;
      const record = (hit: boolean, s: number) => {
        if (hit) stats.hits++;
        else stats.misses++;
        stats.svdSeconds += s;
      };
      const d = await cache.get(key, () => (edit.svd === 'exact' ? exactSvd(data, m, n) : randomizedSvd(data, m, n, k, 2, `${edit.seed}:${key}`)), record);
      const approx = await reconstruct(d, k);
      scatter(dst, w, t.slice, approx);
    }
    return out;
  }

  async function serializeWith(m: ModelProto, folder: string, edited: Map<string, Float32Array>): Promise<Uint8Array> {
    // 'recreate': every prunable initializer gets raw float32 data (pristine or edited); external data inlined
    for (const t of graphOf(m).initializer as TensorProto[]) {
      const w = map.tensors.get(t.name);
      if (w) {
        const v = edited.get(t.name) ?? pristine.get(t.name)!;
        const data = fromFloat32(v, w.dataType);
        t.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        t.floatData = [];
        t.int32Data = [];
        t.externalData = [];
        t.dataLocation = 0;
      }
    }
    return weightsToInputs(m, folder, new Set());
  }

  async function withEdit(edit: WeightEdit | null): Promise<EditedLM> {
    const e0 = performance.now();
    const stats = { svdSeconds: 0, hits: 0, misses: 0 };
    const edited = edit ? await editedWeights(edit, stats) : new Map<string, Float32Array>();
    let runSession = session;
    let feeds: Record<string, ort.Tensor> = {};
    if (feeding === 'inputs') {
      feeds = { ...pristineFeeds };
      for (const [name, values] of edited) feeds[name] = tensorOf(map.tensors.get(name)!, values);
    } else if (feeding === 'targeted' && edited.size > 0) {
      const key = [...edited.keys()].sort().join('\n');
      let entry = targeted.get(key);
      if (entry) targeted.delete(key);
      else {
        const s = weightsToInputs(keptModel!, weightsDir, new Set(edited.keys())).then((bytes) => ort.InferenceSession.create(bytes, sessionOptions));
        entry = { session: s, users: 0 };
        s.catch(() => targeted.delete(key));
      }
      targeted.set(key, entry);
      entry.users++;
      const held = entry;
      try {
        runSession = await held.session;
      } catch (e) {
        held.users--;
        throw e;
      }
      for (const [name, values] of edited) feeds[name] = tensorOf(map.tensors.get(name)!, values);
      let released = false;
      return new Edited(runSession, feeds, io, sizes.vocab, stats, (performance.now() - e0) / 1000, maxLogitsBytes, maxBatch, maxKvBytes, () => {
        if (released) return;
        released = true;
        held.users--;
        evictTargeted();
      });
    } else if (edited.size > 0) {
      runSession = await ort.InferenceSession.create(await serializeWith(keptModel!, weightsDir, edited), sessionOptions);
      extraSessions.add(runSession);
    }
    return new Edited(runSession, feeds, io, sizes.vocab, stats, (performance.now() - e0) / 1000, maxLogitsBytes, maxBatch, maxKvBytes, () => {
      if (runSession !== session) {
        extraSessions.delete(runSession);
        void runSession.release();
      }
    });
  }

  return {
    info,
    tokenizer,
    withEdit,
    sizes,
    loadSeconds,
    cache,
    selectsLogits: io.selectable,
    weightFeeding: feeding,
    async dispose() {
      for (const { session: s } of targeted.values()) await (await s.catch(() => null))?.release();
      targeted.clear();
      for (const s of extraSessions) await s.release();
      extraSessions.clear();
      await session.release();
      pristine.clear();
      pristineFeeds = {};
    },
  };
}

type Visit = (row: number, at: (p: number) => Float32Array, sumRange: (from: number, to: number) => number) => void;

/** Which logits a run returns: the last real position of each row, or every real position. */
type LogitsMode = 'last' | 'all';

interface LogitsView {
  /** Raw logits of row b at position j (within the row as run). */
  at(b: number, j: number): Float32Array;
  sum(b: number, from: number, to: number): number;
}

class Edited implements EditedLM {
  forwardTokens = 0;
  paddingTokens = 0;
  readonly svdSeconds: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  private token = {};

  constructor(
    private session: ort.InferenceSession,
    private weightFeeds: Record<string, ort.Tensor>,
    private io: IoSpec,
    private vocab: number,
    stats: { svdSeconds: number; hits: number; misses: number },
    readonly editSeconds: number,
    private maxLogitsBytes: number,
    private maxBatch: number,
    private maxKvBytes: number,
    private readonly onRelease: () => void,
  ) {
    this.svdSeconds = stats.svdSeconds;
    this.cacheHits = stats.hits;
    this.cacheMisses = stats.misses;
  }

  release(): void {
    this.weightFeeds = {};
    this.onRelease();
  }

  private get hasPast(): boolean {
    return this.io.past.length > 0;
  }

  /** One run: rows right-padded to the longest, on top of `past` (batch-1 tensors expanded) of length P. */
  /** `firstPos` (mode 'all'): per row, the first position whose logits are needed (default 0: all of them). */
  private async run(
    rows: number[][],
    past: Float32Array[] | null,
    P: number,
    wantPresent: boolean,
    mode: LogitsMode,
    firstPos?: number[],
  ): Promise<{ view: LogitsView; present: Float32Array[] }> {
    const B = rows.length;
    const L = Math.max(...rows.map((r) => r.length));
    const ids = new Array<number>(B * L).fill(0);
    const mask = new Array<number>(B * (P + L)).fill(0);
    const pos = new Array<number>(B * L);
    const picked: number[] = [];
    const offsets = new Int32Array(B);
    const first = (b: number) => (firstPos ? Math.max(0, Math.min(firstPos[b], rows[b].length - 1)) : 0);
    for (let b = 0; b < B; b++) {
      const r = rows[b];
      for (let j = 0; j < L; j++) {
        ids[b * L + j] = j < r.length ? r[j] : 0;
        pos[b * L + j] = P + j;
      }
      for (let j = 0; j < P + r.length; j++) mask[b * (P + L) + j] = 1;
      offsets[b] = picked.length;
      if (mode === 'last') picked.push(b * L + r.length - 1);
      else for (let j = first(b); j < r.length; j++) picked.push(b * L + j);
      this.forwardTokens += r.length;
      this.paddingTokens += L - r.length;
    }
    const feeds: Record<string, ort.Tensor> = { ...this.weightFeeds };
    feeds.input_ids = intTensor(this.io.idsType, ids, [B, L]);
    if (this.io.inputs.has('attention_mask')) feeds.attention_mask = intTensor(this.io.maskType, mask, [B, P + L]);
    if (this.io.inputs.has('position_ids')) feeds.position_ids = intTensor(this.io.posType, pos, [B, L]);
    if (this.io.inputs.has('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', [P > 0], [1]);
    if (this.io.selectable) feeds[LOGITS_POSITIONS] = intTensor('int64', picked, [picked.length]);
    this.io.past.forEach((spec, i) => {
      const per = spec.kvHeads * P * spec.headDim;
      const data = new Float32Array(B * per);
      if (past && per > 0) for (let b = 0; b < B; b++) data.set(past[i], b * per);
      feeds[spec.input] = new ort.Tensor('float32', data, [B, spec.kvHeads, P, spec.headDim]);
    });
    const fetches = [this.io.logits, ...(wantPresent ? this.io.past.map((p) => p.output) : [])];
    const out = await this.session.run(feeds, fetches);
    const logitsT = out[this.io.logits];
    const logits = logitsT.data as Float32Array;
    const V = Number(logitsT.dims[logitsT.dims.length - 1]); // trust the graph over config.json's vocab_size
    this.vocab = V;
    let view: LogitsView;
    if (this.io.selectable) {
      view = {
        at: (b, j) => {
          const row = mode === 'last' ? (j === rows[b].length - 1 ? offsets[b] : -1) : j >= first(b) && j < rows[b].length ? offsets[b] + j - first(b) : -1;
          if (row < 0) throw new Error(`internal: logits of row ${b} position ${j} were not selected`);
          return logits.subarray(row * V, (row + 1) * V);
        },
        sum: (b, from, to) => {
          if (mode !== 'all' || from < first(b)) throw new Error('internal: a logit sum needs every position');
          return sum(logits, (offsets[b] + from) * V, (offsets[b] + to) * V);
        },
      };
    } else {
      view = {
        at: (b, j) => logits.subarray((b * L + j) * V, (b * L + j + 1) * V),
        sum: (b, from, to) => {
          if (from < first(b)) throw new Error('internal: a logit sum needs every position');
          return sum(logits, (b * L + from) * V, (b * L + to) * V);
        },
      };
    }
    return { view, present: wantPresent ? this.io.past.map((p) => out[p.output].data as Float32Array) : [] };
  }

  async prefill(ids: number[], hints?: PrefillHints): Promise<Prefix> {
    const prefix: PrefixImpl = { ids: [...ids], owner: this.token, past: null, lastLogits: null, logitSum: ids.length === 0 ? 0 : null };
    if (ids.length > 0 && this.hasPast) {
      if (hints?.logitSum) {
        // COPA's mean-logit mode: every position's logits, summed as they come, in chunks run on top of the
        // previous chunks' past key values so one run's logits stay under maxLogitsBytes.
        const step = Math.max(1, Math.floor(this.maxLogitsBytes / (this.vocab * 4)));
        let past: Float32Array[] | null = null;
        let total = 0;
        for (let at = 0; at < ids.length; at += step) {
          const chunk = ids.slice(at, at + step);
          const { view, present } = await this.run([chunk], past, at, true, 'all');
          total += view.sum(0, 0, chunk.length);
          past = present;
          if (at + chunk.length === ids.length) prefix.lastLogits = view.at(0, chunk.length - 1).slice();
        }
        prefix.past = past;
        prefix.logitSum = total;
      } else {
        // only the last position's logits; the prefix's logit sum is computed on demand (without the hint)
        const { view, present } = await this.run([ids], null, 0, true, 'last');
        prefix.past = present;
        prefix.lastLogits = view.at(0, ids.length - 1).slice();
      }
    }
    return prefix;
  }

  /** The sum of the prefix's raw logits over all its positions (runs the prefix once more, the first time only). */
  private async prefixLogitSum(prefix: PrefixImpl): Promise<void> {
    if (prefix.logitSum !== null || !this.hasPast) return;
    const { view } = await this.run([prefix.ids], null, 0, false, 'all');
    prefix.logitSum = view.sum(0, 0, prefix.ids.length);
  }

  private check(prefix: Prefix): PrefixImpl {
    const p = prefix as PrefixImpl;
    if (p.owner !== this.token) throw new Error('this prefix was made by another EditedLM (its past key values belong to other weights)');
    return p;
  }

  /**
   * Runs every sequence on top of the prefix (batched, longest first) and calls visit(i, at, sumRange) where
   * at(p) gives the raw logits at sequence position p (p = -1: the prefix's last position) and sumRange sums
   * the raw logits of sequence positions [from, to) (mode 'all' only).
   */
  private async forEach(prefix: PrefixImpl, seqs: number[][], mode: LogitsMode, visit: Visit, firstNeeded?: (k: number) => number): Promise<void> {
    const P = prefix.ids.length;
    const order = seqs.map((_, i) => i).sort((a, b) => seqs[b].length - seqs[a].length);
    const full = !this.hasPast;
    const start = full ? P : 0;
    const fromPrefix = (p: number): Float32Array => {
      if (p === -1 && prefix.lastLogits) return prefix.lastLogits;
      throw new Error('no position predicts the first token: prefix and query are both empty');
    };
    let i = 0;
    while (i < order.length) {
      if (!full && seqs[order[i]].length === 0) {
        // nothing to run: only the prefix's last logits are asked for
        visit(order[i++], fromPrefix, () => 0);
        continue;
      }
      const L = start + seqs[order[i]].length;
      const perRow = Math.max(1, (mode === 'all' ? L : 1) * this.vocab * 4);
      const kvPerRow = full ? 0 : this.io.past.reduce((a, sp) => a + sp.kvHeads * sp.headDim * 4, 0) * (P + L);
      const byKv = kvPerRow > 0 ? Math.floor(this.maxKvBytes / kvPerRow) : Infinity;
      const B = Math.max(1, Math.min(this.maxBatch, Math.floor(this.maxLogitsBytes / perRow), byKv, order.length - i));
      const chunk = order.slice(i, i + B);
      i += B;
      const batch = chunk.filter((k) => full || seqs[k].length > 0);
      for (const k of chunk) if (!batch.includes(k)) visit(k, fromPrefix, () => 0);
      const rows = batch.map((k) => (full ? [...prefix.ids, ...seqs[k]] : seqs[k]));
      if (rows.some((r) => r.length === 0)) throw new Error('no position predicts the next token: prefix and query are both empty');
      // nopast + mean logits: the row's prefix positions are needed too, so 'all' covers them
      const firstPos = firstNeeded && batch.map((k) => Math.max(0, start + firstNeeded(k)));
      const { view } = await this.run(rows, full ? null : prefix.past, full ? 0 : P, false, mode, firstPos);
      if (full && P > 0 && mode === 'all' && !firstPos && prefix.logitSum === null) {
        prefix.logitSum = view.sum(0, 0, P);
        prefix.lastLogits = view.at(0, P - 1).slice();
      }
      batch.forEach((k, b) => {
        visit(
          k,
          (p) => {
            const q = start + p;
            return q >= 0 ? view.at(b, q) : fromPrefix(p);
          },
          (from, to) => view.sum(b, start + from, start + to),
        );
      });
    }
  }

  async nextTokenLogprobs(prefix: Prefix, queries: number[][]): Promise<Float32Array[]> {
    const p = this.check(prefix);
    const out = new Array<Float32Array>(queries.length);
    await this.forEach(p, queries, 'last', (i, at) => {
      out[i] = logSoftmax(at(queries[i].length - 1));
    });
    return out;
  }

  async continuationScores(
    prefix: Prefix,
    items: { context: number[]; continuation: number[] }[],
    hints?: ContinuationHints,
  ): Promise<{ logprobs: number[]; meanLogit: number }[]> {
    const p = this.check(prefix);
    for (const it of items) if (it.continuation.length === 0) throw new EngineInputError('empty continuation', 'continuation');
    const needMean = hints?.meanLogit !== false;
    if (needMean) await this.prefixLogitSum(p);
    const seqs = items.map((it) => [...it.context, ...it.continuation]);
    const out = new Array<{ logprobs: number[]; meanLogit: number }>(items.length);
    const pending: { i: number; rowSum: number }[] = [];
    await this.forEach(p, seqs, 'all', (i, at, sumRange) => {
      const c = items[i].context.length;
      const cont = items[i].continuation;
      const logprobs = cont.map((tok, j) => {
        const row = at(c + j - 1);
        return row[tok] - logSumExp(row);
      });
      out[i] = { logprobs, meanLogit: needMean ? 0 : NaN };
      if (needMean) pending.push({ i, rowSum: sumRange(0, seqs[i].length) });
    }, needMean ? undefined : (k) => items[k].context.length - 1);
    const P = p.ids.length;
    for (const { i, rowSum } of pending) {
      out[i].meanLogit = ((p.logitSum ?? 0) + rowSum) / ((P + seqs[i].length) * this.vocab);
    }
    return out;
  }
}

function sum(a: Float32Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i];
  return s;
}

function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - max);
  return max + Math.log(s);
}

function logSoftmax(row: Float32Array): Float32Array {
  const lse = logSumExp(row);
  const out = new Float32Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
  return out;
}

/** Exposed for tests: the module map as the loader sees it. */
export { familyModules, resolveTargets, mapWeights, readModelProto, onnx };
