/**
 * The selection rules over demonstration draws (analysis/selection.ts) on hand-built results whose
 * answers are known: five draws of 100 validation examples, the unpruned model right on 50 of each.
 *  - A (mlp 10 0.5): +0.15 in every draw: p = 0.00105 (Holm x3: 0.0031);
 *  - B (mlp 10 0.9): the best mean (+0.24) but +0.5, -0.2, +0.6, -0.1, +0.4: p = 0.215;
 *  - C (attn 5 0.5): +0.20 on average, +0.35 / +0.05 alternating: p = 0.0407 (Holm x2: 0.081).
 * p-values: the t test of analysis/draws.ts, checked against scipy in draws.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { selectCells, type SelectionRule, type ValidationResult } from '../../analysis/selection.ts';
import type { ModuleName } from '../../engine/vocabulary.ts';

const SEEDS = [42, 43, 44, 45, 46];

/** One grid point over the five draws: per draw the (b, c) pairs against the unpruned model. */
function point(module: ModuleName | 'none', layer: number, ratio: number, pairs: Array<[number, number]> | null): ValidationResult[] {
  return SEEDS.map((seed, i) => {
    const [b, c] = pairs ? pairs[i] : [0, 0];
    return {
      model: 'smollm2',
      dataset: 'yelp',
      module: module as ModuleName,
      layer,
      ratio,
      accuracy: (50 - b + c) / 100,
      cellKey: `${module}/${layer}/${ratio}/${seed}`,
      seed,
      paired: pairs ? { n: 100, b, c } : undefined,
    };
  });
}

const UNPRUNED = point('none', 0, 0, null);
const A = point('mlp', 10, 0.5, [[1, 16], [2, 17], [0, 15], [1, 16], [3, 18]]);
const B = point('mlp', 10, 0.9, [[0, 50], [20, 0], [0, 60], [10, 0], [0, 40]]);
const C = point('attn', 5, 0.5, [[0, 35], [5, 10], [2, 37], [0, 5], [0, 20]]);
const ALL = [...UNPRUNED, ...A, ...B, ...C];

const significant = (level = 0.05, correction: 'holm' | 'none' = 'holm'): SelectionRule => ({ rule: 'significant', level, correction });
const at = (s: { module: string; layer: number; ratio: number }) => `${s.module}/${s.layer}/${s.ratio}`;

describe('selection rules over demonstration draws', () => {
  it("paper: the best mean validation accuracy (B), whatever its draws' spread", () => {
    const [s] = selectCells(ALL, { rule: 'paper' });
    expect(at(s)).toBe('mlp/10/0.9');
    expect(s).toMatchObject({ validationAccuracy: 0.74, validationCellKey: 'mlp/10/0.9/42', draws: 5, baselineValidationAccuracy: 0.5, candidates: 3, significant: null });
    expect(s.gain!.gain).toBeCloseTo(0.24, 12);
    expect(s.gain!.pValue).toBeCloseTo(0.21511633515015524, 12);
    expect(s.gain!.adjustedP).toBe(s.gain!.pValue);
  });

  it('significant (Holm): only A survives; the best of the survivors is kept', () => {
    const [s] = selectCells(ALL, significant());
    expect(at(s)).toBe('mlp/10/0.5');
    expect(s.significant).toBe(1);
    expect(s.gain!.pValue).toBeCloseTo(0.0010478785315010779, 12);
    expect(s.gain!.adjustedP).toBeCloseTo(3 * 0.0010478785315010779, 12);
    // What the paper's rule would have taken, and why this rule did not.
    expect(at(s.bestPruned!)).toBe('mlp/10/0.9');
    expect(s.bestPruned!.gain!.adjustedP).toBeCloseTo(0.21511633515015524, 12);
  });

  it('significant without correction: C passes at 0.05 too and, better on average than A, is kept', () => {
    const [s] = selectCells(ALL, significant(0.05, 'none'));
    expect(at(s)).toBe('attn/5/0.5');
    expect(s.significant).toBe(2);
    expect(s.gain!.adjustedP).toBeCloseTo(0.040681525827486575, 12);
  });

  it('nothing significant at the level: the unpruned model is kept', () => {
    const [s] = selectCells(ALL, significant(0.001));
    expect(at(s)).toBe('none/0/0');
    expect(s).toMatchObject({ validationAccuracy: 0.5, gain: null, significant: 0, candidates: 3 });
  });

  it('a gain must be positive: a significant loss is never picked', () => {
    const loss = point('mlp', 3, 0.99, [[16, 1], [17, 2], [15, 0], [16, 1], [18, 3]]);
    const [s] = selectCells([...UNPRUNED, ...loss], significant());
    expect(s.gain).toBeNull();
    expect(at(s)).toBe('none/0/0');
    expect(s.bestPruned!.gain!.pValue).toBeLessThan(0.01);
  });

  it('a point missing a draw is no candidate; without the unpruned model under every draw, no significant pick', () => {
    const partial = A.slice(0, 4);
    expect(at(selectCells([...UNPRUNED, ...partial, ...C], significant(0.05, 'none'))[0])).toBe('attn/5/0.5');
    expect(selectCells([...UNPRUNED.slice(1), ...A], significant())).toEqual([]);
    // The paper's rule still picks among the complete points.
    expect(at(selectCells([...UNPRUNED.slice(1), ...A], { rule: 'paper' })[0])).toBe('mlp/10/0.5');
  });

  it('the pick does not depend on the order of the results', () => {
    const rule = significant();
    const first = selectCells(ALL, rule);
    for (const order of [[...ALL].reverse(), [...C, ...B, ...UNPRUNED, ...A]]) expect(selectCells(order, rule)).toEqual(first);
  });
});
