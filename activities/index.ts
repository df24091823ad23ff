/**
 * The sweep's activities, built from a worker's context (engine + db + metrics): thin adapters,
 * no ML or SQL of their own.
 */
import type { ActivityContext, CellActivityContext } from './context.ts';
import type { CellActivities, SweepActivities } from './types.ts';
import { prepareActivities } from './prepare.ts';
import { cellActivities } from './cells.ts';
import { evaluateActivities } from './evaluate.ts';
import { selectionActivities } from './selection.ts';

export type { ActivityContext, CellActivityContext } from './context.ts';
export type * from './types.ts';

/** Activities of the sweep's own task queue (light: the database only, no model or dataset files). */
export function createSweepActivities(ctx: ActivityContext): SweepActivities {
  return { ...cellActivities(ctx), ...selectionActivities(ctx) };
}

/** The activities that read model and dataset files, for the cells (GPU) task queue: prepare and evaluate. */
export function createCellActivities(ctx: CellActivityContext): CellActivities {
  return { ...prepareActivities(ctx), ...evaluateActivities(ctx) };
}
