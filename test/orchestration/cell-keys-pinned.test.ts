/**
 * Cell keys of stored sweeps must not change by accident: a sweep stored with these inputs is reused
 * only while the same inputs give the same keys. A deliberate key change (a new engine version, a new
 * identity field) updates them in the same commit; the last ones added the weights' stored type
 * (weightDtype "float32" here) and the execution provider ("cpu").
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../../engine/index.ts';
import { expandCells } from '../../sweepspec/grid.ts';
import { checkSpec } from '../../sweepspec/schema.ts';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const PINNED = {
  model: 'a66cf0d374bcd49c1565a6cbf28b40cf5cd8b970d7d4e1ad4d1eb1aa092bb749',
  dataset: 'a6652d1b947a7108e397fde1365b3756bf4811d136cb1bf0bca69cd169c34db2',
  keys: [
    'none/0/0=9090fd5d249cbd892d571215b5c518f66e99d83352d586cbcb35d6cf8ef67115',
    'mlp/0/0.5=140e7608fd09f35beb18719232161877401f34926840f45cfc3170c5b147cf39',
    'mlp/2/0.5=4b8ddd7c9947105a5dacfe87eb1869ca70b4630457624b3283aab391c29af5e3',
  ],
};

describe('pinned cell keys', () => {
  it('the gpt2 fixture, the sst2 fixture and a small grid give the keys stored sweeps hold', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'icl-pinned-'));
    const engine = createEngine({ executionProvider: 'cpu', cacheDir, maxModels: 1, decompositionCacheBytes: 1 << 26 });
    try {
      const model = await engine.describeModel({ name: 'gpt2', path: `${FIXTURES}models/gpt2` });
      const dataset = await engine.describeDataset({ name: 'sst2', task: 'sst2', path: `${FIXTURES}datasets/sst2` });
      expect(model.fingerprint).toBe(PINNED.model);
      expect(dataset.fingerprint).toBe(PINNED.dataset);
      const checked = checkSpec({
        name: 'pin', models: [{ name: 'gpt2', path: 'x' }], datasets: [{ name: 'sst2', task: 'sst2', path: 'y' }],
        modules: ['mlp'], layers: [0, 2], ratios: [0, 0.5], shots: 4, seed: 3, sizes: { testPerClass: 8 },
      });
      if (!checked.ok) throw new Error(checked.problems.join('\n'));
      const prepared = {
        engineVersion: '1.1.0',
        models: [{ name: 'gpt2', fingerprint: model.fingerprint, numLayers: model.numLayers, family: model.family, modules: model.modules, weightDtype: model.weightDtype }],
        datasets: [{ name: 'sst2', fingerprint: dataset.fingerprint }],
      };
      const keys = expandCells(checked.spec, prepared, 'test').map((c) => `${c.module}/${c.layer}/${c.ratio}=${c.key}`);
      expect(keys).toEqual(PINNED.keys);
    } finally {
      await engine.close();
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
