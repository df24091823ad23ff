import { describe, expect, it } from 'vitest';
import {
  binomialHalfCdf,
  discordantPairs,
  mcnemarExact,
  normalQuantile,
  pairPredictions,
  pairedBootstrap,
  validationTestGap,
  wilsonInterval,
  zForConfidence,
} from '../../analysis/stats.ts';

/** Reference Wilson bounds in the other textbook form: (2np + z² ± z sqrt(z² + 4np(1-p))) / (2(n + z²)). */
function referenceWilson(k: number, n: number, z: number): [number, number] {
  const p = k / n;
  const root = z * Math.sqrt(z * z + 4 * n * p * (1 - p));
  return [(2 * n * p + z * z - root) / (2 * (n + z * z)), (2 * n * p + z * z + root) / (2 * (n + z * z))];
}

const Z95 = 1.959963984540054;
const Z90 = 1.6448536269514722;
const REF_30000 = 0.1252928236682152;

describe('normal quantile', () => {
  it('matches tabulated values', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(Z95, 14);
    expect(normalQuantile(0.95)).toBeCloseTo(Z90, 14);
    expect(normalQuantile(0.995)).toBeCloseTo(2.5758293035489004, 13);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167813, 13);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 11);
    expect(normalQuantile(0.5)).toBe(0);
    expect(zForConfidence(0.95)).toBeCloseTo(Z95, 14);
    expect(() => zForConfidence(1)).toThrow();
  });
});

describe('Wilson score interval', () => {
  it('8/10, 0/10, 10/10 at 95% against hand-computed bounds', () => {
    // Worked by hand: z = 1.96, z² = 3.8415; 8/10: (16 + 3.8415 ± 1.96 * sqrt(3.8415 + 6.4)) / (2 * 13.8415).
    const w = wilsonInterval(8, 10);
    expect(w.estimate).toBe(0.8);
    expect(w.lower).toBeCloseTo(0.4901624715366418, 12);
    expect(w.upper).toBeCloseTo(0.9433178485456248, 12);
    const zero = wilsonInterval(0, 10);
    expect(zero.lower).toBe(0);
    expect(zero.upper).toBeCloseTo(0.2775327998628892, 12); // z² / (n + z²)
    const all = wilsonInterval(10, 10);
    expect(all.lower).toBeCloseTo(0.7224672001371107, 12); // n / (n + z²)
    expect(all.upper).toBe(1);
  });

  it('agrees with the reference formula over many cases and confidence levels', () => {
    for (const [k, n] of [
      [3, 7],
      [1, 1],
      [0, 1],
      [57, 100],
      [1234, 2000],
      [199, 200],
    ]) {
      for (const [conf, z] of [
        [0.95, Z95],
        [0.9, Z90],
      ]) {
        const w = wilsonInterval(k, n, conf);
        const [lo, hi] = referenceWilson(k, n, z);
        expect(w.lower).toBeCloseTo(Math.max(0, lo), 12);
        expect(w.upper).toBeCloseTo(Math.min(1, hi), 12);
        expect(w.confidence).toBe(conf);
        expect(w.lower).toBeLessThanOrEqual(k / n);
        expect(w.upper).toBeGreaterThanOrEqual(k / n);
      }
    }
  });

  it('a 90% interval is narrower than the 95% one', () => {
    const a = wilsonInterval(8, 10, 0.9);
    const b = wilsonInterval(8, 10);
    expect(a.lower).toBeGreaterThan(b.lower);
    expect(a.upper).toBeLessThan(b.upper);
    expect(a.lower).toBeCloseTo(0.5408, 4); // (16 + 2.7055 - 1.6449 * sqrt(2.7055 + 6.4)) / (2 * 12.7055)
  });

  it('n = 0 gives [0, 1]; bad counts throw', () => {
    const w = wilsonInterval(0, 0);
    expect([w.lower, w.upper]).toEqual([0, 1]);
    expect(Number.isNaN(w.estimate)).toBe(true);
    expect(() => wilsonInterval(11, 10)).toThrow();
    expect(() => wilsonInterval(-1, 10)).toThrow();
    expect(() => wilsonInterval(1.5, 10)).toThrow();
  });
});

describe('exact McNemar test', () => {
  it('b = 1, c = 9: p = 2 * P(X <= 1 | n = 10, 1/2) = 2 * 11/1024 = 0.021484375', () => {
    const m = mcnemarExact(1, 9);
    expect(m).toEqual({ b: 1, c: 9, discordant: 10, pValue: 0.021484375 });
    expect(mcnemarExact(9, 1).pValue).toBe(0.021484375);
  });

  it('more hand-worked cases', () => {
    expect(mcnemarExact(0, 6).pValue).toBe(2 / 64); // 2 * (1/2)^6
    expect(mcnemarExact(2, 8).pValue).toBe(0.109375); // 2 * (1 + 10 + 45) / 1024
    expect(mcnemarExact(0, 1).pValue).toBe(1); // 2 * 1/2
    expect(mcnemarExact(5, 5).pValue).toBe(1); // capped at 1
    expect(mcnemarExact(3, 4).pValue).toBe(1); // 2 * 64/128
    expect(mcnemarExact(1, 4).pValue).toBe(0.375); // 2 * 6/32
  });

  it('b + c = 0: no discordant pair, p = 1', () => {
    expect(mcnemarExact(0, 0)).toEqual({ b: 0, c: 0, discordant: 0, pValue: 1 });
  });

  it('large counts match the exact binomial tail', () => {
    // Exact values from integer arithmetic (Python: sum(comb(n, i) for i <= k) / 2**n).
    expect(binomialHalfCdf(600, 1300) / 0.0030078969305224763).toBeCloseTo(1, 12);
    expect(mcnemarExact(600, 700).pValue / 0.006015793861044953).toBeCloseTo(1, 12);
    expect(binomialHalfCdf(1000, 2200) / 1.0908513203957356e-5).toBeCloseTo(1, 12);
    // Beyond the exact range (log-space sum): P(X <= 14_900 | 30 000) from Python's exact integers.
    expect(binomialHalfCdf(14_900, 30_000) / REF_30000).toBeCloseTo(1, 8);
    expect(binomialHalfCdf(-1, 5)).toBe(0);
    expect(binomialHalfCdf(5, 5)).toBe(1);
  });

  it('counts discordant pairs of paired predictions', () => {
    const base = [true, true, false, false, true, false];
    const other = [true, false, true, true, true, false];
    expect(discordantPairs(base, other)).toEqual({ b: 1, c: 2 });
    expect(() => discordantPairs([true], [true, false])).toThrow();
  });
});

describe('pairing stored predictions', () => {
  it('joins on the example index whatever the order', () => {
    const p = pairPredictions(
      [
        { idx: 2, label: 1, prediction: 1 },
        { idx: 0, label: 0, prediction: 1 },
        { idx: 1, label: 1, prediction: 1 },
      ],
      [
        { idx: 0, label: 0, prediction: 0 },
        { idx: 1, label: 1, prediction: 0 },
        { idx: 2, label: 1, prediction: 1 },
      ],
    );
    expect(p).toEqual({ idx: [0, 1, 2], baseline: [false, true, true], other: [true, false, true] });
  });

  it('refuses cells with different examples', () => {
    const a = [{ idx: 0, label: 0, prediction: 0 }];
    expect(() => pairPredictions(a, [{ idx: 1, label: 0, prediction: 0 }])).toThrow(/missing/);
    expect(() => pairPredictions(a, [{ idx: 0, label: 1, prediction: 0 }])).toThrow(/label/);
    expect(() => pairPredictions(a, [...a, { idx: 1, label: 0, prediction: 0 }])).toThrow(/different/);
  });
});

describe('paired bootstrap', () => {
  const base = Array.from({ length: 200 }, (_, i) => i % 2 === 0);
  const other = Array.from({ length: 200 }, (_, i) => i % 2 === 0 || i % 5 === 1);

  it('is deterministic for a seed and brackets the observed difference', () => {
    const a = pairedBootstrap(base, other, { resamples: 2000, seed: 7 });
    const b = pairedBootstrap(base, other, { resamples: 2000, seed: 7 });
    expect(a).toEqual(b);
    // The seed matters (with few resamples the quantiles move; with many they settle on the same grid values).
    const few = (seed: number) => pairedBootstrap(base, other, { resamples: 20, seed });
    expect(few(8)).not.toEqual({ ...few(7), seed: 8 });
    expect(a.difference).toBeCloseTo(0.1, 12);
    expect(a.lower).toBeLessThan(0.1);
    expect(a.upper).toBeGreaterThan(0.1);
    // Paired differences here are 0 or +1 with p = 0.1: the normal approximation gives ~ +-0.042.
    expect(a.lower).toBeGreaterThan(0.04);
    expect(a.upper).toBeLessThan(0.16);
  });

  it('identical cells give [0, 0]', () => {
    const r = pairedBootstrap(base, base, { resamples: 100 });
    expect([r.difference, r.lower, r.upper]).toEqual([0, 0, 0]);
  });

  it('is seeded: the same seed gives the same interval, another seed another one', () => {
    const other = base.map((b, i) => (i % 3 === 0 ? !b : b));
    const a = pairedBootstrap(base, other, { resamples: 200, seed: 7 });
    expect(pairedBootstrap(base, other, { resamples: 200, seed: 7 })).toEqual(a);
    expect(pairedBootstrap(base, other, { resamples: 200, seed: 8 })).not.toEqual(a);
  });
});

describe('validation-to-test gap', () => {
  it('is validation minus test, null when either is missing', () => {
    expect(validationTestGap(0.7, 0.673)).toBeCloseTo(0.027, 12);
    expect(validationTestGap(0.6, 0.65)).toBeCloseTo(-0.05, 12);
    expect(validationTestGap(0.6, null)).toBeNull();
    expect(validationTestGap(undefined, 0.5)).toBeNull();
  });
});
