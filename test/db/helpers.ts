import type { CellOutcome } from '../../engine/types.ts';
import { macroF1 } from '../../engine/tasks/scoring.ts';

/** A CellOutcome with n examples, `correct` of them right (labels 0/1, two scores each). */
export function outcome(n: number, correct: number, extra: Partial<CellOutcome> = {}): CellOutcome {
  const examples = Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const prediction = i < correct ? label : 1 - label;
    return { index: i, label, prediction, scores: prediction === 0 ? [-0.25, -1.5] : [-1.5, -0.25] };
  });
  return {
    accuracy: n === 0 ? 0 : correct / n,
    accuracyNorm: null,
    f1Macro: macroF1(examples, 2),
    n,
    examples,
    sample: { shots: 4, seed: 7, demonstrations: { split: 'train', rows: [5, 2, 9, 0], labels: [1, 0, 1, 0] }, examplesSplit: 'test' },
    cost: {
      forwardTokens: 1000 + n,
      promptTokens: 900,
      demoTokens: 100,
      seconds: 1.5,
      svdSeconds: 0.25,
      decompositionCacheHits: 1,
      decompositionCacheMisses: 0,
      modelLoadSeconds: 0,
    },
    runtime: { executionProvider: 'cpu', weightDtype: 'float32', onnxruntime: '1.30.0' },
    ...extra,
  };
}

export const times = { startedAt: new Date('2026-01-01T00:00:00Z'), finishedAt: new Date('2026-01-01T00:00:02Z') };
