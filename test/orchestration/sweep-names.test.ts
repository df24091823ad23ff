/**
 * One grid per sweep name, and sweeps findable by name, model and dataset:
 * - a different spec under an existing name is refused with a message naming the field and the way
 *   out, and leaves the stored sweep as it was;
 * - with "replace": true it takes the name over: the views show the new grid only, the old cells stay
 *   stored and are reused where the grids overlap;
 * - `temporal workflow list` finds the sweeps through their search attributes.
 */
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellResults, sweepByName } from '../../db/queries.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import { temporalCli, waitFor } from '../support/temporal.ts';
import { MODELS, SST2, count, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;

beforeAll(async () => {
  suite = await setupSuite('names', { worker: { concurrency: 2 } });
});

afterAll(async () => {
  await suite?.teardown();
});

const name = `names-${Date.now().toString(36)}`;
const spec = (ratios: number[], extra: Record<string, unknown> = {}) => ({
  name,
  models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
  datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
  modules: ['fc_in'],
  layers: [0, 2],
  ratios,
  shots: 1,
  sizes: { testPerClass: 2 },
  ...extra,
});

async function run(id: string, input: unknown): Promise<SweepResult> {
  const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-${id}`, args: [input] });
  return (await handle.result()) as SweepResult;
}

describe('one grid per sweep name', () => {
  it('refuses another grid under the name, and takes the name over with "replace"', async () => {
    expect(await run('first', spec([0, 0.5]))).toMatchObject({ total: 3, done: 3 });
    const firstKeys = (await cellResults(suite.db.db, name)).map((r) => r.cellKey).sort();

    const err = await run('other', spec([0, 0.9])).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as { message: string; type?: string };
    expect(cause.type).toBe('InvalidSpec');
    expect(cause.message).toContain(`name: sweep "${name}" already holds another grid (last started as workflow ${suite.taskQueue}-first`);
    expect(cause.message).toContain('set "replace": true');
    // Nothing changed: the stored spec and the sweep's rows are the first grid's.
    expect(((await sweepByName(suite.db.db, name))?.spec as { ratios: number[] }).ratios).toEqual([0, 0.5]);
    expect((await cellResults(suite.db.db, name)).map((r) => r.cellKey).sort()).toEqual(firstKeys);

    // A rerun of the same grid (another workflow id, other run settings) is not another grid.
    expect(await run('rerun', spec([0, 0.5], { maxInFlight: 1 }))).toMatchObject({ total: 3, reused: 3, done: 0 });

    const replaced = await run('replace', spec([0, 0.9], { replace: true }));
    // The unpruned cell is the same cell in both grids: reused; the two ratio-0.9 cells are new.
    expect(replaced).toMatchObject({ total: 3, done: 2, reused: 1, failed: 0 });
    const rows = await cellResults(suite.db.db, name);
    expect(rows.map((r) => r.ratio).sort()).toEqual([0, 0.9, 0.9]);
    expect(rows.every((r) => r.status === 'done')).toBe(true);
    expect(((await sweepByName(suite.db.db, name))?.spec as { ratios: number[] }).ratios).toEqual([0, 0.9]);
    // The first grid's cells stay stored for reuse.
    expect(await count(suite.db.db, `select count(*) as n from cells where key in (${firstKeys.map((k) => `'${k}'`).join(',')})`)).toBe(3);
  }, 180_000);
});

describe('search attributes', () => {
  it('temporal workflow list finds the sweeps by name, model and dataset', async () => {
    const ids = async (query: string) => {
      const { stdout } = await temporalCli(['workflow', 'list', '--query', query, '--output', 'json']);
      return (JSON.parse(stdout || '[]') as { execution: { workflowId: string } }[]).map((w) => w.execution.workflowId).sort();
    };
    const expected = ['first', 'other', 'replace', 'rerun'].map((id) => `${suite.taskQueue}-${id}`).sort();
    // Visibility is eventually consistent.
    await waitFor(async () => (await ids(`IclSweepName = '${name}'`)).length === expected.length, 30_000, 500, 'the list by name');
    expect(await ids(`IclSweepName = '${name}'`)).toEqual(expected);
    expect(await ids(`IclSweepModels = 'gpt2-tiny' AND IclSweepName = '${name}'`)).toEqual(expected);
    expect(await ids(`IclSweepDatasets = 'sst2-tiny' AND WorkflowType = 'sweep' AND IclSweepName = '${name}'`)).toEqual(expected);
    expect(await ids(`IclSweepModels = 'no-such-model' AND IclSweepName = '${name}'`)).toEqual([]);
  }, 60_000);
});
