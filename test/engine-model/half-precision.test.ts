/**
 * A float16 export (gptj-fp16: optimum's `--dtype fp16` export of the gptj fixture) on CPU, where the engine
 * widens it to float32: the numbers match PyTorch run in float32 on the float16-rounded weights, each edited
 * matrix decomposed in float32 and rounded back to float16. The tolerance is the widened graph's own distance
 * from those references in onnxruntime (3e-4, its float16 constants), with margin.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CausalLM, loadModel } from '../../engine/model/index.ts';
import { maxDiff } from '../support/max-diff.ts';

const MODELS = join(import.meta.dirname, '../fixtures/models');
const refs = JSON.parse(readFileSync(join(MODELS, 'references.json'), 'utf8')).half_precision['gptj-fp16'];
// On CUDA (scripts/gpu-check.sh) the model runs in float16 itself: ICL_TEST_HALF_TOLERANCE widens the bound.
const EP = (process.env.ICL_TEST_EXECUTION_PROVIDER ?? 'cpu') as 'cpu' | 'cuda';
const TOL = Number(process.env.ICL_TEST_HALF_TOLERANCE ?? 2e-3);
/** The graph's own float16 types kept (ONNX Runtime's CPU kernels measured within 2.1e-3 of the references). */
const HALF_COMPUTE_TOL = 1e-2;
const cacheDir = mkdtempSync(join(tmpdir(), 'icl-half-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe(`gptj-fp16 on ${EP}${EP === 'cpu' ? ' (float32 fallback)' : ''}`, () => {
  let lm: CausalLM;
  beforeAll(async () => {
    lm = await loadModel(join(MODELS, 'gptj-fp16'), { executionProvider: EP, cacheDir, decompositionCacheBytes: 1 << 24, threads: 1 });
  });
  afterAll(async () => lm?.dispose());

  it('reports its stored weight type and the type it runs in', () => {
    expect(lm.info.family).toBe('gptj');
    expect(lm.info.weightDtype).toBe('float16');
    expect(lm.computeType).toBe(EP === 'cpu' ? 'float32' : 'float16');
    expect(lm.info.hasPastKeyValues).toBe(true);
  });

  for (const ref of refs.edits) {
    it(`matches the half-precision references for ${ref.name} (full path, prefix reuse, continuation)`, async () => {
      const e = await lm.withEdit(ref.edit ? { ...ref.edit, svd: 'exact', seed: 0 } : null);
      const prompts: number[][] = refs.prompts.map((p: { ids: number[] }) => p.ids);
      const full = await e.nextTokenLogprobs(await e.prefill([]), prompts);
      prompts.forEach((_, i) => expect(maxDiff(full[i], ref.next_token_logprobs[i])).toBeLessThan(TOL));
      const [reuse] = await e.nextTokenLogprobs(await e.prefill(prompts[1].slice(0, 10)), [prompts[1].slice(10)]);
      expect(maxDiff(reuse, ref.next_token_logprobs[1])).toBeLessThan(TOL);
      const [scores] = await e.continuationScores(await e.prefill([]), [{ context: refs.continuation.context_ids, continuation: refs.continuation.continuation_ids }]);
      expect(maxDiff(scores.logprobs, ref.continuation.logprobs)).toBeLessThan(TOL);
      e.release();
    });
  }
});

describe('gptj-fp16 run in float16 (the CUDA path: float16 weights fed, float16 key/values kept between runs)', () => {
  it('on the CPU provider, which has float16 kernels for this graph: close to the references, prefix reuse equal to the full prompt', async () => {
    const lm = await loadModel(join(MODELS, 'gptj-fp16'), { executionProvider: 'cpu', cacheDir, decompositionCacheBytes: 1 << 24, threads: 1, computeIn: 'stored' });
    expect(lm.computeType).toBe('float16');
    const prompts: number[][] = refs.prompts.map((p: { ids: number[] }) => p.ids);
    for (const ref of refs.edits) {
      const e = await lm.withEdit(ref.edit ? { ...ref.edit, svd: 'exact', seed: 0 } : null);
      const full = await e.nextTokenLogprobs(await e.prefill([]), prompts);
      prompts.forEach((_, i) => expect(maxDiff(full[i], ref.next_token_logprobs[i])).toBeLessThan(HALF_COMPUTE_TOL));
      const [reuse] = await e.nextTokenLogprobs(await e.prefill(prompts[1].slice(0, 10)), [prompts[1].slice(10)]);
      expect(maxDiff(reuse, full[1])).toBeLessThan(HALF_COMPUTE_TOL);
      e.release();
    }
    await lm.dispose();
  });
});
