/**
 * The exact prompt of one example of a cell: the text the model reads, its token ids and the scored
 * continuations, rebuilt from the dataset files and the demonstration rows a cell recorded
 * (CellOutcome.sample). Tokenization is the one evaluate.ts uses (promptIds), so the ids are the ones
 * the model saw.
 */
import { locateModel } from './hub.ts';
import { DatasetCache, type PreparedDataset } from './data/index.ts';
import type { ResolvedTask } from './tasks/definitions.ts';
import { renderChoices, renderDemos, renderQuery, type Row } from './tasks/render.ts';
import { sampleCell } from './tasks/sampling.ts';
import { EngineInputError, type CellRequest, type CellSampleRecord } from './types.ts';
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

export interface PromptRequest extends Pick<CellRequest, 'model' | 'dataset' | 'split' | 'shots' | 'seed' | 'sizes'> {
  /** The example's row in its split file (ExampleOutcome.index, examples.idx). */
  example: number;
  /** The cell's stored draw; absent: drawn again from the dataset (the same rows for the same engine version). */
  record?: Pick<CellSampleRecord, 'demonstrations' | 'examplesSplit'>;
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

interface Loaders {
  cacheDir: string;
  taskDirs?: string[];
  /** A model folder's tokenizer (engine/model's loadTokenizer). */
  tokenizer(dir: string): LMTokenizer;
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

/** The prompt of one example of a cell, exactly as the engine builds and tokenizes it. */
export async function examplePrompt(request: PromptRequest, loaders: Loaders): Promise<ExamplePrompt> {
  const ds = await new DatasetCache(loaders.cacheDir, 1, loaders.taskDirs ?? []).get(request.dataset);
  const task = ds.task;
  const drawn = request.record
    ? { rows: request.record.demonstrations.rows, labels: request.record.demonstrations.labels, examplesSplit: request.record.examplesSplit }
    : (({ demos, source }) => ({ rows: demos.map((d) => d.index), labels: demos.map((d) => d.label), examplesSplit: source.split }))(
        sampleCell(ds, { split: request.split, shots: request.shots, seed: request.seed, sizes: request.sizes ?? {} }),
      );
  const demos = recordedDemos(ds, drawn.rows, drawn.labels);
  const split = ds.splits[drawn.examplesSplit];
  const row = split?.rows[request.example];
  if (!split || row === undefined || split.labels === null) {
    throw new EngineInputError(`no labelled example ${request.example} in the ${drawn.examplesSplit} split of dataset "${request.dataset.name}"`, 'example');
  }
  const tokenizer = loaders.tokenizer(locateModel(request.model).dir);
  const full = promptIds(tokenizer);
  const demoText = renderDemos(task, demos);
  const base = {
    task: task.name,
    kind: task.kind,
    classes: [...task.classes],
    datasetFingerprint: ds.fingerprint,
    example: { split: split.split, file: split.source, row: request.example, label: split.labels[request.example] },
    demonstrations: { rows: drawn.rows, labels: drawn.labels },
  };
  if (task.kind === 'classification') {
    const text = demoText + renderQuery(task, row);
    return { ...base, text, ids: full(text), candidates: task.verbalizers!.map((v) => ({ text: v, ids: tokenizer.encode(v) })) };
  }
  const { context, continuations } = renderChoices(task, row);
  const text = demoText + context;
  const ids = full(text);
  return { ...base, text, ids, candidates: continuations.map((c) => ({ text: c, ids: continuationIds(full, text, ids, c) })) };
}
