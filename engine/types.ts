/**
 * The engine's public contract: what one cell is, what evaluating it returns, and the errors it
 * raises. It imports nothing outside engine/: the orchestrator's spec schema (sweepspec/) produces
 * these shapes, and the activities depend on this file only, through engine/index.ts.
 */
import type { ModuleName, Protocol } from './vocabulary.ts';

/** A model: a folder in the layout Hugging Face's ONNX exporters write, or a Hub id found in the local Hugging Face cache (engine/hub.ts). */
export interface ModelSpec {
  name: string;
  /** A folder (config.json, tokenizer.json and the ONNX file), or a Hub id `org/name[@revision]` in the local cache. */
  path: string;
  /** The ONNX file within the folder; default `model.onnx`, else `onnx/model.onnx` (the onnx-community layout). */
  file?: string;
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
  /** A task of the registry by name or alias (engine/tasks/registry.ts), or a custom task. Required with `path`; overrides a recipe's own task when given. */
  task?: string | CustomTask;
  path?: string;
  recipe?: string;
  /** Folders of task files besides the builtin one and the engine's (the sweep spec's `taskDirs`). */
  taskDirs?: string[];
  /** The protocol the task is resolved under (the sweep spec's `protocol`); absent: the default protocol. */
  protocol?: Protocol;
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

/** Which rows made a cell's prompts: enough to rebuild every prompt from the dataset files. */
export interface CellSampleRecord {
  /** Demonstrations actually used and the seed of the shuffle that drew them (the task's defaults when the request gives none). */
  shots: number;
  seed: number;
  /** Split file the demonstrations come from (always the train split) and their row indices in prompt order, with their class. */
  demonstrations: { split: 'train'; rows: number[]; labels: number[] };
  /** Split file the examples' indices (ExampleOutcome.index) refer to. */
  examplesSplit: 'train' | 'validation' | 'test';
}

/** What computed a cell: the numerics depend on it. */
export interface CellRuntime {
  executionProvider: 'cpu' | 'cuda';
  /** Element type the runtime computed the weights in ('float32' for 16-bit weights widened on CPU). */
  weightDtype: string;
  /** ONNX Runtime version ("unknown" for a model layer that does not say). */
  onnxruntime: string;
}

export interface CellOutcome {
  /** The cell's accuracy under its scoring option. */
  accuracy: number;
  /** Length-normalised accuracy (multiple choice only). */
  accuracyNorm: number | null;
  /** Macro-averaged F1 over the task's classes (classification only). */
  f1Macro: number | null;
  n: number;
  examples: ExampleOutcome[];
  sample: CellSampleRecord;
  cost: CellCost;
  runtime: CellRuntime;
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
  /** The resolved task's name (a registry name, never an alias; "custom" for an inline task). */
  task: string;
  /** Class names in label order (choices for multiple choice). */
  classes: string[];
  kind: 'classification' | 'multiple-choice';
  /** The task's default seed (used when a request gives none). */
  defaultSeed: number;
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
  /** Upper bound of the decompositions kept on disk under cacheDir (least recently used go first); default 20 GiB. */
  decompositionDiskBytes?: number;
  /** Upper bound of the captured hidden states a worker process spills to disk under cacheDir for layer
   *  slices (whole prompt sets dropped, least recently used first); default 8 GiB. */
  statesDiskBytes?: number;
  /** ONNX Runtime intra-op threads; undefined: its default. */
  threads?: number;
  /** Folders of task files besides the builtin one (e.g. from ICL_SWEEP_TASK_DIRS); a dataset's own taskDirs come after them. */
  taskDirs?: string[];
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
