/**
 * Which rows a cell uses: demonstrations, then the validation or test examples. Deterministic
 * for (dataset files, task, shots, seed, sizes); see README.md beside this file.
 */
import type { PreparedDataset, PreparedSplit, Row, SplitName } from '../data/index.ts';
import { EngineInputError, type Split } from '../types.ts';
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

  // Validation: the next rows of each class (disjoint from the demonstrations).
  const v = req.sizes.validationPerClass;
  const vCounts = rest.map((l) => (v === undefined ? Math.min(task.defaults.validationPerClass, l.length) : v));
  if (v !== undefined) {
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
    const idx = interleaveLists(rest, vCounts, task.interleave);
    return { ...base, examples: idx.map((i) => ({ index: i, label: trainLabels[i], row: train.rows[i] })), source: { split: 'train', file: train.source } };
  }

  // Test: a held-out labelled split, else what is left of train.
  const candidates: SplitName[] = task.testSplit === 'validation' ? ['validation'] : ['test', 'validation'];
  const held = candidates.map((s) => ds.splits[s]).find(labelled);
  const t = req.sizes.testPerClass;
  if (held) {
    const labels = held.labels;
    if (t === undefined) {
      return { ...base, examples: held.rows.map((row, i) => ({ index: i, label: labels[i], row })), source: { split: held.split, file: held.source } };
    }
    const hl = byClass(shuffledIndices(held.rows.length, seed), labels, C);
    for (let c = 0; c < C; c++) {
      if (hl[c].length < t) {
        throw new EngineInputError(
          `${held.source}: field "${field}": too few examples of class "${task.classes[c]}" for testPerClass ${t} (the ${held.split} split has ${hl[c].length})`,
          held.source,
        );
      }
    }
    const idx = interleaveLists(hl, hl.map(() => t), task.interleave);
    return { ...base, examples: idx.map((i) => ({ index: i, label: labels[i], row: held.rows[i] })), source: { split: held.split, file: held.source } };
  }
  const left = rest.map((l, c) => l.slice(vCounts[c]));
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
