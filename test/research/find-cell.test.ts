/** Picking one cell of a sweep for `prompt` (cli/sweep-data.ts findCell), with demonstration draws. */
import { describe, expect, it } from 'vitest';
import { findCell } from '../../cli/sweep-data.ts';
import type { CellResultRow } from '../../db/queries.ts';

const row = (seed: number, key: string): CellResultRow =>
  ({ model: 'm', dataset: 'd', module: 'mlp', layer: 0, ratio: 0.9, split: 'test', seed, cellKey: key, status: 'done' }) as CellResultRow;

describe('findCell over demonstration draws', () => {
  const rows = [row(42, 'aaaaaaaa01'), row(43, 'bbbbbbbb02')];
  it('module/layer/ratio matches every draw: --seed picks one, and the error says so', () => {
    expect(() => findCell(rows, 'mlp/0/0.9')).toThrow(/matches 2 cells; add --model, --dataset, --split or --seed/);
    expect(findCell(rows, 'mlp/0/0.9', { seed: 43 }).cellKey).toBe('bbbbbbbb02');
    expect(() => findCell(rows, 'mlp/0/0.9', { seed: 44 })).toThrow(/with those --model\/--dataset\/--split\/--seed/);
  });
});
