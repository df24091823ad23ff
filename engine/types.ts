/**
 * The engine's public contract: what one cell is, what evaluating it returns, and the errors it
 * raises. It imports nothing outside engine/: the orchestrator's spec schema (sweepspec/) produces
 * these shapes, and the activities depend on this file only, through engine/index.ts.
 */
import type { BuiltinTask, ModuleName } from './vocabulary.ts';

/** A model folder in the layout Hugging Face's ONNX exporters write (model.onnx, config.json, tokenizer.json). */
export interface ModelSpec {
  name: string;
  path: string;
}

/** A task for any labelled dataset: a demonstration template and one single-token verbalizer per label. */
export interface CustomTask {
  /** One demonstration with {field} placeholders and exactly one {answer}; the query is the text before {answer}. */
  template: string;
  /** Label value (as it appears in the data) -> verbalizer word. */
  answers: Record<string, string>;
  labelField: string;
}

/** A dataset: a folder with train / validation / test files and its task, or a named recipe. */
export interface DatasetSpec {
  name: string;
  /** Required with `path`; overrides a recipe's own task when given. */
  task?: BuiltinTask | CustomTask;
  path?: string;
  recipe?: string;
}

export interface Scoring {
  /** Summed log-likelihood (acc), length-normalised (acc_norm), or the paper's mean of raw logits. */
  multipleChoice: 'loglik' | 'loglik-norm' | 'mean-logits';
  /** Exact truncated SVD or the paper's randomized SVD (q = k, niter = 2, seeded). */
  svd: 'exact' | 'randomized';
}

export type Split = 'validation' | 'test';

/** Everything one cell's result depends on, besides the model and dataset files themselves. */
export interface CellRequest {
  model: ModelSpec;
  dataset: DatasetSpec;
  module: ModuleName;
  /** -1: every layer at once. */
  layer: number;
  ratio: number;
  split: Split;
  /** Demonstrations; undefined: the protocol's number for the task. */
  shots?: number;
  /** undefined: the protocol's seed for the task. */
  seed?: number;
  sizes: { validationPerClass?: number; testPerClass?: number };
  scoring: Scoring;
}

export interface ExampleOutcome {
  /** Stable index of the example within its split, as the engine draws it (same for every cell of a dataset). */
  index: number;
  label: number;
  prediction: number;
  /** One score per class or choice (log-probabilities, or mean logits in the paper's COPA mode). */
  scores: number[];
}

export interface CellCost {
  /** Tokens actually run through the model for this cell (prefix once + queries + choices). */
  forwardTokens: number;
  /** Demonstration tokens + sum of query tokens (+ sum of choice tokens): the floor forwardTokens is measured against. */
  promptTokens: number;
  demoTokens: number;
  seconds: number;
  svdSeconds: number;
  decompositionCacheHits: number;
  decompositionCacheMisses: number;
  modelLoadSeconds: number;
}

export interface CellOutcome {
  /** The cell's accuracy under its scoring option. */
  accuracy: number;
  /** Length-normalised accuracy (multiple choice only). */
  accuracyNorm: number | null;
  n: number;
  examples: ExampleOutcome[];
  cost: CellCost;
}

export interface ModelInfo {
  family: 'gpt2' | 'llama' | 'gpt_neox' | 'gptj';
  numLayers: number;
  /** Module names (including groups) this family supports. */
  modules: ModuleName[];
  /** Content hash of the model's files (not of its path or name). */
  fingerprint: string;
  hasPastKeyValues: boolean;
  /** Element type of the prunable matrices as the export stores them: 'float32', 'float16' or 'bfloat16'
   *  (several joined with '+' when they differ). Part of every cell key. */
  weightDtype: string;
}

export interface DatasetInfo {
  /** Content hash of the data files and the resolved task definition. */
  fingerprint: string;
  /** Class names in label order (choices for multiple choice). */
  classes: string[];
  kind: 'classification' | 'multiple-choice';
}

export interface EvaluateOptions {
  /** Called as examples finish, e.g. to heartbeat. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Run every prompt in full instead of reusing the demonstration prefix's past key values (for checks and benchmarks). */
  reusePrefix?: boolean;
}

export interface EngineOptions {
  executionProvider: 'cpu' | 'cuda';
  /** Where decompositions and prepared datasets are cached on disk. */
  cacheDir: string;
  /** Models kept loaded at once (least recently used is dropped). */
  maxModels: number;
  /** Upper bound of the in-memory decomposition cache. */
  decompositionCacheBytes: number;
  /** ONNX Runtime intra-op threads; undefined: its default. */
  threads?: number;
  /**
   * Folders the spec's model and dataset paths must lie under (symlinks followed); a path elsewhere is
   * refused as "outside the allowed roots". undefined: any path (a library caller's own files).
   */
  dataRoots?: readonly string[];
  /** Largest example and dataset the engine reads (engine/data/files.ts DEFAULT_LIMITS when undefined). */
  datasetLimits?: { exampleBytes: number; datasetBytes: number };
  /** Bound of the parsed datasets kept in memory, in bytes (default 1 GiB). */
  datasetCacheBytes?: number;
  /**
   * Called after each model load this engine does, whoever caused it (evaluate, or describeModel during a
   * sweep's prepare step), with the seconds it took and the model folder; not called for a model already
   * loaded. E.g. the worker records metrics.modelLoad(seconds). Errors it throws are ignored.
   */
  onModelLoad?: (seconds: number, modelDir: string) => void;
}

/** What every cell of one (model, dataset, split) shares: checked once by Engine.checkCells. */
export type CellsCheck = Pick<CellRequest, 'model' | 'dataset' | 'split' | 'shots' | 'seed' | 'sizes'>;

export interface Engine {
  evaluate(request: CellRequest, options?: EvaluateOptions): Promise<CellOutcome>;
  describeModel(model: ModelSpec): Promise<ModelInfo>;
  describeDataset(dataset: DatasetSpec): Promise<DatasetInfo>;
  /**
   * Checks at once what would fail every cell of a (model, dataset, split): enough examples for the
   * shots and sizes, each verbalizer one token of the model's tokenizer, every prompt within the
   * model's context. Throws EngineInputError naming the problem; the tokenized prompts are kept for
   * the cells that follow.
   */
  checkCells(check: CellsCheck): Promise<void>;
  close(): Promise<void>;
}

/**
 * Bad input: a missing or corrupt model, an unknown module for a family, a dataset whose labels do
 * not match its task, too few examples. Retrying cannot help; the message names what is wrong.
 */
export class EngineInputError extends Error {
  override name = 'EngineInputError';
  constructor(
    message: string,
    /** What is at fault: a file path, a field, a module name. */
    readonly subject?: string,
  ) {
    super(message);
  }
}
