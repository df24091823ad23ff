/** Cutting a cell's queries into model calls: padding against runs. */
import { describe, expect, it } from 'vitest';
import { batchesByLength } from '../../engine/batches.ts';

const padding = (lengths: number[], batches: number[][]) =>
  batches.reduce((a, b) => a + b.length * Math.max(...b.map((i) => lengths[i])) - b.reduce((s, i) => s + lengths[i], 0), 0);

describe('batchesByLength', () => {
  it('covers every query once, in length order, at most maxRows per call', () => {
    const lengths = Array.from({ length: 50 }, (_, i) => 5 + ((i * 37) % 29));
    const batches = batchesByLength(lengths, 16);
    expect(batches.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(16);
    const flat = batches.flat().map((i) => lengths[i]);
    expect(flat).toEqual([...flat].sort((a, b) => a - b));
  });

  it('cuts where padding costs more than a run, and nowhere else', () => {
    // equal lengths: nothing to save, fewest runs
    expect(batchesByLength(new Array(40).fill(12), 16).map((b) => b.length)).toEqual([8, 16, 16]);
    // two clusters: one call would pad 8 rows by 45 positions (360 > a run's 32): two calls
    const two = [...new Array(8).fill(5), ...new Array(8).fill(50)];
    expect(batchesByLength(two, 16).map((b) => b.map((i) => two[i]))).toEqual([new Array(8).fill(5), new Array(8).fill(50)]);
    // a small step (8 rows by 1 position) is not worth a run
    const near = [...new Array(8).fill(10), ...new Array(8).fill(11)];
    expect(batchesByLength(near, 16)).toHaveLength(1);
  });

  it('pads less than fixed batches of maxRows on a real spread of lengths, with at most one more call', () => {
    const lengths = [7, 7, 8, 8, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 14, 14, 14, 14, 14, 15, 16, 17, 17, 17, 18, 19, 20, 20, 21, 22, 24, 25, 25, 26, 26, 26, 28, 28, 29, 29, 30, 30, 33, 33];
    const fixed = Array.from({ length: 4 }, (_, k) => Array.from({ length: Math.min(16, 50 - 16 * k) }, (_, i) => 16 * k + i));
    const cut = batchesByLength(lengths, 16);
    expect(padding(lengths, fixed)).toBe(162);
    expect(padding(lengths, cut)).toBeLessThan(100);
    expect(cut.length).toBeLessThanOrEqual(fixed.length + 1);
  });
});
