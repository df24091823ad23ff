/**
 * A model whose weight file is over 2 GiB (protobuf's limit for one message) loads and runs a cell, and the
 * process never holds a copy of the weights of its own: the runtime maps the weight file (pages the kernel
 * can drop and share), the engine reads only the matrices a cell edits. So peak RSS stays under 1.5 x the
 * weight file plus the decomposition cache bound, and the process's anonymous memory (its own copies) under
 * half the file while the model is loaded.
 * The model is generated here (Llama-shaped, seeded random weights, optimum's file layout) and deleted after.
 * 42 layers of a 1B-class width make the size (ONNX Runtime's session setup grows faster than linearly with
 * the layer count, so many narrow layers would cost more); the cell edits one square matrix, one cheap SVD.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../engine/index.ts';
import { writeSyntheticLlama, syntheticWeightBytes, type SyntheticShape } from '../support/synthetic-model.ts';

const GiB = 2 ** 30;
const CACHE_BOUND = 64 * 2 ** 20;
const base = { hidden: 1024, intermediate: 2816, heads: 16, kvHeads: 16, vocab: 512 };
const perLayer = syntheticWeightBytes({ ...base, layers: 1 }) - syntheticWeightBytes({ ...base, layers: 0 });
const shape: SyntheticShape = { ...base, layers: Math.ceil((2 * GiB + 16 * 2 ** 20) / perLayer) };

function status(key: 'VmHWM' | 'RssAnon'): number {
  return Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${key}:\\s+(\\d+) kB`))![1]) * 1024;
}

describe('an export over 2 GiB', () => {
  let work: string;
  let fileBytes = 0;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'icl-large-'));
    fileBytes = await writeSyntheticLlama(join(work, 'model'), shape);
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('loads, runs a pruned cell end to end, and peaks under 1.5 x the weight file + the cache bound', async () => {
    expect(fileBytes).toBeGreaterThan(2 * GiB);
    const engine = createEngine({ executionProvider: 'cpu', cacheDir: join(work, 'cache'), maxModels: 1, decompositionCacheBytes: CACHE_BOUND });
    try {
      const info = await engine.describeModel({ name: 'large', path: join(work, 'model') });
      expect(info).toMatchObject({ family: 'llama', numLayers: shape.layers, weightDtype: 'float32', hasPastKeyValues: true });
      const outcome = await engine.evaluate({
        model: { name: 'large', path: join(work, 'model') },
        dataset: { name: 'sst2', task: 'sst2', path: join(import.meta.dirname, '../fixtures/datasets/sst2') },
        module: 'q_proj',
        layer: shape.layers - 1,
        ratio: 0.5,
        split: 'test',
        shots: 1,
        seed: 1,
        sizes: { testPerClass: 1 },
        scoring: { multipleChoice: 'loglik', svd: 'exact' },
      });
      expect(outcome.n).toBe(2);
      expect(outcome.examples.map((e) => e.scores.every(Number.isFinite))).toEqual([true, true]);
      expect(outcome.cost.decompositionCacheMisses).toBe(1);
      expect(outcome.cost.forwardTokens).toBeGreaterThan(outcome.cost.demoTokens);
      expect(status('RssAnon')).toBeLessThan(0.5 * fileBytes);
    } finally {
      await engine.close();
    }
    expect(status('VmHWM')).toBeLessThan(1.5 * fileBytes + CACHE_BOUND);
  });
});
