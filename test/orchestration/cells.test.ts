import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { baselineCell, canonicalJson, cellIdentity, cellKey, gridProblems, makeCell, type PreparedSweep } from '../../sweepspec/cells.ts';
import { DEFAULT_MAX_CELLS, cellAt, cellsAt, expandCells, gridIdentity, gridLimitProblem, gridShape, gridSizeBound } from '../../sweepspec/grid.ts';
import { checkSpec, datasetRequest, type SweepSpec } from '../../sweepspec/schema.ts';

function spec(over: Record<string, unknown> = {}): SweepSpec {
  const r = checkSpec({
    name: 's',
    models: [{ name: 'a', path: '/m/a' }, { name: 'b', path: '/m/b' }],
    datasets: [{ name: 'd1', task: 'sst2', path: '/d/1' }, { name: 'd2', task: 'rte', path: '/d/2' }],
    modules: ['q_proj', 'fc_up'],
    layers: 'all',
    ratios: [0, 0.5, 0.9],
    ...over,
  });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.spec;
}

const prepared: PreparedSweep = {
  engineVersion: '1.0.0',
  models: [
    { name: 'a', fingerprint: 'fa', numLayers: 2, family: 'llama', modules: ['q_proj', 'fc_up', 'all'], weightDtype: 'float32' },
    { name: 'b', fingerprint: 'fb', numLayers: 3, family: 'gpt2', modules: ['q_proj', 'all'], weightDtype: 'float32' },
  ],
  datasets: [
    { name: 'd1', fingerprint: 'f1' },
    { name: 'd2', fingerprint: 'f2' },
  ],
};

const point = { module: 'q_proj' as const, layer: 1, ratio: 0.5, split: 'test' as const };

describe('cell keys', () => {
  const base = spec();
  const key = (s = base, p: typeof prepared = prepared, pt: Parameters<typeof cellIdentity>[4] = point, version = '1.0.0') =>
    cellKey(cellIdentity(s, version, p.models[0], p.datasets[0], pt));

  it('is a stable sha256 hex of canonical JSON', () => {
    expect(key()).toMatch(/^[0-9a-f]{64}$/);
    expect(key()).toBe(key());
    // Pinned: a change here silently orphans every stored result; bump ENGINE_VERSION instead.
    const canonical =
      '{"datasetFingerprint":"f1","engineVersion":"1.0.0","executionProvider":"cpu","layer":1,"modelFingerprint":"fa","module":"q_proj","ratio":0.5,' +
      '"scoring":{"multipleChoice":"loglik","svd":"exact"},"seed":null,"shots":null,"sizes":{"testPerClass":null,"validationPerClass":null},"split":"test",' +
      '"weightDtype":"float32"}';
    expect(canonicalJson(cellIdentity(base, '1.0.0', prepared.models[0], prepared.datasets[0], point))).toBe(canonical);
    expect(key()).toBe(createHash('sha256').update(canonical).digest('hex'));
    expect(key()).toBe('fd80319117970cbe82caac77a9f17889d1d8aeb88137a5be0f39d5f6bddda894');
  });

  it('does not depend on key order or names/paths, only on content', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
    const renamed = spec({ models: [{ name: 'other', path: '/elsewhere' }, { name: 'b', path: '/m/b' }] });
    expect(cellKey(cellIdentity(renamed, '1.0.0', { fingerprint: 'fa', weightDtype: 'float32' }, { fingerprint: 'f1' }, point))).toBe(key());
  });

  it('changes with every input', () => {
    const k = key();
    const variants = [
      key(base, prepared, point, '1.0.1'),
      cellKey(cellIdentity(base, '1.0.0', { fingerprint: 'fa2', weightDtype: 'float32' }, prepared.datasets[0], point)),
      cellKey(cellIdentity(base, '1.0.0', { fingerprint: 'fa', weightDtype: 'float16' }, prepared.datasets[0], point)),
      cellKey(cellIdentity(base, '1.0.0', prepared.models[0], { fingerprint: 'f1x' }, point)),
      key(base, prepared, { ...point, module: 'k_proj' }),
      key(base, prepared, { ...point, layer: 0 }),
      key(base, prepared, { ...point, layer: -1 }),
      key(base, prepared, { ...point, ratio: 0.9 }),
      key(base, prepared, { ...point, split: 'validation' }),
      key(spec({ shots: 3 })),
      key(spec({ seed: 7 })),
      key(spec({ sizes: { testPerClass: 10 } })),
      key(spec({ sizes: { validationPerClass: 10 } })),
      key(spec({ scoring: { multipleChoice: 'loglik-norm', svd: 'exact' } })),
      key(spec({ scoring: { multipleChoice: 'loglik', svd: 'randomized' } })),
      key(spec({ protocol: 'paper' })),
      // The paper's protocol is in the key even where its scoring is overridden back to the default's.
      key(spec({ protocol: 'paper', scoring: { multipleChoice: 'loglik', svd: 'exact' } })),
      key(spec({ executionProvider: 'cuda' })),
    ];
    for (const v of variants) expect(v).not.toBe(k);
    expect(new Set(variants).size).toBe(variants.length);
  });

  it('ignores what does not change the result (name, maxInFlight, selection, split default of the spec, task folders)', () => {
    expect(key(spec({ name: 'other', maxInFlight: 50, continueAsNewAfter: 3, taskDirs: ['/tasks'], replace: true }))).toBe(key());
    // The default protocol, written or not, is the key it always was.
    expect(key(spec({ protocol: 'default' }))).toBe(key());
  });

  it('puts the execution provider in the key, and also in a ratio-0 cell (the unpruned model runs on it too)', () => {
    const zero = { module: 'none' as const, layer: 0, ratio: 0, split: 'test' as const };
    expect(key(spec({ executionProvider: 'cuda' }), prepared, zero)).not.toBe(key(base, prepared, zero));
    expect(cellIdentity(spec({ executionProvider: 'cuda' }), '1.0.0', prepared.models[0], prepared.datasets[0], point).executionProvider).toBe('cuda');
  });

  it("the paper's protocol switches the scoring in one place, keeps explicit choices, and reaches the engine's dataset request", () => {
    expect(spec({ protocol: 'paper' }).scoring).toEqual({ multipleChoice: 'mean-logits', svd: 'randomized' });
    expect(spec({ protocol: 'paper', scoring: { svd: 'exact' } }).scoring).toEqual({ multipleChoice: 'mean-logits', svd: 'exact' });
    expect(spec().scoring).toEqual({ multipleChoice: 'loglik', svd: 'exact' });
    expect(spec({ scoring: { multipleChoice: 'loglik-norm' } }).scoring).toEqual({ multipleChoice: 'loglik-norm', svd: 'exact' });
    const paper = spec({ protocol: 'paper', taskDirs: ['/tasks'] });
    expect(datasetRequest(paper, paper.datasets[0])).toEqual({ name: 'd1', task: 'sst2', path: '/d/1', taskDirs: ['/tasks'], protocol: 'paper' });
    expect(datasetRequest(base, base.datasets[0])).toEqual({ name: 'd1', task: 'sst2', path: '/d/1' });
    expect(cellIdentity(paper, '1.0.0', prepared.models[0], prepared.datasets[0], point).protocol).toBe('paper');
    expect(cellIdentity(base, '1.0.0', prepared.models[0], prepared.datasets[0], point)).not.toHaveProperty('protocol');
  });

  it('canonicalises ratio 0: one unpruned cell whatever the module, layer and SVD', () => {
    const zeros = [
      key(base, prepared, { module: 'q_proj', layer: 1, ratio: 0, split: 'test' }),
      key(base, prepared, { module: 'fc_up', layer: 0, ratio: 0, split: 'test' }),
      key(base, prepared, { module: 'all', layer: -1, ratio: 0, split: 'test' }),
      key(spec({ scoring: { multipleChoice: 'loglik', svd: 'randomized' } }), prepared, { module: 'q_proj', layer: 1, ratio: 0, split: 'test' }),
    ];
    expect(new Set(zeros).size).toBe(1);
    const c = makeCell(base, '1.0.0', prepared.models[0], prepared.datasets[0], { module: 'q_proj', layer: 1, ratio: 0, split: 'test' });
    expect(c).toMatchObject({ module: 'none', layer: 0, ratio: 0 });
    expect(baselineCell(base, prepared, 'a', 'd1', 'test').key).toBe(zeros[0]);
    expect(key(base, prepared, { module: 'q_proj', layer: 1, ratio: 0, split: 'validation' })).not.toBe(zeros[0]);
  });
});

describe('grid expansion', () => {
  it('is model-major, then dataset, module, layer, ratio; skips modules a family lacks; one baseline per (model, dataset)', () => {
    const cells = expandCells(spec(), prepared, 'test');
    // a (llama, 2 layers): q_proj + fc_up, 2 layers, 2 nonzero ratios = 8, + 1 baseline; b (gpt2, 3 layers): q_proj only = 6 + 1.
    expect(cells.length).toBe(2 * (8 + 1) + 2 * (6 + 1));
    expect(new Set(cells.map((c) => c.key)).size).toBe(cells.length);
    const coords = cells.map((c) => `${c.model}/${c.dataset}/${c.module}/${c.layer}/${c.ratio}`);
    expect(coords.slice(0, 9)).toEqual([
      'a/d1/none/0/0',
      'a/d1/q_proj/0/0.5',
      'a/d1/q_proj/0/0.9',
      'a/d1/q_proj/1/0.5',
      'a/d1/q_proj/1/0.9',
      'a/d1/fc_up/0/0.5',
      'a/d1/fc_up/0/0.9',
      'a/d1/fc_up/1/0.5',
      'a/d1/fc_up/1/0.9',
    ]);
    expect(coords[9]).toBe('a/d2/none/0/0');
    expect(coords.indexOf('b/d1/none/0/0')).toBe(18);
    expect(cells.filter((c) => c.model === 'b').every((c) => c.module !== 'fc_up')).toBe(true);
    expect(cells.every((c) => c.split === 'test')).toBe(true);
    expect(expandCells(spec(), prepared, 'test')).toEqual(cells);
  });

  it('takes an explicit layer list as given (with -1 = every layer)', () => {
    const cells = expandCells(spec({ layers: [-1, 1], ratios: [0.5], modules: ['q_proj'] }), prepared, 'validation');
    expect(cells.filter((c) => c.model === 'a' && c.dataset === 'd1').map((c) => c.layer)).toEqual([-1, 1]);
  });

  it('reports layers out of range and modules no model has, by field', () => {
    expect(gridProblems(spec({ layers: [0, 2] }), prepared)).toEqual([
      'layers[1]: layer 2 is out of range for model "a" (2 layers: 0..1, or -1 for every layer)',
    ]);
    expect(gridProblems(spec({ modules: ['q_proj', 'fc_out'] }), prepared)[0]).toMatch(/^modules\[1\]: "fc_out" is not a module of any model/);
    expect(gridProblems(spec(), prepared)).toEqual([]);
  });
});

describe('a grid addressed by cell index', () => {
  const bigModel: PreparedSweep = {
    engineVersion: '1.0.0',
    models: [{ name: 'a', fingerprint: 'fa', numLayers: 40, family: 'llama', modules: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_up', 'fc_out', 'mlp', 'attn', 'all'], weightDtype: 'float32' }],
    datasets: [{ name: 'd1', fingerprint: 'f1' }],
  };

  it('cell i is the i-th cell of the full expansion, for every i (mixed radix over module, layer, ratio per block)', () => {
    const s = spec({ ratios: [0.9, 0, 0.5], layers: [2, -1, 0], modules: ['fc_up', 'q_proj'] });
    const prep: PreparedSweep = { ...prepared, models: [{ ...prepared.models[0] }, { ...prepared.models[1], numLayers: 3 }] };
    const shape = gridShape(s, prep, 'test');
    // a: 1 + 2 modules x 3 layers x 2 ratios, b (no fc_up): 1 + 1 x 3 x 2; two datasets each.
    expect(shape.size).toBe(2 * 13 + 2 * 7);
    const all = cellsAt(s, shape, 0, shape.size);
    expect(new Set(all.map((c) => c.key)).size).toBe(shape.size);
    expect(all.map((c) => `${c.model}/${c.dataset}/${c.module}/${c.layer}/${c.ratio}`).slice(0, 5)).toEqual([
      'a/d1/none/0/0', 'a/d1/fc_up/2/0.9', 'a/d1/fc_up/2/0.5', 'a/d1/fc_up/-1/0.9', 'a/d1/fc_up/-1/0.5',
    ]);
    for (let i = 0; i < shape.size; i++) expect(cellAt(s, shape, i)).toEqual(all[i]);
    expect(cellsAt(s, shape, 38, 10).map((c) => c.key)).toEqual(all.slice(38).map((c) => c.key));
    expect(() => cellAt(s, shape, shape.size)).toThrow(RangeError);
    // Repeated axis values are one value.
    expect(gridShape(spec({ ratios: [0.5, 0.5, 0, 0], layers: [1, 1] }), prep, 'test').size).toBe(gridShape(spec({ ratios: [0.5, 0], layers: [1] }), prep, 'test').size);
  });

  it('a 10^6-cell grid: its size without expanding it, a batch of its last cells at once', () => {
    const ratios = Array.from({ length: 2500 }, (_, i) => (i + 1) / 2501);
    const s = spec({ models: [{ name: 'a', path: '/m/a' }], datasets: [{ name: 'd1', task: 'sst2', path: '/d/1' }], modules: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_up', 'fc_out', 'mlp', 'attn', 'all'], ratios });
    const t0 = performance.now();
    const shape = gridShape(s, bigModel, 'test');
    const batch = cellsAt(s, shape, 999_800, 200);
    const ms = performance.now() - t0;
    expect(shape.size).toBe(10 * 40 * 2500);
    expect(batch).toHaveLength(200);
    expect(batch[199]).toMatchObject({ module: 'all', layer: 39, ratio: 1 - 1 / 2501 });
    expect(ms).toBeLessThan(1000);
  });

  it('the cell limit: named with the grid size, checked from the spec alone where it can be', () => {
    expect(DEFAULT_MAX_CELLS).toBe(1_000_000);
    expect(gridLimitProblem(1_000_000, 1_000_000)).toBeUndefined();
    expect(gridLimitProblem(1_000_001, 1_000_000)).toBe(
      'the grid has 1,000,001 cells, more than the limit of 1,000,000 (ICL_SWEEP_MAX_CELLS): split the sweep, or raise the limit on the workers',
    );
    expect(gridSizeBound(spec({ layers: [0, 1], ratios: [0, 0.5, 0.9] }))).toEqual({ cells: 2 * 2 * (1 + 2 * 2 * 2), bound: 'upper' });
    expect(gridSizeBound(spec())).toEqual({ cells: 2 * 2 * (1 + 2 * 1 * 2), bound: 'lower' });
  });

  it('refuses two models or two datasets with the same files (they would be one cell under two names)', () => {
    const twins: PreparedSweep = { ...prepared, datasets: [{ name: 'd1', fingerprint: 'f1' }, { name: 'd2', fingerprint: 'f1' }] };
    expect(gridProblems(spec(), twins)).toEqual(['datasets[1]: the same files as "d1" (give each dataset once)']);
  });

  it('the grid identity changes with what decides the cells, not with how the sweep runs', () => {
    const g = gridIdentity(spec(), prepared);
    expect(gridIdentity(spec({ maxInFlight: 9, continueAsNewAfter: 7, cellAttempts: 2, heartbeatTimeoutSeconds: 5, replace: true }), prepared)).toBe(g);
    expect(gridIdentity(spec({ models: [{ name: 'a', path: '/elsewhere/a' }, { name: 'b', path: '/m/b' }] }), prepared)).toBe(g);
    for (const other of [spec({ ratios: [0, 0.5] }), spec({ executionProvider: 'cuda' }), spec({ shots: 2 }), spec({ selection: true })]) expect(gridIdentity(other, prepared)).not.toBe(g);
    expect(gridIdentity(spec(), { ...prepared, models: [{ ...prepared.models[0], fingerprint: 'changed' }, prepared.models[1]] })).not.toBe(g);
  });
});
