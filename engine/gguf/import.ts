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
import { type LlamaShape, type LlamaWeights, llamaConfig, llamaTensors, writeLlamaOnnx } from './llama-export.ts';

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

interface HParams extends LlamaShape {
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

/**
 * The GGUF file's tensors as the ONNX layout wants them: projections transposed from ggml's [out, in] rows
 * to [in, out] (q/k rows of llama files un-permuted on the way), vectors and the embedding as stored.
 */
function ggufWeights(hp: HParams, byName: Map<string, TensorInfo>, load: (name: string) => Promise<Float32Array>): LlamaWeights {
  return {
    async matmul(name) {
      const [cols, rows] = byName.get(name)!.shape as [number, number];
      const qk = /\.attn_[qk]\.weight$/.test(name);
      return transposeRows(await load(name), rows, cols, hp.permuted && qk ? unpermuteRow(hp.headDim) : undefined);
    },
    tensor: load,
  };
}

export async function importGguf(ggufPath: string, outDir: string, options: ImportOptions = {}): Promise<ImportResult> {
  const t0 = performance.now();
  const progress = options.onProgress ?? (() => {});
  progress({ stage: 'parse', done: 0, total: 1, message: `reading ${ggufPath}` });
  const { meta, tensors, dataOffset } = await readGgufHeader(ggufPath);
  const hp = hparamsOf(meta, tensors, ggufPath);

  // Validate everything before writing anything.
  const expected = llamaTensors(hp);
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

    await writeLlamaOnnx(hp, ggufWeights(hp, byName, load), tmpDir, {
      external,
      producerName: 'icl-sweep gguf import',
      metadata: [{ key: 'source_gguf_sha256_head', value: await fileHeadHash(ggufPath) }],
      onTensor: tick,
    });
    progress({ stage: 'write', done: 0, total: 1, message: 'config.json' });
    const bosId = num(meta, 'tokenizer.ggml.bos_token_id', -1);
    const tokens = { bos: bosId >= 0 ? bosId : null, eos: tokenizer.eosId };
    const configJson = {
      ...llamaConfig(hp, tokens),
      gguf_source: { name: meta['general.name'] ?? null, file_type: meta['general.file_type'] ?? null, tensor_types: tensorTypes },
    };
    await writeFile(join(tmpDir, 'config.json'), JSON.stringify(configJson, null, 2));
    await writeFile(join(tmpDir, 'generation_config.json'), JSON.stringify({ bos_token_id: tokens.bos, eos_token_id: tokens.eos }, null, 2));
    await writeFile(join(tmpDir, 'tokenizer.json'), JSON.stringify(tokenizer.tokenizerJson));
    await writeFile(join(tmpDir, 'tokenizer_config.json'), JSON.stringify(tokenizer.tokenizerConfig, null, 2));
    await fh.close();
    await rm(finalDir, { recursive: true, force: true });
    await rename(tmpDir, finalDir);
  } catch (e) {
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
