/**
 * Reading an exported model.onnx with onnx-proto (protobufjs): initializers (raw_data, float_data, or
 * external data), float16 -> float32, and the graph rewrite that turns prunable weights into inputs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { EngineInputError } from '../types.ts';

export const { onnx } = onnxProto;
export type ModelProto = InstanceType<typeof onnx.ModelProto>;
export type TensorProto = InstanceType<typeof onnx.TensorProto>;
export type NodeProto = InstanceType<typeof onnx.NodeProto>;
export type GraphProto = InstanceType<typeof onnx.GraphProto>;

/** The model's graph with its repeated fields typed as present (protobufjs always fills them on decode). */
export function graphOf(model: ModelProto): GraphProto {
  return model.graph as GraphProto;
}

export const DT_FLOAT = 1;
export const DT_FLOAT16 = 10;
export const DT_BFLOAT16 = 16;
const EXTERNAL = 1;

export function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

/** Decodes model.onnx; any failure is an EngineInputError naming the file. */
/** The ONNX graph `file` (default model.onnx) of a model folder. */
export function readModelProto(dir: string, file = 'model.onnx'): { model: ModelProto; path: string; bytes: number } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new EngineInputError(`model folder not found: ${dir}`, dir);
  }
  const path = join(dir, file);
  if (!existsSync(path)) throw new EngineInputError(`model file not found: ${path}`, path);
  const buf = readFileSync(path);
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(buf);
  } catch (e) {
    throw new EngineInputError(`corrupt ONNX model ${path}: ${(e as Error).message}`, path);
  }
  if (!model.graph || !model.graph.node || model.graph.node.length === 0) {
    throw new EngineInputError(`corrupt ONNX model ${path}: no graph`, path);
  }
  return { model, path, bytes: buf.length };
}

function externalInfo(t: TensorProto): { location: string; offset: number; length: number | null } {
  let location = '';
  let offset = 0;
  let length: number | null = null;
  for (const e of t.externalData) {
    if (e.key === 'location') location = e.value ?? '';
    else if (e.key === 'offset') offset = Number(e.value);
    else if (e.key === 'length') length = Number(e.value);
  }
  return { location, offset, length };
}

/** The external-data files the graph's initializers name (relative to the graph's folder). */
export function externalDataFiles(model: ModelProto): string[] {
  const files = new Set<string>();
  for (const t of graphOf(model).initializer as TensorProto[]) if (isExternal(t)) files.add(externalInfo(t).location);
  return [...files];
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === EXTERNAL;
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/**
 * The tensor's stored bytes (raw_data, or external data read asynchronously so the event loop stays free
 * during a big load), or null when it uses a typed *_data field.
 */
export async function tensorBytes(t: TensorProto, dir: string): Promise<Uint8Array | null> {
  if (!isExternal(t)) return t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const { location, offset, length } = externalInfo(t);
  const file = resolve(dir, location);
  // As ONNX Runtime: external data lives in the model's folder (a location may not climb out of it).
  if (isAbsolute(location) || relative(resolve(dir), file).startsWith('..')) {
    throw new EngineInputError(`tensor ${t.name}: its external data location is outside the model folder ${dir}`, t.name);
  }
  if (!location || !existsSync(file)) {
    throw new EngineInputError(`external data file not found for tensor ${t.name}: ${file}`, file);
  }
  const size = length ?? statSync(file).size - offset;
  const out = new Uint8Array(size);
  const fh = await open(file, 'r');
  try {
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(out, got, Math.min(size - got, 64 << 20), offset + got);
      if (bytesRead <= 0) throw new EngineInputError(`external data file ${file} is truncated (tensor ${t.name})`, file);
      got += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return out;
}

/** A float tensor's values as a fresh float32 array (float16 / bfloat16 converted). */
export async function tensorToFloat32(t: TensorProto, dir: string): Promise<Float32Array> {
  const count = t.dims.reduce<number>((a, d) => a * toNum(d), 1);
  const bytes = await tensorBytes(t, dir);
  if (t.dataType === DT_FLOAT) {
    if (bytes) {
      if (bytes.length !== count * 4) throw new EngineInputError(`tensor ${t.name}: ${bytes.length} bytes for ${count} floats`, t.name);
      if (isExternal(t) && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count); // already a fresh copy
      const out = new Float32Array(count);
      new Uint8Array(out.buffer).set(bytes);
      return out;
    }
    return Float32Array.from(t.floatData);
  }
  if (t.dataType === DT_FLOAT16 || t.dataType === DT_BFLOAT16) {
    let halves: Uint16Array;
    if (bytes) {
      const copy = new Uint8Array(count * 2);
      copy.set(bytes.subarray(0, count * 2));
      halves = new Uint16Array(copy.buffer);
    } else {
      halves = Uint16Array.from(t.int32Data); // float16 values are stored in int32_data when not raw
    }
    const out = new Float32Array(count);
    if (t.dataType === DT_FLOAT16) for (let i = 0; i < count; i++) out[i] = halfToFloat(halves[i]);
    else {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = halves[i] << 16;
    }
    return out;
  }
  throw new EngineInputError(`tensor ${t.name} has unsupported data type ${t.dataType} for a prunable weight`, t.name);
}

/** float32 values -> the tensor's element type, as ONNX Runtime expects them in a feed. */
export function fromFloat32(values: Float32Array, dataType: number): Float32Array | Uint16Array {
  if (dataType === DT_FLOAT) return values;
  const out = new Uint16Array(values.length);
  if (dataType === DT_FLOAT16) for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]);
  else {
    const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < values.length; i++) {
      const x = u[i];
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/**
 * Rewrites the model in place: the named initializers leave graph.initializer and become graph inputs
 * (they must: onnxruntime silently ignores a feed for an initializer that is also an input); every other
 * external-data initializer is read and inlined, so the session can be created from bytes.
 */
export async function weightsToInputs(model: ModelProto, dir: string, names: Set<string>): Promise<Uint8Array> {
  const graph = graphOf(model);
  const kept: TensorProto[] = [];
  const moved: TensorProto[] = [];
  for (const t of graph.initializer as TensorProto[]) {
    if (names.has(t.name)) {
      moved.push(t);
      continue;
    }
    if (isExternal(t)) {
      t.rawData = (await tensorBytes(t, dir))!;
      t.externalData = [];
      t.dataLocation = 0;
    }
    kept.push(t);
  }
  graph.initializer = kept;
  const inputNames = new Set(graph.input.map((i) => i.name));
  for (const t of moved) {
    if (inputNames.has(t.name)) continue;
    graph.input.push(
      onnx.ValueInfoProto.create({
        name: t.name,
        type: onnx.TypeProto.create({
          tensorType: onnx.TypeProto.Tensor.create({
            elemType: t.dataType,
            shape: onnx.TensorShapeProto.create({ dim: t.dims.map((d) => onnx.TensorShapeProto.Dimension.create({ dimValue: toNum(d) })) }),
          }),
        }),
      }),
    );
  }
  const bytes = onnx.ModelProto.encode(model).finish();
  graph.initializer = [...kept, ...moved];
  graph.input = graph.input.filter((i) => !names.has(i.name ?? '') || inputNames.has(i.name ?? ''));
  return bytes;
}

export const LOGITS_POSITIONS = 'logits_positions';

/**
 * Lets a run ask for the logits of chosen positions only: the final projection (MatMul of the last
 * hidden state [B, L, h] by an initializer [h, V], whose output is `logits`) is rewired to
 * Gather(Reshape(hidden, [-1, h]), logits_positions) so `logits` becomes [N, V] for the N flat
 * positions (b * L + j) fed in `logits_positions`. Returns false (graph unchanged) when the graph does
 * not have that shape.
 */
export function selectableLogits(model: ModelProto): boolean {
  const g = graphOf(model);
  const nodes = g.node as NodeProto[];
  const idx = nodes.findIndex((n) => n.output.includes('logits'));
  if (idx < 0) return false;
  const node = nodes[idx];
  const w = (g.initializer as TensorProto[]).find((t) => t.name === node.input[1]);
  if (node.opType !== 'MatMul' || !w || w.dims.length !== 2) return false;
  const h = toNum(w.dims[0]);
  const v = toNum(w.dims[1]);
  const out = g.output.find((o) => o.name === 'logits');
  if (!out) return false;
  const shapeName = '__icl_flat_shape';
  g.initializer.push(onnx.TensorProto.create({ name: shapeName, dataType: 7, dims: [2], int64Data: [-1, h] }));
  const flat = '__icl_hidden_flat';
  const picked = '__icl_hidden_picked';
  const reshape = onnx.NodeProto.create({ name: '/icl/logits/Reshape', opType: 'Reshape', input: [node.input[0], shapeName], output: [flat] });
  const gather = onnx.NodeProto.create({
    name: '/icl/logits/Gather', opType: 'Gather', input: [flat, LOGITS_POSITIONS], output: [picked],
    attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 })],
  });
  node.input[0] = picked;
  g.node.splice(idx, 0, reshape, gather);
  g.input.push(
    onnx.ValueInfoProto.create({
      name: LOGITS_POSITIONS,
      type: onnx.TypeProto.create({
        tensorType: onnx.TypeProto.Tensor.create({ elemType: 7, shape: onnx.TensorShapeProto.create({ dim: [onnx.TensorShapeProto.Dimension.create({ dimParam: 'num_positions' })] }) }),
      }),
    }),
  );
  out.type = onnx.TypeProto.create({
    tensorType: onnx.TypeProto.Tensor.create({
      elemType: out.type?.tensorType?.elemType ?? DT_FLOAT,
      shape: onnx.TensorShapeProto.create({ dim: [onnx.TensorShapeProto.Dimension.create({ dimParam: 'num_positions' }), onnx.TensorShapeProto.Dimension.create({ dimValue: v })] }),
    }),
  });
  // drop stale shape info about the old [B, L, V] logits
  g.valueInfo = g.valueInfo.filter((vi) => vi.name !== 'logits');
  return true;
}
