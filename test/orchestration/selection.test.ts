/**
 * The paper's selection step through the workflow: the grid runs on validation, the best cell per
 * (model, dataset) is picked with selectBest, then the unpruned model and the pick run on test and
 * the selection is stored.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellResults, selectionResults } from '../../db/queries.ts';
import { selectBest } from '../../analysis/selection.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import type { ModuleName } from '../../engine/vocabulary.ts';
import { MODELS, SST2, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;

beforeAll(async () => {
  suite = await setupSuite('select', { worker: { concurrency: 2 } });
});

afterAll(async () => {
  await suite?.teardown();
});

describe('selection', () => {
  it('runs the grid on validation, picks with selectBest, evaluates baseline and pick on test, stores the selection', async () => {
    const spec = {
      name: 'select-sweep',
      models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
      datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
      modules: ['fc_in', 'out_proj'],
      layers: [0, 2],
      ratios: [0, 0.5, 0.95],
      shots: 2,
      sizes: { validationPerClass: 4, testPerClass: 4 },
      selection: true,
      maxInFlight: 4,
    };
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-sel`, args: [spec] });
    const r = (await handle.result()) as SweepResult;
    const grid = 2 * 2 * 2 + 1;
    const rows = await cellResults(suite.db.db, 'select-sweep');
    const validation = rows.filter((x) => x.split === 'validation');
    const test = rows.filter((x) => x.split === 'test');
    expect(validation).toHaveLength(grid);
    expect(validation.every((x) => x.status === 'done')).toBe(true);

    const expected = selectBest(
      validation.map((x) => ({ model: x.model, dataset: x.dataset, module: x.module as ModuleName, layer: x.layer, ratio: x.ratio, accuracy: x.accuracy!, cellKey: x.cellKey })),
    );
    expect(expected).toHaveLength(1);
    const pick = expected[0];
    expect(r.selections).toHaveLength(1);
    const { model, dataset, module, layer, ratio, validationAccuracy, validationCellKey } = pick;
    expect(r.selections![0]).toMatchObject({ model, dataset, module, layer, ratio, validationAccuracy, validationCellKey, rule: { rule: 'paper' }, draws: 1 });
    // Test split: the unpruned model and the pick (one cell when the pick is the unpruned model).
    const testCells = pick.ratio === 0 ? 1 : 2;
    expect(test).toHaveLength(testCells);
    expect(r).toMatchObject({ total: grid + testCells, done: grid + testCells, failed: 0 });
    expect(test.some((x) => x.ratio === 0 && x.module === 'none')).toBe(true);

    const stored = await selectionResults(suite.db.db, 'select-sweep');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ model: 'gpt2-tiny', dataset: 'sst2-tiny', ratio: pick.ratio, layer: pick.layer, validationCellKey: pick.validationCellKey });
    expect(stored[0].baselineStatus).toBe('done');
    expect(stored[0].selectedStatus).toBe('done');
    expect(stored[0].baselineAccuracy).toBeGreaterThanOrEqual(0);
  });
});
