import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cellByKey,
  cellConflictRows,
  cellDemonstrationsOf,
  cellDeltaRows,
  cellExamples,
  cellResults,
  findDoneCells,
  linkCells,
  markCellRunning,
  markReused,
  queryRows,
  recentSweepProgress,
  recordSweepProgress,
  saveCellFailure,
  saveCellResult,
  saveSelections,
  selectionResults,
  sweepByName,
  sweepCounts,
  claimSweep,
  type Db,
  type SweepCellInput,
} from '../../db/queries.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { outcome, times } from './helpers.ts';

let t: TestDatabase;
let db: Db;
beforeAll(async () => {
  t = await createTestDatabase();
  db = t.db;
});
afterAll(async () => {
  await t?.drop();
});

const spec = (datasets: unknown[]) => ({ name: 'x', datasets });

async function count(table: string, where = sql`true`): Promise<number> {
  const r = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from ${sql.identifier(table)} where ${where}`);
  return r[0].n;
}

describe('sweeps', () => {
  it('claimSweep is idempotent and keeps the latest workflow id', async () => {
    expect(await claimSweep(db, { name: 'sw-a', workflowId: 'wf-1', spec: spec([{ name: 'sst', task: 'sst2' }]) })).toEqual({ claimed: true, replaced: false });
    await claimSweep(db, { name: 'sw-a', workflowId: 'wf-2', spec: spec([{ name: 'sst', task: 'sst2' }]) });
    expect(await count('sweeps', sql`name = 'sw-a'`)).toBe(1);
    const s = await sweepByName(db, 'sw-a');
    expect(s?.workflowId).toBe('wf-2');
    expect(s?.spec).toEqual(spec([{ name: 'sst', task: 'sst2' }]));
    expect(await sweepByName(db, 'nope')).toBeUndefined();
  });

  it('one grid per name: another grid is refused, unless it replaces the old one (links and selections go, cells stay)', async () => {
    const first = spec([{ name: 'd', task: 'sst2' }]);
    expect(await claimSweep(db, { name: 'sw-grid', workflowId: 'wf-1', spec: first, grid: 'g1' })).toEqual({ claimed: true, replaced: false });
    await linkCells(db, 'sw-grid', [{ key: 'g1-cell', model: 'm', dataset: 'd', module: 'q_proj', layer: 0, ratio: 0.5, split: 'test' }]);
    await saveCellResult(db, { key: 'g1-cell', module: 'q_proj', layer: 0, ratio: 0.5, split: 'test', outcome: outcome(4, 2), worker: 'w', ...times });
    await saveSelections(db, 'sw-grid', [
      { model: 'm', dataset: 'd', module: 'q_proj', layer: 0, ratio: 0.5, validationAccuracy: 0.5, validationCellKey: 'g1-cell', baselineCellKey: 'b', selectedCellKey: 's' },
    ]);
    // The same grid again (a rerun): claimed, nothing dropped.
    expect(await claimSweep(db, { name: 'sw-grid', workflowId: 'wf-2', spec: first, grid: 'g1' })).toEqual({ claimed: true, replaced: false });
    expect(await count('sweep_cells', sql`sweep = 'sw-grid'`)).toBe(1);

    const refused = await claimSweep(db, { name: 'sw-grid', workflowId: 'wf-3', spec: spec([{ name: 'other', task: 'rte' }]), grid: 'g2' });
    expect(refused).toMatchObject({ claimed: false, holder: { workflowId: 'wf-2' } });
    expect((await sweepByName(db, 'sw-grid'))?.spec).toEqual(first);
    expect(await count('sweep_cells', sql`sweep = 'sw-grid'`)).toBe(1);

    expect(await claimSweep(db, { name: 'sw-grid', workflowId: 'wf-4', spec: spec([{ name: 'other', task: 'rte' }]), grid: 'g2', replace: true })).toEqual({
      claimed: true,
      replaced: true,
    });
    expect(await sweepByName(db, 'sw-grid')).toMatchObject({ workflowId: 'wf-4', grid: 'g2', cellsFinished: 0, status: 'running' });
    expect(await count('sweep_cells', sql`sweep = 'sw-grid'`)).toBe(0);
    expect(await count('selections', sql`sweep = 'sw-grid'`)).toBe(0);
    expect(await cellResults(db, 'sw-grid')).toEqual([]);
    expect((await cellByKey(db, 'g1-cell'))?.status).toBe('done');
  });

  it("progress: the workflow's record, exported while running or recently ended", async () => {
    await claimSweep(db, { name: 'sw-run', workflowId: 'wf', spec: {} });
    await claimSweep(db, { name: 'sw-end', workflowId: 'wf', spec: {} });
    await recordSweepProgress(db, { name: 'sw-run', planned: 10, finished: 4, status: 'running' });
    await recordSweepProgress(db, { name: 'sw-end', planned: 7, finished: 7, status: 'completed' });
    const recent = await recentSweepProgress(db, { runningSeconds: 3600, endedSeconds: 3600 });
    expect(recent.filter((r) => r.name === 'sw-run' || r.name === 'sw-end')).toEqual([
      { name: 'sw-end', planned: 7, finished: 7, status: 'completed' },
      { name: 'sw-run', planned: 10, finished: 4, status: 'running' },
    ]);
    await db.execute(sql`update sweeps set reported_at = now() - interval '2 hours' where name in ('sw-run', 'sw-end')`);
    const later = (await recentSweepProgress(db, { runningSeconds: 3 * 3600, endedSeconds: 3600 })).map((r) => r.name);
    expect(later).toContain('sw-run');
    expect(later).not.toContain('sw-end');
  });
});

describe('saveCellResult', () => {
  const coords = { module: 'q_proj', layer: 3, ratio: 0.9, split: 'test' as const, engineVersion: 'e1', modelFingerprint: 'mf', datasetFingerprint: 'df', shots: 4, seed: 1, params: { sizes: {} } };
  const provenance = { worker: 'w1', host: 'gpu-7', attempt: 2, executionProvider: 'cuda', weightDtype: 'float16', onnxruntimeVersion: '1.30.0' };

  it('stores the result with who computed it and how: attempt, worker, host, provider, weight dtype, runtime and engine versions', async () => {
    const o = outcome(50, 30);
    expect(await saveCellResult(db, { key: 'c-dup', ...coords, ...provenance, outcome: o, ...times })).toBe('stored');
    const c = await cellByKey(db, 'c-dup');
    expect(c).toMatchObject({
      status: 'done', accuracy: 0.6, n: 50, forwardTokens: 1050, seconds: 1.5, error: null,
      attempts: 2, worker: 'w1', host: 'gpu-7', executionProvider: 'cuda', weightDtype: 'float16', onnxruntimeVersion: '1.30.0', engineVersion: 'e1',
    });
    expect(c?.startedAt?.toISOString()).toBe(times.startedAt.toISOString());
    expect(await cellExamples(db, 'c-dup')).toEqual(o.examples);
  });

  it('replaces whatever examples a cell not yet done had, over several statements for many examples', async () => {
    await markCellRunning(db, { key: 'c-many', ...coords, worker: 'w' });
    // Rows a done cell never leaves behind, written by hand: the save must not keep them.
    await db.execute(sql`insert into examples (cell_key, idx, label, prediction, scores) values ('c-many', 5, 1, 1, '{0}'), ('c-many', 999999, 1, 1, '{0}'), ('c-many', 1500, 0, 0, '{0}')`);
    const o = outcome(2345, 2000);
    expect(await saveCellResult(db, { key: 'c-many', ...coords, outcome: o, worker: 'w', ...times })).toBe('stored');
    expect(await cellExamples(db, 'c-many')).toEqual(o.examples);
    expect(await cellDemonstrationsOf(db, 'c-many')).toMatchObject({ shots: 4, seed: 7, demonstrationRows: [5, 2, 9, 0] });
  });

  it('the same result saved again writes nothing (duplicate)', async () => {
    const before = await cellByKey(db, 'c-dup');
    expect(await saveCellResult(db, { key: 'c-dup', ...coords, ...provenance, worker: 'w9', attempt: 3, outcome: outcome(50, 30), ...times })).toBe('duplicate');
    expect(await cellByKey(db, 'c-dup')).toEqual(before);
    expect(await count('examples', sql`cell_key = 'c-dup'`)).toBe(50);
    expect(await cellConflictRows(db, 'c-dup')).toEqual([]);
  });

  it('stores the shots and seed the cell used (not the spec\'s null), its macro-F1 and its demonstration draw once', async () => {
    const o = outcome(8, 6);
    await saveCellResult(db, { key: 'c-draw', ...coords, shots: null, seed: null, outcome: o, worker: 'w', ...times });
    await saveCellResult(db, { key: 'c-draw-2', ...coords, ratio: 0.5, shots: null, seed: null, outcome: o, worker: 'w', ...times });
    const c = await cellByKey(db, 'c-draw');
    expect(c).toMatchObject({ shots: 4, seed: 7 });
    // 6 of 8 right, labels alternate: class 0 and class 1 each F1 = 2*3/(2*3+1+1) = 0.75
    expect(c?.f1Macro).toBeCloseTo(0.75, 12);
    expect(await count('demonstration_draws', sql`dataset_fingerprint = 'df'`)).toBe(1);
    for (const key of ['c-draw', 'c-draw-2']) {
      expect(await cellDemonstrationsOf(db, key)).toEqual({
        cellKey: key, split: 'test', shots: 4, seed: 7, demonstrationSplit: 'train', demonstrationRows: [5, 2, 9, 0], demonstrationLabels: [1, 0, 1, 0], examplesSplit: 'test',
      });
    }
    // Another seed of the same (dataset, split, shots) is another draw.
    await saveCellResult(db, { key: 'c-draw-3', ...coords, outcome: { ...o, sample: { ...o.sample, seed: 8 } }, worker: 'w', ...times });
    expect(await count('demonstration_draws', sql`dataset_fingerprint = 'df'`)).toBe(2);
    expect((await cellDemonstrationsOf(db, 'c-draw-3'))?.seed).toBe(8);
  });

  it('concurrent duplicates still give one set of examples', async () => {
    const o = outcome(300, 200);
    const saved = await Promise.all([1, 2, 3, 4].map((i) => saveCellResult(db, { key: 'c-race', ...coords, outcome: o, worker: `w${i}`, ...times })));
    expect(saved.sort()).toEqual(['duplicate', 'duplicate', 'duplicate', 'stored']);
    expect(await count('cells', sql`key = 'c-race'`)).toBe(1);
    expect(await count('examples', sql`cell_key = 'c-race'`)).toBe(300);
  });

  it('a done cell is never overwritten: a second completion with other numbers is a conflict record, the first result stands', async () => {
    await saveCellResult(db, { key: 'c-repl', ...coords, outcome: outcome(10, 5), worker: 'w', attempt: 1, ...times });
    const other = { ...provenance, worker: 'w-other', attempt: 2 };
    expect(await saveCellResult(db, { key: 'c-repl', ...coords, ...other, sweep: 'racing', outcome: outcome(10, 7), ...times })).toBe('conflict');
    expect(await cellByKey(db, 'c-repl')).toMatchObject({ accuracy: 0.5, worker: 'w', attempts: 1 });
    expect((await cellExamples(db, 'c-repl')).filter((e) => e.prediction === e.label)).toHaveLength(5);
    const [conflict] = await cellConflictRows(db, 'c-repl');
    expect(conflict).toMatchObject({
      sweep: 'racing', accuracy: 0.7, n: 10, differingPredictions: 2, worker: 'w-other', host: 'gpu-7', attempt: 2,
      executionProvider: 'cuda', weightDtype: 'float16', onnxruntimeVersion: '1.30.0', engineVersion: 'e1',
    });
  });

  it('an outcome repeating an example index stores it once', async () => {
    const o = outcome(3, 3);
    o.examples.push({ ...o.examples[1], prediction: 0 });
    await saveCellResult(db, { key: 'c-rep-idx', ...coords, outcome: o, worker: 'w', ...times });
    const ex = await cellExamples(db, 'c-rep-idx');
    expect(ex.map((e) => [e.index, e.prediction])).toEqual([[0, 0], [1, 0], [2, 0]]);
  });

  it('stores thousands of examples, non-finite scores included', async () => {
    const o = outcome(5000, 4000);
    o.examples[0].scores = [Number.NEGATIVE_INFINITY, -0.5, 0.125];
    const t0 = performance.now();
    await saveCellResult(db, { key: 'c-big', ...coords, outcome: o, worker: 'w', ...times });
    expect(performance.now() - t0).toBeLessThan(10_000);
    const ex = await cellExamples(db, 'c-big');
    expect(ex).toHaveLength(5000);
    expect(ex[0].scores).toEqual([Number.NEGATIVE_INFINITY, -0.5, 0.125]);
  });
});

describe('saveCellFailure', () => {
  const coords = { module: 'fc_in', layer: 0, ratio: 0.5, split: 'validation' as const };

  it('never overwrites a done cell', async () => {
    await saveCellResult(db, { key: 'f-done', ...coords, outcome: outcome(8, 6), worker: 'w1', attempt: 1, ...times });
    const changed = await saveCellFailure(db, { key: 'f-done', ...coords, error: 'boom', worker: 'w2' });
    expect(changed).toBe(false);
    expect(await markCellRunning(db, { key: 'f-done', ...coords, worker: 'w3' })).toBe(false);
    const c = await cellByKey(db, 'f-done');
    expect(c).toMatchObject({ status: 'done', accuracy: 0.75, error: null, worker: 'w1', attempts: 1 });
    expect(await count('examples', sql`cell_key = 'f-done'`)).toBe(8);
  });

  it('records failures with their attempt number, and a later success clears the error', async () => {
    expect(await markCellRunning(db, { key: 'f-new', ...coords, worker: 'w1', attempt: 1 })).toBe(true);
    expect((await cellByKey(db, 'f-new'))?.status).toBe('running');
    expect(await saveCellFailure(db, { key: 'f-new', ...coords, error: 'corrupt model.onnx\u0000', worker: 'w1', attempt: 1 })).toBe(true);
    expect(await saveCellFailure(db, { key: 'f-new', ...coords, error: 'corrupt model.onnx again', worker: 'w2', attempt: 2 })).toBe(true);
    expect(await count('cells', sql`key = 'f-new'`)).toBe(1);
    expect(await cellByKey(db, 'f-new')).toMatchObject({ status: 'failed', error: 'corrupt model.onnx again', attempts: 2, worker: 'w2' });
    expect(await findDoneCells(db, ['f-new'])).toEqual(new Set());
    expect(await saveCellResult(db, { key: 'f-new', ...coords, outcome: outcome(4, 4), worker: 'w3', attempt: 3, ...times })).toBe('stored');
    expect(await cellByKey(db, 'f-new')).toMatchObject({ status: 'done', error: null, attempts: 3, accuracy: 1 });
  });
});

describe('linkCells / findDoneCells / markReused', () => {
  it('handle 10,000 cells in batches of a few hundred, idempotently and fast', async () => {
    await claimSweep(db, { name: 'big', workflowId: 'wf', spec: spec([{ name: 'd', task: 'sst2' }]) });
    const all: SweepCellInput[] = Array.from({ length: 10_000 }, (_, i) => ({
      key: `big-${i}`,
      model: 'm',
      dataset: 'd',
      module: 'q_proj',
      layer: i % 12,
      ratio: (i % 100) / 100,
      split: 'test',
    }));
    const t0 = performance.now();
    for (let i = 0; i < all.length; i += 400) await linkCells(db, 'big', all.slice(i, i + 400));
    const linkMs = performance.now() - t0;
    for (let i = 0; i < all.length; i += 400) await linkCells(db, 'big', all.slice(i, i + 400)); // again: no new rows
    expect(await count('sweep_cells', sql`sweep = 'big'`)).toBe(10_000);
    expect(linkMs).toBeLessThan(20_000);

    // 1,000 of them done, 100 failed.
    await db.execute(sql`
      insert into cells (key, module, layer, ratio, split, status, accuracy, n)
      select 'big-' || g, 'q_proj', 0, 0.5, 'test', case when g < 1000 then 'done' else 'failed' end, 0.5, 10
      from generate_series(0, 1099) g`);
    const t1 = performance.now();
    let found = 0;
    for (let i = 0; i < all.length; i += 500) found += (await findDoneCells(db, all.slice(i, i + 500).map((c) => c.key))).size;
    expect(found).toBe(1000);
    expect(performance.now() - t1).toBeLessThan(10_000);
    const some = await findDoneCells(db, ['big-1', 'big-999', 'big-1000', 'big-5000', 'nope', 'big-1']);
    expect(some).toEqual(new Set(['big-1', 'big-999']));
    expect(await findDoneCells(db, [])).toEqual(new Set());

    expect(await markReused(db, 'big', ['big-1', 'big-2'])).toBe(2);
    expect(await markReused(db, 'big', ['big-1', 'big-2'])).toBe(0);
    expect(await sweepCounts(db, 'big')).toEqual({ total: 10_000, pending: 8900, running: 0, done: 1000, failed: 100, reused: 2 });
  });

  it('links a key given twice once, and needs the sweep to exist', async () => {
    await claimSweep(db, { name: 'dups', workflowId: 'wf', spec: spec([{ name: 'd', task: 'rte' }]) });
    const c = { key: 'dup-0', model: 'm', dataset: 'd', module: 'none', layer: 0, ratio: 0, split: 'test' as const };
    await linkCells(db, 'dups', [c, { ...c, module: 'q_proj', layer: 5 }]);
    const rows = await cellResults(db, 'dups');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ module: 'none', layer: 0, task: 'rte', status: 'pending', reused: false });
    await expect(linkCells(db, 'no-such-sweep', [c])).rejects.toThrow(/no-such-sweep/);
  });
});

describe('cell_results', () => {
  it('has the documented columns, in order', async () => {
    const r = await queryRows<{ column_name: string }>(db, 
      sql`select column_name from information_schema.columns where table_name = 'cell_results' order by ordinal_position`,
    );
    expect(r.map((x) => x.column_name)).toEqual([
      'sweep', 'model', 'dataset', 'task', 'module', 'layer', 'ratio', 'split', 'accuracy', 'accuracy_norm', 'n',
      'status', 'error', 'reused', 'seconds', 'forward_tokens', 'worker', 'cell_key', 'f1_macro', 'shots', 'seed',
      'host', 'execution_provider', 'weight_dtype', 'onnxruntime_version', 'engine_version', 'attempt',
    ]);
  });

  it('shows each sweep its own coordinates for a shared cell', async () => {
    await claimSweep(db, { name: 'one', workflowId: 'wf1', spec: spec([{ name: 'sst-small', task: 'sst2' }]) });
    await claimSweep(db, { name: 'two', workflowId: 'wf2', spec: spec([{ name: 'my-data', task: { template: '{x} {answer}', answers: { a: 'A', b: 'B' } } }]) });
    const shared = { key: 'shared-1', module: 'v_proj', layer: 2, ratio: 0.75, split: 'test' as const };
    await linkCells(db, 'one', [{ ...shared, model: 'gpt2-small', dataset: 'sst-small' }]);
    await linkCells(db, 'two', [{ ...shared, model: 'my-gpt2', dataset: 'my-data' }]);
    const how = { host: 'gpu-host', attempt: 1, executionProvider: 'cuda', weightDtype: 'float16', onnxruntimeVersion: '1.30.0', engineVersion: 'e2' };
    await saveCellResult(db, { ...shared, ...how, outcome: outcome(20, 15, { accuracyNorm: 0.7 }), worker: 'gpu-1', ...times });
    await markReused(db, 'two', ['shared-1']);

    const one = await cellResults(db, 'one');
    const two = await cellResults(db, 'two');
    expect(one).toEqual([
      {
        sweep: 'one', model: 'gpt2-small', dataset: 'sst-small', task: 'sst2', module: 'v_proj', layer: 2, ratio: 0.75, split: 'test',
        accuracy: 0.75, accuracyNorm: 0.7, n: 20, status: 'done', error: null, reused: false, seconds: 1.5, forwardTokens: 1020,
        worker: 'gpu-1', cellKey: 'shared-1', f1Macro: expect.closeTo(0.7494, 4), shots: 4, seed: 7,
        host: 'gpu-host', executionProvider: 'cuda', weightDtype: 'float16', onnxruntimeVersion: '1.30.0', engineVersion: 'e2', attempt: 1,
      },
    ]);
    expect(two).toHaveLength(1);
    expect(two[0]).toMatchObject({ sweep: 'two', model: 'my-gpt2', dataset: 'my-data', task: 'custom', reused: true, accuracy: 0.75 });
    // Exactly one cell row, two sweep rows.
    expect(await count('cells', sql`key = 'shared-1'`)).toBe(1);
  });

  it('shows failed cells with their error', async () => {
    await claimSweep(db, { name: 'fails', workflowId: 'wf', spec: spec([]) });
    const c = { key: 'bad-1', module: 'all', layer: -1, ratio: 0.5, split: 'test' as const };
    await linkCells(db, 'fails', [{ ...c, model: 'broken', dataset: 'd', task: 'cb' }]);
    await saveCellFailure(db, { ...c, error: 'EngineInputError: model.onnx is corrupt', worker: 'w' });
    const [row] = await cellResults(db, 'fails');
    expect(row).toMatchObject({ status: 'failed', error: 'EngineInputError: model.onnx is corrupt', accuracy: null, task: 'cb', layer: -1 });
  });
});

describe('cell_deltas', () => {
  it('computes delta against the ratio-0 cell of the same sweep, model, dataset and split', async () => {
    await claimSweep(db, { name: 'deltas', workflowId: 'wf', spec: spec([{ name: 'd1', task: 'sst2' }, { name: 'd2', task: 'rte' }]) });
    const link = (key: string, dataset: string, split: 'test' | 'validation', module: string, layer: number, ratio: number) => ({ key, model: 'm', dataset, module, layer, ratio, split });
    await linkCells(db, 'deltas', [
      link('base-d1-test', 'd1', 'test', 'none', 0, 0),
      link('p-d1-test-a', 'd1', 'test', 'q_proj', 1, 0.5),
      link('p-d1-test-b', 'd1', 'test', 'fc_in', -1, 0.99),
      link('base-d1-val', 'd1', 'validation', 'none', 0, 0),
      link('p-d1-val', 'd1', 'validation', 'q_proj', 1, 0.5),
      link('p-d2-test', 'd2', 'test', 'q_proj', 1, 0.5), // no baseline linked for d2
    ]);
    const save = (key: string, split: 'test' | 'validation', n: number, correct: number) =>
      saveCellResult(db, { key, module: 'q_proj', layer: 1, ratio: 0.5, split, outcome: outcome(n, correct), worker: 'w', ...times });
    await save('base-d1-test', 'test', 100, 60);
    await save('p-d1-test-a', 'test', 100, 65);
    await save('base-d1-val', 'validation', 100, 80);
    await save('p-d1-val', 'validation', 100, 70);
    await save('p-d2-test', 'test', 100, 50);
    // p-d1-test-b stays pending.

    const rows = await cellDeltaRows(db, 'deltas');
    const by = new Map(rows.map((r) => [r.cellKey, r]));
    expect(rows).toHaveLength(6);
    expect(by.get('p-d1-test-a')).toMatchObject({ baselineCellKey: 'base-d1-test', baselineAccuracy: 0.6, accuracy: 0.65 });
    expect(by.get('p-d1-test-a')!.delta).toBeCloseTo(0.05, 12);
    expect(by.get('base-d1-test')).toMatchObject({ delta: 0, baselineCellKey: 'base-d1-test' });
    expect(by.get('p-d1-val')).toMatchObject({ baselineCellKey: 'base-d1-val', baselineAccuracy: 0.8 });
    expect(by.get('p-d1-val')!.delta).toBeCloseTo(-0.1, 12);
    expect(by.get('p-d1-test-b')).toMatchObject({ status: 'pending', baselineAccuracy: 0.6, delta: null });
    expect(by.get('p-d2-test')).toMatchObject({ baselineCellKey: null, baselineAccuracy: null, delta: null });

    const cols = await queryRows<{ column_name: string }>(db, 
      sql`select column_name from information_schema.columns where table_name = 'cell_deltas' order by ordinal_position`,
    );
    expect(cols.map((c) => c.column_name).slice(-7)).toEqual(['baseline_cell_key', 'baseline_accuracy', 'delta', 'f1_macro', 'shots', 'seed', 'baseline_f1_macro']);
  });
});

describe('selections', () => {
  it('saveSelections is idempotent and selection_results joins test accuracies', async () => {
    await claimSweep(db, { name: 'sel', workflowId: 'wf', spec: spec([{ name: 'sst', task: 'sst2' }]) });
    await linkCells(db, 'sel', [
      { key: 'sel-val', model: 'm', dataset: 'sst', module: 'fc_out', layer: 7, ratio: 0.9, split: 'validation' },
      { key: 'sel-base', model: 'm', dataset: 'sst', module: 'none', layer: 0, ratio: 0, split: 'test' },
      { key: 'sel-test', model: 'm', dataset: 'sst', module: 'fc_out', layer: 7, ratio: 0.9, split: 'test' },
    ]);
    const base = { module: 'none', layer: 0, ratio: 0, split: 'test' as const };
    await saveCellResult(db, { key: 'sel-base', ...base, outcome: outcome(200, 150), worker: 'w', ...times });
    await saveCellResult(db, { key: 'sel-test', ...base, module: 'fc_out', layer: 7, ratio: 0.9, outcome: outcome(200, 160), worker: 'w', ...times });
    const row = {
      model: 'm', dataset: 'sst', module: 'fc_out', layer: 7, ratio: 0.9, validationAccuracy: 0.82,
      validationCellKey: 'sel-val', baselineCellKey: 'sel-base', selectedCellKey: 'sel-test',
    };
    await saveSelections(db, 'sel', [row]);
    await saveSelections(db, 'sel', [row, row]);
    expect(await count('selections', sql`sweep = 'sel'`)).toBe(1);
    const res = await selectionResults(db, 'sel');
    expect(res).toHaveLength(1);
    expect(res[0]).toMatchObject({
      sweep: 'sel', model: 'm', dataset: 'sst', task: 'sst2', module: 'fc_out', layer: 7, ratio: 0.9, validationAccuracy: 0.82,
      baselineCellKey: 'sel-base', baselineStatus: 'done', baselineAccuracy: 0.75, baselineN: 200,
      selectedCellKey: 'sel-test', selectedStatus: 'done', selectedAccuracy: 0.8, selectedN: 200,
    });
    expect(res[0].delta).toBeCloseTo(0.05, 12);

    // A changed pick replaces the row.
    await saveSelections(db, 'sel', [{ ...row, layer: 6, selectedCellKey: 'sel-missing' }]);
    const [changed] = await selectionResults(db, 'sel');
    expect(changed).toMatchObject({ layer: 6, selectedStatus: 'pending', selectedAccuracy: null, delta: null });
  });
});
