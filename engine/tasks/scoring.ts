/**
 * Scoring rules (pure).
 *
 * Classification: score of class c = log-probability of verbalizer c's single token at the
 * position after demonstrations + query; prediction = arg-max (the first class on ties).
 *
 * Multiple choice: for each choice, the per-token log-probabilities of its continuation given
 * demonstrations + context.
 *   - 'loglik':      sum of the continuation's token log-probabilities (lm-evaluation-harness `acc`).
 *   - 'loglik-norm': that sum divided by the continuation text's length in UTF-8 bytes
 *                    (lm-evaluation-harness `acc_norm` divides by the character length; identical
 *                    for ASCII text, the byte length is the harness's `acc_bytes` variant).
 *   - 'mean-logits': the paper's COPA rule: mean of the raw logits over every position of the
 *                    candidate's full prompt and the whole vocabulary. Not a likelihood; kept as a
 *                    compatibility mode.
 * accuracy follows the requested mode; accuracyNorm is always the 'loglik-norm' accuracy.
 */
export type MultipleChoiceMode = 'loglik' | 'loglik-norm' | 'mean-logits';

export function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

export function classify(logprobs: Float32Array | number[], verbalizerIds: number[]): { scores: number[]; prediction: number } {
  const scores = verbalizerIds.map((id) => logprobs[id]);
  return { scores, prediction: argmax(scores) };
}

export interface ChoiceResult {
  logprobs: number[];
  meanLogit: number;
}

export function scoreChoices(
  results: ChoiceResult[],
  continuationBytes: number[],
  mode: MultipleChoiceMode,
): { scores: number[]; prediction: number; predictionNorm: number } {
  const sums = results.map((r) => r.logprobs.reduce((a, b) => a + b, 0));
  const norm = sums.map((s, i) => s / Math.max(1, continuationBytes[i]));
  const scores = mode === 'loglik' ? sums : mode === 'loglik-norm' ? norm : results.map((r) => r.meanLogit);
  return { scores, prediction: argmax(scores), predictionNorm: argmax(norm) };
}

export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Macro-averaged F1 over `classes` classes: per class 2TP / (2TP + FP + FN), 0 for a class with no
 * example and no prediction, averaged over every class of the task (lm-evaluation-harness's CB
 * `f1` averages the same per-class scores). Classification's standard metric where classes are
 * unbalanced (CB).
 */
export function macroF1(outcomes: readonly { label: number; prediction: number }[], classes: number): number {
  const tp = new Array<number>(classes).fill(0);
  const fp = new Array<number>(classes).fill(0);
  const fn = new Array<number>(classes).fill(0);
  for (const { label, prediction } of outcomes) {
    if (label === prediction) tp[label]++;
    else {
      fp[prediction]++;
      fn[label]++;
    }
  }
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    const denominator = 2 * tp[c] + fp[c] + fn[c];
    sum += denominator === 0 ? 0 : (2 * tp[c]) / denominator;
  }
  return classes === 0 ? 0 : sum / classes;
}
