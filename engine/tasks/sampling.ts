/**
 * Which rows a cell uses: demonstrations, then the validation or test examples. Deterministic
 * for (dataset files, task, shots, seed, sizes); see README.md beside this file.
 */
import type { PreparedDataset, PreparedSplit, Row, SplitName } from '../data/index.ts';
import { EngineInputError, type CellSampleRecord, type Split } from '../types.ts';
import { shuffledIndices } from '../random.ts';

export interface SampleRequest {
  split: Split;
  /** undefined: the task's default. */
  shots?: number;
  /** undefined: the task's default. */
  seed?: number;
  sizes: { validationPerClass?: number; testPerClass?: number };
}

export interface SampledExample {
  /** Row index within `source.split` (the file's row order, shards concatenated). */
  index: number;
  /** Class index. */
  label: number;
  row: Row;
}

export interface CellSample {
  demos: SampledExample[];
  examples: SampledExample[];
  /** The split file the examples' indices refer to. */
  source: { split: SplitName; file: string };
  shots: number;
  seed: number;
}

/** The rows a cell's prompts were built from (stored with its result, so a prompt can be shown again). */
export function sampleRecord(sample: CellSample): CellSampleRecord {
  return {
    shots: sample.shots,
    seed: sample.seed,
    demonstrations: { split: 'train', rows: sample.demos.map((d) => d.index), labels: sample.demos.map((d) => d.label) },
    examplesSplit: sample.source.split,
  };
}

function needCounts(interleave: number[], shots: number, numClasses: number): number[] {
  const need = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < shots; i++) need[interleave[i % interleave.length]]++;
  return need;
}

/** Round-robin over classes (in `order`), taking up to counts[c] from lists[c]. */
function interleaveLists(lists: number[][], counts: number[], order: number[]): number[] {
  const out: number[] = [];
  const max = Math.max(0, ...counts);
  for (let r = 0; r < max; r++) for (const c of order) if (r < counts[c]) out.push(lists[c][r]);
  return out;
}

function byClass(order: number[], labels: number[], numClasses: number): number[][] {
  const lists: number[][] = Array.from({ length: numClasses }, () => []);
  for (const i of order) lists[labels[i]].push(i);
  return lists;
}

function labelled(split: PreparedSplit | undefined): split is PreparedSplit & { labels: number[] } {
  return split !== undefined && split.labels !== null;
}

/**
 * The examples of a held-out labelled split: every row in file order without a size (the paper
 * evaluates whole splits), else the split shuffled with the seed and `size` rows per class, interleaved.
 */
function heldExamples(
  task: PreparedDataset['task'],
  held: PreparedSplit & { labels: number[] },
  size: number | undefined,
  sizeName: string,
  seed: number,
): Pick<CellSample, 'examples' | 'source'> {
  const labels = held.labels;
  const source = { split: held.split, file: held.source };
  if (size === undefined) return { examples: held.rows.map((row, i) => ({ index: i, label: labels[i], row })), source };
  const lists = byClass(shuffledIndices(held.rows.length, seed), labels, task.classes.length);
  lists.forEach((list, c) => {
    if (list.length < size) {
      throw new EngineInputError(
        `${held.source}: field "${task.labelField}": too few examples of class "${task.classes[c]}" for ${sizeName} ${size} (the ${held.split} split has ${list.length})`,
        held.source,
      );
    }
  });
  const idx = interleaveLists(lists, lists.map(() => size), task.interleave);
  return { examples: idx.map((i) => ({ index: i, label: labels[i], row: held.rows[i] })), source };
}

/** Picks the demonstrations and the examples of one cell. Throws EngineInputError when the data has too few examples. */
export function sampleCell(ds: PreparedDataset, req: SampleRequest): CellSample {
  const task = ds.task;
  const C = task.classes.length;
  const shots = req.shots ?? task.defaults.shots;
  const seed = req.seed ?? task.defaults.seed;
  if (!Number.isInteger(shots) || shots < 0) throw new EngineInputError(`shots must be a non-negative integer, got ${shots}`, 'shots');
  if (!Number.isSafeInteger(seed) || seed < 0) throw new EngineInputError(`seed must be a non-negative integer, got ${seed}`, 'seed');
  for (const [k, v] of Object.entries(req.sizes)) {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw new EngineInputError(`sizes.${k} must be a positive integer, got ${v}`, `sizes.${k}`);
  }
  const train = ds.splits.train!;
  const trainLabels = train.labels!;
  const field = task.labelField;
  const perm = shuffledIndices(train.rows.length, seed);
  const lists = byClass(perm, trainLabels, C);

  // Demonstrations: the first rows of each class in shuffled order, interleaved in the task's class order.
  const need = needCounts(task.interleave, shots, C);
  for (let c = 0; c < C; c++) {
    if (lists[c].length < need[c]) {
      throw new EngineInputError(
        `${train.source}: field "${field}": too few examples of class "${task.classes[c]}" for ${shots} demonstrations ` +
          `(need ${need[c]}, the train split has ${lists[c].length})`,
        train.source,
      );
    }
  }
  const demoIdx = interleaveLists(lists, need, task.interleave);
  const rest = lists.map((l, c) => l.slice(need[c]));
  const demos = demoIdx.map((i) => ({ index: i, label: trainLabels[i], row: train.rows[i] }));

  // Validation: the next rows of each class (disjoint from the demonstrations), or the dataset's own
  // validation split when the task says so and the folder has it labelled.
  const heldValidation = task.validationSplit === 'validation' && labelled(ds.splits.validation) ? ds.splits.validation : undefined;
  const v = req.sizes.validationPerClass;
  const vCounts = rest.map((l) => (v === undefined ? Math.min(task.defaults.validationPerClass, l.length) : v));
  if (v !== undefined && !heldValidation) {
    for (let c = 0; c < C; c++) {
      if (rest[c].length < v) {
        throw new EngineInputError(
          `${train.source}: field "${field}": too few examples of class "${task.classes[c]}" for validationPerClass ${v} ` +
            `(the train split has ${rest[c].length} besides the ${need[c]} demonstrations)`,
          train.source,
        );
      }
    }
  }
  const base = { demos, shots, seed };
  if (req.split === 'validation') {
    if (heldValidation) return { ...base, ...heldExamples(task, heldValidation, v, 'validationPerClass', seed) };
    const idx = interleaveLists(rest, vCounts, task.interleave);
    return { ...base, examples: idx.map((i) => ({ index: i, label: trainLabels[i], row: train.rows[i] })), source: { split: 'train', file: train.source } };
  }

  // Test: a held-out labelled split (never the one serving as validation), else what is left of train.
  const candidates: SplitName[] = task.testSplit === 'validation' ? ['validation'] : task.testSplit === 'train' ? [] : ['test', 'validation'];
  const held = candidates.map((s) => ds.splits[s]).find((s): s is PreparedSplit & { labels: number[] } => labelled(s) && s !== heldValidation);
  const t = req.sizes.testPerClass;
  if (held) return { ...base, ...heldExamples(task, held, t, 'testPerClass', seed) };
  // With the validation set drawn from train, the rows after it; with a held validation split, every train row after the demonstrations.
  const left = heldValidation ? rest : rest.map((l, c) => l.slice(vCounts[c]));
  let idx: number[];
  if (t === undefined) {
    idx = left.flat().sort((a, b) => a - b);
  } else {
    for (let c = 0; c < C; c++) {
      if (left[c].length < t) {
        throw new EngineInputError(
          `${train.source}: field "${field}": too few examples of class "${task.classes[c]}" for testPerClass ${t} ` +
            `(no labelled test or validation split; the train split has ${left[c].length} besides demonstrations and validation)`,
          train.source,
        );
      }
    }
    idx = interleaveLists(left, left.map(() => t), task.interleave);
  }
  if (idx.length === 0) throw new EngineInputError(`${train.source}: no examples left for the test split`, train.source);
  return { ...base, examples: idx.map((i) => ({ index: i, label: trainLabels[i], row: train.rows[i] })), source: { split: 'train', file: train.source } };
}
