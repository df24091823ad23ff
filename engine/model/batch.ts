/**
 * One run of a session over a batch of sequences: the feeds (sequences laid out in rows, side by side where
 * the graph takes a fed attention mask, else one per row, right-padded with attention_mask 0; position_ids
 * from P; the past key values at batch 1; the hidden state entering a layer slice), the fetches (logits,
 * present key values, captured hidden states) and a view of the logits of the positions asked for.
 */
import * as ort from 'onnxruntime-node';
import { LOGITS_POSITIONS } from './graph.ts';
import { intTensor, type IoSpec } from './io.ts';
import { MASK_INPUT, maskFeed, type Place } from './mask.ts';
import { DT_FLOAT16, halvesToFloat32 } from './onnx.ts';
import type { Numbers } from './states.ts';

/** Which logits a run returns: the last position of each sequence, or every position. */
export type LogitsMode = 'last' | 'all';

export interface LogitsView {
  /** Raw logits of sequence q at its position j. */
  at(q: number, j: number): Float32Array;
  sum(q: number, from: number, to: number): number;
}

/** The hidden state a slice starts from: its graph input and each sequence's states ([length, size]). */
export interface HiddenFeed {
  input: string;
  size: number;
  /** float16 (bit patterns) rather than float32. */
  half: boolean;
  seq(q: number): Numbers;
}

export interface RunSpec {
  seqs: number[][];
  /** The sequences of each row, side by side (default: one per row); several per row need a fed mask. */
  pack?: number[][];
  /** Past key values by io.past index, batch 1, of length P (null: none); a slice is fed those it takes. */
  past: (Numbers | null)[] | null;
  P: number;
  wantPresent: boolean;
  mode: LogitsMode;
  /** Mode 'all': per sequence, the first position whose logits are needed (default 0: all of them). */
  firstPos?: number[];
  hidden?: HiddenFeed;
  /** Tensors to fetch besides logits and present key values (captured hidden states), each [rows, width, size]. */
  capture?: string[];
}

export interface RunResult {
  view: LogitsView;
  /** Present key values by io.past index (null where the session has no such output). */
  present: (Numbers | null)[];
  /** The captured tensors' data, [rows, width, size] each. */
  captured: Map<string, Numbers>;
  /** Where each sequence sat, and the rows' width. */
  places: Place[];
  width: number;
  vocab: number;
}

/** Sequences laid out in rows: where each sits, and the width of the rows. */
function layout(seqs: number[][], pack: number[][]): { places: Place[]; width: number } {
  const places = new Array<Place>(seqs.length);
  let width = 0;
  pack.forEach((members, row) => {
    let offset = 0;
    for (const q of members) {
      places[q] = { row, offset };
      offset += seqs[q].length;
    }
    width = Math.max(width, offset);
  });
  if (places.some((p) => !p)) throw new Error('internal: a sequence was laid out in no row');
  return { places, width };
}

function hiddenTensor(hidden: HiddenFeed, seqs: number[][], places: Place[], rows: number, width: number): ort.Tensor {
  const h = hidden.size;
  const data = hidden.half ? new Uint16Array(rows * width * h) : new Float32Array(rows * width * h);
  places.forEach(({ row, offset }, q) => {
    const states = hidden.seq(q);
    if (states.length !== seqs[q].length * h) throw new Error(`internal: sequence ${q} has ${states.length / h} hidden states for ${seqs[q].length} tokens`);
    data.set(states as never, (row * width + offset) * h); // padding stays 0: no real position sees it
  });
  return new ort.Tensor(hidden.half ? 'float16' : 'float32', data, [rows, width, h]);
}

/** Runs `spec` on `session`; `weights`: edited matrices fed as graph inputs. */
export async function runRows(session: ort.InferenceSession, io: IoSpec, spec: RunSpec, weights: Record<string, ort.Tensor> = {}): Promise<RunResult> {
  const { seqs, past, P, mode, firstPos } = spec;
  const pack = spec.pack ?? seqs.map((_, q) => [q]);
  if (!io.mask && pack.some((m) => m.length > 1)) throw new Error('internal: sequences share a row without a fed mask');
  const { places, width } = layout(seqs, pack);
  const R = pack.length;
  const ids = new Array<number>(R * width).fill(0);
  const pos = new Array<number>(R * width).fill(P); // padding: any valid position
  const mask = new Array<number>(R * (P + width)).fill(0);
  for (let r = 0; r < R; r++) for (let j = 0; j < P; j++) mask[r * (P + width) + j] = 1;
  const first = (q: number) => (firstPos ? Math.max(0, Math.min(firstPos[q], seqs[q].length - 1)) : 0);
  const picked: number[] = [];
  const offsets = new Int32Array(seqs.length);
  seqs.forEach((s, q) => {
    const { row, offset } = places[q];
    for (let j = 0; j < s.length; j++) {
      ids[row * width + offset + j] = s[j];
      pos[row * width + offset + j] = P + j;
      mask[row * (P + width) + P + offset + j] = 1;
    }
    offsets[q] = picked.length;
    if (mode === 'last') picked.push(row * width + offset + s.length - 1);
    else for (let j = first(q); j < s.length; j++) picked.push(row * width + offset + j);
  });
  const takes = new Set(session.inputNames);
  const feeds: Record<string, ort.Tensor> = { ...weights };
  feeds.input_ids = intTensor(io.idsType, ids, [R, width]);
  if (takes.has('attention_mask')) feeds.attention_mask = intTensor(io.maskType, mask, [R, P + width]);
  if (takes.has('position_ids')) feeds.position_ids = intTensor(io.posType, pos, [R, width]);
  if (takes.has('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', [P > 0], [1]);
  if (takes.has(LOGITS_POSITIONS)) feeds[LOGITS_POSITIONS] = intTensor('int64', picked, [picked.length]);
  if (takes.has(MASK_INPUT)) feeds[MASK_INPUT] = maskFeed(io.mask!, P, width, R, places, seqs.map((s) => s.length));
  const kv = io.kvType;
  io.past.forEach((p, i) => {
    if (!takes.has(p.input)) return;
    const data = past ? past[i] : kv === 'float16' ? new Uint16Array(0) : new Float32Array(0);
    if (!data) throw new Error(`internal: no past key values for ${p.input}`);
    feeds[p.input] = new ort.Tensor(kv, data, [1, p.kvHeads, P, p.headDim]);
  });
  if (spec.hidden) feeds[spec.hidden.input] = hiddenTensor(spec.hidden, seqs, places, R, width);
  const outputs = new Set(session.outputNames);
  const presentNames = spec.wantPresent ? io.past.map((p) => p.output).filter((o) => outputs.has(o)) : [];
  const capture = spec.capture ?? [];
  const out = await session.run(feeds, [io.logits, ...presentNames, ...capture]);
  const logitsT = out[io.logits];
  const logits = io.logitsType === 'float16' ? halvesToFloat32(logitsT.data as Uint16Array, DT_FLOAT16) : (logitsT.data as Float32Array);
  const V = Number(logitsT.dims[logitsT.dims.length - 1]); // trust the graph over config.json's vocab_size
  const flat = (q: number, j: number) => places[q].row * width + places[q].offset + j;
  // selected logits: each sequence's positions one after another from offsets[q]
  const selected = (q: number, j: number) => offsets[q] + (mode === 'last' ? 0 : j - first(q));
  const view = logitsView(logits, V, io.selectable ? selected : flat, mode, seqs, first);
  const present = io.past.map((p) => (spec.wantPresent && out[p.output] ? (out[p.output].data as Numbers) : null));
  const captured = new Map(capture.map((name) => [name, out[name].data as Numbers]));
  return { view, present, captured, places, width, vocab: V };
}

/** Logits by (sequence, position); `index` gives the row of the logits buffer holding them. */
function logitsView(logits: Float32Array, V: number, index: (q: number, j: number) => number, mode: LogitsMode, seqs: number[][], first: (q: number) => number): LogitsView {
  const computed = (q: number, j: number) => (mode === 'last' ? j === seqs[q].length - 1 : j >= first(q) && j < seqs[q].length);
  return {
    at: (q, j) => {
      const row = computed(q, j) ? index(q, j) : -1;
      if (row < 0) throw new Error(`internal: logits of sequence ${q} position ${j} were not computed`);
      return logits.subarray(row * V, (row + 1) * V);
    },
    sum: (q, from, to) => {
      if (mode !== 'all' || from < first(q)) throw new Error('internal: a logit sum needs every position');
      let s = 0;
      for (let j = from; j < to; j++) {
        const row = index(q, j);
        for (let v = row * V; v < (row + 1) * V; v++) s += logits[v];
      }
      return s;
    },
  };
}
