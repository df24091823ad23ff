/**
 * Configuration from the environment. Used by the worker entry, the CLI and the demo.
 *
 * Temporal: its client environment configuration (temporalConfigFromEnv), as the `temporal` CLI
 * reads it: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE (default "default"),
 * TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH / _KEY_PATH, TEMPORAL_TLS_SERVER_CA_CERT_PATH,
 * TEMPORAL_TLS_SERVER_NAME, TEMPORAL_GRPC_META_*, and profiles of a TOML file (TEMPORAL_CONFIG_FILE,
 * TEMPORAL_PROFILE). TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY and TEMPORAL_TLS_CA are aliases of the
 * three path variables. Ours:
 *
 *   DATABASE_URL            postgres://...; unset: embedded PGlite under ./data/pglite
 *   ICL_SWEEP_TASK_QUEUE    default "icl-sweep" (cells run on "<queue>-cells-<provider>")
 *   ICL_SWEEP_ROLES         "workflows,cells" (default): what this worker polls; "cells" for GPU-only machines
 *   ICL_SWEEP_CONCURRENCY   cells evaluated at once by this worker (default 1)
 *   ICL_SWEEP_PREFETCH      cells taken from the queue beyond those: each waits, ready, for an evaluation
 *                           slot, so its dispatch and lookup (and the last cell's save) overlap the running
 *                           cell's compute (default 1; 0: take only what is evaluated at once)
 *   ICL_SWEEP_METRICS_PORT  Prometheus /metrics port (default 9464; 0: any free port; "off": none)
 *   ICL_SWEEP_EXECUTION_PROVIDER  cpu (default) or cuda: the engine's, and so the cells queue polled
 *   ICL_SWEEP_CACHE_DIR     decompositions and prepared datasets (default ./.cache/icl-sweep)
 *   ICL_SWEEP_MAX_MODELS    models kept loaded (default 2); ICL_SWEEP_DECOMPOSITION_CACHE_MB (default 2048)
 *   ICL_SWEEP_DISK_CACHE_MB decompositions kept on disk under the cache folder, least recently used go (default 20480)
 *   ICL_SWEEP_STATES_DISK_MB hidden states for layer slices this process spills under the cache folder (default 8192)
 *   ICL_SWEEP_MAX_CELLS     largest grid a sweep prepared by this worker may have (default 1000000)
 *   ICL_SWEEP_OUTAGE_TOLERANCE_SECONDS  how long activities wait out an unreachable database (default 1800)
 *   ICL_SWEEP_THREADS       ONNX Runtime intra-op threads (default: its own)
 *   ICL_SWEEP_TASK_DIRS     folders of task files (YAML) besides the builtin ones, separated like PATH
 *   ICL_SWEEP_SHUTDOWN_GRACE_SECONDS  time a stopping worker gives running cells to finish (default 30)
 *   ICL_SWEEP_DATA_ROOTS    folders model and dataset paths must lie under, separated by ":" (default:
 *                           ./data, the cache folder, the Hugging Face Hub cache, test/fixtures)
 *   ICL_SWEEP_MAX_EXAMPLE_KB, ICL_SWEEP_MAX_DATASET_MB   largest example (1024) and dataset (512) read
 *   ICL_SWEEP_DATASET_CACHE_MB   parsed datasets kept in memory (default 1024)
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TLSConfig } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { DEFAULT_TASK_QUEUE } from '../workflows/queues.ts';
import { taskDirsFromEnv } from '../engine/tasks/registry.ts';
import { hubCacheDir } from '../engine/hub.ts';
import { DEFAULT_MAX_CELLS } from '../sweepspec/grid.ts';

export interface TemporalConfig {
  address: string;
  namespace: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** gRPC metadata sent with every call (TEMPORAL_GRPC_META_*, or a profile's grpc_meta). */
  metadata?: Record<string, string>;
}

export type WorkerRole = 'workflows' | 'cells';

/** What the engine of a worker (or of the CLI's file checks) is configured with. */
export interface EngineConfig {
  executionProvider: 'cpu' | 'cuda';
  cacheDir: string;
  maxModels: number;
  decompositionCacheBytes: number;
  /** Bound of the decompositions kept on disk (ICL_SWEEP_DISK_CACHE_MB). */
  diskCacheBytes: number;
  /** Bound of the hidden states this process spills to disk for layer slices (ICL_SWEEP_STATES_DISK_MB). */
  statesDiskBytes: number;
  threads?: number;
  /** Folders model and dataset paths must lie under (absolute). */
  dataRoots: string[];
  datasetLimits: { exampleBytes: number; datasetBytes: number };
  datasetCacheBytes: number;
  /** Folders of task files besides the builtin ones (ICL_SWEEP_TASK_DIRS). */
  taskDirs: string[];
}

export interface WorkerConfig extends EngineConfig {
  temporal: TemporalConfig;
  databaseUrl?: string;
  taskQueue: string;
  roles: WorkerRole[];
  concurrency: number;
  /** Cells taken beyond `concurrency`, waiting for an evaluation slot (ICL_SWEEP_PREFETCH). */
  prefetch: number;
  /** undefined: no metrics server. */
  metricsPort?: number;
  shutdownGraceSeconds: number;
  workerName: string;
  /** Largest grid a sweep this worker prepares may have (ICL_SWEEP_MAX_CELLS). */
  maxCells: number;
  /** How long database work waits out an unreachable database (ICL_SWEEP_OUTAGE_TOLERANCE_SECONDS). */
  outageToleranceSeconds: number;
}

/** The repository's test fixtures: the tests' and `demo --tiny`'s models and datasets. */
const FIXTURES_DIR = fileURLToPath(new URL('../test/fixtures', import.meta.url));

/**
 * ICL_SWEEP_DATA_ROOTS (":"-separated, relative to the working directory), else ./data (the demo's
 * models), the cache folder (prepared recipes), the local Hugging Face Hub cache (models given by Hub
 * id) and the repository's test/fixtures.
 */
export function dataRootsFromEnv(env: Env, cacheDir: string): string[] {
  const given = env.ICL_SWEEP_DATA_ROOTS;
  const roots = given ? given.split(path.delimiter).filter((r) => r.trim() !== '') : ['data', cacheDir, hubCacheDir(env), FIXTURES_DIR];
  if (roots.length === 0) throw new Error('ICL_SWEEP_DATA_ROOTS: no folder given');
  return roots.map((r) => path.resolve(r));
}

type Env = Record<string, string | undefined>;

/** Decompositions and prepared datasets (ICL_SWEEP_CACHE_DIR). */
export const DEFAULT_CACHE_DIR = './.cache/icl-sweep';

function int(env: Env, name: string, fallback: number, min = 0): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

/** Names this project read before it followed Temporal's environment configuration; still honoured. */
const TLS_ALIASES = {
  TEMPORAL_TLS_CERT: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  TEMPORAL_TLS_KEY: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
  TEMPORAL_TLS_CA: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
} as const;

/**
 * Temporal's client environment configuration (@temporalio/envconfig, the same rules as the `temporal`
 * CLI): the profile TEMPORAL_PROFILE (default "default") of the TOML file TEMPORAL_CONFIG_FILE (default
 * the user's temporal.toml, when it exists), overridden by TEMPORAL_* variables.
 */
export function temporalConfigFromEnv(env: Env = process.env): TemporalConfig {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && value !== '') vars[name] = value;
  for (const [alias, name] of Object.entries(TLS_ALIASES)) if (vars[alias] && !vars[name]) vars[name] = vars[alias];
  const certPath = vars.TEMPORAL_TLS_CLIENT_CERT_PATH;
  const keyPath = vars.TEMPORAL_TLS_CLIENT_KEY_PATH;
  if (Boolean(certPath) !== Boolean(keyPath)) {
    throw new Error('TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH must be given together');
  }
  let loaded: ReturnType<typeof loadClientConnectConfig>;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars: vars });
  } catch (err) {
    const source = vars.TEMPORAL_CONFIG_FILE ?? "the user's temporal.toml";
    throw new Error(`Temporal client configuration (${source}, profile ${vars.TEMPORAL_PROFILE ?? 'default'}): ${(err as Error).message}`);
  }
  const { namespace, connectionOptions: options } = loaded;
  return {
    address: options.address ?? 'localhost:7233',
    namespace: namespace ?? 'default',
    ...(options.tls != null ? { tls: options.tls } : {}),
    ...(options.apiKey && typeof options.apiKey === 'string' ? { apiKey: options.apiKey } : {}),
    ...(options.metadata ? { metadata: options.metadata as Record<string, string> } : {}),
  };
}

/** The engine's settings from ICL_SWEEP_* variables (no Temporal or database settings). */
export function engineConfigFromEnv(env: Env = process.env): EngineConfig {
  const provider = env.ICL_SWEEP_EXECUTION_PROVIDER || 'cpu';
  if (provider !== 'cpu' && provider !== 'cuda') throw new Error(`ICL_SWEEP_EXECUTION_PROVIDER: "cpu" or "cuda", got "${provider}"`);
  const threads = env.ICL_SWEEP_THREADS ? int(env, 'ICL_SWEEP_THREADS', 0, 1) : undefined;
  const cacheDir = env.ICL_SWEEP_CACHE_DIR || DEFAULT_CACHE_DIR;
  return {
    executionProvider: provider,
    cacheDir,
    maxModels: int(env, 'ICL_SWEEP_MAX_MODELS', 2, 1),
    decompositionCacheBytes: int(env, 'ICL_SWEEP_DECOMPOSITION_CACHE_MB', 2048) * 1024 * 1024,
    diskCacheBytes: int(env, 'ICL_SWEEP_DISK_CACHE_MB', 20480) * 1024 * 1024,
    statesDiskBytes: int(env, 'ICL_SWEEP_STATES_DISK_MB', 8192) * 1024 * 1024,
    ...(threads !== undefined ? { threads } : {}),
    dataRoots: dataRootsFromEnv(env, cacheDir),
    datasetLimits: { exampleBytes: int(env, 'ICL_SWEEP_MAX_EXAMPLE_KB', 1024, 1) * 1024, datasetBytes: int(env, 'ICL_SWEEP_MAX_DATASET_MB', 512, 1) * 2 ** 20 },
    datasetCacheBytes: int(env, 'ICL_SWEEP_DATASET_CACHE_MB', 1024) * 2 ** 20,
    taskDirs: taskDirsFromEnv(env),
  };
}

export function workerConfigFromEnv(env: Env = process.env): WorkerConfig {
  const roles = (env.ICL_SWEEP_ROLES || 'workflows,cells').split(',').map((r) => r.trim()).filter(Boolean);
  for (const r of roles) if (r !== 'workflows' && r !== 'cells') throw new Error(`ICL_SWEEP_ROLES: "workflows" and/or "cells", got "${r}"`);
  const metrics = env.ICL_SWEEP_METRICS_PORT;
  return {
    ...engineConfigFromEnv(env),
    temporal: temporalConfigFromEnv(env),
    databaseUrl: env.DATABASE_URL || undefined,
    taskQueue: env.ICL_SWEEP_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    roles: roles as WorkerRole[],
    concurrency: int(env, 'ICL_SWEEP_CONCURRENCY', 1, 1),
    prefetch: int(env, 'ICL_SWEEP_PREFETCH', 1),
    metricsPort: metrics === 'off' ? undefined : int(env, 'ICL_SWEEP_METRICS_PORT', 9464),
    shutdownGraceSeconds: int(env, 'ICL_SWEEP_SHUTDOWN_GRACE_SECONDS', 30),
    workerName: env.ICL_SWEEP_WORKER_NAME || `${os.hostname()}:${process.pid}`,
    maxCells: int(env, 'ICL_SWEEP_MAX_CELLS', DEFAULT_MAX_CELLS, 1),
    outageToleranceSeconds: int(env, 'ICL_SWEEP_OUTAGE_TOLERANCE_SECONDS', 1800),
  };
}
