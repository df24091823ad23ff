/**
 * A few hundred cells with a small continue-as-new threshold: the sweep hops across many workflow
 * runs, its progress never goes backwards, and every cell is stored exactly once.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellResults } from '../../db/queries.ts';
import type { SweepProgress, SweepResult } from '../../workflows/sweep.ts';
import { startWorker, waitFor, type RunningWorker } from '../support/temporal.ts';
import { MODELS, SST2, count, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;
let worker: RunningWorker;

beforeAll(async () => {
  suite = await setupSuite('can');
  worker = await startWorker(suite.taskQueue, { db: suite.db.db, config: { cacheDir: path.join(suite.tmp, 'cache'), concurrency: 4 } });
});

afterAll(async () => {
  await worker?.stop();
  await suite?.teardown();
});

describe('continue-as-new', () => {
  it('keeps progress and results intact over a few hundred cells', async () => {
    const ratios = [0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];
    const spec = {
      name: 'can-sweep',
      models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
      datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
      modules: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_out', 'mlp', 'attn', 'all'],
      layers: 'all',
      ratios,
      shots: 1,
      sizes: { testPerClass: 1 },
      maxInFlight: 8,
      continueAsNewAfter: 40,
    };
    const total = 9 * 3 * (ratios.length - 1) + 1; // 325
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-can`, args: [spec] });

    const seen: SweepProgress[] = [];
    let finished = false;
    const result = handle.result().finally(() => (finished = true)) as Promise<SweepResult>;
    while (!finished) {
      try {
        seen.push((await handle.query('progress')) as SweepProgress);
      } catch {
        /* between runs */
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const r = await result;
    expect(r).toMatchObject({ sweep: 'can-sweep', total, done: total, reused: 0, failed: 0 });
    expect(r.runs).toBeGreaterThanOrEqual(Math.floor(total / 40));

    // Progress across runs: never backwards, never above the total, and it saw several runs.
    const finishedCounts = seen.map((p) => p.done + p.reused + p.failed);
    for (let i = 1; i < finishedCounts.length; i++) expect(finishedCounts[i]).toBeGreaterThanOrEqual(finishedCounts[i - 1]);
    expect(Math.max(...finishedCounts)).toBeLessThanOrEqual(total);
    expect(new Set(seen.map((p) => p.run)).size).toBeGreaterThan(2);
    expect(seen.every((p) => p.inFlight <= 8)).toBe(true);

    const results = await cellResults(suite.db.db, 'can-sweep');
    expect(results).toHaveLength(total);
    expect(new Set(results.map((x) => x.cellKey)).size).toBe(total);
    expect(results.every((x) => x.status === 'done' && !x.reused)).toBe(true);
    expect(await count(suite.db.db, 'select count(*) as n from cells')).toBe(total);
    expect(await count(suite.db.db, 'select max(attempts) as n from cells')).toBe(1);

    // The last run's history stays small (one run handles at most ~40 cells).
    const description = await handle.describe();
    expect(description.historyLength).toBeLessThan(40 * 12);
  });

  it('handles a 10,000-cell grid: expands it in every run, keeps pending work bounded, continues as new', async () => {
    const ratios = Array.from({ length: 278 }, (_, i) => Number(((i + 1) / 280).toFixed(6)));
    const spec = {
      name: 'big-sweep',
      models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
      datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
      modules: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_out', 'mlp', 'attn', 'all'],
      layers: [-1, 0, 1, 2],
      ratios,
      shots: 1,
      sizes: { testPerClass: 1 },
      maxInFlight: 1000,
      continueAsNewAfter: 60,
    };
    const total = 9 * 4 * 278;
    expect(total).toBeGreaterThanOrEqual(10_000);
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-big`, args: [spec] });
    try {
      const p = await waitFor(
        async () => {
          const q = (await handle.query('progress')) as SweepProgress;
          return q.run >= 2 && q;
        },
        120_000,
        250,
      );
      expect(p.total).toBe(total);
      // maxInFlight 1000 is capped: never more than a few hundred cells pending per run.
      expect(p.inFlight).toBeLessThanOrEqual(200);
      const d = await handle.describe();
      expect(d.historyLength).toBeLessThan(2000);
    } finally {
      await handle.cancel();
      await handle.result().catch(() => {});
    }
    const stored = await count(suite.db.db, `select count(*) as n from cell_results where sweep = 'big-sweep'`);
    expect(stored).toBeGreaterThanOrEqual(60);
    expect(stored).toBeLessThan(total);
  });
});
