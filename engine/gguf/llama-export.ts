/**
 * A Llama-family model (llama, qwen2) written in the layout optimum's exporter gives a Llama export with
 * past key values: node names by scope (/model/layers.N/self_attn/q_proj/MatMul, /lm_head/MatMul), MatMul
 * weights stored [in, out], HF's rotate_half RoPE, GQA by broadcasting. The weights come from a
 * LlamaWeights source (a GGUF file, or seeded random values for benchmarks), named by their GGUF tensor
 * names, and are written tensor by tensor (inline, or to model.onnx_data).
 */
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { onnx as O } from 'onnx-proto';
import { EngineInputError } from '../types.ts';
import { DT, GraphBuilder, onnx, valueInfo } from './onnx-builder.ts';

export interface LlamaShape {
  arch: string;
  numLayers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  ropeTheta: number;
  rmsEps: number;
  contextLength: number;
  tied: boolean;
  /** q/k/v projections have biases (qwen2). */
  qkvBias: boolean;
}

/**
 * The weights by GGUF tensor name: `matmul` gives a projection in the ONNX [in, out] layout (HF's
 * un-permuted q/k rows; for token_embd.weight, the tied lm_head [hidden, vocab]), `tensor` a vector or the
 * embedding table [vocab, hidden] as HF holds them.
 */
export interface LlamaWeights {
  matmul(ggufName: string): Promise<Float32Array>;
  tensor(ggufName: string): Promise<Float32Array>;
}

export interface WriteOptions {
  /** Weights in model.onnx_data (true) or inline in model.onnx. */
  external: boolean;
  producerName: string;
  metadata?: { key: string; value: string }[];
  /** Called after each tensor is written. */
  onTensor?: (ggufName: string) => void;
}

/** The tensors of a Llama-family model by GGUF name, with their shapes (ggml order: ne0 = columns, i.e. [in, out]). */
export function llamaTensors(hp: LlamaShape): Map<string, number[]> {
  const m = new Map<string, number[]>();
  m.set('token_embd.weight', [hp.hidden, hp.vocab]);
  m.set('output_norm.weight', [hp.hidden]);
  if (!hp.tied) m.set('output.weight', [hp.hidden, hp.vocab]);
  for (let l = 0; l < hp.numLayers; l++) {
    m.set(`blk.${l}.attn_norm.weight`, [hp.hidden]);
    m.set(`blk.${l}.ffn_norm.weight`, [hp.hidden]);
    m.set(`blk.${l}.attn_q.weight`, [hp.hidden, hp.heads * hp.headDim]);
    m.set(`blk.${l}.attn_k.weight`, [hp.hidden, hp.kvHeads * hp.headDim]);
    m.set(`blk.${l}.attn_v.weight`, [hp.hidden, hp.kvHeads * hp.headDim]);
    if (hp.qkvBias) {
      m.set(`blk.${l}.attn_q.bias`, [hp.heads * hp.headDim]);
      m.set(`blk.${l}.attn_k.bias`, [hp.kvHeads * hp.headDim]);
      m.set(`blk.${l}.attn_v.bias`, [hp.kvHeads * hp.headDim]);
    }
    m.set(`blk.${l}.attn_output.weight`, [hp.heads * hp.headDim, hp.hidden]);
    m.set(`blk.${l}.ffn_gate.weight`, [hp.hidden, hp.intermediate]);
    m.set(`blk.${l}.ffn_up.weight`, [hp.hidden, hp.intermediate]);
    m.set(`blk.${l}.ffn_down.weight`, [hp.intermediate, hp.hidden]);
  }
  return m;
}

class WeightSink {
  private fh: Awaited<ReturnType<typeof open>> | null = null;
  private pos = 0;
  constructor(private readonly external: boolean, private readonly dataPath: string, private readonly location: string) {}

  async add(name: string, dims: number[], data: Float32Array): Promise<O.ITensorProto> {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (!this.external) return { name, dims, dataType: DT.FLOAT, rawData: bytes.slice() };
    if (!this.fh) this.fh = await open(this.dataPath, 'w');
    const pad = (64 - (this.pos % 64)) % 64;
    if (pad) {
      await this.fh.write(new Uint8Array(pad), 0, pad, this.pos);
      this.pos += pad;
    }
    await this.fh.write(bytes, 0, bytes.length, this.pos);
    const offset = this.pos;
    this.pos += bytes.length;
    return {
      name,
      dims,
      dataType: DT.FLOAT,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.length) },
      ],
    };
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = null;
  }
}

/** Builds the graph, writing each weight as it comes. */
async function buildGraph(hp: LlamaShape, weights: LlamaWeights, sink: WeightSink, tick: (name: string) => void) {
  const g = new GraphBuilder();
  const inits = g.initializers;
  let matmulCounter = 0;
  const shapes = llamaTensors(hp);
  const matmulWeight = async (ggufName: string): Promise<string> => {
    const [inF, outF] = shapes.get(ggufName)! as [number, number];
    const name = `onnx::MatMul_${++matmulCounter}`;
    inits.push(await sink.add(name, [inF, outF], await weights.matmul(ggufName)));
    tick(ggufName);
    return name;
  };
  const vectorWeight = async (ggufName: string, name: string): Promise<string> => {
    inits.push(await sink.add(name, [shapes.get(ggufName)![0]!], await weights.tensor(ggufName)));
    tick(ggufName);
    return name;
  };

  const { hidden: H, heads: NH, kvHeads: NKV, headDim: D } = hp;
  const rep = NH / NKV;
  if (!Number.isInteger(rep)) throw new EngineInputError(`head count ${NH} is not a multiple of the key/value head count ${NKV}`, 'head_count_kv');

  // Embedding.
  inits.push(await sink.add('model.embed_tokens.weight', [hp.vocab, H], await weights.tensor('token_embd.weight')));
  tick('token_embd.weight');
  let lmHeadWeight: string;
  if (hp.tied) {
    lmHeadWeight = `onnx::MatMul_lm_head`;
    inits.push(await sink.add(lmHeadWeight, [H, hp.vocab], await weights.matmul('token_embd.weight')));
    tick('lm_head (tied)');
  } else {
    lmHeadWeight = '';
  }

  const hiddenStates0 = g.op('Gather', ['model.embed_tokens.weight', 'input_ids'], '/model/embed_tokens/Gather', { axis: 0 });

  // Rotary tables: cos/sin [B, 1, S, D] from position_ids (HF default RoPE, float32).
  const invFreq = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) invFreq[i] = Math.fround(1 / Math.fround(Math.pow(hp.ropeTheta, Math.fround((2 * i) / D))));
  const invFreqName = 'model.rotary_emb.inv_freq';
  inits.push({ name: invFreqName, dims: [D / 2], dataType: DT.FLOAT, rawData: new Uint8Array(invFreq.buffer.slice(0)) });
  const posF = g.op('Cast', ['position_ids'], '/model/rotary_emb/Cast', { to: DT.FLOAT });
  const posU = g.op('Unsqueeze', [posF, g.constInt64([-1])], '/model/rotary_emb/Unsqueeze');
  const freqs = g.op('Mul', [posU, invFreqName], '/model/rotary_emb/Mul');
  const emb = g.op('Concat', [freqs, freqs], '/model/rotary_emb/Concat', { axis: -1 });
  const cos = g.op('Unsqueeze', [g.op('Cos', [emb], '/model/rotary_emb/Cos'), g.constInt64([1])], '/model/rotary_emb/Unsqueeze_1');
  const sin = g.op('Unsqueeze', [g.op('Sin', [emb], '/model/rotary_emb/Sin'), g.constInt64([1])], '/model/rotary_emb/Unsqueeze_2');

  // Mask [B, 1, 1, S, T] (bool, true = may attend): causal by cache position and attention_mask.
  const S = g.op('Gather', [g.op('Shape', ['input_ids'], '/model/Shape'), g.constInt64([1], true)], '/model/Gather', { axis: 0 });
  const T = g.op('Gather', [g.op('Shape', ['attention_mask'], '/model/Shape_1'), g.constInt64([1], true)], '/model/Gather_1', { axis: 0 });
  const past = g.op('Sub', [T, S], '/model/Sub');
  const zero = g.constInt64([0], true);
  const one = g.constInt64([1], true);
  const kpos = g.op('Range', [zero, T, one], '/model/Range');
  const qpos = g.op('Range', [past, T, one], '/model/Range_1');
  const causal = g.op(
    'LessOrEqual',
    [g.op('Unsqueeze', [kpos, g.constInt64([0])], '/model/Unsqueeze'), g.op('Unsqueeze', [qpos, g.constInt64([1])], '/model/Unsqueeze_1')],
    '/model/LessOrEqual',
  );
  const padMask = g.op('Unsqueeze', [g.op('Cast', ['attention_mask'], '/model/Cast', { to: DT.BOOL }), g.constInt64([1, 2, 3])], '/model/Unsqueeze_2');
  const allowed = g.op('And', [causal, padMask], '/model/And');
  const minValue = g.constFloat([-3.4028234663852886e38], []);
  const scale = g.constFloat([1 / Math.sqrt(D)], []);

  const rmsNorm = (x: string, weight: string, scope: string): string => {
    const pow = g.op('Pow', [x, g.constFloat([2], [])], `${scope}/Pow`);
    const mean = g.op('ReduceMean', [pow], `${scope}/ReduceMean`, { axes: [-1], keepdims: 1 });
    const add = g.op('Add', [mean, g.constFloat([hp.rmsEps], [])], `${scope}/Add`);
    const rsq = g.op('Div', [g.constFloat([1], []), g.op('Sqrt', [add], `${scope}/Sqrt`)], `${scope}/Div`);
    const normed = g.op('Mul', [x, rsq], `${scope}/Mul`);
    return g.op('Mul', [weight, normed], `${scope}/Mul_1`);
  };
  const half = D / 2;
  const rope = (x: string, scope: string): string => {
    const x1 = g.op('Slice', [x, g.constInt64([0]), g.constInt64([half]), g.constInt64([-1])], `${scope}/Slice`);
    const x2 = g.op('Slice', [x, g.constInt64([half]), g.constInt64([D]), g.constInt64([-1])], `${scope}/Slice_1`);
    const rot = g.op('Concat', [g.op('Neg', [x2], `${scope}/Neg`), x1], `${scope}/Concat`, { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, cos], `${scope}/Mul`), g.op('Mul', [rot, sin], `${scope}/Mul_1`)], `${scope}/Add`);
  };

  const inputs: O.IValueInfoProto[] = [
    valueInfo('input_ids', DT.INT64, ['batch_size', 'sequence_length']),
    valueInfo('attention_mask', DT.INT64, ['batch_size', 'past_sequence_length + sequence_length']),
    valueInfo('position_ids', DT.INT64, ['batch_size', 'sequence_length']),
  ];
  const outputs: O.IValueInfoProto[] = [valueInfo('logits', DT.FLOAT, ['batch_size', 'sequence_length', hp.vocab])];

  let hs = hiddenStates0;
  for (let l = 0; l < hp.numLayers; l++) {
    const s = `/model/layers.${l}`;
    const a = `${s}/self_attn`;
    const inNorm = await vectorWeight(`blk.${l}.attn_norm.weight`, `model.layers.${l}.input_layernorm.weight`);
    const postNorm = await vectorWeight(`blk.${l}.ffn_norm.weight`, `model.layers.${l}.post_attention_layernorm.weight`);
    const wq = await matmulWeight(`blk.${l}.attn_q.weight`);
    const wk = await matmulWeight(`blk.${l}.attn_k.weight`);
    const wv = await matmulWeight(`blk.${l}.attn_v.weight`);
    const wo = await matmulWeight(`blk.${l}.attn_output.weight`);
    const wg = await matmulWeight(`blk.${l}.ffn_gate.weight`);
    const wu = await matmulWeight(`blk.${l}.ffn_up.weight`);
    const wd = await matmulWeight(`blk.${l}.ffn_down.weight`);

    const pastK = `past_key_values.${l}.key`;
    const pastV = `past_key_values.${l}.value`;
    inputs.push(valueInfo(pastK, DT.FLOAT, ['batch_size', NKV, 'past_sequence_length', D]));
    inputs.push(valueInfo(pastV, DT.FLOAT, ['batch_size', NKV, 'past_sequence_length', D]));
    outputs.push(valueInfo(`present.${l}.key`, DT.FLOAT, ['batch_size', NKV, 'past_sequence_length + sequence_length', D]));
    outputs.push(valueInfo(`present.${l}.value`, DT.FLOAT, ['batch_size', NKV, 'past_sequence_length + sequence_length', D]));

    const x = rmsNorm(hs, inNorm, `${s}/input_layernorm`);
    const proj = async (w: string, p: 'q' | 'k' | 'v') => {
      const mm = g.op('MatMul', [x, w], `${a}/${p}_proj/MatMul`);
      if (!hp.qkvBias) return mm;
      const bias = await vectorWeight(`blk.${l}.attn_${p}.bias`, `model.layers.${l}.self_attn.${p}_proj.bias`);
      return g.op('Add', [bias, mm], `${a}/${p}_proj/Add`);
    };
    const q = await proj(wq, 'q');
    const k = await proj(wk, 'k');
    const v = await proj(wv, 'v');
    const heads = (t: string, n: number, tag: string) =>
      g.op('Transpose', [g.op('Reshape', [t, g.constInt64([0, 0, n, D])], `${a}/Reshape${tag}`)], `${a}/Transpose${tag}`, { perm: [0, 2, 1, 3] });
    const qh = rope(heads(q, NH, ''), `${a}/rotary_q`);
    const kh = rope(heads(k, NKV, '_1'), `${a}/rotary_k`);
    const vh = heads(v, NKV, '_2');
    const presentK = g.node('Concat', [pastK, kh], `${a}/Concat_k`, { axis: 2 }, 1, [`present.${l}.key`])[0]!;
    const presentV = g.node('Concat', [pastV, vh], `${a}/Concat_v`, { axis: 2 }, 1, [`present.${l}.value`])[0]!;
    // Grouped-query attention by broadcasting: q [B, NKV, rep, S, D] against k, v [B, NKV, 1, T, D].
    const q5 = g.op('Reshape', [qh, g.constInt64([0, NKV, rep, -1, D])], `${a}/Reshape_3`);
    const k5 = g.op('Unsqueeze', [presentK, g.constInt64([2])], `${a}/Unsqueeze`);
    const v5 = g.op('Unsqueeze', [presentV, g.constInt64([2])], `${a}/Unsqueeze_1`);
    const kT = g.op('Transpose', [k5], `${a}/Transpose_3`, { perm: [0, 1, 2, 4, 3] });
    const scores = g.op('Mul', [g.op('MatMul', [q5, kT], `${a}/MatMul`), scale], `${a}/Mul`);
    const masked = g.op('Where', [allowed, scores, minValue], `${a}/Where`);
    const probs = g.op('Softmax', [masked], `${a}/Softmax`, { axis: -1 });
    const ctx = g.op('MatMul', [probs, v5], `${a}/MatMul_1`);
    const ctx4 = g.op('Reshape', [ctx, g.constInt64([0, NH, -1, D])], `${a}/Reshape_4`);
    const ctxT = g.op('Transpose', [ctx4], `${a}/Transpose_4`, { perm: [0, 2, 1, 3] });
    const ctx3 = g.op('Reshape', [ctxT, g.constInt64([0, 0, NH * D])], `${a}/Reshape_5`);
    const o = g.op('MatMul', [ctx3, wo], `${a}/o_proj/MatMul`);
    const h1 = g.op('Add', [hs, o], `${s}/Add`);

    const m = `${s}/mlp`;
    const y = rmsNorm(h1, postNorm, `${s}/post_attention_layernorm`);
    const gate = g.op('MatMul', [y, wg], `${m}/gate_proj/MatMul`);
    const act = g.op('Mul', [gate, g.op('Sigmoid', [gate], `${m}/act_fn/Sigmoid`)], `${m}/act_fn/Mul`);
    const up = g.op('MatMul', [y, wu], `${m}/up_proj/MatMul`);
    const down = g.op('MatMul', [g.op('Mul', [act, up], `${m}/Mul`), wd], `${m}/down_proj/MatMul`);
    hs = g.op('Add', [h1, down], `${s}/Add_1`);
  }
  const finalNorm = await vectorWeight('output_norm.weight', 'model.norm.weight');
  if (!hp.tied) lmHeadWeight = await matmulWeight('output.weight');
  const normed = rmsNorm(hs, finalNorm, '/model/norm');
  g.node('MatMul', [normed, lmHeadWeight], '/lm_head/MatMul', {}, 1, ['logits']);
  await sink.close();
  return { g, inputs, outputs };

}

/** Writes model.onnx (and model.onnx_data when external) into `dir`. */
export async function writeLlamaOnnx(hp: LlamaShape, weights: LlamaWeights, dir: string, opts: WriteOptions): Promise<void> {
  const sink = new WeightSink(opts.external, join(dir, 'model.onnx_data'), 'model.onnx_data');
  try {
    const { g, inputs, outputs } = await buildGraph(hp, weights, sink, opts.onTensor ?? (() => {}));
    const model: O.IModelProto = {
      irVersion: 8,
      producerName: opts.producerName,
      producerVersion: '1',
      opsetImport: [{ domain: '', version: 14 }],
      graph: { name: 'main_graph', node: g.nodes, initializer: g.initializers, input: inputs, output: outputs },
      metadataProps: opts.metadata ?? [],
    };
    await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish());
  } finally {
    await sink.close();
  }
}

/** config.json of the model, as transformers writes it for LlamaForCausalLM / Qwen2ForCausalLM. */
export function llamaConfig(hp: LlamaShape, tokens: { bos: number | null; eos: number | null }): Record<string, unknown> {
  const { hidden: H, heads: NH, kvHeads: NKV, headDim: D } = hp;
  return {
    architectures: [hp.arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: hp.arch === 'qwen2' ? 'qwen2' : 'llama',
    hidden_size: H,
    intermediate_size: hp.intermediate,
    num_attention_heads: NH,
    num_key_value_heads: NKV,
    head_dim: D,
    num_hidden_layers: hp.numLayers,
    vocab_size: hp.vocab,
    max_position_embeddings: hp.contextLength,
    rms_norm_eps: hp.rmsEps,
    rope_theta: hp.ropeTheta,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: hp.qkvBias,
    ...(hp.arch === 'qwen2' ? { use_sliding_window: false, sliding_window: null, max_window_layers: hp.numLayers } : {}),
    mlp_bias: false,
    tie_word_embeddings: hp.tied,
    bos_token_id: tokens.bos,
    eos_token_id: tokens.eos,
    torch_dtype: 'float32',
    use_cache: true,
  };
}
