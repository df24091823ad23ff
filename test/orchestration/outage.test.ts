/**
 * Outages cost time, never cells: the database (a private Postgres of this test, never the shared
 * one) is stopped for 60 s in the middle of a sweep run by a worker process (`npm run worker`'s
 * entry), then started again. The sweep completes with 0 cells failed, 0 lost, 0 duplicated, no
 * Temporal attempt spent on the outage, and the worker stays up throughout; cells whose evaluation
 * finished during the outage kept their outcome and were saved when the database came back.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, migrate, type Db } from '../../db/client.ts';
import { cellResults } from '../../db/queries.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.ts';
import { connectClient, spawnWorker, uniqueTaskQueue, waitFor } from '../support/temporal.ts';
import { MODELS, count, makeSentimentDataset, rows, terminateRunning } from './helpers.ts';

const OUTAGE_SECONDS = 60;

let pg: PrivatePostgres;
let db: Db;
let tmp: string;
let worker: ChildProcess | undefined;
let workerLog = '';
const taskQueue = uniqueTaskQueue('outage');

beforeAll(async () => {
  pg = await startPrivatePostgres();
  db = await createDb(pg.url);
  await migrate(db);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'icl-outage-'));
});

afterAll(async () => {
  if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  const { client, close } = await connectClient();
  await terminateRunning(client, taskQueue).catch(() => {});
  await close();
  await db?.close().catch(() => {});
  await pg?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe(`the database stopped for ${OUTAGE_SECONDS} s in the middle of a sweep`, () => {
  it('costs time, never cells: 0 failed, 0 lost, 0 duplicated, no attempt spent, the worker up throughout', async () => {
    // Cells of a few seconds (the no-past-key-values model, 1600 examples): the outage starts while two are evaluated.
    const data = await makeSentimentDataset(path.join(tmp, 'data'), { train: 40, validation: 10, test: 1600 });
    const spec = {
      name: 'outage-sweep',
      models: [{ name: 'gpt2-nopast', path: path.join(MODELS, 'gpt2-nopast') }],
      datasets: [{ name: 'sentiment', task: 'sst2', path: data }],
      modules: ['q_proj', 'fc_in', 'fc_out'],
      layers: [0, 2],
      ratios: [0, 0.5, 0.9],
      shots: 1,
      sizes: { testPerClass: 800 },
      maxInFlight: 2,
    };
    const total = 3 * 2 * 2 + 1; // 13
    worker = spawnWorker(
      { DATABASE_URL: pg.url, ICL_SWEEP_TASK_QUEUE: taskQueue, ICL_SWEEP_CONCURRENCY: '2', ICL_SWEEP_CACHE_DIR: path.join(tmp, 'cache'), ICL_SWEEP_WORKER_NAME: 'outage-worker' },
      (line) => (workerLog = (workerLog + line + '\n').slice(-20_000)),
    );
    const exits: (number | null)[] = [];
    worker.once('exit', (code) => exits.push(code));
    await waitFor(async () => workerLog.includes('icl-sweep worker'), 90_000, 200, 'the worker').catch((err) => {
      throw new Error(`${err}\n${workerLog}`);
    });

    const { client, close } = await connectClient();
    try {
      const handle = await client.workflow.start('sweep', { taskQueue, workflowId: `${taskQueue}-sweep`, args: [spec] });
      await waitFor(
        async () => (await count(db, `select count(*) as n from cells where status = 'done'`)) >= 2 && (await count(db, `select count(*) as n from cells where status = 'running'`)) >= 1,
        120_000,
        100,
        'two cells done and one running',
      );
      const down = Date.now() / 1000;
      await pg.stop();
      await new Promise((r) => setTimeout(r, OUTAGE_SECONDS * 1000));
      expect(worker.exitCode, `the worker exited during the outage:\n${workerLog}`).toBeNull();
      await pg.start();
      const up = Date.now() / 1000;
      const result = (await handle.result()) as SweepResult;

      expect(worker.exitCode, `the worker exited:\n${workerLog}`).toBeNull();
      expect(exits).toEqual([]);
      expect(result).toMatchObject({ total, done: total, reused: 0, failed: 0 });
      const results = await cellResults(db, 'outage-sweep');
      expect(results).toHaveLength(total);
      expect(new Set(results.map((r) => r.cellKey)).size).toBe(total);
      expect(results.filter((r) => r.status !== 'done')).toEqual([]);
      // No Temporal attempt went to the outage, nothing was computed twice, every example stored once.
      expect(results.every((r) => r.attempt === 1)).toBe(true);
      expect(await count(db, 'select count(*) as n from cells')).toBe(total);
      expect(await count(db, 'select count(*) as n from examples')).toBe(total * 1600);
      expect(await count(db, 'select count(*) as n from cell_conflicts')).toBe(0);
      // The outage hit work in progress: cells evaluated while the database was down were saved after it came back.
      const heldOver = await rows<{ n: number }>(
        db,
        `select count(*)::int as n from cells where extract(epoch from finished_at) < ${up} and extract(epoch from updated_at) > ${up} and extract(epoch from started_at) < ${down}`,
      );
      console.log(`outage of ${OUTAGE_SECONDS} s: ${total} cells, ${result.failed} failed, ${total - results.length} lost, 0 duplicated; ${heldOver[0].n} evaluated during it and saved after`);
      expect(heldOver[0].n).toBeGreaterThanOrEqual(1);
    } finally {
      await close();
    }
  }, 360_000);
});
