/**
 * What a causal-LM graph takes and returns, read from its declared inputs and outputs: token ids, mask and
 * positions (int64 or int32), past key values by layer (float32 or float16), the logits' type.
 */
import * as ort from 'onnxruntime-node';
import { EngineInputError } from '../types.ts';
import type { FedMask } from './mask.ts';
import { DT_FLOAT, DT_FLOAT16, graphOf, type ModelProto, toNum } from './onnx.ts';

interface PastSpec {
  input: string;
  output: string;
  kvHeads: number;
  headDim: number;
}

/** A float tensor type a JavaScript tensor can hold. */
type FeedFloat = 'float32' | 'float16';

export interface IoSpec {
  inputs: Set<string>;
  idsType: 'int64' | 'int32';
  maskType: 'int64' | 'int32';
  posType: 'int64' | 'int32';
  past: PastSpec[];
  /** Element type of the past key values (and present outputs). */
  kvType: FeedFloat;
  logits: string;
  logitsType: FeedFloat;
  /** The graph takes logits_positions and returns logits [N, V] for those flat positions only. */
  selectable: boolean;
  /** The attention mask is fed (several sequences share a row); set when the first session is made. */
  mask: FedMask | null;
}

function floatType(elemType: number | null | undefined, what: string, path: string): FeedFloat {
  if (elemType === DT_FLOAT) return 'float32';
  if (elemType === DT_FLOAT16) return 'float16';
  throw new EngineInputError(`${path}: ${what} has element type ${elemType}; float32 or float16 is supported`, path);
}

/** Reads the graph's interface; call after any rewrite of its inputs and outputs' types. */
export function ioSpec(model: ModelProto, path: string): IoSpec {
  const g = graphOf(model);
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((i) => !inits.has(i.name!));
  const names = new Set(inputs.map((i) => i.name!));
  const typeOf = (name: string): 'int64' | 'int32' => {
    const i = inputs.find((x) => x.name === name);
    return i?.type?.tensorType?.elemType === 6 ? 'int32' : 'int64';
  };
  if (!names.has('input_ids')) throw new EngineInputError(`${path}: the graph has no input_ids input`, path);
  const logits = g.output.find((o) => o.name === 'logits');
  if (!logits) throw new EngineInputError(`${path}: the graph has no logits output`, path);
  const outputs = new Set(g.output.map((o) => o.name!));
  const past: PastSpec[] = [];
  let kvType: FeedFloat = 'float32';
  for (const i of inputs) {
    const m = i.name!.match(/^past_key_values\.(\d+)\.(key|value)$/);
    if (!m) continue;
    const dims = i.type!.tensorType!.shape!.dim!;
    const output = `present.${m[1]}.${m[2]}`;
    if (!outputs.has(output)) throw new EngineInputError(`${path}: input ${i.name} has no matching output ${output}`, path);
    kvType = floatType(i.type!.tensorType!.elemType, `past key values input ${i.name}`, path);
    past.push({ input: i.name!, output, kvHeads: toNum(dims[1].dimValue), headDim: toNum(dims[3].dimValue) });
  }
  past.sort((a, b) => a.input.localeCompare(b.input, 'en', { numeric: true }));
  return {
    inputs: names,
    idsType: typeOf('input_ids'),
    maskType: typeOf('attention_mask'),
    posType: typeOf('position_ids'),
    past,
    kvType,
    logits: 'logits',
    logitsType: floatType(logits.type?.tensorType?.elemType, 'the logits output', path),
    selectable: names.has('logits_positions'),
    mask: null,
  };
}

/** Bytes of the past key values of one position (every layer, key and value). */
export function kvBytesPerPosition(io: IoSpec): number {
  return io.past.reduce((a, p) => a + p.kvHeads * p.headDim * (io.kvType === 'float16' ? 2 : 4), 0);
}

export function intTensor(type: 'int64' | 'int32', values: number[] | Int32Array, dims: number[]): ort.Tensor {
  if (type === 'int64') return new ort.Tensor('int64', BigInt64Array.from(values as number[], (v) => BigInt(v)), dims);
  return new ort.Tensor('int32', Int32Array.from(values), dims);
}
