/** The graph rewrites on their own: what each changes in the graph, and that the result runs. */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { float32Boundary, LOGITS_POSITIONS, selectableLogits, sessionGraph, sharedPastBatch, widenGraph } from '../../engine/model/graph.ts';
import { DT_BFLOAT16, DT_FLOAT, DT_FLOAT16, graphOf, isExternal, type NodeProto, onnx, readModelProto, type TensorProto } from '../../engine/model/onnx.ts';
import { widenInitializers, WIDENED_FILE } from '../../engine/model/weight-store.ts';

const MODELS = join(import.meta.dirname, '../fixtures/models');
const load = (dir: string) => readModelProto(join(MODELS, dir), join(MODELS, dir, 'model.onnx')).model;
const same = (t: number) => t;

function ids(values: number[], B = 1) {
  const L = values.length;
  const all = Array.from({ length: B }, () => values).flat();
  return {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(all.map(BigInt)), [B, L]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(all.map(() => 1n)), [B, L]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(Array.from({ length: B }, () => values.map((_, i) => BigInt(i))).flat()), [B, L]),
  };
}

describe('sessionGraph', () => {
  it('moves the named initializers to graph inputs, keeps external data references, leaves the model as it was', () => {
    const model = load('llama');
    const before = onnx.ModelProto.encode(model).finish();
    const weight = (graphOf(model).initializer as TensorProto[]).find((t) => t.name.startsWith('onnx::MatMul'))!;
    const bytes = sessionGraph(model, new Set([weight.name]), same);
    expect(Buffer.from(onnx.ModelProto.encode(model).finish()).equals(Buffer.from(before))).toBe(true);
    // no weight bytes in the graph: it is about as big as model.onnx, whose weights are all in model.onnx_data
    expect(bytes.length).toBeLessThan(statSync(join(MODELS, 'llama', 'model.onnx')).size + 4096);
    const g = graphOf(onnx.ModelProto.decode(bytes));
    expect(g.initializer.some((t) => t.name === weight.name)).toBe(false);
    expect(g.input.find((i) => i.name === weight.name)?.type?.tensorType?.elemType).toBe(DT_FLOAT);
    expect((g.initializer as TensorProto[]).every((t) => isExternal(t))).toBe(true);
  });

  it('feeds a bfloat16 weight as float32 through a Cast inside the graph', () => {
    const model = load('llama-nopast');
    const weight = (graphOf(model).initializer as TensorProto[]).find((t) => t.name.startsWith('onnx::MatMul'))!;
    weight.dataType = DT_BFLOAT16;
    const g = graphOf(onnx.ModelProto.decode(sessionGraph(model, new Set([weight.name]), (t) => (t === DT_BFLOAT16 ? DT_FLOAT : t))));
    expect(g.input.find((i) => i.name === `${weight.name}__fed`)?.type?.tensorType?.elemType).toBe(DT_FLOAT);
    const cast = (g.node as NodeProto[]).find((n) => n.output.includes(weight.name))!;
    expect(cast.opType).toBe('Cast');
    expect(Number(cast.attribute[0].i)).toBe(DT_BFLOAT16);
  });
});

describe('selectableLogits', () => {
  it('rewires the projection behind a bias Add and a Cast (GPT-J) and returns only the chosen positions', async () => {
    const model = load('gptj-nopast');
    expect(selectableLogits(model)).toBe(true);
    expect(graphOf(model).input.some((i) => i.name === LOGITS_POSITIONS)).toBe(true);
    const s = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), {
      extra: { session: { model_external_initializers_file_folder_path: join(MODELS, 'gptj-nopast') } },
    });
    const out = await s.run({ ...ids([5, 6, 7, 8], 2), [LOGITS_POSITIONS]: new ort.Tensor('int64', BigInt64Array.from([3n, 5n]), [2]) });
    expect(out.logits.dims).toEqual([2, 512]);
    await s.release();
  });

  it('leaves a graph whose logits do not come from a MatMul by an initializer alone', () => {
    const model = load('gpt2-nopast');
    const g = graphOf(model);
    const producer = (g.node as NodeProto[]).find((n) => n.output.includes('logits'))!;
    producer.opType = 'Gemm';
    expect(selectableLogits(model)).toBe(false);
    expect(g.input.some((i) => i.name === LOGITS_POSITIONS)).toBe(false);
  });
});

describe('sharedPastBatch', () => {
  it('takes batch-1 past key values and broadcasts them to the batch in the graph', async () => {
    const model = load('gpt2');
    const past = graphOf(model).input.map((i) => i.name!).filter((n) => n.startsWith('past_key_values.'));
    sharedPastBatch(model, past);
    const dims = graphOf(model).input.find((i) => i.name === past[0])!.type!.tensorType!.shape!.dim!;
    expect(Number(dims[0].dimValue)).toBe(1);
    expect(graphOf(model).node.filter((n) => n.opType === 'Expand' && n.name!.startsWith('/icl/past/'))).toHaveLength(past.length);
    const s = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish());
    const first = await s.run({ ...ids([5, 6, 7]), ...Object.fromEntries(past.map((p) => [p, new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8])])) });
    // three rows of one token each on top of the same 3-token prefix, fed once
    const feeds = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from([9n, 9n, 10n]), [3, 1]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(Array(12).fill(1n)), [3, 4]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from([3n, 3n, 3n]), [3, 1]),
      ...Object.fromEntries(past.map((p) => [p, first[p.replace('past_key_values', 'present')]])),
    };
    const out = await s.run(feeds);
    const row = (b: number) => (out.logits.data as Float32Array).slice(b * 512, (b + 1) * 512);
    expect(out.logits.dims).toEqual([3, 1, 512]);
    expect(Array.from(row(0))).toEqual(Array.from(row(1)));
    expect(Array.from(row(0))).not.toEqual(Array.from(row(2)));
    await s.release();
  });
});

describe('float16 to float32', () => {
  it('widenGraph + widenInitializers turn a float16 export into a float32 one that runs from the in-memory file', async () => {
    const dir = join(MODELS, 'gptj-fp16');
    const model = load('gptj-fp16');
    const g = graphOf(model);
    expect(g.input.find((i) => i.name === 'past_key_values.0.key')!.type!.tensorType!.elemType).toBe(DT_FLOAT16);
    widenGraph(model);
    const file = widenInitializers(model, dir, join(dir, 'model.onnx'))!;
    expect(file.path).toBe(WIDENED_FILE);
    const data = await file.fill();
    expect(data.length).toBe(2 * statSync(join(dir, 'model.onnx_data')).size);
    expect(file.bytes).toBe(data.length);
    expect((g.initializer as TensorProto[]).every((t) => t.dataType !== DT_FLOAT16)).toBe(true);
    expect((g.node as NodeProto[]).every((n) => n.opType !== 'Cast' || Number(n.attribute.find((a) => a.name === 'to')!.i) !== DT_FLOAT16)).toBe(true);
    const s = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), {
      externalData: [{ path: file.path, data }],
      extra: { session: { model_external_initializers_file_folder_path: dir } },
    });
    const past = Object.fromEntries(s.inputNames.filter((n) => n.startsWith('past')).map((n) => [n, new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8])]));
    const out = await s.run({ ...ids([5, 6, 7]), ...past });
    expect(out.logits.type).toBe('float32');
    expect((out.logits.data as Float32Array).every(Number.isFinite)).toBe(true);
    await s.release();
  });

  it('float32Boundary: bfloat16 graph inputs and outputs become float32 with a Cast just inside', async () => {
    // y = x (bfloat16) + 1: a graph whose interface JavaScript cannot feed or read
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 18 }],
      graph: {
        name: 'g',
        node: [{ opType: 'Identity', input: ['x'], output: ['y'], name: 'id' }],
        input: [{ name: 'x', type: { tensorType: { elemType: DT_BFLOAT16, shape: { dim: [{ dimValue: 2 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: DT_BFLOAT16, shape: { dim: [{ dimValue: 2 }] } } } }],
      },
    });
    float32Boundary(model);
    const g = graphOf(model);
    expect(g.input[0].type!.tensorType!.elemType).toBe(DT_FLOAT);
    expect(g.output[0].type!.tensorType!.elemType).toBe(DT_FLOAT);
    const s = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish());
    const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from([1.5, -2.25]), [2]) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([1.5, -2.25]); // both exact in bfloat16
    await s.release();
  });
});

it('the fixtures used here exist', () => {
  for (const d of ['llama', 'gptj-nopast', 'gpt2', 'gptj-fp16']) expect(readFileSync(join(MODELS, d, 'config.json'), 'utf8')).toContain('model_type');
});
