/** Linking cells to a sweep (finding those already done), recording failed cells, and the sweep's progress. */
import { findDoneCells, linkCells, markReused, recordSweepProgress, saveCellFailure } from '../db/queries.ts';
import type { LinkCellsInput, RecordCellFailureInput, RecordProgressInput } from './types.ts';
import type { ActivityContext } from './context.ts';
import { activityOutage } from './outage.ts';

export function cellActivities(ctx: ActivityContext) {
  const database = () => activityOutage(ctx.outageToleranceMs);
  return {
    /** Links the cells to the sweep (idempotent) and returns the keys already done, marking them reused. */
    async linkCells({ sweep, cells }: LinkCellsInput): Promise<string[]> {
      const db = database();
      await db('link cells', () => linkCells(ctx.db, sweep, cells));
      const done = await db('look cells up', () => findDoneCells(ctx.db, cells.map((c) => c.key)));
      if (done.size > 0) {
        await db('mark cells reused', () => markReused(ctx.db, sweep, [...done]));
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
      return [...done];
    },

    /** Stores a cell's failure (never over a done cell). */
    async recordCellFailure({ cell, identity, error, attempt }: RecordCellFailureInput): Promise<void> {
      await database()('record the failure', () =>
        saveCellFailure(ctx.db, {
          key: cell.key,
          module: cell.module,
          layer: cell.layer,
          ratio: cell.ratio,
          split: cell.split,
          ...identity,
          error,
          worker: ctx.workerName,
          host: ctx.host,
          attempt,
        }),
      );
    },

    /** The workflow's count of its cells, read by the progress gauges (activities/metrics.ts). */
    async recordProgress({ sweep, planned, finished, status }: RecordProgressInput): Promise<void> {
      await database()('record progress', () => recordSweepProgress(ctx.db, { name: sweep, planned, finished, status }));
    },
  };
}
