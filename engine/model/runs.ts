/**
 * Runs of one edited (or pristine) model: the demonstration prefix once, its past key values reused by
 * batches of queries on top of it (right-padded, attention_mask 0 on padding, position_ids from P), and the
 * logits of only the positions a call needs. A layer slice (a cell whose edits start at layer L) runs layers
 * L..N-1 only, from the unpruned model's hidden states entering L (layer-states.ts); the lower layers' past
 * key values it is fed are the unpruned prefix's.
 */
import type * as ort from 'onnxruntime-node';
import { EngineInputError } from '../types.ts';
import { type HiddenFeed, type LogitsMode, type RunResult, runRows } from './batch.ts';
import { planRuns, type Run } from './plan.ts';
import { type IoSpec, kvBytesPerPosition } from './io.ts';
import type { CellStates } from './layer-states.ts';
import type { ContinuationHints, EditedLM, PrefillHints, Prefix } from './index.ts';
import type { EditStats } from './edits.ts';
import type { Numbers, PromptStates } from './states.ts';

/** Past key values as the runtime returns them: float32, or float16 bit patterns. */
type KvData = Numbers;

interface PrefixImpl extends Prefix {
  ids: number[];
  owner: object;
  /** Past key values of the prefix, batch 1 ([1, kvHeads, P, headDim] each), or null (no past support / empty). */
  past: KvData[] | null;
  /** A slice's captured states of the prompts run on this prefix. */
  states: PromptStates | null;
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

/**
 * Runs with captured states: a slice (`from`: its session runs layers from.layer..N-1, fed the hidden state
 * entering that layer through its graph input `from.input`), or the unpruned model keeping the hidden states
 * of what it runs for the slices to come (`from` null; its session is the capture graph's).
 */
export interface Slicing {
  states: CellStates;
  from: { layer: number; input: string; hiddenSize: number; half: boolean } | null;
}

interface RunExtras {
  /** Mode 'all': per sequence, the first position whose logits are needed (default 0: all of them). */
  firstPos?: number[];
  /** A slice's hidden state entering its first layer, per sequence. */
  hidden?: (q: number) => Numbers;
  /** The sequences of each row, side by side (default: one per row). */
  pack?: number[][];
  /** Fetch the hidden states entering every layer (the capture graph). */
  capture?: boolean;
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
    private readonly slicing: Slicing | null = null,
  ) {
    ({ maxLogitsBytes: this.maxLogitsBytes, maxBatch: this.maxBatch, maxKvBytes: this.maxKvBytes } = limits);
    this.svdSeconds = stats.svdSeconds;
    this.cacheHits = stats.hits;
    this.cacheMisses = stats.misses;
  }

  get firstLayer(): number {
    return this.slicing?.from?.layer ?? 0;
  }

  get capturedTokens(): number {
    return this.slicing?.states.capturedTokens ?? 0;
  }

  release(): void {
    this.weightFeeds = {};
    this.slicing?.states.release();
    this.onRelease();
  }

  private get hasPast(): boolean {
    return this.io.past.length > 0;
  }

  /**
   * One run: rows right-padded to the longest, on top of `past` (batch 1, broadcast to the batch inside the
   * graph) of length P.
   */
  private async run(rows: number[][], past: KvData[] | null, P: number, wantPresent: boolean, mode: LogitsMode, extras: RunExtras = {}): Promise<RunResult> {
    const from = this.slicing?.from;
    let hidden: HiddenFeed | undefined;
    if (from) {
      if (!extras.hidden) throw new Error('internal: a slice runs from hidden states');
      hidden = { input: from.input, size: from.hiddenSize, half: from.half, seq: extras.hidden };
    }
    const capture = extras.capture ? this.slicing!.states.cutNames() : undefined;
    const out = await runRows(this.session, this.io, { seqs: rows, pack: extras.pack, past, P, wantPresent, mode, firstPos: extras.firstPos, hidden, capture }, this.weightFeeds);
    const tokens = rows.reduce((a, r) => a + r.length, 0);
    this.forwardTokens += tokens;
    this.paddingTokens += out.width * (extras.pack ?? rows).length - tokens;
    this.vocab = out.vocab;
    return out;
  }

  /** The prompt set of a prefix: captured for a slice, kept as it runs by the unpruned model. */
  private async promptSet(ids: number[]): Promise<PromptStates | null> {
    if (!this.slicing) return null;
    const pastIds = this.hasPast ? ids : [];
    return this.slicing.from ? this.slicing.states.prefix(pastIds) : this.slicing.states.promptSet(pastIds);
  }

  /** A slice's hidden states of prefix positions [from, to) entering its first layer. */
  private prefixHidden(prefix: PrefixImpl, from: number, to: number): ((b: number) => Numbers) | undefined {
    const first = this.slicing?.from;
    if (!first) return undefined;
    const block = prefix.states!.prefix!.hidden[first.layer];
    if (!block) throw new Error(`internal: no captured prefix states at layer ${first.layer}`);
    const states = this.slicing!.states;
    return () => states.read(block).subarray(from * first.hiddenSize, to * first.hiddenSize);
  }

  /**
   * Present key values as a full set: a slice returns those of its own layers; the layers below it keep the
   * unpruned prefix's (its first `length` positions), which a slice may still be fed (for their shapes).
   */
  private completePast(present: (KvData | null)[], prefix: PrefixImpl, length: number): KvData[] {
    return present.map((p, i) => {
      if (p) return p;
      const spec = this.io.past[i];
      const pristine = this.slicing!.states.read(prefix.states!.prefix!.past[i]);
      return firstPositions(pristine, spec.kvHeads, prefix.ids.length, spec.headDim, length);
    });
  }

  async prefill(ids: number[], hints?: PrefillHints): Promise<Prefix> {
    const prefix: PrefixImpl = { ids: [...ids], owner: this.token, past: null, lastLogits: null, logitSum: ids.length === 0 ? 0 : null, states: null };
    prefix.states = await this.promptSet(prefix.ids);
    if (ids.length > 0 && this.hasPast) {
      if (hints?.logitSum) {
        // COPA's mean-logit mode: every position's logits, summed as they come, in chunks run on top of the
        // previous chunks' past key values so one run's logits stay under maxLogitsBytes.
        const step = Math.max(1, Math.floor(this.maxLogitsBytes / (this.vocab * 4)));
        let past: KvData[] | null = null;
        let total = 0;
        for (let at = 0; at < ids.length; at += step) {
          const chunk = ids.slice(at, at + step);
          const { view, present } = await this.run([chunk], past, at, true, 'all', { hidden: this.prefixHidden(prefix, at, at + chunk.length) });
          total += view.sum(0, 0, chunk.length);
          past = this.slicing?.from ? this.completePast(present, prefix, at + chunk.length) : (present as KvData[]);
          if (at + chunk.length === ids.length) prefix.lastLogits = view.at(0, chunk.length - 1).slice();
        }
        prefix.past = past;
        prefix.logitSum = total;
      } else {
        // only the last position's logits; the prefix's logit sum is computed on demand (without the hint)
        const capture = this.slicing !== null && !this.slicing.from && !prefix.states!.prefix;
        const r = await this.run([ids], null, 0, true, 'last', { hidden: this.prefixHidden(prefix, 0, ids.length), capture });
        if (capture) this.slicing!.states.keepPrefix(prefix.states!, ids.length, r);
        prefix.past = this.slicing?.from ? this.completePast(r.present, prefix, ids.length) : (r.present as KvData[]);
        prefix.lastLogits = r.view.at(0, ids.length - 1).slice();
      }
    }
    return prefix;
  }

  /** The sum of the prefix's raw logits over all its positions (runs the prefix once more, the first time only). */
  private async prefixLogitSum(prefix: PrefixImpl): Promise<void> {
    if (prefix.logitSum !== null || !this.hasPast) return;
    const { view } = await this.run([prefix.ids], null, 0, false, 'all', { hidden: this.prefixHidden(prefix, 0, prefix.ids.length) });
    prefix.logitSum = view.sum(0, 0, prefix.ids.length);
  }

  private check(prefix: Prefix): PrefixImpl {
    const p = prefix as PrefixImpl;
    if (p.owner !== this.token) throw new Error('this prefix was made by another EditedLM (its past key values belong to other weights)');
    return p;
  }

  /** A slice's hidden states of rows run on the prefix, entering its first layer (captured the first time). */
  private async rowsHidden(prefix: PrefixImpl, rows: number[][]): Promise<((b: number) => Numbers) | undefined> {
    const first = this.slicing?.from;
    if (!first) return undefined;
    const states = this.slicing!.states;
    const found = await states.rows(prefix.states!, rows);
    return (b) => states.rowHidden(found[b], first.layer);
  }

  /** Whether the unpruned model keeps the states of these rows as it runs them (new rows on a captured prefix). */
  private capturesRows(prefix: PrefixImpl, rows: number[][]): boolean {
    const set = prefix.states;
    return this.slicing !== null && !this.slicing.from && set !== null && set.prefix !== null && this.slicing.states.missing(set, rows).length > 0;
  }

  /**
   * Runs every sequence on top of the prefix (batched, longest first) and calls visit(i, at, sumRange) where
   * at(p) gives the raw logits at sequence position p (p = -1: the prefix's last position) and sumRange sums
   * the raw logits of sequence positions [from, to) (mode 'all' only).
   */
  private async forEach(prefix: PrefixImpl, seqs: number[][], mode: LogitsMode, visit: Visit, firstNeeded?: (k: number) => number): Promise<void> {
    const P = prefix.ids.length;
    const full = !this.hasPast;
    const start = full ? P : 0;
    const fromPrefix = (p: number): Float32Array => {
      if (p === -1 && prefix.lastLogits) return prefix.lastLogits;
      throw new Error('no position predicts the first token: prefix and query are both empty');
    };
    // an empty query on a past runs nothing: only the prefix's last logits are asked for
    const todo = seqs.map((_, k) => k).filter((k) => full || seqs[k].length > 0);
    for (const k of seqs.keys()) if (!full && seqs[k].length === 0) visit(k, fromPrefix, () => 0);
    const rows = todo.map((k) => (full ? [...prefix.ids, ...seqs[k]] : seqs[k]));
    if (rows.some((r) => r.length === 0)) throw new Error('no position predicts the next token: prefix and query are both empty');
    // nopast + mean logits: the row's prefix positions are needed too, so 'all' covers them
    const firstPos = firstNeeded && todo.map((k) => Math.max(0, start + firstNeeded(k)));
    for (const run of this.plan(rows, full ? 0 : P, mode, firstPos)) {
      const runRows = run.seqs.map((i) => rows[i]);
      const runFirst = firstPos && run.seqs.map((i) => firstPos[i]);
      const capture = this.capturesRows(prefix, runRows);
      const extras = { firstPos: runFirst, hidden: await this.rowsHidden(prefix, runRows), capture, pack: run.pack };
      const r = await this.run(runRows, full ? null : prefix.past, full ? 0 : P, false, mode, extras);
      if (capture) this.slicing!.states.keepRows(prefix.states!, runRows, r);
      const view = r.view;
      if (full && P > 0 && mode === 'all' && !firstPos && prefix.logitSum === null) {
        prefix.logitSum = view.sum(0, 0, P);
        prefix.lastLogits = view.at(0, P - 1).slice();
      }
      run.seqs.forEach((i, q) => {
        visit(
          todo[i],
          (p) => (start + p >= 0 ? view.at(q, start + p) : fromPrefix(p)),
          (from, to) => view.sum(q, start + from, start + to),
        );
      });
    }
  }

  /** The runs of one call's rows on a past of P (plan.ts), within this model's bounds. */
  private plan(rows: number[][], P: number, mode: LogitsMode, firstPos?: number[]): Run[] {
    return planRuns({
      lengths: rows.map((r) => r.length),
      logitPositions: rows.map((r, i) => (mode === 'last' ? 1 : r.length - (firstPos?.[i] ?? 0))),
      packed: this.io.mask !== null && P > 0,
      past: P,
      kvBytesPerPosition: P > 0 ? kvBytesPerPosition(this.io) : 0,
      logitsBytesPerPosition: this.vocab * 4,
      selectable: this.io.selectable,
      maxRows: this.maxBatch,
      maxKvBytes: this.maxKvBytes,
      maxLogitsBytes: this.maxLogitsBytes,
    });
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

/** The first `length` positions of past key values [1, heads, P, d]. */
function firstPositions(data: KvData, heads: number, P: number, d: number, length: number): KvData {
  if (length === P) return data;
  const out = data instanceof Uint16Array ? new Uint16Array(heads * length * d) : new Float32Array(heads * length * d);
  for (let h = 0; h < heads; h++) out.set(data.subarray(h * P * d, (h * P + length) * d) as never, h * length * d);
  return out;
}
