import { describe, expect, it } from 'vitest';
import { buildSelectionReports, formatP, renderSelectionTable, type SelectionInput } from '../../analysis/report.ts';
import { pairedGain, summarizeDraws } from '../../analysis/draws.ts';

const base: SelectionInput = {
  model: 'gptj',
  dataset: 'cb',
  task: 'cb',
  module: 'mlp',
  layer: 26,
  ratio: 0.95,
  validationAccuracy: 0.7,
  validationCellKey: 'v',
  baselineCellKey: 'b',
  baselineStatus: 'done',
  baselineAccuracy: 0.5,
  baselineN: 4,
  selectedCellKey: 's',
  selectedStatus: 'done',
  selectedAccuracy: 0.75,
  selectedN: 4,
  baselineF1Macro: null,
  selectedF1Macro: null,
  rule: 'paper',
  level: null,
  correction: null,
  draws: 1,
  baselineValidationAccuracy: null,
  validationGain: null,
  validationGainLower: null,
  validationGainUpper: null,
  validationGainP: null,
  testDrawsDone: 1,
  decision: null,
};

const preds = (correct: boolean[]) => correct.map((c, idx) => ({ idx, label: 1, prediction: c ? 1 : 0 }));

describe('buildSelectionReports', () => {
  it('counts from the stored predictions', () => {
    const [r] = buildSelectionReports([base], new Map([
      ['b', preds([true, true, false, false])],
      ['s', preds([true, false, true, true])],
    ]));
    expect(r.test.baseline).toMatchObject({ correct: 2, n: 4, accuracy: 0.5 });
    expect(r.test.selected).toMatchObject({ correct: 3, n: 4, accuracy: 0.75 });
    expect(r.test.mcnemar).toEqual({ b: 1, c: 2, discordant: 3, pValue: 1 });
    expect(r.validationTestGap).toBeCloseTo(-0.05, 12);
    expect(r.warnings).toEqual([]);
  });

  it('falls back to the stored accuracy without predictions, and reports pending test cells', () => {
    const [r] = buildSelectionReports([{ ...base, selectedStatus: 'pending', selectedAccuracy: null, selectedN: null }], new Map());
    expect(r.test.baseline).toMatchObject({ correct: 2, n: 4, accuracy: 0.5 });
    expect(r.test.selected).toMatchObject({ status: 'pending', accuracy: null, interval: null });
    expect(r.test.mcnemar).toBeNull();
    expect(r.test.difference).toBeNull();
    expect(r.validationTestGap).toBeNull();
    const text = renderSelectionTable([r]);
    expect(text).toContain('0.500 -> - (test selected pending)');
  });

  it('warns instead of testing when the two cells hold different examples or disagree with the stored accuracy', () => {
    const [r] = buildSelectionReports([base], new Map([
      ['b', preds([true, true, false, false])],
      ['s', preds([true, false, true])],
    ]));
    expect(r.test.mcnemar).toBeNull();
    expect(r.warnings.join('\n')).toMatch(/no paired test/);
    expect(r.warnings.join('\n')).toMatch(/selected cell: stored accuracy 0.75 differs/);
    expect(renderSelectionTable([r])).toContain('warning: gptj / cb: no paired test');
  });

  it('formats p-values', () => {
    expect(formatP(0.021484375)).toBe('0.02148');
    expect(formatP(1)).toBe('1');
    expect(formatP(4.01e-5)).toBe('4.01e-5');
    expect(formatP(null)).toBe('-');
  });

  it('says so when there is no selection', () => {
    expect(renderSelectionTable([])).toMatch(/No selections/);
  });

  it('over several draws: each side\'s mean and interval, the paired test across draws, the rule\'s decision in words', () => {
    // Three draws of 4 examples: unpruned right on 2, 3, 2; the pick on 3, 4, 2 (b/c per draw: 0/1, 0/1, 1/1).
    const draws = [
      { seed: 42, b: [true, true, false, false], s: [true, true, true, false] },
      { seed: 43, b: [true, true, true, false], s: [true, true, true, true] },
      { seed: 44, b: [true, false, true, false], s: [false, true, true, false] },
    ];
    const predictions = new Map(draws.flatMap((d) => [[`b${d.seed}`, preds(d.b)], [`s${d.seed}`, preds(d.s)]] as const));
    const cells = draws.map((d) => ({ seed: d.seed, baselineCellKey: `b${d.seed}`, selectedCellKey: `s${d.seed}` }));
    const decision = { candidates: 42, significant: 0, bestPruned: { module: 'mlp', layer: 29, ratio: 0.1, accuracy: 0.9, gain: { gain: 0.02, lower: -0.01, upper: 0.05, pValue: 0.2, adjustedP: 1 } } };
    const row = { ...base, baselineCellKey: 'b42', selectedCellKey: 's42', baselineAccuracy: 7 / 12, selectedAccuracy: 9 / 12, draws: 3, rule: 'significant', level: 0.05, correction: 'holm', decision };
    const [r] = buildSelectionReports([row], predictions, {}, new Map([[JSON.stringify(['gptj', 'cb']), cells]]));
    expect(r.draws).toBe(3);
    const before = summarizeDraws([0.5, 0.75, 0.5].map((accuracy) => ({ accuracy, n: 4 })));
    expect(r.test.baseline).toMatchObject({ accuracy: before.mean, correct: 7, n: 12, sd: before.sd, interval: { lower: before.lower, upper: before.upper } });
    expect(r.test.selected).toMatchObject({ accuracy: 0.75, correct: 9, n: 12 });
    expect(r.test.paired).toEqual(pairedGain([{ n: 4, b: 0, c: 1 }, { n: 4, b: 0, c: 1 }, { n: 4, b: 1, c: 1 }]));
    expect(r.test.discordant).toEqual({ b: 1, c: 3 });
    expect(r.test.mcnemar).toBeNull();
    expect(r.warnings).toEqual([]);
    const text = renderSelectionTable([{ ...r, module: 'none', layer: 0, ratio: 0 }]);
    expect(text).toContain('significant 0.05 holm');
    expect(text).toMatch(/over several draws, a t test of the mean paired change across draws and examples/);
    expect(text).toContain(
      "gptj / cb: kept the unpruned model: no pruned cell's validation gain was significant at 0.05 (42 pruned cells, Holm-adjusted); the best pruned cell, mlp layer 29 ratio 0.1, gained +0.020 [-0.010, +0.050] (p 0.2, adjusted 1).",
    );
  });
});
