/**
 * Graph rewrites, on the graph structure only: initializers keep their external data references, so a
 * rewritten model serialises to a small protobuf whatever the size of its weights, and ONNX Runtime reads
 * the weights from the export's own files.
 */
import { EngineInputError } from '../types.ts';
import {
  DT_BFLOAT16, DT_FLOAT, DT_FLOAT16, DT_INT64, elementCount, graphOf, type GraphProto, type ModelProto, type NodeProto, onnx, type TensorProto, toFloat32, toNum,
  type ValueInfoProto,
} from './onnx.ts';

export function tensorInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) => onnx.TensorShapeProto.Dimension.create(typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
}

function intAttr(name: string, i: number) {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
}

/** Replaces every use of tensor `from` as a node input by `to`, in subgraphs too (they may use outer names). */
function renameUses(g: GraphProto, from: string, to: string): void {
  for (const node of g.node as NodeProto[]) {
    node.input = node.input.map((x) => (x === from ? to : x));
    for (const a of node.attribute ?? []) for (const sub of [a.g, ...(a.graphs ?? [])]) if (sub) renameUses(sub as GraphProto, from, to);
  }
}

/**
 * The model for a session in which the named initializers are graph inputs, fed on every run; all other
 * initializers stay as they are (inline, or external data that ONNX Runtime reads). An input is declared
 * as `feedType(elemType)`; where that differs from the stored type (bfloat16, which a JavaScript tensor
 * cannot hold, is fed as float32) a Cast converts it inside the graph. The model object is left as it was.
 */
export function sessionGraph(model: ModelProto, inputs: Set<string>, feedType: (elemType: number) => number): Uint8Array {
  const g = graphOf(model);
  const saved = { initializer: g.initializer, input: g.input, node: g.node };
  const moved = (g.initializer as TensorProto[]).filter((t) => inputs.has(t.name));
  if (moved.length !== inputs.size) throw new Error('internal: a weight to feed is not an initializer');
  g.initializer = (g.initializer as TensorProto[]).filter((t) => !inputs.has(t.name));
  g.input = [...g.input];
  g.node = [...g.node];
  for (const t of moved) {
    const fed = feedType(t.dataType);
    const input = feedName(t.name, t.dataType, fed);
    g.input.push(tensorInfo(input, fed, t.dims.map(toNum)));
    if (input !== t.name) {
      g.node.unshift(onnx.NodeProto.create({ name: `/icl/feed/${t.name}/Cast`, opType: 'Cast', input: [input], output: [t.name], attribute: [intAttr('to', t.dataType)] }));
    }
  }
  try {
    return onnx.ModelProto.encode(model).finish();
  } finally {
    Object.assign(g, saved);
  }
}

/** The graph input a weight is fed through (its own name, or `<name>__fed` when a Cast follows it). */
export function feedName(name: string, storedType: number, fedType: number): string {
  return storedType === fedType ? name : `${name}__fed`;
}

export const LOGITS_POSITIONS = 'logits_positions';

/**
 * Lets a run ask for the logits of chosen positions only: the vocabulary projection (a MatMul of the last
 * hidden state [B, L, h] by an initializer [h, V], followed on its way to `logits` only by a bias Add, a Cast
 * or an Identity) is rewired to take Gather(Reshape(hidden, [-1, h]), logits_positions), so `logits` becomes
 * [N, V] for the N flat positions (b * L + j) fed in `logits_positions`. Returns false (graph unchanged)
 * when the graph does not have that shape.
 */
export function selectableLogits(model: ModelProto): boolean {
  const g = graphOf(model);
  const nodes = g.node as NodeProto[];
  const inits = new Map((g.initializer as TensorProto[]).map((t) => [t.name, t]));
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  const out = g.output.find((o) => o.name === 'logits');
  let node = producer.get('logits');
  const chain: string[] = [];
  while (node && node.opType !== 'MatMul') {
    chain.push(node.output[0]);
    const data = node.input.filter((x) => !inits.has(x));
    if (!['Add', 'Cast', 'Identity'].includes(node.opType) || data.length !== 1) return false;
    node = producer.get(data[0]);
  }
  const w = node && inits.get(node.input[1]);
  if (!node || !out || !w || w.dims.length !== 2) return false;
  const h = toNum(w.dims[0]);
  const v = toNum(w.dims[1]);
  const shapeName = '__icl_flat_shape';
  g.initializer.push(onnx.TensorProto.create({ name: shapeName, dataType: DT_INT64, dims: [2], int64Data: [-1, h] }));
  const flat = '__icl_hidden_flat';
  const picked = '__icl_hidden_picked';
  const reshape = onnx.NodeProto.create({ name: '/icl/logits/Reshape', opType: 'Reshape', input: [node.input[0], shapeName], output: [flat] });
  const gather = onnx.NodeProto.create({ name: '/icl/logits/Gather', opType: 'Gather', input: [flat, LOGITS_POSITIONS], output: [picked], attribute: [intAttr('axis', 0)] });
  node.input[0] = picked;
  g.node.splice(nodes.indexOf(node), 0, reshape, gather);
  g.input.push(tensorInfo(LOGITS_POSITIONS, DT_INT64, ['num_positions']));
  out.type = tensorInfo('logits', out.type?.tensorType?.elemType ?? DT_FLOAT, ['num_positions', v]).type;
  // drop stale shape info about the old [B, L, V] tensors
  const stale = new Set([node.output[0], ...chain]);
  g.valueInfo = g.valueInfo.filter((vi) => !stale.has(vi.name ?? ''));
  return true;
}

/**
 * Past key values fed once per run at batch 1 and broadcast to the batch inside the graph: each
 * past_key_values.* input becomes [1, H, P, d] and an Expand to [B, H, P, d] (B from input_ids) feeds what
 * it fed before. The prefix's key/values then cross from JavaScript to the runtime (and to the device) once
 * per run, not once per row.
 */
export function sharedPastBatch(model: ModelProto, pastInputs: string[]): void {
  if (pastInputs.length === 0) return;
  const g = graphOf(model);
  const c = (name: string, values: number[]) => {
    g.initializer.push(onnx.TensorProto.create({ name, dataType: DT_INT64, dims: [values.length], int64Data: values }));
    return name;
  };
  const node = (opType: string, input: string[], output: string, attribute: ReturnType<typeof intAttr>[] = []) =>
    onnx.NodeProto.create({ name: `/icl/past/${output}`, opType, input, output: [output], attribute });
  const shape = '__icl_batch_shape';
  const added: NodeProto[] = [
    node('Shape', ['input_ids'], '__icl_ids_shape'),
    node('Slice', ['__icl_ids_shape', c('__icl_zero', [0]), c('__icl_one', [1])], '__icl_batch'),
    node('Concat', ['__icl_batch', c('__icl_ones3', [1, 1, 1])], shape, [intAttr('axis', 0)]),
  ];
  for (const name of pastInputs) {
    const dims = g.input.find((i) => i.name === name)?.type?.tensorType?.shape?.dim;
    if (dims && dims.length > 0) dims[0] = onnx.TensorShapeProto.Dimension.create({ dimValue: 1 });
    const expanded = `${name}__batch`;
    renameUses(g, name, expanded);
    added.push(node('Expand', [name, shape], expanded));
  }
  g.node.unshift(...added);
}

/**
 * The graph's own float types widened to float32 (initializer data aside: see widenInitializers): 16-bit
 * graph inputs, outputs and value infos, Cast targets, Constant and ConstantOfShape values, in subgraphs too.
 * For execution providers without 16-bit kernels.
 */
export function widenGraph(model: ModelProto): void {
  const half = (t: number | null | undefined) => t === DT_FLOAT16 || t === DT_BFLOAT16;
  const widenTensor = (t: TensorProto) => {
    if (!half(t.dataType)) return;
    const bytes = t.rawData && t.rawData.length > 0 ? t.rawData : null;
    const values = toFloat32(bytes, t.int32Data, t.dataType, elementCount(t), t.name || 'constant');
    t.dataType = DT_FLOAT;
    t.rawData = new Uint8Array(values.buffer);
    t.int32Data = [];
  };
  const walk = (g: GraphProto, top: boolean) => {
    if (!top) for (const t of g.initializer as TensorProto[]) widenTensor(t); // the top graph's: widenInitializers
    for (const vi of [...g.input, ...g.output, ...g.valueInfo] as ValueInfoProto[]) {
      const tt = vi.type?.tensorType;
      if (tt && half(tt.elemType)) tt.elemType = DT_FLOAT;
    }
    for (const node of g.node as NodeProto[]) {
      for (const a of node.attribute) {
        if (node.opType === 'Cast' && a.name === 'to' && half(toNum(a.i))) a.i = DT_FLOAT;
        if (a.t) widenTensor(a.t as TensorProto);
        if (a.g) walk(a.g as GraphProto, false);
        for (const sub of a.graphs ?? []) walk(sub as GraphProto, false);
      }
    }
  };
  walk(graphOf(model), true);
}

/**
 * bfloat16 graph inputs and outputs made float32 at the boundary, with a Cast just inside: JavaScript
 * tensors cannot hold bfloat16, while the runtime keeps computing in it.
 */
export function float32Boundary(model: ModelProto): void {
  const g = graphOf(model);
  const cast = (from: string, to: string, type: number) =>
    onnx.NodeProto.create({ name: `/icl/boundary/${to}/Cast`, opType: 'Cast', input: [from], output: [to], attribute: [intAttr('to', type)] });
  for (const vi of g.input as ValueInfoProto[]) {
    const tt = vi.type?.tensorType;
    if (tt?.elemType !== DT_BFLOAT16) continue;
    const inner = `${vi.name}__bf16`;
    renameUses(g, vi.name!, inner);
    g.node.unshift(cast(vi.name!, inner, DT_BFLOAT16));
    tt.elemType = DT_FLOAT;
  }
  const producer = new Map<string, NodeProto>();
  for (const n of g.node as NodeProto[]) for (const o of n.output) producer.set(o, n);
  for (const vi of g.output as ValueInfoProto[]) {
    const tt = vi.type?.tensorType;
    if (tt?.elemType !== DT_BFLOAT16) continue;
    const node = producer.get(vi.name!);
    if (!node) throw new EngineInputError(`graph output ${vi.name} has no producing node`, vi.name ?? 'output');
    const inner = `${vi.name}__bf16`;
    node.output = node.output.map((o) => (o === vi.name ? inner : o));
    renameUses(g, vi.name!, inner);
    g.node.push(cast(inner, vi.name!, DT_FLOAT));
    tt.elemType = DT_FLOAT;
  }
}
