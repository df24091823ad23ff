/**
 * What a researcher gets out of a real sweep (real Temporal, Postgres, ONNX Runtime): a model given
 * by Hub id from a Hugging Face cache, a task from a task folder named in the spec, the exact prompt
 * of an example (`prompt`), exports in lm-evaluation-harness's format (checked against real samples
 * from its repository, test/fixtures/lm-eval/) and as CSV / Parquet for pandas, macro-F1 beside
 * accuracy, the seed actually used, and a sweep under the paper's protocol.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellByKey, cellExamples, cellResults, type CellResultRow } from '../../db/queries.ts';
import { createIclEngine, tokenizeCell } from '../../engine/evaluate.ts';
import { loadTokenizer } from '../../engine/model/tokenizer.ts';
import { macroF1 } from '../../engine/tasks/scoring.ts';
import { checkSpec, datasetRequest } from '../../sweepspec/schema.ts';
import { runPrompt } from '../../cli/prompt.ts';
import { runExport } from '../../cli/export.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import { startWorker, type RunningWorker } from '../support/temporal.ts';
import { onnxCommunityFiles, writeHubModel } from '../support/hub-cache.ts';
import { setupSuite, type Suite } from '../orchestration/helpers.ts';
import { checkResultsShape, checkSampleShape, LM_EVAL_FIXTURES } from './lm-eval-shape.ts';

const FIXTURES = path.join(import.meta.dirname, '../fixtures');
const HUB_ID = 'tiny-org/tiny-llama';

let suite: Suite;
let worker: RunningWorker;
const previousHfHome = process.env.HF_HOME;

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t), db: suite.db.db } };
}

async function runSweep(spec: Record<string, unknown>): Promise<{ result: SweepResult; rows: CellResultRow[] }> {
  const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-${spec.name}`, args: [spec] });
  const result = (await handle.result()) as SweepResult;
  return { result, rows: await cellResults(suite.db.db, spec.name as string) };
}

const spec = () => ({
  name: 'research',
  models: [{ name: 'tiny', path: HUB_ID }],
  datasets: [
    { name: 'sst2', task: 'sst2', path: path.join(FIXTURES, 'datasets/sst2') },
    { name: 'reviews', task: 'verdicts', path: path.join(FIXTURES, 'datasets/custom') },
  ],
  taskDirs: [path.join(FIXTURES, 'tasks')],
  modules: ['mlp'],
  layers: [0],
  ratios: [0, 0.5],
  shots: 2,
  sizes: { testPerClass: 3 },
  maxInFlight: 2,
});

beforeAll(async () => {
  suite = await setupSuite('research');
  process.env.HF_HOME = path.join(suite.tmp, 'hf');
  writeHubModel(path.join(suite.tmp, 'hf/hub'), HUB_ID, [{ commit: 'c'.repeat(40), files: onnxCommunityFiles(FIXTURES) }], { main: 'c'.repeat(40) });
  worker = await startWorker(suite.taskQueue, { db: suite.db.db, config: { cacheDir: path.join(suite.tmp, 'cache'), concurrency: 2 } });
});

afterAll(async () => {
  await worker?.stop();
  await suite?.teardown();
  if (previousHfHome === undefined) delete process.env.HF_HOME;
  else process.env.HF_HOME = previousHfHome;
});

describe('a sweep on a Hub-cache model with a task from a task folder', () => {
  let rows: CellResultRow[];

  it('runs every cell, with macro-F1 and the shots and seed actually used', async () => {
    const run = await runSweep(spec());
    rows = run.rows;
    expect(run.result).toMatchObject({ total: 4, done: 4, failed: 0 });
    expect(rows.every((r) => r.status === 'done')).toBe(true);
    for (const r of rows) {
      const examples = await cellExamples(suite.db.db, r.cellKey);
      expect(r.f1Macro).toBeCloseTo(macroF1(examples, 2), 12);
      // The spec gives shots but no seed: the task's own seed is stored (sst2 49, the task file's 9).
      expect({ shots: r.shots, seed: r.seed }).toEqual({ shots: 2, seed: r.dataset === 'sst2' ? 49 : 9 });
    }
  });

  it('`prompt` prints the exact token ids the engine ran and the scores stored for them', async () => {
    const cell = rows.find((r) => r.dataset === 'reviews' && r.ratio === 0.5)!;
    const stored = await cellExamples(suite.db.db, cell.cellKey);
    const example = stored[1];
    const { out, io: cliIo } = io();
    expect(await runPrompt(['research', '--cell', 'mlp/0/0.5', '--dataset', 'reviews', '--example', String(example.index), '--json'], cliIo)).toBe(0);
    const shown = JSON.parse(out.join(''));

    // What the engine tokenized for this example: prefix + its query.
    const s = checkSpec(spec());
    if (!s.ok) throw new Error(s.problems.join('\n'));
    const engine = createIclEngine({ executionProvider: 'cpu', cacheDir: path.join(suite.tmp, 'cache'), maxModels: 1, decompositionCacheBytes: 1 << 20 });
    const { dataset, sample } = await engine.sample({ dataset: datasetRequest(s.spec, s.spec.datasets[1]), split: 'test', shots: 2, sizes: { testPerClass: 3 } });
    const tokenizer = loadTokenizer(path.join(suite.tmp, 'hf/hub/models--tiny-org--tiny-llama/snapshots', 'c'.repeat(40)));
    const prompts = await tokenizeCell(dataset.task, sample, tokenizer, 'tiny');
    const i = sample.examples.findIndex((e) => e.index === example.index);
    if (prompts.kind !== 'classification') throw new Error('classification expected');
    expect(shown.prompt.ids).toEqual([...prompts.prefixIds, ...prompts.queries[i]]);
    expect(shown.prompt.candidates.map((c: { ids: number[] }) => c.ids[0])).toEqual(prompts.verbalizerIds);
    expect(shown.outcome).toEqual(example);
    expect(shown.prompt.demonstrations.rows).toEqual(sample.demos.map((d) => d.index));
    expect(shown.prompt.text).toMatch(/^Review: .*\nVerdict: (Yes|No)\nReview: .*\nVerdict: (Yes|No)\nReview: .*\nVerdict:$/);
    await engine.close();

    // The text form shows the same prompt between its markers.
    const text = io();
    expect(await runPrompt(['research', '--cell', cell.cellKey.slice(0, 10), '--example', String(example.index)], text.io)).toBe(0);
    const printed = text.out.join('');
    expect(printed.split('--- end of prompt ---')[0]).toContain(`\n${shown.prompt.text}\n`);
    expect(printed).toContain(`token ids: [${shown.prompt.ids.join(', ')}]`);
    expect(printed).toMatch(/class\s+continuation\s+token ids\s+score/);
  });

  it('`prompt` says what is wrong with a cell or example it cannot show', async () => {
    await expect(runPrompt(['research', '--cell', 'mlp/0/0.5', '--example', '0'], io().io)).rejects.toThrow(/matches 2 cells; add --model, --dataset, --split or --seed/);
    await expect(runPrompt(['research', '--cell', 'mlp/3/0.5', '--example', '0'], io().io)).rejects.toThrow(/no cell "mlp\/3\/0.5" in this sweep/);
    await expect(runPrompt(['research', '--cell', 'mlp/0/0', '--dataset', 'sst2', '--example', '9999'], io().io)).rejects.toThrow(/has no example 9999; its 6 examples are rows/);
    const usage = io();
    expect(await runPrompt(['research', '--cell', 'mlp/0/0'], usage.io)).toBe(2);
    expect(usage.err.join('')).toMatch(/--example/);
  });

  it('exports lm-evaluation-harness results and samples with the shapes lm-eval writes and the stored numbers', async () => {
    const out = path.join(suite.tmp, 'export-lm-eval');
    const cli = io();
    expect(await runExport(['research', '--format', 'lm-eval', '--out', out], cli.io)).toBe(0);
    expect(cli.err).toEqual([]);
    const folders = readdirSync(out).sort();
    expect(folders).toEqual(['tiny__mlp__layer0__ratio0.5__test', 'tiny__unpruned__test']);
    // The checker accepts the real files it is meant to match.
    checkResultsShape(JSON.parse(readFileSync(path.join(LM_EVAL_FIXTURES, 'results.json'), 'utf8')));
    for (const line of readFileSync(path.join(LM_EVAL_FIXTURES, 'samples_bias_classification.jsonl'), 'utf8').trim().split('\n')) checkSampleShape(JSON.parse(line));

    for (const folder of folders) {
      const results = JSON.parse(readFileSync(path.join(out, folder, 'results.json'), 'utf8'));
      checkResultsShape(results);
      expect(Object.keys(results.results).sort()).toEqual(['reviews', 'sst2']);
      const pruned = folder.includes('ratio0.5');
      expect(results.config.model_args).toBe(pruned ? `pretrained=${HUB_ID},module=mlp,layer=0,ratio=0.5,svd=exact` : `pretrained=${HUB_ID},module=none,layer=0,ratio=0`);
      for (const name of ['sst2', 'reviews']) {
        const row = rows.find((r) => r.dataset === name && (r.ratio > 0) === pruned)!;
        const entry = results.results[name];
        expect(entry['acc,none']).toBe(row.accuracy);
        expect(entry['acc_stderr,none']).toBeCloseTo(Math.sqrt((row.accuracy! * (1 - row.accuracy!)) / (row.n! - 1)), 12);
        expect(entry['f1,none']).toBe(row.f1Macro);
        expect(results['n-samples'][name]).toEqual({ original: 6, effective: 6 });
        expect(results['n-shot'][name]).toBe(2);
        expect(results.configs[name].metadata.icl_sweep.cell_key).toBe(row.cellKey);

        const samples = readFileSync(path.join(out, folder, `samples_${name}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
        expect(samples).toHaveLength(6);
        const stored = await cellExamples(suite.db.db, row.cellKey);
        samples.forEach((sample, k) => {
          checkSampleShape(sample);
          expect(sample.doc_id).toBe(stored[k].index);
          expect(sample.acc).toBe(stored[k].prediction === stored[k].label ? 1 : 0);
          expect(sample.f1).toEqual([stored[k].label, stored[k].prediction]);
          expect(sample.filtered_resps.map((r: string[]) => Number(r[0]))).toEqual(stored[k].scores);
          expect(Object.keys(sample.arguments)).toHaveLength(2);
        });
        // lm-eval's f1 aggregation of the per-sample [gold, prediction] pairs is the stored macro-F1.
        expect(macroF1(samples.map((x) => ({ label: x.f1[0], prediction: x.f1[1] })), 2)).toBeCloseTo(entry['f1,none'], 12);
      }
    }
    // A sample's prompt is the one `prompt` shows.
    const cell = rows.find((r) => r.dataset === 'reviews' && r.ratio === 0.5)!;
    const ex = (await cellExamples(suite.db.db, cell.cellKey))[0];
    const shown = io();
    await runPrompt(['research', '--cell', cell.cellKey, '--example', String(ex.index), '--json'], shown.io);
    const sample = JSON.parse(readFileSync(path.join(out, 'tiny__mlp__layer0__ratio0.5__test', 'samples_reviews.jsonl'), 'utf8').split('\n')[0]);
    expect(sample.arguments.gen_args_0.arg_0).toBe(JSON.parse(shown.out.join('')).prompt.text);
    expect(sample.arguments.gen_args_1.arg_1).toBe(' Yes');
  });

  it('exports cell_results and examples as CSV and Parquet that read back to the stored values', async () => {
    for (const format of ['csv', 'parquet'] as const) {
      const out = path.join(suite.tmp, `export-${format}`);
      expect(await runExport(['research', '--format', format, '--out', out], io().io)).toBe(0);
      const read = async (name: string): Promise<Record<string, unknown>[]> =>
        format === 'csv'
          ? parseCsv(readFileSync(path.join(out, `${name}.csv`)), { columns: true })
          : ((await parquetReadObjects({ file: new Uint8Array(readFileSync(path.join(out, `${name}.parquet`))).buffer })) as Record<string, unknown>[]);
      const cells = await read('cell_results');
      const examples = await read('examples');
      expect(Object.keys(cells[0])).toEqual([
        'sweep', 'model', 'dataset', 'task', 'module', 'layer', 'ratio', 'split', 'accuracy', 'accuracy_norm', 'n', 'status', 'error', 'reused',
        'seconds', 'forward_tokens', 'worker', 'cell_key', 'f1_macro', 'shots', 'seed',
        'host', 'execution_provider', 'weight_dtype', 'onnxruntime_version', 'engine_version', 'attempt',
      ]);
      expect(cells).toHaveLength(4);
      expect(examples).toHaveLength(4 * 6);
      for (const r of rows) {
        const c = cells.find((x) => x.cell_key === r.cellKey)!;
        expect(Number(c.accuracy)).toBe(r.accuracy);
        expect(Number(c.f1_macro)).toBe(r.f1Macro);
        expect(Number(c.seed)).toBe(r.seed);
        const stored = await cellExamples(suite.db.db, r.cellKey);
        const mine = examples.filter((e) => e.cell_key === r.cellKey);
        expect(mine.map((e) => Number(e.idx))).toEqual(stored.map((e) => e.index));
        const scores = mine.map((e) => (format === 'csv' ? JSON.parse(e.scores as string) : e.scores));
        expect(scores).toEqual(stored.map((e) => e.scores));
        expect(mine.map((e) => String(e.correct))).toEqual(stored.map((e) => String(e.label === e.prediction)));
      }
    }
  });
});

describe('task names', () => {
  it('an unknown task fails the sweep at once, naming the field and listing the known tasks', async () => {
    const bad = { ...spec(), name: 'unknown-task', datasets: [{ name: 'reviews', task: 'verdict', path: path.join(FIXTURES, 'datasets/custom') }] };
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-unknown-task`, args: [bad] });
    const failure = await handle.result().then(
      () => null,
      (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
    );
    expect(failure).toMatch(/datasets\[0\]\.task: dataset "reviews": unknown task "verdict" \(did you mean "verdicts"\?\); known tasks: agnews \(alias ag_news\), cb, copa, emoc, mrpc, rte \(alias sglue_rte\), sst2, verdicts/);
  });
});

describe("the paper's protocol", () => {
  it('gives its own cells: paper scoring and split sources, the mode in the key and the stored parameters', async () => {
    const base = {
      models: [{ name: 'tiny', path: HUB_ID }],
      datasets: [
        { name: 'sst2', task: 'sst2', path: path.join(FIXTURES, 'datasets/sst2') },
        { name: 'copa', task: 'copa', path: path.join(FIXTURES, 'datasets/copa') },
      ],
      modules: ['mlp'],
      layers: [1],
      ratios: [0, 0.5],
      shots: 2,
      sizes: { validationPerClass: 10, testPerClass: 3 },
      maxInFlight: 2,
    };
    const paper = await runSweep({ ...base, name: 'paper', protocol: 'paper' });
    const corrected = await runSweep({ ...base, name: 'corrected' });
    expect(paper.rows.filter((r) => r.error).map((r) => r.error)).toEqual([]);
    expect(paper.result).toMatchObject({ done: 4, failed: 0, reused: 0 });
    expect(corrected.result).toMatchObject({ done: 4, failed: 0, reused: 0 });
    const keys = new Set(corrected.rows.map((r) => r.cellKey));
    expect(paper.rows.some((r) => keys.has(r.cellKey))).toBe(false);
    for (const r of paper.rows) {
      const cell = await cellByKey(suite.db.db, r.cellKey);
      expect(cell?.params).toMatchObject({ protocol: 'paper', scoring: { multipleChoice: 'mean-logits', svd: r.ratio === 0 ? 'none' : 'randomized' } });
    }
    const draw = async (rs: CellResultRow[], dataset: string) => {
      const exportIo = io();
      const row = rs.find((r) => r.dataset === dataset && r.ratio === 0)!;
      await runPrompt([rs === paper.rows ? 'paper' : 'corrected', '--cell', row.cellKey, '--example', String((await cellExamples(suite.db.db, row.cellKey))[0].index), '--json'], exportIo.io);
      return JSON.parse(exportIo.out.join('')).prompt.example.split;
    };
    // SST-2's test examples: the rest of train under the paper, its labelled validation split by default.
    expect(await draw(paper.rows, 'sst2')).toBe('train');
    expect(await draw(corrected.rows, 'sst2')).toBe('validation');
    // COPA under mean-logits scores differently from the log-likelihood (the stored scores are mean logits).
    const paperCopa = await cellExamples(suite.db.db, paper.rows.find((r) => r.dataset === 'copa' && r.ratio === 0)!.cellKey);
    const defaultCopa = await cellExamples(suite.db.db, corrected.rows.find((r) => r.dataset === 'copa' && r.ratio === 0)!.cellKey);
    expect(paperCopa.map((e) => e.index)).toEqual(defaultCopa.map((e) => e.index));
    expect(paperCopa.map((e) => e.scores)).not.toEqual(defaultCopa.map((e) => e.scores));
  });
});
