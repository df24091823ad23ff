/**
 * `report` end to end on a database holding hand-inserted results (through db/queries.ts): the real
 * Postgres of DATABASE_URL (a fresh database for this file; fails when the server is missing), and
 * the embedded PGlite driver.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CellOutcome } from '../../engine/types.ts';
import { createDb, linkCells, migrate, saveCellResult, saveSelections, claimSweep, type Db } from '../../db/queries.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { runReport } from '../../cli/report.ts';
import { elements, parseXml, textOf } from './xml.ts';
import { macroF1 } from '../../engine/tasks/scoring.ts';

const SWEEP = 'report-sweep';

/** n examples (labels alternate 0/1); the ones whose index is in `correct` are predicted right. */
function outcome(n: number, correct: (i: number) => boolean): CellOutcome {
  const examples = Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const prediction = correct(i) ? label : 1 - label;
    return { index: i, label, prediction, scores: [0, 0] };
  });
  const right = examples.filter((e) => e.prediction === e.label).length;
  return {
    accuracy: right / n,
    accuracyNorm: null,
    f1Macro: macroF1(examples, 2),
    n,
    examples,
    sample: { shots: 2, seed: 1, demonstrations: { split: 'train', rows: [0, 1], labels: [0, 1] }, examplesSplit: 'test' },
    cost: { forwardTokens: 1, promptTokens: 1, demoTokens: 1, seconds: 1, svdSeconds: 0, decompositionCacheHits: 0, decompositionCacheMisses: 0, modelLoadSeconds: 0 },
    runtime: { executionProvider: 'cpu', weightDtype: 'float32', onnxruntime: '1.30.0' },
  };
}

const times = { startedAt: new Date('2026-01-01T00:00:00Z'), finishedAt: new Date('2026-01-01T00:00:02Z') };

type Split = 'validation' | 'test';
interface Hand {
  key: string;
  dataset: string;
  module: string;
  layer: number;
  ratio: number;
  split: Split;
  out: CellOutcome;
}

/**
 * Model "tiny", datasets cb and sst (spec order), module mlp, layers 0 and 1, ratios 0, 0.5, 0.9.
 * cb: validation picks mlp / layer 1 / ratio 0.5 (0.95); on test (20 examples) the unpruned model is
 * right on 0..9 (10/20), the selected cell on 1..18 (18/20): b = 1 (example 0), c = 9 (10..18), so
 * the exact McNemar p = 2 * 11/1024 = 0.021484375. Macro-F1 (labels alternate 0/1): 0.5 -> 0.9 (each class
 * 10/20 -> 18/20); sst's unpruned test cell (7/10 right): (8/11 + 6/9) / 2 = 0.697.
 * sst: nothing beats the unpruned model on validation; the selection is the unpruned cell itself.
 */
const CELLS: Hand[] = [
  { key: 'v-base-cb', dataset: 'cb', module: 'none', layer: 0, ratio: 0, split: 'validation', out: outcome(20, (i) => i < 12) }, // 0.6
  { key: 'v-cb-0-05', dataset: 'cb', module: 'mlp', layer: 0, ratio: 0.5, split: 'validation', out: outcome(20, (i) => i < 13) }, // 0.65
  { key: 'v-cb-0-09', dataset: 'cb', module: 'mlp', layer: 0, ratio: 0.9, split: 'validation', out: outcome(20, (i) => i < 11) }, // 0.55
  { key: 'v-cb-1-05', dataset: 'cb', module: 'mlp', layer: 1, ratio: 0.5, split: 'validation', out: outcome(20, (i) => i < 19) }, // 0.95
  { key: 'v-cb-1-09', dataset: 'cb', module: 'mlp', layer: 1, ratio: 0.9, split: 'validation', out: outcome(20, (i) => i < 12) }, // 0.6
  { key: 't-base-cb', dataset: 'cb', module: 'none', layer: 0, ratio: 0, split: 'test', out: outcome(20, (i) => i < 10) }, // 0.5
  { key: 't-cb-1-05', dataset: 'cb', module: 'mlp', layer: 1, ratio: 0.5, split: 'test', out: outcome(20, (i) => i >= 1 && i <= 18) }, // 0.9
  { key: 'v-base-sst', dataset: 'sst', module: 'none', layer: 0, ratio: 0, split: 'validation', out: outcome(10, (i) => i < 8) }, // 0.8
  { key: 'v-sst-0-05', dataset: 'sst', module: 'mlp', layer: 0, ratio: 0.5, split: 'validation', out: outcome(20, (i) => i < 15) }, // 0.75
  { key: 't-base-sst', dataset: 'sst', module: 'none', layer: 0, ratio: 0, split: 'test', out: outcome(10, (i) => i < 7) }, // 0.7
];

async function fill(db: Db): Promise<void> {
  await claimSweep(db, {
    name: SWEEP,
    workflowId: 'wf-1',
    spec: {
      name: SWEEP,
      models: [{ name: 'tiny', path: '/models/tiny' }],
      // Spec order (cb before sst) is not alphabetical on purpose for the other sweep below.
      datasets: [
        { name: 'cb', task: 'cb', path: '/data/cb' },
        { name: 'sst', task: 'sst2', path: '/data/sst' },
      ],
      selection: true,
    },
  });
  await linkCells(
    db,
    SWEEP,
    CELLS.map((c) => ({ key: c.key, model: 'tiny', dataset: c.dataset, module: c.module, layer: c.layer, ratio: c.ratio, split: c.split })),
  );
  for (const c of CELLS) {
    await saveCellResult(db, { key: c.key, module: c.module, layer: c.layer, ratio: c.ratio, split: c.split, outcome: c.out, worker: 'w', ...times });
  }
  await saveSelections(db, SWEEP, [
    { model: 'tiny', dataset: 'cb', module: 'mlp', layer: 1, ratio: 0.5, validationAccuracy: 0.95, validationCellKey: 'v-cb-1-05', baselineCellKey: 't-base-cb', selectedCellKey: 't-cb-1-05' },
    { model: 'tiny', dataset: 'sst', module: 'none', layer: 0, ratio: 0, validationAccuracy: 0.8, validationCellKey: 'v-base-sst', baselineCellKey: 't-base-sst', selectedCellKey: 't-base-sst' },
  ]);
  // A second sweep sharing cells, with no selections: its report must not mix with the first.
  await claimSweep(db, { name: 'other', workflowId: 'wf-2', spec: { name: 'other', models: [{ name: 'tiny' }], datasets: [{ name: 'cb' }] } });
  await linkCells(db, 'other', [{ key: 'v-cb-0-05', model: 'tiny', dataset: 'cb', task: 'cb', module: 'mlp', layer: 0, ratio: 0.5, split: 'validation' }]);
}

/** Wilson bounds by the textbook formula, z = 1.959963984540054. */
function wilson(k: number, n: number): [string, string] {
  const z = 1.959963984540054;
  const p = k / n;
  const root = z * Math.sqrt(z * z + 4 * n * p * (1 - p));
  const lo = k === 0 ? 0 : (2 * n * p + z * z - root) / (2 * (n + z * z));
  const hi = k === n ? 1 : (2 * n * p + z * z + root) / (2 * (n + z * z));
  return [lo.toFixed(3), hi.toFixed(3)];
}

async function run(db: Db, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runReport(args, { out: (t) => (out += t), err: (t) => (err += t), db });
  return { code, out, err };
}

const drivers: Array<[string, () => Promise<{ db: Db; close(): Promise<void> }>]> = [
  [
    'Postgres (DATABASE_URL)',
    async () => {
      const t: TestDatabase = await createTestDatabase({ prefix: 'icl_selection' });
      return { db: t.db, close: () => t.drop() };
    },
  ],
  [
    'PGlite',
    async () => {
      const db = await createDb('memory://');
      await migrate(db);
      return { db, close: () => db.close() };
    },
  ],
];

describe.each(drivers)('report on %s', (_name, open) => {
  let handle: { db: Db; close(): Promise<void> };
  let dir: string;

  beforeAll(async () => {
    handle = await open();
    await fill(handle.db);
    dir = await mkdtemp(path.join(os.tmpdir(), 'icl-report-'));
  });

  afterAll(async () => {
    await handle?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints the paper-shaped table with intervals, the McNemar p-value and the gap', async () => {
    const { code, out, err } = await run(handle.db, [SWEEP, '--out', dir]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.split('\n');
    const header = lines.find((l) => l.startsWith('task'))!;
    expect(header).toMatch(
      /task\s+model\s+rule\s+module\s+layer\s+ratio\s+draws\s+val acc\s+val gain \[95% CI\] p\s+test acc before -> after\s+95% CI before\s+95% CI after\s+95% CI change\s+test macro-F1 before -> after\s+test p\s+b\/c\s+val-test gap\s+n/,
    );

    const cb = lines.find((l) => l.startsWith('cb '))!;
    const [b0, b1] = wilson(10, 20);
    const [s0, s1] = wilson(18, 20);
    // The change's interval (one draw): 0.4 +- z * sqrt((10/20 - 0.4^2) / 20).
    const half = 1.959963984540054 * Math.sqrt((10 / 20 - 0.16) / 20);
    const change = `[+${(0.4 - half).toFixed(3)}, +${(0.4 + half).toFixed(3)}]`;
    expect(change).toBe('[+0.144, +0.656]');
    expect(cb.split(/\s{2,}/)).toEqual(['cb', 'tiny', 'paper', 'mlp', '1', '0.5', '1', '0.950', '-', '0.500 -> 0.900 (+0.400)', `[${b0}, ${b1}]`, `[${s0}, ${s1}]`, change, '0.500 -> 0.900', '0.02148', '1/9', '+0.050', '20']);
    expect([b0, b1, s0, s1]).toEqual(['0.299', '0.701', '0.699', '0.972']);

    const sst = lines.find((l) => l.startsWith('sst2 '))!;
    const [t0, t1] = wilson(7, 10);
    expect(sst.split(/\s{2,}/)).toEqual(['sst2', 'tiny', 'paper', 'none', '0', '0', '1', '0.800', '-', '0.700 -> 0.700 (±0.000)', `[${t0}, ${t1}]`, `[${t0}, ${t1}]`, '[±0.000, ±0.000]', '0.697 -> 0.697', '1', '0/0', '+0.100', '10']);
    // cb (spec order) before sst2.
    expect(lines.indexOf(cb)).toBeLessThan(lines.indexOf(sst));
  });

  it('prints every surface as a text table and writes each as a well-formed SVG with every value', async () => {
    const { code, out } = await run(handle.db, [SWEEP, '--out', dir]);
    expect(code).toBe(0);
    const titles = out.split('\n').filter((l) => l.startsWith('accuracy: '));
    expect(titles).toEqual([
      `accuracy: sweep ${SWEEP}, model tiny, dataset cb, module mlp, split validation`,
      `accuracy: sweep ${SWEEP}, model tiny, dataset cb, module mlp, split test`,
      `accuracy: sweep ${SWEEP}, model tiny, dataset sst, module mlp, split validation`,
      `accuracy: sweep ${SWEEP}, model tiny, dataset sst, module none, split test`,
    ]);
    // The cb validation surface: the unpruned 0.600 fills ratio 0 of both layers.
    const start = out.indexOf(titles[0]);
    const table = out.slice(start, out.indexOf('(* best)', start)).split('\n');
    expect(table[1].split(/\s+/)).toEqual(['layer', '\\', 'ratio', '0', '0.5', '0.9']);
    expect(table[2].split(/\s+/)).toEqual(['0', '0.600', '0.650', '0.550']);
    expect(table[3].split(/\s+/)).toEqual(['1', '0.600', '0.950*', '0.600']);

    const all = (await readdir(dir)).sort();
    const stems = ['tiny__cb__mlp__test', 'tiny__cb__mlp__validation', 'tiny__sst__mlp__validation', 'tiny__sst__none__test'];
    expect(all).toEqual(stems.flatMap((s) => [`${s}.csv`, `${s}.svg`, `${s}__lines.svg`]).sort());
    const files = stems.map((s) => `${s}.svg`);
    const expected: Record<string, string[]> = {
      'tiny__cb__mlp__validation.svg': ['0.600', '0.650', '0.550', '0.950'],
      'tiny__cb__mlp__test.svg': ['0.500', '0.900'],
      'tiny__sst__mlp__validation.svg': ['0.800', '0.750'],
      'tiny__sst__none__test.svg': ['0.700'],
    };
    for (const f of files) {
      const svg = await readFile(path.join(dir, f), 'utf8');
      const root = parseXml(svg);
      expect(root.name).toBe('svg');
      const cells = elements(root).filter((e) => e.attributes['data-layer'] !== undefined);
      const texts = cells.map(textOf);
      for (const v of expected[f]) expect(texts.some((t) => t.endsWith(v)), `${f} holds ${v}`).toBe(true);
    }
    expect(out).toContain(`Surfaces written (12 files: heatmaps, accuracy-vs-ratio lines, CSV):`);

    // The line plot of the cb validation surface: a line per layer through its three ratios, the unpruned 0.6 dashed across.
    const lines = parseXml(await readFile(path.join(dir, 'tiny__cb__mlp__validation__lines.svg'), 'utf8'));
    const layers = elements(lines).filter((e) => e.attributes.class === 'layer');
    expect(layers.map((g) => g.attributes['data-layer'])).toEqual(['0', '1']);
    const points = (g: (typeof layers)[number]) => elements(g).filter((e) => e.name === 'circle').map(textOf);
    expect(points(layers[1])).toEqual(['layer 1, ratio 0: 0.6 (n=20)', 'layer 1, ratio 0.5: 0.95 (n=20)', 'layer 1, ratio 0.9: 0.6 (n=20)']);
    const polyline = elements(layers[1]).find((e) => e.name === 'polyline')!;
    const ys = polyline.attributes.points.split(' ').map((p) => Number(p.split(',')[1]));
    expect(ys[1]).toBeLessThan(ys[0]); // 0.95 is drawn above 0.6
    expect(ys[2]).toBe(ys[0]);
    const unpruned = elements(lines).find((e) => e.attributes.class === 'unpruned')!;
    expect(Number(unpruned.attributes.y1)).toBe(ys[0]);
    expect(textOf(lines)).toContain('unpruned 0.600');

    // The CSV of the same surface: every (layer, ratio) with its value, status and n.
    const csv = (await readFile(path.join(dir, 'tiny__cb__mlp__validation.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('model,dataset,module,split,layer,ratio,accuracy,status,n');
    expect(csv.slice(1)).toEqual([
      'tiny,cb,mlp,validation,0,0,0.6,done,20',
      'tiny,cb,mlp,validation,0,0.5,0.65,done,20',
      'tiny,cb,mlp,validation,0,0.9,0.55,done,20',
      'tiny,cb,mlp,validation,1,0,0.6,done,20',
      'tiny,cb,mlp,validation,1,0.5,0.95,done,20',
      'tiny,cb,mlp,validation,1,0.9,0.6,done,20',
    ]);
  });

  it('--json gives the same numbers to scripts', async () => {
    const { code, out } = await run(handle.db, [SWEEP, '--json', '--no-svg', '--no-csv', '--bootstrap', '500', '--seed', '3']);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.sweep).toBe(SWEEP);
    expect(report.confidence).toBe(0.95);
    expect(report.selections).toHaveLength(2);
    const [cb, sst] = report.selections;
    expect(cb).toMatchObject({ task: 'cb', model: 'tiny', dataset: 'cb', module: 'mlp', layer: 1, ratio: 0.5, validation: { accuracy: 0.95, cellKey: 'v-cb-1-05' } });
    expect(cb.test.baseline).toMatchObject({ cellKey: 't-base-cb', status: 'done', accuracy: 0.5, correct: 10, n: 20 });
    expect(cb.test.selected).toMatchObject({ cellKey: 't-cb-1-05', status: 'done', accuracy: 0.9, correct: 18, n: 20 });
    expect(cb.test.difference).toBeCloseTo(0.4, 12);
    expect(cb.test.mcnemar).toEqual({ b: 1, c: 9, discordant: 10, pValue: 0.021484375 });
    expect(cb.test.baseline.interval.lower).toBeCloseTo(0.29929800819821234, 12);
    expect(cb.test.selected.interval.upper).toBeCloseTo(0.9721335187862319, 12);
    expect(cb.validationTestGap).toBeCloseTo(0.05, 12);
    expect(cb.test.bootstrap).toMatchObject({ resamples: 500, seed: 3, confidence: 0.95 });
    expect(cb.test.bootstrap.lower).toBeGreaterThan(0.1);
    expect(cb.test.bootstrap.upper).toBeLessThanOrEqual(0.7);
    expect(cb.warnings).toEqual([]);
    expect(sst.test.mcnemar).toEqual({ b: 0, c: 0, discordant: 0, pValue: 1 });
    expect(sst.validationTestGap).toBeCloseTo(0.1, 12);
    expect(report.surfaces.map((s: { dataset: string; module: string; split: string; file: string | null }) => [s.dataset, s.module, s.split, s.file])).toEqual([
      ['cb', 'mlp', 'validation', null],
      ['cb', 'mlp', 'test', null],
      ['sst', 'mlp', 'validation', null],
      ['sst', 'none', 'test', null],
    ]);
    expect(report.surfaces[0].accuracy).toEqual([
      [0.6, 0.65, 0.55],
      [0.6, 0.95, 0.6],
    ]);
  });

  it('a sweep without selections still gets its surfaces; unknown sweeps and bad usage fail', async () => {
    const other = await run(handle.db, ['other', '--no-svg', '--no-csv']);
    expect(other.code).toBe(0);
    expect(other.out).toContain('No selections stored for this sweep');
    expect(other.out).toContain('accuracy: sweep other, model tiny, dataset cb, module mlp, split validation');
    expect(other.out).not.toContain('split test');

    const missing = await run(handle.db, ['nope']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no sweep named "nope"');
    expect((await run(handle.db, [])).code).toBe(2);
    expect((await run(handle.db, [SWEEP, '--confidence', '2'])).code).toBe(2);
    expect((await run(handle.db, [SWEEP, '--bogus'])).code).toBe(2);
    const help = await run(handle.db, ['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: report <sweep>');
  });
});
