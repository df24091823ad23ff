/**
 * Task files: one YAML document per task, read by the registry (registry.ts). Two forms:
 *
 * - the full form, in which the seven protocol tasks are written (builtin/*.yaml): `kind`,
 *   `fields`, `classes` (or `choices` for multiple choice), `labels` (raw label -> class), the
 *   `demonstration` and `query` templates, `interleave`, `defaults`, `splits`, and an optional
 *   `paper` block with the paper's own query wording or split sources;
 * - the template form, the same as a spec's inline custom task: `template`, `answers`,
 *   `labelField`, plus optional `defaults` and `splits`.
 *
 * Both resolve into the ResolvedTask of definitions.ts, whose canonical JSON is hashed into the
 * dataset fingerprint: names, aliases, comments and descriptions are not part of it.
 */
import { z } from 'zod';
import type { Protocol } from '../vocabulary.ts';
import { EngineInputError } from '../types.ts';
import { CUSTOM_DEFAULTS, placeholders, resolveCustomTask, type ResolvedTask } from './definitions.ts';

const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const taskName = z.string().max(100).regex(TASK_NAME, 'letters, digits, ".", "_" and "-" only');
const word = z.string().min(1);

const splitsSchema = z
  .object({
    /** auto: the test split when labelled, else validation; validation: the validation split; train: the train rows left after demonstrations and validation. */
    test: z.enum(['auto', 'validation', 'train']).default('auto'),
    /** train: drawn from the train split after the demonstrations; validation: the dataset's validation split. */
    validation: z.enum(['train', 'validation']).default('train'),
  })
  .strict();

const defaultsSchema = z
  .object({
    shots: z.number().int().min(0).max(64).optional(),
    demonstrationsPerClass: z.number().int().min(0).max(64).optional(),
    seed: z.number().int().min(0),
    validationPerClass: z.number().int().positive(),
  })
  .strict()
  .refine((d) => (d.shots === undefined) !== (d.demonstrationsPerClass === undefined), 'give exactly one of "shots" or "demonstrationsPerClass"');

const querySchema = z.object({ body: z.string(), strip: z.boolean().default(false), suffix: z.string().default('') }).strict();

const paperSchema = z.object({ query: querySchema.optional(), splits: splitsSchema.partial().optional() }).strict();

const common = {
  name: taskName.optional(),
  aliases: z.array(taskName).default([]),
  description: z.string().optional(),
  splits: splitsSchema.default({ test: 'auto', validation: 'train' }),
  paper: paperSchema.optional(),
};

const fullSchema = z
  .object({
    ...common,
    kind: z.enum(['classification', 'multiple-choice']),
    fields: z.array(word).min(1),
    labelField: word.default('label'),
    /** Classification: class names in label order. */
    classes: z.array(word).min(2).optional(),
    /** Multiple choice: the shared context, the continuation with {choice}, and the choice fields in label order. */
    choices: z.object({ context: z.string(), continuation: z.string(), fields: z.array(word).min(2) }).strict().optional(),
    /** Raw label (as in the data; 1 and "1" are the same) -> class name (multiple choice: choice field). */
    labels: z.record(z.string(), word),
    /** Scored next token of each class, with its leading space; default " " + class. */
    verbalizers: z.array(word).optional(),
    demonstration: z.string(),
    /** Word written in a demonstration for each class; default the class name. */
    demoAnswers: z.array(word).optional(),
    query: querySchema.optional(),
    /** Class order in which demonstrations are interleaved. */
    interleave: z.array(word).min(1),
    defaults: defaultsSchema,
  })
  .strict();

const templateSchema = z
  .object({
    ...common,
    template: z.string(),
    answers: z.record(z.string(), word),
    labelField: word.default('label'),
    defaults: defaultsSchema.optional(),
  })
  .strict();

export type TaskFile = z.output<typeof fullSchema> | z.output<typeof templateSchema>;

/** A task file, checked and resolved under each protocol. */
export interface TaskEntry {
  name: string;
  aliases: string[];
  /** The file it came from (for messages). */
  source: string;
  resolve(protocol: Protocol): ResolvedTask;
}

function problem(source: string, message: string, subject = source): never {
  throw new EngineInputError(`task file ${source}: ${message}`, subject);
}

/**
 * Field paths and messages of a zod error. Never the file's own bytes: no values, and unknown keys
 * are counted, not quoted (the message lists the keys that are known instead).
 */
function zodProblems(error: z.ZodError, known: readonly string[]): string {
  return error.issues
    .map((i) => {
      const at = i.path.length ? i.path.join('.') : '(file)';
      if (i.code === 'unrecognized_keys') return `${at}: ${i.keys.length} unknown key(s)${i.path.length ? '' : `; a task file has ${known.join(', ')}`}`;
      return `${at}: ${i.message}`;
    })
    .join('; ');
}

function splitKeys(splits: z.output<typeof splitsSchema>): Pick<ResolvedTask, 'testSplit' | 'validationSplit'> {
  // validationSplit is left out when it is the default, so it is in a task's hash only when a task file sets it.
  return { testSplit: splits.test, ...(splits.validation === 'validation' ? { validationSplit: 'validation' as const } : {}) };
}

function shotsOf(d: z.output<typeof defaultsSchema>, classes: number): ResolvedTask['defaults'] {
  return { shots: d.shots ?? d.demonstrationsPerClass! * classes, seed: d.seed, validationPerClass: d.validationPerClass };
}

function indexOf(list: readonly string[], name: string, what: string, source: string): number {
  const i = list.indexOf(name);
  if (i < 0) problem(source, `${what} names a class that is not in "classes" (or "choices.fields")`);
  return i;
}

function checkPlaceholders(source: string, fields: readonly string[], templates: Record<string, string>, allowed: readonly string[]): void {
  for (const [where, template] of Object.entries(templates)) {
    for (const name of placeholders(template)) {
      if (!fields.includes(name) && !allowed.includes(name)) problem(source, `${where} has a placeholder that is not in "fields"`);
    }
  }
}

function resolveFull(doc: z.output<typeof fullSchema>, name: string, source: string): ResolvedTask {
  const mc = doc.kind === 'multiple-choice';
  if (mc && !doc.choices) problem(source, 'a multiple-choice task needs "choices"');
  if (!mc && !doc.classes) problem(source, 'a classification task needs "classes"');
  if (!mc && !doc.query) problem(source, 'a classification task needs "query"');
  if (mc && (doc.classes || doc.query || doc.verbalizers || doc.demoAnswers)) problem(source, 'a multiple-choice task has "choices" instead of classes, query, verbalizers and demoAnswers');
  const classes = mc ? doc.choices!.fields : doc.classes!;
  const labels: Record<string, number> = {};
  for (const [raw, cls] of Object.entries(doc.labels)) labels[raw] = indexOf(classes, cls, `labels.${raw}`, source);
  for (const [key, list] of [['verbalizers', doc.verbalizers], ['demoAnswers', doc.demoAnswers]] as const) {
    if (list && list.length !== classes.length) problem(source, `"${key}" has ${list.length} entries for ${classes.length} classes`);
  }
  const interleave = doc.interleave.map((c) => indexOf(classes, c, 'interleave', source));
  if (new Set(interleave).size !== classes.length || interleave.length !== classes.length) problem(source, '"interleave" must list every class once');
  const templates: Record<string, string> = { demonstration: doc.demonstration };
  if (doc.query) templates.query = doc.query.body;
  if (doc.choices) Object.assign(templates, { 'choices.context': doc.choices.context, 'choices.continuation': doc.choices.continuation });
  checkPlaceholders(source, doc.fields, templates, ['answer', 'choice']);
  if (!doc.demonstration.includes('{answer}')) problem(source, '"demonstration" must contain {answer}');
  return {
    name,
    kind: doc.kind,
    fields: doc.fields,
    labelField: doc.labelField,
    classes,
    labels,
    verbalizers: mc ? null : (doc.verbalizers ?? classes.map((c) => ` ${c}`)),
    demo: doc.demonstration,
    demoAnswers: mc ? null : (doc.demoAnswers ?? classes),
    query: mc ? null : doc.query!,
    choices: mc ? doc.choices! : null,
    interleave,
    defaults: shotsOf(doc.defaults, classes.length),
    ...splitKeys(doc.splits),
  };
}

function resolveTemplate(doc: z.output<typeof templateSchema>, name: string): ResolvedTask {
  const task = resolveCustomTask({ template: doc.template, answers: doc.answers, labelField: doc.labelField });
  return {
    ...task,
    name,
    defaults: doc.defaults ? shotsOf(doc.defaults, task.classes.length) : CUSTOM_DEFAULTS,
    ...splitKeys(doc.splits),
  };
}

/** The paper's variant of a task file: its `paper` block over the file. */
function paperVariant<T extends TaskFile>(doc: T): T {
  if (!doc.paper) return doc;
  const splits = { ...doc.splits, ...doc.paper.splits };
  return 'template' in doc ? { ...doc, splits } : { ...doc, splits, query: doc.paper.query ?? doc.query };
}

/** Checks one parsed YAML document; `fallbackName` (the file's base name) names a file without `name`. */
export function taskEntry(value: unknown, source: string, fallbackName: string): TaskEntry {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) problem(source, 'must be a YAML mapping');
  const schema = 'template' in (value as object) ? templateSchema : fullSchema;
  const parsed = schema.safeParse(value);
  if (!parsed.success) problem(source, zodProblems(parsed.error, Object.keys(schema.shape)));
  const doc = parsed.data as TaskFile;
  const name = doc.name ?? fallbackName;
  if (!TASK_NAME.test(name)) problem(source, 'the file name is not a task name (letters, digits, ".", "_" and "-"); add "name:"');
  if ('template' in doc && doc.paper?.query) problem(source, 'a template task has no separate query to override in "paper"');
  const resolveDoc = (d: TaskFile) => ('template' in d ? resolveTemplate(d, name) : resolveFull(d, name, source));
  const byProtocol: Record<Protocol, ResolvedTask> = { default: resolveDoc(doc), paper: resolveDoc(paperVariant(doc)) };
  return { name, aliases: doc.aliases, source, resolve: (protocol) => byProtocol[protocol] };
}
