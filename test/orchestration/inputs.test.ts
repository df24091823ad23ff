/**
 * Whole-model and whole-dataset problems fail the sweep once, at preparation, every problem listed
 * and named by field, model and dataset: a corrupt model, a missing tokenizer.json, an empty dataset,
 * fewer training examples than shots, a multi-token verbalizer, prompts longer than the model's
 * context, a 50 MB line. No cell runs, so none fails one by one. Paths outside the worker's allowed
 * roots are refused with no word on whether they exist.
 */
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../support/temporal.ts';
import { MODELS, count, makeSentimentDataset, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;
let worker: RunningWorker;

beforeAll(async () => {
  suite = await setupSuite('inputs');
  worker = await startWorker(suite.taskQueue, {
    db: suite.db.db,
    config: { cacheDir: path.join(suite.tmp, 'cache'), dataRoots: [path.join(suite.tmp, 'allowed')] },
  });
  await mkdir(path.join(suite.tmp, 'allowed'), { recursive: true });
});

afterAll(async () => {
  await worker?.stop();
  await suite?.teardown();
});

const allowed = (...parts: string[]) => path.join(suite.tmp, 'allowed', ...parts);

async function failure(workflowId: string, input: unknown): Promise<{ message: string; type?: string; ms: number }> {
  const t0 = Date.now();
  const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId, args: [input] });
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as { message: string; type?: string };
  return { message: cause.message, type: cause.type, ms: Date.now() - t0 };
}

const grid = { modules: ['fc_in'], layers: [0, 1], ratios: [0, 0.5, 0.9], shots: 4, sizes: { testPerClass: 2 } };

describe('whole-model and whole-dataset problems', () => {
  it('fail the sweep once, at preparation, with every problem named; no cell is stored', async () => {
    await cp(path.join(MODELS, 'gpt2'), allowed('gpt2'), { recursive: true });
    await cp(path.join(MODELS, 'gpt2'), allowed('corrupt'), { recursive: true });
    await writeFile(allowed('corrupt', 'model.onnx'), 'not an onnx model');
    await cp(path.join(MODELS, 'gpt2'), allowed('no-tokenizer'), { recursive: true });
    await rm(allowed('no-tokenizer', 'tokenizer.json'));
    await makeSentimentDataset(allowed('good'), { train: 40, validation: 10, test: 10 });
    await mkdir(allowed('empty'), { recursive: true });
    await writeFile(allowed('empty', 'train.jsonl'), '');
    await makeSentimentDataset(allowed('few'), { train: 3, validation: 4, test: 4 });
    await makeSentimentDataset(allowed('long'), { train: 40, validation: 10, test: 10 });
    await writeFile(
      allowed('long', 'train.jsonl'),
      Array.from({ length: 40 }, (_, i) => JSON.stringify({ sentence: 'a very long review that goes on and on '.repeat(8), label: i % 2 })).join('\n'),
    );
    const spec = {
      name: 'inputs-sweep',
      models: [
        { name: 'good', path: allowed('gpt2') },
        { name: 'corrupt', path: allowed('corrupt') },
        { name: 'no-tokenizer', path: allowed('no-tokenizer') },
      ],
      datasets: [
        { name: 'good', task: 'sst2', path: allowed('good') },
        { name: 'empty', task: 'sst2', path: allowed('empty') },
        { name: 'few', task: 'sst2', path: allowed('few') },
        { name: 'multi-token', path: allowed('good'), task: { template: 'Review: {sentence}\nVerdict: {answer}\n', answers: { 0: 'unconvincingly', 1: 'pos' } } },
        { name: 'long', task: 'sst2', path: allowed('long') },
      ],
      ...grid,
    };
    const f = await failure(`${suite.taskQueue}-all`, spec);
    expect(f.type).toBe('InvalidSpec');
    const lines = f.message.split('\n');
    expect(lines[0]).toBe('invalid sweep spec (6 problems):');
    expect(lines[1]).toMatch(/^ {2}- models\[1\]\.path: model "corrupt": corrupt ONNX model .*corrupt\/model\.onnx/);
    expect(lines[2]).toMatch(/^ {2}- models\[2\]\.path: model "no-tokenizer": file not found: .*no-tokenizer\/tokenizer\.json$/);
    expect(lines[3]).toMatch(/^ {2}- datasets\[1\]\.path: dataset "empty": .*empty\/train\.jsonl: the train split has no rows$/);
    expect(lines[4]).toMatch(/^ {2}- model "good" on dataset "few" \(test split\): .*few\/train\.jsonl: field "label": too few examples of class "\w+" for 4 demonstrations/);
    expect(lines[5]).toMatch(/^ {2}- model "good" on dataset "multi-token" \(test split\): verbalizer " unconvincingly" of task custom is \d+ tokens for model good/);
    expect(lines[6]).toMatch(/^ {2}- model "good" on dataset "long" \(test split\): the longest prompt of this cell is \d+ tokens .* model good has 128 positions/);
    expect(lines).toHaveLength(7);
    // 3 models x 5 datasets x 7 cells would each have failed on their own before; now none ran.
    expect(await count(suite.db.db, 'select count(*) as n from cells')).toBe(0);
    expect(await count(suite.db.db, `select count(*) as n from sweep_cells where sweep = 'inputs-sweep'`)).toBe(0);
    console.log(`whole-input problems: sweep failed ${f.ms} ms after start`);
  });

  it('a 50 MB line fails the sweep at preparation, naming file, row and limit', async () => {
    await makeSentimentDataset(allowed('huge'), { train: 20, validation: 4, test: 4 });
    const huge = JSON.stringify({ sentence: 'word '.repeat(10 * 2 ** 20), label: 0 });
    await writeFile(allowed('huge', 'test.jsonl'), `${JSON.stringify({ sentence: 'fine', label: 1 })}\n${huge}\n`);
    const f = await failure(`${suite.taskQueue}-huge`, {
      name: 'huge-sweep',
      models: [{ name: 'good', path: allowed('gpt2') }],
      datasets: [{ name: 'huge', task: 'sst2', path: allowed('huge') }],
      ...grid,
    });
    expect(f.message).toBe(
      `invalid sweep spec (1 problem):\n  - datasets[0].path: dataset "huge": ${allowed('huge', 'test.jsonl')}: row 1 (line 2) is larger than the limit of 1 MiB per example (ICL_SWEEP_MAX_EXAMPLE_KB)`,
    );
    expect(await count(suite.db.db, `select count(*) as n from sweep_cells where sweep = 'huge-sweep'`)).toBe(0);
    console.log(`50 MB line: sweep failed ${f.ms} ms after start`);
  });
});

describe('allowed roots', () => {
  it('refuse paths outside them (existing or not) and links out of them, without reading them', async () => {
    await mkdir(path.join(suite.tmp, 'elsewhere'), { recursive: true });
    await cp(path.join(MODELS, 'gpt2'), path.join(suite.tmp, 'elsewhere', 'gpt2'), { recursive: true });
    await cp(path.join(MODELS, 'gpt2'), allowed('passwd'), { recursive: true });
    await rm(allowed('passwd', 'config.json'));
    const { symlink } = await import('node:fs/promises');
    await symlink('/etc/passwd', allowed('passwd', 'config.json'));
    const f = await failure(`${suite.taskQueue}-roots`, {
      name: 'roots-sweep',
      models: [
        { name: 'elsewhere', path: path.join(suite.tmp, 'elsewhere', 'gpt2') },
        { name: 'missing', path: path.join(suite.tmp, 'elsewhere', 'no-such-model') },
        { name: 'passwd', path: allowed('passwd') },
      ],
      datasets: [{ name: 'fixture', task: 'sst2', path: path.join(MODELS, '../datasets/sst2') }],
      ...grid,
    });
    const roots = `(${allowed()}; ICL_SWEEP_DATA_ROOTS)`;
    expect(f.message.split('\n')).toEqual([
      'invalid sweep spec (4 problems):',
      `  - models[0].path: model "elsewhere": model folder ${path.join(suite.tmp, 'elsewhere', 'gpt2')} is outside the allowed roots ${roots}`,
      `  - models[1].path: model "missing": model folder ${path.join(suite.tmp, 'elsewhere', 'no-such-model')} is outside the allowed roots ${roots}`,
      `  - models[2].path: model "passwd": model folder ${allowed('passwd', 'config.json')} is outside the allowed roots ${roots}`,
      `  - datasets[0].path: dataset "fixture": dataset folder ${path.join(MODELS, '../datasets/sst2')} is outside the allowed roots ${roots}`,
    ]);
    expect(f.message).not.toContain('root:');
  });
});
