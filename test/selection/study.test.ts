/**
 * The demonstration-draw study: its tables from hand-built picks (analysis/study.ts), and the `study`
 * command end to end on the tiny fixture grid (real Temporal, Postgres, ONNX Runtime): one sweep per
 * rule, every later sweep reusing the grid's validation cells, then the tables.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ruleOutcomes, renderStudy, type StudyPick } from '../../analysis/study.ts';
import { runStudy } from '../../cli/study.ts';
import { cellResults } from '../../db/queries.ts';
import { MODELS, SST2, rows, setupSuite, type Suite } from '../orchestration/helpers.ts';

const pick = (dataset: string, ratio: number, validationGain: number, test: Array<[number, number]>): StudyPick => ({
  dataset,
  module: ratio === 0 ? 'none' : 'mlp',
  layer: ratio === 0 ? 0 : 29,
  ratio,
  validationGain,
  test: test.map(([baseline, selected], i) => ({ seed: 42 + i, baseline, selected })),
});

describe('the study tables', () => {
  it('counts picks that help, tie and hurt on test, per pick and per (pick, draw), and the mean changes', () => {
    const [o] = ruleOutcomes([
      {
        rule: 'paper',
        judgedOn: '2 draws',
        picks: [
          pick('imdb', 0.9, 0.05, [[0.8, 0.85], [0.7, 0.7]]), // +0.025
          pick('yelp', 0.5, 0.03, [[0.9, 0.8], [0.9, 0.92]]), // -0.04
          pick('amazon', 0, 0, [[0.6, 0.6], [0.7, 0.7]]), // the unpruned model: 0
        ],
      },
    ]);
    expect(o).toMatchObject({ picks: 3, pruned: 2, improved: 1, tied: 1, worse: 1, drawsImproved: 2, draws: 6 });
    expect(o.meanValidationGain).toBeCloseTo(0.08 / 3, 12);
    expect(o.meanTestChange).toBeCloseTo((0.025 - 0.04) / 3, 12);
  });

  it('renders the unpruned spread and the rules as Markdown tables', () => {
    const text = renderStudy(
      [{ dataset: 'imdb', validation: [{ accuracy: 0.62, n: 30 }, { accuracy: 0.94, n: 30 }], test: [{ accuracy: 0.8, n: 80 }, { accuracy: 0.85, n: 80 }] }],
      [{ rule: 'paper', judgedOn: '2 draws', picks: [pick('imdb', 0.9, 0.05, [[0.8, 0.85], [0.7, 0.7]])] }],
    );
    expect(text).toContain('| imdb |     2 | 78.0 ± 22.6 | 62.0-94.0 |   32.0 | 82.5 ± 3.5 | 80.0-85.0 |    5.0 |');
    expect(text).toContain('| paper | 2 draws   |       1 of 1 |                  1 / 0 / 0 |              1 of 2 |          +5.0 |             +2.5 |');
    expect(text).toContain('| paper | imdb | 42,43         | mlp 29 0.9                |     +5.0 |        +2.5 |');
  });
});

let suite: Suite;

beforeAll(async () => {
  suite = await setupSuite('study', { worker: { concurrency: 2 } });
});

afterAll(async () => {
  await suite?.teardown();
});

describe('study', () => {
  it('runs one sweep per rule over one grid, computing each cell once, and prints the tables', async () => {
    const grid = path.join(suite.tmp, 'grid.json');
    await writeFile(
      grid,
      JSON.stringify({
        name: 'tiny-study',
        models: [{ name: 'gpt2-tiny', path: path.join(MODELS, 'gpt2') }],
        datasets: [{ name: 'sst2-tiny', task: 'sst2', path: SST2 }],
        modules: ['fc_in'],
        layers: [0, 2],
        ratios: [0, 0.5, 0.95],
        shots: 2,
        demoSeeds: [5, 6],
        sizes: { validationPerClass: 4, testPerClass: 4 },
        maxInFlight: 4,
      }),
    );
    let out = '';
    let err = '';
    const io = { out: (t: string) => (out += t), err: (t: string) => (err += t), db: suite.db.db, progress: false };
    const code = await runStudy(['--spec', grid, '--task-queue', suite.taskQueue, '--out', path.join(suite.tmp, 'study.md')], io);
    expect(err).not.toMatch(/warning|study:/);
    expect(code).toBe(0);
    // The sweeps, the many-draw paper sweep first; each validation cell (5 points x 2 draws) computed once.
    expect([...err.matchAll(/^sweep "([^"]+)"/gm)].map((m) => m[1])).toEqual([
      'tiny-study-paper',
      'tiny-study-paper-seed5',
      'tiny-study-paper-seed6',
      'tiny-study-significant',
      'tiny-study-significant-uncorrected',
    ]);
    const validation = await rows<{ n: string }>(suite.db.db, `select count(*) as n from cells where split = 'validation'`);
    expect(Number(validation[0].n)).toBe(10);
    for (const sweep of ['tiny-study-paper-seed5', 'tiny-study-significant']) {
      expect((await cellResults(suite.db.db, sweep)).filter((r) => r.split === 'validation').every((r) => r.reused)).toBe(true);
    }
    expect(out).toMatch(/^\| sst2-tiny \|\s+2 \|/m);
    for (const [rule, judged, picks] of [
      ['paper, one draw', '1 draw', 2],
      ['paper', '2 draws', 1],
      ['significant 0.05, Holm', '2 draws', 1],
      ['significant 0.05, uncorrected', '2 draws', 1],
    ] as const) {
      expect(out).toMatch(new RegExp(`^\\| ${rule.replace(/[.,]/g, '\\$&')}\\s+\\| ${judged}\\s+\\|\\s+\\d of ${picks} \\|`, 'm'));
    }

    // The tables again from what is stored, without a sweep.
    let again = '';
    expect(await runStudy(['--spec', grid, '--table-only'], { ...io, out: (t) => (again += t) })).toBe(0);
    expect(again).toBe(out);
  });
});
