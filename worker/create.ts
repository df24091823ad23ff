/**
 * Creates a sweep worker: the one module the worker entry (worker/main.ts), the CLI's demo and the
 * tests use. A worker process polls
 *  - the sweep task queue ("icl-sweep"): the `sweep` and `sweepCell` workflows and their light
 *    (database) activities (it registers the sweep's search attributes when the namespace lacks them), and
 *  - the cells queue of its execution provider ("icl-sweep-cells-cpu" / "-cuda"): prepareSweep and
 *    evaluateCell, everything that reads model and dataset files. It takes `concurrency + prefetch`
 *    of them at a time, and its evaluation gate lets `concurrency` evaluate at once: the others wait,
 *    ready, so the next cell's dispatch and lookup overlap the running cell's compute;
 * both over one connection, with one database pool and, when it runs cells, one engine (models kept
 * loaded, LRU). A workflows-only worker has no engine and reads no model or dataset file.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Engine, EngineOptions } from '../engine/types.ts';
import { createDb, migrate, type Db } from '../db/client.ts';
import { createCellActivities, createSweepActivities, type ActivityContext, type CellActivityContext } from '../activities/index.ts';
import type { Metrics } from '../activities/context.ts';
import { evaluationGate } from '../activities/gate.ts';
import { cellsTaskQueue } from '../workflows/queues.ts';
import type { EngineConfig, WorkerConfig } from './config.ts';
import { ensureSearchAttributes } from './search-attributes.ts';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflow bundle, built once per process (webpack takes seconds). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundle;
}

const quietBundlerLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn(message: string, meta?: unknown) {
    console.warn(message, meta ?? '');
  },
  error(message: string, meta?: unknown) {
    console.error(message, meta ?? '');
  },
};

export interface WorkerDeps {
  /** Use this engine (tests); default: createEngine from engine/index.ts with the config's options. */
  engine?: Engine;
  engineVersion?: string;
  /** Use this database (tests, the demo's embedded one); default: createDb(config.databaseUrl) + migrate. */
  db?: Db;
  metrics?: Metrics;
  connection?: NativeConnection;
}

export interface SweepWorker {
  readonly context: ActivityContext;
  /** The engine's version (cell keys carry it). */
  readonly engineVersion: string;
  /** The engine, on a worker that runs cells. */
  readonly engine?: Engine;
  readonly taskQueue: string;
  /** Resolves when every poller has stopped (after shutdown()); closes what this module opened. */
  run(): Promise<void>;
  /**
   * Stops polling; cells waiting for an evaluation slot are handed back at once, running cells get
   * config.shutdownGraceSeconds to finish, then are cancelled (both are retried elsewhere).
   */
  shutdown(): void;
}

async function defaultMetrics(): Promise<Metrics> {
  return (await import('../activities/metrics.ts')).metrics;
}

/**
 * The engine options of a worker: the config's, and every model load (a cell's, or the one describeModel
 * does in a sweep's prepare step) recorded as metrics.modelLoad(seconds).
 */
export function engineOptions(config: EngineConfig, metrics: Pick<Metrics, 'modelLoad'>): EngineOptions {
  return {
    executionProvider: config.executionProvider,
    cacheDir: config.cacheDir,
    maxModels: config.maxModels,
    decompositionCacheBytes: config.decompositionCacheBytes,
    decompositionDiskBytes: config.diskCacheBytes,
    statesDiskBytes: config.statesDiskBytes,
    ...(config.threads !== undefined ? { threads: config.threads } : {}),
    dataRoots: config.dataRoots,
    datasetLimits: config.datasetLimits,
    datasetCacheBytes: config.datasetCacheBytes,
    taskDirs: config.taskDirs,
    onModelLoad: (seconds) => metrics.modelLoad(seconds),
  };
}

export async function createSweepWorker(config: WorkerConfig, deps: WorkerDeps = {}): Promise<SweepWorker> {
  const owned: (() => Promise<void>)[] = [];
  try {
    const metrics = deps.metrics ?? (await defaultMetrics());
    const runsCells = config.roles.includes('cells');
    let engine = deps.engine;
    let engineVersion = deps.engineVersion;
    if (!engineVersion || (runsCells && !engine)) {
      const mod = await import('../engine/index.ts');
      engineVersion ??= mod.ENGINE_VERSION;
      if (runsCells && !engine) {
        const created = mod.createThreadedEngine(engineOptions(config, metrics));
        engine = created;
        owned.push(() => created.close());
      }
    }
    let db = deps.db;
    if (!db) {
      const created = await createDb(config.databaseUrl);
      owned.push(() => created.close());
      await migrate(created);
      db = created;
    }
    const context: ActivityContext = { db, metrics, workerName: config.workerName, host: os.hostname(), outageToleranceMs: config.outageToleranceSeconds * 1000 };

    let connection = deps.connection;
    if (!connection) {
      const created = await NativeConnection.connect({
        address: config.temporal.address,
        ...(config.temporal.tls !== undefined ? { tls: config.temporal.tls } : {}),
        ...(config.temporal.apiKey ? { apiKey: config.temporal.apiKey } : {}),
        ...(config.temporal.metadata ? { metadata: config.temporal.metadata } : {}),
      });
      owned.push(() => created.close());
      connection = created;
    }

    const gate = evaluationGate(config.concurrency);
    const workers: Worker[] = [];
    const common = {
      connection,
      namespace: config.temporal.namespace,
      identity: config.workerName,
      shutdownGraceTime: `${config.shutdownGraceSeconds} seconds`,
    } as const;
    if (config.roles.includes('workflows')) {
      await ensureSearchAttributes(connection.operatorService, config.temporal.namespace);
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: config.taskQueue,
          workflowBundle: await workflowBundle(),
          activities: createSweepActivities(context),
          maxConcurrentActivityTaskExecutions: 20,
        }),
      );
    }
    if (config.roles.includes('cells')) {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: cellsTaskQueue(config.taskQueue, config.executionProvider),
          activities: createCellActivities({
            ...context,
            engine: engine!,
            engineVersion,
            executionProvider: config.executionProvider,
            maxCells: config.maxCells,
            gate,
          } satisfies CellActivityContext),
          maxConcurrentActivityTaskExecutions: config.concurrency + config.prefetch,
        }),
      );
    }

    /** Hands the waiting cells back first: nothing starts on a stopping worker. */
    const stopAll = () => {
      gate.close();
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    };
    const closeOwned = async () => {
      for (const close of owned.reverse()) await close().catch((err) => console.error('close failed:', err));
      owned.length = 0;
    };
    return {
      context,
      engineVersion,
      ...(runsCells ? { engine } : {}),
      taskQueue: config.taskQueue,
      async run() {
        try {
          // One poller failing (e.g. the server went away for good) stops the other too.
          await Promise.all(workers.map((w) => w.run().catch((err) => (stopAll(), Promise.reject(err)))));
        } finally {
          await closeOwned();
        }
      },
      shutdown: stopAll,
    };
  } catch (err) {
    for (const close of owned.reverse()) await close().catch(() => {});
    throw err;
  }
}
