/**
 * The sweep workflow's pure parts, without a server: the validate phase, the grid and test-cell
 * sources the window reads by index, and the state rules that count cell reports (once each) and
 * change phase. The phases that are activities and the window itself run against a real Temporal
 * server in the other tests of this folder.
 */
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { expandCells, gridSplit } from '../../sweepspec/grid.ts';
import { makeCell, type PreparedSweep } from '../../sweepspec/cells.ts';
import { gridSource, testPlan, validate } from '../../workflows/phases.ts';
import { enterTestPhase, finishedCount, inFlightCount, initialState, nextRun, recordOutcome } from '../../workflows/state.ts';
import { requestFor } from '../../workflows/window.ts';

const input = {
  name: 'phases',
  models: [{ name: 'm', path: '/m' }],
  datasets: [{ name: 'd', task: 'sst2', path: '/d' }],
  modules: ['q_proj', 'fc_in'],
  layers: [0, 1],
  ratios: [0, 0.5, 0.9],
  selection: true,
};
const prepared: PreparedSweep = {
  engineVersion: 'e',
  models: [{ name: 'm', fingerprint: 'fm', numLayers: 2, family: 'gpt2', modules: ['q_proj', 'fc_in', 'all'], weightDtype: 'float32' }],
  datasets: [{ name: 'd', fingerprint: 'fd' }],
};

describe('validate', () => {
  it('returns the spec with defaults, or fails non-retryably listing every problem by field', () => {
    expect(validate(input)).toMatchObject({ name: 'phases', executionProvider: 'cpu', replace: false, maxInFlight: 4 });
    let err: unknown;
    try {
      validate({ ...input, ratios: [1.5], executionProvider: 'tpu' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'InvalidSpec', nonRetryable: true });
    expect((err as Error).message).toMatch(/^invalid sweep spec \(2 problems\):\n {2}- ratios\[0\]: .*\n {2}- executionProvider: /);
  });
});

describe('cell sources', () => {
  it('the grid source is the grid by index, on validation when the selection follows', () => {
    const spec = validate(input);
    expect(gridSplit(spec)).toBe('validation');
    const source = gridSource(spec, prepared);
    const all = expandCells(spec, prepared, 'validation');
    expect(source.size).toBe(all.length);
    expect(source.cells(0, source.size)).toEqual(all);
    expect(source.cells(3, 2)).toEqual(all.slice(3, 5));
    expect(all.every((c) => c.split === 'validation')).toBe(true);
  });

  it('the test plan: the unpruned model and each pick on test, once each, with the selection rows', () => {
    const spec = validate(input);
    const pick = {
      model: 'm', dataset: 'd', module: 'fc_in' as const, layer: 1, ratio: 0.5, validationAccuracy: 0.7, validationCellKey: 'v',
      rule: { rule: 'paper' as const }, draws: 1, baselineValidationAccuracy: 0.6, gain: null, bestPruned: null, candidates: 1, significant: null,
    };
    const { source, rows } = testPlan(spec, prepared, [pick]);
    const cells = source.cells(0, source.size);
    expect(cells.map((c) => `${c.module}/${c.layer}/${c.ratio}/${c.split}`)).toEqual(['none/0/0/test', 'fc_in/1/0.5/test']);
    const validation = makeCell(spec, prepared.engineVersion, prepared.models[0], prepared.datasets[0], { module: 'fc_in', layer: 1, ratio: 0.5, split: 'validation' });
    expect(rows).toEqual([
      {
        ...pick,
        baselineCellKey: cells[0].key,
        selectedCellKey: cells[1].key,
        drawCells: [{ seed: null, validationCellKey: validation.key, baselineCellKey: cells[0].key, selectedCellKey: cells[1].key }],
      },
    ]);
    // A pick of the unpruned model is one test cell.
    expect(testPlan(spec, prepared, [{ ...pick, module: 'q_proj', layer: 0, ratio: 0 }]).source.size).toBe(1);
  });

  it('asks the engine for the unpruned model as module "all" at every layer', () => {
    const spec = validate(input);
    const [baseline, pruned] = gridSource(spec, prepared).cells(0, 2);
    expect(requestFor(spec, baseline)).toMatchObject({ module: 'all', layer: -1, ratio: 0, split: 'validation' });
    expect(requestFor(spec, pruned)).toMatchObject({ module: 'q_proj', layer: 0, ratio: 0.5 });
  });
});

describe('sweep state', () => {
  it('counts each cell report once, only for cells in flight; a cancelled cell leaves without a result', () => {
    const state = initialState(prepared);
    state.inFlight = { a: 0, b: 1, c: 2, d: 3 };
    expect(recordOutcome(state, { key: 'a', outcome: 'done' })).toBe(true);
    expect(recordOutcome(state, { key: 'a', outcome: 'done' })).toBe(false); // signal and child end both report
    expect(recordOutcome(state, { key: 'x', outcome: 'done' })).toBe(false); // a cell of an earlier execution
    recordOutcome(state, { key: 'b', outcome: 'reused' });
    recordOutcome(state, { key: 'c', outcome: 'failed' });
    recordOutcome(state, { key: 'd', outcome: 'cancelled' });
    expect(state.counts).toEqual({ done: 1, reused: 1, failed: 1 });
    expect(finishedCount(state.counts)).toBe(3);
    expect(inFlightCount(state)).toBe(0);
  });

  it('continue-as-new carries the cells in flight and queued; a new phase needs none left', () => {
    const state = initialState(prepared);
    state.inFlight = { a: 5 };
    state.queue = [6, 7];
    state.cursor = 8;
    const next = nextRun(state);
    expect(next).toMatchObject({ run: 2, inFlight: { a: 5 }, queue: [6, 7], cursor: 8, phase: 'grid' });
    expect(() => enterTestPhase(state, [])).toThrow(/still in flight/);
    state.inFlight = {};
    state.queue = [];
    enterTestPhase(state, []);
    expect(state).toMatchObject({ phase: 'test', cursor: 0, queue: [], selections: [] });
  });
});
