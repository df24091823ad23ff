/**
 * What the prompt and export commands read about stored cells: cells and their demonstration draws
 * by key, every example of a sweep's cells with their coordinates, and the cell_results view's
 * columns (for tables that follow the view). Re-exported by db/queries.ts.
 */
import { and, eq, getViewSelectedFields, inArray, type Column } from 'drizzle-orm';
import { chunks, KEY_CHUNK, type Db } from './client.ts';
import { cellDemonstrations, cellResults as cellResultsView, cells, examples, sweepCells } from './schema/index.ts';

export type CellDemonstrationsRow = typeof cellDemonstrations.$inferSelect;
type CellRow = typeof cells.$inferSelect;

/** The demonstration draw of a computed cell (undefined when it has none stored). */
export async function cellDemonstrationsOf(db: Db, key: string): Promise<CellDemonstrationsRow | undefined> {
  return (await cellDemonstrationsByKey(db, [key])).get(key);
}

/** The cells among `keys` that exist, by key. */
export async function cellsByKey(db: Db, keys: readonly string[]): Promise<Map<string, CellRow>> {
  const out = new Map<string, CellRow>();
  for (const part of chunks([...new Set(keys)], KEY_CHUNK)) for (const r of await db.select().from(cells).where(inArray(cells.key, part))) out.set(r.key, r);
  return out;
}

/** The demonstration draws of the cells among `keys` that have one, by cell key. */
export async function cellDemonstrationsByKey(db: Db, keys: readonly string[]): Promise<Map<string, CellDemonstrationsRow>> {
  const out = new Map<string, CellDemonstrationsRow>();
  for (const part of chunks([...new Set(keys)], KEY_CHUNK)) {
    for (const r of await db.select().from(cellDemonstrations).where(inArray(cellDemonstrations.cellKey, part))) out.set(r.cellKey, r);
  }
  return out;
}

/** The cell_results view's columns in order: SQL name, key in a typed row, and drizzle's column type (PgText, PgInteger, ...). */
export function cellResultColumns(): { name: string; key: string; columnType: string }[] {
  return Object.entries(getViewSelectedFields(cellResultsView) as Record<string, Column>).map(([key, c]) => ({ name: c.name, key, columnType: c.columnType }));
}

/** One example of a cell, with the cell's coordinates as a sweep sees them. */
export interface SweepExampleRow {
  model: string;
  dataset: string;
  task: string | null;
  module: string;
  layer: number;
  ratio: number;
  split: string;
  cellKey: string;
  idx: number;
  label: number;
  prediction: number;
  correct: boolean;
  scores: number[];
}

/** The examples of these cells of the sweep, by cell (in the order given) then index. */
export async function sweepExamples(db: Db, sweepName: string, keys: readonly string[]): Promise<SweepExampleRow[]> {
  const order = new Map(keys.map((k, i) => [k, i]));
  const out: SweepExampleRow[] = [];
  for (const part of chunks([...new Set(keys)], KEY_CHUNK)) {
    const rows = await db
      .select({
        model: sweepCells.model,
        dataset: sweepCells.dataset,
        task: sweepCells.task,
        module: sweepCells.module,
        layer: sweepCells.layer,
        ratio: sweepCells.ratio,
        split: sweepCells.split,
        cellKey: examples.cellKey,
        idx: examples.idx,
        label: examples.label,
        prediction: examples.prediction,
        scores: examples.scores,
      })
      .from(sweepCells)
      .innerJoin(examples, eq(examples.cellKey, sweepCells.cellKey))
      .where(and(eq(sweepCells.sweep, sweepName), inArray(sweepCells.cellKey, part)));
    for (const r of rows) out.push({ ...r, correct: r.label === r.prediction });
  }
  return out.sort((a, b) => order.get(a.cellKey)! - order.get(b.cellKey)! || a.idx - b.idx);
}
