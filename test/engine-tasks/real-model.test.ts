/**
 * The engine on the real model layer (engine/model) and the fixture models (test/fixtures/models):
 * prefix reuse = full prompt, forwardTokens <= 1.1 x promptTokens, ratio 0 = edit null, edits matter,
 * past-KV and no-past exports agree, verbalizers are single tokens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, EngineInputError, type CellOutcome, type CellRequest } from '../../engine/index.ts';
import { tokenizeCell, verbalizerTokenIds, type IclEngine } from '../../engine/evaluate.ts';
import { loadModel } from '../../engine/model/index.ts';
import { BUILTIN_DEFINITIONS } from '../../engine/tasks/registry.ts';
import { DATA, fixtureModel, MODELS, sst2Cell } from '../support/fixture-models.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'engine-real-'));
const engine = createEngine({ executionProvider: 'cpu', cacheDir, maxModels: 3, decompositionCacheBytes: 1 << 26, threads: 1 }) as IclEngine;
afterAll(async () => {
  await engine.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

const FAMILIES = ['gpt2', 'llama', 'gpt_neox'] as const;
const model = fixtureModel;

const copaCell = (family: string): CellRequest => ({
  ...sst2Cell(family),
  dataset: { name: 'copa', path: join(DATA, 'copa'), task: 'copa' },
  module: 'attn',
  layer: -1,
  shots: 2,
  split: 'validation',
  sizes: { validationPerClass: 8 },
});

function maxDiff(a: CellOutcome, b: CellOutcome): number {
  let d = 0;
  a.examples.forEach((e, i) => e.scores.forEach((s, j) => (d = Math.max(d, Math.abs(s - b.examples[i].scores[j])))));
  return d;
}

describe.each(FAMILIES)('%s', (family) => {
  it('classification: prefix reuse and full prompt give the same scores; forwardTokens <= 1.1 x promptTokens', async () => {
    const reuse = await engine.evaluate(sst2Cell(family));
    const full = await engine.evaluate(sst2Cell(family), { reusePrefix: false });
    expect(reuse.n).toBe(8);
    expect(maxDiff(reuse, full)).toBeLessThan(1e-4);
    expect(reuse.examples.map((e) => e.prediction)).toEqual(full.examples.map((e) => e.prediction));
    expect(reuse.accuracy).toBe(full.accuracy);
    expect(reuse.cost.forwardTokens).toBeLessThanOrEqual(1.1 * reuse.cost.promptTokens);
    expect(full.cost.forwardTokens).toBeGreaterThan(1.1 * full.cost.promptTokens);
    expect(reuse.cost.promptTokens).toBe(full.cost.promptTokens);
  });

  it('multiple choice: prefix reuse and full prompt give the same scores in every mode', async () => {
    for (const mode of ['loglik', 'loglik-norm', 'mean-logits'] as const) {
      const req = { ...copaCell(family), scoring: { multipleChoice: mode, svd: 'exact' as const } };
      const reuse = await engine.evaluate(req);
      const full = await engine.evaluate(req, { reusePrefix: false });
      expect(reuse.n).toBe(16);
      expect(maxDiff(reuse, full)).toBeLessThan(1e-4);
      expect(reuse.accuracyNorm).toBe(full.accuracyNorm);
      expect(reuse.cost.forwardTokens).toBeLessThanOrEqual(1.1 * reuse.cost.promptTokens);
    }
  });

  it('multiple choice, a small cell: forwardTokens == promptTokens in loglik modes, <= 1.1 x in mean-logits (the model layer honours the hints)', async () => {
    // 6 examples, 12 candidates: a second prefix pass (the model layer ignoring the hints) would be ~16% more.
    for (const mode of ['loglik', 'loglik-norm', 'mean-logits'] as const) {
      const req = { ...copaCell(family), sizes: { validationPerClass: 3 }, scoring: { multipleChoice: mode, svd: 'exact' as const } };
      const out = await engine.evaluate(req);
      const full = await engine.evaluate(req, { reusePrefix: false });
      expect(out.n).toBe(6);
      expect(maxDiff(out, full)).toBeLessThan(1e-4);
      expect(out.cost.forwardTokens).toBeLessThanOrEqual((mode === 'mean-logits' ? 1.1 : 1.0) * out.cost.promptTokens);
      expect(out.examples.every((e) => e.scores.every(Number.isFinite))).toBe(true);
    }
  });

  it('ratio 0 equals the unedited model (edit null), an edit changes the scores', async () => {
    const req = sst2Cell(family);
    const zero = await engine.evaluate({ ...req, ratio: 0 });
    const zeroOther = await engine.evaluate({ ...req, ratio: 0, module: 'attn', layer: -1 });
    expect(zeroOther.examples).toEqual(zero.examples);

    // The same prompts straight through the model layer with withEdit(null).
    const lm = await loadModel(join(MODELS, family), { executionProvider: 'cpu', cacheDir, decompositionCacheBytes: 1 << 20, threads: 1 });
    try {
      const { dataset, sample } = await engine.sample(req);
      const prompts = await tokenizeCell(dataset.task, sample, lm.tokenizer, family);
      if (prompts.kind !== 'classification') throw new Error('expected classification');
      const elm = await lm.withEdit(null);
      const prefix = await elm.prefill([]);
      const rows = await elm.nextTokenLogprobs(prefix, prompts.queries.map((q) => prompts.prefixIds.concat(q)));
      let d = 0;
      rows.forEach((row, i) => prompts.verbalizerIds.forEach((id, c) => (d = Math.max(d, Math.abs(row[id] - zero.examples[i].scores[c])))));
      expect(d).toBeLessThan(1e-4);
      elm.release();
    } finally {
      await lm.dispose();
    }

    const edited = await engine.evaluate({ ...req, ratio: 0.9, module: 'all', layer: -1 });
    expect(maxDiff(edited, zero)).toBeGreaterThan(1e-3);
  });

  it('the export without past key values gives the same scores', async () => {
    const past = await engine.evaluate(sst2Cell(family));
    const nopast = await engine.evaluate({ ...sst2Cell(family), model: model(`${family}-nopast`) });
    expect(maxDiff(past, nopast)).toBeLessThan(1e-4);
  });
});

describe('fixture tokenizer and datasets', () => {
  it('every builtin verbalizer is one token of the fixture tokenizer', async () => {
    const lm = await loadModel(join(MODELS, 'gpt2'), { executionProvider: 'cpu', cacheDir, decompositionCacheBytes: 1 << 20 });
    try {
      for (const task of Object.values(BUILTIN_DEFINITIONS)) {
        if (task.kind === 'classification') expect(verbalizerTokenIds(task, lm.tokenizer, 'gpt2')).toHaveLength(task.classes.length);
      }
      expect(lm.tokenizer.bosId).toBeNull();
    } finally {
      await lm.dispose();
    }
  });

  it('a multi-token verbalizer is an EngineInputError naming it', async () => {
    const dataset = {
      name: 'c',
      path: join(DATA, 'custom'),
      task: { template: 'Review: {review}\nVerdict: {answer}\n', answers: { good: 'wonderfully', bad: 'No' }, labelField: 'verdict' },
    };
    const err = await engine.evaluate({ ...sst2Cell('gpt2'), dataset, sizes: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(EngineInputError);
    expect(err.message).toMatch(/verbalizer " wonderfully" of task custom is \d+ tokens/);
  });

  it('rte (JSON Lines) and custom (no validation split) cells run', async () => {
    const rte = await engine.evaluate({ ...sst2Cell('llama'), dataset: { name: 'rte', path: join(DATA, 'rte'), task: 'rte' }, shots: 2, sizes: {} });
    expect(rte.n).toBe(16); // the validation split serves as test
    const custom = await engine.evaluate({
      ...sst2Cell('gpt_neox'),
      dataset: { name: 'c', path: join(DATA, 'custom'), task: { template: 'Review: {review}\nVerdict: {answer}\n', answers: { good: 'Yes', bad: 'No' }, labelField: 'verdict' } },
      sizes: {},
    });
    expect(custom.n).toBe(12);
    expect(custom.examples.every((e) => e.scores.length === 2)).toBe(true);
  });

  it('a prompt longer than the model\'s positions is an EngineInputError', async () => {
    await expect(engine.evaluate({ ...sst2Cell('gpt2'), shots: 10 })).rejects.toThrow(/has 128 positions: use fewer shots/);
  });
});
