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
 *   ICL_SWEEP_TASK_QUEUE    default "icl-sweep" (cells run on "<queue>-cells")
 *   ICL_SWEEP_ROLES         "workflows,cells" (default): what this worker polls; "cells" for GPU-only machines
 *   ICL_SWEEP_CONCURRENCY   cells evaluated at once by this worker (default 1)
 *   ICL_SWEEP_METRICS_PORT  Prometheus /metrics port (default 9464; 0: any free port; "off": none)
 *   ICL_SWEEP_EXECUTION_PROVIDER  cpu (default) or cuda
 *   ICL_SWEEP_CACHE_DIR     decompositions and prepared datasets (default ./.cache/icl-sweep)
 *   ICL_SWEEP_MAX_MODELS    models kept loaded (default 2); ICL_SWEEP_DECOMPOSITION_CACHE_MB (default 2048)
 *   ICL_SWEEP_THREADS       ONNX Runtime intra-op threads (default: its own)
 *   ICL_SWEEP_TASK_DIRS     folders of task files (YAML) besides the builtin ones, separated like PATH
 *   ICL_SWEEP_SHUTDOWN_GRACE_SECONDS  time a stopping worker gives running cells to finish (default 30)
 */
import os from 'node:os';
import type { TLSConfig } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { DEFAULT_TASK_QUEUE } from '../workflows/queues.ts';
import { taskDirsFromEnv } from '../engine/tasks/registry.ts';

export interface TemporalConfig {
  address: string;
  namespace: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** gRPC metadata sent with every call (TEMPORAL_GRPC_META_*, or a profile's grpc_meta). */
  metadata?: Record<string, string>;
}

export type WorkerRole = 'workflows' | 'cells';

export interface WorkerConfig {
  temporal: TemporalConfig;
  databaseUrl?: string;
  taskQueue: string;
  roles: WorkerRole[];
  concurrency: number;
  /** undefined: no metrics server. */
  metricsPort?: number;
  executionProvider: 'cpu' | 'cuda';
  cacheDir: string;
  maxModels: number;
  decompositionCacheBytes: number;
  threads?: number;
  /** Folders of task files besides the builtin ones (ICL_SWEEP_TASK_DIRS). */
  taskDirs: string[];
  shutdownGraceSeconds: number;
  workerName: string;
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

export function workerConfigFromEnv(env: Env = process.env): WorkerConfig {
  const provider = env.ICL_SWEEP_EXECUTION_PROVIDER || 'cpu';
  if (provider !== 'cpu' && provider !== 'cuda') throw new Error(`ICL_SWEEP_EXECUTION_PROVIDER: "cpu" or "cuda", got "${provider}"`);
  const roles = (env.ICL_SWEEP_ROLES || 'workflows,cells').split(',').map((r) => r.trim()).filter(Boolean);
  for (const r of roles) if (r !== 'workflows' && r !== 'cells') throw new Error(`ICL_SWEEP_ROLES: "workflows" and/or "cells", got "${r}"`);
  const metrics = env.ICL_SWEEP_METRICS_PORT;
  const threads = env.ICL_SWEEP_THREADS ? int(env, 'ICL_SWEEP_THREADS', 0, 1) : undefined;
  return {
    temporal: temporalConfigFromEnv(env),
    databaseUrl: env.DATABASE_URL || undefined,
    taskQueue: env.ICL_SWEEP_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    roles: roles as WorkerRole[],
    concurrency: int(env, 'ICL_SWEEP_CONCURRENCY', 1, 1),
    metricsPort: metrics === 'off' ? undefined : int(env, 'ICL_SWEEP_METRICS_PORT', 9464),
    executionProvider: provider,
    cacheDir: env.ICL_SWEEP_CACHE_DIR || DEFAULT_CACHE_DIR,
    maxModels: int(env, 'ICL_SWEEP_MAX_MODELS', 2, 1),
    decompositionCacheBytes: int(env, 'ICL_SWEEP_DECOMPOSITION_CACHE_MB', 2048) * 1024 * 1024,
    ...(threads !== undefined ? { threads } : {}),
    taskDirs: taskDirsFromEnv(env),
    shutdownGraceSeconds: int(env, 'ICL_SWEEP_SHUTDOWN_GRACE_SECONDS', 30),
    workerName: env.ICL_SWEEP_WORKER_NAME || `${os.hostname()}:${process.pid}`,
  };
}
