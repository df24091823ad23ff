/**
 * Statistics of the selection report: confidence intervals of an accuracy, the paired test of two
 * cells evaluated on the same examples, and the validation-to-test gap. Pure functions, no I/O.
 */
import { createRng, randomBelow } from '../engine/random.ts';

// ---------------------------------------------------------------------------------------------
// Normal quantile
// ---------------------------------------------------------------------------------------------

/**
 * Quantile of the standard normal distribution (Wichura's algorithm AS 241, PPND16: about 16
 * significant digits). normalQuantile(0.975) = 1.959963984540054.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    throw new RangeError(`normalQuantile: p must be in [0, 1], got ${p}`);
  }
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r + 45921.953931549871457) * r +
          13731.693765509461125) *
          r +
          1971.5909503065514427) *
          r +
          133.14166789178437745) *
          r +
          3.387132872796366608)) /
      (((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r + 21213.794301586595867) * r +
        5394.1960214247511077) *
        r +
        687.1870074920579083) *
        r +
        42.313330701600911252) *
        r +
        1)
    );
  }
  let r = q < 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  let x: number;
  if (r <= 5) {
    r -= 1.6;
    x =
      (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r + 0.24178072517745061177) * r + 1.27045825245236838258) * r +
        3.64784832476320460504) *
        r +
        5.7694972214606914055) *
        r +
        4.6303378461565452959) *
        r +
        1.42343711074968357734) /
      (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r + 0.14810397642748007459) * r +
        0.68976733498510000455) *
        r +
        1.6763848301838038494) *
        r +
        2.05319162663775882187) *
        r +
        1);
  } else {
    r -= 5;
    x =
      (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r + 0.026532189526576123093) * r +
        0.29656057182850489123) *
        r +
        1.7848265399172913358) *
        r +
        5.4637849111641143699) *
        r +
        6.6579046435011037772) /
      (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r +
        0.0148753612908506148525) *
        r +
        0.13692988092273580531) *
        r +
        0.59983220655588793769) *
        r +
        1);
  }
  return q < 0 ? -x : x;
}

/** Two-sided critical value of the standard normal for a confidence level (0.95 -> 1.959963984540054). */
export function zForConfidence(confidence: number): number {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  return normalQuantile(1 - (1 - confidence) / 2);
}

// ---------------------------------------------------------------------------------------------
// Wilson score interval
// ---------------------------------------------------------------------------------------------

export interface Interval {
  /** The point estimate (successes / n; NaN when n = 0). */
  estimate: number;
  lower: number;
  upper: number;
  confidence: number;
}

/**
 * Wilson score interval of a binomial proportion (`successes` of `n`):
 *   centre = (p + z²/2n) / (1 + z²/n),  half-width = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²),
 * with p = successes/n and z the two-sided normal critical value of `confidence` (default 0.95).
 * Bounds are clamped to [0, 1] (0/n gives lower = 0 and n/n upper = 1 exactly). With n = 0 the
 * interval is [0, 1] and the estimate NaN.
 */
export function wilsonInterval(successes: number, n: number, confidence = 0.95): Interval {
  if (!Number.isInteger(successes) || !Number.isInteger(n) || n < 0 || successes < 0 || successes > n) {
    throw new RangeError(`wilsonInterval: need integers 0 <= successes <= n, got ${successes}/${n}`);
  }
  const z = zForConfidence(confidence);
  if (n === 0) return { estimate: NaN, lower: 0, upper: 1, confidence };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return {
    estimate: p,
    lower: successes === 0 ? 0 : Math.max(0, centre - half),
    upper: successes === n ? 1 : Math.min(1, centre + half),
    confidence,
  };
}

// ---------------------------------------------------------------------------------------------
// Exact McNemar test
// ---------------------------------------------------------------------------------------------

export interface McNemarResult {
  /** Examples the baseline got right and the other cell wrong. */
  b: number;
  /** Examples the baseline got wrong and the other cell right. */
  c: number;
  /** Discordant pairs, b + c. */
  discordant: number;
  /** Two-sided exact p-value: min(1, 2 * P(X <= min(b, c))), X ~ Binomial(b + c, 1/2); 1 when b + c = 0. */
  pValue: number;
}

function logFactorial(n: number): number {
  let s = 0;
  for (let i = 2; i <= n; i++) s += Math.log(i);
  return s;
}

/** P(X <= k) for X ~ Binomial(n, 1/2). Exact integer sum (BigInt) up to n = 20 000, log-space sum beyond. */
export function binomialHalfCdf(k: number, n: number): number {
  if (!Number.isInteger(k) || !Number.isInteger(n) || n < 0) throw new RangeError(`binomialHalfCdf: bad arguments k=${k}, n=${n}`);
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (n <= 20_000) {
    // sum_{i<=k} C(n, i), exactly; then divide by 2^n keeping the top 64 bits of the sum.
    let term = 1n;
    let sum = 1n;
    for (let i = 1; i <= k; i++) {
      term = (term * BigInt(n - i + 1)) / BigInt(i);
      sum += term;
    }
    const bits = sum.toString(2).length;
    const drop = Math.max(0, bits - 64);
    return Number(sum >> BigInt(drop)) * 2 ** (drop - n);
  }
  // log C(n, i) - n log 2, summed with log-sum-exp.
  const lfN = logFactorial(n);
  const logs: number[] = [];
  let lfI = 0;
  let lfNI = lfN;
  for (let i = 0; i <= k; i++) {
    if (i > 0) {
      lfI += Math.log(i);
      lfNI -= Math.log(n - i + 1);
    }
    logs.push(lfN - lfI - lfNI - n * Math.LN2);
  }
  const max = Math.max(...logs);
  let s = 0;
  for (const l of logs) s += Math.exp(l - max);
  return Math.min(1, Math.exp(max + Math.log(s)));
}

/**
 * Exact McNemar test (two-sided binomial test on the discordant pairs). `b`: baseline right, other
 * wrong; `c`: baseline wrong, other right. p = min(1, 2 * P(X <= min(b, c))) with X ~ Bin(b + c, 1/2);
 * p = 1 when there is no discordant pair. Example: b = 1, c = 9 -> p = 2 * 11/1024 = 0.021484375.
 */
export function mcnemarExact(b: number, c: number): McNemarResult {
  if (!Number.isInteger(b) || !Number.isInteger(c) || b < 0 || c < 0) throw new RangeError(`mcnemarExact: need counts >= 0, got b=${b}, c=${c}`);
  const n = b + c;
  const pValue = n === 0 ? 1 : Math.min(1, 2 * binomialHalfCdf(Math.min(b, c), n));
  return { b, c, discordant: n, pValue };
}

/** Discordant counts of two paired correctness vectors (same examples, same order). */
export function discordantPairs(baselineCorrect: readonly boolean[], otherCorrect: readonly boolean[]): { b: number; c: number } {
  if (baselineCorrect.length !== otherCorrect.length) {
    throw new RangeError(`paired vectors differ in length: ${baselineCorrect.length} vs ${otherCorrect.length}`);
  }
  let b = 0;
  let c = 0;
  for (let i = 0; i < baselineCorrect.length; i++) {
    if (baselineCorrect[i] && !otherCorrect[i]) b++;
    else if (!baselineCorrect[i] && otherCorrect[i]) c++;
  }
  return { b, c };
}

// ---------------------------------------------------------------------------------------------
// Pairing stored predictions
// ---------------------------------------------------------------------------------------------

export interface ExamplePrediction {
  /** Index of the example within its split (the same for every cell of a dataset and split). */
  idx: number;
  label: number;
  prediction: number;
}

export interface PairedCorrectness {
  /** Example indices, ascending. */
  idx: number[];
  baseline: boolean[];
  other: boolean[];
}

/**
 * Join two cells' predictions on the example index. Throws when the two cells do not hold the same
 * examples (same indices and labels): a paired test on different examples would be meaningless.
 */
export function pairPredictions(baseline: readonly ExamplePrediction[], other: readonly ExamplePrediction[]): PairedCorrectness {
  const byIdx = new Map<number, ExamplePrediction>();
  for (const e of other) {
    if (byIdx.has(e.idx)) throw new Error(`example ${e.idx} appears twice`);
    byIdx.set(e.idx, e);
  }
  if (baseline.length !== other.length) {
    throw new Error(`the two cells hold different examples (${baseline.length} vs ${other.length})`);
  }
  const sorted = [...baseline].sort((x, y) => x.idx - y.idx);
  const out: PairedCorrectness = { idx: [], baseline: [], other: [] };
  let last: number | undefined;
  for (const e of sorted) {
    if (e.idx === last) throw new Error(`example ${e.idx} appears twice`);
    last = e.idx;
    const o = byIdx.get(e.idx);
    if (o === undefined) throw new Error(`example ${e.idx} is missing from the other cell`);
    if (o.label !== e.label) throw new Error(`example ${e.idx} has label ${e.label} in one cell and ${o.label} in the other`);
    out.idx.push(e.idx);
    out.baseline.push(e.prediction === e.label);
    out.other.push(o.prediction === o.label);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Paired bootstrap
// ---------------------------------------------------------------------------------------------

export interface BootstrapResult {
  /** Observed accuracy difference, other - baseline. */
  difference: number;
  lower: number;
  upper: number;
  confidence: number;
  resamples: number;
  seed: number;
}

/**
 * Paired percentile bootstrap of the accuracy difference (other - baseline): resample examples with
 * replacement (the same draw for both cells), `resamples` times (default 10 000), with a seeded PRNG
 * (default seed 0), and take the (1-confidence)/2 and 1-(1-confidence)/2 quantiles (type-7,
 * linear interpolation). Same inputs and seed -> same interval.
 */
export function pairedBootstrap(
  baselineCorrect: readonly boolean[],
  otherCorrect: readonly boolean[],
  options: { resamples?: number; seed?: number; confidence?: number } = {},
): BootstrapResult {
  const resamples = options.resamples ?? 10_000;
  const seed = options.seed ?? 0;
  const confidence = options.confidence ?? 0.95;
  if (baselineCorrect.length !== otherCorrect.length) {
    throw new RangeError(`paired vectors differ in length: ${baselineCorrect.length} vs ${otherCorrect.length}`);
  }
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  const n = baselineCorrect.length;
  if (n === 0) return { difference: NaN, lower: NaN, upper: NaN, confidence, resamples, seed };
  // Per-example difference in {-1, 0, 1}.
  const d = new Int8Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    d[i] = (otherCorrect[i] ? 1 : 0) - (baselineCorrect[i] ? 1 : 0);
    total += d[i];
  }
  const rng = createRng(seed);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[randomBelow(rng, n)];
    stats[r] = s / n;
  }
  stats.sort();
  const alpha = (1 - confidence) / 2;
  return { difference: total / n, lower: quantile(stats, alpha), upper: quantile(stats, 1 - alpha), confidence, resamples, seed };
}

/** Type-7 quantile of sorted values (q = 0.5: the median). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

// ---------------------------------------------------------------------------------------------
// Validation-to-test gap
// ---------------------------------------------------------------------------------------------

/**
 * Validation accuracy of the selected cell minus its test accuracy. Positive: the cell looked better
 * on validation than it is on test (the optimism of picking the maximum of many cells); null when
 * either is missing.
 */
export function validationTestGap(validationAccuracy: number | null | undefined, testAccuracy: number | null | undefined): number | null {
  if (validationAccuracy == null || testAccuracy == null || !Number.isFinite(validationAccuracy) || !Number.isFinite(testAccuracy)) return null;
  return validationAccuracy - testAccuracy;
}
