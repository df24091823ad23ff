/** How one call's sequences become runs: packed rows where the mask is fed, else rows cut by length. */
import { describe, expect, it } from 'vitest';
import { packWidth, type PlanInput, planRuns, RUN_COST } from '../../engine/model/plan.ts';

const LENGTHS = [7, 7, 8, 8, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 14, 14, 14, 14, 14, 15, 16, 17, 17, 17, 18, 19, 20, 20, 21, 22, 24, 25, 25, 26, 26, 26, 28, 28, 29, 29, 30, 30, 33, 33];

function input(lengths: number[], extra: Partial<PlanInput> = {}): PlanInput {
  return {
    lengths,
    logitPositions: lengths.map(() => 1),
    packed: false,
    past: 217,
    kvBytesPerPosition: 1000,
    logitsBytesPerPosition: 4000,
    selectable: true,
    maxRows: 16,
    maxKvBytes: 2 ** 30,
    maxLogitsBytes: 2 ** 30,
    ...extra,
  };
}

/** Every sequence exactly once; rows as the runs lay them out. */
function rowsOf(runs: ReturnType<typeof planRuns>, n: number): number[][] {
  expect(runs.flatMap((r) => r.seqs).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
  for (const r of runs) expect(r.pack.flat().sort((a, b) => a - b)).toEqual(r.seqs.map((_, k) => k));
  return runs.flatMap((r) => r.pack.map((row) => row.map((k) => r.seqs[k])));
}

const padding = (lengths: number[], runs: ReturnType<typeof planRuns>) =>
  runs.reduce((a, r) => {
    const rows = r.pack.map((row) => row.reduce((s, k) => s + lengths[r.seqs[k]], 0));
    return a + rows.length * Math.max(...rows) - rows.reduce((s, x) => s + x, 0);
  }, 0);

describe('planRuns, one sequence per row', () => {
  it('covers every sequence once, at most maxRows rows per run, and cuts where padding costs more than a run', () => {
    const runs = planRuns(input(LENGTHS));
    expect(rowsOf(runs, LENGTHS.length).every((row) => row.length === 1)).toBe(true);
    expect(Math.max(...runs.map((r) => r.pack.length))).toBeLessThanOrEqual(16);
    // fixed runs of 16 pad 162 positions in 4 runs; the cut pays RUN_COST per run for less padding
    expect(padding(LENGTHS, runs) + RUN_COST * runs.length).toBeLessThan(162 + RUN_COST * 4);
    // two clusters: one run would pad 8 rows by 45 positions (more than a run): two runs
    const two = [...new Array(8).fill(5), ...new Array(8).fill(50)];
    expect(planRuns(input(two)).map((r) => r.seqs.map((q) => two[q]))).toEqual([new Array(8).fill(5), new Array(8).fill(50)]);
    // a small step is not worth a run
    expect(planRuns(input([...new Array(8).fill(10), ...new Array(8).fill(11)]))).toHaveLength(1);
  });

  it('splits runs to keep the broadcast past and the logits under their bounds, never below one row', () => {
    const kv = planRuns(input(new Array(10).fill(10), { kvBytesPerPosition: 100, maxKvBytes: 3 * 100 * (217 + 10) }));
    expect(kv.map((r) => r.pack.length).sort()).toEqual([1, 3, 3, 3]);
    const logits = planRuns(input(new Array(6).fill(10), { logitsBytesPerPosition: 100, maxLogitsBytes: 250 }));
    expect(logits.map((r) => r.pack.length)).toEqual([2, 2, 2]);
    expect(planRuns(input([40], { maxKvBytes: 1, maxLogitsBytes: 1 })).map((r) => r.pack.length)).toEqual([1]);
  });
});

describe('planRuns, packed rows', () => {
  it('fills rows of packWidth(P) with whole sequences, few rows and little padding', () => {
    const runs = planRuns(input(LENGTHS, { packed: true }));
    const rows = rowsOf(runs, LENGTHS.length);
    const total = LENGTHS.reduce((a, b) => a + b, 0);
    expect(packWidth(217)).toBe(128);
    for (const row of rows) expect(row.reduce((a, q) => a + LENGTHS[q], 0)).toBeLessThanOrEqual(128);
    expect(rows.length).toBe(Math.ceil(total / 128));
    expect(runs).toHaveLength(1);
    expect(padding(LENGTHS, runs)).toBeLessThan(0.05 * total);
    // a sequence longer than the width gets a row of its own
    const long = planRuns(input([300, 5, 5], { packed: true }));
    expect(rowsOf(long, 3).map((r) => r.length).sort()).toEqual([1, 2]);
  });
});
