/**
 * The weight store: positioned reads of the matrices a cell edits, from model.onnx or its external data, and
 * the checks on external references (inside the ONNX file's folder, present, long enough). Also the model
 * folder + ONNX file layout (onnx/model.onnx with its data beside it, config and tokenizer at the top).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../engine/model/index.ts';
import { externalInfo, graphOf, onnx, readModelProto, type TensorProto } from '../../engine/model/onnx.ts';
import { realExternalFolder, WeightStore } from '../../engine/model/weight-store.ts';
import { familyOf, mapWeights, sizesOf } from '../../engine/model/weights.ts';
import { EngineInputError } from '../../engine/types.ts';
import { maxDiff } from '../support/max-diff.ts';

const MODELS = join(import.meta.dirname, '../fixtures/models');
const work = mkdtempSync(join(tmpdir(), 'icl-store-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function storeOf(dir: string, file = 'model.onnx') {
  const path = join(dir, file);
  const { model } = readModelProto(dir, path);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const family = familyOf(config, 'config.json');
  const map = mapWeights(model, family, sizesOf(family, config), path);
  return { model, map, open: () => WeightStore.open(model, new Set(map.tensors.keys()), join(path, '..'), path) };
}

function copyOf(dir: string, name: string): string {
  const to = join(work, name);
  cpSync(join(MODELS, dir), to, { recursive: true });
  return to;
}

describe('WeightStore', () => {
  it('reads the same matrices from external data (llama) as from inline raw data (llama-nopast, same weights)', async () => {
    const external = storeOf(join(MODELS, 'llama'));
    const inline = storeOf(join(MODELS, 'llama-nopast'));
    const a = external.open();
    const b = inline.open();
    for (const [role, w] of external.map.byRole) {
      const other = inline.map.byRole.get(role)!;
      const [x, y] = [await a.matrix(w.name), await b.matrix(other.name)];
      expect(x.length).toBe(w.rows * w.cols);
      expect(Buffer.from(x.buffer).equals(Buffer.from(y.buffer))).toBe(true);
    }
  });

  it('widens float16 matrices exactly', async () => {
    const half = storeOf(join(MODELS, 'gptj-fp16')).open();
    const full = storeOf(join(MODELS, 'gptj'));
    const fullStore = full.open();
    const halfMap = storeOf(join(MODELS, 'gptj-fp16')).map;
    for (const [role, w] of full.map.byRole) {
      const x = await fullStore.matrix(w.name);
      const y = await half.matrix(halfMap.byRole.get(role)!.name);
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(1e-3, Math.abs(x[i])));
      expect(worst).toBeLessThan(1e-3); // float16 keeps 11 significant bits
      expect(half.dataType(halfMap.byRole.get(role)!.name)).toBe(10);
    }
  });

  it('refuses external data outside the model folder, missing or too short, naming the file', () => {
    const rewrite = (dir: string, edit: (t: TensorProto) => void) => {
      const path = join(dir, 'model.onnx');
      const { model } = readModelProto(dir, path);
      edit((graphOf(model).initializer as TensorProto[]).find((t) => t.name.startsWith('onnx::MatMul'))!);
      writeFileSync(path, onnx.ModelProto.encode(model).finish());
      return dir;
    };
    const location = (value: string) => (t: TensorProto) => {
      t.externalData.find((e) => e.key === 'location')!.value = value;
    };
    const outside = rewrite(copyOf('llama', 'outside'), location('../llama/model.onnx_data'));
    expect(() => storeOf(outside).open()).toThrow(/outside the model folder/);
    const absolute = rewrite(copyOf('llama', 'absolute'), location(join(MODELS, 'llama', 'model.onnx_data')));
    expect(() => storeOf(absolute).open()).toThrow(EngineInputError);
    const missing = copyOf('llama', 'missing');
    rmSync(join(missing, 'model.onnx_data'));
    expect(() => storeOf(missing).open()).toThrow(/model\.onnx_data/);
    const short = copyOf('llama', 'short');
    const { model } = readModelProto(short, join(short, 'model.onnx'));
    const last = Math.max(...(graphOf(model).initializer as TensorProto[]).map((t) => externalInfo(t).offset));
    truncateSync(join(short, 'model.onnx_data'), last);
    expect(() => storeOf(short).open()).toThrow(/truncated/);
  });
});

describe('a model folder with the ONNX file in a subfolder', () => {
  it('loads onnx/model.onnx with its external data beside it, and the folder-level config and tokenizer', async () => {
    const dir = copyOf('gptj', 'nested');
    mkdirSync(join(dir, 'onnx'));
    renameSync(join(dir, 'model.onnx'), join(dir, 'onnx', 'model.onnx'));
    renameSync(join(dir, 'model.onnx_data'), join(dir, 'onnx', 'model.onnx_data'));
    const refs = JSON.parse(readFileSync(join(MODELS, 'references.json'), 'utf8')).families.gptj;
    const opts = { executionProvider: 'cpu' as const, cacheDir: join(work, 'cache'), decompositionCacheBytes: 1 << 24, threads: 1 };
    await expect(loadModel(dir, opts)).rejects.toThrow(/model file not found/);
    const lm = await loadModel(dir, { ...opts, file: 'onnx/model.onnx' });
    const ref = refs.edits.find((e: { name: string }) => e.name === 'fc_in@0:0.5');
    const e = await lm.withEdit({ ...ref.edit, svd: 'exact', seed: 0 });
    const [row] = await e.nextTokenLogprobs(await e.prefill([]), [refs.prompts[0].ids]);
    expect(maxDiff(row, ref.next_token_logprobs[0])).toBeLessThan(1e-4);
    e.release();
    await lm.dispose();
  });
});

describe('realExternalFolder', () => {
  const locations = (dir: string) => new Set((graphOf(storeOf(dir).model).initializer as TensorProto[]).filter((t) => t.dataLocation === 1).map((t) => externalInfo(t).location));

  it('keeps the ONNX file\'s folder and locations when the data file is a plain file', () => {
    const dir = join(MODELS, 'llama');
    const { model } = storeOf(dir);
    expect(realExternalFolder(model, dir, join(dir, 'model.onnx'))).toBe(dir);
    expect(locations(dir)).toEqual(new Set(['model.onnx_data']));
  });

  it('names a linked data file by its real folder and name (the Hub cache links snapshot files to blobs)', () => {
    const dir = copyOf('llama', 'linked');
    mkdirSync(join(work, 'blobs'));
    renameSync(join(dir, 'model.onnx_data'), join(work, 'blobs/0123abcd'));
    symlinkSync(join(work, 'blobs/0123abcd'), join(dir, 'model.onnx_data'));
    const { model } = storeOf(dir);
    expect(realExternalFolder(model, dir, join(dir, 'model.onnx'))).toBe(realpathSync(join(work, 'blobs')));
    const renamed = (graphOf(model).initializer as TensorProto[]).filter((t) => t.dataLocation === 1).map((t) => externalInfo(t).location);
    expect(new Set(renamed)).toEqual(new Set(['0123abcd']));
  });
});
