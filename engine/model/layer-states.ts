/**
 * The unpruned model's hidden states entering each layer, captured for the prompts cells run, so a cell that
 * prunes layer L runs only layers L..N-1 on top of them. One capture run of the unpruned model (the capture
 * graph: the model with the hidden state entering every layer as extra outputs) serves every later cell of
 * the same prompts, whatever its layer: the prefix once (its hidden states and past key values), each row
 * once (its hidden states, computed on top of the unpruned prefix's past).
 */
import type * as ort from 'onnxruntime-node';
import { type RunResult, runRows } from './batch.ts';
import { type IoSpec, kvBytesPerPosition } from './io.ts';
import { planRuns } from './plan.ts';
import type { RunLimits } from './runs.ts';
import type { SessionLease } from './session.ts';
import { type Block, idsKey, type Numbers, type PromptStates, type RowStates, type StateStore } from './states.ts';

export class LayerStates {
  /** The hidden states' element type, learned from the capture graph. */
  private type: 'float32' | 'float16' | null = null;

  constructor(
    readonly store: StateStore,
    /** The hidden state entering each layer (weights.ts order), null where a slice cannot start. */
    readonly cuts: (string | null)[],
    readonly io: IoSpec,
    readonly hiddenSize: number,
    /** Bounds of one run; a capture run's captured states count as its logits. */
    readonly limits: RunLimits,
    private readonly acquireCapture: () => Promise<SessionLease>,
  ) {}

  /** Whether a cell whose lowest edited layer is `layer` can run as a slice. */
  sliceable(layer: number): boolean {
    return layer >= 1 && layer < this.cuts.length && this.cuts[layer] !== null;
  }

  /** One cell's use of the states; release() it with the cell. */
  open(): CellStates {
    return new CellStates(this);
  }

  get hiddenType(): 'float32' | 'float16' | null {
    return this.type;
  }

  /** The capture session (learning the hidden states' type from it). */
  async capture(): Promise<SessionLease> {
    const lease = await this.acquireCapture();
    if (!this.type) {
      const cut = this.cuts.find((c) => c !== null);
      const meta = lease.session.outputMetadata.find((m) => m.name === cut);
      const t = meta && meta.isTensor ? meta.type : null;
      if (t !== 'float32' && t !== 'float16') {
        lease.release();
        throw new Error(`internal: hidden state ${cut} has type ${t}`);
      }
      this.type = t;
    }
    return lease;
  }
}

/** The states one cell reads: prompt sets held while the cell lives, the capture session while it is needed. */
export class CellStates {
  /** Tokens run by this cell's own capture runs (a slice whose states were missing). */
  capturedTokens = 0;
  private lease: Promise<SessionLease> | null = null;
  private readonly held = new Map<string, PromptStates>();

  constructor(private readonly states: LayerStates) {}

  /** The hidden states' element type (opens the capture session the first time a model needs it). */
  async hiddenType(): Promise<'float32' | 'float16'> {
    if (!this.states.hiddenType) await this.session();
    return this.states.hiddenType!;
  }

  /** The prompt set of a prefix run on `pastIds` (empty without past key values), held while the cell lives. */
  promptSet(pastIds: number[]): PromptStates {
    const key = idsKey(pastIds);
    let set = this.held.get(key);
    if (!set) {
      set = this.states.store.acquire(pastIds);
      this.held.set(key, set);
    }
    if (!set.prefix && pastIds.length === 0) set.prefix = { length: 0, hidden: [], past: [] };
    return set;
  }

  /** The prompt set of `pastIds` with its prefix captured (a capture run the first time). */
  async prefix(pastIds: number[]): Promise<PromptStates> {
    const set = this.promptSet(pastIds);
    if (!set.prefix) {
      const spec = { seqs: [pastIds], past: null, P: 0, wantPresent: true, mode: 'last' as const, capture: this.cutNames() };
      this.capturedTokens += pastIds.length;
      this.keepPrefix(set, pastIds.length, await runRows(await this.session(), this.states.io, spec));
    }
    return set;
  }

  /** Keeps a capture run of the prefix alone (its hidden states and present key values). */
  keepPrefix(set: PromptStates, length: number, r: RunResult): void {
    const { cuts, io, store } = this.states;
    set.prefix = {
      length,
      hidden: cuts.map((c) => (c ? store.add(set, r.captured.get(c)!) : null)),
      past: r.present.map((p, i) => {
        if (!p) throw new Error(`internal: the capture graph returned no ${io.past[i].output}`);
        return store.add(set, p);
      }),
    };
  }

  /** Rows of a batch not captured yet on top of the set's prefix, once each (empty rows never are). */
  missing(set: PromptStates, rows: number[][]): number[][] {
    const out = new Map<string, number[]>();
    for (const r of rows) {
      const key = idsKey(r);
      if (r.length > 0 && !set.rows.has(key)) out.set(key, r);
    }
    return [...out.values()];
  }

  /** Each row's states on top of the set's prefix, capturing those not seen before (empty rows excluded). */
  async rows(set: PromptStates, rows: number[][]): Promise<RowStates[]> {
    const found = () => rows.map((r) => set.rows.get(idsKey(r)) ?? { blocks: [], offset: 0, length: 0 });
    const todo = this.missing(set, rows);
    if (todo.length === 0) return found(); // the usual case after the first cell: no spilled past is read back
    const { hiddenSize, limits, io, store } = this.states;
    const P = set.prefix!.length;
    const past = P > 0 ? set.prefix!.past.map((b) => store.read(b)) : null;
    const runs = planRuns({
      lengths: todo.map((r) => r.length),
      logitPositions: todo.map(() => 1),
      packed: io.mask !== null && P > 0,
      past: P,
      kvBytesPerPosition: P > 0 ? kvBytesPerPosition(io) : 0,
      // the captured states of every position, against the logits bound
      logitsBytesPerPosition: hiddenSize * 4 * this.cutNames().length,
      selectable: false,
      maxRows: limits.maxBatch,
      maxKvBytes: limits.maxKvBytes,
      maxLogitsBytes: limits.maxLogitsBytes,
    });
    for (const run of runs) {
      const seqs = run.seqs.map((i) => todo[i]);
      const spec = { seqs, pack: run.pack, past, P, wantPresent: false, mode: 'last' as const, capture: this.cutNames() };
      this.capturedTokens += seqs.reduce((a, r) => a + r.length, 0);
      this.keepRows(set, seqs, await runRows(await this.session(), io, spec));
    }
    return found();
  }

  /** Keeps the rows of a capture run not kept yet (one block per layer holding their real positions). */
  keepRows(set: PromptStates, rows: number[][], r: RunResult): void {
    const { cuts, store, hiddenSize: h } = this.states;
    const keys = rows.map((row) => idsKey(row));
    const kept = new Map<string, number>(); // key -> row of the run
    keys.forEach((k, b) => {
      if (rows[b].length > 0 && !set.rows.has(k) && !kept.has(k)) kept.set(k, b);
    });
    if (kept.size === 0) return;
    const total = [...kept.values()].reduce((a, b) => a + rows[b].length, 0);
    const blocks = cuts.map((c) => {
      if (!c) return null;
      const all = r.captured.get(c)!;
      const packed = all instanceof Uint16Array ? new Uint16Array(total * h) : new Float32Array(total * h);
      let at = 0;
      for (const b of kept.values()) {
        const { row, offset } = r.places[b];
        packed.set(all.subarray((row * r.width + offset) * h, (row * r.width + offset + rows[b].length) * h) as never, at * h);
        at += rows[b].length;
      }
      return store.add(set, packed);
    });
    let offset = 0;
    for (const [key, b] of kept) {
      set.rows.set(key, { blocks, offset, length: rows[b].length });
      offset += rows[b].length;
    }
  }

  /** A row's hidden state entering `layer` ([length, hidden]). */
  rowHidden(states: RowStates, layer: number): Numbers {
    const block = states.blocks[layer];
    if (!block) throw new Error(`internal: no captured states at layer ${layer}`);
    const h = this.states.hiddenSize;
    return this.states.store.read(block).subarray(states.offset * h, (states.offset + states.length) * h);
  }

  read(block: Block): Numbers {
    return this.states.store.read(block);
  }

  release(): void {
    this.lease?.then((l) => l.release()).catch(() => undefined);
    this.lease = null;
    for (const set of this.held.values()) this.states.store.release(set);
    this.held.clear();
  }

  cutNames(): string[] {
    return this.states.cuts.filter((c): c is string => c !== null);
  }

  private async session(): Promise<ort.InferenceSession> {
    if (!this.lease) {
      this.lease = this.states.capture();
      this.lease.catch(() => (this.lease = null)); // a failed start is tried again by the next run
    }
    return (await this.lease).session;
  }
}
