/**
 * The paper's Algorithm 1, selection step: per (model, dataset), keep the validation cell with the
 * best accuracy. Pure and deterministic: no I/O, no clock, no randomness. The selection activity
 * runs it next to the data; the workflow only sees its result type.
 */
import { MODULES, type ModuleName } from '../engine/vocabulary.ts';

/** One finished cell of the validation grid, as the workflow sees it. */
export interface ValidationResult {
  model: string;
  dataset: string;
  module: ModuleName;
  /** -1: every layer at once. */
  layer: number;
  ratio: number;
  accuracy: number;
  cellKey: string;
}

/** The cell picked for one (model, dataset), to be evaluated on the test split against the unpruned model. */
export interface Selection {
  model: string;
  dataset: string;
  module: ModuleName;
  layer: number;
  ratio: number;
  validationAccuracy: number;
  validationCellKey: string;
}

const MODULE_RANK = new Map<string, number>(MODULES.map((m, i) => [m, i]));

function moduleRank(module: string): number {
  return MODULE_RANK.get(module) ?? MODULES.length;
}

/**
 * Negative when `a` is the better pick, positive when `b` is, 0 only for identical coordinates and key.
 *
 * The order, in turn:
 *  1. the highest validation accuracy;
 *  2. the lowest ratio (the smallest change to the model; ratio 0, the unpruned model, wins every
 *     tie it is part of);
 *  3. the deepest layer (the highest index; -1, "every layer at once", counts as the shallowest,
 *     as its index says);
 *  4. the earliest module in `MODULES` of engine/vocabulary.ts (q_proj, k_proj, v_proj, out_proj, fc_in,
 *     fc_up, fc_out, mlp, attn, all); names outside that list come after it, in code-point order;
 *  5. the smallest cell key in code-point order (only reached by duplicates of one cell).
 */
export function compareCandidates(a: ValidationResult, b: ValidationResult): number {
  if (a.accuracy !== b.accuracy) return a.accuracy > b.accuracy ? -1 : 1;
  if (a.ratio !== b.ratio) return a.ratio < b.ratio ? -1 : 1;
  if (a.layer !== b.layer) return a.layer > b.layer ? -1 : 1;
  const ra = moduleRank(a.module);
  const rb = moduleRank(b.module);
  if (ra !== rb) return ra - rb;
  if (a.module !== b.module) return a.module < b.module ? -1 : 1;
  if (a.cellKey !== b.cellKey) return a.cellKey < b.cellKey ? -1 : 1;
  return 0;
}

/**
 * Pick the best validation cell of each (model, dataset).
 *
 * Rule (see {@link compareCandidates}): highest validation accuracy; on ties the lowest ratio, then
 * the deepest layer (-1 = every layer counts as the shallowest), then the module that comes first in
 * `MODULES` (engine/vocabulary.ts), then the smallest cell key. Ratio-0 cells (the unpruned model) are
 * candidates like any other: when nothing beats the unpruned model, the selection is ratio 0 and the
 * test comparison is the baseline against itself.
 *
 * Results whose accuracy is not a finite number are ignored; a (model, dataset) with no usable
 * result gets no selection. The pick does not depend on the order of `results`; the returned list
 * has one entry per (model, dataset), in the order each pair first appears in `results` (grid order
 * when the workflow passes its results in grid order).
 */
export function selectBest(results: readonly ValidationResult[]): Selection[] {
  const best = new Map<string, ValidationResult>();
  const order: string[] = [];
  for (const r of results) {
    if (typeof r.accuracy !== 'number' || !Number.isFinite(r.accuracy)) continue;
    // JSON of the pair: unambiguous whatever characters the names hold.
    const group = JSON.stringify([r.model, r.dataset]);
    const current = best.get(group);
    if (current === undefined) {
      best.set(group, r);
      order.push(group);
    } else if (compareCandidates(r, current) < 0) {
      best.set(group, r);
    }
  }
  return order.map((group) => {
    const r = best.get(group)!;
    return {
      model: r.model,
      dataset: r.dataset,
      module: r.module,
      layer: r.layer,
      ratio: r.ratio,
      validationAccuracy: r.accuracy,
      validationCellKey: r.cellKey,
    };
  });
}
