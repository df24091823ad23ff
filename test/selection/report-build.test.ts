import { describe, expect, it } from 'vitest';
import { buildSelectionReports, formatP, renderSelectionTable, type SelectionInput } from '../../analysis/report.ts';

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
});
