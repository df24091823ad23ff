/**
 * Which ONNX initializer holds which of the paper's modules, found by graph structure: the MatMul /
 * Gemm node of each block (by the exporter's scope name, e.g. /model/layers.3/mlp/down_proj/MatMul),
 * its weight operand traced back to an initializer (through Transpose / Cast if present), and its
 * shape checked against config.json. Initializer names are never used to identify a module.
 */
import type { ModuleName } from '../vocabulary.ts';
import { EngineInputError } from '../types.ts';
import { graphOf, type ModelProto, type NodeProto, type TensorProto, toNum } from './onnx.ts';

export type Family = 'gpt2' | 'llama' | 'gpt_neox';
export type LeafModule = 'q_proj' | 'k_proj' | 'v_proj' | 'out_proj' | 'fc_in' | 'fc_up' | 'fc_out';

export const FAMILY_LEAVES: Record<Family, LeafModule[]> = {
  gpt2: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_out'],
  llama: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_up', 'fc_out'],
  gpt_neox: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_out'],
};

const GROUPS: Record<'mlp' | 'attn' | 'all', LeafModule[]> = {
  mlp: ['fc_in', 'fc_up', 'fc_out'],
  attn: ['q_proj', 'k_proj', 'v_proj', 'out_proj'],
  all: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_up', 'fc_out'],
};

export function familyModules(family: Family): ModuleName[] {
  return [...FAMILY_LEAVES[family], 'mlp', 'attn', 'all'];
}

export function familyOf(config: Record<string, unknown>, configPath: string): Family {
  const t = String(config.model_type ?? '');
  if (t === 'gpt2') return 'gpt2';
  if (t === 'llama' || t === 'qwen2' || t === 'mistral') return 'llama';
  if (t === 'gpt_neox') return 'gpt_neox';
  // The value is not quoted: messages never repeat the bytes of a user's file.
  throw new EngineInputError(`${configPath}: model_type is missing or not supported (supported: gpt2, llama, qwen2, mistral, gpt_neox)`, configPath);
}

export interface Sizes {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
}

export function sizesOf(family: Family, c: Record<string, any>): Sizes {
  if (family === 'gpt2') {
    const hidden = c.n_embd;
    return { hidden, layers: c.n_layer, heads: c.n_head, kvHeads: c.n_head, headDim: hidden / c.n_head, intermediate: c.n_inner ?? 4 * hidden };
  }
  const hidden = c.hidden_size;
  const heads = c.num_attention_heads;
  return {
    hidden,
    layers: c.num_hidden_layers,
    heads,
    kvHeads: family === 'llama' ? c.num_key_value_heads ?? heads : heads,
    headDim: c.head_dim ?? hidden / heads,
    intermediate: c.intermediate_size,
  };
}

/** A prunable initializer: stored as [rows, cols]; `transposed` = stored as [out, in] (x @ stored^T). */
export interface WeightTensor {
  name: string;
  layer: number;
  /** PyTorch submodule path, for messages. */
  torchName: string;
  rows: number;
  cols: number;
  transposed: boolean;
  dataType: number;
}

/** The part of a stored matrix one module owns: all of it, or some of its columns / rows. */
export interface Slice {
  axis: 0 | 1;
  index: Int32Array;
}

export interface Target {
  module: LeafModule;
  layer: number;
  tensor: WeightTensor;
  /** null: the whole matrix. */
  slice: Slice | null;
}

type Role = { layer: number; kind: string; torchName: string };

function roleOf(family: Family, nodeName: string): Role | null {
  // scope names as the torch exporter writes them (/model/layers.3/mlp/down_proj/MatMul); also accept '_' separators
  const n = nodeName.replace(/_(\d+)(?=[/_.]|$)/g, '.$1');
  let m: RegExpMatchArray | null;
  if (family === 'gpt2') {
    m = n.match(/(?:^|\/)(?:transformer\/)?h\.(\d+)\/(attn|mlp)\/(c_attn|c_proj|c_fc)\//);
    if (!m) return null;
    const kind = `${m[2]}.${m[3]}`;
    if (kind === 'mlp.c_attn' || kind === 'attn.c_fc') return null;
    return { layer: +m[1], kind, torchName: `transformer.h.${m[1]}.${kind}` };
  }
  if (family === 'llama') {
    m = n.match(/(?:^|\/)(?:model\/)?layers\.(\d+)\/(self_attn|mlp)\/(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\//);
    if (!m) return null;
    return { layer: +m[1], kind: m[3], torchName: `model.layers.${m[1]}.${m[2]}.${m[3]}` };
  }
  m = n.match(/(?:^|\/)(?:gpt_neox\/)?layers\.(\d+)\/(attention|mlp)\/(query_key_value|dense|dense_h_to_4h|dense_4h_to_h)\//);
  if (!m) return null;
  if ((m[2] === 'mlp') !== m[3].startsWith('dense_')) return null;
  return { layer: +m[1], kind: m[3], torchName: `gpt_neox.layers.${m[1]}.${m[2]}.${m[3]}` };
}

/** [in, out] of the x @ W form each role must have. */
function expectedShape(family: Family, kind: string, s: Sizes): [number, number] {
  const h = s.hidden;
  const qd = s.heads * s.headDim;
  const kvd = s.kvHeads * s.headDim;
  const table: Record<string, [number, number]> =
    family === 'gpt2'
      ? { 'attn.c_attn': [h, 3 * h], 'attn.c_proj': [h, h], 'mlp.c_fc': [h, s.intermediate], 'mlp.c_proj': [s.intermediate, h] }
      : family === 'llama'
        ? { q_proj: [h, qd], k_proj: [h, kvd], v_proj: [h, kvd], o_proj: [qd, h], gate_proj: [h, s.intermediate], up_proj: [h, s.intermediate], down_proj: [s.intermediate, h] }
        : { query_key_value: [h, 3 * h], dense: [h, h], dense_h_to_4h: [h, s.intermediate], dense_4h_to_h: [s.intermediate, h] };
  return table[kind];
}

export interface WeightMap {
  /** role key `${layer}:${kind}` -> tensor */
  byRole: Map<string, WeightTensor>;
  tensors: Map<string, WeightTensor>;
}

export function mapWeights(model: ModelProto, family: Family, sizes: Sizes, modelPath: string): WeightMap {
  const graph = graphOf(model);
  const inits = new Map<string, TensorProto>();
  for (const t of graph.initializer as TensorProto[]) inits.set(t.name, t);
  const producer = new Map<string, NodeProto>();
  for (const node of graph.node as NodeProto[]) for (const o of node.output) producer.set(o, node);

  const byRole = new Map<string, WeightTensor>();
  const tensors = new Map<string, WeightTensor>();
  for (const node of graph.node as NodeProto[]) {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm') continue;
    const role = roleOf(family, node.name);
    if (!role) continue;
    // trace the weight operand back to an initializer
    let name = node.input[1];
    let transposed = false;
    if (node.opType === 'Gemm') {
      const tb = node.attribute.find((a) => a.name === 'transB');
      if (tb && toNum(tb.i) === 1) transposed = true;
    }
    for (let hops = 0; hops < 3 && !inits.has(name); hops++) {
      const p = producer.get(name);
      if (!p) break;
      if (p.opType === 'Transpose') transposed = !transposed;
      else if (p.opType !== 'Cast' && p.opType !== 'Identity') break;
      name = p.input[0];
    }
    const t = inits.get(name);
    if (!t || t.dims.length !== 2) {
      throw new EngineInputError(`${modelPath}: cannot find the 2-D weight initializer of ${node.name} (${role.torchName})`, modelPath);
    }
    const rows = toNum(t.dims[0]);
    const cols = toNum(t.dims[1]);
    const [inF, outF] = transposed ? [cols, rows] : [rows, cols];
    const [eIn, eOut] = expectedShape(family, role.kind, sizes);
    if (inF !== eIn || outF !== eOut) {
      throw new EngineInputError(
        `${modelPath}: ${role.torchName} (${node.name}) has shape [in ${inF}, out ${outF}], config.json implies [${eIn}, ${eOut}]`,
        modelPath,
      );
    }
    const key = `${role.layer}:${role.kind}`;
    if (byRole.has(key)) {
      throw new EngineInputError(`${modelPath}: two MatMul/Gemm nodes claim ${role.torchName}`, modelPath);
    }
    const w: WeightTensor = { name, layer: role.layer, torchName: role.torchName, rows, cols, transposed, dataType: t.dataType };
    byRole.set(key, w);
    tensors.set(name, w);
  }
  const perLayer = family === 'llama' ? 7 : 4;
  if (byRole.size !== perLayer * sizes.layers) {
    throw new EngineInputError(
      `${modelPath}: found ${byRole.size} prunable projections by graph structure, expected ${perLayer} x ${sizes.layers} layers for ${family}`,
      modelPath,
    );
  }
  return { byRole, tensors };
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

/** Output-feature indices (x @ W columns) of a fused q/k/v matrix owned by one of q, k, v. */
function fusedOutIndices(family: Family, which: 0 | 1 | 2, s: Sizes): Int32Array {
  const h = s.hidden;
  if (family === 'gpt2') return Int32Array.from(range(which * h, (which + 1) * h));
  // GPT-NeoX: PyTorch weight [3h, h], rows interleaved per head: head i rows [i*3d + which*d, +d)
  const d = s.headDim;
  const idx: number[] = [];
  for (let i = 0; i < s.heads; i++) idx.push(...range(i * 3 * d + which * d, i * 3 * d + (which + 1) * d));
  return Int32Array.from(idx);
}

export function resolveTargets(
  family: Family, sizes: Sizes, map: WeightMap, module: ModuleName, layer: number,
): Target[] {
  let leaves: LeafModule[];
  if (module === 'mlp' || module === 'attn' || module === 'all') leaves = GROUPS[module].filter((l) => FAMILY_LEAVES[family].includes(l));
  else if (FAMILY_LEAVES[family].includes(module as LeafModule)) leaves = [module as LeafModule];
  else throw new EngineInputError(`module "${module}" does not exist in the ${family} family (it has ${familyModules(family).join(', ')})`, module);
  if (!Number.isInteger(layer) || layer < -1 || layer >= sizes.layers) {
    throw new EngineInputError(`layer ${layer} is out of range for this ${family} model (${sizes.layers} layers; -1 = every layer)`, 'layer');
  }
  const layers = layer === -1 ? range(0, sizes.layers) : [layer];
  const out: Target[] = [];
  for (const l of layers) {
    for (const leaf of leaves) {
      let kind: string;
      let fused: 0 | 1 | 2 | null = null;
      if (family === 'gpt2') {
        kind = { q_proj: 'attn.c_attn', k_proj: 'attn.c_attn', v_proj: 'attn.c_attn', out_proj: 'attn.c_proj', fc_in: 'mlp.c_fc', fc_out: 'mlp.c_proj' }[leaf as string]!;
      } else if (family === 'llama') {
        kind = { q_proj: 'q_proj', k_proj: 'k_proj', v_proj: 'v_proj', out_proj: 'o_proj', fc_in: 'gate_proj', fc_up: 'up_proj', fc_out: 'down_proj' }[leaf];
      } else {
        kind = { q_proj: 'query_key_value', k_proj: 'query_key_value', v_proj: 'query_key_value', out_proj: 'dense', fc_in: 'dense_h_to_4h', fc_out: 'dense_4h_to_h' }[leaf as string]!;
      }
      if (family !== 'llama' && (leaf === 'q_proj' || leaf === 'k_proj' || leaf === 'v_proj')) fused = leaf === 'q_proj' ? 0 : leaf === 'k_proj' ? 1 : 2;
      const tensor = map.byRole.get(`${l}:${kind}`)!;
      let slice: Slice | null = null;
      if (fused !== null) {
        // output features are columns of the stored matrix, or rows when it is stored transposed
        slice = { axis: tensor.transposed ? 0 : 1, index: fusedOutIndices(family, fused, sizes) };
      }
      out.push({ module: leaf, layer: l, tensor, slice });
    }
  }
  return out;
}

/** Copies a slice (or the whole matrix) out of a stored row-major matrix: [m, n]. */
export function extract(values: Float32Array, w: WeightTensor, slice: Slice | null): { data: Float32Array; m: number; n: number } {
  if (!slice) return { data: values.slice(), m: w.rows, n: w.cols };
  const idx = slice.index;
  if (slice.axis === 0) {
    const n = w.cols;
    const data = new Float32Array(idx.length * n);
    for (let i = 0; i < idx.length; i++) data.set(values.subarray(idx[i] * n, idx[i] * n + n), i * n);
    return { data, m: idx.length, n };
  }
  const m = w.rows;
  const n = idx.length;
  const data = new Float32Array(m * n);
  for (let r = 0; r < m; r++) {
    const base = r * w.cols;
    for (let j = 0; j < n; j++) data[r * n + j] = values[base + idx[j]];
  }
  return { data, m, n };
}

/** Writes `data` [m, n] back into the stored matrix at the slice's place. */
export function scatter(target: Float32Array, w: WeightTensor, slice: Slice | null, data: Float32Array): void {
  if (!slice) {
    target.set(data);
    return;
  }
  const idx = slice.index;
  if (slice.axis === 0) {
    const n = w.cols;
    for (let i = 0; i < idx.length; i++) target.set(data.subarray(i * n, i * n + n), idx[i] * n);
    return;
  }
  const n = idx.length;
  for (let r = 0; r < w.rows; r++) {
    const base = r * w.cols;
    for (let j = 0; j < n; j++) target[base + idx[j]] = data[r * n + j];
  }
}
