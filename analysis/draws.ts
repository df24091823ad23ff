/**
 * Statistics over demonstration draws: a grid point evaluated under several draws (seeds) has one
 * accuracy per draw, each on its own examples. The uncertainty of its mean has two sources: which
 * demonstrations were drawn, and which examples each draw was scored on. Pure functions, no I/O.
 *
 * The interval of a mean over S >= 2 draws is Knapp and Hartung's: the draws' spread, with a Student t
 * quantile on S - 1 degrees of freedom, never narrower than what the examples alone allow:
 *
 *   mean +- t(S-1) * sqrt(max(s^2, v) / S),   s^2: sample variance of the draws' values,
 *                                             v: mean over draws of the within-draw (example) variance.
 *
 * s^2 estimates the draw-to-draw variance plus the example noise of one draw, so it covers both
 * levels; the floor v keeps a few draws that happen to agree from claiming more precision than
 * their examples hold. One draw has no spread to measure: an accuracy gets Wilson's interval, a
 * paired difference the normal one with McNemar's exact test, as for a single cell.
 */
import { mcnemarExact, wilsonInterval, zForConfidence } from './stats.ts';

// ---------------------------------------------------------------------------------------------
// Student's t distribution
// ---------------------------------------------------------------------------------------------

/** log Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 significant digits). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const y = x - 1;
  let a = c[0];
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz), for x < (a + 1) / (a + b + 2). */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    // Even step.
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    // Odd step.
    num = -((a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < 1e-16) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), a, b > 0, x in [0, 1]. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0) || !(x >= 0 && x <= 1)) throw new RangeError(`regularizedBeta: need a, b > 0 and x in [0, 1], got x=${x}, a=${a}, b=${b}`);
  if (x === 0 || x === 1) return x;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(x, a, b)) / a : 1 - (front * betaFraction(1 - x, b, a)) / b;
}

/** P(|T| >= |t|) for T ~ Student t with `df` (finite, > 0) degrees of freedom. */
export function studentTTwoSided(t: number, df: number): number {
  if (!(df > 0 && Number.isFinite(df))) throw new RangeError(`studentTTwoSided: df must be finite and > 0, got ${df}`);
  if (Number.isNaN(t)) return NaN;
  if (!Number.isFinite(t)) return 0;
  return regularizedBeta(df / (df + t * t), df / 2, 0.5);
}

/** The p quantile of Student's t with `df` (finite, > 0) degrees of freedom; about 14 digits. */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0 && Number.isFinite(df))) throw new RangeError(`studentTQuantile: df must be finite and > 0, got ${df}`);
  if (p === 0.5) return 0;
  if (df === 1) return Math.tan(Math.PI * (p - 0.5));
  if (df === 2) return (2 * p - 1) / Math.sqrt(2 * p * (1 - p));
  // Upper half by symmetry; bracket from 0 up, then Newton steps kept inside the bracket (bisection when one leaves it).
  const q = p > 0.5 ? p : 1 - p;
  const target = 2 * (1 - q); // two-sided tail at the quantile
  let lo = 0;
  let hi = 1;
  while (studentTTwoSided(hi, df) > target) hi *= 2;
  const logNorm = logGamma((df + 1) / 2) - logGamma(df / 2) - 0.5 * Math.log(df * Math.PI);
  let t = Math.min(hi, Math.max(lo, zForConfidence(2 * q - 1)));
  for (let i = 0; i < 200; i++) {
    const f = 1 - studentTTwoSided(t, df) / 2 - q;
    if (f > 0) hi = t;
    else lo = t;
    const density = Math.exp(logNorm - ((df + 1) / 2) * Math.log1p((t * t) / df));
    let next = t - f / density;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    if (Math.abs(next - t) <= 1e-15 * Math.max(1, Math.abs(t))) {
      t = next;
      break;
    }
    t = next;
  }
  return p > 0.5 ? t : -t;
}

// ---------------------------------------------------------------------------------------------
// The mean accuracy of a grid point over its draws
// ---------------------------------------------------------------------------------------------

/** One draw of a grid point: its accuracy on its n examples. */
export interface DrawAccuracy {
  accuracy: number;
  n: number;
}

export interface DrawSummary {
  draws: number;
  /** Mean accuracy over the draws (NaN without draws). */
  mean: number;
  /** Sample standard deviation across draws (null with fewer than two). */
  sd: number | null;
  min: number;
  max: number;
  /** Interval of the mean (module comment); Wilson's with one draw; clamped to [0, 1]. */
  lower: number;
  upper: number;
  confidence: number;
}

function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
}

function sampleVariance(values: readonly number[], mean: number): number {
  let s = 0;
  for (const v of values) s += (v - mean) ** 2;
  return s / (values.length - 1);
}

/** Mean, spread and interval of a grid point's accuracy over its draws (see the module comment). */
export function summarizeDraws(draws: readonly DrawAccuracy[], confidence = 0.95): DrawSummary {
  checkConfidence(confidence);
  for (const d of draws) {
    if (!(d.n > 0) || !Number.isInteger(d.n) || !(d.accuracy >= 0 && d.accuracy <= 1)) throw new RangeError(`a draw needs n > 0 and an accuracy in [0, 1], got ${d.accuracy} of ${d.n}`);
  }
  const S = draws.length;
  if (S === 0) return { draws: 0, mean: NaN, sd: null, min: NaN, max: NaN, lower: NaN, upper: NaN, confidence };
  const values = draws.map((d) => d.accuracy);
  const mean = values.reduce((s, v) => s + v, 0) / S;
  const min = Math.min(...values);
  const max = Math.max(...values);
  if (S === 1) {
    const w = wilsonInterval(Math.round(draws[0].accuracy * draws[0].n), draws[0].n, confidence);
    return { draws: 1, mean, sd: null, min, max, lower: w.lower, upper: w.upper, confidence };
  }
  const variance = sampleVariance(values, mean);
  const within = draws.reduce((s, d) => s + (d.accuracy * (1 - d.accuracy)) / d.n, 0) / S;
  const half = studentTQuantile(1 - (1 - confidence) / 2, S - 1) * Math.sqrt(Math.max(variance, within) / S);
  return { draws: S, mean, sd: Math.sqrt(variance), min, max, lower: Math.max(0, mean - half), upper: Math.min(1, mean + half), confidence };
}

// ---------------------------------------------------------------------------------------------
// The paired gain of one cell over another, across draws and examples
// ---------------------------------------------------------------------------------------------

/** One draw of a paired comparison on the same n examples: b = only the baseline right, c = only the other right. */
export interface PairedDraw {
  n: number;
  b: number;
  c: number;
}

export interface GainSummary {
  draws: number;
  /** Mean over draws of (other - baseline) accuracy. */
  gain: number;
  /** Sample standard deviation of the draws' gains (null with one draw). */
  sd: number | null;
  lower: number;
  upper: number;
  /** Two-sided p-value of "no gain": McNemar's exact test with one draw, the t test of the module comment with more. */
  pValue: number;
  test: 'mcnemar-exact' | 'draws-t';
  confidence: number;
}

/**
 * The gain of a cell over the baseline on paired draws, with its interval and two-sided test. Per draw
 * the gain is (c - b) / n and its example variance (share discordant - gain^2) / n; across draws the
 * module comment's interval and a t test on S - 1 degrees of freedom.
 */
export function pairedGain(draws: readonly PairedDraw[], confidence = 0.95): GainSummary {
  checkConfidence(confidence);
  for (const d of draws) {
    if (![d.n, d.b, d.c].every((v) => Number.isInteger(v) && v >= 0) || d.n === 0 || d.b + d.c > d.n) {
      throw new RangeError(`a paired draw needs integers n > 0 and b + c <= n, got n=${d.n}, b=${d.b}, c=${d.c}`);
    }
  }
  const S = draws.length;
  if (S === 0) return { draws: 0, gain: NaN, sd: null, lower: NaN, upper: NaN, pValue: NaN, test: 'draws-t', confidence };
  const gains = draws.map((d) => (d.c - d.b) / d.n);
  const within = draws.map((d, i) => Math.max(0, (d.b + d.c) / d.n - gains[i] ** 2) / d.n);
  const gain = gains.reduce((s, g) => s + g, 0) / S;
  if (S === 1) {
    const half = zForConfidence(confidence) * Math.sqrt(within[0]);
    return { draws: 1, gain, sd: null, lower: Math.max(-1, gain - half), upper: Math.min(1, gain + half), pValue: mcnemarExact(draws[0].b, draws[0].c).pValue, test: 'mcnemar-exact', confidence };
  }
  const variance = sampleVariance(gains, gain);
  const se = Math.sqrt(Math.max(variance, within.reduce((s, v) => s + v, 0) / S) / S);
  const half = studentTQuantile(1 - (1 - confidence) / 2, S - 1) * se;
  const pValue = se > 0 ? studentTTwoSided(gain / se, S - 1) : gain === 0 ? 1 : 0;
  return { draws: S, gain, sd: Math.sqrt(variance), lower: Math.max(-1, gain - half), upper: Math.min(1, gain + half), pValue, test: 'draws-t', confidence };
}

/**
 * Holm's step-down adjustment: adjusted p-values in the input order. Rejecting every hypothesis whose
 * adjusted p is at most the level keeps the chance of any false rejection within the level, whatever
 * the dependence between the tests.
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => ({ p, i })).sort((a, b) => a.p - b.p || a.i - b.i);
  const out = new Array<number>(m);
  let running = 0;
  order.forEach(({ p, i }, k) => {
    running = Math.max(running, Math.min(1, (m - k) * p));
    out[i] = running;
  });
  return out;
}
