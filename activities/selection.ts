/**
 * The selection step's database side: the grid's validation results -> selectBest (the pure rule of
 * analysis/selection.ts), and storing the picks. The rule runs here, next to the data, so a
 * 10,000-cell grid's accuracies never travel through the workflow history.
 */
import { cellResults, saveSelections } from '../db/queries.ts';
import { expandCells } from '../sweepspec/cells.ts';
import { selectBest, type Selection, type ValidationResult } from '../analysis/selection.ts';
import type { ModuleName } from '../engine/vocabulary.ts';
import type { SaveSelectionsInput, SelectOnValidationInput } from './types.ts';
import type { ActivityContext } from './context.ts';

export function selectionActivities(ctx: ActivityContext) {
  return {
    async selectOnValidation({ sweep, spec, prepared }: SelectOnValidationInput): Promise<Selection[]> {
      // Only this grid's cells (a sweep name reused with another spec may have older links).
      const grid = expandCells(spec, prepared, 'validation');
      const keys = new Set(grid.map((c) => c.key));
      const order = new Map(grid.map((c, i) => [c.key, i]));
      const rows = (await cellResults(ctx.db, sweep)).filter(
        (r) => r.split === 'validation' && r.status === 'done' && keys.has(r.cellKey) && typeof r.accuracy === 'number',
      );
      rows.sort((a, b) => order.get(a.cellKey)! - order.get(b.cellKey)!);
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
      await saveSelections(ctx.db, sweep, rows);
    },
  };
}
