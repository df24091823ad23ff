/**
 * Edits: a matrix is read from the weight file only when its values are needed (hashed the first time,
 * decomposed on a cache miss, sliced), and the edited matrix is rounded to the model's weight type.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DecompositionCache } from '../../engine/linalg/cache.ts';
import { BusyClock, Editor } from '../../engine/model/edits.ts';
import { DT_FLOAT16, fromFloat32, readModelProto, toFloat32 } from '../../engine/model/onnx.ts';
import { WeightStore } from '../../engine/model/weight-store.ts';
import { familyOf, mapWeights, sizesOf } from '../../engine/model/weights.ts';

const MODELS = join(import.meta.dirname, '../fixtures/models');

function editorOf(name: string) {
  const dir = join(MODELS, name);
  const path = join(dir, 'model.onnx');
  const { model } = readModelProto(dir, path);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const family = familyOf(config, 'config.json');
  const sizes = sizesOf(family, config);
  const map = mapWeights(model, family, sizes, path);
  const store = WeightStore.open(model, new Set(map.tensors.keys()), dir, path);
  const reads: string[] = [];
  const matrix = store.matrix.bind(store);
  store.matrix = async (n: string) => {
    reads.push(n);
    return matrix(n);
  };
  return { editor: new Editor(family, sizes, map, store, new DecompositionCache(null, 1 << 24)), reads };
}

const stats = () => ({ svdSeconds: 0, hits: 0, misses: 0 });
const fp16Exact = (v: Float32Array) => {
  const back = toFloat32(new Uint8Array((fromFloat32(v, DT_FLOAT16) as Uint16Array).buffer), [], DT_FLOAT16, v.length, 'v');
  return Buffer.from(back.buffer).equals(Buffer.from(v.buffer));
};

describe('Editor', () => {
  it('reads a whole matrix once for its first ratio and not again while its decomposition is cached', async () => {
    const { editor, reads } = editorOf('gptj');
    const first = await editor.edited({ module: 'q_proj', layer: 1, ratio: 0.5, svd: 'exact', seed: 0 }, stats());
    expect(reads).toHaveLength(1);
    const s = stats();
    const second = await editor.edited({ module: 'q_proj', layer: 1, ratio: 0.9, svd: 'exact', seed: 0 }, s);
    expect(reads).toHaveLength(1);
    expect(s.hits).toBe(1);
    expect([...second.keys()]).toEqual([...first.keys()]);
    expect(await editor.edited({ module: 'q_proj', layer: 1, ratio: 0, svd: 'exact', seed: 0 }, stats())).toEqual(new Map());
  });

  it('a slice of a fused matrix keeps the rest of it as stored', async () => {
    const { editor, reads } = editorOf('gpt2');
    const out = await editor.edited({ module: 'k_proj', layer: 0, ratio: 0.5, svd: 'exact', seed: 0 }, stats());
    const [[name, values]] = [...out];
    expect(reads.every((r) => r === name)).toBe(true);
    const dir = join(MODELS, 'gpt2');
    const { model } = readModelProto(dir, join(dir, 'model.onnx'));
    const pristine = await WeightStore.open(model, new Set([name]), dir, join(dir, 'model.onnx')).matrix(name);
    // c_attn is [32, 96]: q = columns 0..31 and v = 64..95 untouched, k = 32..63 changed
    const col = (m: Float32Array, c: number) => Array.from({ length: 32 }, (_, r) => m[r * 96 + c]);
    expect(col(values, 0)).toEqual(col(pristine, 0));
    expect(col(values, 95)).toEqual(col(pristine, 95));
    expect(col(values, 40)).not.toEqual(col(pristine, 40));
  });

  it('rounds an edited float16 matrix to float16; leaves a float32 one as reconstructed', async () => {
    const edit = { module: 'fc_in' as const, layer: 0, ratio: 0.5, svd: 'exact' as const, seed: 0 };
    const [half] = [...(await editorOf('gptj-fp16').editor.edited(edit, stats())).values()];
    const [full] = [...(await editorOf('gptj').editor.edited(edit, stats())).values()];
    expect(fp16Exact(half)).toBe(true);
    expect(fp16Exact(full)).toBe(false);
  });

  it("decomposes an edit's matrices side by side, saying so once all are under way and before the values", async () => {
    const { editor } = editorOf('llama');
    const events: string[] = [];
    const s = stats();
    const edit = { module: 'mlp' as const, layer: 1, ratio: 0.5, svd: 'exact' as const, seed: 0 };
    const out = editor.edited(edit, s, () => events.push('started')).then((v) => (events.push('values'), v));
    expect([...(await out).keys()]).toHaveLength(3);
    expect(s.misses).toBe(3);
    expect(events).toEqual(['started', 'values']);
    // all three cached now: started at once all the same
    events.length = 0;
    await editor.edited({ ...edit, ratio: 0.9 }, stats(), () => events.push('started')).then(() => events.push('values'));
    expect(events).toEqual(['started', 'values']);
    const none: string[] = [];
    await editor.edited({ ...edit, ratio: 0 }, stats(), () => none.push('started'));
    expect(none).toEqual(['started']);
  });
});

describe('BusyClock', () => {
  it('counts jobs that run side by side once', async () => {
    const clock = new BusyClock();
    const wait = (ms: number) => clock.time(() => new Promise((r) => setTimeout(r, ms)));
    const t0 = performance.now();
    await Promise.all([wait(120), wait(120), wait(120)]);
    const wall = (performance.now() - t0) / 1000;
    expect(clock.seconds).toBeGreaterThanOrEqual(0.1);
    expect(clock.seconds).toBeLessThanOrEqual(wall + 1e-3);
    await wait(50);
    expect(clock.seconds).toBeGreaterThan(wall + 0.04);
  });
});
