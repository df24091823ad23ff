/**
 * What the activities of one worker process share: the results database, the metrics recorders,
 * this worker's name and machine, and how long database work waits out an outage; on a worker that
 * runs cells, also the engine (models kept loaded, decomposition cache), its execution provider,
 * the largest grid it prepares and the gate that bounds its evaluations at once. Built once per
 * worker (worker/create.ts) and injected, so tests can hand in their own.
 */
import type { Engine } from '../engine/types.ts';
import type { Db } from '../db/client.ts';
import type { ExecutionProvider } from '../sweepspec/schema.ts';
import type { metrics as realMetrics } from './metrics.ts';
import type { EvaluationGate } from './gate.ts';

export type Metrics = typeof realMetrics;

export interface ActivityContext {
  db: Db;
  metrics: Metrics;
  /** Stored with each result, e.g. "gpu-3:41234". */
  workerName: string;
  /** This worker's machine, stored with each result. */
  host: string;
  /** How long database work waits out an unreachable database before the attempt fails. */
  outageToleranceMs: number;
  /** Seconds between heartbeats sent while a cell runs even if the engine reports no progress (model load, SVD). */
  heartbeatEverySeconds?: number;
}

/** The context of the activities that read model and dataset files (the cells task queue). */
export interface CellActivityContext extends ActivityContext {
  engine: Engine;
  engineVersion: string;
  /** The execution provider this worker's engine runs (the one its cells queue is for). */
  executionProvider: ExecutionProvider;
  /** Largest grid a sweep this worker prepares may have. */
  maxCells: number;
  /** Bounds the evaluations running at once (the worker's concurrency); cells prefetched beyond it wait here. */
  gate: EvaluationGate;
}
