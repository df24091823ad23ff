/**
 * The sweep spec: one schema shared by the `sweep` workflow (which validates its input with it)
 * and the CLI (which rejects a bad file before starting anything). Pure: no Node imports, so
 * the workflow bundle can use it.
 *
 * Strict: a key the schema does not know is an error naming it, with the closest known key as a
 * suggestion (a misspelled `maxInflight` must not silently fall back to the default); so is a
 * module, task or recipe name outside the engine's vocabulary.
 */
import { z } from 'zod';
import type { CustomTask, DatasetSpec, ModelSpec, Scoring } from '../engine/types.ts';
import { MODULES, PROTOCOLS, RECIPES } from '../engine/vocabulary.ts';
import { didYouMean } from '../engine/suggest.ts';
import type { SelectionRule } from '../analysis/selection.ts';

/** An object schema that refuses unknown keys, naming each with the closest known one. */
function strict<Shape extends z.ZodRawShape>(shape: Shape) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((k) => `unknown key "${k}"${didYouMean(k, known)}`).join('; ')
        : undefined,
  });
}

/** One of `values`, else an error naming the value with the closest known one. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T, what: string) {
  return z.enum(values, {
    error: (issue) =>
      typeof issue.input === 'string'
        ? `unknown ${what} "${issue.input}"${didYouMean(issue.input, values)}; known: ${values.join(', ')}`
        : `expected a ${what} name (${values.join(', ')})`,
  });
}

/** ONNX Runtime execution providers a sweep can run on; each has its own cells task queue. */
export const EXECUTION_PROVIDERS = ['cpu', 'cuda'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

const name = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._\/-]*$/, 'letters, digits, ".", "_", "-" and "/" only');

export const modelSchema = strict({
  name,
  /** A folder in the layout Hugging Face's ONNX exporters write (config.json, tokenizer.json, the ONNX file), or a Hub id `org/name[@revision]` in the local Hugging Face cache. */
  path: z.string().min(1),
  /** The ONNX file within the folder (e.g. onnx/model_fp16.onnx); default model.onnx, else onnx/model.onnx. */
  file: z
    .string()
    .min(1)
    .refine((f) => f.endsWith('.onnx') && !f.startsWith('/') && !f.split(/[\\/]/).includes('..'), 'a relative path to an .onnx file inside the model folder')
    .optional(),
}) satisfies z.ZodType<ModelSpec>;

/** A task of the registry (engine/tasks/registry.ts) by name or alias; the engine checks that it exists. */
export const taskNameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a task name: letters, digits, ".", "_" and "-"');

/** A task for any labelled dataset: a demonstration template and one verbalizer word per label. */
export const customTaskSchema = strict({
  /** One demonstration, with {field} placeholders and exactly one {answer}; the query is the text before {answer}. */
  template: z.string().refine((t) => t.split('{answer}').length === 2, 'must contain {answer} exactly once'),
  /** Label value (as it appears in the data) -> verbalizer word; each word must be a single token after a space. */
  answers: z.record(z.string(), z.string().min(1)).refine((a) => Object.keys(a).length >= 2, 'needs at least two labels'),
  labelField: z.string().min(1).default('label'),
}) satisfies z.ZodType<CustomTask>;

export const datasetSchema = strict({
  name,
  /** Required with "path"; a recipe brings its own task, which this overrides when given. */
  task: z.union([taskNameSchema, customTaskSchema]).optional(),
  /** A folder with train / validation / test files (Parquet, JSON Lines or CSV) in Hugging Face's layout. */
  path: z.string().min(1).optional(),
  /** A named dataset prepared from files that registry packages ship (e.g. "sentiment-uci/yelp"). */
  recipe: oneOf(RECIPES, 'recipe').optional(),
})
  .refine((d) => (d.path === undefined) !== (d.recipe === undefined), {
    message: 'give exactly one of "path" or "recipe"',
    path: ['path'],
  })
  .refine((d) => d.path === undefined || d.task !== undefined, { message: 'a dataset given by "path" needs a "task"', path: ['task'] }) satisfies z.ZodType<DatasetSpec>;

const layerSchema = z.number().int().min(-1);

/** Scoring as a spec writes it: a field left out takes its protocol's value (SCORING_BY_PROTOCOL). */
export const scoringSchema = strict({
  /** Multiple choice: summed log-likelihood (acc), length-normalised (acc_norm), or the paper's mean of raw logits. */
  multipleChoice: z.enum(['loglik', 'loglik-norm', 'mean-logits']).optional(),
  /** Exact truncated SVD (sound default) or the paper's randomized SVD (q = k, niter = 2, seeded). */
  svd: z.enum(['exact', 'randomized']).optional(),
}) satisfies z.ZodType<Partial<Scoring>>;

/**
 * The scoring each protocol implies. The paper's protocol is the whole switch: these two, and the
 * task variants its task files declare (engine/tasks/builtin/*.yaml, `paper:`), which the engine
 * resolves from the dataset's `protocol`.
 */
export const SCORING_BY_PROTOCOL: Record<(typeof PROTOCOLS)[number], Scoring> = {
  default: { multipleChoice: 'loglik', svd: 'exact' },
  paper: { multipleChoice: 'mean-logits', svd: 'randomized' },
};

/** Largest seed (the engine's shuffle takes any non-negative safe integer; this keeps seed + N safe). */
const MAX_SEED = 2 ** 32 - 1;
/** Most demonstration draws per cell. */
const MAX_DRAWS = 100;

/**
 * How the selection step picks a cell (analysis/selection.ts):
 *  - `paper`: the best mean validation accuracy over the draws, ties by the protocol's order;
 *  - `significant`: the best of the pruned cells whose validation gain over the unpruned model is
 *    significant across draws and examples at `level` (`correction`: holm controls the chance that any
 *    cell without a real gain passes, over all the pruned cells of a task; none tests each alone);
 *    when none is, the unpruned model.
 */
export const selectionRuleSchema = strict({
  rule: z.enum(['paper', 'significant']),
  level: z.number().gt(0).lt(1).optional(),
  correction: z.enum(['holm', 'none']).optional(),
})
  .refine((r) => r.rule === 'significant' || (r.level === undefined && r.correction === undefined), {
    message: '"level" and "correction" belong to the significant rule',
  })
  .transform((r): SelectionRule => (r.rule === 'paper' ? { rule: 'paper' } : { rule: 'significant', level: r.level ?? 0.05, correction: r.correction ?? 'holm' }));

export const sweepSpecSchema = strict({
  name,
  models: z.array(modelSchema).min(1),
  datasets: z.array(datasetSchema).min(1),
  modules: z.array(oneOf(MODULES, 'module')).min(1),
  /** Layer indices, -1 for "every layer at once", or "all" for each layer of the model in turn. */
  layers: z.union([z.literal('all'), z.array(layerSchema).min(1)]),
  ratios: z.array(z.number().min(0).lt(1)).min(1),
  /** Demonstrations in the prompt; defaults to the protocol's number for each task. */
  shots: z.number().int().min(0).max(64).optional(),
  /** Seed of the shuffle that draws demonstrations and splits; defaults to the protocol's seed for each task. */
  seed: z.number().int().min(0).optional(),
  /**
   * Demonstration draws: every grid cell is evaluated once per seed (each draw its own stored cell). A list
   * of seeds, or a count N: the seeds seed, seed + 1, ..., seed + N - 1 (from each task's default seed
   * when `seed` is not given). Absent: one draw, `seed`.
   */
  demoSeeds: z
    .union([
      z.array(z.number().int().min(0).max(MAX_SEED)).min(1).max(MAX_DRAWS).refine((seeds) => new Set(seeds).size === seeds.length, 'seeds must differ'),
      z.number().int().min(1).max(MAX_DRAWS),
    ])
    .optional(),
  sizes: strict({
    validationPerClass: z.number().int().positive().optional(),
    testPerClass: z.number().int().positive().optional(),
  }).default({}),
  /** Split the grid is evaluated on; with selection on, the grid runs on validation and the pick on test. */
  split: z.enum(['validation', 'test']).default('test'),
  /** default: the corrected protocol; paper: the paper's code where it differs (engine/tasks/README.md). */
  protocol: oneOf(PROTOCOLS, 'protocol').default('default'),
  scoring: scoringSchema.default({}),
  /**
   * Where the cells run: the numerics differ between providers, so it is part of every cell key, and
   * cells go to the task queue of workers with that provider ("<queue>-cells-<provider>").
   */
  executionProvider: oneOf(EXECUTION_PROVIDERS, 'execution provider').default('cpu'),
  /** Take over the sweep name even when it holds a different grid (its cells stay stored for reuse). */
  replace: z.boolean().default(false),
  /** Folders of task files (YAML) besides the builtin ones; workers must reach them like the dataset folders. */
  taskDirs: z.array(z.string().min(1)).optional(),
  /**
   * Run the paper's Algorithm 1: pick a cell per (model, dataset) on validation, then test it against the
   * unpruned model. `true` is the paper's rule; an object chooses the rule (selectionRuleSchema).
   */
  selection: z.union([z.boolean(), selectionRuleSchema]).default(false),
  maxInFlight: z.number().int().min(1).max(1000).default(4),
  /** Cells finished per workflow run before it continues as new (keeps history small). */
  continueAsNewAfter: z.number().int().min(1).default(500),
  /** A cell whose worker sends no heartbeat for this long (e.g. a killed machine) is retried elsewhere. */
  heartbeatTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
  /** Attempts per cell for transient faults (bad input is never retried); then the cell is recorded as failed. */
  cellAttempts: z.number().int().min(1).max(100).default(5),
}).superRefine((spec, ctx) => {
  if (Array.isArray(spec.demoSeeds) && spec.seed !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['demoSeeds'], message: 'give either "seed" or a list of "demoSeeds" (a count of demoSeeds counts up from "seed")' });
  }
  for (const [field, items] of [
    ['models', spec.models],
    ['datasets', spec.datasets],
  ] as const) {
    const seen = new Set<string>();
    items.forEach((item, i) => {
      if (seen.has(item.name)) ctx.addIssue({ code: 'custom', path: [field, i, 'name'], message: `duplicate name "${item.name}"` });
      seen.add(item.name);
    });
  }
})
  .transform(({ scoring, selection, ...spec }) => ({
    ...spec,
    scoring: { ...SCORING_BY_PROTOCOL[spec.protocol], ...scoring } as Scoring,
    selection: selection === true ? ({ rule: 'paper' } as SelectionRule) : selection,
  }));

/** What a user writes (defaults optional). */
export type SweepSpecInput = z.input<typeof sweepSpecSchema>;
/** A validated spec with defaults filled in. */
export type SweepSpec = z.output<typeof sweepSpecSchema>;

type Issue = z.ZodError['issues'][number];

/**
 * A union's issues from the one branch the value has the type of (an object given for `true | {...}`
 * is judged as the object), else the union's own issue.
 */
function unionBranch(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union') return [issue];
  const typed = issue.errors.filter((branch) => !branch.every((i) => i.code === 'invalid_type' && i.path.length === 0));
  if (typed.length !== 1) return [issue];
  return typed[0].flatMap((i) => unionBranch({ ...i, path: [...issue.path, ...i.path] } as Issue));
}

/** One line per problem, each naming its field, e.g. `models[0].path: Required` (one line per unknown key). */
export function formatSpecIssues(error: z.ZodError): string[] {
  return error.issues.flatMap(unionBranch).flatMap((issue) => {
    const path = issue.path
      .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
      .join('');
    const messages = issue.code === 'unrecognized_keys' ? issue.message.split('; ') : [issue.message];
    return messages.map((m) => `${path || '(spec)'}: ${m}`);
  });
}

/**
 * The engine's view of a spec's dataset: its entry with the sweep's task folders and, under the
 * paper's protocol, the protocol its task is resolved under (absent for the default, so a default
 * dataset request is what it always was).
 */
export function datasetRequest(spec: Pick<SweepSpec, 'taskDirs' | 'protocol'>, dataset: SweepSpec['datasets'][number]): DatasetSpec {
  return { ...dataset, ...(spec.taskDirs ? { taskDirs: spec.taskDirs } : {}), ...(spec.protocol === 'paper' ? { protocol: 'paper' as const } : {}) };
}

export type SpecCheck = { ok: true; spec: SweepSpec } | { ok: false; problems: string[] };

export function checkSpec(input: unknown): SpecCheck {
  const parsed = sweepSpecSchema.safeParse(input);
  return parsed.success ? { ok: true, spec: parsed.data } : { ok: false, problems: formatSpecIssues(parsed.error) };
}
