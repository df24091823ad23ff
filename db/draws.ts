/**
 * Reads over demonstration draws: the paired examples of two cells (for the selection rules and the
 * report's paired tests) and the cell_draw_summaries view. Read-only. Re-exported by db/queries.ts.
 */
import { asc, eq, sql } from 'drizzle-orm';
import { chunks, queryRows, type Db } from './client.ts';
import { cellDrawSummaries } from './schema/index.ts';

export type CellDrawSummaryRow = typeof cellDrawSummaries.$inferSelect;

/** Two cells' examples joined on the example index: n shared, b = only the baseline right, c = only the cell right. */
export interface PairedCounts {
  n: number;
  b: number;
  c: number;
  /** Examples of the two cells that have no partner, or a partner with another label (the cells hold different examples). */
  unmatched: number;
}

const PAIR_CHUNK = 200;

/** The key of a (cell, baseline) pair in pairedCounts' result. */
export function pairKey(cellKey: string, baselineKey: string): string {
  return `${cellKey} ${baselineKey}`;
}

/** Paired counts of each (cell, baseline) pair whose two cells both have examples stored, by pairKey. */
export async function pairedCounts(db: Db, pairs: readonly { cellKey: string; baselineKey: string }[]): Promise<Map<string, PairedCounts>> {
  const out = new Map<string, PairedCounts>();
  const unique = [...new Map(pairs.map((p) => [pairKey(p.cellKey, p.baselineKey), p])).values()];
  for (const part of chunks(unique, PAIR_CHUNK)) {
    const rows = await queryRows<{ cell_key: string; baseline_key: string; n: number; b: number; c: number; unmatched: number }>(
      db,
      sql`
      WITH p AS (SELECT * FROM json_to_recordset(${JSON.stringify(part)}::json) AS p("cellKey" text, "baselineKey" text))
      SELECT p."cellKey" AS cell_key, p."baselineKey" AS baseline_key,
        (count(*) FILTER (WHERE j.x_label = j.b_label))::int AS n,
        (count(*) FILTER (WHERE j.x_label = j.b_label AND j.b_prediction = j.b_label AND j.x_prediction <> j.x_label))::int AS b,
        (count(*) FILTER (WHERE j.x_label = j.b_label AND j.b_prediction <> j.b_label AND j.x_prediction = j.x_label))::int AS c,
        (count(*) FILTER (WHERE j.x_label IS NULL OR j.b_label IS NULL OR j.x_label <> j.b_label))::int AS unmatched
      FROM p
      JOIN LATERAL (
        SELECT x.label AS x_label, x.prediction AS x_prediction, b.label AS b_label, b.prediction AS b_prediction
        FROM (SELECT idx, label, prediction FROM examples WHERE cell_key = p."cellKey") x
        FULL JOIN (SELECT idx, label, prediction FROM examples WHERE cell_key = p."baselineKey") b ON b.idx = x.idx
      ) j ON true
      GROUP BY p."cellKey", p."baselineKey"`,
    );
    for (const r of rows) out.set(pairKey(r.cell_key, r.baseline_key), { n: Number(r.n), b: Number(r.b), c: Number(r.c), unmatched: Number(r.unmatched) });
  }
  return out;
}

/** Rows of the cell_draw_summaries view for the sweep, ordered by model, dataset, split, module, layer, ratio. */
export async function cellDrawSummaryRows(db: Db, sweepName: string): Promise<CellDrawSummaryRow[]> {
  const v = cellDrawSummaries;
  return db.select().from(v).where(eq(v.sweep, sweepName)).orderBy(asc(v.model), asc(v.dataset), asc(v.split), asc(v.module), asc(v.layer), asc(v.ratio));
}
