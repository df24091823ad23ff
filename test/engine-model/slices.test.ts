/**
 * Layer-sliced runs against the full path: a cell whose edits start at layer L >= 1 runs layers L..N-1 from
 * the unpruned model's captured hidden states, and must give the full path's predictions and log-probs
 * (within 1e-5) on every fixture family, with and without past key values, on every call shape.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CausalLM, type EditedLM, loadModel, type WeightEdit } from '../../engine/model/index.ts';
import { graphOf, readModelProto } from '../../engine/model/onnx.ts';
import { layerCuts } from '../../engine/model/slices.ts';
import { readJson } from '../../engine/model/tokenizer.ts';
import { familyOf, mapWeights, sizesOf } from '../../engine/model/weights.ts';
import { DIRS, EP, MODELS, refs, SELF_TOL } from '../support/fixture-models.ts';
import { maxDiff } from '../support/max-diff.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'icl-slices-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

const load = (dir: string, layerSlices: boolean, extra: Record<string, number> = {}) =>
  loadModel(join(MODELS, dir), { executionProvider: EP, cacheDir, decompositionCacheBytes: 1 << 24, threads: 1, layerSlices, ...extra });

const edit = (module: string, layer: number, ratio: number): WeightEdit => ({ module, layer, ratio, svd: 'exact', seed: 0 }) as WeightEdit;

/** Every call shape a cell uses, on one edited model: numbers to compare between the two paths. */
async function outputs(e: EditedLM, fam: any) {
  const prompts: number[][] = fam.prompts.map((p: { ids: number[] }) => p.ids);
  const ctx: number[] = fam.continuation.context_ids;
  const cont: number[] = fam.continuation.continuation_ids;
  const demo = prompts[1].slice(0, 20);
  const queries = [prompts[0].slice(0, 5), prompts[2].slice(3, 20), prompts[1].slice(20), [7], []];
  const next = [...(await e.nextTokenLogprobs(await e.prefill(demo), queries)), ...(await e.nextTokenLogprobs(await e.prefill([]), prompts))];
  const items = [{ context: ctx.slice(7), continuation: cont }, { context: [], continuation: cont }];
  const scores = [
    ...(await e.continuationScores(await e.prefill(ctx.slice(0, 7), { logitSum: true }), items)),
    ...(await e.continuationScores(await e.prefill(ctx.slice(0, 7)), items)),
    ...(await e.continuationScores(await e.prefill(ctx.slice(0, 7)), items, { meanLogit: false })),
  ];
  return { next, scores };
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

function expectSame(a: Awaited<ReturnType<typeof outputs>>, b: Awaited<ReturnType<typeof outputs>>): void {
  expect(b.next.length).toBe(a.next.length);
  a.next.forEach((row, i) => {
    expect(argmax(b.next[i])).toBe(argmax(row));
    expect(maxDiff(b.next[i], row)).toBeLessThan(SELF_TOL);
  });
  a.scores.forEach((s, i) => {
    expect(maxDiff(b.scores[i].logprobs, s.logprobs)).toBeLessThan(SELF_TOL);
    if (Number.isNaN(s.meanLogit)) expect(b.scores[i].meanLogit).toBeNaN();
    else expect(Math.abs(b.scores[i].meanLogit - s.meanLogit)).toBeLessThan(SELF_TOL);
  });
}

describe('layer cuts by graph structure', () => {
  it('finds the residual stream entering every layer but the first, in every family', () => {
    for (const dir of DIRS) {
      const path = join(MODELS, dir, 'model.onnx');
      const { model } = readModelProto(join(MODELS, dir), path);
      const config = readJson(join(MODELS, dir, 'config.json'));
      const family = familyOf(config, path);
      const sizes = sizesOf(family, config);
      const cuts = layerCuts(model, mapWeights(model, family, sizes, path), sizes.layers);
      expect(cuts[0]).toBeNull();
      const produced = new Map(graphOf(model).node.flatMap((n) => (n.output ?? []).map((o) => [o, n.name ?? ''] as const)));
      for (let l = 1; l < sizes.layers; l++) {
        // the last node of the layer below: its residual Add
        expect(produced.get(cuts[l]!), `${dir} layer ${l}`).toMatch(new RegExp(`/(h|layers)\\.${l - 1}/Add_1$`));
      }
    }
  });
});

for (const dir of DIRS) {
  const fam = refs.families[dir.replace(/-nopast|-fp16/, '')];
  describe(`${dir}: slices against the full path`, () => {
    it('the same predictions and log-probs for edits starting at every layer, several modules, and layers: -1', async () => {
      const cells = [null, edit('mlp', 1, 0.5), edit('attn', 2, 0.9), edit('fc_in', 2, 0.5), edit('all', 1, 0.75), edit('q_proj', 1, 0.5), edit('mlp', -1, 0.5), edit('fc_out', 0, 0.9)];
      const runs: { out: Awaited<ReturnType<typeof outputs>>; first: number; captured: number }[][] = [];
      for (const layerSlices of [false, true]) {
        const lm: CausalLM = await load(dir, layerSlices);
        const row = [];
        for (const c of cells) {
          const e = await lm.withEdit(c);
          row.push({ out: await outputs(e, fam), first: e.firstLayer, captured: e.capturedTokens });
          e.release();
        }
        runs.push(row);
        await lm.dispose();
      }
      const [full, sliced] = runs;
      cells.forEach((c, i) => {
        expectSame(full[i].out, sliced[i].out);
        expect(full[i].first).toBe(0);
        // a slice starts at its lowest edited layer; layer 0, every layer (-1) and the unpruned model run in full
        expect(sliced[i].first).toBe(c && c.layer > 0 ? c.layer : 0);
      });
      // the unpruned cell kept the states of what it ran (the same prompts): no slice had to capture any
      expect(sliced.map((r) => r.captured)).toEqual(new Array(cells.length).fill(0));
    });
  });
}

describe('captured states', () => {
  const fam = refs.families.llama;
  const prompts: number[][] = fam.prompts.map((p: { ids: number[] }) => p.ids);

  it('a slice captures what it lacks itself, once for every layer; spilled states read back give the same numbers', async () => {
    const full = await load('llama', false);
    const reference = await full.withEdit(edit('fc_out', 2, 0.9));
    const expected = await reference.nextTokenLogprobs(await reference.prefill(prompts[1].slice(0, 12)), [prompts[0], prompts[2].slice(0, 9)]);
    await full.dispose();

    const lm = await load('llama', true, { maxStatesBytes: 1 }); // every block but the newest spilled
    const spill = join(cacheDir, 'states');
    const first = await lm.withEdit(edit('attn', 1, 0.5));
    await first.nextTokenLogprobs(await first.prefill(prompts[1].slice(0, 12)), [prompts[0], prompts[2].slice(0, 9)]);
    expect(first.capturedTokens).toBe(12 + prompts[0].length + 9);
    first.release();
    const folders = readdirSync(spill).filter((f) => f.startsWith(`${process.pid}-`));
    expect(folders.length).toBe(1);
    expect(readdirSync(join(spill, folders[0])).length).toBeGreaterThan(2);

    const second = await lm.withEdit(edit('fc_out', 2, 0.9));
    const got = await second.nextTokenLogprobs(await second.prefill(prompts[1].slice(0, 12)), [prompts[0], prompts[2].slice(0, 9)]);
    expect(second.capturedTokens).toBe(0);
    expect(second.firstLayer).toBe(2);
    got.forEach((row, i) => expect(maxDiff(row, expected[i])).toBeLessThan(SELF_TOL));
    second.release();
    await lm.dispose();
    expect(existsSync(join(spill, folders[0]))).toBe(false);
  });
});
