/**
 * The selection step's database side: the grid's validation results, each paired with the unpruned
 * cell of its draw -> selectCells (the pure rules of analysis/selection.ts), and storing the picks.
 * The rule runs here, next to the data, so a 10,000-cell grid's accuracies and examples never travel
 * through the workflow history.
 */
import { cellResults, pairedCounts, pairKey, saveSelections, type CellResultRow } from '../db/queries.ts';
import { selectCells, type Selection, type ValidationResult } from '../analysis/selection.ts';
import type { ModuleName } from '../engine/vocabulary.ts';
import type { SaveSelectionsInput, SelectOnValidationInput } from './types.ts';
import type { ActivityContext } from './context.ts';
import { activityOutage } from './outage.ts';

export function selectionActivities(ctx: ActivityContext) {
  return {
    async selectOnValidation({ sweep, rule }: SelectOnValidationInput): Promise<Selection[]> {
      const outage = activityOutage(ctx.outageToleranceMs);
      // The sweep's links are its current grid only (claimSweep drops those of a grid it replaces).
      const rows = (await outage('read validation results', () => cellResults(ctx.db, sweep))).filter(
        (r) => r.split === 'validation' && r.status === 'done' && typeof r.accuracy === 'number',
      );
      // A draw is the seed a cell used (cells.seed): each cell against the unpruned cell of its own draw.
      const draw = (r: CellResultRow) => JSON.stringify([r.model, r.dataset, r.seed]);
      const unpruned = new Map(rows.filter((r) => r.ratio === 0).map((r) => [draw(r), r.cellKey]));
      const baselineOf = (r: CellResultRow) => (r.ratio === 0 ? undefined : unpruned.get(draw(r)));
      const pairs = rows.flatMap((r) => {
        const baselineKey = baselineOf(r);
        return baselineKey === undefined ? [] : [{ cellKey: r.cellKey, baselineKey }];
      });
      const counts = await outage('pair validation examples', () => pairedCounts(ctx.db, pairs));
      const results: ValidationResult[] = rows.map((r) => {
        const baselineKey = baselineOf(r);
        const paired = baselineKey === undefined ? undefined : counts.get(pairKey(r.cellKey, baselineKey));
        return {
          model: r.model,
          dataset: r.dataset,
          module: r.module as ModuleName,
          layer: r.layer,
          ratio: r.ratio,
          accuracy: r.accuracy as number,
          cellKey: r.cellKey,
          seed: r.seed,
          // A cell whose examples do not all pair with its draw's unpruned cell cannot be tested against it.
          paired: paired && paired.unmatched === 0 && paired.n > 0 ? { n: paired.n, b: paired.b, c: paired.c } : null,
        };
      });
      return selectCells(results, rule);
    },

    async saveSelections({ sweep, rows }: SaveSelectionsInput): Promise<void> {
      const stored = rows.map((s) => ({
        ...s,
        decision: { rule: s.rule, draws: s.draws, baselineValidationAccuracy: s.baselineValidationAccuracy, gain: s.gain, bestPruned: s.bestPruned, candidates: s.candidates, significant: s.significant },
      }));
      await activityOutage(ctx.outageToleranceMs)('save selections', () => saveSelections(ctx.db, sweep, stored));
    },
  };
}
