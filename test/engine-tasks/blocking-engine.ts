/** An engine whose evaluate holds its thread for `holdMs` (as ONNX Runtime's runs do), for engine/thread.ts's tests. */
import type { CellOutcome, Engine, EngineOptions } from '../../engine/types.ts';

export function createEngine(opts: EngineOptions & { holdMs: number }): Engine {
  const unused = () => Promise.reject(new Error('not in this engine'));
  return {
    async evaluate() {
      const until = Date.now() + opts.holdMs;
      while (Date.now() < until) {
        // held, as a run is
      }
      return { accuracy: 1, n: 0 } as CellOutcome;
    },
    describeModel: unused,
    describeDataset: unused,
    checkCells: unused,
    close: async () => {},
  };
}
