/** The strict spec: an unknown key is an error naming it with the closest known key; so are names outside the vocabulary. */
import { describe, expect, it } from 'vitest';
import { checkSpec } from '../../sweepspec/schema.ts';
import { closest, editDistance } from '../../engine/suggest.ts';
import { resolveNamedTask } from '../../engine/tasks/registry.ts';

const base = {
  name: 's',
  models: [{ name: 'a', path: '/m/a' }],
  datasets: [{ name: 'd', task: 'sst2', path: '/d' }],
  modules: ['mlp'],
  layers: [0],
  ratios: [0, 0.5],
};

function problems(input: unknown): string[] {
  const r = checkSpec(input);
  if (r.ok) throw new Error('expected the spec to be refused');
  return r.problems;
}

describe('unknown keys', () => {
  it('misspelled top-level keys are refused, each named with a suggestion (defaults are not used instead)', () => {
    expect(checkSpec(base).ok).toBe(true);
    expect(problems({ ...base, maxInflight: 8, shot: 3, ratio: [0.5] })).toEqual([
      '(spec): unknown key "maxInflight" (did you mean "maxInFlight"?)',
      '(spec): unknown key "shot" (did you mean "shots"?)',
      '(spec): unknown key "ratio" (did you mean "ratios"?)',
    ]);
  });

  it('in every nested object, by field', () => {
    expect(
      problems({
        ...base,
        models: [{ name: 'a', path: '/m/a', revision: 'main' }],
        datasets: [
          { name: 'd', task: 'sst2', path: '/d', tsk: 'rte' },
          { name: 'e', path: '/e', task: { template: 'x {answer}', answers: { 0: 'a', 1: 'b' }, labelFeild: 'y' } },
        ],
        sizes: { testperclass: 5 },
        scoring: { svd: 'exact', multiplechoice: 'loglik' },
      }),
    ).toEqual([
      'models[0]: unknown key "revision"',
      'datasets[0]: unknown key "tsk" (did you mean "task"?)',
      'datasets[1].task: unknown key "labelFeild" (did you mean "labelField"?)',
      'sizes: unknown key "testperclass" (did you mean "testPerClass"?)',
      'scoring: unknown key "multiplechoice" (did you mean "multipleChoice"?)',
    ]);
  });
});

describe('names outside the vocabulary', () => {
  it('modules and recipes name the value with the closest known one', () => {
    const p = problems({ ...base, modules: ['mlps', 'fc_in'], datasets: [{ name: 'd', task: 'sst2', path: '/d' }, { name: 'y', recipe: 'sentiment-uci/yelpp' }] });
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^datasets\[1\]\.recipe: unknown recipe "sentiment-uci\/yelpp" \(did you mean "sentiment-uci\/yelp"\?\)/);
    expect(p[1]).toMatch(/^modules\[0\]: unknown module "mlps" \(did you mean "mlp"\?\)/);
  });

  it('a task name outside the registry is refused by the engine, naming the closest known one', () => {
    expect(() => resolveNamedTask('sst-2')).toThrow(/^unknown task "sst-2" \(did you mean "sst2"\?\); known tasks: /);
  });
});

describe('closest', () => {
  it('suggests only likely misspellings', () => {
    expect(editDistance('maxInflight', 'maxInFlight')).toBe(0); // case-insensitive
    expect(editDistance('shtos', 'shots')).toBe(1); // a transposition is one edit
    expect(closest('seeds', ['seed', 'shots'])).toBe('seed');
    expect(closest('revision', ['name', 'path'])).toBeUndefined();
    expect(closest('x', [])).toBeUndefined();
  });
});
