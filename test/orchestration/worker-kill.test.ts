/**
 * A worker (a child process running `npm run worker`'s entry) is killed with SIGKILL in the middle of
 * a cell: the cell's heartbeats stop, Temporal retries it on another worker after the heartbeat
 * timeout, and the sweep completes with every cell stored exactly once.
 */
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellResults } from '../../db/queries.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import { spawnWorker, startWorker, waitFor, type RunningWorker } from '../support/temporal.ts';
import { MODELS, count, makeSentimentDataset, rows, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;
const workers: RunningWorker[] = [];
let child: ChildProcess | undefined;

beforeAll(async () => {
  suite = await setupSuite('kill');
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const w of workers) await w.stop().catch(() => {});
  await suite?.teardown();
});

describe('a worker killed with SIGKILL in the middle of a cell', () => {
  it('does not stop the sweep: the cell is retried elsewhere and every cell is stored exactly once', async () => {
    // Slow cells (thousands of examples on the no-past-key-values model) so the kill lands inside one.
    const data = await makeSentimentDataset(path.join(suite.tmp, 'data'), { train: 60, validation: 20, test: 4000 });
    const spec = {
      name: 'kill-sweep',
      models: [{ name: 'gpt2-nopast', path: path.join(MODELS, 'gpt2-nopast') }],
      datasets: [{ name: 'sentiment', task: 'sst2', path: data }],
      modules: ['fc_in'],
      layers: [0],
      ratios: [0, 0.5, 0.9],
      shots: 2,
      sizes: { testPerClass: 1500 },
      maxInFlight: 2,
      heartbeatTimeoutSeconds: 3,
    };
    const cacheDir = path.join(suite.tmp, 'cache');
    // Workflows (and light activities) in this process; cells only in the child at first.
    workers.push(await startWorker(suite.taskQueue, { db: suite.db.db, config: { roles: ['workflows'], cacheDir } }));
    const output: string[] = [];
    child = spawnWorker(
      {
        DATABASE_URL: suite.db.url,
        ICL_SWEEP_TASK_QUEUE: suite.taskQueue,
        ICL_SWEEP_ROLES: 'cells',
        ICL_SWEEP_WORKER_NAME: 'doomed-worker',
        ICL_SWEEP_CACHE_DIR: cacheDir,
      },
      (line) => output.push(line),
    );
    await waitFor(async () => output.some((l) => l.includes('icl-sweep worker')), 60_000).catch((err) => {
      throw new Error(`child worker did not start: ${err}\n${output.join('\n')}`);
    });

    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-kill`, args: [spec] });
    const running = await waitFor(
      async () => (await rows<{ key: string }>(suite.db.db, `select key from cells where status = 'running' and worker = 'doomed-worker'`))[0],
      60_000,
      50,
    );
    await new Promise((r) => setTimeout(r, 300));
    // Still in the middle of that cell.
    expect(await count(suite.db.db, `select count(*) as n from cells where key = '${running.key}' and status = 'running'`)).toBe(1);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    expect(child.signalCode).toBe('SIGKILL');

    workers.push(await startWorker(suite.taskQueue, { db: suite.db.db, config: { roles: ['cells'], cacheDir, workerName: 'rescue-worker' } }));
    const result = (await handle.result()) as SweepResult;
    expect(result).toMatchObject({ total: 3, failed: 0 });
    expect(result.done + result.reused).toBe(3);

    const results = await cellResults(suite.db.db, 'kill-sweep');
    expect(results).toHaveLength(3);
    expect(results.every((r) => r.status === 'done' && r.n === 3000)).toBe(true);
    expect(await count(suite.db.db, 'select count(*) as n from cells')).toBe(3);
    expect(await count(suite.db.db, 'select count(*) as n from examples')).toBe(3 * 3000);
    // The killed cell was finished by the other worker, by Temporal's second attempt, and stored once.
    const [killed] = await rows<{ worker: string; attempts: number; status: string }>(suite.db.db, `select worker, attempts, status from cells where key = '${running.key}'`);
    expect(killed).toEqual({ worker: 'rescue-worker', attempts: 2, status: 'done' });
    expect(await count(suite.db.db, 'select count(*) as n from cell_conflicts')).toBe(0);
  });
});

describe('a worker stopped with SIGTERM in the middle of a cell', () => {
  it('finishes the running cell, stops polling and exits 0; the other cells run elsewhere', async () => {
    // Other content than the first test's data (4002 rows): a new dataset fingerprint, so no cell is shared with it.
    const data = await makeSentimentDataset(path.join(suite.tmp, 'data-term'), { train: 60, validation: 20, test: 4002 });
    const spec = {
      name: 'term-sweep',
      models: [{ name: 'gpt2-nopast', path: path.join(MODELS, 'gpt2-nopast') }],
      datasets: [{ name: 'sentiment', task: 'sst2', path: data }],
      modules: ['fc_out'],
      layers: [1],
      ratios: [0, 0.5, 0.9],
      shots: 2,
      sizes: { testPerClass: 1500 },
      maxInFlight: 1,
      heartbeatTimeoutSeconds: 5,
    };
    const cacheDir = path.join(suite.tmp, 'cache');
    const taskQueue = `${suite.taskQueue}-term`;
    workers.push(await startWorker(taskQueue, { db: suite.db.db, config: { roles: ['workflows'], cacheDir } }));
    const output: string[] = [];
    const draining = spawnWorker(
      {
        DATABASE_URL: suite.db.url,
        ICL_SWEEP_TASK_QUEUE: taskQueue,
        ICL_SWEEP_ROLES: 'cells',
        ICL_SWEEP_WORKER_NAME: 'draining-worker',
        ICL_SWEEP_CACHE_DIR: cacheDir,
        ICL_SWEEP_SHUTDOWN_GRACE_SECONDS: '60',
      },
      (line) => output.push(line),
    );
    child = draining;
    await waitFor(async () => output.some((l) => l.includes('icl-sweep worker')), 60_000);
    const handle = await suite.client.workflow.start('sweep', { taskQueue, workflowId: `${taskQueue}-wf`, args: [spec] });
    const running = await waitFor(
      async () => (await rows<{ key: string }>(suite.db.db, `select key from cells where status = 'running' and worker = 'draining-worker'`))[0],
      60_000,
      50,
    );
    const exited = new Promise<number | null>((resolve) => draining.once('exit', (code) => resolve(code)));
    draining.kill('SIGTERM');
    expect(await exited).toBe(0);
    // The cell it was running when told to stop was finished and stored by it.
    const [cell] = await rows<{ worker: string; status: string }>(suite.db.db, `select worker, status from cells where key = '${running.key}'`);
    expect(cell).toEqual({ worker: 'draining-worker', status: 'done' });
    expect(output.join('\n')).toContain('SIGTERM: draining');

    workers.push(await startWorker(taskQueue, { db: suite.db.db, config: { roles: ['cells'], cacheDir, workerName: 'next-worker' } }));
    const result = (await handle.result()) as SweepResult;
    expect(result).toMatchObject({ total: 3, done: 3, failed: 0 });
    const results = await cellResults(suite.db.db, 'term-sweep');
    expect(results.map((r) => r.status)).toEqual(['done', 'done', 'done']);
    expect(await count(suite.db.db, `select count(*) as n from cells c join sweep_cells s on s.cell_key = c.key where s.sweep = 'term-sweep' and c.worker = 'next-worker'`)).toBe(2);
  });
});
