/**
 * GGUF (llama.cpp) -> the engine's ONNX model layout (what optimum's exporter writes for a
 * Llama model with past key values): model.onnx [+ model.onnx_data], config.json,
 * tokenizer.json, tokenizer_config.json, generation_config.json.
 *
 * Weights are dequantized to float32 exactly (ggml's dequantize_row_* arithmetic). Q and K
 * projection rows are un-permuted from llama.cpp's interleaved-pair RoPE layout back to Hugging
 * Face's layout (the inverse of convert_hf_to_gguf.py's permute), and the graph applies HF's
 * rotate_half RoPE, so the result is the same function as transformers' LlamaForCausalLM built
 * from the same GGUF. Node names mirror optimum's export scopes
 * (/model/layers.N/self_attn/q_proj/MatMul, /model/layers.N/mlp/gate_proj/MatMul, /lm_head/MatMul);
 * MatMul weights are stored [in, out] as the exporter stores them.
 *
 * Work is done tensor by tensor, yielding to the event loop between slices, and writes go to a
 * temporary folder renamed into place at the end (a crash never leaves a half-written model).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { gguf } from '@huggingface/gguf';
import { EngineInputError } from '../types.ts';
import { dequantize, ggmlTypeName, isSupportedType, SUPPORTED_TYPES, tensorByteSize } from './dequant.ts';
import { buildTokenizer } from './tokenizer.ts';
import type { onnx as O } from 'onnx-proto';
import { DT, GraphBuilder, onnx, valueInfo } from './onnx-builder.ts';

/** llama (incl. SmolLM2, Mistral-style files), qwen2 (q/k/v biases, no q/k row permutation in llama.cpp's converter). */
export const SUPPORTED_ARCHITECTURES = ['llama', 'qwen2'] as const;

export interface ImportProgress {
  stage: 'parse' | 'weights' | 'write' | 'done';
  done: number;
  total: number;
  message?: string;
}

export interface ImportOptions {
  onProgress?: (p: ImportProgress) => void;
  /** Store weights in model.onnx_data (true), inline (false), or inline only when small ('auto', default: > 64 MB goes external). */
  externalData?: boolean | 'auto';
}

export interface ImportResult {
  dir: string;
  architecture: string;
  /** Tensor type name -> number of tensors of that type in the GGUF file. */
  tensorTypes: Record<string, number>;
  numLayers: number;
  parameters: number;
  seconds: number;
}

interface TensorInfo {
  name: string;
  shape: number[];
  dtype: number;
  offset: number;
}

interface HParams {
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
  /** llama.cpp permuted q/k rows for its interleaved RoPE (llama only). */
  permuted: boolean;
}

const EXTERNAL_THRESHOLD = 64 * 1024 * 1024;

function num(meta: Record<string, unknown>, key: string, fallback?: number): number {
  const v = meta[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new EngineInputError(`GGUF metadata lacks "${key}"`, key);
  }
  return Number(v);
}

/** Parse header + metadata only (cheap); throws EngineInputError for a file that is not a supported GGUF. */
export async function readGgufHeader(ggufPath: string) {
  let parsed;
  try {
    parsed = await gguf(resolve(ggufPath), { allowLocalFile: true });
  } catch (e) {
    throw new EngineInputError(`cannot read GGUF file ${ggufPath}: ${(e as Error).message}`, ggufPath);
  }
  const meta = parsed.metadata as unknown as Record<string, unknown>;
  const tensors: TensorInfo[] = parsed.tensorInfos.map((t) => ({
    name: t.name,
    shape: t.shape.map(Number),
    dtype: Number(t.dtype),
    offset: Number(t.offset),
  }));
  return { meta, tensors, dataOffset: Number(parsed.tensorDataOffset) };
}

function hparamsOf(meta: Record<string, unknown>, tensors: TensorInfo[], path: string): HParams {
  const arch = String(meta['general.architecture']);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new EngineInputError(
      `GGUF architecture "${arch}" is not supported by the importer (supported: ${SUPPORTED_ARCHITECTURES.join(', ')}): ${path}`,
      'general.architecture',
    );
  }
  const scaling = meta[`${arch}.rope.scaling.type`];
  if (scaling !== undefined && scaling !== 'none') {
    throw new EngineInputError(`GGUF RoPE scaling "${String(scaling)}" is not supported by the importer`, `${arch}.rope.scaling.type`);
  }
  const hidden = num(meta, `${arch}.embedding_length`);
  const heads = num(meta, `${arch}.attention.head_count`);
  const headDim = num(meta, `${arch}.attention.key_length`, hidden / heads);
  const ropeDim = num(meta, `${arch}.rope.dimension_count`, headDim);
  if (ropeDim !== headDim) throw new EngineInputError(`GGUF partial rotary (rope.dimension_count ${ropeDim} != head dim ${headDim}) is not supported`, `${arch}.rope.dimension_count`);
  const embd = tensors.find((t) => t.name === 'token_embd.weight');
  if (!embd) throw new EngineInputError(`GGUF file has no token_embd.weight tensor: ${path}`, 'token_embd.weight');
  return {
    arch,
    numLayers: num(meta, `${arch}.block_count`),
    hidden,
    intermediate: num(meta, `${arch}.feed_forward_length`),
    heads,
    kvHeads: num(meta, `${arch}.attention.head_count_kv`, heads),
    headDim,
    vocab: embd.shape[1]!,
    ropeTheta: num(meta, `${arch}.rope.freq_base`, 10000),
    rmsEps: num(meta, `${arch}.attention.layer_norm_rms_epsilon`),
    contextLength: num(meta, `${arch}.context_length`, 2048),
    tied: !tensors.some((t) => t.name === 'output.weight'),
    qkvBias: arch === 'qwen2',
    permuted: arch === 'llama',
  };
}

/** Expected GGUF tensors and their shapes (ggml order: ne0 = columns). */
function expectedTensors(hp: HParams): Map<string, number[]> {
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

/**
 * W (rows x cols, row-major, the nn.Linear [out, in] layout) -> W^T (cols x rows), reading source
 * row rowMap(r) for output column r. Yields to the event loop every few million values.
 */
async function transposeRows(src: Float32Array, rows: number, cols: number, rowMap?: (r: number) => number): Promise<Float32Array> {
  const dst = new Float32Array(rows * cols);
  const step = Math.max(1, Math.floor(1_000_000 / cols));
  for (let r0 = 0; r0 < rows; r0 += step) {
    const r1 = Math.min(rows, r0 + step);
    for (let r = r0; r < r1; r++) {
      const s = (rowMap ? rowMap(r) : r) * cols;
      for (let c = 0; c < cols; c++) dst[c * rows + r] = src[s + c]!;
    }
    if (r1 < rows) await yieldLoop();
  }
  return dst;
}

/**
 * llama.cpp stores Q/K rows of each head as interleaved (even, odd) rotary pairs; HF keeps the two
 * halves apart. HF row h*d + j*(d/2) + i  <-  GGUF row h*d + 2*i + j.
 */
function unpermuteRow(headDim: number): (r: number) => number {
  const half = headDim / 2;
  return (r) => {
    const h = Math.floor(r / headDim);
    const k = r % headDim;
    const j = k >= half ? 1 : 0;
    const i = k - j * half;
    return h * headDim + 2 * i + j;
  };
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

export async function importGguf(ggufPath: string, outDir: string, options: ImportOptions = {}): Promise<ImportResult> {
  const t0 = performance.now();
  const progress = options.onProgress ?? (() => {});
  progress({ stage: 'parse', done: 0, total: 1, message: `reading ${ggufPath}` });
  const { meta, tensors, dataOffset } = await readGgufHeader(ggufPath);
  const hp = hparamsOf(meta, tensors, ggufPath);

  // Validate everything before writing anything.
  const expected = expectedTensors(hp);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const tensorTypes: Record<string, number> = {};
  for (const t of tensors) {
    tensorTypes[ggmlTypeName(t.dtype)] = (tensorTypes[ggmlTypeName(t.dtype)] ?? 0) + 1;
    if (!isSupportedType(t.dtype)) {
      throw new EngineInputError(
        `GGUF tensor "${t.name}" has type ${ggmlTypeName(t.dtype)}, which the importer does not support (supported: ${SUPPORTED_TYPES.join(', ')}): ${ggufPath}`,
        t.name,
      );
    }
    if (!expected.has(t.name)) throw new EngineInputError(`GGUF tensor "${t.name}" is not part of a plain ${hp.arch} model; the importer does not know it`, t.name);
  }
  for (const [name, shape] of expected) {
    const t = byName.get(name);
    if (!t) throw new EngineInputError(`GGUF file lacks tensor "${name}": ${ggufPath}`, name);
    if (t.shape.join(',') !== shape.join(',')) throw new EngineInputError(`GGUF tensor "${name}" has shape [${t.shape}], expected [${shape}]`, name);
  }
  const tokenizer = buildTokenizer(meta);
  if ((meta['tokenizer.ggml.tokens'] as unknown[]).length !== hp.vocab) {
    throw new EngineInputError(`GGUF tokenizer has ${(meta['tokenizer.ggml.tokens'] as unknown[]).length} tokens but token_embd.weight has ${hp.vocab} rows`, 'tokenizer.ggml.tokens');
  }

  const parameters = [...expected.values()].reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0) + (hp.tied ? hp.hidden * hp.vocab : 0);
  const floatBytes = parameters * 4;
  const external = options.externalData === undefined || options.externalData === 'auto' ? floatBytes > EXTERNAL_THRESHOLD : options.externalData;

  const finalDir = resolve(outDir);
  const tmpDir = `${finalDir}.partial-${process.pid}-${Date.now()}`;
  await mkdir(dirname(finalDir), { recursive: true });
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  const fh = await open(ggufPath, 'r');
  const sink = new WeightSink(external, join(tmpDir, 'model.onnx_data'), 'model.onnx_data');
  try {
    const total = expected.size + (hp.tied ? 1 : 0);
    let done = 0;
    const load = async (name: string): Promise<Float32Array> => {
      const t = byName.get(name)!;
      const elements = t.shape.reduce((a, b) => a * b, 1);
      const size = tensorByteSize(t.dtype, elements, name);
      const buf = new Uint8Array(size);
      const { bytesRead } = await fh.read(buf, 0, size, dataOffset + t.offset);
      if (bytesRead !== size) throw new EngineInputError(`GGUF file is truncated at tensor "${name}": ${ggufPath}`, name);
      await yieldLoop();
      // In slices of 2^20 values (a multiple of every block size), yielding between them.
      const CHUNK = 1 << 20;
      if (elements <= CHUNK) return dequantize(t.dtype, buf, elements, name);
      const out = new Float32Array(elements);
      for (let e0 = 0; e0 < elements; e0 += CHUNK) {
        const n = Math.min(CHUNK, elements - e0);
        const b0 = tensorByteSize(t.dtype, e0, name);
        out.set(dequantize(t.dtype, buf.subarray(b0, b0 + tensorByteSize(t.dtype, n, name)), n, name), e0);
        await yieldLoop();
      }
      return out;
    };
    const tick = (name: string) => progress({ stage: 'weights', done: ++done, total, message: name });

    const g = new GraphBuilder();
    const inits = g.initializers;
    let matmulCounter = 0;
    const matmulWeight = async (ggufName: string, rowMap?: (r: number) => number): Promise<string> => {
      const t = byName.get(ggufName)!;
      const [cols, rows] = t.shape as [number, number];
      const w = await load(ggufName);
      const wt = await transposeRows(w, rows, cols, rowMap);
      const name = `onnx::MatMul_${++matmulCounter}`;
      inits.push(await sink.add(name, [cols, rows], wt));
      tick(ggufName);
      return name;
    };
    const vectorWeight = async (ggufName: string, name: string): Promise<string> => {
      const t = byName.get(ggufName)!;
      inits.push(await sink.add(name, [t.shape[0]!], await load(ggufName)));
      tick(ggufName);
      return name;
    };

    const { hidden: H, heads: NH, kvHeads: NKV, headDim: D } = hp;
    const rep = NH / NKV;
    if (!Number.isInteger(rep)) throw new EngineInputError(`GGUF head_count ${NH} is not a multiple of head_count_kv ${NKV}`, `${hp.arch}.attention.head_count_kv`);

    // Embedding.
    const embd = await load('token_embd.weight');
    inits.push(await sink.add('model.embed_tokens.weight', [hp.vocab, H], embd));
    tick('token_embd.weight');
    let lmHeadWeight: string;
    if (hp.tied) {
      const wt = await transposeRows(embd, hp.vocab, H);
      lmHeadWeight = `onnx::MatMul_lm_head`;
      inits.push(await sink.add(lmHeadWeight, [H, hp.vocab], wt));
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
      const wq = await matmulWeight(`blk.${l}.attn_q.weight`, hp.permuted ? unpermuteRow(D) : undefined);
      const wk = await matmulWeight(`blk.${l}.attn_k.weight`, hp.permuted ? unpermuteRow(D) : undefined);
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

    progress({ stage: 'write', done: 0, total: 1, message: 'model.onnx' });
    const model: O.IModelProto = {
      irVersion: 8,
      producerName: 'icl-sweep gguf import',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: 14 }],
      graph: { name: 'main_graph', node: g.nodes, initializer: inits, input: inputs, output: outputs },
      metadataProps: [{ key: 'source_gguf_sha256_head', value: await fileHeadHash(ggufPath) }],
    };
    const bytes = onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
    await writeFile(join(tmpDir, 'model.onnx'), bytes);
    const configJson = {
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
      bos_token_id: num(meta, 'tokenizer.ggml.bos_token_id', -1) >= 0 ? num(meta, 'tokenizer.ggml.bos_token_id') : null,
      eos_token_id: tokenizer.eosId,
      torch_dtype: 'float32',
      use_cache: true,
      gguf_source: { name: meta['general.name'] ?? null, file_type: meta['general.file_type'] ?? null, tensor_types: tensorTypes },
    };
    await writeFile(join(tmpDir, 'config.json'), JSON.stringify(configJson, null, 2));
    await writeFile(join(tmpDir, 'generation_config.json'), JSON.stringify({ bos_token_id: configJson.bos_token_id, eos_token_id: configJson.eos_token_id }, null, 2));
    await writeFile(join(tmpDir, 'tokenizer.json'), JSON.stringify(tokenizer.tokenizerJson));
    await writeFile(join(tmpDir, 'tokenizer_config.json'), JSON.stringify(tokenizer.tokenizerConfig, null, 2));
    await fh.close();
    await rm(finalDir, { recursive: true, force: true });
    await rename(tmpDir, finalDir);
  } catch (e) {
    await sink.close().catch(() => {});
    await fh.close().catch(() => {});
    await rm(tmpDir, { recursive: true, force: true });
    throw e;
  }
  progress({ stage: 'done', done: 1, total: 1 });
  return {
    dir: finalDir,
    architecture: hp.arch,
    tensorTypes,
    numLayers: hp.numLayers,
    parameters,
    seconds: (performance.now() - t0) / 1000,
  };
}

async function fileHeadHash(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(1 << 20);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex');
  } finally {
    await fh.close();
  }
}
