/**
 * What the activities and the CLI do with the results database. Every write is an idempotent
 * upsert by key: a retried or duplicated activity never duplicates rows, and a done cell is never
 * overwritten. Works on both drivers (node-postgres and PGlite). Columns of the views: db/README.md.
 */
import { and, asc, eq, gt, inArray, ne, notInArray, or, sql } from 'drizzle-orm';
import type { CellOutcome, ExampleOutcome, Split } from '../engine/types.ts';
import type { Db } from './client.ts';
import { chunks, KEY_CHUNK } from './client.ts';
import {
  cellConflicts,
  cellDeltas,
  cellResults as cellResultsView,
  cells,
  demonstrationDraws,
  examples,
  selections,
  sweepCells,
  sweeps,
  type SweepStatus,
} from './schema/index.ts';

export { createDb, migrate, queryRows, describeUrl, DEFAULT_PGLITE_DIR, MIGRATIONS_FOLDER } from './client.ts';
export * from './records.ts';
export * from './selections.ts';
export * from './draws.ts';
export type { Db, CreateDbOptions } from './client.ts';
export * as schema from './schema/index.ts';

/** Rows of the views (camelCase keys; the SQL columns are snake_case). */
export type CellResultRow = typeof cellResultsView.$inferSelect;
export type CellDeltaRow = typeof cellDeltas.$inferSelect;
export type SweepRow = typeof sweeps.$inferSelect;
export type CellRow = typeof cells.$inferSelect;

/** Rows per INSERT for examples (5 parameters each) and for links. */
const EXAMPLE_CHUNK = 1000;
const LINK_CHUNK = 500;
const MAX_ERROR_CHARS = 20_000;

/** Postgres text cannot hold NUL; keep error messages bounded. */
function cleanText(s: string): string {
  const t = s.replace(/\u0000/g, '');
  return t.length > MAX_ERROR_CHARS ? `${t.slice(0, MAX_ERROR_CHARS)}… (truncated)` : t;
}

// ---------------------------------------------------------------------------------------------
// Sweeps

export interface SweepInput {
  name: string;
  workflowId: string;
  /** The validated sweep spec (stored as JSON). */
  spec: unknown;
  /** Identity of the sweep's grid (sweepspec/grid.ts); omitted: not checked. */
  grid?: string;
  /** Take the name even when it holds another grid: its links and selections go, its cells stay. */
  replace?: boolean;
  /** Cells planned (the grid's size), for the progress record. */
  planned?: number;
}

/** Who holds a sweep name with another grid. */
export interface SweepHolder {
  workflowId: string;
  updatedAt: Date;
}

export type ClaimResult = { claimed: true; replaced: boolean } | { claimed: false; holder: SweepHolder };

/**
 * Creates the sweep, or takes its row over for a rerun (new workflow id, same grid). A different grid
 * is refused unless `replace`: then the sweep is re-linked to the new grid, its old links and
 * selections deleted (the cells stay stored, for reuse). One transaction, the row locked.
 */
export async function claimSweep(db: Db, sweep: SweepInput): Promise<ClaimResult> {
  return db.transaction(async (tx) => {
    await tx.insert(sweeps).values({ name: sweep.name, workflowId: sweep.workflowId, spec: sweep.spec as object, grid: sweep.grid ?? null }).onConflictDoNothing();
    const [row] = await tx.select().from(sweeps).where(eq(sweeps.name, sweep.name)).for('update');
    const other = sweep.grid !== undefined && row.grid !== null && row.grid !== sweep.grid;
    if (other && !sweep.replace) return { claimed: false, holder: { workflowId: row.workflowId, updatedAt: row.updatedAt } };
    if (other) {
      await tx.delete(sweepCells).where(eq(sweepCells.sweep, sweep.name));
      await tx.delete(selections).where(eq(selections.sweep, sweep.name));
    }
    await tx
      .update(sweeps)
      .set({
        workflowId: sweep.workflowId,
        spec: sweep.spec as object,
        grid: sweep.grid ?? row.grid,
        status: 'running',
        cellsPlanned: sweep.planned ?? row.cellsPlanned,
        cellsFinished: other ? 0 : row.cellsFinished,
        updatedAt: sql`now()`,
        reportedAt: sql`now()`,
      })
      .where(eq(sweeps.name, sweep.name));
    return { claimed: true, replaced: other };
  });
}

export interface SweepProgressInput {
  name: string;
  planned: number;
  finished: number;
  status: SweepStatus;
}

/** The workflow's own count of the sweep's cells (the progress gauges read it). */
export async function recordSweepProgress(db: Db, p: SweepProgressInput): Promise<void> {
  await db
    .update(sweeps)
    .set({ cellsPlanned: p.planned, cellsFinished: p.finished, status: p.status, reportedAt: sql`now()` })
    .where(eq(sweeps.name, p.name));
}

/**
 * Sweeps whose workflow reported within `runningSeconds` while running, or ended less than
 * `endedSeconds` ago (a sweep that was terminated never reports its end: it drops out after the first).
 */
export async function recentSweepProgress(
  db: Db,
  window: { runningSeconds: number; endedSeconds: number },
): Promise<{ name: string; planned: number; finished: number; status: SweepStatus }[]> {
  const since = (seconds: number) => sql`now() - make_interval(secs => ${seconds})`;
  return db
    .select({ name: sweeps.name, planned: sweeps.cellsPlanned, finished: sweeps.cellsFinished, status: sweeps.status })
    .from(sweeps)
    .where(
      or(and(eq(sweeps.status, 'running'), gt(sweeps.reportedAt, since(window.runningSeconds))), and(ne(sweeps.status, 'running'), gt(sweeps.reportedAt, since(window.endedSeconds)))),
    )
    .orderBy(asc(sweeps.name));
}

export async function sweepByName(db: Db, name: string): Promise<SweepRow | undefined> {
  const rows = await db.select().from(sweeps).where(eq(sweeps.name, name)).limit(1);
  return rows[0];
}

/** All sweeps, most recently updated first. */
export async function listSweeps(db: Db): Promise<SweepRow[]> {
  return db.select().from(sweeps).orderBy(sql`${sweeps.updatedAt} desc`, asc(sweeps.name));
}

// ---------------------------------------------------------------------------------------------
// Cells of a sweep

/** A cell as one sweep sees it (names from the spec; module/layer as in the grid). */
export interface SweepCellInput {
  key: string;
  model: string;
  dataset: string;
  /** Task name of the dataset; omitted: taken from the sweep's stored spec (builtin name, "custom", or null). */
  task?: string | null;
  module: string;
  layer: number;
  ratio: number;
  split: Split;
}

function taskFromSpec(spec: unknown): Map<string, string | null> {
  const out = new Map<string, string | null>();
  const datasets = (spec as { datasets?: { name?: unknown; task?: unknown }[] } | null)?.datasets;
  if (!Array.isArray(datasets)) return out;
  for (const d of datasets) {
    if (typeof d?.name !== 'string') continue;
    out.set(d.name, typeof d.task === 'string' ? d.task : d.task && typeof d.task === 'object' ? 'custom' : null);
  }
  return out;
}

/**
 * Records that the sweep contains these cells (idempotent; the sweep must exist: claimSweep first).
 * Duplicate keys in `cells` are linked once (first occurrence wins). Re-linking updates the coordinates
 * and keeps `reused`.
 */
export async function linkCells(db: Db, sweepName: string, cellsIn: readonly SweepCellInput[]): Promise<void> {
  if (cellsIn.length === 0) return;
  const seen = new Set<string>();
  const unique = cellsIn.filter((c) => (seen.has(c.key) ? false : (seen.add(c.key), true)));
  let tasks: Map<string, string | null> | undefined;
  if (unique.some((c) => c.task === undefined)) {
    const sweep = await sweepByName(db, sweepName);
    if (!sweep) throw new Error(`linkCells: unknown sweep "${sweepName}" (call claimSweep first)`);
    tasks = taskFromSpec(sweep.spec);
  }
  for (const part of chunks(unique, LINK_CHUNK)) {
    await db
      .insert(sweepCells)
      .values(
        part.map((c) => ({
          sweep: sweepName,
          cellKey: c.key,
          model: c.model,
          dataset: c.dataset,
          task: c.task !== undefined ? c.task : (tasks?.get(c.dataset) ?? null),
          module: c.module,
          layer: c.layer,
          ratio: c.ratio,
          split: c.split,
        })),
      )
      .onConflictDoUpdate({
        target: [sweepCells.sweep, sweepCells.cellKey],
        set: {
          model: sql`excluded.model`,
          dataset: sql`excluded.dataset`,
          task: sql`excluded.task`,
          module: sql`excluded.module`,
          layer: sql`excluded.layer`,
          ratio: sql`excluded.ratio`,
          split: sql`excluded.split`,
        },
      });
  }
}

/** The keys among `keys` whose cell is done (computed by any sweep). */
export async function findDoneCells(db: Db, keys: readonly string[]): Promise<Set<string>> {
  const done = new Set<string>();
  for (const part of chunks([...new Set(keys)], KEY_CHUNK)) {
    const rows = await db
      .select({ key: cells.key })
      .from(cells)
      .where(and(inArray(cells.key, part), eq(cells.status, 'done')));
    for (const r of rows) done.add(r.key);
  }
  return done;
}

/** Marks these cells of the sweep as reused (found done instead of computed). Returns how many rows changed. */
export async function markReused(db: Db, sweepName: string, keys: readonly string[]): Promise<number> {
  let changed = 0;
  for (const part of chunks([...new Set(keys)], KEY_CHUNK)) {
    const rows = await db
      .update(sweepCells)
      .set({ reused: true })
      .where(and(eq(sweepCells.sweep, sweepName), inArray(sweepCells.cellKey, part), eq(sweepCells.reused, false)))
      .returning({ key: sweepCells.cellKey });
    changed += rows.length;
  }
  return changed;
}

// ---------------------------------------------------------------------------------------------
// Cell results

/** Canonical coordinates of a cell (what its key covers). A ratio-0 cell: module "none", layer 0. */
export interface CellCoordinates {
  module: string;
  layer: number;
  ratio: number;
  split: Split;
  engineVersion?: string | null;
  modelFingerprint?: string | null;
  datasetFingerprint?: string | null;
  shots?: number | null;
  seed?: number | null;
  /** Anything else the key covers (sizes, scoring, ...), stored as JSON. */
  params?: unknown;
}

/** Who wrote a cell row, and with what runtime. */
export interface Provenance {
  worker: string;
  host?: string | null;
  /** Temporal's attempt number of the activity attempt (1: first try). */
  attempt?: number;
  executionProvider?: string | null;
  weightDtype?: string | null;
  onnxruntimeVersion?: string | null;
}

export interface CellResultInput extends CellCoordinates, Provenance {
  key: string;
  outcome: CellOutcome;
  /** The activity that computed it (cells.computed_by). */
  computedBy?: string;
  startedAt: Date;
  finishedAt: Date;
  /** The sweep the result was computed for (named in a conflict record). */
  sweep?: string;
}

export interface CellFailureInput extends CellCoordinates, Provenance {
  key: string;
  error: string;
  startedAt?: Date;
  finishedAt?: Date;
}

export interface CellStartInput extends CellCoordinates, Provenance {
  key: string;
  startedAt?: Date;
}

function coordinateValues(c: CellCoordinates) {
  return {
    module: c.module,
    layer: c.layer,
    ratio: c.ratio,
    split: c.split,
    engineVersion: c.engineVersion ?? null,
    modelFingerprint: c.modelFingerprint ?? null,
    datasetFingerprint: c.datasetFingerprint ?? null,
    shots: c.shots ?? null,
    seed: c.seed ?? null,
    params: (c.params ?? null) as object | null,
  };
}

function provenanceValues(p: Provenance) {
  return {
    worker: p.worker,
    host: p.host ?? null,
    attempts: p.attempt ?? 0,
    executionProvider: p.executionProvider ?? null,
    weightDtype: p.weightDtype ?? null,
    onnxruntimeVersion: p.onnxruntimeVersion ?? null,
  };
}

/**
 * What saving a finished cell did: `stored` (the first result), `duplicate` (the cell was done with
 * the same numbers: nothing written), `conflict` (done with other numbers: they went to
 * cell_conflicts, the stored result stands).
 */
export type SaveOutcome = 'stored' | 'duplicate' | 'conflict';

/**
 * Stores a finished cell, its examples and its demonstration draw (the shots and seed it actually
 * used) in one transaction (two statements for up to 1,000 examples), unless the cell is done
 * already: a done cell is never overwritten. A second completion is compared with the stored one
 * (accuracy, accuracy_norm, n, every prediction); when anything differs it is kept in cell_conflicts.
 */
export async function saveCellResult(db: Db, input: CellResultInput): Promise<SaveOutcome> {
  const { outcome } = input;
  const values = {
    ...coordinateValues(input),
    ...provenanceValues(input),
    shots: outcome.sample.shots,
    seed: outcome.sample.seed,
    status: 'done' as const,
    accuracy: outcome.accuracy,
    accuracyNorm: outcome.accuracyNorm,
    f1Macro: outcome.f1Macro,
    n: outcome.n,
    forwardTokens: Math.round(outcome.cost.forwardTokens),
    seconds: outcome.cost.seconds,
    cost: outcome.cost as unknown as object,
    startedAt: input.startedAt,
    finishedAt: input.finishedAt,
    computedBy: input.computedBy ?? null,
    error: null,
  };
  // One row per example index (the last wins should an outcome repeat one).
  const byIndex = new Map<number, ExampleOutcome>();
  for (const e of outcome.examples) byIndex.set(e.index, e);
  const rows = [...byIndex.values()].map((e) => ({ cellKey: input.key, idx: e.index, label: e.label, prediction: e.prediction, scores: e.scores }));
  return db.transaction(async (tx) => {
    // A concurrent first save holds the row until it commits; this one then sees it done.
    const written = await tx
      .insert(cells)
      .values({ key: input.key, ...values })
      .onConflictDoUpdate({ target: cells.key, set: { ...values, updatedAt: sql`now()` }, setWhere: ne(cells.status, 'done') })
      .returning({ key: cells.key });
    if (written.length === 0) return recordSecondCompletion(tx as unknown as Db, input, rows);
    await saveExamples(tx as unknown as Db, input, rows);
    return 'stored';
  });
}

/**
 * The examples of a cell just stored, in place of any it had, and its demonstration draw: one statement
 * per EXAMPLE_CHUNK examples, the first of which also stores the draw and deletes the rows it does not
 * write (the later chunks' rows it deletes are inserted again by them).
 */
async function saveExamples(db: Db, input: CellResultInput, rows: (typeof examples.$inferInsert)[]): Promise<void> {
  const { sample } = input.outcome;
  const draw = input.datasetFingerprint
    ? [
        db.$with('draw').as(
          db
            .insert(demonstrationDraws)
            .values({
              datasetFingerprint: input.datasetFingerprint,
              split: input.split,
              shots: sample.shots,
              seed: sample.seed,
              demonstrationSplit: sample.demonstrations.split,
              rows: sample.demonstrations.rows,
              labels: sample.demonstrations.labels,
              examplesSplit: sample.examplesSplit,
            })
            .onConflictDoNothing()
            .returning({ seed: demonstrationDraws.seed }),
        ),
      ]
    : [];
  const [first = [], ...rest] = chunks(rows, EXAMPLE_CHUNK);
  const keep = first.map((r) => r.idx);
  const stale = db.$with('stale').as(
    db
      .delete(examples)
      .where(and(eq(examples.cellKey, input.key), keep.length > 0 ? notInArray(examples.idx, keep) : undefined))
      .returning({ idx: examples.idx }),
  );
  if (first.length === 0) await db.with(...draw, stale).select({ idx: stale.idx }).from(stale);
  else {
    await db
      .with(...draw, stale)
      .insert(examples)
      .values(first)
      .onConflictDoUpdate({ target: [examples.cellKey, examples.idx], set: { label: sql`excluded.label`, prediction: sql`excluded.prediction`, scores: sql`excluded.scores` } });
  }
  for (const part of rest) await db.insert(examples).values(part);
}

/** A done cell completed again: nothing to do when the numbers agree, else a conflict record. */
async function recordSecondCompletion(db: Db, input: CellResultInput, rows: { idx: number; prediction: number }[]): Promise<SaveOutcome> {
  const { outcome } = input;
  const [stored] = await db.select({ accuracy: cells.accuracy, accuracyNorm: cells.accuracyNorm, n: cells.n }).from(cells).where(eq(cells.key, input.key));
  const storedPredictions = new Map(
    (await db.select({ idx: examples.idx, prediction: examples.prediction }).from(examples).where(eq(examples.cellKey, input.key))).map((e) => [e.idx, e.prediction]),
  );
  const differing = rows.filter((r) => storedPredictions.has(r.idx) && storedPredictions.get(r.idx) !== r.prediction).length;
  const same =
    stored.accuracy === outcome.accuracy && stored.accuracyNorm === outcome.accuracyNorm && stored.n === outcome.n && storedPredictions.size === rows.length && differing === 0;
  if (same) return 'duplicate';
  // The same provenance as a cell row, but the attempt is null when unknown (a cell row stores 0).
  const { attempts: _, ...provenance } = provenanceValues(input);
  await db.insert(cellConflicts).values({
    cellKey: input.key,
    sweep: input.sweep ?? null,
    accuracy: outcome.accuracy,
    accuracyNorm: outcome.accuracyNorm,
    n: outcome.n,
    differingPredictions: differing,
    ...provenance,
    attempt: input.attempt ?? null,
    engineVersion: input.engineVersion ?? null,
  });
  return 'conflict';
}

/** Records a failed attempt (status failed, error). Never overwrites a done cell; false when it was done. */
export async function saveCellFailure(db: Db, input: CellFailureInput): Promise<boolean> {
  const error = cleanText(input.error);
  const values = {
    ...coordinateValues(input),
    ...provenanceValues(input),
    status: 'failed' as const,
    error,
    startedAt: input.startedAt ?? null,
    finishedAt: input.finishedAt ?? new Date(),
  };
  const rows = await db
    .insert(cells)
    .values({ key: input.key, ...values })
    .onConflictDoUpdate({ target: cells.key, set: { ...values, updatedAt: sql`now()` }, setWhere: ne(cells.status, 'done') })
    .returning({ key: cells.key });
  return rows.length > 0;
}

/** Marks a cell running (for progress views). Never touches a done cell. Returns false when already done. */
export async function markCellRunning(db: Db, input: CellStartInput): Promise<boolean> {
  const values = {
    ...coordinateValues(input),
    ...provenanceValues(input),
    status: 'running' as const,
    startedAt: input.startedAt ?? new Date(),
    finishedAt: null,
  };
  const rows = await db
    .insert(cells)
    .values({ key: input.key, ...values })
    .onConflictDoUpdate({ target: cells.key, set: { ...values, updatedAt: sql`now()` }, setWhere: ne(cells.status, 'done') })
    .returning({ key: cells.key });
  return rows.length > 0;
}

/** Conflict records of a cell (second completions with other numbers), oldest first. */
export async function cellConflictRows(db: Db, key: string): Promise<(typeof cellConflicts.$inferSelect)[]> {
  return db.select().from(cellConflicts).where(eq(cellConflicts.cellKey, key)).orderBy(asc(cellConflicts.id));
}

export async function cellByKey(db: Db, key: string): Promise<CellRow | undefined> {
  const rows = await db.select().from(cells).where(eq(cells.key, key)).limit(1);
  return rows[0];
}

/** Per-example predictions of a cell, by index (empty when the cell is not done). */
export async function cellExamples(db: Db, key: string): Promise<ExampleOutcome[]> {
  const rows = await db
    .select({ index: examples.idx, label: examples.label, prediction: examples.prediction, scores: examples.scores })
    .from(examples)
    .where(eq(examples.cellKey, key))
    .orderBy(asc(examples.idx));
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Views

const resultOrder = (v: typeof cellResultsView | typeof cellDeltas) => [asc(v.model), asc(v.dataset), asc(v.split), asc(v.module), asc(v.layer), asc(v.ratio), asc(v.cellKey)];

/** Rows of the cell_results view for the sweep, ordered by model, dataset, split, module, layer, ratio. */
export async function cellResults(db: Db, sweepName: string): Promise<CellResultRow[]> {
  return db.select().from(cellResultsView).where(eq(cellResultsView.sweep, sweepName)).orderBy(...resultOrder(cellResultsView));
}

/** Rows of the cell_deltas view for the sweep (same order as cellResults). */
export async function cellDeltaRows(db: Db, sweepName: string): Promise<CellDeltaRow[]> {
  return db.select().from(cellDeltas).where(eq(cellDeltas.sweep, sweepName)).orderBy(...resultOrder(cellDeltas));
}

export interface SweepCounts {
  total: number;
  pending: number;
  running: number;
  done: number;
  failed: number;
  reused: number;
}

/** Cell counts of the sweep by status (from cell_results). */
export async function sweepCounts(db: Db, sweepName: string): Promise<SweepCounts> {
  const rows = await db
    .select({
      status: cellResultsView.status,
      n: sql<number>`count(*)::int`,
      reused: sql<number>`(count(*) filter (where ${cellResultsView.reused}))::int`,
    })
    .from(cellResultsView)
    .where(eq(cellResultsView.sweep, sweepName))
    .groupBy(cellResultsView.status);
  const out: SweepCounts = { total: 0, pending: 0, running: 0, done: 0, failed: 0, reused: 0 };
  for (const r of rows) {
    const n = Number(r.n);
    out.total += n;
    out.reused += Number(r.reused);
    if (r.status === 'pending' || r.status === 'running' || r.status === 'done' || r.status === 'failed') out[r.status] += n;
  }
  return out;
}
