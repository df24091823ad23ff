/**
 * Per-cell figures for bench/grid.ts, measured at the model layer's interface (the engine's `loadModel`
 * hook), so any checkout's engine can be measured the same way: edit, prefill and query seconds and
 * tokens, and the layers the cell's runs went through.
 */
import type { CausalLMLike, EditedLMLike, LoadModelFn } from '../engine/evaluate.ts';

export interface CellStats {
  editSeconds: number;
  prefillSeconds: number;
  prefillTokens: number;
  querySeconds: number;
  queryTokens: number;
  /** Tokens run through the unpruned model to capture hidden states for layer slices (0 on engines without). */
  capturedTokens: number;
  /** The first layer the cell's runs went through (0 on engines without layer slices). */
  firstLayer: number;
  layers: number;
}

const empty = (): CellStats => ({ editSeconds: 0, prefillSeconds: 0, prefillTokens: 0, querySeconds: 0, queryTokens: 0, capturedTokens: 0, firstLayer: 0, layers: 0 });

/** Collects the figures of every edited model made through the wrapped loader, one record per withEdit. */
export class StatsRecorder {
  readonly cells: CellStats[] = [];

  /** The model loader `load`, instrumented. */
  wrap(load: LoadModelFn): LoadModelFn {
    return async (dir, opts) => {
      const lm = await load(dir, opts);
      return this.model(lm);
    };
  }

  /** Figures since record `from`, summed. */
  since(from: number): CellStats {
    const sum = empty();
    for (const c of this.cells.slice(from)) {
      for (const k of Object.keys(sum) as (keyof CellStats)[]) if (k !== 'firstLayer' && k !== 'layers') sum[k] += c[k];
      sum.firstLayer = c.firstLayer;
      sum.layers = c.layers;
    }
    return sum;
  }

  private model(lm: CausalLMLike): CausalLMLike {
    const withEdit = lm.withEdit.bind(lm);
    return Object.assign(Object.create(lm) as CausalLMLike, {
      withEdit: async (edit: Parameters<CausalLMLike['withEdit']>[0]) => {
        const t0 = performance.now();
        const e = await withEdit(edit);
        const stats = { ...empty(), editSeconds: (performance.now() - t0) / 1000, layers: lm.info.numLayers };
        this.cells.push(stats);
        return this.edited(e, stats);
      },
    });
  }

  private edited(e: EditedLMLike, stats: CellStats): EditedLMLike {
    const timed = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, phase: 'prefill' | 'query') => async (...a: A): Promise<R> => {
      const t0 = performance.now();
      const before = e.forwardTokens;
      try {
        return await fn(...a);
      } finally {
        stats[`${phase}Seconds`] += (performance.now() - t0) / 1000;
        stats[`${phase}Tokens`] += e.forwardTokens - before;
        const extra = e as { capturedTokens?: number; firstLayer?: number };
        stats.capturedTokens = extra.capturedTokens ?? 0;
        stats.firstLayer = extra.firstLayer ?? 0;
      }
    };
    return Object.assign(Object.create(e) as EditedLMLike, {
      prefill: timed(e.prefill.bind(e), 'prefill'),
      nextTokenLogprobs: timed(e.nextTokenLogprobs.bind(e), 'query'),
      continuationScores: timed(e.continuationScores.bind(e), 'query'),
      release: () => e.release?.(),
    });
  }
}
