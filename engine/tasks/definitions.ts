/**
 * Task definitions: the paper's seven builtin tasks (docs/paper-protocol.md) and the
 * user-defined task of sweepspec/schema.ts, resolved into one plain, JSON-serialisable shape. The
 * resolved definition is hashed into the dataset fingerprint, so any change to a template, a
 * verbalizer or a default changes every cell key that depends on it.
 *
 * Templates use `{field}` placeholders (a column of the dataset) and `{answer}`.
 * See README.md beside this file for the rules (splits, sampling, indices, scoring).
 */
import type { BuiltinTask } from '../vocabulary.ts';
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
  /** Builtin name, or "custom". */
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
  /** 'validation': the dataset's validation split is the test set (super_glue). 'auto': test split when labelled, else validation. */
  testSplit: 'validation' | 'auto';
}

const SENTIMENT_DEMO = 'text: {sentence}\n sentiment : {answer} \n';

function textTask(
  name: string,
  field: string,
  classes: string[],
  labels: Record<string, number>,
  interleave: number[],
  defaults: ResolvedTask['defaults'],
): ResolvedTask {
  return {
    name,
    kind: 'classification',
    fields: [field],
    labelField: 'label',
    classes,
    labels,
    verbalizers: classes.map((c) => ` ${c}`),
    demo: SENTIMENT_DEMO.replace('{sentence}', `{${field}}`),
    demoAnswers: classes,
    query: { body: `text: {${field}}`, strip: true, suffix: '\n sentiment :' },
    choices: null,
    interleave,
    defaults,
    testSplit: 'auto',
  };
}

/** The seven tasks of the paper, exactly as its code renders them. */
export const BUILTIN_DEFINITIONS: Record<BuiltinTask, ResolvedTask> = {
  // glue/sst2 (HF "sst2"): label 0 negative, 1 positive. Its test split is unlabelled (-1): validation serves as test.
  sst2: textTask('sst2', 'sentence', ['neg', 'pos'], { '0': 0, '1': 1, negative: 0, positive: 1 }, [1, 0], {
    shots: 10,
    seed: 49,
    validationPerClass: 4000,
  }),
  // emo: 0 others, 1 happy, 2 sad, 3 angry. The paper's code makes it binary: "others" is written " pos", every emotion " neg".
  emoc: textTask(
    'emoc',
    'text',
    ['pos', 'neg'],
    { '0': 0, '1': 1, '2': 1, '3': 1, others: 0, happy: 1, sad: 1, angry: 1 },
    [0, 1],
    { shots: 10, seed: 72, validationPerClass: 2500 },
  ),
  // ag_news: 0 World, 1 Sports, 2 Business, 3 Sci/Tech.
  agnews: textTask(
    'agnews',
    'text',
    ['world', 'sports', 'business', 'science'],
    { '0': 0, '1': 1, '2': 2, '3': 3, World: 0, Sports: 1, Business: 2, 'Sci/Tech': 3 },
    [0, 1, 2, 3],
    { shots: 8, seed: 42, validationPerClass: 2000 },
  ),
  // glue/mrpc: 0 not_equivalent -> " false", 1 equivalent -> " true".
  mrpc: {
    name: 'mrpc',
    kind: 'classification',
    fields: ['sentence1', 'sentence2'],
    labelField: 'label',
    classes: ['false', 'true'],
    labels: { '0': 0, '1': 1, not_equivalent: 0, equivalent: 1 },
    verbalizers: [' false', ' true'],
    demo: 'sentence1: {sentence1} \n sentence2: {sentence2}\n label : {answer} \n',
    demoAnswers: ['false', 'true'],
    query: { body: 'sentence1: {sentence1} \n sentence2: {sentence2}', strip: true, suffix: '\n label :' },
    choices: null,
    interleave: [1, 0],
    defaults: { shots: 10, seed: 42, validationPerClass: 200 },
    testSplit: 'auto',
  },
  // super_glue/rte: 0 entailment -> Yes, 1 not_entailment -> No. The query keeps the trailing space after "No?" (as the paper).
  rte: {
    name: 'rte',
    kind: 'classification',
    fields: ['premise', 'hypothesis'],
    labelField: 'label',
    classes: ['Yes', 'No'],
    labels: { '0': 0, '1': 1, entailment: 0, not_entailment: 1 },
    verbalizers: [' Yes', ' No'],
    demo: '{premise} Does this mean that {hypothesis} is true? select Yes or No? {answer}\n',
    demoAnswers: ['Yes', 'No'],
    query: { body: '{premise} Does this mean that {hypothesis} is true? select Yes or No? ', strip: false, suffix: '' },
    choices: null,
    interleave: [0, 1],
    defaults: { shots: 5, seed: 66, validationPerClass: 200 },
    testSplit: 'validation',
  },
  // super_glue/cb: 0 entailment -> Yes, 1 contradiction -> No, 2 neutral -> Maybe (written "Mi" in demonstrations, as the paper).
  cb: {
    name: 'cb',
    kind: 'classification',
    fields: ['premise', 'hypothesis'],
    labelField: 'label',
    classes: ['Yes', 'No', 'Maybe'],
    labels: { '0': 0, '1': 1, '2': 2, entailment: 0, contradiction: 1, neutral: 2 },
    verbalizers: [' Yes', ' No', ' Maybe'],
    demo: "Suppose {premise} Can we infer that '{hypothesis}'? Yes, No, or Maybe? {answer}\n",
    demoAnswers: ['Yes', 'No', 'Mi'],
    query: { body: "Suppose {premise} Can we infer that '{hypothesis}'? Yes, No, or Maybe? ", strip: false, suffix: '' },
    choices: null,
    interleave: [0, 2, 1],
    defaults: { shots: 5, seed: 66, validationPerClass: 200 },
    testSplit: 'validation',
  },
  // super_glue/copa: label 0 -> choice1, 1 -> choice2. Candidate = "{premise}\n{question}\n" + "{choice}\n".
  copa: {
    name: 'copa',
    kind: 'multiple-choice',
    fields: ['premise', 'question', 'choice1', 'choice2'],
    labelField: 'label',
    classes: ['choice1', 'choice2'],
    labels: { '0': 0, '1': 1 },
    verbalizers: null,
    demo: '{premise}\n{question}\n{answer}\n',
    demoAnswers: null,
    query: null,
    choices: { context: '{premise}\n{question}\n', continuation: '{choice}\n', fields: ['choice1', 'choice2'] },
    interleave: [1, 0],
    defaults: { shots: 5, seed: 66, validationPerClass: 100 },
    testSplit: 'validation',
  },
};

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

export function resolveTask(task: BuiltinTask | CustomTask): ResolvedTask {
  if (typeof task === 'string') {
    const def = BUILTIN_DEFINITIONS[task];
    if (!def) throw new EngineInputError(`unknown task "${task}"`, task);
    return def;
  }
  return resolveCustomTask(task);
}
