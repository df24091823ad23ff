/**
 * The database over demonstration draws on both drivers (Postgres of DATABASE_URL, embedded PGlite):
 * paired example counts (db/draws.ts), cell_draw_summaries against analysis/draws.ts, and
 * selection_results over a pick's draws.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CellOutcome } from '../../engine/types.ts';
import { cellDrawSummaryRows, claimSweep, createDb, linkCells, migrate, pairedCounts, saveCellResult, saveSelections, selectionResults, type Db } from '../../db/queries.ts';
import { summarizeDraws } from '../../analysis/draws.ts';
import { createTestDatabase } from '../support/database.ts';

/** n examples (labels alternate 0/1) starting at row `from`; those `correct` selects are predicted right. */
function outcome(n: number, seed: number, correct: (i: number) => boolean, from = 0): CellOutcome {
  const examples = Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const label = i % 2;
    return { index: i, label, prediction: correct(i) ? label : 1 - label, scores: [0, 0] };
  });
  const right = examples.filter((e) => e.prediction === e.label).length;
  return {
    accuracy: right / n,
    accuracyNorm: null,
    f1Macro: null,
    n,
    examples,
    sample: { shots: 2, seed, demonstrations: { split: 'train', rows: [0, 1], labels: [0, 1] }, examplesSplit: 'train' },
    cost: { forwardTokens: 1, promptTokens: 1, demoTokens: 1, seconds: 1, svdSeconds: 0, decompositionCacheHits: 0, decompositionCacheMisses: 0, modelLoadSeconds: 0 },
    runtime: { executionProvider: 'cpu', weightDtype: 'float32', onnxruntime: '1.30.0' },
  };
}

const times = { startedAt: new Date('2026-01-01T00:00:00Z'), finishedAt: new Date('2026-01-01T00:00:01Z') };
const SWEEP = 'draws';
/** Per draw (seed): the unpruned cell right on `base` of 20, the pruned cell (mlp 1 0.5) on `pruned`. */
const DRAWS = [
  { seed: 1, base: (i: number) => i < 12, pruned: (i: number) => i >= 2 && i < 16 }, // b = 2, c = 4
  { seed: 2, base: (i: number) => i < 10, pruned: (i: number) => i < 10 || i === 19 }, // b = 0, c = 1
  { seed: 3, base: (i: number) => i % 4 !== 0, pruned: (i: number) => i % 5 !== 0 }, // b = 3 (5, 10, 15), c = 4 (4, 8, 12, 16)
];

async function fill(db: Db): Promise<void> {
  await claimSweep(db, { name: SWEEP, workflowId: 'wf', spec: { name: SWEEP } });
  for (const d of DRAWS) {
    const cells = [
      { key: `base-${d.seed}`, module: 'none', layer: 0, ratio: 0, out: outcome(20, d.seed, d.base) },
      { key: `pruned-${d.seed}`, module: 'mlp', layer: 1, ratio: 0.5, out: outcome(20, d.seed, d.pruned) },
    ];
    await linkCells(db, SWEEP, cells.map((c) => ({ key: c.key, model: 'm', dataset: 'd', module: c.module, layer: c.layer, ratio: c.ratio, split: 'validation' })));
    for (const c of cells) await saveCellResult(db, { key: c.key, module: c.module, layer: c.layer, ratio: c.ratio, split: 'validation', outcome: c.out, worker: 'w', ...times });
  }
  // A cell on other examples (rows 10..29): only rows 10..19 pair with base-1.
  await saveCellResult(db, { key: 'shifted', module: 'mlp', layer: 0, ratio: 0.9, split: 'validation', outcome: outcome(20, 1, () => true, 10), worker: 'w', ...times });
}

const drivers: Array<[string, () => Promise<{ db: Db; close(): Promise<void> }>]> = [
  ['Postgres (DATABASE_URL)', async () => {
    const t = await createTestDatabase({ prefix: 'icl_draws' });
    return { db: t.db, close: () => t.drop() };
  }],
  ['PGlite', async () => {
    const db = await createDb('memory://');
    await migrate(db);
    return { db, close: () => db.close() };
  }],
];

describe.each(drivers)('demonstration draws on %s', (_name, open) => {
  let handle: { db: Db; close(): Promise<void> };
  beforeAll(async () => {
    handle = await open();
    await fill(handle.db);
  });
  afterAll(async () => handle?.close());

  it('pairedCounts: the discordant pairs of two cells on their shared examples, and what does not pair', async () => {
    const counts = await pairedCounts(handle.db, [
      ...DRAWS.map((d) => ({ cellKey: `pruned-${d.seed}`, baselineKey: `base-${d.seed}` })),
      { cellKey: 'shifted', baselineKey: 'base-1' },
      { cellKey: 'missing', baselineKey: 'base-1' },
    ]);
    const count = (cell: (i: number) => boolean, base: (i: number) => boolean) => {
      let b = 0;
      let c = 0;
      for (let i = 0; i < 20; i++) {
        if (base(i) && !cell(i)) b++;
        if (!base(i) && cell(i)) c++;
      }
      return { n: 20, b, c, unmatched: 0 };
    };
    for (const d of DRAWS) expect(counts.get(`pruned-${d.seed} base-${d.seed}`)).toEqual(count(d.pruned, d.base));
    expect(counts.get('pruned-1 base-1')).toEqual({ n: 20, b: 2, c: 4, unmatched: 0 });
    // rows 10..19 pair (base-1 right on 10, 11 only); 0..9 and 20..29 have no partner.
    expect(counts.get('shifted base-1')).toEqual({ n: 10, b: 0, c: 8, unmatched: 20 });
    // Half a pair missing: every row of the other cell unmatched.
    expect(counts.get('missing base-1')).toEqual({ n: 0, b: 0, c: 0, unmatched: 20 });
  });

  it('cell_draw_summaries: mean, spread and interval over the draws as analysis/draws.ts computes them', async () => {
    const rows = await cellDrawSummaryRows(handle.db, SWEEP);
    expect(rows.map((r) => `${r.module}/${r.layer}/${r.ratio}`)).toEqual(['mlp/1/0.5', 'none/0/0']);
    for (const [row, rightOf] of [
      [rows[0], (d: (typeof DRAWS)[number]) => d.pruned],
      [rows[1], (d: (typeof DRAWS)[number]) => d.base],
    ] as const) {
      const accuracies = DRAWS.map((d) => Array.from({ length: 20 }, (_, i) => rightOf(d)(i)).filter(Boolean).length / 20);
      const s = summarizeDraws(accuracies.map((accuracy) => ({ accuracy, n: 20 })));
      expect(row).toMatchObject({ draws: 3, drawsDone: 3, n: 60, seeds: [1, 2, 3], minAccuracy: s.min, maxAccuracy: s.max });
      expect(row.meanAccuracy).toBeCloseTo(s.mean, 12);
      expect(row.sdAccuracy).toBeCloseTo(s.sd!, 12);
      expect(row.ciLower).toBeCloseTo(s.lower, 7);
      expect(row.ciUpper).toBeCloseTo(s.upper, 7);
    }
    // The change against the unpruned cell of the same draw, averaged.
    expect(rows[0].meanDelta).toBeCloseTo(rows[0].meanAccuracy! - rows[1].meanAccuracy!, 12);
  });

  it('selection_results: test accuracies are means over the pick’s draws, n their sum, done once every draw is', async () => {
    await saveSelections(handle.db, SWEEP, [
      {
        model: 'm', dataset: 'd', module: 'mlp', layer: 1, ratio: 0.5, validationAccuracy: 0.6, validationCellKey: 'pruned-1',
        baselineCellKey: 'base-1', selectedCellKey: 'pruned-1',
        rule: { rule: 'significant', level: 0.05, correction: 'holm' },
        gain: { gain: 0.05, lower: -0.1, upper: 0.2, pValue: 0.4 },
        drawCells: DRAWS.map((d) => ({ seed: d.seed, validationCellKey: `pruned-${d.seed}`, baselineCellKey: `base-${d.seed}`, selectedCellKey: `pruned-${d.seed}` })),
      },
    ]);
    const [s] = await selectionResults(handle.db, SWEEP);
    const mean = (f: (d: (typeof DRAWS)[number]) => (i: number) => boolean) => DRAWS.reduce((t, d) => t + Array.from({ length: 20 }, (_, i) => f(d)(i)).filter(Boolean).length / 20, 0) / 3;
    expect(s).toMatchObject({ rule: 'significant', level: 0.05, correction: 'holm', draws: 3, testDrawsDone: 3, baselineStatus: 'done', selectedStatus: 'done', baselineN: 60, selectedN: 60, validationGainP: 0.4 });
    expect(s.baselineAccuracy).toBeCloseTo(mean((d) => d.base), 12);
    expect(s.selectedAccuracy).toBeCloseTo(mean((d) => d.pruned), 12);
    // Saved again with one draw: the other draws' rows go, and the values are that draw's.
    await saveSelections(handle.db, SWEEP, [{ model: 'm', dataset: 'd', module: 'mlp', layer: 1, ratio: 0.5, validationAccuracy: 0.6, validationCellKey: 'pruned-1', baselineCellKey: 'base-1', selectedCellKey: 'pruned-1' }]);
    const [one] = await selectionResults(handle.db, SWEEP);
    expect(one).toMatchObject({ rule: 'paper', draws: 1, testDrawsDone: 1, baselineAccuracy: 0.6, baselineN: 20 });
  });
});
