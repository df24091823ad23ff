/** createEngine / evaluate above a fake model layer: prefix, batching, progress, abort, caches, errors, scoring. */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, ENGINE_VERSION, EngineInputError, type CellRequest } from '../../engine/index.ts';
import { Tokenizer } from '@huggingface/tokenizers';
import { sharedPrefixLength, type IclEngine } from '../../engine/evaluate.ts';
import { renderChoices, renderDemos, renderQuery } from '../../engine/tasks/render.ts';
import { scoreChoices } from '../../engine/tasks/scoring.ts';
import { fakeLoader, fakeLogprobs } from './fake-model.ts';

const FIX = resolve(import.meta.dirname, '../fixtures/datasets');
const tmp = mkdtempSync(join(tmpdir(), 'engine-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const base: CellRequest = {
  model: { name: 'fake', path: '/fake/model-a' },
  dataset: { name: 'sst2', path: join(FIX, 'sst2'), task: 'sst2' },
  module: 'mlp',
  layer: 1,
  ratio: 0.5,
  split: 'test',
  shots: 4,
  sizes: {},
  scoring: { multipleChoice: 'loglik', svd: 'exact' },
};

function engineWith(fake: ReturnType<typeof fakeLoader>, extra: { batchSize?: number; maxModels?: number; tokenizeChunk?: number } = {}) {
  return createEngine({
    executionProvider: 'cpu',
    cacheDir: join(tmp, 'cache'),
    maxModels: extra.maxModels ?? 2,
    decompositionCacheBytes: 1 << 20,
    loadModel: fake.load,
    locateModel: fake.locate,
    batchSize: extra.batchSize,
    tokenizeChunk: extra.tokenizeChunk,
  });
}

describe('evaluate (fake model layer)', () => {
  it('exports a version', () => {
    expect(typeof ENGINE_VERSION).toBe('string');
    expect(ENGINE_VERSION.length).toBeGreaterThan(0);
  });

  it('prefills BOS + demonstrations once, batches queries, scores the verbalizers', async () => {
    const fake = fakeLoader({ bosId: 0 });
    const engine = engineWith(fake, { batchSize: 3 });
    const out = await engine.evaluate(base);
    expect(fake.calls.prefills).toHaveLength(1);
    const prefix = fake.calls.prefills[0];
    expect(prefix[0]).toBe(0);
    const tok = fake.tokenizers.get('/fake/model-a')!;
    const demoText = tok.decode(prefix.slice(1));
    expect(demoText.match(/ sentiment : (pos|neg) \n/g)).toEqual([' sentiment : pos \n', ' sentiment : neg \n', ' sentiment : pos \n', ' sentiment : neg \n']);
    expect(demoText.startsWith('text: ')).toBe(true);
    // sst2 fixture: the test split is unlabelled, so its 20 validation rows are the test set.
    expect(out.n).toBe(20);
    expect(fake.calls.batches.every((b) => b.length <= 3)).toBe(true);
    expect(fake.calls.batches.flat()).toHaveLength(20);
    // The shared prefix is the longest common token prefix of the full prompts (here it runs into the
    // queries' common "text:"); prefix + query is the full prompt: demonstrations then one query line.
    for (const q of fake.calls.batches.flat()) {
      expect(q.length).toBeGreaterThan(0);
      expect(tok.decode(prefix.slice(1).concat(q))).toMatch(/^(text: [^\n]*\n sentiment : (pos|neg) \n){4}text: [^\n]*\n sentiment :$/);
    }
    expect(out.examples.map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const e of out.examples) {
      expect(e.scores).toHaveLength(2);
      expect(e.prediction).toBe(e.scores[1] > e.scores[0] ? 1 : 0);
    }
    expect(out.accuracy).toBeCloseTo(out.examples.filter((e) => e.prediction === e.label).length / 20, 12);
    expect(out.accuracyNorm).toBeNull();
    expect(out.cost.demoTokens).toBe(prefix.length);
    expect(out.cost.forwardTokens).toBe(out.cost.promptTokens);
    expect(fake.calls.edits).toEqual([{ module: 'mlp', layer: 1, ratio: 0.5, svd: 'exact', seed: 49 }]);
    expect(fake.calls.released).toBe(1);
    await engine.close();
    expect(fake.calls.disposed).toEqual(['/fake/model-a']);
  });

  it('the scores are exactly the log-probabilities of prefix + query (checked against the fake directly)', async () => {
    const fake = fakeLoader();
    const engine = engineWith(fake);
    const out = await engine.evaluate({ ...base, ratio: 0 });
    const tok = fake.tokenizers.get('/fake/model-a')!;
    const prefix = fake.calls.prefills[0];
    const query = fake.calls.batches[0][0];
    // Batches run shortest query first; find the example this query belongs to through its scores.
    const lp = fakeLogprobs(prefix.concat(query), 0);
    const scores = [lp[tok.encode(' neg')[0]], lp[tok.encode(' pos')[0]]];
    expect(out.examples.some((e) => e.scores[0] === scores[0] && e.scores[1] === scores[1])).toBe(true);
    await engine.close();
  });

  it('reusePrefix false: empty prefill, every query carries the whole prompt, same scores', async () => {
    const fake = fakeLoader({ bosId: 0 });
    const engine = engineWith(fake);
    const reuse = await engine.evaluate(base);
    const prefix = fake.calls.prefills[0];
    fake.calls.batches.length = 0;
    const full = await engine.evaluate(base, { reusePrefix: false });
    expect(fake.calls.prefills[1]).toEqual([]);
    for (const q of fake.calls.batches.flat()) expect(q.slice(0, prefix.length)).toEqual(prefix);
    expect(full.examples).toEqual(reuse.examples);
    expect(full.cost.promptTokens).toBe(reuse.cost.promptTokens);
    expect(full.cost.forwardTokens).toBe(reuse.cost.promptTokens + (reuse.n - 1) * prefix.length);
    await engine.close();
  });

  it('ratio 0 is the unedited model whatever the module and layer; the seed reaches the edit', async () => {
    const fake = fakeLoader();
    const engine = engineWith(fake);
    const a = await engine.evaluate({ ...base, ratio: 0, module: 'mlp', layer: 0 });
    const b = await engine.evaluate({ ...base, ratio: 0, module: 'attn', layer: -1 });
    expect(fake.calls.edits).toEqual([null, null]);
    expect(b.examples).toEqual(a.examples);
    await engine.evaluate({ ...base, ratio: 0.9, module: 'attn', layer: -1, seed: 7, scoring: { multipleChoice: 'loglik', svd: 'randomized' } });
    expect(fake.calls.edits[2]).toEqual({ module: 'attn', layer: -1, ratio: 0.9, svd: 'randomized', seed: 7 });
    await engine.close();
  });

  it('reports progress monotonically up to (n, n)', async () => {
    const fake = fakeLoader();
    const engine = engineWith(fake, { batchSize: 6 });
    const seen: [number, number][] = [];
    await engine.evaluate(base, { onProgress: (d, t) => seen.push([d, t]) });
    expect(seen[0]).toEqual([0, 20]);
    expect(seen.at(-1)).toEqual([20, 20]);
    expect(seen.map((s) => s[0])).toEqual([0, 6, 12, 18, 20]);
    await engine.close();
  });

  it('stops on abort', async () => {
    const fake = fakeLoader({ delayMs: 5 });
    const engine = engineWith(fake, { batchSize: 2 });
    const ctl = new AbortController();
    const p = engine.evaluate(base, { signal: ctl.signal, onProgress: (d) => d >= 4 && ctl.abort(new Error('cancelled by test')) });
    await expect(p).rejects.toThrow('cancelled by test');
    expect(fake.calls.batches.length).toBeLessThan(10);
    const pre = new AbortController();
    pre.abort();
    await expect(engine.evaluate(base, { signal: pre.signal })).rejects.toThrow();
    await engine.close();
  });

  it('keeps at most maxModels loaded, loads each folder once, disposes the least recently used', async () => {
    const fake = fakeLoader();
    const engine = engineWith(fake, { maxModels: 1 });
    const a = { name: 'a', path: '/fake/a' };
    const b = { name: 'b', path: '/fake/b' };
    await Promise.all([engine.evaluate({ ...base, model: a }), engine.evaluate({ ...base, model: a }), engine.describeModel(a)]);
    expect(fake.calls.loads).toEqual(['/fake/a']);
    await engine.evaluate({ ...base, model: b });
    expect(fake.calls.loads).toEqual(['/fake/a', '/fake/b']);
    await new Promise((r) => setTimeout(r, 0));
    expect(fake.calls.disposed).toEqual(['/fake/a']);
    const again = await engine.evaluate({ ...base, model: b });
    expect(again.cost.modelLoadSeconds).toBe(0);
    expect(fake.calls.loads).toHaveLength(2);
    await engine.close();
  });

  it('describeModel and describeDataset', async () => {
    const fake = fakeLoader();
    const engine = engineWith(fake);
    expect((await engine.describeModel(base.model)).fingerprint).toBe('fake:/fake/model-a');
    const info = await engine.describeDataset({ name: 'copa', path: join(FIX, 'copa'), task: 'copa' });
    expect(info).toMatchObject({ classes: ['choice1', 'choice2'], kind: 'multiple-choice' });
    expect(info.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    await expect(engine.describeDataset({ name: 'x', path: join(FIX, 'copa'), task: 'rte' })).rejects.toThrow(/missing field "hypothesis"/);
    await engine.close();
  });

  it('bad cells -> EngineInputError', async () => {
    const fake = fakeLoader({ info: { family: 'gpt2', modules: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_out', 'mlp', 'attn', 'all'], numLayers: 3 } });
    const engine = engineWith(fake);
    await expect(engine.evaluate({ ...base, module: 'fc_up' })).rejects.toThrow(/family gpt2 has no module "fc_up"/);
    await expect(engine.evaluate({ ...base, module: 'fc_up', ratio: 0 })).resolves.toBeDefined();
    await expect(engine.evaluate({ ...base, layer: 3 })).rejects.toThrow(EngineInputError);
    await expect(engine.evaluate({ ...base, ratio: 1 })).rejects.toThrow(EngineInputError);
    await expect(engine.evaluate({ ...base, sizes: { testPerClass: 50 } })).rejects.toThrow(/validation-00000-of-00001\.parquet: field "label": too few examples/);
    await expect(engine.evaluate({ ...base, dataset: { name: 'n', path: join(tmp, 'missing'), task: 'sst2' } })).rejects.toThrow(EngineInputError);
    await expect(engine.evaluate({ ...base, dataset: { name: 'r', recipe: 'no-such-recipe' } })).rejects.toThrow(EngineInputError);
    await engine.close();
  });

  it('a verbalizer that is not one token -> EngineInputError naming it', async () => {
    const fake = fakeLoader();
    const engine = engineWith(fake);
    const dataset = {
      name: 'c',
      path: join(FIX, 'custom'),
      task: { template: 'Review: {review}\nVerdict: {answer}\n', answers: { good: 'wonderfully', bad: 'No' }, labelField: 'verdict' },
    };
    const err = await engine.evaluate({ ...base, dataset }).catch((e) => e);
    expect(err).toBeInstanceOf(EngineInputError);
    expect(err.message).toContain('verbalizer " wonderfully"');
    expect(err.subject).toBe(' wonderfully');
    await engine.close();
  });

  it('tokenizing many rows yields to the event loop', async () => {
    const rows = Array.from({ length: 400 }, (_, i) => JSON.stringify({ sentence: `row ${i} good`, label: i % 2 })).join('\n');
    const dir = join(tmp, 'big');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'train.jsonl'), rows);
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const fake = fakeLoader({ onEncode: () => busy(1) });
    const engine = engineWith(fake, { tokenizeChunk: 16 });
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 5);
    const t0 = performance.now();
    await engine.evaluate({ ...base, dataset: { name: 'big', path: dir, task: 'sst2' }, split: 'validation', sizes: { validationPerClass: 150 } });
    clearInterval(timer);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThan(300);
    // Timers only run when the loop turns: one synchronous tokenizing block of >= 300 ms would leave
    // a couple of ticks and one gap of most of the run; chunks of 16 rows (~16 ms) leave many ticks.
    // (Relative bounds: a loaded CI machine stretches wall-clock gaps.)
    const gaps = [ticks[0] - t0, ...ticks.slice(1).map((t, i) => t - ticks[i])];
    expect(ticks.length).toBeGreaterThanOrEqual(8);
    expect(Math.max(...gaps)).toBeLessThan(0.5 * elapsed);
    await engine.close();
  });
});

describe('multiple choice scoring', () => {
  it('loglik sums, loglik-norm divides by UTF-8 bytes, mean-logits uses the mean logit (hand-computed)', () => {
    const results = [
      { logprobs: [-1, -1], meanLogit: 0.3 },
      { logprobs: [-1.5], meanLogit: 0.1 },
    ];
    expect(scoreChoices(results, [10, 3], 'loglik')).toEqual({ scores: [-2, -1.5], prediction: 1, predictionNorm: 0 });
    expect(scoreChoices(results, [10, 3], 'loglik-norm')).toEqual({ scores: [-0.2, -0.5], prediction: 0, predictionNorm: 0 });
    expect(scoreChoices(results, [10, 3], 'mean-logits')).toEqual({ scores: [0.3, 0.1], prediction: 0, predictionNorm: 0 });
  });

  it('a COPA cell: accuracy follows the mode, accuracyNorm is always the length-normalised accuracy', async () => {
    const fake = fakeLoader();
    const engine = engineWith(fake, { batchSize: 5 });
    const req = { ...base, dataset: { name: 'copa', path: join(FIX, 'copa'), task: 'copa' as const }, shots: 2 };
    const out: Record<string, Awaited<ReturnType<typeof engine.evaluate>>> = {};
    for (const mode of ['loglik', 'loglik-norm', 'mean-logits'] as const) {
      fake.calls.hints.length = 0;
      out[mode] = await engine.evaluate({ ...req, scoring: { multipleChoice: mode, svd: 'exact' } });
      // Only the paper's mode needs mean logits (and the prefix's logit sum): the model layer is told so.
      const need = mode === 'mean-logits';
      expect(fake.calls.hints[0]).toEqual({ prefill: { logitSum: need } });
      expect(fake.calls.hints.slice(1).every((h) => (h.continuation as { meanLogit: boolean }).meanLogit === need)).toBe(true);
    }
    // copa: the test split is unlabelled, the validation split (12 rows) is the test set.
    expect(out.loglik.n).toBe(12);
    expect(out['loglik-norm'].accuracy).toBe(out.loglik.accuracyNorm);
    expect(out['mean-logits'].accuracyNorm).toBe(out.loglik.accuracyNorm);
    for (const mode of ['loglik', 'loglik-norm', 'mean-logits']) {
      const o = out[mode];
      expect(o.accuracy).toBeCloseTo(o.examples.filter((e) => e.prediction === e.label).length / o.n, 12);
    }
    const tok = fake.tokenizers.get('/fake/model-a')!;
    // Candidates are the context "{premise}\n{question}\n" followed by "{choice}\n".
    for (const c of fake.calls.batches.flat()) expect(tok.decode(c)).toMatch(/^[^\n]+\n(cause|effect)\n[^\n]+\n$/);
    expect(out.loglik.cost.forwardTokens).toBe(out.loglik.cost.promptTokens);
    expect(out.loglik.examples[0].scores).toHaveLength(2);
    await engine.close();
  });
});

/** The gpt2 fixture model's byte-level BPE (the same pre-tokenizer as GPT-2 / SmolLM2). */
function fixtureTokenizer() {
  const dir = resolve(import.meta.dirname, '../fixtures/models/gpt2');
  const tok = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
  return {
    bosId: null,
    encode: (t: string) => tok.encode(t, { add_special_tokens: false }).ids,
    decode: (ids: number[]) => tok.decode(ids, { skip_special_tokens: false }),
  };
}

const sorted = (rows: number[][]) => rows.map((r) => r.join(',')).sort();

describe('tokenization: every prompt tokenized whole (byte-level BPE boundary)', () => {
  it('sharedPrefixLength: longest common prefix, every sequence keeps at least one id', () => {
    expect(sharedPrefixLength([[1, 2, 3, 4], [1, 2, 5]])).toBe(2);
    expect(sharedPrefixLength([[1, 2, 3], [1, 2, 3]])).toBe(2);
    expect(sharedPrefixLength([[1, 2, 3]])).toBe(2);
    expect(sharedPrefixLength([[1], [1, 2]])).toBe(0);
    expect(sharedPrefixLength([])).toBe(0);
  });

  it('classification: prefix + each query = encode(demonstrations + query), on both paths', async () => {
    const tokenizer = fixtureTokenizer();
    const fake = fakeLoader({ tokenizer });
    const engine = engineWith(fake);
    const { dataset, sample } = await (engine as unknown as IclEngine).sample(base);
    const task = dataset.task;
    const demoText = renderDemos(task, sample.demos);
    const expected = sample.examples.map((e) => tokenizer.encode(demoText + renderQuery(task, e.row)));
    // The pitfall (test/fixtures/README.md): the demonstrations alone end in " \n" (288); inside the full
    // prompt that is " " (221) + "\n" (199), so tokenizing the segments apart gives other ids.
    const alone = tokenizer.encode(demoText);
    expect(alone.at(-1)).toBe(288);
    expect(expected[0].slice(0, alone.length)).not.toEqual(alone);

    const reuse = await engine.evaluate(base);
    const prefix = fake.calls.prefills[0];
    expect(prefix.length).toBeGreaterThanOrEqual(alone.length);
    expect(sorted(fake.calls.batches.flat().map((q) => prefix.concat(q)))).toEqual(sorted(expected));
    expect(reuse.cost.demoTokens).toBe(prefix.length);
    expect(reuse.cost.promptTokens).toBe(prefix.length + expected.reduce((a, e) => a + e.length - prefix.length, 0));

    fake.calls.batches.length = 0;
    const full = await engine.evaluate(base, { reusePrefix: false });
    expect(fake.calls.prefills[1]).toEqual([]);
    expect(sorted(fake.calls.batches.flat())).toEqual(sorted(expected));
    expect(full.examples).toEqual(reuse.examples);
    await engine.close();
  });

  it('the tokenized prompts are cached: a ratio sweep of one (model, dataset, split) tokenizes once', async () => {
    let encodes = 0;
    const fake = fakeLoader({ tokenizer: fixtureTokenizer(), onEncode: () => encodes++ });
    const engine = engineWith(fake);
    await engine.evaluate({ ...base, ratio: 0 });
    const once = encodes;
    expect(once).toBeGreaterThanOrEqual(20);
    for (const ratio of [0.1, 0.5, 0.9]) await engine.evaluate({ ...base, ratio, module: 'attn', layer: -1 });
    expect(encodes).toBe(once);
    await engine.evaluate({ ...base, split: 'validation', sizes: { validationPerClass: 2 } });
    expect(encodes).toBeGreaterThan(once);
    await engine.close();
  });

  it('multiple choice: prefix + context = encode(demonstrations + context); continuation ids as lm-evaluation-harness', async () => {
    const tokenizer = fixtureTokenizer();
    const fake = fakeLoader({ tokenizer });
    const engine = engineWith(fake);
    const req = { ...base, dataset: { name: 'copa', path: join(FIX, 'copa'), task: 'copa' as const }, shots: 2 };
    const { dataset, sample } = await (engine as unknown as IclEngine).sample(req);
    const demoText = renderDemos(dataset.task, sample.demos);
    const expected = sample.examples.flatMap((e) => {
      const { context, continuations } = renderChoices(dataset.task, e.row);
      const ctx = tokenizer.encode(demoText + context);
      return continuations.map((c) => ctx.concat(tokenizer.encode(demoText + context + c).slice(ctx.length)));
    });
    const reuse = await engine.evaluate(req);
    const prefix = fake.calls.prefills[0];
    expect(prefix.length).toBeGreaterThanOrEqual(tokenizer.encode(demoText).length);
    expect(sorted(fake.calls.batches.flat().map((q) => prefix.concat(q)))).toEqual(sorted(expected));
    fake.calls.batches.length = 0;
    const full = await engine.evaluate(req, { reusePrefix: false });
    expect(sorted(fake.calls.batches.flat())).toEqual(sorted(expected));
    expect(full.examples).toEqual(reuse.examples);
    await engine.close();
  });
});

describe('model load time', () => {
  it('is in the cost of the cell that caused the load (0 otherwise) and every load reaches onModelLoad, describeModel too', async () => {
    const fake = fakeLoader({ loadDelayMs: 40 });
    const loads: [number, string][] = [];
    const engine = createEngine({
      executionProvider: 'cpu',
      cacheDir: join(tmp, 'cache'),
      maxModels: 1,
      decompositionCacheBytes: 1 << 20,
      loadModel: fake.load,
      locateModel: fake.locate,
      onModelLoad: (seconds, dir) => loads.push([seconds, dir]),
    });
    const a = { name: 'a', path: '/fake/a' };
    const b = { name: 'b', path: '/fake/b' };
    // the sweep's prepare step loads the model through describeModel: reported there, not by the cells
    await engine.describeModel(a);
    expect(loads).toHaveLength(1);
    expect(loads[0][1]).toBe('/fake/a');
    expect(loads[0][0]).toBeGreaterThanOrEqual(0.03);
    const first = await engine.evaluate({ ...base, model: a });
    expect(first.cost.modelLoadSeconds).toBe(0);
    expect(loads).toHaveLength(1);
    // a cell that loads a model (b evicts a) reports the load in its cost, and so does a reload of a
    const second = await engine.evaluate({ ...base, model: b });
    expect(second.cost.modelLoadSeconds).toBeGreaterThanOrEqual(0.03);
    expect(loads).toHaveLength(2);
    expect(loads[1]).toEqual([second.cost.modelLoadSeconds, '/fake/b']);
    expect((await engine.evaluate({ ...base, model: b })).cost.modelLoadSeconds).toBe(0);
    await new Promise((r) => setTimeout(r, 0));
    const third = await engine.evaluate({ ...base, model: a });
    expect(third.cost.modelLoadSeconds).toBeGreaterThanOrEqual(0.03);
    expect(loads.map((l) => l[1])).toEqual(['/fake/a', '/fake/b', '/fake/a']);
    await engine.close();
  });

  it('an onModelLoad that throws does not fail the load', async () => {
    const fake = fakeLoader();
    const engine = createEngine({
      executionProvider: 'cpu',
      cacheDir: join(tmp, 'cache'),
      maxModels: 1,
      decompositionCacheBytes: 1 << 20,
      loadModel: fake.load,
      locateModel: fake.locate,
      onModelLoad: () => {
        throw new Error('observer broke');
      },
    });
    await expect(engine.evaluate(base)).resolves.toBeDefined();
    await engine.close();
  });
});
