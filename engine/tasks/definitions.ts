/**
 * The resolved task: one plain, JSON-serialisable shape for the task files of the registry
 * (registry.ts, builtin/*.yaml) and for the spec's inline custom task. The resolved definition is
 * hashed into the dataset fingerprint, so any change to a template, a verbalizer or a default
 * changes every cell key that depends on it.
 *
 * Templates use `{field}` placeholders (a column of the dataset) and `{answer}`.
 * See README.md beside this file for the rules (splits, sampling, indices, scoring).
 */
import type { CustomTask } from '../types.ts';
import { EngineInputError } from '../types.ts';

export interface ClassificationQuery {
  /** Rendered, then (when `strip`) trimmed of leading/trailing whitespace like Python's str.strip(). */
  body: string;
  strip: boolean;
  /** Appended after the (stripped) body. */
  suffix: string;
}

export interface ResolvedTask {
  /** The task's name in the registry (never an alias), or "custom" for a spec's inline task. */
  name: string;
  kind: 'classification' | 'multiple-choice';
  /** Columns every row must have (besides the label). */
  fields: string[];
  labelField: string;
  /** Class names in label order (multiple choice: the choice fields). */
  classes: string[];
  /** Raw label as it appears in the data (stringified: 1 and "1" are the same) -> class index. */
  labels: Record<string, number>;
  /** Classification: the scored next token of each class, with its leading space. Multiple choice: null. */
  verbalizers: string[] | null;
  /** One demonstration; `{answer}` is replaced by demoAnswers[class] (classification) or the correct choice's text (multiple choice). */
  demo: string;
  /** Classification: the word written in a demonstration for each class (the paper writes "Mi" for CB's "Maybe"). */
  demoAnswers: string[] | null;
  /** Classification: the query (demonstration without its answer). */
  query: ClassificationQuery | null;
  /** Multiple choice: each candidate = context + continuation with `{choice}` = the candidate's text. */
  choices: { context: string; continuation: string; fields: string[] } | null;
  /** Class order in which demonstrations are interleaved (the paper puts its "positive" class first). */
  interleave: number[];
  defaults: {
    shots: number;
    seed: number;
    /** Upper bound per class when the request gives no size: fewer are taken where the data has fewer. */
    validationPerClass: number;
  };
  /**
   * 'validation': the dataset's validation split is the test set (super_glue). 'auto': test split when
   * labelled, else validation. 'train': the train rows left after demonstrations and validation.
   */
  testSplit: 'validation' | 'auto' | 'train';
  /** 'validation': the validation set is the dataset's validation split (absent: drawn from train). */
  validationSplit?: 'validation';
}

/** Defaults of a user-defined task. */
export const CUSTOM_DEFAULTS: ResolvedTask['defaults'] = { shots: 10, seed: 42, validationPerClass: 200 };

const PLACEHOLDER = /\{([^{}]+)\}/g;

export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);
}

/**
 * A user-defined task. The query is the template's text before `{answer}`, less one trailing
 * space when there is one; a demonstration is that query + " " + word + the text after
 * `{answer}`. So the scored continuation (the verbalizer " word") is exactly what the
 * demonstrations show: "Sentiment: {answer}\n" and "Sentiment:{answer}\n" both give
 * demonstrations "Sentiment: good\n" and the query "Sentiment:".
 */
export function resolveCustomTask(task: CustomTask): ResolvedTask {
  const parts = task.template.split('{answer}');
  if (parts.length !== 2) throw new EngineInputError('custom task template must contain {answer} exactly once', 'template');
  const [before, after] = parts;
  const query = before.endsWith(' ') ? before.slice(0, -1) : before;
  const fields = [...new Set(placeholders(task.template).filter((f) => f !== 'answer'))];
  const labelField = task.labelField ?? 'label';
  const entries = Object.entries(task.answers);
  if (entries.length < 2) throw new EngineInputError('custom task needs at least two labels in "answers"', 'answers');
  const words = entries.map(([, w]) => w);
  for (const w of words) {
    if (w.trim() !== w || w.length === 0) throw new EngineInputError(`custom task answer "${w}" must be a word without surrounding spaces`, w);
  }
  if (new Set(words).size !== words.length) throw new EngineInputError('custom task answers must be distinct words', 'answers');
  const labels: Record<string, number> = {};
  entries.forEach(([label], i) => (labels[label] = i));
  return {
    name: 'custom',
    kind: 'classification',
    fields,
    labelField,
    classes: words,
    labels,
    verbalizers: words.map((w) => ` ${w}`),
    demo: `${query} {answer}${after}`,
    demoAnswers: words,
    query: { body: query, strip: false, suffix: '' },
    choices: null,
    interleave: words.map((_, i) => i),
    defaults: CUSTOM_DEFAULTS,
    testSplit: 'auto',
  };
}
