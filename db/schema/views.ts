/**
 * Views for SQL users (a stable, public interface: columns are only ever added, never renamed or
 * removed). They are created by the custom migration db/migrations/*_views.sql; these declarations
 * (`.existing()`, so drizzle-kit leaves them alone) only give typed queries. Columns: db/README.md.
 */
import { boolean, doublePrecision, integer, jsonb, pgView, text, bigint } from 'drizzle-orm/pg-core';

const cellResultColumns = {
  sweep: text('sweep').notNull(),
  model: text('model').notNull(),
  dataset: text('dataset').notNull(),
  task: text('task'),
  module: text('module').notNull(),
  layer: integer('layer').notNull(),
  ratio: doublePrecision('ratio').notNull(),
  split: text('split').notNull(),
  accuracy: doublePrecision('accuracy'),
  accuracyNorm: doublePrecision('accuracy_norm'),
  n: integer('n'),
  /** pending (not started), running, done or failed. */
  status: text('status').notNull(),
  error: text('error'),
  reused: boolean('reused').notNull(),
  seconds: doublePrecision('seconds'),
  forwardTokens: bigint('forward_tokens', { mode: 'number' }),
  worker: text('worker'),
  cellKey: text('cell_key').notNull(),
  f1Macro: doublePrecision('f1_macro'),
  shots: integer('shots'),
  seed: integer('seed'),
};

/** One row per (sweep, cell): coordinates as the sweep sees them, results from the shared cell, and where it was computed. */
export const cellResults = pgView('cell_results', {
  ...cellResultColumns,
  host: text('host'),
  executionProvider: text('execution_provider'),
  weightDtype: text('weight_dtype'),
  onnxruntimeVersion: text('onnxruntime_version'),
  engineVersion: text('engine_version'),
  /** Temporal's attempt number of the attempt that stored the result. */
  attempt: integer('attempt'),
}).existing();

/** cell_results + the ratio-0 cell of the same sweep, model, dataset and split, and the difference. */
export const cellDeltas = pgView('cell_deltas', {
  ...cellResultColumns,
  baselineCellKey: text('baseline_cell_key'),
  baselineAccuracy: doublePrecision('baseline_accuracy'),
  delta: doublePrecision('delta'),
  baselineF1Macro: doublePrecision('baseline_f1_macro'),
}).existing();

/** One row per selection, with the test accuracy and n of the baseline and of the selected cell. */
export const selectionResults = pgView('selection_results', {
  sweep: text('sweep').notNull(),
  model: text('model').notNull(),
  dataset: text('dataset').notNull(),
  task: text('task'),
  module: text('module').notNull(),
  layer: integer('layer').notNull(),
  ratio: doublePrecision('ratio').notNull(),
  validationAccuracy: doublePrecision('validation_accuracy').notNull(),
  validationCellKey: text('validation_cell_key').notNull(),
  baselineCellKey: text('baseline_cell_key').notNull(),
  baselineStatus: text('baseline_status').notNull(),
  baselineAccuracy: doublePrecision('baseline_accuracy'),
  baselineN: integer('baseline_n'),
  selectedCellKey: text('selected_cell_key').notNull(),
  selectedStatus: text('selected_status').notNull(),
  selectedAccuracy: doublePrecision('selected_accuracy'),
  selectedN: integer('selected_n'),
  delta: doublePrecision('delta'),
  baselineF1Macro: doublePrecision('baseline_f1_macro'),
  selectedF1Macro: doublePrecision('selected_f1_macro'),
  rule: text('rule').notNull(),
  level: doublePrecision('level'),
  correction: text('correction'),
  draws: integer('draws').notNull(),
  baselineValidationAccuracy: doublePrecision('baseline_validation_accuracy'),
  validationGain: doublePrecision('validation_gain'),
  validationGainLower: doublePrecision('validation_gain_lower'),
  validationGainUpper: doublePrecision('validation_gain_upper'),
  validationGainP: doublePrecision('validation_gain_p'),
  testDrawsDone: integer('test_draws_done').notNull(),
  decision: jsonb('decision'),
}).existing();

/** One row per grid point over its demonstration draws: mean, spread and 95% interval of the accuracy. */
export const cellDrawSummaries = pgView('cell_draw_summaries', {
  sweep: text('sweep').notNull(),
  model: text('model').notNull(),
  dataset: text('dataset').notNull(),
  task: text('task'),
  module: text('module').notNull(),
  layer: integer('layer').notNull(),
  ratio: doublePrecision('ratio').notNull(),
  split: text('split').notNull(),
  draws: integer('draws').notNull(),
  drawsDone: integer('draws_done').notNull(),
  meanAccuracy: doublePrecision('mean_accuracy'),
  sdAccuracy: doublePrecision('sd_accuracy'),
  minAccuracy: doublePrecision('min_accuracy'),
  maxAccuracy: doublePrecision('max_accuracy'),
  ciLower: doublePrecision('ci_lower'),
  ciUpper: doublePrecision('ci_upper'),
  meanDelta: doublePrecision('mean_delta'),
  meanF1Macro: doublePrecision('mean_f1_macro'),
  n: integer('n'),
  seeds: integer('seeds').array(),
}).existing();

/** The demonstrations of each computed cell (its draw) and the split file its examples' idx refer to. */
export const cellDemonstrations = pgView('cell_demonstrations', {
  cellKey: text('cell_key').notNull(),
  split: text('split').notNull(),
  shots: integer('shots').notNull(),
  seed: integer('seed').notNull(),
  demonstrationSplit: text('demonstration_split').notNull(),
  demonstrationRows: integer('demonstration_rows').array().notNull(),
  demonstrationLabels: integer('demonstration_labels').array().notNull(),
  examplesSplit: text('examples_split').notNull(),
}).existing();
