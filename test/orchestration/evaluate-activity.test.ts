/**
 * The cell activity's guarantees, in isolation (unit tests: a scripted engine, metrics that record
 * their calls, Temporal's mock activity environment; the real results database):
 * - two attempts of one cell racing to completion with different numbers: the first stands, the
 *   second is a conflict record and a conflict in the metrics;
 * - what it stores: Temporal's attempt, worker, host, provider, weight dtype, runtime version;
 * - database outages: waited out within the tolerance (no attempt spent), a clear retryable failure
 *   past it, and any other database error at once.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateActivities } from '../../activities/evaluate.ts';
import { evaluationGate } from '../../activities/gate.ts';
import { isOutage, retryOnOutage } from '../../activities/outage.ts';
import type { ActivityContext, CellActivityContext, EvaluateCellInput, EvaluateCellResult } from '../../activities/index.ts';
import { cellByKey, cellConflictRows } from '../../db/queries.ts';
import type { CellOutcome, CellRequest, Engine } from '../../engine/types.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { outcome } from '../db/helpers.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase({ prefix: 'icl_eval_act' });
});
afterAll(async () => {
  await t?.drop();
});

/** An engine whose evaluations resolve, in call order, with the given outcomes once all of them have been asked for. */
function racingEngine(outcomes: CellOutcome[]): Engine {
  const waiting: (() => void)[] = [];
  let calls = 0;
  return {
    async evaluate() {
      const mine = outcomes[calls++];
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length === outcomes.length) waiting.forEach((w) => w());
      });
      return mine;
    },
    describeModel: () => Promise.reject(new Error('unused')),
    describeDataset: () => Promise.reject(new Error('unused')),
    checkCells: () => Promise.reject(new Error('unused')),
    close: async () => {},
  };
}

function recordingMetrics() {
  const calls: string[] = [];
  const record = (name: string) => () => void calls.push(name);
  const metrics = new Proxy({}, { get: (_, name: string) => record(name) }) as ActivityContext['metrics'];
  return { metrics, calls };
}

function context(engine: Engine, metrics: ActivityContext['metrics'], worker: string): CellActivityContext {
  return { engine, engineVersion: 'e-test', db: t.db, metrics, workerName: worker, host: `${worker}-host`, executionProvider: 'cpu', maxCells: 10, outageToleranceMs: 5_000, heartbeatEverySeconds: 1, gate: evaluationGate(1) };
}

const input = (key: string): EvaluateCellInput => ({
  sweep: 'race-sweep',
  cell: { key, model: 'm', dataset: 'd', module: 'q_proj', layer: 1, ratio: 0.5, split: 'test' },
  request: {} as CellRequest,
  identity: { engineVersion: 'e-test', modelFingerprint: 'mf', datasetFingerprint: 'df', shots: 2, seed: 1, executionProvider: 'cpu', params: {} },
});

describe('evaluateCell', () => {
  it('two attempts racing with different numbers: the first result stands, the second is a conflict record and a metric', async () => {
    const engine = racingEngine([outcome(10, 6), outcome(10, 9)]);
    const a = recordingMetrics();
    const b = recordingMetrics();
    const first = new MockActivityEnvironment({ attempt: 1 }).run(evaluateActivities(context(engine, a.metrics, 'worker-a')).evaluateCell, input('raced'));
    const second = new MockActivityEnvironment({ attempt: 2 }).run(evaluateActivities(context(engine, b.metrics, 'worker-b')).evaluateCell, input('raced'));
    const [ra, rb] = (await Promise.all([first, second])) as EvaluateCellResult[];
    expect([ra.status, rb.status].sort()).toEqual(['done', 'reused']);
    const winner = ra.status === 'done' ? 'worker-a' : 'worker-b';
    const stored = await cellByKey(t.db, 'raced');
    expect(stored).toMatchObject({
      status: 'done', worker: winner, host: `${winner}-host`, attempts: winner === 'worker-a' ? 1 : 2,
      executionProvider: 'cpu', weightDtype: 'float32', onnxruntimeVersion: '1.30.0', engineVersion: 'e-test',
    });
    expect(stored!.accuracy).toBe(winner === 'worker-a' ? 0.6 : 0.9);
    const conflicts = await cellConflictRows(t.db, 'raced');
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ sweep: 'race-sweep', worker: winner === 'worker-a' ? 'worker-b' : 'worker-a', accuracy: winner === 'worker-a' ? 0.9 : 0.6, differingPredictions: 3 });
    const loser = winner === 'worker-a' ? b : a;
    expect(loser.calls).toContain('cellConflict');
    expect((winner === 'worker-a' ? a : b).calls).not.toContain('cellConflict');
  });

  it('refuses a cell keyed for another execution provider (a misrouted cell), retryably', async () => {
    const ctx = { ...context(racingEngine([outcome(2, 1)]), recordingMetrics().metrics, 'gpu-worker'), executionProvider: 'cuda' as const };
    const err = await new MockActivityEnvironment().run(evaluateActivities(ctx).evaluateCell, input('misrouted')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'WrongExecutionProvider', nonRetryable: false });
    expect(await cellByKey(t.db, 'misrouted')).toBeUndefined();
  });
});

describe('database outages', () => {
  it('recognises an unreachable server, and not a wrong query', async () => {
    const down = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/none', connectionTimeoutMillis: 2_000 });
    const refused = await down.connect().catch((e: unknown) => e);
    expect(isOutage(refused)).toBe(true);
    expect(isOutage({ message: 'Failed query', cause: { code: '57P01', message: 'terminating connection due to administrator command' } })).toBe(true);
    expect(isOutage(new Error('Connection terminated unexpectedly'))).toBe(true);
    const wrong = await t.db.execute('select * from no_such_table' as never).catch((e: unknown) => e);
    expect(isOutage(wrong)).toBe(false);
  });

  it('waits an outage out within the tolerance, fails it clearly past it, and any other error at once', async () => {
    let calls = 0;
    const waits: number[] = [];
    const value = await retryOnOutage(
      'save',
      async () => {
        if (++calls < 3) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return 'saved';
      },
      { toleranceMs: 10_000, onWait: (ms) => waits.push(ms) },
    );
    expect(value).toBe('saved');
    expect(waits).toHaveLength(2);

    const t0 = Date.now();
    const past = await retryOnOutage('save', () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), { toleranceMs: 1_200 }).catch((e: unknown) => e);
    expect(past).toBeInstanceOf(ApplicationFailure);
    expect(past).toMatchObject({ type: 'DatabaseUnavailable', nonRetryable: false });
    expect((past as Error).message).toMatch(/^save: the database stayed unreachable for \d+ s \(outage tolerance 1 s\)/);
    expect(Date.now() - t0).toBeLessThan(3_000);

    let once = 0;
    const other = await retryOnOutage('save', () => (once++, Promise.reject(new Error('duplicate key value'))), { toleranceMs: 10_000 }).catch((e: unknown) => e);
    expect((other as Error).message).toBe('duplicate key value');
    expect(once).toBe(1);
  });
});
