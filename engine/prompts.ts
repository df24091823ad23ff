/**
 * The exact prompt of one example of a cell: the text the model reads, its token ids and the scored
 * continuations, rebuilt from the dataset files and the demonstration rows a cell recorded
 * (CellOutcome.sample). Tokenization is the one evaluate.ts uses (promptIds), so the ids are the ones
 * the model saw.
 */
import { locateModel } from './hub.ts';
import { DatasetCache, type PreparedDataset, type SplitName } from './data/index.ts';
import type { ResolvedTask } from './tasks/definitions.ts';
import { renderChoices, renderDemos, renderQuery, type Row } from './tasks/render.ts';
import { sampleCell, sampleRecord } from './tasks/sampling.ts';
import { EngineInputError, type CellRequest, type CellSampleRecord, type ModelSpec } from './types.ts';
import type { LMTokenizer } from './evaluate.ts';

/** `[BOS] + encode(text)`: how every prompt is tokenized (whole, as the paper does). */
export function promptIds(tokenizer: LMTokenizer): (text: string) => number[] {
  const bos = tokenizer.bosId !== null ? [tokenizer.bosId] : [];
  return (text) => (bos.length ? bos.concat(tokenizer.encode(text)) : tokenizer.encode(text));
}

/**
 * A continuation's ids as lm-evaluation-harness takes them: the ids of context + continuation past
 * the context's own ids (so a token merging across the boundary is read the way the whole text is).
 */
export function continuationIds(full: (text: string) => number[], context: string, contextIds: number[], continuation: string): number[] {
  return full(context + continuation).slice(contextIds.length);
}

/** A cell's draw and split, enough to rebuild the text of each of its examples. */
export type PromptSource = Pick<CellRequest, 'dataset' | 'split' | 'shots' | 'seed' | 'sizes'> & {
  /** The cell's stored draw; absent: drawn again from the dataset (the same rows for the same engine version). */
  record?: Pick<CellSampleRecord, 'demonstrations' | 'examplesSplit'>;
};

export interface PromptRequest extends PromptSource {
  model: ModelSpec;
  /** The example's row in its split file (ExampleOutcome.index, examples.idx). */
  example: number;
}

/** The text of one example: its row, class, the context the model reads and each class's scored continuation. */
export interface ExampleText {
  doc: Row;
  label: number;
  context: string;
  continuations: string[];
}

export interface CellTexts {
  task: ResolvedTask;
  datasetFingerprint: string;
  demonstrations: { rows: number[]; labels: number[] };
  /** The split file the examples' rows are in. */
  examples: { split: SplitName; file: string };
  /** The example at this row of the examples' split file. */
  example(row: number): ExampleText;
}

export interface ExamplePrompt {
  task: string;
  kind: ResolvedTask['kind'];
  classes: string[];
  datasetFingerprint: string;
  /** The example's split file and row, and its class. */
  example: { split: string; file: string; row: number; label: number };
  demonstrations: { rows: number[]; labels: number[] };
  /** Classification: demonstrations + query. Multiple choice: demonstrations + the shared context. */
  text: string;
  ids: number[];
  /** The scored continuation of each class: the verbalizer (one token) or the choice's text. */
  candidates: { text: string; ids: number[] }[];
}

function recordedDemos(ds: PreparedDataset, rows: number[], labels: number[]): { row: Row; label: number }[] {
  const train = ds.splits.train!;
  return rows.map((r, k) => {
    if (!Number.isInteger(r) || r < 0 || r >= train.rows.length || train.labels![r] !== labels[k]) {
      throw new EngineInputError(`${train.source}: demonstration row ${r} is not the row the cell recorded (the dataset changed since)`, train.source);
    }
    return { row: train.rows[r], label: labels[k] };
  });
}

/** The texts of a cell's examples, from the dataset files and its draw (`datasets` caches the parsed files across cells). */
export async function cellTexts(source: PromptSource, datasets: DatasetCache): Promise<CellTexts> {
  const ds = await datasets.get(source.dataset);
  const task = ds.task;
  const drawn = source.record ?? sampleRecord(sampleCell(ds, { split: source.split, shots: source.shots, seed: source.seed, sizes: source.sizes ?? {} }));
  const { rows, labels: demoLabels } = drawn.demonstrations;
  const demoText = renderDemos(task, recordedDemos(ds, rows, demoLabels));
  const split = ds.splits[drawn.examplesSplit];
  if (!split || split.labels === null) throw new EngineInputError(`dataset "${source.dataset.name}" has no labelled ${drawn.examplesSplit} split`, drawn.examplesSplit);
  const labels = split.labels;
  return {
    task,
    datasetFingerprint: ds.fingerprint,
    demonstrations: { rows, labels: demoLabels },
    examples: { split: split.split, file: split.source },
    example(row) {
      const doc = split.rows[row];
      if (doc === undefined) throw new EngineInputError(`no example ${row} in the ${split.split} split of dataset "${source.dataset.name}" (${split.rows.length} rows)`, 'example');
      if (task.kind === 'classification') return { doc, label: labels[row], context: demoText + renderQuery(task, doc), continuations: task.verbalizers! };
      const { context, continuations } = renderChoices(task, doc);
      return { doc, label: labels[row], context: demoText + context, continuations };
    },
  };
}

interface Loaders {
  cacheDir: string;
  taskDirs?: string[];
  /** A model folder's tokenizer (engine/model/tokenizer.ts loadTokenizer). */
  tokenizer(dir: string): LMTokenizer;
}

/** The prompt of one example of a cell, exactly as the engine builds and tokenizes it. */
export async function examplePrompt(request: PromptRequest, loaders: Loaders): Promise<ExamplePrompt> {
  const texts = await cellTexts(request, new DatasetCache(loaders.cacheDir, { taskDirs: loaders.taskDirs ?? [] }));
  const { label, context, continuations } = texts.example(request.example);
  const tokenizer = loaders.tokenizer(locateModel(request.model).dir);
  const full = promptIds(tokenizer);
  const ids = full(context);
  const task = texts.task;
  return {
    task: task.name,
    kind: task.kind,
    classes: [...task.classes],
    datasetFingerprint: texts.datasetFingerprint,
    example: { split: texts.examples.split, file: texts.examples.file, row: request.example, label },
    demonstrations: texts.demonstrations,
    text: context,
    ids,
    candidates:
      task.kind === 'classification'
        ? continuations.map((v) => ({ text: v, ids: tokenizer.encode(v) }))
        : continuations.map((c) => ({ text: c, ids: continuationIds(full, context, ids, c) })),
  };
}
