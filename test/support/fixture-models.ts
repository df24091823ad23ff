/**
 * The fixture models (test/fixtures/models): their folder, the PyTorch references, every export folder, and
 * the tolerance between two paths of the engine on the same weights (wider under CUDA, whose float32 MatMul
 * uses TF32; scripts/gpu-check.sh runs the suite there), and a cell of a fixture family on the SST-2 fixture.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CellRequest } from '../../engine/types.ts';

export const MODELS = join(import.meta.dirname, '../fixtures/models');
export const refs = JSON.parse(readFileSync(join(MODELS, 'references.json'), 'utf8'));
export const EP = (process.env.ICL_TEST_EXECUTION_PROVIDER ?? 'cpu') as 'cpu' | 'cuda';
export const SELF_TOL = EP === 'cpu' ? 1e-5 : Number(process.env.ICL_TEST_TOLERANCE ?? 1e-4);
/** Every export folder: the four families with and without past key values, and a float16 export. */
export const DIRS = ['gpt2', 'gpt2-nopast', 'llama', 'llama-nopast', 'gpt_neox', 'gpt_neox-nopast', 'gptj', 'gptj-nopast', 'gptj-fp16'];

export const DATA = join(import.meta.dirname, '../fixtures/datasets');

/** A fixture family's folder as a model spec. */
export const fixtureModel = (family: string) => ({ name: family, path: join(MODELS, family) });

/** An SST-2 cell (4 shots, 4 test examples per class) on a fixture family, mlp of layer 1 at ratio 0.5. */
export const sst2Cell = (family: string): CellRequest => ({
  model: fixtureModel(family),
  dataset: { name: 'sst2', path: join(DATA, 'sst2'), task: 'sst2' },
  module: 'mlp',
  layer: 1,
  ratio: 0.5,
  split: 'test',
  shots: 4,
  sizes: { testPerClass: 4 },
  scoring: { multipleChoice: 'loglik', svd: 'exact' },
});
