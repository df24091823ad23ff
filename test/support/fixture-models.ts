/**
 * The fixture models (test/fixtures/models): their folder, the PyTorch references, every export folder, and
 * the tolerance between two paths of the engine on the same weights (wider under CUDA, whose float32 MatMul
 * uses TF32; scripts/gpu-check.sh runs the suite there).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const MODELS = join(import.meta.dirname, '../fixtures/models');
export const refs = JSON.parse(readFileSync(join(MODELS, 'references.json'), 'utf8'));
export const EP = (process.env.ICL_TEST_EXECUTION_PROVIDER ?? 'cpu') as 'cpu' | 'cuda';
export const SELF_TOL = EP === 'cpu' ? 1e-5 : Number(process.env.ICL_TEST_TOLERANCE ?? 1e-4);
/** Every export folder: the four families with and without past key values, and a float16 export. */
export const DIRS = ['gpt2', 'gpt2-nopast', 'llama', 'llama-nopast', 'gpt_neox', 'gpt_neox-nopast', 'gptj', 'gptj-nopast', 'gptj-fp16'];
