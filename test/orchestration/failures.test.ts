/**
 * Bad input: an invalid spec fails the workflow at once with every problem by field (and the CLI
 * rejects it before starting anything); a missing model folder fails at preparation, naming the
 * field; so does a corrupt model file (test/orchestration/inputs.test.ts has every whole-model and
 * whole-dataset problem). Cancelling a sweep keeps what is stored.
 */
import { execFile } from 'node:child_process';
import { cp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellResults } from '../../db/queries.ts';
import type { SweepProgress } from '../../workflows/sweep.ts';
import { REPO_ROOT, waitFor } from '../support/temporal.ts';
import { MODELS, SST2, count, makeSentimentDataset, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;
const execFileP = promisify(execFile);

beforeAll(async () => {
  suite = await setupSuite('fail', { worker: { concurrency: 2 } });
});

afterAll(async () => {
  await suite?.teardown();
});

const good = () => ({
  name: 'fail-sweep',
  models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
  datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
  modules: ['fc_in'],
  layers: [0, 2],
  ratios: [0, 0.5],
  shots: 2,
  sizes: { testPerClass: 2 },
});

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

describe('an invalid spec', () => {
  const bad = { ...good(), name: '', models: [{ name: 'x' }], ratios: [0.5, 1.5], layers: 'some', maxInFlight: 0 };

  it('fails the workflow at once, non-retryably, listing every problem by field', async () => {
    const f = await failure(`${suite.taskQueue}-invalid`, bad);
    expect(f.type).toBe('InvalidSpec');
    expect(f.message).toMatch(/^invalid sweep spec \(6 problems\):/);
    for (const field of ['name:', 'models[0].path:', 'ratios[1]:', 'layers:', 'maxInFlight:']) expect(f.message).toContain(`  - ${field}`);
    expect(f.ms).toBeLessThan(30_000); // no retries (a retried workflow task would take longer); nothing was prepared:
    expect(await count(suite.db.db, 'select count(*) as n from sweeps')).toBe(0);
  });

  it('is rejected by the CLI before anything starts (exit 2, every problem by field)', async () => {
    const file = path.join(suite.tmp, 'bad.yaml');
    await writeFile(file, `name: ""\nmodels:\n  - name: x\nratios: [0.5, 1.5]\n`);
    const run = execFileP(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'validate', file], { cwd: REPO_ROOT });
    const err = (await run.then(
      () => undefined,
      (e: unknown) => e,
    )) as { code: number; stderr: string };
    expect(err?.code).toBe(2);
    for (const field of ['name:', 'models[0].path:', 'datasets:', 'modules:', 'layers:', 'ratios[1]:']) expect(err.stderr).toContain(`  - ${field}`);
  });

  it('names the field of a model folder that does not exist, and of a layer out of range', async () => {
    const f = await failure(`${suite.taskQueue}-missing`, {
      ...good(),
      models: [good().models[0], { name: 'ghost', path: path.join(suite.tmp, 'no-such-model') }],
      layers: [0, 7],
    });
    expect(f.type).toBe('InvalidSpec');
    expect(f.message).toContain('models[1].path: ');
    expect(f.message).toContain('no-such-model');
    expect(f.message).not.toContain('Activity task failed');
  });
});

describe('a corrupt model file', () => {
  it('fails the sweep once, at preparation, naming the model and the reason; no cell runs', async () => {
    const broken = path.join(suite.tmp, 'broken-gpt2');
    await cp(path.join(MODELS, 'gpt2'), broken, { recursive: true });
    await writeFile(path.join(broken, 'model.onnx'), Buffer.from('this is not an onnx model'));
    const spec = { ...good(), name: 'corrupt-sweep', models: [good().models[0], { name: 'broken', path: broken }] };
    const f = await failure(`${suite.taskQueue}-corrupt`, spec);
    expect(f.type).toBe('InvalidSpec');
    expect(f.message).toMatch(/^invalid sweep spec \(1 problem\):\n {2}- models\[1\]\.path: model "broken": corrupt ONNX model .*model\.onnx/);
    expect(await cellResults(suite.db.db, 'corrupt-sweep')).toHaveLength(0);
    expect(await count(suite.db.db, 'select count(*) as n from cells')).toBe(0);
  });
});

describe('cancelling a sweep', () => {
  it('stops it and keeps every cell already stored', async () => {
    const data = await makeSentimentDataset(path.join(suite.tmp, 'slow'), { train: 40, validation: 20, test: 2000 });
    const spec = {
      ...good(),
      name: 'cancel-sweep',
      models: [{ name: 'gpt2-nopast', path: path.join(MODELS, 'gpt2-nopast') }],
      datasets: [{ name: 'slow', task: 'sst2', path: data }],
      layers: 'all',
      ratios: [0, 0.3, 0.6, 0.9],
      sizes: { testPerClass: 400 },
      maxInFlight: 2,
    };
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-cancel`, args: [spec] });
    await waitFor(async () => ((await handle.query('progress')) as SweepProgress).done >= 2, 60_000, 100);
    await handle.cancel();
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    const results = await cellResults(suite.db.db, 'cancel-sweep');
    const done = results.filter((x) => x.status === 'done');
    expect(done.length).toBeGreaterThanOrEqual(2);
    expect(done.length).toBeLessThan(10);
    expect(done.every((x) => typeof x.accuracy === 'number')).toBe(true);
    // Nothing is left marked as running: in-flight cells saw the cancellation.
    expect(results.filter((x) => x.status === 'running')).toHaveLength(0);
  });
});
