/**
 * Reading an exported model.onnx with onnx-proto (protobufjs): the graph, where each initializer's bytes
 * are (inline, or a range of an external data file), and the element types the engine converts between
 * (float32, float16, bfloat16).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { EngineInputError } from '../types.ts';

export const { onnx } = onnxProto;
export type ModelProto = InstanceType<typeof onnx.ModelProto>;
export type TensorProto = InstanceType<typeof onnx.TensorProto>;
export type NodeProto = InstanceType<typeof onnx.NodeProto>;
export type GraphProto = InstanceType<typeof onnx.GraphProto>;
export type ValueInfoProto = InstanceType<typeof onnx.ValueInfoProto>;

/** The model's graph with its repeated fields typed as present (protobufjs always fills them on decode). */
export function graphOf(model: ModelProto): GraphProto {
  return model.graph as GraphProto;
}

export const DT_FLOAT = 1;
export const DT_INT64 = 7;
export const DT_FLOAT16 = 10;
export const DT_BFLOAT16 = 16;
const EXTERNAL = 1;

/** The element type names the engine reports (ModelInfo.weightDtype). */
export type FloatType = 'float32' | 'float16' | 'bfloat16';

export function floatTypeOf(dataType: number, what: string): FloatType {
  if (dataType === DT_FLOAT) return 'float32';
  if (dataType === DT_FLOAT16) return 'float16';
  if (dataType === DT_BFLOAT16) return 'bfloat16';
  throw new EngineInputError(`${what} has data type ${dataType}; prunable weights must be float32, float16 or bfloat16`, what);
}

export function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

/** Decodes an ONNX file; any failure is an EngineInputError naming the file. */
export function readModelProto(dir: string, path: string): { model: ModelProto; bytes: number } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new EngineInputError(`model folder not found: ${dir}`, dir);
  }
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
  return { model, bytes: buf.length };
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

/** An external tensor's location (relative to the ONNX file's folder), offset and length (null: to the end). */
export function externalInfo(t: TensorProto): { location: string; offset: number; length: number | null } {
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

/** Points a tensor at a range of an external data file. */
export function setExternal(t: TensorProto, location: string, offset: number, length: number): void {
  t.externalData = [
    onnx.StringStringEntryProto.create({ key: 'location', value: location }),
    onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
    onnx.StringStringEntryProto.create({ key: 'length', value: String(length) }),
  ];
  t.dataLocation = EXTERNAL;
  t.rawData = new Uint8Array(0);
}

export function elementCount(t: TensorProto): number {
  return t.dims.reduce<number>((a, d) => a * toNum(d), 1);
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

/** Stored values (little-endian bytes, or a typed *_data field) of `count` elements -> float32. */
export function toFloat32(bytes: Uint8Array | null, typed: ArrayLike<number>, dataType: number, count: number, what: string): Float32Array {
  const out = new Float32Array(count);
  if (dataType === DT_FLOAT) {
    if (!bytes) {
      out.set(typed);
      return out;
    }
    if (bytes.length !== count * 4) throw new EngineInputError(`tensor ${what}: ${bytes.length} bytes for ${count} float32 values`, what);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  if (dataType !== DT_FLOAT16 && dataType !== DT_BFLOAT16) floatTypeOf(dataType, `tensor ${what}`);
  let halves: Uint16Array;
  if (bytes) {
    if (bytes.length !== count * 2) throw new EngineInputError(`tensor ${what}: ${bytes.length} bytes for ${count} 16-bit values`, what);
    const copy = new Uint8Array(count * 2);
    copy.set(bytes);
    halves = new Uint16Array(copy.buffer);
  } else {
    halves = Uint16Array.from(typed); // 16-bit floats are stored in int32_data when not raw
  }
  return halvesToFloat32(halves, dataType, out);
}

/** 16-bit patterns of `dataType` (float16 or bfloat16) -> float32, one for each element of `out`. */
export function halvesToFloat32(halves: Uint16Array, dataType: number, out: Float32Array = new Float32Array(halves.length)): Float32Array {
  if (dataType === DT_FLOAT16) for (let i = 0; i < out.length; i++) out[i] = halfToFloat(halves[i]);
  else {
    const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < out.length; i++) u[i] = halves[i] << 16;
  }
  return out;
}

/** float32 values -> 16-bit patterns of `dataType` (round to nearest even); float32 returns the values as they are. */
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

/** Rounds float32 values in place to the nearest value of `dataType` (no-op for float32). */
export function roundTo(values: Float32Array, dataType: number): void {
  if (dataType === DT_FLOAT) return;
  halvesToFloat32(fromFloat32(values, dataType) as Uint16Array, dataType, values);
}
