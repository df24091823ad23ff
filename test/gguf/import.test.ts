/**
 * GGUF import parity. References: scripts/gguf_reference.py (transformers' own GGUF loader,
 * float32 PyTorch) on tiny random Llama GGUF files, one per supported tensor type.
 *
 * Tolerance 1e-4 on next-token log-probabilities (full vocabulary, last position). Justification:
 * dequantization is exact (the importer reproduces ggml's block arithmetic bit for bit; the weights
 * are the same float32 numbers PyTorch holds), so the only differences left are float32 summation
 * order in MatMul / softmax / RMSNorm between ONNX Runtime and PyTorch, measured at <= 3e-5 here
 * (the references are rounded to 1e-6). A wrong dequantization, a missing q/k un-permutation or a
 * wrong RoPE / mask / GQA head mapping moves log-probabilities by 1e-2 or more.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importGguf } from '../../engine/gguf/index.ts';
import { loadModel } from '../../engine/model/index.ts';
import { ioSpec } from '../../engine/model/io.ts';
import { feedMask, MASK_INPUT, maskFeed, maskTensor, probeMask } from '../../engine/model/mask.ts';
import { graphOf, onnx, readModelProto } from '../../engine/model/onnx.ts';
import { EngineInputError } from '../../engine/types.ts';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'gguf');
const TOL = 1e-4;
const refs = JSON.parse(readFileSync(join(FIX, 'tiny-references.json'), 'utf8')) as {
  files: Record<string, { type: string; arch?: string; prompts: { text: string; ids: number[]; last: number[] }[] }>;
};

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gguf-test-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('importGguf: tiny Llama per tensor type vs transformers GGUF loader', () => {
  it('covers F32, F16, Q8_0, Q4_0, Q4_1 at least (llama), and qwen2', () => {
    expect(Object.values(refs.files).some((f) => f.arch === 'qwen2')).toBe(true);
    const types = Object.values(refs.files).filter((f) => !f.arch).map((f) => f.type);
    for (const t of ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_1']) expect(types).toContain(t);
  });

  for (const [file, ref] of Object.entries(refs.files)) {
    it(`${ref.arch ?? 'llama'} ${ref.type}: ${file} matches within ${TOL} through loadModel (full prompt and prefix reuse), tokenizer ids equal`, async () => {
      const dir = join(work, file);
      const stages = new Set<string>();
      const result = await importGguf(join(FIX, file), dir, { onProgress: (p) => stages.add(p.stage) });
      expect(result.architecture).toBe(ref.arch ?? 'llama');
      expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).model_type).toBe(ref.arch ?? 'llama');
      expect(result.tensorTypes[ref.type]).toBeGreaterThan(0);
      expect(stages.has('weights') && stages.has('done')).toBe(true);
      const lm = await loadModel(dir, { executionProvider: 'cpu', cacheDir: join(work, 'cache'), decompositionCacheBytes: 1 << 24 });
      try {
        expect(lm.info.family).toBe('llama');
        expect(lm.info.numLayers).toBe(2);
        expect(lm.info.hasPastKeyValues).toBe(true);
        expect(lm.tokenizer.bosId).toBeNull(); // tokenizer.ggml.add_bos_token = false
        const pristine = await lm.withEdit(null);
        let worst = 0;
        for (const p of ref.prompts) {
          expect(lm.tokenizer.encode(p.text)).toEqual(p.ids);
          const [full] = await pristine.nextTokenLogprobs(await pristine.prefill([]), [p.ids]);
          worst = Math.max(worst, maxAbsDiff(full!, p.last));
          const k = Math.floor(p.ids.length / 2);
          const [reused] = await pristine.nextTokenLogprobs(await pristine.prefill(p.ids.slice(0, k)), [p.ids.slice(k)]);
          worst = Math.max(worst, maxAbsDiff(reused!, p.last));
        }
        console.log(`gguf parity ${file}: max |diff| ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(TOL);
        // The engine's module mapping finds every Llama matrix of the imported graph.
        for (const module of ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_up', 'fc_out'] as const) {
          const edited = await lm.withEdit({ module, layer: 1, ratio: 0.75, svd: 'exact', seed: 0 });
          const p = ref.prompts[0]!;
          const [lp] = await edited.nextTokenLogprobs(await edited.prefill([]), [p.ids]);
          expect(maxAbsDiff(lp!, p.last)).toBeGreaterThan(1e-3);
          edited.release();
        }
      } finally {
        await lm.dispose();
      }
    });
  }

  it('the graph alone (onnxruntime-node): a left-padded batch equals the single rows', async () => {
    const file = 'tiny-q8_0.gguf';
    const dir = join(work, 'direct-' + file);
    await importGguf(join(FIX, file), dir);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    const prompts = refs.files[file]!.prompts;
    const n = Math.max(...prompts.map((p) => p.ids.length));
    const B = prompts.length;
    const ids = new BigInt64Array(B * n);
    const mask = new BigInt64Array(B * n);
    const pos = new BigInt64Array(B * n);
    prompts.forEach((p, b) => {
      const pad = n - p.ids.length;
      p.ids.forEach((id, i) => {
        ids[b * n + pad + i] = BigInt(id);
        mask[b * n + pad + i] = 1n;
        pos[b * n + pad + i] = BigInt(i);
      });
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', ids, [B, n]),
      attention_mask: new ort.Tensor('int64', mask, [B, n]),
      position_ids: new ort.Tensor('int64', pos, [B, n]),
    };
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [B, cfg.num_key_value_heads, 0, cfg.head_dim]);
    }
    const out = await session.run(feeds);
    expect(Object.keys(out).sort()).toEqual(['logits', ...Array.from({ length: cfg.num_hidden_layers }, (_, l) => [`present.${l}.key`, `present.${l}.value`]).flat()].sort());
    const V = cfg.vocab_size;
    const logits = out.logits!.data as Float32Array;
    prompts.forEach((p, b) => {
      const row = logits.subarray((b * n + n - 1) * V, (b * n + n) * V);
      let m = -Infinity;
      for (const x of row) m = Math.max(m, x);
      let z = 0;
      for (const x of row) z += Math.exp(x - m);
      const lp = Array.from(row, (x) => x - m - Math.log(z));
      expect(maxAbsDiff(lp, p.last)).toBeLessThan(TOL);
    });
    await session.release();
  });
});

describe('importGguf: the attention mask the engine feeds', () => {
  it('every layer applies it as Where(mask, scores, c): fed as the additive mask that amounts to, the same logits bit for bit', async () => {
    const dir = join(work, 'mask-tiny-f32');
    await importGguf(join(FIX, 'tiny-f32.gguf'), dir);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const { model } = readModelProto(dir, join(dir, 'model.onnx'));
    const io = ioSpec(model, join(dir, 'model.onnx'));
    const tensor = maskTensor(model, cfg.num_hidden_layers)!;
    const readers = (m: typeof model, name: string) => graphOf(m).node.filter((n) => (n.input ?? []).includes(name));
    expect(new Set(readers(model, tensor).map((n) => n.opType))).toEqual(new Set(['Where']));
    const own = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), { extra: { session: { model_external_initializers_file_folder_path: dir } } });
    const probed = await probeMask(model, tensor, io, { extra: { session: { model_external_initializers_file_folder_path: dir } } });
    expect(probed).toMatchObject({ type: 'bool', visible: 1, hidden: 0 });
    const fed = feedMask(model, tensor, probed!);
    expect(fed).toMatchObject({ type: 'float32', visible: 0 });
    expect(fed.hidden).toBeLessThan(-1e30);
    expect(readers(model, MASK_INPUT).map((n) => n.opType)).toEqual(Array(cfg.num_hidden_layers).fill('Add'));
    const added = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), { extra: { session: { model_external_initializers_file_folder_path: dir } } });
    const ids = refs.files['tiny-f32.gguf']!.prompts[0]!.ids;
    const S = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, S]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(S).fill(1n), [1, S]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(i)), [1, S]),
    };
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, cfg.num_key_value_heads, 0, cfg.head_dim]);
    }
    const expected = (await own.run(feeds)).logits!.data as Float32Array;
    const { attention_mask: _, ...rest } = feeds;
    const got = (await added.run({ ...rest, [MASK_INPUT]: maskFeed(fed, 0, S, 1, [{ row: 0, offset: 0 }], [S]) })).logits!.data as Float32Array;
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))).toBe(true);
    await own.release();
    await added.release();
  });
});

describe('importGguf: errors', () => {
  it('an unsupported tensor type names the type and the tensor, and writes nothing', async () => {
    const out = join(work, 'bad-type');
    const err = await importGguf(join(FIX, 'tiny-unsupported-q4_k.gguf'), out).catch((e) => e);
    expect(err).toBeInstanceOf(EngineInputError);
    expect(err.message).toMatch(/Q4_K/);
    expect(err.message).toMatch(/blk\.0\.ffn_down\.weight/);
    expect(() => readFileSync(join(out, 'model.onnx'))).toThrow();
  });

  it('an unsupported architecture names it', async () => {
    const err = await importGguf(join(FIX, 'tiny-arch-gpt2.gguf'), join(work, 'bad-arch')).catch((e) => e);
    expect(err).toBeInstanceOf(EngineInputError);
    expect(err.message).toMatch(/architecture "gpt2" is not supported/);
  });

  it('a file that is not GGUF, or is missing, is an EngineInputError naming the path', async () => {
    const junk = join(work, 'junk.gguf');
    writeFileSync(junk, 'definitely not a gguf file');
    const e1 = await importGguf(junk, join(work, 'junk-out')).catch((e) => e);
    expect(e1).toBeInstanceOf(EngineInputError);
    expect(e1.message).toContain(junk);
    const missing = join(work, 'missing.gguf');
    const e2 = await importGguf(missing, join(work, 'missing-out')).catch((e) => e);
    expect(e2).toBeInstanceOf(EngineInputError);
    expect(e2.message).toContain(missing);
  });
});
