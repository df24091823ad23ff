/** Linking cells to a sweep (finding those already done) and recording failed cells. */
import { findDoneCells, linkCells, markReused, saveCellFailure } from '../db/queries.ts';
import type { LinkCellsInput, RecordCellFailureInput } from './types.ts';
import type { ActivityContext } from './context.ts';

export function cellActivities(ctx: ActivityContext) {
  return {
    /** Links the cells to the sweep (idempotent) and returns the keys already done, marking them reused. */
    async linkCells({ sweep, cells, total, finished }: LinkCellsInput): Promise<string[]> {
      await linkCells(
        ctx.db,
        sweep,
        cells.map((c) => ({ key: c.key, model: c.model, dataset: c.dataset, module: c.module, layer: c.layer, ratio: c.ratio, split: c.split })),
      );
      const done = await findDoneCells(
        ctx.db,
        cells.map((c) => c.key),
      );
      if (done.size > 0) {
        await markReused(ctx.db, sweep, [...done]);
        const perLabel = new Map<string, { model: string; dataset: string; n: number }>();
        for (const c of cells) {
          if (!done.has(c.key)) continue;
          const id = `${c.model}\u0000${c.dataset}`;
          const entry = perLabel.get(id) ?? { model: c.model, dataset: c.dataset, n: 0 };
          entry.n++;
          perLabel.set(id, entry);
        }
        for (const e of perLabel.values()) ctx.metrics.cellsReused({ sweep, model: e.model, dataset: e.dataset }, e.n);
      }
      ctx.metrics.sweepProgress(sweep, total, finished + done.size);
      return [...done];
    },

    /** Stores a cell's failure (never over a done cell). */
    async recordCellFailure({ cell, identity, error }: RecordCellFailureInput): Promise<void> {
      await saveCellFailure(ctx.db, {
        key: cell.key,
        module: cell.module,
        layer: cell.layer,
        ratio: cell.ratio,
        split: cell.split,
        ...identity,
        error,
        worker: ctx.workerName,
      });
    },
  };
}
