/** The captured-states store: a memory bound with spilling, a disk bound and a prompt-set bound, sets in use kept. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StateStore } from '../../engine/model/states.ts';

const root = mkdtempSync(join(tmpdir(), 'icl-states-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const block = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => seed + i / 7);
const halves = (n: number) => Uint16Array.from({ length: n }, (_, i) => (i * 977) & 0xffff);

describe('StateStore', () => {
  it('keeps memory under its bound by spilling the least recently used blocks, and reads them back unchanged', () => {
    const spill = join(root, 'spill-1');
    const store = new StateStore(spill, { memoryBytes: 3 * 4000, diskBytes: 1 << 30, promptSets: 8 });
    const set = store.acquire([1, 2, 3]);
    const blocks = [0, 1, 2, 3, 4].map((k) => store.add(set, block(1000, k)));
    const half = store.add(set, halves(2000));
    expect(store.memoryBytes).toBeLessThanOrEqual(3 * 4000);
    expect(blocks[0].data).toBeNull(); // the oldest went to disk
    expect(store.diskBytes).toBe(3 * 4000);
    for (const [k, b] of blocks.entries()) expect(Array.from(store.read(b))).toEqual(Array.from(block(1000, k)));
    expect(Array.from(store.read(half))).toEqual(Array.from(halves(2000)));
    expect(store.read(half)).toBeInstanceOf(Uint16Array);
    expect(store.memoryBytes).toBeLessThanOrEqual(3 * 4000);
    store.release(set);
    store.clear();
    expect(readdirSync(spill)).toEqual([]);
  });

  it('drops whole prompt sets, least recently used first, beyond the set and disk bounds, never one in use or the newest', () => {
    const store = new StateStore(join(root, 'spill-2'), { memoryBytes: 4000, diskBytes: 3 * 4000, promptSets: 2 });
    const a = store.acquire([1]);
    const kept = store.add(a, block(1000, 1));
    store.release(a);
    const b = store.acquire([2]);
    store.add(b, block(1000, 2));
    store.release(b);
    const c = store.acquire([3]); // a third set: the oldest (a) goes
    expect(a.blocks.size).toBe(0);
    expect(() => store.read(kept)).toThrow(/dropped/);
    expect(store.acquire([2])).toBe(b); // still there
    store.release(b);
    store.release(store.acquire([3])); // c most recently used again (and still held once)
    // c in use: spilling beyond the disk bound drops b, not c
    for (let k = 0; k < 5; k++) store.add(c, block(1000, 10 + k));
    expect(b.blocks.size).toBe(0);
    expect(c.blocks.size).toBe(5);
    expect(store.diskBytes).toBeGreaterThan(3 * 4000); // over the bound: c is in use, and the newest
    store.release(c);
    expect(c.blocks.size).toBe(5);
    const d = store.acquire([4]); // a newer set: c may go now
    expect(c.blocks.size).toBe(0);
    expect(store.diskBytes).toBe(0);
    store.release(d);
    store.clear();
  });

  it('removes spill folders left by processes that are gone, not those of live ones', () => {
    const spill = join(root, 'spill-3');
    const dead = join(spill, '999999999-old');
    const live = join(spill, `${process.ppid}-other`);
    mkdirSync(dead, { recursive: true });
    mkdirSync(live, { recursive: true });
    const store = new StateStore(spill, { memoryBytes: 0, diskBytes: 1 << 30, promptSets: 8 });
    const set = store.acquire([]);
    store.add(set, block(10, 0));
    store.add(set, block(10, 1)); // the first spills: the folder is made now
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    store.release(set);
    store.clear();
  });
});
