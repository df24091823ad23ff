/**
 * A cell this sweep computed is never reported as reused: when the completion of an evaluateCell
 * activity is lost after its result was stored (a Temporal server restart), Temporal retries the same
 * activity, which finds its own result and counts it as computed. A cell another sweep stored is
 * reused. Unit test of the activity (Temporal's mock activity environment, a fake engine that counts
 * its calls) against a real Postgres database.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCellActivities } from '../../activities/index.ts';
import { evaluationGate } from '../../activities/gate.ts';
import { metrics } from '../../activities/metrics.ts';
import { claimSweep, linkCells } from '../../db/queries.ts';
import type { Engine } from '../../engine/types.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { outcome as makeOutcome } from '../db/helpers.ts';
import { rows } from './helpers.ts';

let t: TestDatabase;
let evaluations = 0;

const outcome = makeOutcome(4, 3);
const engine: Engine = {
  evaluate: async () => {
    evaluations++;
    return outcome;
  },
  describeModel: () => Promise.reject(new Error('not used')),
  describeDataset: () => Promise.reject(new Error('not used')),
  checkCells: () => Promise.reject(new Error('not used')),
  close: async () => {},
};

beforeAll(async () => {
  t = await createTestDatabase({ prefix: 'icl_reused' });
});
afterAll(async () => {
  await t?.drop();
});

const cell = { key: 'k-reused-test', model: 'm', dataset: 'd', module: 'fc_in' as const, layer: 0, ratio: 0.5, split: 'test' as const };
const input = (sweep: string) => ({
  sweep,
  cell,
  request: {
    model: { name: 'm', path: '/m' },
    dataset: { name: 'd', task: 'sst2' as const, path: '/d' },
    module: 'fc_in' as const,
    layer: 0,
    ratio: 0.5,
    split: 'test' as const,
    sizes: {},
    scoring: { multipleChoice: 'loglik' as const, svd: 'exact' as const },
  },
  identity: { engineVersion: 'e', modelFingerprint: 'mf', datasetFingerprint: 'df', shots: 2, seed: 1, executionProvider: 'cpu' as const, params: {} },
});

function attempt(workflowId: string, attemptNumber: number) {
  return new MockActivityEnvironment({
    activityId: '7',
    attempt: attemptNumber,
    heartbeatTimeoutMs: 60_000,
    workflowExecution: { workflowId, runId: `${workflowId}-run-1` },
  });
}

describe('evaluateCell', () => {
  it('a retry of the activity that stored the cell counts it as computed; another sweep reuses it', async () => {
    const acts = createCellActivities({ db: t.db, metrics, workerName: 'w', host: 'h', outageToleranceMs: 5_000, engine, engineVersion: 'e', executionProvider: 'cpu', maxCells: 10, gate: evaluationGate(1) });
    for (const sweep of ['sweep-a', 'sweep-b']) {
      await claimSweep(t.db, { name: sweep, workflowId: sweep, spec: {} });
      await linkCells(t.db, sweep, [{ ...cell, task: 'sst2' }]);
    }
    const first = await attempt('sweep-a', 1).run(acts.evaluateCell, input('sweep-a'));
    expect(first).toMatchObject({ status: 'done', accuracy: 0.75, n: 4 });
    // Its completion never reached the server: Temporal runs the same activity again.
    const retry = await attempt('sweep-a', 2).run(acts.evaluateCell, input('sweep-a'));
    expect(retry).toMatchObject({ status: 'done', accuracy: 0.75, n: 4 });
    expect(evaluations).toBe(1); // not recomputed
    const other = await attempt('sweep-b', 1).run(acts.evaluateCell, input('sweep-b'));
    expect(other).toMatchObject({ status: 'reused' });
    expect(evaluations).toBe(1);
    expect(await rows(t.db, `select sweep, reused from sweep_cells order by sweep`)).toEqual([
      { sweep: 'sweep-a', reused: false },
      { sweep: 'sweep-b', reused: true },
    ]);
    expect(await rows(t.db, `select computed_by from cells`)).toEqual([{ computed_by: 'sweep-a/sweep-a-run-1/7' }]);
  });
});
