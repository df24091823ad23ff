/**
 * A sweep started with the official `temporal` CLI (`--input-file`) runs to the end on a real
 * worker (real engine, fixture GPT-2), stores one row per cell, and a rerun under a new workflow
 * id computes nothing.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellResults } from '../../db/queries.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import { temporalCli } from '../support/temporal.ts';
import { MODELS, SST2, count, rows, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;

const spec = {
  name: 'cli-sweep',
  models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
  datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
  modules: ['q_proj', 'fc_out'],
  layers: 'all',
  ratios: [0, 0.5, 0.9],
  shots: 2,
  sizes: { testPerClass: 4 },
  maxInFlight: 3,
};
// 2 modules x 3 layers x 2 nonzero ratios + the one unpruned cell.
const CELLS = 2 * 3 * 2 + 1;

beforeAll(async () => {
  suite = await setupSuite('cli', { worker: {} });
});

afterAll(async () => {
  await suite?.teardown();
});

describe('a sweep started through the temporal CLI', () => {
  it('completes with exactly one cell_results row per cell and accuracies in [0, 1]', async () => {
    const file = path.join(suite.tmp, 'sweep.json');
    await writeFile(file, JSON.stringify(spec, null, 2));
    const workflowId = `${suite.taskQueue}-first`;
    await temporalCli(['workflow', 'start', '--type', 'sweep', '--task-queue', suite.taskQueue, '--workflow-id', workflowId, '--input-file', file]);

    const result = (await suite.client.workflow.getHandle(workflowId).result()) as SweepResult;
    expect(result).toMatchObject({ sweep: 'cli-sweep', total: CELLS, done: CELLS, reused: 0, failed: 0 });

    // The progress query works from the official CLI too.
    const { stdout } = await temporalCli(['workflow', 'query', '--workflow-id', workflowId, '--type', 'progress', '--output', 'json']);
    expect(stdout).toContain('"phase": "done"');

    const results = await cellResults(suite.db.db, 'cli-sweep');
    expect(results).toHaveLength(CELLS);
    expect(new Set(results.map((r) => r.cellKey)).size).toBe(CELLS);
    for (const r of results) {
      expect(r.status).toBe('done');
      expect(r.split).toBe('test');
      expect(r.accuracy).toBeGreaterThanOrEqual(0);
      expect(r.accuracy).toBeLessThanOrEqual(1);
      expect(r.n).toBe(8);
    }
    expect(results.filter((r) => r.ratio === 0)).toHaveLength(1);
    expect(await count(suite.db.db, 'select count(*) as n from cells')).toBe(CELLS);
    expect(await count(suite.db.db, 'select count(*) as n from examples')).toBe(CELLS * 8);
  });

  it('computes nothing and writes no new cell rows when rerun under a new workflow id', async () => {
    const before = await rows(suite.db.db, 'select key, attempts, updated_at, worker from cells order by key');
    const examplesBefore = await count(suite.db.db, 'select count(*) as n from examples');

    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-rerun`, args: [spec] });
    const result = (await handle.result()) as SweepResult;
    expect(result).toMatchObject({ total: CELLS, done: 0, reused: CELLS, failed: 0 });

    expect(await rows(suite.db.db, 'select key, attempts, updated_at, worker from cells order by key')).toEqual(before);
    expect(await count(suite.db.db, 'select count(*) as n from examples')).toBe(examplesBefore);
    const results = await cellResults(suite.db.db, 'cli-sweep');
    expect(results).toHaveLength(CELLS);
    expect(results.every((r) => r.reused)).toBe(true);
    expect(await count(suite.db.db, `select count(*) as n from sweeps where workflow_id = '${suite.taskQueue}-rerun'`)).toBe(1);
  });
});
