/**
 * Runs of one edited (or pristine) model: the demonstration prefix once, its past key values reused by
 * batches of queries on top of it (right-padded, attention_mask 0 on padding, position_ids from P), and the
 * logits of only the positions a call needs.
 */
import * as ort from 'onnxruntime-node';
import { EngineInputError } from '../types.ts';
import { LOGITS_POSITIONS } from './graph.ts';
import { intTensor, type IoSpec } from './io.ts';
import { halfToFloat } from './onnx.ts';
import type { ContinuationHints, EditedLM, PrefillHints, Prefix } from './index.ts';
import type { EditStats } from './edits.ts';

/** Past key values as the runtime returns them: float32, or float16 bit patterns. */
type KvData = Float32Array | Uint16Array;

interface PrefixImpl extends Prefix {
  ids: number[];
  owner: object;
  /** Past key values of the prefix, batch 1 ([1, kvHeads, P, headDim] each), or null (no past support / empty). */
  past: KvData[] | null;
  /** Raw logits at the prefix's last position. */
  lastLogits: Float32Array | null;
  /** Sum of all raw logits over the prefix's positions. */
  logitSum: number | null;
}

/** Bounds of one run's buffers (batches are split to fit). */
export interface RunLimits {
  maxLogitsBytes: number;
  maxBatch: number;
  maxKvBytes: number;
}

type Visit = (row: number, at: (p: number) => Float32Array, sumRange: (from: number, to: number) => number) => void;

/** Which logits a run returns: the last real position of each row, or every real position. */
type LogitsMode = 'last' | 'all';

interface LogitsView {
  /** Raw logits of row b at position j (within the row as run). */
  at(b: number, j: number): Float32Array;
  sum(b: number, from: number, to: number): number;
}

export class Edited implements EditedLM {
  forwardTokens = 0;
  paddingTokens = 0;
  readonly svdSeconds: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  private token = {};

  private readonly maxLogitsBytes: number;
  private readonly maxBatch: number;
  private readonly maxKvBytes: number;

  constructor(
    private session: ort.InferenceSession,
    /** The edited matrices, by the graph input they are fed through. */
    private weightFeeds: Record<string, ort.Tensor>,
    private io: IoSpec,
    private vocab: number,
    limits: RunLimits,
    stats: EditStats,
    readonly editSeconds: number,
    private readonly onRelease: () => void,
  ) {
    ({ maxLogitsBytes: this.maxLogitsBytes, maxBatch: this.maxBatch, maxKvBytes: this.maxKvBytes } = limits);
    this.svdSeconds = stats.svdSeconds;
    this.cacheHits = stats.hits;
    this.cacheMisses = stats.misses;
  }

  release(): void {
    this.weightFeeds = {};
    this.onRelease();
  }

  private get hasPast(): boolean {
    return this.io.past.length > 0;
  }

  /**
   * One run: rows right-padded to the longest, on top of `past` (batch 1, broadcast to the batch inside the
   * graph) of length P. `firstPos` (mode 'all'): per row, the first position whose logits are needed
   * (default 0: all of them).
   */
  private async run(
    rows: number[][],
    past: KvData[] | null,
    P: number,
    wantPresent: boolean,
    mode: LogitsMode,
    firstPos?: number[],
  ): Promise<{ view: LogitsView; present: KvData[] }> {
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
      this.forwardTokens += r.length;
      this.paddingTokens += L - r.length;
    }
    const feeds: Record<string, ort.Tensor> = { ...this.weightFeeds };
    feeds.input_ids = intTensor(this.io.idsType, ids, [B, L]);
    if (this.io.inputs.has('attention_mask')) feeds.attention_mask = intTensor(this.io.maskType, mask, [B, P + L]);
    if (this.io.inputs.has('position_ids')) feeds.position_ids = intTensor(this.io.posType, pos, [B, L]);
    if (this.io.inputs.has('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', [P > 0], [1]);
    if (this.io.selectable) feeds[LOGITS_POSITIONS] = intTensor('int64', picked, [picked.length]);
    const kv = this.io.kvType;
    this.io.past.forEach((spec, i) => {
      const data = past ? past[i] : kv === 'float16' ? new Uint16Array(0) : new Float32Array(0);
      feeds[spec.input] = new ort.Tensor(kv, data, [1, spec.kvHeads, P, spec.headDim]);
    });
    const fetches = [this.io.logits, ...(wantPresent ? this.io.past.map((p) => p.output) : [])];
    const out = await this.session.run(feeds, fetches);
    const logitsT = out[this.io.logits];
    const logits = this.io.logitsType === 'float16' ? widen(logitsT.data as Uint16Array) : (logitsT.data as Float32Array);
    const V = Number(logitsT.dims[logitsT.dims.length - 1]); // trust the graph over config.json's vocab_size
    this.vocab = V;
    let view: LogitsView;
    if (this.io.selectable) {
      view = {
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
    } else {
      view = {
        at: (b, j) => logits.subarray((b * L + j) * V, (b * L + j + 1) * V),
        sum: (b, from, to) => {
          if (from < first(b)) throw new Error('internal: a logit sum needs every position');
          return sum(logits, (b * L + from) * V, (b * L + to) * V);
        },
      };
    }
    return { view, present: wantPresent ? this.io.past.map((p) => out[p.output].data as KvData) : [] };
  }

  async prefill(ids: number[], hints?: PrefillHints): Promise<Prefix> {
    const prefix: PrefixImpl = { ids: [...ids], owner: this.token, past: null, lastLogits: null, logitSum: ids.length === 0 ? 0 : null };
    if (ids.length > 0 && this.hasPast) {
      if (hints?.logitSum) {
        // COPA's mean-logit mode: every position's logits, summed as they come, in chunks run on top of the
        // previous chunks' past key values so one run's logits stay under maxLogitsBytes.
        const step = Math.max(1, Math.floor(this.maxLogitsBytes / (this.vocab * 4)));
        let past: KvData[] | null = null;
        let total = 0;
        for (let at = 0; at < ids.length; at += step) {
          const chunk = ids.slice(at, at + step);
          const { view, present } = await this.run([chunk], past, at, true, 'all');
          total += view.sum(0, 0, chunk.length);
          past = present;
          if (at + chunk.length === ids.length) prefix.lastLogits = view.at(0, chunk.length - 1).slice();
        }
        prefix.past = past;
        prefix.logitSum = total;
      } else {
        // only the last position's logits; the prefix's logit sum is computed on demand (without the hint)
        const { view, present } = await this.run([ids], null, 0, true, 'last');
        prefix.past = present;
        prefix.lastLogits = view.at(0, ids.length - 1).slice();
      }
    }
    return prefix;
  }

  /** The sum of the prefix's raw logits over all its positions (runs the prefix once more, the first time only). */
  private async prefixLogitSum(prefix: PrefixImpl): Promise<void> {
    if (prefix.logitSum !== null || !this.hasPast) return;
    const { view } = await this.run([prefix.ids], null, 0, false, 'all');
    prefix.logitSum = view.sum(0, 0, prefix.ids.length);
  }

  private check(prefix: Prefix): PrefixImpl {
    const p = prefix as PrefixImpl;
    if (p.owner !== this.token) throw new Error('this prefix was made by another EditedLM (its past key values belong to other weights)');
    return p;
  }

  /**
   * Runs every sequence on top of the prefix (batched, longest first) and calls visit(i, at, sumRange) where
   * at(p) gives the raw logits at sequence position p (p = -1: the prefix's last position) and sumRange sums
   * the raw logits of sequence positions [from, to) (mode 'all' only).
   */
  private async forEach(prefix: PrefixImpl, seqs: number[][], mode: LogitsMode, visit: Visit, firstNeeded?: (k: number) => number): Promise<void> {
    const P = prefix.ids.length;
    const order = seqs.map((_, i) => i).sort((a, b) => seqs[b].length - seqs[a].length);
    const full = !this.hasPast;
    const start = full ? P : 0;
    const fromPrefix = (p: number): Float32Array => {
      if (p === -1 && prefix.lastLogits) return prefix.lastLogits;
      throw new Error('no position predicts the first token: prefix and query are both empty');
    };
    let i = 0;
    while (i < order.length) {
      if (!full && seqs[order[i]].length === 0) {
        // nothing to run: only the prefix's last logits are asked for
        visit(order[i++], fromPrefix, () => 0);
        continue;
      }
      const L = start + seqs[order[i]].length;
      const perRow = Math.max(1, (mode === 'all' ? L : 1) * this.vocab * 4);
      const kvBytes = this.io.kvType === 'float16' ? 2 : 4;
      const kvPerRow = full ? 0 : this.io.past.reduce((a, sp) => a + sp.kvHeads * sp.headDim * kvBytes, 0) * (P + L);
      const byKv = kvPerRow > 0 ? Math.floor(this.maxKvBytes / kvPerRow) : Infinity;
      const B = Math.max(1, Math.min(this.maxBatch, Math.floor(this.maxLogitsBytes / perRow), byKv, order.length - i));
      const chunk = order.slice(i, i + B);
      i += B;
      const batch = chunk.filter((k) => full || seqs[k].length > 0);
      for (const k of chunk) if (!batch.includes(k)) visit(k, fromPrefix, () => 0);
      const rows = batch.map((k) => (full ? [...prefix.ids, ...seqs[k]] : seqs[k]));
      if (rows.some((r) => r.length === 0)) throw new Error('no position predicts the next token: prefix and query are both empty');
      // nopast + mean logits: the row's prefix positions are needed too, so 'all' covers them
      const firstPos = firstNeeded && batch.map((k) => Math.max(0, start + firstNeeded(k)));
      const { view } = await this.run(rows, full ? null : prefix.past, full ? 0 : P, false, mode, firstPos);
      if (full && P > 0 && mode === 'all' && !firstPos && prefix.logitSum === null) {
        prefix.logitSum = view.sum(0, 0, P);
        prefix.lastLogits = view.at(0, P - 1).slice();
      }
      batch.forEach((k, b) => {
        visit(
          k,
          (p) => {
            const q = start + p;
            return q >= 0 ? view.at(b, q) : fromPrefix(p);
          },
          (from, to) => view.sum(b, start + from, start + to),
        );
      });
    }
  }

  async nextTokenLogprobs(prefix: Prefix, queries: number[][]): Promise<Float32Array[]> {
    const p = this.check(prefix);
    const out = new Array<Float32Array>(queries.length);
    await this.forEach(p, queries, 'last', (i, at) => {
      out[i] = logSoftmax(at(queries[i].length - 1));
    });
    return out;
  }

  async continuationScores(
    prefix: Prefix,
    items: { context: number[]; continuation: number[] }[],
    hints?: ContinuationHints,
  ): Promise<{ logprobs: number[]; meanLogit: number }[]> {
    const p = this.check(prefix);
    for (const it of items) if (it.continuation.length === 0) throw new EngineInputError('empty continuation', 'continuation');
    const needMean = hints?.meanLogit !== false;
    if (needMean) await this.prefixLogitSum(p);
    const seqs = items.map((it) => [...it.context, ...it.continuation]);
    const out = new Array<{ logprobs: number[]; meanLogit: number }>(items.length);
    const pending: { i: number; rowSum: number }[] = [];
    await this.forEach(p, seqs, 'all', (i, at, sumRange) => {
      const c = items[i].context.length;
      const cont = items[i].continuation;
      const logprobs = cont.map((tok, j) => {
        const row = at(c + j - 1);
        return row[tok] - logSumExp(row);
      });
      out[i] = { logprobs, meanLogit: needMean ? 0 : NaN };
      if (needMean) pending.push({ i, rowSum: sumRange(0, seqs[i].length) });
    }, needMean ? undefined : (k) => items[k].context.length - 1);
    const P = p.ids.length;
    for (const { i, rowSum } of pending) {
      out[i].meanLogit = ((p.logitSum ?? 0) + rowSum) / ((P + seqs[i].length) * this.vocab);
    }
    return out;
  }
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

function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - max);
  return max + Math.log(s);
}

function logSoftmax(row: Float32Array): Float32Array {
  const lse = logSumExp(row);
  const out = new Float32Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
  return out;
}

