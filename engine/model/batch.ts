/**
 * One run of a session over a batch of rows: the feeds (right padding with attention_mask 0, position_ids
 * from P, the past key values at batch 1, the hidden state entering a layer slice), the fetches (logits,
 * present key values, captured hidden states) and a view of the logits of the positions asked for.
 */
import * as ort from 'onnxruntime-node';
import { LOGITS_POSITIONS } from './graph.ts';
import { intTensor, type IoSpec } from './io.ts';
import { halfToFloat } from './onnx.ts';
import type { Numbers } from './states.ts';

/** Which logits a run returns: the last real position of each row, or every real position. */
export type LogitsMode = 'last' | 'all';

export interface LogitsView {
  /** Raw logits of row b at position j (within the row as run). */
  at(b: number, j: number): Float32Array;
  sum(b: number, from: number, to: number): number;
}

/** The hidden state a slice starts from: its graph input and each row's states ([row length, size]). */
export interface HiddenFeed {
  input: string;
  size: number;
  /** float16 (bit patterns) rather than float32. */
  half: boolean;
  row(b: number): Numbers;
}

export interface RunSpec {
  rows: number[][];
  /** Past key values by io.past index, batch 1, of length P (null: none); a slice is fed those it takes. */
  past: (Numbers | null)[] | null;
  P: number;
  wantPresent: boolean;
  mode: LogitsMode;
  /** Mode 'all': per row, the first position whose logits are needed (default 0: all of them). */
  firstPos?: number[];
  hidden?: HiddenFeed;
  /** Tensors to fetch besides logits and present key values (captured hidden states), each [B, L, size]. */
  capture?: string[];
}

export interface RunResult {
  view: LogitsView;
  /** Present key values by io.past index (null where the session has no such output). */
  present: (Numbers | null)[];
  /** The captured tensors' data, [B, L, size] each, with L. */
  captured: Map<string, Numbers>;
  width: number;
  vocab: number;
}

function hiddenTensor(hidden: HiddenFeed, rows: number[][], L: number): ort.Tensor {
  const B = rows.length;
  const { size: h, half } = hidden;
  const data = half ? new Uint16Array(B * L * h) : new Float32Array(B * L * h);
  for (let b = 0; b < B; b++) {
    const r = hidden.row(b);
    if (r.length !== rows[b].length * h) throw new Error(`internal: row ${b} has ${r.length / h} hidden states for ${rows[b].length} tokens`);
    data.set(r as never, b * L * h); // padding positions stay 0: no real position attends to them
  }
  return new ort.Tensor(half ? 'float16' : 'float32', data, [B, L, h]);
}

/** Runs `spec` on `session`; `weights`: edited matrices fed as graph inputs. */
export async function runRows(session: ort.InferenceSession, io: IoSpec, spec: RunSpec, weights: Record<string, ort.Tensor> = {}): Promise<RunResult> {
  const { rows, past, P, mode, firstPos } = spec;
  const B = rows.length;
  const L = Math.max(...rows.map((r) => r.length));
  const ids = new Array<number>(B * L).fill(0);
  const mask = new Array<number>(B * (P + L)).fill(0);
  const pos = new Array<number>(B * L);
  const picked: number[] = [];
  const offsets = new Int32Array(B);
  const first = (b: number) => (firstPos ? Math.max(0, Math.min(firstPos[b], rows[b].length - 1)) : 0);
  for (let b = 0; b < B; b++) {
    const r = rows[b];
    for (let j = 0; j < L; j++) {
      ids[b * L + j] = j < r.length ? r[j] : 0;
      pos[b * L + j] = P + j;
    }
    for (let j = 0; j < P + r.length; j++) mask[b * (P + L) + j] = 1;
    offsets[b] = picked.length;
    if (mode === 'last') picked.push(b * L + r.length - 1);
    else for (let j = first(b); j < r.length; j++) picked.push(b * L + j);
  }
  const takes = new Set(session.inputNames);
  const feeds: Record<string, ort.Tensor> = { ...weights };
  feeds.input_ids = intTensor(io.idsType, ids, [B, L]);
  if (takes.has('attention_mask')) feeds.attention_mask = intTensor(io.maskType, mask, [B, P + L]);
  if (takes.has('position_ids')) feeds.position_ids = intTensor(io.posType, pos, [B, L]);
  if (takes.has('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', [P > 0], [1]);
  if (takes.has(LOGITS_POSITIONS)) feeds[LOGITS_POSITIONS] = intTensor('int64', picked, [picked.length]);
  const kv = io.kvType;
  io.past.forEach((spec, i) => {
    if (!takes.has(spec.input)) return;
    const data = past ? past[i] : kv === 'float16' ? new Uint16Array(0) : new Float32Array(0);
    if (!data) throw new Error(`internal: no past key values for ${spec.input}`);
    feeds[spec.input] = new ort.Tensor(kv, data, [1, spec.kvHeads, P, spec.headDim]);
  });
  if (spec.hidden) feeds[spec.hidden.input] = hiddenTensor(spec.hidden, rows, L);
  const outputs = new Set(session.outputNames);
  const presentNames = spec.wantPresent ? io.past.map((p) => p.output).filter((o) => outputs.has(o)) : [];
  const capture = spec.capture ?? [];
  const out = await session.run(feeds, [io.logits, ...presentNames, ...capture]);
  const logitsT = out[io.logits];
  const logits = io.logitsType === 'float16' ? widen(logitsT.data as Uint16Array) : (logitsT.data as Float32Array);
  const V = Number(logitsT.dims[logitsT.dims.length - 1]); // trust the graph over config.json's vocab_size
  const view = logitsView(logits, V, io.selectable, mode, rows, L, offsets, first);
  const present = io.past.map((p) => (spec.wantPresent && out[p.output] ? (out[p.output].data as Numbers) : null));
  const captured = new Map(capture.map((name) => [name, out[name].data as Numbers]));
  return { view, present, captured, width: L, vocab: V };
}

function logitsView(
  logits: Float32Array, V: number, selectable: boolean, mode: LogitsMode, rows: number[][], L: number, offsets: Int32Array, first: (b: number) => number,
): LogitsView {
  if (selectable) {
    return {
      at: (b, j) => {
        const row = mode === 'last' ? (j === rows[b].length - 1 ? offsets[b] : -1) : j >= first(b) && j < rows[b].length ? offsets[b] + j - first(b) : -1;
        if (row < 0) throw new Error(`internal: logits of row ${b} position ${j} were not selected`);
        return logits.subarray(row * V, (row + 1) * V);
      },
      sum: (b, from, to) => {
        if (mode !== 'all' || from < first(b)) throw new Error('internal: a logit sum needs every position');
        return sum(logits, (offsets[b] + from) * V, (offsets[b] + to) * V);
      },
    };
  }
  return {
    at: (b, j) => logits.subarray((b * L + j) * V, (b * L + j + 1) * V),
    sum: (b, from, to) => {
      if (from < first(b)) throw new Error('internal: a logit sum needs every position');
      return sum(logits, (b * L + from) * V, (b * L + to) * V);
    },
  };
}

function widen(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = halfToFloat(halves[i]);
  return out;
}

function sum(a: Float32Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i];
  return s;
}
