/**
 * Layer slices of a decoder graph, found by its structure: the hidden state entering each layer (the one
 * tensor that carries everything the lower layers computed into the layers above), a graph that also
 * returns those tensors (the capture graph, run on the unpruned model), and a graph that starts at a layer
 * from that tensor (the slice), so a cell that prunes layer L runs only layers L..N-1.
 *
 * Layers are told apart by the exporter's scope names (`/model/layers.3/...`, `/transformer/h.3/...`,
 * `/gpt_neox/layers.3/...`), as the module map does (weights.ts). What depends on the lower layers is told
 * by the data flow from their prunable matrices, so shared tensors the graph computes once from its inputs
 * (the causal mask, rotary tables, past lengths) are recomputed in every slice, never taken from a capture.
 */
import { tensorInfo } from './graph.ts';
import { type GraphProto, graphOf, type ModelProto, type NodeProto, onnx, type TensorProto, type ValueInfoProto } from './onnx.ts';
import type { WeightMap } from './weights.ts';

/** The layer a node belongs to by its scope name, or null (embedding, shared tensors, final norm, head). */
export function nodeLayer(name: string): number | null {
  const n = name.replace(/_(\d+)(?=[/_.]|$)/g, '.$1');
  const m = n.match(/(?:^|\/)(?:layers|h)\.(\d+)\//);
  return m ? Number(m[1]) : null;
}

/** Whether a node carries a subgraph (If, Loop, Scan). */
export function hasSubgraph(node: NodeProto): boolean {
  return (node.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length > 0);
}

/**
 * The hidden state entering each layer: `cuts[l]` is the name of the one tensor through which layers below
 * l reach layer l and everything after it, or null where there is no single such tensor (layer 0, graphs
 * with control flow, an unusual export): those layers run in full.
 *
 * A tensor is a cut of layer l when it is produced by a node that nothing of layers >= l feeds, it depends
 * on a prunable matrix of a layer below l, and a node of layer >= l (or after them) reads it.
 */
export function layerCuts(model: ModelProto, map: WeightMap, layers: number): (string | null)[] {
  const cuts: (string | null)[] = new Array(layers).fill(null);
  const nodes = graphOf(model).node as NodeProto[];
  if (nodes.some(hasSubgraph)) return cuts;
  // lowest layer of a prunable matrix each tensor depends on; highest scope layer each node is fed by
  const weightLayer = new Map<string, number>();
  for (const [name, w] of map.tensors) weightLayer.set(name, w.layer);
  const upLayer: number[] = [];
  const producerIndex = new Map<string, number>();
  nodes.forEach((node, i) => {
    let dep = Infinity;
    let up = nodeLayer(node.name ?? '') ?? -1;
    for (const x of node.input) {
      dep = Math.min(dep, weightLayer.get(x) ?? Infinity);
      const p = producerIndex.get(x);
      if (p !== undefined) up = Math.max(up, upLayer[p]);
    }
    upLayer.push(up);
    for (const o of node.output) {
      producerIndex.set(o, i);
      if (dep < Infinity) weightLayer.set(o, Math.min(weightLayer.get(o) ?? Infinity, dep));
    }
  });
  const found: Set<string>[] = Array.from({ length: layers }, () => new Set());
  nodes.forEach((node, i) => {
    for (const x of node.input) {
      const p = producerIndex.get(x);
      const dep = weightLayer.get(x);
      if (p === undefined || dep === undefined) continue;
      // x crosses into layer l for every l with upLayer[p] < l <= upLayer[i] and dep < l
      for (let l = Math.max(upLayer[p] + 1, dep + 1, 1); l <= Math.min(upLayer[i], layers - 1); l++) found[l].add(x);
    }
  });
  for (let l = 1; l < layers; l++) if (found[l].size === 1) cuts[l] = [...found[l]][0];
  return cuts;
}

/**
 * A copy of the model (sharing nodes and tensors, which must not be mutated) with its graph's nodes,
 * inputs, outputs, initializers and value infos replaced.
 */
function withGraph(model: ModelProto, graph: Partial<Pick<GraphProto, 'node' | 'input' | 'output' | 'initializer' | 'valueInfo'>>): ModelProto {
  const g = graphOf(model);
  const copy = onnx.ModelProto.create({ ...model });
  copy.graph = onnx.GraphProto.create({ ...g, ...graph });
  return copy;
}

/** The model with the hidden states at `cuts` as extra outputs (named as the tensors themselves). */
export function captureGraph(model: ModelProto, cuts: string[]): ModelProto {
  const g = graphOf(model);
  const outputs = [...g.output, ...cuts.map((name) => onnx.ValueInfoProto.create({ name }))];
  return withGraph(model, { output: outputs });
}

/** The hidden state a slice starts from: the tensor, its element type and the hidden size. */
export interface SliceStart {
  name: string;
  elemType: number;
  hidden: number;
}

/**
 * The part of the model that computes `outputs` (graph outputs, or any tensors: they become outputs),
 * given `start` (if any) as a graph input of shape [batch, sequence, hidden]: the nodes the outputs need,
 * stopping at the start; the graph inputs and initializers they read; nothing else (the lower layers'
 * weights are not even read).
 */
export function sliceGraph(model: ModelProto, outputs: string[], start: SliceStart | null = null): ModelProto {
  const g = graphOf(model);
  const nodes = g.node as NodeProto[];
  const cut = start?.name;
  const needed = new Set(outputs);
  const kept: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    if (!node.output.some((o) => needed.has(o))) continue;
    kept.push(node);
    for (const x of node.input) if (x !== cut) needed.add(x);
  }
  kept.reverse();
  const declared = new Map((g.output as ValueInfoProto[]).map((o) => [o.name ?? '', o]));
  const inputs = (g.input as ValueInfoProto[]).filter((i) => needed.has(i.name ?? ''));
  if (start) inputs.push(tensorInfo(start.name, start.elemType, ['batch_size', 'sequence_length', start.hidden]));
  return withGraph(model, {
    node: kept,
    input: inputs,
    output: outputs.map((name) => declared.get(name) ?? onnx.ValueInfoProto.create({ name })),
    initializer: (g.initializer as TensorProto[]).filter((t) => needed.has(t.name)),
    valueInfo: (g.valueInfo as ValueInfoProto[]).filter((v) => needed.has(v.name ?? '') && v.name !== cut),
  });
}
