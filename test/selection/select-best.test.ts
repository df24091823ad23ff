import { describe, expect, it } from 'vitest';
import { compareCandidates, selectBest, type ValidationResult } from '../../analysis/selection.ts';
import type { ModuleName } from '../../engine/vocabulary.ts';

let counter = 0;
function r(module: ModuleName, layer: number, ratio: number, accuracy: number, extra: Partial<ValidationResult> = {}): ValidationResult {
  return { model: 'gptj', dataset: 'cb', module, layer, ratio, accuracy, cellKey: `k${counter++}-${module}-${layer}-${ratio}`, ...extra };
}

/** Every rotation and the reverse of each: the pick must not depend on input order. */
function orders<T>(xs: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i++) {
    const rot = [...xs.slice(i), ...xs.slice(0, i)];
    out.push(rot, [...rot].reverse());
  }
  return out;
}

function pick(results: ValidationResult[]) {
  const picks = orders(results).map((o) => selectBest(o));
  for (const p of picks) expect(p).toHaveLength(1);
  // Same pick whatever the order.
  for (const p of picks) expect(p[0]).toEqual(picks[0][0]);
  return picks[0][0];
}

describe('selectBest', () => {
  it('returns nothing for no results', () => {
    expect(selectBest([])).toEqual([]);
  });

  it('picks the highest validation accuracy (the paper example: GPT-J, CB, mlp, layer 26, ratio 0.95)', () => {
    const results = [0, 0.1, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995].map((ratio) =>
      r('mlp', 26, ratio, ratio === 0.95 ? 0.7 : ratio === 0.9 ? 0.69 : 0.6),
    );
    results.push(r('mlp', 27, 0.5, 0.65), r('attn', 26, 0.95, 0.68), r('mlp', -1, 0.1, 0.699));
    const s = pick(results);
    expect(s).toMatchObject({
      model: 'gptj',
      dataset: 'cb',
      module: 'mlp',
      layer: 26,
      ratio: 0.95,
      validationAccuracy: 0.7,
      validationCellKey: results[5].cellKey,
    });
  });

  it('accuracy beats every tie rule: a higher-accuracy cell with a high ratio, shallow layer and late module wins', () => {
    const s = pick([r('q_proj', 27, 0, 0.5), r('all', -1, 0.995, 0.51)]);
    expect([s.module, s.layer, s.ratio]).toEqual(['all', -1, 0.995]);
  });

  it('tie on accuracy: the lowest ratio wins (the unpruned model, ratio 0, wins every tie it is in)', () => {
    let s = pick([r('mlp', 26, 0.9, 0.7), r('mlp', 26, 0.5, 0.7), r('mlp', 27, 0.95, 0.7)]);
    expect([s.layer, s.ratio]).toEqual([26, 0.5]);
    s = pick([r('mlp', 26, 0.5, 0.7), r('mlp', 0, 0, 0.7), r('q_proj', 27, 0.1, 0.7)]);
    expect([s.module, s.layer, s.ratio]).toEqual(['mlp', 0, 0]);
  });

  it('tie on accuracy and ratio: the deepest layer wins; -1 (every layer) counts as the shallowest', () => {
    let s = pick([r('mlp', 0, 0.5, 0.7), r('mlp', 27, 0.5, 0.7), r('mlp', 26, 0.5, 0.7), r('mlp', 1, 0.5, 0.7)]);
    expect(s.layer).toBe(27);
    s = pick([r('mlp', -1, 0.5, 0.7), r('mlp', 0, 0.5, 0.7)]);
    expect(s.layer).toBe(0);
    // The deeper layer wins even against an earlier module.
    s = pick([r('q_proj', 1, 0.5, 0.7), r('all', 2, 0.5, 0.7)]);
    expect([s.module, s.layer]).toEqual(['all', 2]);
  });

  it('tie on accuracy, ratio and layer: the module that comes first in engine/vocabulary.ts MODULES wins', () => {
    let s = pick([r('attn', 26, 0.5, 0.7), r('mlp', 26, 0.5, 0.7), r('all', 26, 0.5, 0.7)]);
    expect(s.module).toBe('mlp');
    s = pick([r('mlp', 26, 0.5, 0.7), r('fc_out', 26, 0.5, 0.7), r('fc_in', 26, 0.5, 0.7)]);
    expect(s.module).toBe('fc_in');
    s = pick([r('out_proj', 26, 0.5, 0.7), r('v_proj', 26, 0.5, 0.7), r('k_proj', 26, 0.5, 0.7), r('q_proj', 26, 0.5, 0.7)]);
    expect(s.module).toBe('q_proj');
  });

  it('duplicates of one cell: the smallest cell key wins', () => {
    const s = pick([r('mlp', 26, 0.5, 0.7, { cellKey: 'bbb' }), r('mlp', 26, 0.5, 0.7, { cellKey: 'aaa' })]);
    expect(s.validationCellKey).toBe('aaa');
  });

  it('returns one selection per (model, dataset), in order of first appearance', () => {
    const results = [
      r('mlp', 0, 0.5, 0.6, { model: 'llama', dataset: 'copa' }),
      r('mlp', 30, 0.5, 0.62, { model: 'llama', dataset: 'copa' }),
      r('mlp', 26, 0.95, 0.7, { model: 'gptj', dataset: 'cb' }),
      r('mlp', 0, 0.1, 0.9, { model: 'llama', dataset: 'sst2' }),
      r('mlp', 26, 0.1, 0.5, { model: 'gptj', dataset: 'cb' }),
      // A model whose name looks like another pair joined: must stay its own group.
      r('mlp', 1, 0.1, 0.99, { model: 'llama","copa', dataset: '' }),
    ];
    const s = selectBest(results);
    expect(s.map((x) => [x.model, x.dataset, x.layer, x.ratio])).toEqual([
      ['llama', 'copa', 30, 0.5],
      ['gptj', 'cb', 26, 0.95],
      ['llama', 'sst2', 0, 0.1],
      ['llama","copa', '', 1, 0.1],
    ]);
  });

  it('ignores results without a finite accuracy', () => {
    const s = selectBest([r('mlp', 26, 0.5, Number.NaN), r('mlp', 26, 0.9, 0.4), r('mlp', 27, 0.9, Number.POSITIVE_INFINITY)]);
    expect(s).toHaveLength(1);
    expect(s[0].ratio).toBe(0.9);
    expect(s[0].layer).toBe(26);
    expect(selectBest([r('mlp', 26, 0.5, Number.NaN)])).toEqual([]);
  });

  it('compareCandidates is a strict order consistent with the rules', () => {
    const a = r('mlp', 26, 0.5, 0.7);
    expect(compareCandidates(a, a)).toBe(0);
    expect(compareCandidates(a, r('mlp', 26, 0.5, 0.6))).toBeLessThan(0);
    expect(compareCandidates(a, r('mlp', 26, 0.9, 0.7))).toBeLessThan(0);
    expect(compareCandidates(a, r('mlp', 25, 0.5, 0.7))).toBeLessThan(0);
    expect(compareCandidates(a, r('attn', 26, 0.5, 0.7))).toBeLessThan(0);
    expect(compareCandidates(r('attn', 26, 0.5, 0.7), a)).toBeGreaterThan(0);
  });
});
