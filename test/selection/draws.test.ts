/**
 * Statistics over demonstration draws (analysis/draws.ts) against independent references: Student's t
 * quantiles and tails from scipy.stats (1.16) and the interval and test recomputed by hand from the
 * formulas of the module comment.
 */
import { describe, expect, it } from 'vitest';
import { holmAdjust, pairedGain, regularizedBeta, studentTQuantile, studentTTwoSided, summarizeDraws } from '../../analysis/draws.ts';

describe("Student's t", () => {
  // scipy.stats.t.ppf(0.975, df), 2 * t.sf(2, df), t.ppf(0.995, df)
  const scipy: Array<[number, number, number, number]> = [
    [1, 12.706204736174694, 0.2951672353008665, 63.656741162871526],
    [2, 4.302652729749462, 0.18350341907227397, 9.924843200918287],
    [3, 3.1824463052837078, 0.13932596855884305, 5.840909309733355],
    [4, 2.7764451051977934, 0.11611652351681556, 4.604094871349992],
    [5, 2.5705818356363146, 0.10193947882985835, 4.032142983555228],
    [10, 2.228138851986274, 0.07338803477074037, 3.16927267261695],
    [30, 2.0422724563012378, 0.054625044962983094, 2.7499956535672254],
    [100, 1.9839715185235518, 0.04821217873113365, 2.6258905214380173],
  ];
  it.each(scipy)('df %i: quantiles and two-sided tail as scipy gives them', (df, q975, tail2, q995) => {
    expect(studentTQuantile(0.975, df)).toBeCloseTo(q975, 12);
    expect(studentTQuantile(0.025, df)).toBeCloseTo(-q975, 12);
    expect(studentTQuantile(0.995, df)).toBeCloseTo(q995, 11);
    expect(studentTTwoSided(2, df)).toBeCloseTo(tail2, 13);
    expect(studentTTwoSided(-2, df)).toBeCloseTo(tail2, 13);
    expect(studentTTwoSided(studentTQuantile(0.975, df), df)).toBeCloseTo(0.05, 13);
  });

  it('the incomplete beta function: I_0.3(2, 3) = 0.3483 (a polynomial for integer a, b)', () => {
    // I_x(2, 3) = sum_{j=2}^{4} C(4, j) x^j (1-x)^(4-j)
    const x = 0.3;
    expect(regularizedBeta(x, 2, 3)).toBeCloseTo(6 * x ** 2 * (1 - x) ** 2 + 4 * x ** 3 * (1 - x) + x ** 4, 14);
    expect(() => regularizedBeta(1.5, 2, 3)).toThrow(RangeError);
  });
});

describe('summarizeDraws: the mean accuracy over draws', () => {
  it('five draws that disagree: the draws spread sets the interval (t with 4 degrees of freedom)', () => {
    // The unpruned SmolLM2 on imdb, five draws of 50 validation examples.
    const s = summarizeDraws([0.62, 0.68, 0.9, 0.94, 0.92].map((accuracy) => ({ accuracy, n: 50 })));
    expect(s).toMatchObject({ draws: 5, min: 0.62, max: 0.94 });
    expect(s.mean).toBeCloseTo(0.812, 12);
    // s^2 = 0.09008 / 4 = 0.02252 > the examples' mean variance 0.0026928
    expect(s.sd).toBeCloseTo(Math.sqrt(0.02252), 12);
    const half = 2.7764451051977934 * Math.sqrt(0.02252 / 5);
    expect(s.lower).toBeCloseTo(0.812 - half, 12);
    expect(s.upper).toBeCloseTo(0.812 + half, 12);
  });

  it('draws that agree: never narrower than their examples allow', () => {
    const s = summarizeDraws([0.5, 0.5, 0.5].map((accuracy) => ({ accuracy, n: 100 })));
    expect(s.sd).toBe(0);
    const half = 4.302652729749462 * Math.sqrt(0.0025 / 3);
    expect([s.lower, s.upper]).toEqual([expect.closeTo(0.5 - half, 12), expect.closeTo(0.5 + half, 12)]);
  });

  it("one draw: Wilson's interval, as for a single cell; none: NaN", () => {
    const s = summarizeDraws([{ accuracy: 0.9, n: 20 }]);
    expect(s).toMatchObject({ draws: 1, mean: 0.9, sd: null });
    expect(s.lower).toBeCloseTo(0.699, 3);
    expect(s.upper).toBeCloseTo(0.972, 3);
    expect(summarizeDraws([]).mean).toBeNaN();
    expect(() => summarizeDraws([{ accuracy: 0.5, n: 0 }])).toThrow(RangeError);
  });
});

describe('pairedGain: the change over the baseline across draws and examples', () => {
  // References: scipy.stats.t on the same formula (module comment of analysis/draws.ts).
  it('examples dominate (draws agree more than their examples allow): the floor sets the error', () => {
    const g = pairedGain([[3, 5], [2, 6], [1, 4], [4, 4], [0, 3]].map(([b, c]) => ({ n: 50, b, c })));
    expect(g).toMatchObject({ draws: 5, test: 'draws-t' });
    expect(g.gain).toBeCloseTo(0.048, 12);
    expect(g.lower).toBeCloseTo(-0.01407326580341045, 12);
    expect(g.upper).toBeCloseTo(0.11007326580341045, 12);
    expect(g.pValue).toBeCloseTo(0.09831546263112835, 12);
  });

  it('draws disagree: their spread sets the error', () => {
    const g = pairedGain([[0, 10], [10, 0], [0, 20], [5, 5], [0, 15]].map(([b, c]) => ({ n: 100, b, c })));
    expect(g.gain).toBeCloseTo(0.07, 12);
    expect(g.sd).toBeCloseTo(Math.sqrt(0.0145), 12);
    expect(g.pValue).toBeCloseTo(2 * (1 - 0.8682535914654962), 12); // 2 * t.sf(0.07 / sqrt(0.0145 / 5), 4)
  });

  it("one draw: McNemar's exact p and the normal interval of the paired change", () => {
    const g = pairedGain([{ n: 20, b: 1, c: 9 }]);
    expect(g).toMatchObject({ draws: 1, test: 'mcnemar-exact', pValue: 0.021484375, gain: 0.4 });
    const half = 1.959963984540054 * Math.sqrt((10 / 20 - 0.16) / 20);
    expect(g.lower).toBeCloseTo(0.4 - half, 12);
    expect(g.upper).toBeCloseTo(0.4 + half, 12);
  });

  it('no discordant pair in any draw: no change, p = 1', () => {
    expect(pairedGain([{ n: 10, b: 0, c: 0 }, { n: 10, b: 0, c: 0 }])).toMatchObject({ gain: 0, lower: 0, upper: 0, pValue: 1 });
    expect(() => pairedGain([{ n: 10, b: 6, c: 6 }])).toThrow(RangeError);
  });
});

describe('holmAdjust', () => {
  it("Holm's step-down: (m - k + 1) p_(k), made monotone, in the input order", () => {
    expect(holmAdjust([0.01, 0.04, 0.03, 0.005])).toEqual([0.03, 0.06, 0.06, 0.02]);
    expect(holmAdjust([0.5, 0.6])).toEqual([1, 1]);
    expect(holmAdjust([])).toEqual([]);
  });
});
