/**
 * Demonstration draws and the significant rule through the workflow, on the tiny GPT-2 fixture with a
 * real Temporal server, Postgres and ONNX Runtime: every grid point under three seeds (each its own
 * stored cell, recording its seed), the significant rule's pick recomputed here from the stored
 * examples, the pick and the unpruned model on test under every draw, the draws in selection_draws,
 * selection_results and cell_draw_summaries over the draws, the report; then the paper's rule on the
 * same grid reusing every validation cell.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellDeltaRows, cellDrawSummaryRows, cellExamples, cellResults, selectionDrawRows, selectionResults, type Db } from '../../db/queries.ts';
import { selectCells, type ValidationResult } from '../../analysis/selection.ts';
import { summarizeDraws } from '../../analysis/draws.ts';
import { checkSpec } from '../../sweepspec/schema.ts';
import { baselineCell, pickDraws, type PreparedSweep } from '../../sweepspec/cells.ts';
import { runReport } from '../../cli/report.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import type { ModuleName } from '../../engine/vocabulary.ts';
import { MODELS, SST2, rows, setupSuite, type Suite } from './helpers.ts';

let suite: Suite;

beforeAll(async () => {
  suite = await setupSuite('draws', { worker: { concurrency: 2 } });
});

afterAll(async () => {
  await suite?.teardown();
});

const SEEDS = [5, 6, 7];
const spec = (name: string, selection: unknown) => ({
  name,
  models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
  datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
  modules: ['fc_in'],
  layers: [0, 2],
  ratios: [0, 0.5, 0.95],
  shots: 2,
  seed: SEEDS[0],
  demoSeeds: SEEDS.length,
  sizes: { validationPerClass: 4, testPerClass: 4 },
  selection,
  maxInFlight: 4,
});

/** The sweep's validation results with each cell's pairing against its draw's unpruned cell, counted here from the examples. */
async function validationResults(db: Db, sweep: string, seedOf: Map<string, number>, baselineOf: (seed: number) => string): Promise<ValidationResult[]> {
  const out: ValidationResult[] = [];
  for (const r of (await cellResults(db, sweep)).filter((x) => x.split === 'validation')) {
    const seed = seedOf.get(r.cellKey)!;
    let paired: ValidationResult['paired'];
    if (r.ratio !== 0) {
      const base = new Map((await cellExamples(db, baselineOf(seed))).map((e) => [e.index, e]));
      paired = { n: 0, b: 0, c: 0 };
      for (const e of await cellExamples(db, r.cellKey)) {
        const b = base.get(e.index)!;
        expect(b.label).toBe(e.label);
        paired.n++;
        if (b.prediction === b.label && e.prediction !== e.label) paired.b++;
        if (b.prediction !== b.label && e.prediction === e.label) paired.c++;
      }
    }
    out.push({ model: r.model, dataset: r.dataset, module: r.module as ModuleName, layer: r.layer, ratio: r.ratio, accuracy: r.accuracy!, cellKey: r.cellKey, seed, paired });
  }
  return out;
}

describe('demonstration draws', () => {
  it('evaluates every cell under every draw, picks with the significant rule, tests the pick under every draw', async () => {
    const selection = { rule: 'significant', level: 0.9, correction: 'none' };
    const input = spec('draws-significant', selection);
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-sig`, args: [input] });
    const r = (await handle.result()) as SweepResult;
    const db = suite.db.db;

    // The grid: (1 unpruned + 2 layers x 2 ratios) x 3 draws, each cell done with its draw's seed.
    const cells = await rows<{ key: string; seed: number; ratio: number; status: string }>(db, `select c.key, c.seed, c.ratio, c.status from cells c join sweep_cells s on s.cell_key = c.key where s.sweep = 'draws-significant' and s.split = 'validation'`);
    expect(cells).toHaveLength(5 * 3);
    expect(cells.every((c) => c.status === 'done')).toBe(true);
    const bySeed = new Map(SEEDS.map((s) => [s, cells.filter((c) => c.seed === s).length]));
    expect([...bySeed.values()]).toEqual([5, 5, 5]);

    // The pick, recomputed from the stored examples with the pure rule.
    const checked = checkSpec(input);
    if (!checked.ok) throw new Error(checked.problems.join('\n'));
    const [ids] = await rows<{ engine_version: string; model_fingerprint: string; dataset_fingerprint: string }>(
      db,
      `select engine_version, model_fingerprint, dataset_fingerprint from cells where key = '${cells[0].key}'`,
    );
    const prepared: PreparedSweep = {
      engineVersion: ids.engine_version,
      models: [{ name: 'gpt2-tiny', fingerprint: ids.model_fingerprint, numLayers: 3, family: 'gpt2', modules: ['fc_in'], weightDtype: 'float32' }],
      datasets: [{ name: 'sst2-tiny', fingerprint: ids.dataset_fingerprint, defaultSeed: 49 }],
    };
    const seedOf = new Map(cells.map((c) => [c.key, c.seed]));
    const results = await validationResults(db, 'draws-significant', seedOf, (seed) => baselineCell(checked.spec, prepared, 'gpt2-tiny', 'sst2-tiny', 'validation', seed).key);
    const [expected] = selectCells(results, { rule: 'significant', level: 0.9, correction: 'none' });
    expect(r.selections).toHaveLength(1);
    const pick = r.selections![0];
    // A level this permissive lets a pruned cell through on the random fixture: its test cells differ from the unpruned ones.
    expect(pick.ratio).toBeGreaterThan(0);
    expect(pick).toMatchObject({ module: expected.module, layer: expected.layer, ratio: expected.ratio, draws: 3, candidates: 4, significant: expected.significant });
    expect(pick.validationAccuracy).toBeCloseTo(expected.validationAccuracy, 12);
    expect(pick.gain!.pValue).toBeCloseTo(expected.gain!.pValue, 12);
    expect(pick.bestPruned?.gain?.pValue).toBeCloseTo(expected.bestPruned!.gain!.pValue, 12);

    // Test: the unpruned model and the pick under every draw, in selection_draws with their seeds.
    const draws = pickDraws(checked.spec, prepared, pick);
    const stored = await selectionDrawRows(db, 'draws-significant');
    expect(stored.map((d) => [d.draw, d.seed, d.validationCellKey, d.baselineCellKey, d.selectedCellKey])).toEqual(
      draws.map((d, i) => [i, SEEDS[i], d.validation.key, d.baseline.key, d.selected.key]),
    );
    const testCells = new Set(draws.flatMap((d) => [d.baseline.key, d.selected.key]));
    expect(r).toMatchObject({ total: 15 + testCells.size, done: 15 + testCells.size, failed: 0 });
    const accuracy = new Map((await cellResults(db, 'draws-significant')).map((x) => [x.cellKey, x.accuracy!]));
    const mean = (keys: string[]) => keys.reduce((s, k) => s + accuracy.get(k)!, 0) / keys.length;
    const [sel] = await selectionResults(db, 'draws-significant');
    expect(sel).toMatchObject({ rule: 'significant', level: 0.9, correction: 'none', draws: 3, testDrawsDone: 3, baselineStatus: 'done', selectedStatus: 'done' });
    expect(sel.baselineAccuracy).toBeCloseTo(mean(draws.map((d) => d.baseline.key)), 12);
    expect(sel.selectedAccuracy).toBeCloseTo(mean(draws.map((d) => d.selected.key)), 12);

    // cell_draw_summaries: each validation point over its three draws, as summarizeDraws computes it.
    const points = (await cellDrawSummaryRows(db, 'draws-significant')).filter((p) => p.split === 'validation');
    expect(points).toHaveLength(5);
    for (const p of points) {
      const own = results.filter((x) => x.module === p.module && x.layer === p.layer && x.ratio === p.ratio);
      const s = summarizeDraws(own.map((x) => ({ accuracy: x.accuracy, n: 8 })));
      expect(p).toMatchObject({ draws: 3, drawsDone: 3, n: 24, seeds: SEEDS });
      expect(p.meanAccuracy).toBeCloseTo(s.mean, 12);
      expect(p.sdAccuracy).toBeCloseTo(s.sd!, 12);
      expect(p.ciLower).toBeCloseTo(s.lower, 12);
      expect(p.ciUpper).toBeCloseTo(s.upper, 12);
    }

    // cell_deltas pairs each cell with the unpruned cell of its own draw.
    for (const d of await cellDeltaRows(db, 'draws-significant')) {
      if (d.split !== 'validation') continue;
      expect(d.baselineCellKey).toBe(baselineCell(checked.spec, prepared, 'gpt2-tiny', 'sst2-tiny', 'validation', seedOf.get(d.cellKey)).key);
    }

    // The report states the rule, the draws and the paired test across them.
    let out = '';
    expect(await runReport(['draws-significant', '--json', '--no-svg', '--no-csv'], { out: (t) => (out += t), err: () => {}, db })).toBe(0);
    const report = JSON.parse(out);
    expect(report.selections[0]).toMatchObject({ rule: { rule: 'significant', level: 0.9, correction: 'none' }, draws: 3, test: { paired: { draws: 3, test: 'draws-t' } } });
    expect(report.points.find((p: { ratio: number; split: string }) => p.ratio === 0 && p.split === 'validation')).toMatchObject({ draws: 3, done: 3, n: 24 });
    let text = '';
    const dir = path.join(suite.tmp, 'report');
    expect(await runReport(['draws-significant', '--out', dir, '--no-svg'], { out: (t) => (text += t), err: () => {}, db })).toBe(0);
    expect(text).toContain('Demonstration draws: how far accuracy moves with the demonstrations drawn');
    expect(text).toContain('mean accuracy over 3 demonstration draws: sweep draws-significant, model gpt2-tiny, dataset sst2-tiny, module fc_in, split validation');
    const csv = (await readFile(path.join(dir, 'draws.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('model,dataset,module,layer,ratio,split,status,draws,done,mean,sd,min,max,ci_lower,ci_upper,n,seeds');
    expect(csv.filter((l) => l.includes(',validation,'))).toHaveLength(5);
    // The unpruned point as the view has it: mean, sd, min, max, interval.
    const unpruned = points.find((p) => p.ratio === 0)!;
    const fields = csv.find((l) => l.startsWith('gpt2-tiny,sst2-tiny,none,0,0,validation,done,3,3,'))!.split(',').slice(9, 15).map(Number);
    const stats = [unpruned.meanAccuracy, unpruned.sdAccuracy, unpruned.minAccuracy, unpruned.maxAccuracy, unpruned.ciLower, unpruned.ciUpper];
    fields.forEach((v, i) => expect(v).toBeCloseTo(stats[i]!, 7));
  });

  it("the paper's rule on the same grid reuses every validation cell", async () => {
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-paper`, args: [spec('draws-paper', true)] });
    const r = (await handle.result()) as SweepResult;
    const validation = (await cellResults(suite.db.db, 'draws-paper')).filter((x) => x.split === 'validation');
    expect(validation).toHaveLength(15);
    expect(validation.every((x) => x.reused)).toBe(true);
    expect(r.selections![0]).toMatchObject({ rule: { rule: 'paper' }, draws: 3 });
    expect(await selectionDrawRows(suite.db.db, 'draws-paper')).toHaveLength(3);
  });
});
