/**
 * The one read the report needs beyond db/queries.ts: the per-example predictions (without scores)
 * of many cells at once. A plain drizzle select on the examples table; nothing here writes.
 */
import { asc, inArray } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { examples } from '../db/schema/index.ts';

export interface PredictionRow {
  idx: number;
  label: number;
  prediction: number;
}

/** Per-example predictions of the given cells, by cell key, ordered by example index; a cell without examples is absent. */
export async function loadPredictions(db: Db, cellKeys: readonly string[]): Promise<Map<string, PredictionRow[]>> {
  const out = new Map<string, PredictionRow[]>();
  const keys = [...new Set(cellKeys)];
  for (let i = 0; i < keys.length; i += 500) {
    const rows = await db
      .select({ cellKey: examples.cellKey, idx: examples.idx, label: examples.label, prediction: examples.prediction })
      .from(examples)
      .where(inArray(examples.cellKey, keys.slice(i, i + 500)))
      .orderBy(asc(examples.cellKey), asc(examples.idx));
    for (const r of rows) {
      let list = out.get(r.cellKey);
      if (!list) out.set(r.cellKey, (list = []));
      list.push({ idx: r.idx, label: r.label, prediction: r.prediction });
    }
  }
  return out;
}
