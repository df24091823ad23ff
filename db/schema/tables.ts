/**
 * Tables of the results database. Schema as code: `npm run db:generate` turns changes here into
 * a new SQL migration under db/migrations (never edit an applied migration; add a new one).
 *
 * - sweeps: one row per sweep name and its current grid (a rerun under a new workflow id reuses the
 *   row; another grid takes the name only when its spec says "replace"), with its progress.
 * - cells: one row per computed cell, keyed by the cell key (sweepspec/cells.ts); shared by every sweep
 *   that contains the cell. Canonical coordinates (a ratio-0 cell has module "none", layer 0). A done
 *   cell is never overwritten: a later completion with other numbers goes to cell_conflicts.
 * - cell_conflicts: second completions of a done cell whose numbers differ from the stored ones.
 * - sweep_cells: which cells a sweep contains, with the coordinates as that sweep sees them.
 * - examples: per-example predictions of a cell (label, prediction, one score per class).
 * - demonstration_draws: which train rows, in which order, a cell's demonstrations are, per
 *   (dataset fingerprint, split, shots, seed); a cell joins its draw through its own columns.
 * - selections: the paper's Algorithm 1 picks, one per (sweep, model, dataset), with the rule's decision.
 * - selection_draws: the test cells of each pick, one row per demonstration draw.
 */
import { sql } from 'drizzle-orm';
import {
  check,
  doublePrecision,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  boolean,
  bigint,
} from 'drizzle-orm/pg-core';

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** Stored cell states. A cell a sweep links but nobody has started yet has no `cells` row ("pending" in the views). */
export const CELL_STATUSES = ['running', 'done', 'failed'] as const;
export type CellStatus = (typeof CELL_STATUSES)[number];

/** A sweep's state as its workflow last reported it. */
export const SWEEP_STATUSES = ['running', 'completed', 'failed', 'cancelled'] as const;
export type SweepStatus = (typeof SWEEP_STATUSES)[number];

export const sweeps = pgTable(
  'sweeps',
  {
    name: text('name').primaryKey(),
    /** Latest workflow id that ran this sweep. */
    workflowId: text('workflow_id').notNull(),
    /** The validated sweep spec (JSON; no credentials). */
    spec: jsonb('spec').notNull(),
    createdAt: tstz('created_at').notNull().defaultNow(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
    /** Identity of the grid the name holds (sweepspec/grid.ts gridIdentity); null for rows older than it. */
    grid: text('grid'),
    /** Cells planned so far (the grid, plus the test cells once the selection is made), as the workflow counts them. */
    cellsPlanned: integer('cells_planned').notNull().default(0),
    /** Cells of the plan with a result (computed, reused or failed), as the workflow counts them. */
    cellsFinished: integer('cells_finished').notNull().default(0),
    status: text('status').$type<SweepStatus>().notNull().default('running'),
    /** When the workflow last reported (a sweep's progress stays exported for a while after it ends). */
    reportedAt: tstz('reported_at').notNull().defaultNow(),
  },
  (t) => [check('sweeps_status_check', sql`${t.status} in ('running', 'completed', 'failed', 'cancelled')`)],
);

export const cells = pgTable(
  'cells',
  {
    key: text('key').primaryKey(),
    engineVersion: text('engine_version'),
    modelFingerprint: text('model_fingerprint'),
    datasetFingerprint: text('dataset_fingerprint'),
    module: text('module').notNull(),
    /** -1: every layer. */
    layer: integer('layer').notNull(),
    ratio: doublePrecision('ratio').notNull(),
    split: text('split').notNull(),
    /** Demonstrations and seed the cell actually used (the task's defaults when its spec gave none); null until it is done. */
    shots: integer('shots'),
    seed: integer('seed'),
    /** Extra coordinates the key covers (sizes, scoring, ...), as JSON. */
    params: jsonb('params'),
    status: text('status').$type<CellStatus>().notNull(),
    accuracy: doublePrecision('accuracy'),
    accuracyNorm: doublePrecision('accuracy_norm'),
    n: integer('n'),
    /** Macro-F1 over the task's classes (classification only). */
    f1Macro: doublePrecision('f1_macro'),
    forwardTokens: bigint('forward_tokens', { mode: 'number' }),
    /** Wall-clock seconds of the evaluation. */
    seconds: doublePrecision('seconds'),
    /** Full CellCost of the engine, as JSON. */
    cost: jsonb('cost'),
    startedAt: tstz('started_at'),
    finishedAt: tstz('finished_at'),
    worker: text('worker'),
    /**
     * The Temporal activity whose evaluation stored the result ("<workflow id>/<run id>/<activity id>"):
     * a retry of that same activity (its completion lost, e.g. to a server restart) finds its own
     * result, which the sweep counts as computed, not reused.
     */
    computedBy: text('computed_by'),
    error: text('error'),
    /** Temporal's attempt number of the activity attempt that wrote the row (1: first try); 0 when unknown. */
    attempts: integer('attempts').notNull().default(0),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
    /** Machine of the worker that wrote the row. */
    host: text('host'),
    /** ONNX Runtime execution provider the result was computed with (also in the cell key). */
    executionProvider: text('execution_provider'),
    /** Element type of the pruned weights as the runtime ran them (float32, float16, bfloat16). */
    weightDtype: text('weight_dtype'),
    onnxruntimeVersion: text('onnxruntime_version'),
  },
  (t) => [
    check('cells_status_check', sql`${t.status} in ('running', 'done', 'failed')`),
    check('cells_split_check', sql`${t.split} in ('validation', 'test')`),
    index('cells_status_idx').on(t.status),
  ],
);

export const sweepCells = pgTable(
  'sweep_cells',
  {
    sweep: text('sweep')
      .notNull()
      .references(() => sweeps.name, { onDelete: 'cascade' }),
    /** No foreign key: a sweep links its cells before they are computed. */
    cellKey: text('cell_key').notNull(),
    model: text('model').notNull(),
    dataset: text('dataset').notNull(),
    /** Task name of the dataset (builtin task name, "custom", or null when unknown). */
    task: text('task'),
    module: text('module').notNull(),
    layer: integer('layer').notNull(),
    ratio: doublePrecision('ratio').notNull(),
    split: text('split').notNull(),
    /** True when the sweep found the cell already done (computed earlier, by this or another sweep). */
    reused: boolean('reused').notNull().default(false),
    linkedAt: tstz('linked_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: 'sweep_cells_pkey', columns: [t.sweep, t.cellKey] }),
    index('sweep_cells_cell_key_idx').on(t.cellKey),
    index('sweep_cells_sweep_coords_idx').on(t.sweep, t.model, t.dataset, t.split, t.ratio),
  ],
);

export const examples = pgTable(
  'examples',
  {
    cellKey: text('cell_key')
      .notNull()
      .references(() => cells.key, { onDelete: 'cascade' }),
    /** Stable index of the example within its split (same for every cell of a dataset). */
    idx: integer('idx').notNull(),
    label: integer('label').notNull(),
    prediction: integer('prediction').notNull(),
    /** One score per class or choice. */
    scores: real('scores').array().notNull(),
  },
  (t) => [primaryKey({ name: 'examples_pkey', columns: [t.cellKey, t.idx] })],
);

export const selections = pgTable(
  'selections',
  {
    sweep: text('sweep')
      .notNull()
      .references(() => sweeps.name, { onDelete: 'cascade' }),
    model: text('model').notNull(),
    dataset: text('dataset').notNull(),
    module: text('module').notNull(),
    layer: integer('layer').notNull(),
    ratio: doublePrecision('ratio').notNull(),
    validationAccuracy: doublePrecision('validation_accuracy').notNull(),
    validationCellKey: text('validation_cell_key').notNull(),
    /** Test cell of the unpruned model (ratio 0). */
    baselineCellKey: text('baseline_cell_key').notNull(),
    /** Test cell of the selected (module, layer, ratio). */
    selectedCellKey: text('selected_cell_key').notNull(),
    createdAt: tstz('created_at').notNull().defaultNow(),
    /** The rule that made the pick: paper or significant (with its level and correction). */
    rule: text('rule').notNull().default('paper'),
    level: doublePrecision('level'),
    correction: text('correction'),
    /** Demonstration draws the pick was judged on (validation_accuracy is their mean). */
    draws: integer('draws').notNull().default(1),
    baselineValidationAccuracy: doublePrecision('baseline_validation_accuracy'),
    /** The pick's validation gain over the unpruned model, its interval (95%) and p-value; null when the pick is the unpruned model. */
    validationGain: doublePrecision('validation_gain'),
    validationGainLower: doublePrecision('validation_gain_lower'),
    validationGainUpper: doublePrecision('validation_gain_upper'),
    validationGainP: doublePrecision('validation_gain_p'),
    /** The whole decision (analysis/selection.ts Selection: the best pruned cell and its test, counts), as JSON. */
    decision: jsonb('decision'),
  },
  (t) => [primaryKey({ name: 'selections_pkey', columns: [t.sweep, t.model, t.dataset] })],
);

/**
 * The test cells of each selection, one row per demonstration draw: the unpruned model and the pick
 * under that draw's seed (the same cell when the pick is the unpruned model), and the pick's
 * validation cell. A selection's first draw is the one its own columns name.
 */
export const selectionDraws = pgTable(
  'selection_draws',
  {
    sweep: text('sweep').notNull(),
    model: text('model').notNull(),
    dataset: text('dataset').notNull(),
    /** 0, 1, ...: the draws in seed order. */
    draw: integer('draw').notNull(),
    /** The draw's seed; null: the spec gave none (the cells record the task's default they used). */
    seed: integer('seed'),
    validationCellKey: text('validation_cell_key').notNull(),
    baselineCellKey: text('baseline_cell_key').notNull(),
    selectedCellKey: text('selected_cell_key').notNull(),
  },
  (t) => [
    primaryKey({ name: 'selection_draws_pkey', columns: [t.sweep, t.model, t.dataset, t.draw] }),
    foreignKey({ name: 'selection_draws_selection_fk', columns: [t.sweep, t.model, t.dataset], foreignColumns: [selections.sweep, selections.model, selections.dataset] }).onDelete('cascade'),
  ],
);

/**
 * The demonstrations of every cell with this dataset, split, shots and seed: train row indices in
 * prompt order and their classes, and the split file the cells' example indices refer to. Written
 * with each result (idempotent); several draws of one grid point (other seeds) are other rows.
 */
export const demonstrationDraws = pgTable(
  'demonstration_draws',
  {
    datasetFingerprint: text('dataset_fingerprint').notNull(),
    split: text('split').notNull(),
    shots: integer('shots').notNull(),
    seed: integer('seed').notNull(),
    /** Split file the demonstration rows index (train). */
    demonstrationSplit: text('demonstration_split').notNull(),
    rows: integer('rows').array().notNull(),
    labels: integer('labels').array().notNull(),
    /** Split file the examples' idx refer to (train, validation or test). */
    examplesSplit: text('examples_split').notNull(),
    createdAt: tstz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: 'demonstration_draws_pkey', columns: [t.datasetFingerprint, t.split, t.shots, t.seed] }),
    check('demonstration_draws_split_check', sql`${t.split} in ('validation', 'test')`),
  ],
);

export const cellConflicts = pgTable(
  'cell_conflicts',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** The done cell whose stored result stands. */
    cellKey: text('cell_key')
      .notNull()
      .references(() => cells.key, { onDelete: 'cascade' }),
    /** The sweep whose attempt produced the other numbers. */
    sweep: text('sweep'),
    accuracy: doublePrecision('accuracy'),
    accuracyNorm: doublePrecision('accuracy_norm'),
    n: integer('n'),
    /** Examples whose prediction differs from the stored one (of those both have). */
    differingPredictions: integer('differing_predictions').notNull(),
    worker: text('worker'),
    host: text('host'),
    attempt: integer('attempt'),
    executionProvider: text('execution_provider'),
    weightDtype: text('weight_dtype'),
    onnxruntimeVersion: text('onnxruntime_version'),
    engineVersion: text('engine_version'),
    createdAt: tstz('created_at').notNull().defaultNow(),
  },
  (t) => [index('cell_conflicts_cell_key_idx').on(t.cellKey)],
);
