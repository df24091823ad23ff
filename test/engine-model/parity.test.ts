/**
 * The model layer against PyTorch: every family, every edit of references.json, with and without past
 * key values, on the prefix-reuse path and the full-prompt path.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CausalLM, type EditedLM, loadModel } from '../../engine/model/index.ts';
import { maxDiff } from '../support/max-diff.ts';

const MODELS = join(import.meta.dirname, '../fixtures/models');
const refs = JSON.parse(readFileSync(join(MODELS, 'references.json'), 'utf8'));
// The suite runs on CPU in CI; scripts/gpu-check.sh runs it on CUDA, where onnxruntime-node's float32 MatMul
// uses TF32 (the provider's default, which its Node binding cannot switch off) and so needs a wider tolerance.
const EP = (process.env.ICL_TEST_EXECUTION_PROVIDER ?? 'cpu') as 'cpu' | 'cuda';
const TOL = Number(process.env.ICL_TEST_TOLERANCE ?? 1e-4);
/** Two paths of the engine on the same weights (prefix reuse vs full prompt, selected vs all logits). */
const SELF_TOL = EP === 'cpu' ? 1e-5 : TOL;

const cacheDir = mkdtempSync(join(tmpdir(), 'icl-model-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

for (const family of ['gpt2', 'llama', 'gpt_neox', 'gptj'] as const) {
  const fam = refs.families[family];
  for (const dir of fam.dirs as string[]) {
    describe(`${dir}`, () => {
      let lm: CausalLM;
      beforeAll(async () => {
        lm = await loadModel(join(MODELS, dir), { executionProvider: EP, cacheDir, decompositionCacheBytes: 64 * 2 ** 20, threads: 1 });
      });
      afterAll(async () => lm?.dispose());

      it('describes the model and tokenizes like the reference', () => {
        expect(lm.info.family).toBe(family);
        expect(lm.info.numLayers).toBe(fam.num_layers);
        expect(lm.info.hasPastKeyValues).toBe(!dir.endsWith('-nopast'));
        expect(lm.info.modules.includes('fc_up')).toBe(family === 'llama');
        expect(lm.info.fingerprint).toMatch(/^[0-9a-f]{64}$/);
        expect(lm.tokenizer.bosId).toBeNull();
        for (const p of fam.prompts) expect(lm.tokenizer.encode(p.text)).toEqual(p.ids);
        expect(lm.tokenizer.encode(fam.continuation.context + fam.continuation.continuation)).toEqual([
          ...fam.continuation.context_ids,
          ...fam.continuation.continuation_ids,
        ]);
        expect(lm.tokenizer.decode(fam.prompts[0].ids)).toBe(fam.prompts[0].text);
      });

      for (const ref of fam.edits) {
        it(`matches PyTorch for edit ${ref.name} (full path and prefix reuse)`, async () => {
          const e: EditedLM = await lm.withEdit(ref.edit ? { ...ref.edit, svd: 'exact', seed: 0 } : null);
          const prompts: number[][] = fam.prompts.map((p: { ids: number[] }) => p.ids);

          // full path: empty prefix, every prompt as a query, batched (different lengths -> padding)
          const full = await e.nextTokenLogprobs(await e.prefill([]), prompts);
          prompts.forEach((_, i) => expect(maxDiff(full[i], ref.next_token_logprobs[i])).toBeLessThan(TOL));

          // prefix reuse: a shared 10-token prefix, the rest of each prompt as the query
          const pre = await e.prefill(prompts[1].slice(0, 10));
          const [reuse] = await e.nextTokenLogprobs(pre, [prompts[1].slice(10)]);
          expect(maxDiff(reuse, ref.next_token_logprobs[1])).toBeLessThan(TOL);
          expect(maxDiff(reuse, full[1])).toBeLessThan(SELF_TOL);

          // continuation: per-token log-probs and the mean of raw logits over every position
          const ctx: number[] = fam.continuation.context_ids;
          const cont: number[] = fam.continuation.continuation_ids;
          const [fullScores] = await e.continuationScores(await e.prefill([]), [{ context: ctx, continuation: cont }]);
          expect(maxDiff(fullScores.logprobs, ref.continuation.logprobs)).toBeLessThan(TOL);
          expect(Math.abs(fullScores.meanLogit - ref.continuation.mean_logit)).toBeLessThan(TOL);
          const split = await e.prefill(ctx.slice(0, 7));
          const [reused] = await e.continuationScores(split, [{ context: ctx.slice(7), continuation: cont }]);
          expect(maxDiff(reused.logprobs, ref.continuation.logprobs)).toBeLessThan(TOL);
          expect(Math.abs(reused.meanLogit - ref.continuation.mean_logit)).toBeLessThan(TOL);
          // the whole context in the prefix: the first continuation token is predicted by the prefix's last position
          const [allPrefix] = await e.continuationScores(await e.prefill(ctx), [{ context: [], continuation: cont }]);
          expect(maxDiff(allPrefix.logprobs, ref.continuation.logprobs)).toBeLessThan(TOL);
          expect(Math.abs(allPrefix.meanLogit - ref.continuation.mean_logit)).toBeLessThan(TOL);

          const touched = ref.edit !== null && ref.edit.ratio > 0;
          expect(e.cacheHits + e.cacheMisses).toBe(touched ? ref.matrices.length : 0);
        });
      }

      it('ratio 0 is exactly the untouched model, and prefix reuse equals the full path on a batch', async () => {
        const none = await lm.withEdit(null);
        const zero = await lm.withEdit({ module: 'all', layer: -1, ratio: 0, svd: 'exact', seed: 0 });
        expect(zero.cacheMisses + zero.cacheHits).toBe(0);
        const prompts: number[][] = fam.prompts.map((p: { ids: number[] }) => p.ids);
        const a = await none.nextTokenLogprobs(await none.prefill([]), prompts);
        const b = await zero.nextTokenLogprobs(await zero.prefill([]), prompts);
        prompts.forEach((_, i) => expect(Array.from(b[i])).toEqual(Array.from(a[i])));

        // a demonstration prefix + several queries of different lengths, batched, vs each prompt in full
        const demo = prompts[1].slice(0, 20);
        const queries = [prompts[0].slice(0, 5), prompts[2].slice(3, 20), prompts[1].slice(20), [7]];
        const start = none.forwardTokens;
        const pre = await none.prefill(demo);
        const before = none.forwardTokens;
        const batched = await none.nextTokenLogprobs(pre, queries);
        const realQueryTokens = queries.reduce((s, q) => s + q.length, 0);
        if (lm.info.hasPastKeyValues) {
          expect(before - start).toBe(demo.length); // the prefix ran once
          expect(none.forwardTokens - before).toBe(realQueryTokens); // padding is not counted
        } else {
          expect(before - start).toBe(0);
          expect(none.forwardTokens - before).toBe(realQueryTokens + queries.length * demo.length);
        }
        const fullPath = await none.nextTokenLogprobs(await none.prefill([]), queries.map((q) => [...demo, ...q]));
        queries.forEach((_, i) => expect(maxDiff(batched[i], fullPath[i])).toBeLessThan(SELF_TOL));
      });
    });
  }
}

describe('sessions and prefix handling', () => {
  const fam = refs.families.gpt_neox;
  const ref = fam.edits.find((e: { name: string }) => e.name === 'all@1:0.5');
  const prompts: number[][] = fam.prompts.map((p: { ids: number[] }) => p.ids);

  it('one session per set of edited matrices, shared by its ratios; a small pool; the same numbers in any order', async () => {
    const lm = await loadModel(join(MODELS, 'gpt_neox'), { executionProvider: EP, cacheDir, decompositionCacheBytes: 1 << 24, threads: 1, maxSessions: 1 });
    const fcIn = fam.edits.find((e: { name: string }) => e.name === 'fc_in@0:0.5');
    for (const r of [ref, fcIn, ref, fam.edits[0], fcIn]) {
      const e = await lm.withEdit(r.edit ? { ...r.edit, svd: 'exact', seed: 0 } : null);
      const out = await e.nextTokenLogprobs(await e.prefill([]), prompts);
      prompts.forEach((_, i) => expect(maxDiff(out[i], r.next_token_logprobs[i])).toBeLessThan(TOL));
      e.release();
    }
    // two edits of the same matrix at different ratios, held at once, share a session; the numbers stay each edit's own
    const half = await lm.withEdit({ module: 'fc_in', layer: 0, ratio: 0.5, svd: 'exact', seed: 0 });
    const most = await lm.withEdit({ module: 'fc_in', layer: 0, ratio: 0.9, svd: 'exact', seed: 0 });
    const [a] = await half.nextTokenLogprobs(await half.prefill([]), [prompts[0]]);
    const [b] = await most.nextTokenLogprobs(await most.prefill([]), [prompts[0]]);
    expect(maxDiff(a, fcIn.next_token_logprobs[0])).toBeLessThan(TOL);
    expect(maxDiff(a, b)).toBeGreaterThan(1e-3);
    expect(most.cacheHits).toBe(1); // the decomposition of fc_in@0 was made once
    half.release();
    most.release();
    await lm.dispose();
  });

  it('tight memory bounds split batches without changing the numbers', async () => {
    const lm = await loadModel(join(MODELS, 'gpt_neox'), { executionProvider: EP, cacheDir, decompositionCacheBytes: 1 << 24, threads: 1, maxKvBytes: 1, maxLogitsBytes: 1 });
    const e = await lm.withEdit({ ...ref.edit, svd: 'exact', seed: 0 });
    const pre = await e.prefill(prompts[1].slice(0, 10));
    const out = await e.nextTokenLogprobs(pre, [prompts[1].slice(10), prompts[1].slice(10, 20), prompts[1].slice(10)]);
    expect(maxDiff(out[0], ref.next_token_logprobs[1])).toBeLessThan(TOL);
    expect(maxDiff(out[2], ref.next_token_logprobs[1])).toBeLessThan(TOL);
    expect(e.paddingTokens).toBe(0); // one row per run
    await lm.dispose();
  });

  it('an empty query reads the prefix; a prefix of another edit is refused; pristine weights stay pristine', async () => {
    const lm = await loadModel(join(MODELS, 'gpt_neox'), { executionProvider: EP, cacheDir, decompositionCacheBytes: 1 << 24, threads: 1 });
    const edited = await lm.withEdit({ ...ref.edit, svd: 'exact', seed: 0 });
    const none = await lm.withEdit(null);
    const pre = await none.prefill(prompts[0]);
    const [fromPrefix, withQuery] = await none.nextTokenLogprobs(pre, [[], [5]]);
    expect(maxDiff(fromPrefix, fam.edits[0].next_token_logprobs[0])).toBeLessThan(TOL);
    expect(withQuery.length).toBe(fam.vocab_size);
    await expect(edited.nextTokenLogprobs(pre, [[1]])).rejects.toThrow(/another EditedLM/);
    // after an edit, a fresh unedited view still gives the untouched numbers (no in-place edits)
    const again = await lm.withEdit(null);
    const [x] = await again.nextTokenLogprobs(await again.prefill([]), [prompts[0]]);
    expect(maxDiff(x, fam.edits[0].next_token_logprobs[0])).toBeLessThan(TOL);
    await lm.dispose();
  });
});

describe('logits only where needed', () => {
  it('selecting positions (graph rewrite) gives the same numbers as full logits, on every path', async () => {
    for (const dir of ['llama', 'gpt2-nopast', 'gptj']) {
      const fam = refs.families[dir.replace('-nopast', '')];
      const prompts: number[][] = fam.prompts.map((p: { ids: number[] }) => p.ids);
      const item = { context: fam.continuation.context_ids.slice(5), continuation: fam.continuation.continuation_ids };
      const results: { next: Float32Array[]; cont: { logprobs: number[]; meanLogit: number }[] }[] = [];
      for (const selectLogits of [true, false]) {
        const lm = await loadModel(join(MODELS, dir), { executionProvider: EP, cacheDir, decompositionCacheBytes: 1 << 24, threads: 1, selectLogits });
        expect(lm.selectsLogits).toBe(selectLogits);
        const e = await lm.withEdit({ module: 'mlp', layer: 1, ratio: 0.5, svd: 'exact', seed: 0 });
        const pre = await e.prefill(fam.continuation.context_ids.slice(0, 5));
        results.push({
          next: await e.nextTokenLogprobs(await e.prefill([]), prompts),
          cont: await e.continuationScores(pre, [item, { ...item, context: [] }]),
        });
        await lm.dispose();
      }
      prompts.forEach((_, i) => expect(maxDiff(results[0].next[i], results[1].next[i])).toBeLessThan(SELF_TOL));
      for (let i = 0; i < 2; i++) {
        expect(maxDiff(results[0].cont[i].logprobs, results[1].cont[i].logprobs)).toBeLessThan(SELF_TOL);
        expect(Math.abs(results[0].cont[i].meanLogit - results[1].cont[i].meanLogit)).toBeLessThan(SELF_TOL / 10);
      }
    }
  });
});
