/**
 * Tables of the results database. Schema as code: `npm run db:generate` turns changes here into
 * a new SQL migration under db/migrations (never edit an applied migration; add a new one).
 *
 * - sweeps: one row per sweep name (a rerun under a new workflow id reuses the row).
 * - cells: one row per computed cell, keyed by the cell key (sweepspec/cells.ts); shared by every sweep
 *   that contains the cell. Canonical coordinates (a ratio-0 cell has module "none", layer 0).
 * - sweep_cells: which cells a sweep contains, with the coordinates as that sweep sees them.
 * - examples: per-example predictions of a cell (label, prediction, one score per class).
 * - demonstration_draws: which train rows, in which order, a cell's demonstrations are, per
 *   (dataset fingerprint, split, shots, seed); a cell joins its draw through its own columns.
 * - selections: the paper's Algorithm 1 picks, one per (sweep, model, dataset).
 */
import { sql } from 'drizzle-orm';
import {
  check,
  doublePrecision,
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

export const sweeps = pgTable('sweeps', {
  name: text('name').primaryKey(),
  /** Latest workflow id that ran this sweep. */
  workflowId: text('workflow_id').notNull(),
  /** The validated sweep spec (JSON; no credentials). */
  spec: jsonb('spec').notNull(),
  createdAt: tstz('created_at').notNull().defaultNow(),
  updatedAt: tstz('updated_at').notNull().defaultNow(),
});

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
    /** Recorded attempts (results and failures). */
    attempts: integer('attempts').notNull().default(0),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
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
  },
  (t) => [primaryKey({ name: 'selections_pkey', columns: [t.sweep, t.model, t.dataset] })],
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
