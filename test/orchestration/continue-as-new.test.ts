/**
 * Continue-as-new without draining the window: a sweep hops across several workflow runs while its
 * cells keep running. At every boundary where cells remain, cells are in flight (carried to the next
 * run, which counts their reports); progress never goes backwards; every cell is stored exactly once.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellResults } from '../../db/queries.ts';
import type { SweepProgress, SweepResult, SweepState } from '../../workflows/sweep.ts';
import { MODELS, continuedAsNewArgs, count, eventSeconds, makeSentimentDataset, rows, runHistories, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;

beforeAll(async () => {
  suite = await setupSuite('can', { worker: { concurrency: 4 } });
});

afterAll(async () => {
  await suite?.teardown();
});

describe('continue-as-new', () => {
  it('hands the cells in flight to the next run at every boundary, keeps progress, stores every cell once', async () => {
    // Cells of a few seconds each (the no-past-key-values model, 1600 examples): long against a workflow task, as real cells are.
    const data = await makeSentimentDataset(path.join(suite.tmp, 'data'), { train: 40, validation: 10, test: 1600 });
    const spec = {
      name: 'can-sweep',
      models: [{ name: 'gpt2-nopast', path: path.join(MODELS, 'gpt2-nopast') }],
      datasets: [{ name: 'sentiment', task: 'sst2', path: data }],
      modules: ['q_proj', 'fc_in', 'fc_out'],
      layers: 'all',
      ratios: [0, 0.5, 0.9],
      shots: 1,
      sizes: { testPerClass: 800 },
      maxInFlight: 4,
      continueAsNewAfter: 5,
    };
    const total = 3 * 3 * 2 + 1; // 19
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
    expect(r.runs).toBeGreaterThanOrEqual(3);

    // Progress across runs: never backwards, never above the total, never more in flight than the window.
    const finishedCounts = seen.map((p) => p.done + p.reused + p.failed);
    for (let i = 1; i < finishedCounts.length; i++) expect(finishedCounts[i]).toBeGreaterThanOrEqual(finishedCounts[i - 1]);
    expect(Math.max(...finishedCounts)).toBeLessThanOrEqual(total);
    expect(seen.every((p) => p.inFlight <= 4)).toBe(true);

    // Every boundary: what the run handed over, and which cells the database saw computing at that moment.
    const runs = await runHistories(suite.client, handle.workflowId, handle.firstExecutionRunId);
    expect(runs).toHaveLength(r.runs);
    const computed = await rows<{ started: number; finished: number }>(
      suite.db.db,
      `select extract(epoch from started_at)::float8 as started, extract(epoch from finished_at)::float8 as finished from cells`,
    );
    const boundaries = runs.slice(0, -1).map(({ history }) => {
      const state = continuedAsNewArgs(history)![1] as SweepState;
      const at = eventSeconds(history.events![history.events!.length - 1]);
      return {
        remaining: total - (state.counts.done + state.counts.reused + state.counts.failed),
        carried: Object.keys(state.inFlight).length,
        computing: computed.filter((c) => c.started <= at && at < c.finished).length,
      };
    });
    console.log(`continue-as-new boundaries (cells remaining / in flight carried / computing): ${boundaries.map((b) => `${b.remaining}/${b.carried}/${b.computing}`).join(' ')}`);
    // The workflow's own count never drops to zero while cells remain. How many of the carried cells were
    // computing at that exact instant (logged above) depends on how workflow task latency falls against the
    // ends of equally long cells, so it is reported, not asserted.
    for (const b of boundaries.filter((x) => x.remaining > 0)) expect(b.carried).toBeGreaterThan(0);

    // Exactly once: one row per cell, each computed by one attempt, one set of examples each, no second completion.
    const results = await cellResults(suite.db.db, 'can-sweep');
    expect(results).toHaveLength(total);
    expect(new Set(results.map((x) => x.cellKey)).size).toBe(total);
    expect(results.every((x) => x.status === 'done' && !x.reused && x.n === 1600 && x.attempt === 1)).toBe(true);
    expect(await count(suite.db.db, 'select count(*) as n from cells')).toBe(total);
    expect(await count(suite.db.db, 'select count(*) as n from examples')).toBe(total * 1600);
    expect(await count(suite.db.db, 'select count(*) as n from cell_conflicts')).toBe(0);

    // Each run's history stays small (one run starts at most 5 cells).
    for (const { history } of runs) expect(history.events!.length).toBeLessThan(120);
  }, 300_000);
});
