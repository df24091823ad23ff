/**
 * The engine's optional hints to the model layer: prefill(ids, { logitSum }) computes the prefix's logit
 * sum during the prefill (no second prefix pass for the paper's COPA mean-logit mode), and
 * continuationScores(..., { meanLogit: false }) skips everything the mean logit needs (loglik modes).
 * Numbers against references.json; forwardTokens counted exactly. Without hints: as before.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../engine/model/index.ts';
import { maxDiff } from '../support/max-diff.ts';

const MODELS = join(import.meta.dirname, '../fixtures/models');
const refs = JSON.parse(readFileSync(join(MODELS, 'references.json'), 'utf8'));
const TOL = 1e-4;
const cacheDir = mkdtempSync(join(tmpdir(), 'icl-hints-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe.each(['gpt2', 'llama', 'gpt_neox', 'gpt2-nopast'])('%s', (dir) => {
  const fam = refs.families[dir.replace('-nopast', '')];
  const ref = fam.edits.find((e: { name: string }) => e.name === 'all@1:0.5');
  const ctx: number[] = fam.continuation.context_ids;
  const cont: number[] = fam.continuation.continuation_ids;
  const P = 7;
  const item = { context: ctx.slice(P), continuation: cont };
  const rest = ctx.length - P + cont.length;

  // maxLogitsBytes 1: the hinted prefill runs one token per chunk (on top of the previous chunks' past key values)
  it.each([undefined, 1])('hints honoured, same numbers, forwardTokens == prompt tokens (maxLogitsBytes %s)', async (maxLogitsBytes) => {
    const lm = await loadModel(join(MODELS, dir), { executionProvider: 'cpu', cacheDir, decompositionCacheBytes: 1 << 24, threads: 1, ...(maxLogitsBytes ? { maxLogitsBytes } : {}) });
    const past = lm.info.hasPastKeyValues;
    try {
      // mean-logits mode: the logit sum comes with the prefill
      const e = await lm.withEdit({ ...ref.edit, svd: 'exact', seed: 0 });
      const pre = await e.prefill(ctx.slice(0, P), { logitSum: true });
      expect(e.forwardTokens).toBe(past ? P : 0);
      const [m] = await e.continuationScores(pre, [item], { meanLogit: true });
      expect(maxDiff(m.logprobs, ref.continuation.logprobs)).toBeLessThan(TOL);
      expect(Math.abs(m.meanLogit - ref.continuation.mean_logit)).toBeLessThan(TOL);
      expect(e.forwardTokens).toBe(P + rest);
      e.release();

      // loglik modes: no mean logit, no extra prefix pass
      const l = await lm.withEdit({ ...ref.edit, svd: 'exact', seed: 0 });
      const pre2 = await l.prefill(ctx.slice(0, P), { logitSum: false });
      const [a, b] = await l.continuationScores(pre2, [item, { context: [], continuation: ctx.slice(P).concat(cont) }], { meanLogit: false });
      expect(maxDiff(a.logprobs, ref.continuation.logprobs)).toBeLessThan(TOL);
      expect(Number.isNaN(a.meanLogit)).toBe(true);
      expect(b.logprobs).toHaveLength(rest);
      expect(l.forwardTokens).toBe(past ? P + 2 * rest : 2 * (P + rest));
      // the whole context in the prefix: the first continuation token comes from the prefix's last position
      const [c] = await l.continuationScores(await l.prefill(ctx), [{ context: [], continuation: cont }], { meanLogit: false });
      expect(maxDiff(c.logprobs, ref.continuation.logprobs)).toBeLessThan(TOL);
      l.release();

      // no hints: as before (the mean logit is computed, the prefix re-run once for its logit sum)
      const n = await lm.withEdit({ ...ref.edit, svd: 'exact', seed: 0 });
      const [x] = await n.continuationScores(await n.prefill(ctx.slice(0, P)), [item]);
      expect(maxDiff(x.logprobs, ref.continuation.logprobs)).toBeLessThan(TOL);
      expect(Math.abs(x.meanLogit - ref.continuation.mean_logit)).toBeLessThan(TOL);
      expect(n.forwardTokens).toBe(past ? 2 * P + rest : P + rest);
      n.release();
    } finally {
      await lm.dispose();
    }
  });
});
