/**
 * Demonstration draws in the spec and the grid (pure): `demoSeeds` as a list or a count, the seed
 * axis of the grid, keys as without draws, the draws of a pick; and the selection rule option.
 */
import { describe, expect, it } from 'vitest';
import { drawSeeds, makeCell, pickDraws, type PreparedSweep } from '../../sweepspec/cells.ts';
import { cellAt, expandCells, gridIdentity, gridShape, gridSizeBound } from '../../sweepspec/grid.ts';
import { checkSpec, type SweepSpec } from '../../sweepspec/schema.ts';

const BASE = {
  name: 's',
  models: [{ name: 'a', path: '/m/a' }],
  datasets: [{ name: 'd1', task: 'sst2', path: '/d/1' }, { name: 'd2', task: 'rte', path: '/d/2' }],
  modules: ['q_proj'],
  layers: [0, 1],
  ratios: [0, 0.5, 0.9],
};

function spec(over: Record<string, unknown> = {}): SweepSpec {
  const r = checkSpec({ ...BASE, ...over });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.spec;
}

function problems(over: Record<string, unknown>): string[] {
  const r = checkSpec({ ...BASE, ...over });
  return r.ok ? [] : r.problems;
}

// sst2's protocol seed is 49, rte's 66 (engine/tasks/builtin).
const prepared: PreparedSweep = {
  engineVersion: '1.0.0',
  models: [{ name: 'a', fingerprint: 'fa', numLayers: 2, family: 'llama', modules: ['q_proj', 'all'], weightDtype: 'float32' }],
  datasets: [
    { name: 'd1', fingerprint: 'f1', defaultSeed: 49 },
    { name: 'd2', fingerprint: 'f2', defaultSeed: 66 },
  ],
};

describe('demoSeeds in the spec', () => {
  it('a list is taken as given; a count counts up from seed, else from each task default seed', () => {
    expect(drawSeeds(spec({ demoSeeds: [7, 3, 11] }), prepared.datasets[0])).toEqual([7, 3, 11]);
    expect(drawSeeds(spec({ demoSeeds: 3, seed: 100 }), prepared.datasets[1])).toEqual([100, 101, 102]);
    expect(drawSeeds(spec({ demoSeeds: 3 }), prepared.datasets[0])).toEqual([49, 50, 51]);
    expect(drawSeeds(spec({ demoSeeds: 3 }), prepared.datasets[1])).toEqual([66, 67, 68]);
    expect(drawSeeds(spec({ seed: 5 }), prepared.datasets[0])).toEqual([5]);
    expect(drawSeeds(spec(), prepared.datasets[0])).toEqual([undefined]);
  });

  it('bad values are refused by field', () => {
    expect(problems({ demoSeeds: [1, 1] })).toEqual(['demoSeeds: seeds must differ']);
    expect(problems({ demoSeeds: [1, 2], seed: 3 })).toEqual(['demoSeeds: give either "seed" or a list of "demoSeeds" (a count of demoSeeds counts up from "seed")']);
    expect(problems({ demoSeeds: 0 })[0]).toMatch(/^demoSeeds: /);
    expect(problems({ demoSeeds: [] })[0]).toMatch(/^demoSeeds: /);
    expect(problems({ demoSeed: 3 })).toEqual(['(spec): unknown key "demoSeed" (did you mean "demoSeeds"?)']);
  });
});

describe('the selection rule in the spec', () => {
  it('true is the paper rule; significant defaults to level 0.05 with Holm', () => {
    expect(spec({ selection: true }).selection).toEqual({ rule: 'paper' });
    expect(spec().selection).toBe(false);
    expect(spec({ selection: { rule: 'significant' } }).selection).toEqual({ rule: 'significant', level: 0.05, correction: 'holm' });
    expect(spec({ selection: { rule: 'significant', level: 0.01, correction: 'none' } }).selection).toEqual({ rule: 'significant', level: 0.01, correction: 'none' });
  });

  it('bad values are refused by field', () => {
    expect(problems({ selection: { rule: 'paper', level: 0.1 } })).toEqual(['selection: "level" and "correction" belong to the significant rule']);
    expect(problems({ selection: { rule: 'significant', level: 1.5 } })[0]).toMatch(/^selection\.level: /);
    expect(problems({ selection: { rule: 'best' } })[0]).toMatch(/^selection\.rule: /);
    expect(problems({ selection: { rule: 'significant', levle: 0.1 } })).toContain('selection: unknown key "levle" (did you mean "level"?)');
  });
});

describe('the grid over draws', () => {
  it('every point under every draw, the draws of a point back to back, one unpruned cell per draw', () => {
    const cells = expandCells(spec({ demoSeeds: [7, 8] }), prepared, 'validation');
    // per dataset: (1 unpruned + 2 layers x 2 ratios) x 2 draws
    expect(cells).toHaveLength(2 * (1 + 4) * 2);
    expect(new Set(cells.map((c) => c.key)).size).toBe(cells.length);
    expect(cells.slice(0, 4).map((c) => `${c.dataset}/${c.module}/${c.layer}/${c.ratio}/${c.seed}`)).toEqual([
      'd1/none/0/0/7',
      'd1/none/0/0/8',
      'd1/q_proj/0/0.5/7',
      'd1/q_proj/0/0.5/8',
    ]);
  });

  it('the seed is the innermost axis of the index-addressed grid; its size and identity count the draws', () => {
    const s = spec({ demoSeeds: [7, 8, 9] });
    const shape = gridShape(s, prepared, 'validation');
    expect(shape.size).toBe(2 * (1 + 4) * 3);
    expect(gridSizeBound(s).cells).toBe(3 * gridSizeBound(spec()).cells);
    // Index 1 * 3 + 1: the second point (q_proj 0 0.5) of the first dataset, under the second draw.
    expect(cellAt(s, shape, 4)).toMatchObject({ dataset: 'd1', module: 'q_proj', layer: 0, ratio: 0.5, seed: 8 });
    expect(cellAt(s, shape, 8)).toMatchObject({ dataset: 'd1', module: 'q_proj', layer: 0, ratio: 0.9, seed: 9 });
    expect(cellAt(s, shape, 15)).toMatchObject({ dataset: 'd2', module: 'none', seed: 7 });
    expect(gridIdentity(s, prepared)).not.toBe(gridIdentity(spec({ demoSeeds: [7, 8] }), prepared));
    // `selection: true` is the paper's rule, and keeps the identity its grids always had.
    expect(gridIdentity(spec({ selection: true }), prepared)).toBe(gridIdentity(spec({ selection: { rule: 'paper' } }), prepared));
    expect(gridIdentity(spec({ selection: true }), prepared)).not.toBe(gridIdentity(spec({ selection: { rule: 'significant' } }), prepared));
  });

  it('a draw is keyed as a sweep with that seed: stored cells are reused across the two ways of writing it', () => {
    const withDraws = expandCells(spec({ demoSeeds: 2, seed: 7 }), prepared, 'validation');
    const seven = expandCells(spec({ seed: 7 }), prepared, 'validation');
    const eight = expandCells(spec({ seed: 8 }), prepared, 'validation');
    expect(new Set(withDraws.map((c) => c.key))).toEqual(new Set([...seven, ...eight].map((c) => c.key)));
    // Without demoSeeds nothing changes: no seed on the cells.
    expect(seven.every((c) => !('seed' in c))).toBe(true);
  });

  it("a pick's draws: its validation cell and the test cells of the unpruned model and the pick per seed", () => {
    const s = spec({ demoSeeds: 2, selection: { rule: 'significant' } });
    const draws = pickDraws(s, prepared, { model: 'a', dataset: 'd2', module: 'q_proj', layer: 1, ratio: 0.5 });
    expect(draws.map((d) => d.seed)).toEqual([66, 67]);
    const cell = (split: 'validation' | 'test', seed: number, ratio = 0.5) =>
      makeCell(s, '1.0.0', prepared.models[0], prepared.datasets[1], { module: 'q_proj', layer: 1, ratio, split, seed }).key;
    expect(draws.map((d) => [d.validation.key, d.baseline.key, d.selected.key])).toEqual([
      [cell('validation', 66), cell('test', 66, 0), cell('test', 66)],
      [cell('validation', 67), cell('test', 67, 0), cell('test', 67)],
    ]);
    const unpruned = pickDraws(s, prepared, { model: 'a', dataset: 'd2', module: 'none', layer: 0, ratio: 0 });
    expect(unpruned.every((d) => d.baseline.key === d.selected.key)).toBe(true);
    expect(pickDraws(spec({ selection: true }), prepared, { model: 'a', dataset: 'd1', module: 'q_proj', layer: 0, ratio: 0.9 }).map((d) => d.seed)).toEqual([null]);
  });
});
