/**
 * The selection step's database side: the grid's validation results -> selectBest (the pure rule of
 * analysis/selection.ts), and storing the picks. The rule runs here, next to the data, so a
 * 10,000-cell grid's accuracies never travel through the workflow history.
 */
import { cellResults, saveSelections } from '../db/queries.ts';
import { selectBest, type Selection, type ValidationResult } from '../analysis/selection.ts';
import type { ModuleName } from '../engine/vocabulary.ts';
import type { SaveSelectionsInput, SelectOnValidationInput } from './types.ts';
import type { ActivityContext } from './context.ts';
import { activityOutage } from './outage.ts';

export function selectionActivities(ctx: ActivityContext) {
  return {
    async selectOnValidation({ sweep }: SelectOnValidationInput): Promise<Selection[]> {
      // The sweep's links are its current grid only (claimSweep drops those of a grid it replaces).
      const rows = (await activityOutage(ctx.outageToleranceMs)('read validation results', () => cellResults(ctx.db, sweep))).filter(
        (r) => r.split === 'validation' && r.status === 'done' && typeof r.accuracy === 'number',
      );
      const results: ValidationResult[] = rows.map((r) => ({
        model: r.model,
        dataset: r.dataset,
        module: r.module as ModuleName,
        layer: r.layer,
        ratio: r.ratio,
        accuracy: r.accuracy as number,
        cellKey: r.cellKey,
      }));
      return selectBest(results);
    },

    async saveSelections({ sweep, rows }: SaveSelectionsInput): Promise<void> {
      await activityOutage(ctx.outageToleranceMs)('save selections', () => saveSelections(ctx.db, sweep, rows));
    },
  };
}
