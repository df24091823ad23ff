/**
 * Grids of any allowed size start at once: a 10^6-cell grid on the tiny fixture starts its first
 * cells within seconds, answers the progress query, hands a small state to its next run, and is
 * cancelled cleanly. One cell more than the limit is refused, by the workflow and by `validate`,
 * naming the grid's size and the limit.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweepProgress, SweepState } from '../../workflows/sweep.ts';
import { REPO_ROOT, waitFor } from '../support/temporal.ts';
import { MODELS, SST2, continuedAsNewArgs, count, rows, runHistories, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;
const execFileP = promisify(execFile);

beforeAll(async () => {
  suite = await setupSuite('large', { worker: { concurrency: 2 } });
});

afterAll(async () => {
  await suite?.teardown();
});

/** 8 modules x 4 layers x 31,250 ratios (none of them 0) = exactly 10^6 cells; `extra` ratios add cells. */
function millionCellSpec(name: string, extra: number[] = []) {
  const ratios = Array.from({ length: 31_250 }, (_, i) => Number(((i + 1) / 31_251).toFixed(6)));
  expect(new Set(ratios).size).toBe(31_250);
  return {
    name,
    models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
    datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
    modules: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_out', 'mlp', 'attn'],
    layers: [-1, 0, 1, 2],
    ratios: [...extra, ...ratios],
    shots: 1,
    sizes: { testPerClass: 1 },
    maxInFlight: 2,
    continueAsNewAfter: 6,
  };
}

describe('a grid of 10^6 cells', () => {
  it('starts its first cells within seconds, answers the progress query, carries a small state, is cancelled cleanly', async () => {
    const spec = millionCellSpec('million');
    const started = Date.now();
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-million`, args: [spec] });
    try {
      const firstCell = await waitFor(
        async () => (await rows<{ at: Date | null }>(suite.db.db, 'select min(started_at) as at from cells'))[0].at,
        60_000,
        100,
        'the first cell',
      );
      const secondsToFirstCell = (new Date(firstCell).getTime() - started) / 1000;
      const t0 = Date.now();
      const progress = (await handle.query('progress')) as SweepProgress;
      const queryMs = Date.now() - t0;
      console.log(`10^6-cell grid: first cell started ${secondsToFirstCell.toFixed(1)} s after the workflow; progress query answered in ${queryMs} ms`);
      expect(secondsToFirstCell).toBeLessThan(30);
      expect(progress).toMatchObject({ sweep: 'million', total: 1_000_000, phase: 'grid' });

      // What continue-as-new carries: the window, never the grid.
      const p = await waitFor(async () => {
        const q = (await handle.query('progress')) as SweepProgress;
        return q.run >= 2 && q;
      }, 120_000, 250, 'a second run');
      expect(p.inFlight).toBeLessThanOrEqual(2);
      const [first] = await runHistories(suite.client, handle.workflowId, handle.firstExecutionRunId);
      const state = continuedAsNewArgs(first.history)![1] as SweepState;
      expect(JSON.stringify(state).length).toBeLessThan(20_000);
      expect(state.queue.length + Object.keys(state.inFlight).length).toBeLessThanOrEqual(200 + 2);
      expect(first.history.events!.length).toBeLessThan(150);
    } finally {
      await handle.cancel();
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
    }
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    // Cleanly: no cell left running, no cell workflow left behind, a few cells stored out of 10^6.
    expect(await count(suite.db.db, `select count(*) as n from cells where status = 'running'`)).toBe(0);
    const running = [];
    for await (const wf of suite.client.workflow.list({ query: `WorkflowId STARTS_WITH '${handle.workflowId}/' AND ExecutionStatus = 'Running'` })) running.push(wf.workflowId);
    expect(running).toEqual([]);
    const done = await count(suite.db.db, `select count(*) as n from cell_results where sweep = 'million' and status = 'done'`);
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(1000);
  }, 300_000);

  it('one cell over the limit is refused by the workflow and by validate, naming the grid size and the limit', async () => {
    const spec = millionCellSpec('million-and-one', [0]);
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-over`, args: [spec] });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as { message: string; type?: string };
    expect(cause.type).toBe('InvalidSpec');
    expect(cause.message).toContain('the grid has 1,000,001 cells, more than the limit of 1,000,000 (ICL_SWEEP_MAX_CELLS)');
    expect(await count(suite.db.db, `select count(*) as n from sweeps where name = 'million-and-one'`)).toBe(0);

    const file = path.join(suite.tmp, 'million-and-one.json');
    await writeFile(file, JSON.stringify(spec));
    const cli = (await execFileP(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'validate', file], { cwd: REPO_ROOT }).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code: number; stderr: string };
    expect(cli?.code).toBe(2);
    expect(cli.stderr).toContain('(grid): the grid has up to 1,000,001 cells, more than the limit of 1,000,000');
  }, 120_000);
});
