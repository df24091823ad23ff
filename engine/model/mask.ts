/**
 * The attention mask as a graph input, so several queries can share one row of a batch. Exported decoders
 * compute one mask tensor from the `attention_mask` input (causal and padding: [batch, 1, (1,) query, key],
 * booleans or additive floats) and every layer reads it. With that tensor fed instead, the engine lays the
 * queries of a call side by side in a few rows, each query seeing the prefix and its own earlier tokens
 * only: the prefix's key/values are broadcast to a few rows instead of one per query, and rows are filled
 * instead of padded. Found by graph structure; the tensor's encoding (type, rank, the values meaning
 * visible and hidden) is read by running the graph's own mask computation on a known case, and a graph
 * whose mask does not behave exactly as expected keeps computing its own.
 */
import * as ort from 'onnxruntime-node';
import { tensorInfo } from './graph.ts';
import { intTensor, type IoSpec } from './io.ts';
import { DT_FLOAT, DT_FLOAT16, graphOf, type ModelProto, type NodeProto, onnx, type TensorProto, type ValueInfoProto } from './onnx.ts';
import { hasSubgraph, nodeLayer, sliceGraph } from './slices.ts';

export const MASK_INPUT = 'icl_attention_mask';

export interface FedMask {
  type: 'bool' | 'float32' | 'float16';
  /** 4 ([batch, 1, query, key]) or 5 ([batch, 1, 1, query, key]). */
  rank: number;
  /** The element values (bit patterns for float16) of a visible and a hidden position. */
  visible: number;
  hidden: number;
}

/** Where each sequence of a run sits: its row and first position in the row. */
export interface Place {
  row: number;
  offset: number;
}

const DT_BOOL = 9;

/** The one tensor computed outside the layers from the attention_mask input that every layer reads, or null. */
export function maskTensor(model: ModelProto, layers: number): string | null {
  const nodes = graphOf(model).node as NodeProto[];
  if (nodes.some(hasSubgraph)) return null;
  const fromMask = new Set(['attention_mask']);
  const outside = new Set<string>();
  for (const n of nodes) {
    if (n.input.some((x) => fromMask.has(x))) for (const o of n.output) fromMask.add(o);
    if (nodeLayer(n.name ?? '') === null) for (const o of n.output) outside.add(o);
  }
  const readers = new Map<string, Set<number>>();
  for (const n of nodes) {
    const layer = nodeLayer(n.name ?? '');
    if (layer === null) continue;
    for (const x of n.input) {
      if (!fromMask.has(x) || !outside.has(x)) continue;
      if (!readers.has(x)) readers.set(x, new Set());
      readers.get(x)!.add(layer);
    }
  }
  const found = [...readers].filter(([, ls]) => ls.size === layers).map(([t]) => t);
  return found.length === 1 ? found[0] : null;
}

/**
 * Runs the graph's mask computation for 2 rows of 3 tokens on a past of 2 (5 tokens without past key
 * values), the second row's first position padded, and reads the encoding off the result; null unless
 * every element is as a causal mask with that padding must be.
 */
export async function probeMask(model: ModelProto, tensor: string, io: IoSpec, options: ort.InferenceSession.SessionOptions): Promise<FedMask | null> {
  const [B, P, S] = io.past.length > 0 ? [2, 2, 3] : [2, 0, 5];
  const graph = sliceGraph(model, [tensor]);
  const session = await ort.InferenceSession.create(onnx.ModelProto.encode(graph).finish(), options);
  try {
    const takes = new Set(session.inputNames);
    const mask2d = Array.from({ length: B * (P + S) }, (_, i) => (i === P + S ? 0 : 1));
    const feeds: Record<string, ort.Tensor> = {};
    if (takes.has('input_ids')) feeds.input_ids = intTensor(io.idsType, new Array(B * S).fill(1), [B, S]);
    if (takes.has('attention_mask')) feeds.attention_mask = intTensor(io.maskType, mask2d, [B, P + S]);
    if (takes.has('position_ids')) feeds.position_ids = intTensor(io.posType, Array.from({ length: B * S }, (_, i) => P + (i % S)), [B, S]);
    for (const p of io.past) {
      const n = p.kvHeads * P * p.headDim;
      if (takes.has(p.input)) feeds[p.input] = new ort.Tensor(io.kvType, io.kvType === 'float16' ? new Uint16Array(n) : new Float32Array(n), [1, p.kvHeads, P, p.headDim]);
    }
    if (session.inputNames.some((n) => !(n in feeds))) return null;
    const out = (await session.run(feeds))[tensor];
    const dims = out.dims.map(Number);
    const type = out.type;
    if (type !== 'bool' && type !== 'float32' && type !== 'float16') return null;
    if ((dims.length !== 4 && dims.length !== 5) || dims[0] !== B || dims.at(-2) !== S || dims.at(-1) !== P + S || dims.slice(1, -2).some((d) => d !== 1)) return null;
    const data = out.data as Uint8Array | Float32Array | Uint16Array;
    const at = (b: number, i: number, j: number) => Number(data[(b * S + i) * (P + S) + j]);
    const visible = at(0, 0, 0);
    const hidden = at(0, 0, P + 1);
    if (visible === hidden) return null;
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < S; i++) {
        for (let j = 0; j < P + S; j++) {
          const sees = mask2d[b * (P + S) + j] === 1 && j <= P + i;
          // -0 and 0 are the same visible value of an additive mask
          if (at(b, i, j) !== (sees ? visible : hidden)) return null;
        }
      }
    }
    return { type, rank: dims.length, visible, hidden };
  } finally {
    await session.release();
  }
}

/**
 * The model reads the fed mask instead of computing its own; nodes and inputs left without use are dropped.
 * Returns the mask to feed: a boolean mask that every layer applies as Where(mask, scores, c) becomes the
 * additive mask it amounts to (`additive`).
 */
export function feedMask(model: ModelProto, tensor: string, mask: FedMask): FedMask {
  const g = graphOf(model);
  for (const n of g.node as NodeProto[]) n.input = n.input.map((x) => (x === tensor ? MASK_INPUT : x));
  const fed = additive(g.node as NodeProto[], constants(model), mask);
  const elemType = fed.type === 'bool' ? DT_BOOL : fed.type === 'float16' ? DT_FLOAT16 : DT_FLOAT;
  const dims: (number | string)[] = fed.rank === 5 ? ['batch_size', 1, 1, 'sequence_length', 'total_length'] : ['batch_size', 1, 'sequence_length', 'total_length'];
  g.input.push(tensorInfo(MASK_INPUT, elemType, dims));
  const outputs = new Set((g.output as ValueInfoProto[]).map((o) => o.name));
  for (;;) {
    const read = new Set((g.node as NodeProto[]).flatMap((n) => n.input));
    const live = (g.node as NodeProto[]).filter((n) => n.output.some((o) => read.has(o) || outputs.has(o)));
    if (live.length === g.node.length) break;
    g.node = live;
  }
  const read = new Set((g.node as NodeProto[]).flatMap((n) => n.input));
  g.input = (g.input as ValueInfoProto[]).filter((i) => read.has(i.name ?? ''));
  return fed;
}

/**
 * Where(mask, scores, c) in every reader of a boolean mask (c one float32 constant) becomes Add(scores,
 * mask) with the mask fed as 0 (visible) and c (hidden): the same scores exactly (s + 0 = s, and s + c = c
 * for any score far below c's magnitude, or -inf), at the cost of an addition instead of a select, which
 * ONNX Runtime's CPU kernels broadcast much faster. Any other reader leaves the mask as it is.
 */
function additive(nodes: NodeProto[], constant: (name: string) => number | null, mask: FedMask): FedMask {
  if (mask.type !== 'bool' || mask.visible !== 1) return mask;
  const readers = nodes.filter((n) => n.input.includes(MASK_INPUT));
  const hidden = readers.map((n) => (n.opType === 'Where' && n.input[0] === MASK_INPUT && n.input[1] !== MASK_INPUT && n.input[2] !== MASK_INPUT ? constant(n.input[2]) : null));
  const c = hidden[0];
  if (c === null || c === undefined || hidden.some((h) => !Object.is(h, c))) return mask;
  for (const n of readers) {
    n.opType = 'Add';
    n.input = [n.input[1], MASK_INPUT];
  }
  return { type: 'float32', rank: mask.rank, visible: 0, hidden: c };
}

/** The value of a one-element float32 Constant node's output or initializer, by tensor name. */
function constants(model: ModelProto): (name: string) => number | null {
  const g = graphOf(model);
  const tensors = new Map<string, TensorProto>();
  for (const t of g.initializer as TensorProto[]) tensors.set(t.name ?? '', t);
  for (const n of g.node as NodeProto[]) {
    const value = n.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
    if (value) tensors.set(n.output[0], value as TensorProto);
  }
  return (name) => {
    const t = tensors.get(name);
    if (!t || t.dataType !== DT_FLOAT || (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1) !== 1 || t.externalData?.length) return null;
    if (t.floatData?.length === 1) return t.floatData[0];
    return t.rawData?.length === 4 ? Buffer.from(t.rawData).readFloatLE(0) : null;
  };
}

/**
 * The mask of a run: `rows` of `width` positions on a past of P, each row holding sequences at `places`
 * (`lengths` long). A position sees the past and the earlier positions of its own sequence; a padding
 * position sees the past and itself (its results are never read).
 */
export function maskFeed(mask: FedMask, P: number, width: number, rows: number, places: Place[], lengths: number[]): ort.Tensor {
  const T = P + width;
  const data = mask.type === 'bool' ? new Uint8Array(rows * width * T) : mask.type === 'float16' ? new Uint16Array(rows * width * T) : new Float32Array(rows * width * T);
  data.fill(mask.hidden);
  const see = (row: number, i: number, from: number, to: number) => data.fill(mask.visible, (row * width + i) * T + from, (row * width + i) * T + to);
  for (let row = 0; row < rows; row++) {
    for (let i = 0; i < width; i++) {
      see(row, i, 0, P);
      see(row, i, P + i, P + i + 1);
    }
  }
  places.forEach(({ row, offset }, q) => {
    for (let i = 1; i < lengths[q]; i++) see(row, offset + i, P + offset, P + offset + i);
  });
  const dims = mask.rank === 5 ? [rows, 1, 1, width, T] : [rows, 1, width, T];
  return new ort.Tensor(mask.type, data, dims);
}
