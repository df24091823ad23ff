/**
 * The selection step's records: one pick per (sweep, model, dataset) with its rule's decision, and
 * the pick's test cells per demonstration draw. Writes are idempotent upserts (a retried activity
 * writes the same rows). Re-exported by db/queries.ts.
 */
import { and, asc, eq, getTableColumns, gte, sql } from 'drizzle-orm';
import { chunks, type Db } from './client.ts';
import { selectionDraws, selectionResults as selectionResultsView, selections } from './schema/index.ts';

export type SelectionResultRow = typeof selectionResultsView.$inferSelect;

/** The test cells of one draw of a pick. */
export interface SelectionDrawInput {
  /** The draw's seed; null: the spec gave none. */
  seed: number | null;
  validationCellKey: string;
  baselineCellKey: string;
  selectedCellKey: string;
}

export interface SelectionInput {
  model: string;
  dataset: string;
  module: string;
  layer: number;
  ratio: number;
  /** Mean over the draws. */
  validationAccuracy: number;
  validationCellKey: string;
  /** Test cell of the unpruned model (the first draw). */
  baselineCellKey: string;
  /** Test cell of the selected (module, layer, ratio) (the first draw). */
  selectedCellKey: string;
  rule?: { rule: string; level?: number; correction?: string };
  baselineValidationAccuracy?: number | null;
  gain?: { gain: number; lower: number; upper: number; pValue: number } | null;
  /** The whole decision, stored as JSON. */
  decision?: unknown;
  /** Every draw in seed order (default: the one draw of the columns above). */
  drawCells?: SelectionDrawInput[];
}

const SELECTION_CHUNK = 500;
const SELECTION_COLUMNS = getTableColumns(selections);
const SELECTION_KEY = new Set(['sweep', 'model', 'dataset']);

/** Upserts one selection per (sweep, model, dataset) and its draws (idempotent; the sweep must exist). */
export async function saveSelections(db: Db, sweepName: string, rows: readonly SelectionInput[]): Promise<void> {
  if (rows.length === 0) return;
  const byKey = new Map<string, SelectionInput>();
  for (const r of rows) byKey.set(JSON.stringify([r.model, r.dataset]), r); // last wins within one call
  for (const part of chunks([...byKey.values()], SELECTION_CHUNK)) {
    const values = part.map((r) => ({
      sweep: sweepName,
      model: r.model,
      dataset: r.dataset,
      module: r.module,
      layer: r.layer,
      ratio: r.ratio,
      validationAccuracy: r.validationAccuracy,
      validationCellKey: r.validationCellKey,
      baselineCellKey: r.baselineCellKey,
      selectedCellKey: r.selectedCellKey,
      rule: r.rule?.rule ?? 'paper',
      level: r.rule?.level ?? null,
      correction: r.rule?.correction ?? null,
      draws: drawsOf(r).length,
      baselineValidationAccuracy: r.baselineValidationAccuracy ?? null,
      validationGain: r.gain?.gain ?? null,
      validationGainLower: r.gain?.lower ?? null,
      validationGainUpper: r.gain?.upper ?? null,
      validationGainP: r.gain?.pValue ?? null,
      decision: r.decision ?? null,
    }));
    // A pick saved again: every column this save writes, its key aside, takes the new value.
    const updated = Object.fromEntries(
      Object.keys(values[0])
        .filter((key) => !SELECTION_KEY.has(key))
        .map((key) => [key, sql.raw(`excluded."${SELECTION_COLUMNS[key as keyof typeof SELECTION_COLUMNS].name}"`)]),
    );
    await db.insert(selections).values(values).onConflictDoUpdate({ target: [selections.sweep, selections.model, selections.dataset], set: updated });
  }
  for (const r of byKey.values()) {
    const draws = drawsOf(r);
    await db
      .insert(selectionDraws)
      .values(draws.map((d, draw) => ({ sweep: sweepName, model: r.model, dataset: r.dataset, draw, ...d })))
      .onConflictDoUpdate({
        target: [selectionDraws.sweep, selectionDraws.model, selectionDraws.dataset, selectionDraws.draw],
        set: {
          seed: sql`excluded.seed`,
          validationCellKey: sql`excluded.validation_cell_key`,
          baselineCellKey: sql`excluded.baseline_cell_key`,
          selectedCellKey: sql`excluded.selected_cell_key`,
        },
      });
    // A pick saved again with fewer draws keeps none of the old extra ones.
    const own = and(eq(selectionDraws.sweep, sweepName), eq(selectionDraws.model, r.model), eq(selectionDraws.dataset, r.dataset));
    await db.delete(selectionDraws).where(and(own, gte(selectionDraws.draw, draws.length)));
  }
}

function drawsOf(r: SelectionInput): SelectionDrawInput[] {
  return r.drawCells ?? [{ seed: null, validationCellKey: r.validationCellKey, baselineCellKey: r.baselineCellKey, selectedCellKey: r.selectedCellKey }];
}

/** Rows of the selection_results view for the sweep, by model and dataset. */
export async function selectionResults(db: Db, sweepName: string): Promise<SelectionResultRow[]> {
  return db
    .select()
    .from(selectionResultsView)
    .where(eq(selectionResultsView.sweep, sweepName))
    .orderBy(asc(selectionResultsView.model), asc(selectionResultsView.dataset));
}

export type SelectionDrawRow = typeof selectionDraws.$inferSelect;

/** The draws of the sweep's selections, by model, dataset and draw. */
export async function selectionDrawRows(db: Db, sweepName: string): Promise<SelectionDrawRow[]> {
  return db
    .select()
    .from(selectionDraws)
    .where(eq(selectionDraws.sweep, sweepName))
    .orderBy(asc(selectionDraws.model), asc(selectionDraws.dataset), asc(selectionDraws.draw));
}
