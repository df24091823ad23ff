/**
 * A small fake CausalLM for unit tests of the layer above the model: a word-piece tokenizer and
 * log-probabilities that are a deterministic function of the whole token sequence (so the
 * prefix-reuse and full-prompt paths agree by construction), with every call recorded.
 */
import type { CausalLMLike, EditedLMLike, LoadModelFn, WeightEdit } from '../../engine/evaluate.ts';
import type { ModelInfo, ModelSpec } from '../../engine/types.ts';
import type { ModelLocation } from '../../engine/hub.ts';

export const VOCAB = 4096;

export class FakeTokenizer {
  private ids = new Map<string, number>();
  private pieces: string[] = [];
  bosId: number | null;
  constructor(bosId: number | null = null) {
    this.bosId = bosId;
    this.id('<bos>');
    // Fixed ids for the verbalizers so tests can refer to them.
    for (const w of [' pos', ' neg', ' Yes', ' No', ' Maybe', ' true', ' false', ' world', ' sports', ' business', ' science']) this.id(w);
  }
  id(piece: string): number {
    let id = this.ids.get(piece);
    if (id === undefined) {
      id = this.pieces.length;
      if (id >= VOCAB) throw new Error('fake vocabulary full');
      this.ids.set(piece, id);
      this.pieces.push(piece);
    }
    return id;
  }
  /** Words (with their leading space) up to 8 letters are one token; longer words are cut into 4-letter pieces. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const m of text.matchAll(/ ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]|\s/g)) {
      const piece = m[0];
      const word = piece.trimStart();
      if (word.length > 8 && /^[A-Za-z]+$/.test(word)) {
        const lead = piece.length - word.length;
        out.push(this.id(piece.slice(0, lead + 4)));
        for (let i = 4; i < word.length; i += 4) out.push(this.id(word.slice(i, i + 4)));
      } else out.push(this.id(piece));
    }
    return out;
  }
  decode(ids: number[]): string {
    return ids.map((i) => this.pieces[i]).join('');
  }
}

function hashSeq(ids: readonly number[], salt = 0): number {
  let h = (2166136261 ^ salt) >>> 0;
  for (const x of ids) h = Math.imul(h ^ (x + 1), 16777619) >>> 0;
  return h;
}

/** log-softmax of pseudo-random logits seeded by the sequence (and the edit). */
export function fakeLogprobs(seq: readonly number[], editSalt: number): Float32Array {
  const h = hashSeq(seq, editSalt);
  const logits = new Float64Array(VOCAB);
  let max = -Infinity;
  for (let v = 0; v < VOCAB; v++) {
    logits[v] = 3 * Math.sin(v * 0.7131 + (h % 100000) * 0.001);
    if (logits[v] > max) max = logits[v];
  }
  let sum = 0;
  for (let v = 0; v < VOCAB; v++) sum += Math.exp(logits[v] - max);
  const lse = max + Math.log(sum);
  const out = new Float32Array(VOCAB);
  for (let v = 0; v < VOCAB; v++) out[v] = logits[v] - lse;
  return out;
}

export interface FakeCalls {
  loads: string[];
  edits: (WeightEdit | null)[];
  prefills: number[][];
  batches: number[][][];
  released: number;
  disposed: string[];
  /** Hints passed to prefill / continuationScores. */
  hints: { prefill?: unknown; continuation?: unknown }[];
}

export interface FakeOptions {
  bosId?: number | null;
  info?: Partial<ModelInfo>;
  /** Milliseconds each model call waits (to test progress and abort). */
  delayMs?: number;
  /** Called on every encode (to slow tokenization down in tests). */
  onEncode?: () => void;
  /** Use this tokenizer instead of the word-piece one (e.g. a fixture model's real byte-level BPE). */
  tokenizer?: { encode(text: string): number[]; decode(ids: number[]): string; bosId: number | null };
  /** Milliseconds each load takes. */
  loadDelayMs?: number;
}

function editSalt(edit: WeightEdit | null): number {
  return edit === null ? 0 : hashSeq([...edit.module].map((c) => c.charCodeAt(0)).concat([edit.layer + 7, Math.round(edit.ratio * 1000)]));
}

export function fakeLoader(opts: FakeOptions = {}): {
  load: LoadModelFn;
  /** A fake model has no files: its path is its folder. */
  locate: (model: ModelSpec) => ModelLocation;
  calls: FakeCalls;
  tokenizers: Map<string, FakeTokenizer>;
} {
  const calls: FakeCalls = { loads: [], edits: [], prefills: [], batches: [], released: 0, disposed: [], hints: [] };
  const tokenizers = new Map<string, FakeTokenizer>();
  const load: LoadModelFn = async (dir) => {
    calls.loads.push(dir);
    if (opts.loadDelayMs) await new Promise((r) => setTimeout(r, opts.loadDelayMs));
    const tok = new FakeTokenizer(opts.bosId ?? null);
    tokenizers.set(dir, tok);
    const base = opts.tokenizer ?? { encode: tok.encode.bind(tok), decode: tok.decode.bind(tok), bosId: tok.bosId };
    const encode = base.encode.bind(base);
    const tokenizer = {
      bosId: base.bosId,
      encode: (t: string) => {
        opts.onEncode?.();
        return encode(t);
      },
      decode: base.decode.bind(base),
    };
    const info: ModelInfo = {
      family: 'llama',
      numLayers: 4,
      modules: ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_up', 'fc_out', 'mlp', 'attn', 'all'],
      fingerprint: `fake:${dir}`,
      hasPastKeyValues: true,
      weightDtype: 'float32',
      ...opts.info,
    };
    const wait = () => (opts.delayMs ? new Promise((r) => setTimeout(r, opts.delayMs)) : Promise.resolve());
    const lm: CausalLMLike = {
      info,
      tokenizer,
      async withEdit(edit) {
        calls.edits.push(edit);
        const salt = editSalt(edit);
        let forward = 0;
        const elm: EditedLMLike & { release(): void } = {
          get forwardTokens() {
            return forward;
          },
          svdSeconds: 0,
          cacheHits: 0,
          cacheMisses: edit ? 1 : 0,
          async prefill(ids, hints) {
            calls.prefills.push([...ids]);
            calls.hints.push({ prefill: hints });
            forward += ids.length;
            await wait();
            return { ids: [...ids] };
          },
          async nextTokenLogprobs(prefix: { ids: number[] }, queries) {
            calls.batches.push(queries.map((q) => [...q]));
            await wait();
            return queries.map((q) => {
              forward += q.length;
              return fakeLogprobs(prefix.ids.concat(q), salt);
            });
          },
          async continuationScores(prefix: { ids: number[] }, items, hints) {
            calls.hints.push({ continuation: hints });
            calls.batches.push(items.map((it) => it.context.concat(it.continuation)));
            await wait();
            return items.map((it) => {
              forward += it.context.length + it.continuation.length;
              const ctx = prefix.ids.concat(it.context);
              const logprobs = it.continuation.map((t, i) => fakeLogprobs(ctx.concat(it.continuation.slice(0, i)), salt)[t]);
              const all = ctx.concat(it.continuation);
              return { logprobs, meanLogit: (hashSeq(all, salt) % 1000) / 1000 };
            });
          },
          release() {
            calls.released++;
          },
        };
        return elm;
      },
      async dispose() {
        calls.disposed.push(dir);
      },
    };
    return lm;
  };
  return { load, locate: (model) => ({ dir: model.path, file: 'model.onnx' }), calls, tokenizers };
}
