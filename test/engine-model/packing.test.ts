/**
 * Queries side by side in one row (the graph's attention mask fed by the engine) against one query per
 * row: the same predictions and log-probs (within 1e-5) on every fixture family, every call shape.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type WeightEdit } from '../../engine/model/index.ts';
import { type FedMask, maskFeed, maskTensor } from '../../engine/model/mask.ts';
import { graphOf, readModelProto } from '../../engine/model/onnx.ts';
import { nodeLayer } from '../../engine/model/slices.ts';
import { DIRS, EP, MODELS, refs, SELF_TOL } from '../support/fixture-models.ts';
import { maxDiff } from '../support/max-diff.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'icl-packing-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('the attention mask', () => {
  it('is the one tensor computed from attention_mask outside the layers that every layer reads, in every family', () => {
    for (const dir of DIRS) {
      const { model } = readModelProto(join(MODELS, dir), join(MODELS, dir, 'model.onnx'));
      const tensor = maskTensor(model, 3);
      expect(tensor, dir).not.toBeNull();
      const producer = graphOf(model).node.find((n) => (n.output ?? []).includes(tensor!))!;
      expect(nodeLayer(producer.name ?? '')).toBeNull();
      const readers = new Set(graphOf(model).node.filter((n) => (n.input ?? []).includes(tensor!)).map((n) => nodeLayer(n.name ?? '')));
      expect([...readers].sort()).toEqual([0, 1, 2]);
    }
  });

  it('fed for two sequences in a row and a padded one: each position sees the past and its own sequence up to itself', () => {
    const mask: FedMask = { type: 'bool', rank: 4, visible: 1, hidden: 0 };
    // past 2; row 0: a sequence of 2 at 0, one of 2 at 2; row 1: one of 3 at 0, then a padding position
    const t = maskFeed(mask, 2, 4, 2, [{ row: 0, offset: 0 }, { row: 0, offset: 2 }, { row: 1, offset: 0 }], [2, 2, 3]);
    expect(t.dims).toEqual([2, 1, 4, 6]);
    const rows = Array.from({ length: 8 }, (_, i) => Array.from((t.data as Uint8Array).subarray(i * 6, i * 6 + 6)).join(''));
    expect(rows).toEqual(['111000', '111100', '110010', '110011', '111000', '111100', '111110', '110001']);
    const floats = maskFeed({ type: 'float32', rank: 5, visible: 0, hidden: -3.4e38 }, 1, 1, 1, [{ row: 0, offset: 0 }], [1]);
    expect(floats.dims).toEqual([1, 1, 1, 1, 2]);
    expect(Array.from(floats.data as Float32Array)).toEqual([0, 0]);
  });
});

for (const dir of DIRS) {
  const fam = refs.families[dir.replace(/-nopast|-fp16/, '')];
  it(`${dir}: packed rows give the numbers of one query per row`, async () => {
    const prompts: number[][] = fam.prompts.map((p: { ids: number[] }) => p.ids);
    const ctx: number[] = fam.continuation.context_ids;
    const cont: number[] = fam.continuation.continuation_ids;
    const edit = { module: 'mlp', layer: 1, ratio: 0.5, svd: 'exact', seed: 0 } as WeightEdit;
    const queries = [prompts[0].slice(0, 5), prompts[2].slice(3, 20), prompts[1].slice(20), [7], prompts[0].slice(4, 6), prompts[2].slice(0, 11)];
    const results = [];
    for (const packSequences of [false, true]) {
      const lm = await loadModel(join(MODELS, dir), { executionProvider: EP, cacheDir, decompositionCacheBytes: 1 << 24, threads: 1, packSequences, layerSlices: false });
      const e = await lm.withEdit(edit);
      const next = await e.nextTokenLogprobs(await e.prefill(prompts[1].slice(0, 20)), queries);
      const items = [{ context: ctx.slice(7), continuation: cont }, { context: ctx.slice(9), continuation: cont.slice(0, 1) }, { context: [], continuation: cont }];
      const scores = [
        ...(await e.continuationScores(await e.prefill(ctx.slice(0, 7), { logitSum: true }), items)),
        ...(await e.continuationScores(await e.prefill(ctx.slice(0, 7)), items, { meanLogit: false })),
      ];
      expect(lm.packsSequences).toBe(packSequences);
      results.push({ next, scores, padding: e.paddingTokens });
      e.release();
      await lm.dispose();
    }
    const [one, packed] = results;
    one.next.forEach((row, i) => expect(maxDiff(packed.next[i], row)).toBeLessThan(SELF_TOL));
    one.scores.forEach((s, i) => {
      expect(maxDiff(packed.scores[i].logprobs, s.logprobs)).toBeLessThan(SELF_TOL);
      if (!Number.isNaN(s.meanLogit)) expect(Math.abs(packed.scores[i].meanLogit - s.meanLogit)).toBeLessThan(SELF_TOL);
    });
    // the queries of a call on a past share rows: less padding than one query per row (without a past every
    // sequence keeps its row)
    if (dir.endsWith('-nopast')) expect(packed.padding).toBe(one.padding);
    else expect(packed.padding).toBeLessThan(one.padding);
  });
}
