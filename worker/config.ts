/**
 * Configuration from the environment, in Temporal's own conventions (the `temporal` CLI reads the
 * same variables), plus ours. Used by the worker entry, the CLI and the demo.
 *
 *   TEMPORAL_ADDRESS        host:port of the frontend (default localhost:7233)
 *   TEMPORAL_NAMESPACE      default "default"
 *   TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY   paths of a client certificate pair (mTLS namespaces)
 *   TEMPORAL_TLS_CA         path of a CA bundle; TEMPORAL_TLS_SERVER_NAME overrides the TLS server name
 *   TEMPORAL_API_KEY        API key (Temporal Cloud); turns TLS on
 *   DATABASE_URL            postgres://...; unset: embedded PGlite under ./data/pglite
 *   ICL_SWEEP_TASK_QUEUE    default "icl-sweep" (cells run on "<queue>-cells")
 *   ICL_SWEEP_ROLES         "workflows,cells" (default): what this worker polls; "cells" for GPU-only machines
 *   ICL_SWEEP_CONCURRENCY   cells evaluated at once by this worker (default 1)
 *   ICL_SWEEP_METRICS_PORT  Prometheus /metrics port (default 9464; 0: any free port; "off": none)
 *   ICL_SWEEP_EXECUTION_PROVIDER  cpu (default) or cuda
 *   ICL_SWEEP_CACHE_DIR     decompositions and prepared datasets (default ./.cache/icl-sweep)
 *   ICL_SWEEP_MAX_MODELS    models kept loaded (default 2); ICL_SWEEP_DECOMPOSITION_CACHE_MB (default 2048)
 *   ICL_SWEEP_THREADS       ONNX Runtime intra-op threads (default: its own)
 *   ICL_SWEEP_SHUTDOWN_GRACE_SECONDS  time a stopping worker gives running cells to finish (default 30)
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { TLSConfig } from '@temporalio/client';
import { DEFAULT_TASK_QUEUE } from '../workflows/queues.ts';

export interface TemporalConfig {
  address: string;
  namespace: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
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
  shutdownGraceSeconds: number;
  workerName: string;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

export function temporalConfigFromEnv(env: Env = process.env): TemporalConfig {
  const address = env.TEMPORAL_ADDRESS || 'localhost:7233';
  const namespace = env.TEMPORAL_NAMESPACE || 'default';
  const apiKey = env.TEMPORAL_API_KEY || undefined;
  const cert = env.TEMPORAL_TLS_CERT;
  const key = env.TEMPORAL_TLS_KEY;
  if ((cert && !key) || (key && !cert)) throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be given together');
  let tls: TLSConfig | boolean | undefined;
  if (cert || env.TEMPORAL_TLS_CA || env.TEMPORAL_TLS_SERVER_NAME) {
    tls = {
      ...(cert && key ? { clientCertPair: { crt: readFileSync(cert), key: readFileSync(key) } } : {}),
      ...(env.TEMPORAL_TLS_CA ? { serverRootCACertificate: readFileSync(env.TEMPORAL_TLS_CA) } : {}),
      ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME } : {}),
    };
  } else if (apiKey || env.TEMPORAL_TLS === 'true') {
    tls = true;
  }
  return { address, namespace, ...(tls !== undefined ? { tls } : {}), ...(apiKey ? { apiKey } : {}) };
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
    cacheDir: env.ICL_SWEEP_CACHE_DIR || './.cache/icl-sweep',
    maxModels: int(env, 'ICL_SWEEP_MAX_MODELS', 2, 1),
    decompositionCacheBytes: int(env, 'ICL_SWEEP_DECOMPOSITION_CACHE_MB', 2048) * 1024 * 1024,
    ...(threads !== undefined ? { threads } : {}),
    shutdownGraceSeconds: int(env, 'ICL_SWEEP_SHUTDOWN_GRACE_SECONDS', 30),
    workerName: env.ICL_SWEEP_WORKER_NAME || `${os.hostname()}:${process.pid}`,
  };
}
