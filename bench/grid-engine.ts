/**
 * The grid benchmark's engine: a checkout's engine (this one's, or --engine's) with its model layer
 * instrumented (grid-stats.ts), each outcome carrying its cell's figures. bench/grid.ts calls it directly;
 * --sweep runs it on the engine thread a worker uses (engine/thread.ts), so the figures come back across the
 * thread with the outcome.
 */
import { join } from 'node:path';
import type { LoadModelFn } from '../engine/evaluate.ts';
import type { CellOutcome, Engine, EngineOptions } from '../engine/types.ts';
import { type CellStats, StatsRecorder } from './grid-stats.ts';

export interface GridEngineOptions extends EngineOptions {
  /** The checkout whose engine runs. */
  root: string;
  /** Layer slices off (the full path for every cell). */
  noSlices: boolean;
  /** Queries per model call; undefined: the engine's own default. */
  batchSize?: number;
}

export type OutcomeWithStats = CellOutcome & { stats: CellStats };

interface EngineModules {
  createEngine(o: EngineOptions & { loadModel?: LoadModelFn; batchSize?: number }): Engine;
  ENGINE_VERSION: string;
}

/** The engine version of a checkout. */
export async function engineVersionOf(root: string): Promise<string> {
  return ((await import(join(root, 'engine/index.ts'))) as EngineModules).ENGINE_VERSION;
}

export async function createEngine(opts: GridEngineOptions): Promise<Engine> {
  const { root, noSlices, ...options } = opts;
  const mods = (await import(join(root, 'engine/index.ts'))) as EngineModules;
  const { loadModel } = (await import(join(root, 'engine/model/index.ts'))) as { loadModel: LoadModelFn };
  const recorder = new StatsRecorder();
  const load: LoadModelFn = noSlices ? (d, o) => loadModel(d, { ...o, layerSlices: false } as Parameters<LoadModelFn>[1]) : loadModel;
  const engine = mods.createEngine({ ...options, loadModel: recorder.wrap(load) });
  // called through, not bound: an older checkout's engine may lack a method the grid never calls
  return {
    describeModel: (model) => engine.describeModel(model),
    describeDataset: (dataset) => engine.describeDataset(dataset),
    checkCells: (check) => engine.checkCells(check),
    close: () => engine.close(),
    async evaluate(request, options): Promise<OutcomeWithStats> {
      const from = recorder.cells.length;
      const outcome = await engine.evaluate(request, options);
      return { ...outcome, stats: recorder.since(from) };
    },
  };
}
