/**
 * Dequantization of GGML tensor data to float32, block by block, exactly as ggml's reference
 * dequantize_row_* functions do (and gguf-py's gguf.quants, which transformers uses).
 */
import { EngineInputError } from '../types.ts';

/** GGML tensor type ids (ggml.h). */
export const GGML_TYPE = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  BF16: 30,
} as const;

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(GGML_TYPE).map(([k, v]) => [v, k]));

export function ggmlTypeName(type: number): string {
  return NAMES[type] ?? `type ${type}`;
}

/** Types this importer can dequantize: [block size in elements, bytes per block]. */
const LAYOUT: Record<number, [number, number]> = {
  [GGML_TYPE.F32]: [1, 4],
  [GGML_TYPE.F16]: [1, 2],
  [GGML_TYPE.BF16]: [1, 2],
  [GGML_TYPE.Q8_0]: [32, 34],
  [GGML_TYPE.Q4_0]: [32, 18],
  [GGML_TYPE.Q4_1]: [32, 20],
  [GGML_TYPE.Q5_0]: [32, 22],
  [GGML_TYPE.Q5_1]: [32, 24],
  [GGML_TYPE.Q6_K]: [256, 210],
};

export const SUPPORTED_TYPES: string[] = Object.keys(LAYOUT).map((t) => ggmlTypeName(Number(t)));

export function isSupportedType(type: number): boolean {
  return LAYOUT[type] !== undefined;
}

/** Bytes a tensor of `elements` values of `type` occupies in the file. */
export function tensorByteSize(type: number, elements: number, tensorName = '?'): number {
  const layout = LAYOUT[type];
  if (!layout) {
    throw new EngineInputError(
      `GGUF tensor "${tensorName}" has type ${ggmlTypeName(type)}, which the importer does not support (supported: ${SUPPORTED_TYPES.join(', ')})`,
      tensorName,
    );
  }
  const [block, bytes] = layout;
  if (elements % block !== 0) throw new EngineInputError(`GGUF tensor "${tensorName}": ${elements} values is not a multiple of the ${ggmlTypeName(type)} block (${block})`, tensorName);
  return (elements / block) * bytes;
}

const F16_TABLE = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v: number;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac ? NaN : Infinity;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    table[h] = sign * v;
  }
  return table;
})();

export function f16ToF32(bits: number): number {
  return F16_TABLE[bits & 0xffff]!;
}

/** Dequantize `elements` values of `type` from `src` (the tensor's bytes) into a new Float32Array. */
export function dequantize(type: number, src: Uint8Array, elements: number, tensorName = '?'): Float32Array {
  const need = tensorByteSize(type, elements, tensorName);
  if (src.byteLength < need) throw new EngineInputError(`GGUF tensor "${tensorName}" is truncated (${src.byteLength} of ${need} bytes)`, tensorName);
  const out = new Float32Array(elements);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const h = (o: number) => F16_TABLE[view.getUint16(o, true)]!;
  switch (type) {
    case GGML_TYPE.F32:
      for (let i = 0; i < elements; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case GGML_TYPE.F16:
      for (let i = 0; i < elements; i++) out[i] = h(i * 2);
      break;
    case GGML_TYPE.BF16: {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < elements; i++) u32[i] = view.getUint16(i * 2, true) << 16;
      break;
    }
    case GGML_TYPE.Q8_0:
      for (let b = 0, o = 0, i = 0; i < elements; b++, o += 34) {
        const d = h(o);
        for (let j = 0; j < 32; j++) out[i++] = d * ((src[o + 2 + j]! << 24) >> 24);
      }
      break;
    case GGML_TYPE.Q4_0:
      for (let o = 0, i = 0; i < elements; o += 18, i += 32) {
        const d = h(o);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 2 + j]!;
          out[i + j] = ((q & 0x0f) - 8) * d;
          out[i + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      break;
    case GGML_TYPE.Q4_1:
      for (let o = 0, i = 0; i < elements; o += 20, i += 32) {
        const d = h(o);
        const m = h(o + 2);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 4 + j]!;
          out[i + j] = (q & 0x0f) * d + m;
          out[i + j + 16] = (q >> 4) * d + m;
        }
      }
      break;
    case GGML_TYPE.Q5_0:
      for (let o = 0, i = 0; i < elements; o += 22, i += 32) {
        const d = h(o);
        const qh = view.getUint32(o + 2, true);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 6 + j]!;
          const h0 = ((qh >>> j) << 4) & 0x10;
          const h1 = (qh >>> (j + 12)) & 0x10;
          out[i + j] = (((q & 0x0f) | h0) - 16) * d;
          out[i + j + 16] = (((q >> 4) | h1) - 16) * d;
        }
      }
      break;
    case GGML_TYPE.Q5_1:
      for (let o = 0, i = 0; i < elements; o += 24, i += 32) {
        const d = h(o);
        const m = h(o + 2);
        const qh = view.getUint32(o + 4, true);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 8 + j]!;
          const h0 = ((qh >>> j) << 4) & 0x10;
          const h1 = (qh >>> (j + 12)) & 0x10;
          out[i + j] = ((q & 0x0f) | h0) * d + m;
          out[i + j + 16] = ((q >> 4) | h1) * d + m;
        }
      }
      break;
    case GGML_TYPE.Q6_K:
      // block: ql[128], qh[64], scales[16] (int8), d (f16)
      for (let o = 0, i = 0; i < elements; o += 210, i += 256) {
        const d = h(o + 208);
        let ql = o;
        let qh = o + 128;
        let sc = o + 192;
        let y = i;
        for (let n = 0; n < 2; n++) {
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const q1 = ((src[ql + l]! & 0xf) | (((src[qh + l]! >> 0) & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32]! & 0xf) | (((src[qh + l]! >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l]! >> 4) | (((src[qh + l]! >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32]! >> 4) | (((src[qh + l]! >> 6) & 3) << 4)) - 32;
            const s = (k: number) => (src[sc + k]! << 24) >> 24;
            out[y + l] = d * s(is) * q1;
            out[y + l + 32] = d * s(is + 2) * q2;
            out[y + l + 64] = d * s(is + 4) * q3;
            out[y + l + 96] = d * s(is + 6) * q4;
          }
          y += 128;
          ql += 64;
          qh += 32;
          sc += 8;
        }
      }
      break;
    default:
      tensorByteSize(type, elements, tensorName); // throws
  }
  return out;
}
