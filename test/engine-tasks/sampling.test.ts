/** Demonstrations, validation and test sets: deterministic, balanced, interleaved, disjoint. */
import { describe, expect, it } from 'vitest';
import { prepareDataset, type PreparedDataset } from '../../engine/data/index.ts';
import type { Row, SplitName } from '../../engine/data/files.ts';
import { virtualRead } from './virtual-dataset.ts';
import type { ResolvedTask } from '../../engine/tasks/definitions.ts';
import { BUILTIN_DEFINITIONS } from '../../engine/tasks/registry.ts';
import { createRng, shuffledIndices } from '../../engine/random.ts';
import { sampleCell } from '../../engine/tasks/sampling.ts';
import { EngineInputError } from '../../engine/types.ts';

/** n rows per class, classes cycling, each row tagged with its position. */
function textRows(perClass: number[], field = 'sentence'): Row[] {
  const rows: Row[] = [];
  const left = [...perClass];
  for (let k = 0; left.some((x) => x > 0); k++) {
    const c = k % perClass.length;
    if (left[c] === 0) continue;
    left[c]--;
    rows.push({ [field]: `row ${rows.length}`, label: c });
  }
  return rows;
}

function ds(task: ResolvedTask, splits: Partial<Record<SplitName, Row[]>>): PreparedDataset {
  return prepareDataset(virtualRead(splits), task);
}

describe('PRNG', () => {
  it('is pinned (changing it changes every cell: bump ENGINE_VERSION)', () => {
    expect(shuffledIndices(10, 42)).toEqual([8, 3, 2, 1, 6, 4, 5, 0, 7, 9]);
    expect(shuffledIndices(10, 49)).toEqual([1, 2, 7, 5, 8, 3, 6, 0, 9, 4]);
    const r = createRng(0);
    expect([r(), r(), r()]).toEqual([4205396811, 3543653536, 1222415357]);
  });

  it('gives a permutation', () => {
    const p = shuffledIndices(1000, 7);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});

describe('sampleCell', () => {
  const sst2 = ds(BUILTIN_DEFINITIONS.sst2, { train: textRows([50, 50]), validation: textRows([7, 5]) });

  it('is deterministic and depends on the seed', () => {
    const a = sampleCell(sst2, { split: 'validation', sizes: { validationPerClass: 10 } });
    const b = sampleCell(sst2, { split: 'validation', sizes: { validationPerClass: 10 } });
    expect(b).toEqual(a);
    expect(a.seed).toBe(49);
    expect(a.shots).toBe(10);
    const c = sampleCell(sst2, { split: 'validation', seed: 50, sizes: { validationPerClass: 10 } });
    expect(c.demos.map((d) => d.index)).not.toEqual(a.demos.map((d) => d.index));
  });

  it('interleaves demonstrations in the task class order, 5 per class for sst2', () => {
    const s = sampleCell(sst2, { split: 'test', sizes: {} });
    expect(s.demos.map((d) => d.label)).toEqual([1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
    for (const d of s.demos) expect(sst2.splits.train!.rows[d.index]).toBe(d.row);
  });

  it('rte / cb / copa take the first 5 of the interleaved list; agnews 2 per class', () => {
    const rte = ds(BUILTIN_DEFINITIONS.rte, { train: textRows([20, 20], 'premise').map((r) => ({ ...r, hypothesis: 'h' })) });
    expect(sampleCell(rte, { split: 'validation', sizes: {} }).demos.map((d) => d.label)).toEqual([0, 1, 0, 1, 0]);
    const cb = ds(BUILTIN_DEFINITIONS.cb, { train: textRows([20, 20, 20], 'premise').map((r) => ({ ...r, hypothesis: 'h' })) });
    expect(sampleCell(cb, { split: 'validation', sizes: {} }).demos.map((d) => d.label)).toEqual([0, 2, 1, 0, 2]);
    const ag = ds(BUILTIN_DEFINITIONS.agnews, { train: textRows([9, 9, 9, 9], 'text') });
    expect(sampleCell(ag, { split: 'validation', sizes: {} }).demos.map((d) => d.label)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    const copaRows = textRows([10, 10], 'premise').map((r) => ({ ...r, question: 'cause', choice1: 'a', choice2: 'b' }));
    const copa = ds(BUILTIN_DEFINITIONS.copa, { train: copaRows });
    expect(sampleCell(copa, { split: 'validation', sizes: {} }).demos.map((d) => d.label)).toEqual([1, 0, 1, 0, 1]);
  });

  it('validation is balanced, interleaved and disjoint from the demonstrations', () => {
    const s = sampleCell(sst2, { split: 'validation', sizes: { validationPerClass: 12 } });
    expect(s.source.split).toBe('train');
    expect(s.examples.filter((e) => e.label === 0)).toHaveLength(12);
    expect(s.examples.filter((e) => e.label === 1)).toHaveLength(12);
    expect(s.examples.slice(0, 4).map((e) => e.label)).toEqual([1, 0, 1, 0]);
    const demo = new Set(s.demos.map((d) => d.index));
    expect(s.examples.some((e) => demo.has(e.index))).toBe(false);
    expect(new Set(s.examples.map((e) => e.index)).size).toBe(24);
    for (const e of s.examples) {
      expect(sst2.splits.train!.rows[e.index]).toBe(e.row);
      expect(sst2.splits.train!.labels![e.index]).toBe(e.label);
    }
  });

  it('demonstrations do not depend on the sizes; validation of a smaller size is a prefix per class', () => {
    const small = sampleCell(sst2, { split: 'validation', sizes: { validationPerClass: 3 } });
    const big = sampleCell(sst2, { split: 'validation', sizes: { validationPerClass: 20 } });
    expect(small.demos).toEqual(big.demos);
    expect(small.examples.map((e) => e.index)).toEqual(big.examples.slice(0, 6).map((e) => e.index));
  });

  it('default validation size is a cap: a scarce class gives what it has', () => {
    const cb = ds(BUILTIN_DEFINITIONS.cb, { train: textRows([40, 40, 6], 'premise').map((r) => ({ ...r, hypothesis: 'h' })) });
    const s = sampleCell(cb, { split: 'validation', sizes: {} });
    // 5 demonstrations = Yes, Maybe, No, Yes, Maybe: 2 Yes, 1 No, 2 Maybe used.
    expect([0, 1, 2].map((c) => s.examples.filter((e) => e.label === c).length)).toEqual([38, 39, 4]);
  });

  it('test: the whole held-out split in file order by default, T per class when asked', () => {
    const all = sampleCell(sst2, { split: 'test', sizes: {} });
    // sst2 has no test split here: the validation split serves as test.
    expect(all.source.split).toBe('validation');
    expect(all.examples.map((e) => e.index)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    const some = sampleCell(sst2, { split: 'test', sizes: { testPerClass: 4 } });
    expect(some.examples.filter((e) => e.label === 0)).toHaveLength(4);
    expect(some.examples.filter((e) => e.label === 1)).toHaveLength(4);
    expect(sampleCell(sst2, { split: 'test', sizes: { testPerClass: 4 } })).toEqual(some);
  });

  it('test: an unlabelled test split (-1) is skipped for the validation split; a labelled one is used', () => {
    const unl = ds(BUILTIN_DEFINITIONS.sst2, { train: textRows([20, 20]), validation: textRows([3, 3]), test: textRows([4, 4]).map((r) => ({ ...r, label: -1 })) });
    expect(sampleCell(unl, { split: 'test', shots: 2, sizes: {} }).source.split).toBe('validation');
    const lab = ds(BUILTIN_DEFINITIONS.sst2, { train: textRows([20, 20]), validation: textRows([3, 3]), test: textRows([4, 4]) });
    const s = sampleCell(lab, { split: 'test', shots: 2, sizes: {} });
    expect(s.source.split).toBe('test');
    expect(s.examples).toHaveLength(8);
  });

  it('rte uses the validation split as test even when a labelled test split exists', () => {
    const mk = (n: number[]) => textRows(n, 'premise').map((r) => ({ ...r, hypothesis: 'h' }));
    const rte = ds(BUILTIN_DEFINITIONS.rte, { train: mk([10, 10]), validation: mk([3, 3]), test: mk([5, 5]) });
    const s = sampleCell(rte, { split: 'test', sizes: {} });
    expect(s.source.split).toBe('validation');
    expect(s.examples).toHaveLength(6);
  });

  it('without a held-out split, test is the rest of train, disjoint from demonstrations and validation', () => {
    const only = ds(BUILTIN_DEFINITIONS.sst2, { train: textRows([30, 30]) });
    const val = sampleCell(only, { split: 'validation', sizes: { validationPerClass: 8 } });
    const test = sampleCell(only, { split: 'test', sizes: { validationPerClass: 8 } });
    expect(test.source.split).toBe('train');
    expect(test.examples).toHaveLength(60 - 10 - 16);
    const used = new Set([...val.demos, ...val.examples].map((e) => e.index));
    expect(test.examples.some((e) => used.has(e.index))).toBe(false);
    const t4 = sampleCell(only, { split: 'test', sizes: { validationPerClass: 8, testPerClass: 4 } });
    expect(t4.examples).toHaveLength(8);
    expect(t4.examples.some((e) => used.has(e.index))).toBe(false);
  });

  it('shots 0 gives no demonstrations', () => {
    expect(sampleCell(sst2, { split: 'test', shots: 0, sizes: {} }).demos).toEqual([]);
  });

  describe('too few examples -> EngineInputError naming the file and the field', () => {
    const small = ds(BUILTIN_DEFINITIONS.sst2, { train: textRows([4, 9]), validation: textRows([2, 2]) });
    const cases: [string, Parameters<typeof sampleCell>[1], RegExp][] = [
      ['demonstrations', { split: 'validation', shots: 10, sizes: {} }, /\/virtual\/train\.jsonl: field "label": too few examples of class "neg" for 10 demonstrations/],
      ['validation', { split: 'validation', shots: 2, sizes: { validationPerClass: 4 } }, /\/virtual\/train\.jsonl: field "label": too few examples of class "neg" for validationPerClass 4/],
      ['test', { split: 'test', shots: 2, sizes: { testPerClass: 3 } }, /\/virtual\/validation\.jsonl: field "label": too few examples of class "neg" for testPerClass 3/],
    ];
    for (const [what, req, message] of cases) {
      it(what, () => {
        let err: unknown;
        try {
          sampleCell(small, req);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(EngineInputError);
        expect((err as Error).message).toMatch(message);
        expect((err as EngineInputError).subject).toMatch(/^\/virtual\//);
      });
    }
  });
});
