/**
 * The worker takes concurrency + prefetch cells and evaluates `concurrency` of them at once (the
 * evaluation gate), against a real Temporal server and Postgres, on the tiny GPT-2 fixture through an
 * engine that records each evaluation (and can hold one until the test lets it go):
 * - concurrency 1, prefetch 1: two cells are claimed by the worker at once, yet evaluations never
 *   overlap; a claimed cell is not "running" in the database before its evaluation starts; every cell
 *   is stored once;
 * - a cell waiting at the gate longer than the heartbeat timeout stays claimed (it heartbeats);
 *   cancelling the sweep then ends it as cancelled at once, its evaluation never started;
 * - stopping the worker while a cell waits hands that cell back at once (another worker computes it
 *   long before the stopping worker's grace time is out); no cell lost or duplicated.
 */
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../engine/index.ts';
import type { Engine } from '../../engine/types.ts';
import { engineOptions } from '../../worker/create.ts';
import { cellWorkflowId } from '../../workflows/cell.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import { startWorker, testWorkerConfig, waitFor, type RunningWorker } from '../support/temporal.ts';
import { MODELS, SST2, count, rows, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;
const workers: RunningWorker[] = [];
const engines: Engine[] = [];

beforeAll(async () => {
  suite = await setupSuite('prefetch');
});

afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => {});
  for (const e of engines) await e.close().catch(() => {});
  await suite?.teardown();
});

interface Evaluation {
  key: string;
  start: number;
  end?: number;
}

/**
 * The real engine, each evaluation recorded by cell key; `hold` keeps evaluations running until release(),
 * or their cancellation unless `deaf` (an engine deep in a step that does not watch the signal).
 */
function recordingEngine(opts: { delayMs?: number; hold?: boolean; deaf?: boolean } = {}) {
  const inner = createEngine(engineOptions(testWorkerConfig('unused', { cacheDir: path.join(suite.tmp, 'cache') }), { modelLoad() {} }));
  engines.push(inner);
  const evaluations: Evaluation[] = [];
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const engine: Engine = {
    describeModel: (m) => inner.describeModel(m),
    describeDataset: (d) => inner.describeDataset(d),
    checkCells: (c) => inner.checkCells(c),
    close: () => inner.close(),
    async evaluate(request, options) {
      const workflowId = Context.current().info.workflowExecution!.workflowId;
      const record: Evaluation = { key: workflowId.slice(workflowId.lastIndexOf('/') + 1), start: Date.now() };
      evaluations.push(record);
      try {
        const ready = Promise.all([new Promise((r) => setTimeout(r, opts.delayMs ?? 0)), opts.hold ? released : undefined]);
        const aborted = () => new Promise<never>((_, reject) => options?.signal?.addEventListener('abort', () => reject(options.signal!.reason)));
        await (opts.deaf ? ready : Promise.race([ready, aborted()]));
        return await inner.evaluate(request, options);
      } finally {
        record.end = Date.now();
      }
    },
  };
  return { engine, evaluations, release };
}

/** Each test's own seed gives it its own cell keys (the tests share a database). */
const spec = (name: string, seed: number, over: Record<string, unknown> = {}) => ({
  name,
  models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
  datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
  modules: ['fc_in'],
  layers: [0, 1, 2],
  ratios: [0, 0.5, 0.9],
  shots: 2,
  seed,
  sizes: { testPerClass: 2 },
  heartbeatTimeoutSeconds: 2,
  ...over,
});

/** Cell keys whose evaluateCell attempt is claimed (started) by a worker, with that worker's identity. */
async function claimedCells(client: Client, sweepId: string, keys: string[]): Promise<Map<string, string>> {
  const claimed = new Map<string, string>();
  await Promise.all(
    keys.map(async (key) => {
      const info = await client.workflow.getHandle(cellWorkflowId(sweepId, key)).describe().catch(() => undefined);
      for (const a of info?.raw.pendingActivities ?? []) {
        if (a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED) claimed.set(key, a.lastWorkerIdentity ?? '');
      }
    }),
  );
  return claimed;
}

const linkedKeys = async (sweep: string) => (await rows<{ cell_key: string }>(suite.db.db, `select cell_key from sweep_cells where sweep = '${sweep}'`)).map((r) => r.cell_key);
const doneCells = (sweep: string) => count(suite.db.db, `select count(*) as n from cells c join sweep_cells s on s.cell_key = c.key where s.sweep = '${sweep}' and c.status = 'done'`);
const runningKeys = async () => (await rows<{ key: string }>(suite.db.db, `select key from cells where status = 'running'`)).map((r) => r.key);

/** Waits until one cell evaluates and another, claimed by `worker`, waits at its gate; returns the waiting one's key. */
async function oneWaiting(sweepId: string, sweep: string, worker: string, evaluations: Evaluation[]): Promise<string> {
  return waitFor(
    async () => {
      const claimed = await claimedCells(suite.client, sweepId, await linkedKeys(sweep));
      const mine = [...claimed].filter(([, identity]) => identity === worker).map(([key]) => key);
      const waiting = mine.filter((key) => !evaluations.some((e) => e.key === key));
      return mine.length === 2 && evaluations.length === 1 && waiting.length === 1 ? waiting[0] : undefined;
    },
    60_000,
    100,
    'a cell waiting at the gate',
  );
}

describe('concurrency 1, prefetch 1', () => {
  it('claims two cells at once, evaluates one at a time, marks a cell running only once it evaluates, stores every cell once', async () => {
    const taskQueue = `${suite.taskQueue}-one`;
    const { engine, evaluations } = recordingEngine({ delayMs: 400 });
    workers.push(await startWorker(taskQueue, { db: suite.db.db, engine, config: { concurrency: 1, prefetch: 1, cacheDir: path.join(suite.tmp, 'cache') } }));
    const sweepId = `${taskQueue}-sweep`;
    const handle = await suite.client.workflow.start('sweep', { taskQueue, workflowId: sweepId, args: [spec('prefetch-one', 1, { maxInFlight: 4 })] });
    let sawWaiting = false;
    const running: string[] = [];
    const watch = (async () => {
      for (let ended = false; !ended; ) {
        ended = await handle.describe().then((d) => d.status.name !== 'RUNNING');
        const claimed = [...(await claimedCells(suite.client, sweepId, await linkedKeys('prefetch-one'))).keys()];
        const started = new Set(evaluations.map((e) => e.key)); // read after the claims: a key started meanwhile counts as started
        const marked = await runningKeys();
        // A cell is "running" in the database only once its evaluation has started.
        for (const key of marked) if (!new Set(evaluations.map((e) => e.key)).has(key)) running.push(key);
        if (claimed.length >= 2 && claimed.some((key) => !started.has(key))) sawWaiting = true;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const result = (await handle.result()) as SweepResult;
    await watch;
    expect(result).toMatchObject({ total: 7, done: 7, failed: 0, reused: 0 });
    expect(sawWaiting).toBe(true);
    expect(running).toEqual([]);
    // Never two evaluations at once.
    const spans = [...evaluations].sort((a, b) => a.start - b.start);
    expect(spans).toHaveLength(7);
    for (let i = 1; i < spans.length; i++) expect(spans[i].start).toBeGreaterThanOrEqual(spans[i - 1].end!);
    expect(new Set(spans.map((s) => s.key)).size).toBe(7);
    expect(await doneCells('prefetch-one')).toBe(7);
    expect(await count(suite.db.db, `select count(*) as n from cell_conflicts`)).toBe(0);
  });
});

describe('a cell waiting at the gate', () => {
  it('heartbeats, and ends as cancelled at once when the sweep is cancelled, without an evaluation', async () => {
    const taskQueue = `${suite.taskQueue}-cancel`;
    const worker = `worker-${taskQueue}`;
    // The running cell's engine does not stop when cancelled: its slot stays taken until release().
    const { engine, evaluations, release } = recordingEngine({ hold: true, deaf: true });
    workers.push(await startWorker(taskQueue, { db: suite.db.db, engine, config: { concurrency: 1, prefetch: 1, workerName: worker, cacheDir: path.join(suite.tmp, 'cache') } }));
    const sweepId = `${taskQueue}-sweep`;
    const handle = await suite.client.workflow.start('sweep', { taskQueue, workflowId: sweepId, args: [spec('prefetch-cancel', 2, { maxInFlight: 2 })] });
    const waiting = await oneWaiting(sweepId, 'prefetch-cancel', worker, evaluations);
    // Longer than the heartbeat timeout (2 s): a waiting cell heartbeats, so it stays claimed, on its first attempt.
    await new Promise((r) => setTimeout(r, 5_000));
    const pending = (await suite.client.workflow.getHandle(cellWorkflowId(sweepId, waiting)).describe()).raw.pendingActivities ?? [];
    expect(pending.map((a) => ({ state: a.state, attempt: a.attempt, worker: a.lastWorkerIdentity }))).toEqual([
      { state: temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, attempt: 1, worker },
    ]);
    const cancelledAt = Date.now();
    await handle.cancel();
    const cell = suite.client.workflow.getHandle(cellWorkflowId(sweepId, waiting));
    await cell.result().catch(() => {});
    const closed = await cell.describe();
    expect(closed.status.name).toBe('CANCELLED');
    // Within a heartbeat or two (2 s timeout), not after the held evaluation.
    expect(closed.closeTime!.getTime() - cancelledAt).toBeLessThan(8_000);
    expect(evaluations.map((e) => e.key)).not.toContain(waiting);
    expect(await rows(suite.db.db, `select status from cells where key = '${waiting}'`)).toEqual([]);
    await handle.result().catch(() => {});
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    release();
    await new Promise((r) => setTimeout(r, 500));
    expect(evaluations).toHaveLength(1); // the freed slot admitted nobody
  });
});

describe('stopping a worker with a cell waiting at its gate', () => {
  it('hands the cell back at once; every cell is stored once', async () => {
    const taskQueue = `${suite.taskQueue}-stop`;
    const doomed = `doomed-${taskQueue}`;
    const cacheDir = path.join(suite.tmp, 'cache');
    workers.push(await startWorker(taskQueue, { db: suite.db.db, config: { roles: ['workflows'], cacheDir } }));
    const held = recordingEngine({ hold: true });
    // A long grace time: a waiting cell that sat it out would fail the timing below.
    const stopping = await startWorker(taskQueue, { db: suite.db.db, engine: held.engine, config: { roles: ['cells'], concurrency: 1, prefetch: 1, workerName: doomed, shutdownGraceSeconds: 60, cacheDir } });
    workers.push(stopping);
    const sweepId = `${taskQueue}-sweep`;
    const handle = await suite.client.workflow.start('sweep', { taskQueue, workflowId: sweepId, args: [spec('prefetch-stop', 3, { ratios: [0, 0.5], layers: [0, 1], maxInFlight: 3 })] });
    const waiting = await oneWaiting(sweepId, 'prefetch-stop', doomed, held.evaluations);
    const stoppedAt = Date.now();
    stopping.worker.shutdown();
    const rescue = recordingEngine();
    workers.push(await startWorker(taskQueue, { db: suite.db.db, engine: rescue.engine, config: { roles: ['cells'], workerName: `rescue-${taskQueue}`, cacheDir } }));
    // The rescuer evaluates the handed-back cell while the stopping worker still holds its running one.
    await waitFor(async () => rescue.evaluations.some((e) => e.key === waiting && e.end !== undefined), 20_000, 100, 'the handed-back cell evaluated elsewhere');
    expect(Date.now() - stoppedAt).toBeLessThan(20_000);
    held.release();
    await stopping.running;
    expect(Date.now() - stoppedAt).toBeLessThan(40_000);
    const result = (await handle.result()) as SweepResult;
    expect(result).toMatchObject({ total: 3, failed: 0 });
    expect(result.done + result.reused).toBe(3);
    expect(held.evaluations.map((e) => e.key)).not.toContain(waiting);
    // Every cell evaluated once, across both workers, and stored once.
    const evaluated = [...held.evaluations, ...rescue.evaluations].map((e) => e.key);
    expect(new Set(evaluated).size).toBe(3);
    expect(evaluated).toHaveLength(3);
    expect(await doneCells('prefetch-stop')).toBe(3);
    expect(await count(suite.db.db, `select count(*) as n from cell_conflicts`)).toBe(0);
  });
});
