/**
 * The sweep's activities, built from a worker's context (engine + db + metrics): thin adapters,
 * no ML or SQL of their own.
 */
import type { ActivityContext } from './context.ts';
import type { CellActivities, SweepActivities } from './types.ts';
import { prepareActivities } from './prepare.ts';
import { cellActivities } from './cells.ts';
import { evaluateActivities } from './evaluate.ts';
import { selectionActivities } from './selection.ts';

export type { ActivityContext } from './context.ts';
export type * from './types.ts';

/** Activities of the sweep's own task queue (light: database and file fingerprints). */
export function createSweepActivities(ctx: ActivityContext): SweepActivities {
  return { ...prepareActivities(ctx), ...cellActivities(ctx), ...selectionActivities(ctx) };
}

/** The cell activity, for the cells (GPU) task queue. */
export function createCellActivities(ctx: ActivityContext): CellActivities {
  return evaluateActivities(ctx);
}
