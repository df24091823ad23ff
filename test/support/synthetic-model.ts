/**
 * A Llama-shaped export of any size with seeded random weights, written by the same graph writer as the
 * GGUF import (model.onnx + model.onnx_data, optimum's layout), with the test fixtures' tokenizer. For the
 * over-2-GB load test and `npm run bench:scale`: the numbers it computes mean nothing, its size and
 * structure are real.
 */
import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LlamaShape, llamaConfig, llamaTensors, writeLlamaOnnx } from '../../engine/gguf/llama-export.ts';

const TOKENIZER = join(import.meta.dirname, '..', 'fixtures', 'models', 'llama');

export interface SyntheticShape {
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  /** At least 512: the fixtures' tokenizer has 512 tokens. */
  vocab: number;
  seed?: number;
}

/** Uniform values in [-scale, scale) from a seeded xorshift32 (fast enough for gigabytes). */
function randomFill(length: number, scale: number, state: { s: number }): Float32Array {
  const out = new Float32Array(length);
  let s = state.s;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  state.s = s;
  return out;
}

function syntheticLlamaShape(s: SyntheticShape): LlamaShape {
  return {
    arch: 'llama',
    numLayers: s.layers,
    hidden: s.hidden,
    intermediate: s.intermediate,
    heads: s.heads,
    kvHeads: s.kvHeads,
    headDim: s.hidden / s.heads,
    vocab: s.vocab,
    ropeTheta: 10000,
    rmsEps: 1e-5,
    contextLength: 2048,
    tied: false,
    qkvBias: false,
  };
}

/** Bytes of the float32 weights of a shape (what model.onnx_data will hold, padding aside). */
export function syntheticWeightBytes(s: SyntheticShape): number {
  let n = 0;
  for (const shape of llamaTensors(syntheticLlamaShape(s)).values()) n += shape.reduce((a, b) => a * b, 1);
  return n * 4;
}

/** Writes the model into `dir` (created); returns the size of model.onnx_data. */
export async function writeSyntheticLlama(dir: string, s: SyntheticShape): Promise<number> {
  const hp = syntheticLlamaShape(s);
  const shapes = llamaTensors(hp);
  const state = { s: (s.seed ?? 1) >>> 0 || 1 };
  mkdirSync(dir, { recursive: true });
  await writeLlamaOnnx(
    hp,
    {
      // projections scaled like a trained model's (about 1/sqrt(fan-in)), so activations stay finite over many layers
      matmul: async (name) => {
        const [inF, outF] = shapes.get(name)!;
        return randomFill(inF! * outF!, 0.5 / Math.sqrt(inF!), state);
      },
      tensor: async (name) => {
        const n = shapes.get(name)!.reduce((a, b) => a * b, 1);
        return name.endsWith('norm.weight') ? new Float32Array(n).fill(1) : randomFill(n, 1, state);
      },
    },
    dir,
    { external: true, producerName: 'icl-sweep synthetic model' },
  );
  writeFileSync(join(dir, 'config.json'), JSON.stringify(llamaConfig(hp, { bos: null, eos: 0 }), null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) copyFileSync(join(TOKENIZER, f), join(dir, f));
  return statSync(join(dir, 'model.onnx_data')).size;
}
