/**
 * What the activities of one worker process share: the results database, the metrics recorders and
 * this worker's name; on a worker that runs cells, also the engine (models kept loaded,
 * decomposition cache). Built once per worker (worker/create.ts) and injected, so tests can hand in
 * their own.
 */
import type { Engine } from '../engine/types.ts';
import type { Db } from '../db/client.ts';
import type { metrics as realMetrics } from './metrics.ts';

export type Metrics = typeof realMetrics;

export interface ActivityContext {
  db: Db;
  metrics: Metrics;
  /** Stored with each result, e.g. "gpu-3:41234". */
  workerName: string;
  /** Seconds between heartbeats sent while a cell runs even if the engine reports no progress (model load, SVD). */
  heartbeatEverySeconds?: number;
}

/** The context of the activities that read model and dataset files (the cells task queue). */
export interface CellActivityContext extends ActivityContext {
  engine: Engine;
  engineVersion: string;
}
