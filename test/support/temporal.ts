/**
 * Helpers for tests against the real Temporal server (TEMPORAL_ADDRESS, default localhost:7233):
 * a client, a unique task queue per test, an in-process sweep worker (worker/create.ts, the same
 * module `npm run worker` uses) or a worker in a child process (`tsx worker/main.ts`), and the
 * official `temporal` CLI. Fails (does not skip) when the server is unreachable.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { Engine } from '../../engine/types.ts';
import type { Db } from '../../db/client.ts';
import { workerConfigFromEnv, type WorkerConfig } from '../../worker/config.ts';
import { createSweepWorker, type SweepWorker } from '../../worker/create.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TEMPORAL_ADDRESS = process.env.TEMPORAL_ADDRESS || 'localhost:7233';
export const TEMPORAL_NAMESPACE = process.env.TEMPORAL_NAMESPACE || 'default';

/** Allowed roots of test workers: the fixtures and the temp folder the tests make their models and datasets in. */
export const TEST_DATA_ROOTS = [path.join(REPO_ROOT, 'test/fixtures'), os.tmpdir()];

export function uniqueTaskQueue(prefix = 'test'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export async function connectClient(): Promise<{ client: Client; close(): Promise<void> }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: TEMPORAL_ADDRESS, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new Error(`Temporal server unreachable at ${TEMPORAL_ADDRESS} (set TEMPORAL_ADDRESS): ${(err as Error).message}`);
  }
  return { client: new Client({ connection, namespace: TEMPORAL_NAMESPACE }), close: () => connection.close() };
}

export function testWorkerConfig(taskQueue: string, overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  return {
    ...workerConfigFromEnv({ ...process.env, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE }),
    taskQueue,
    metricsPort: undefined,
    shutdownGraceSeconds: 1,
    workerName: `test-${taskQueue}`,
    dataRoots: TEST_DATA_ROOTS,
    ...overrides,
  };
}

export interface RunningWorker {
  worker: SweepWorker;
  running: Promise<void>;
  stop(): Promise<void>;
}

/** An in-process worker on `taskQueue` (workflows + cells) with the real engine unless one is given. */
export async function startWorker(
  taskQueue: string,
  opts: { db: Db; engine?: Engine; engineVersion?: string; config?: Partial<WorkerConfig> },
): Promise<RunningWorker> {
  const worker = await createSweepWorker(testWorkerConfig(taskQueue, opts.config), {
    db: opts.db,
    ...(opts.engine ? { engine: opts.engine } : {}),
    ...(opts.engineVersion ? { engineVersion: opts.engineVersion } : {}),
  });
  const running = worker.run();
  running.catch(() => {});
  return {
    worker,
    running,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

export interface SpawnOptions {
  /** A command the worker's command line is appended to (e.g. one that enters another mount namespace). */
  wrap?: string[];
  /** Run as this user and group (the test runs as root). */
  uid?: number;
  gid?: number;
}

/** A worker in a child process (`tsx worker/main.ts`), e.g. to SIGKILL it. Output goes to onOutput. */
export function spawnWorker(env: Record<string, string>, onOutput?: (line: string) => void, opts: SpawnOptions = {}): ChildProcess {
  const command = [...(opts.wrap ?? []), process.execPath, '--import', 'tsx', 'worker/main.ts'];
  const child = spawn(command[0], command.slice(1), {
    cwd: REPO_ROOT,
    env: { ...process.env, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ICL_SWEEP_METRICS_PORT: 'off', ICL_SWEEP_DATA_ROOTS: TEST_DATA_ROOTS.join(path.delimiter), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) onOutput?.(line);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}

const execFileP = promisify(execFile);

/** Runs the official `temporal` CLI against the test server. */
export async function temporalCli(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileP('temporal', [...args, '--address', TEMPORAL_ADDRESS, '--namespace', TEMPORAL_NAMESPACE], {
    cwd: REPO_ROOT,
    timeout: 60_000,
  });
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`, naming `what`). */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 60_000,
  everyMs = 200,
  what = 'waitFor',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: timed out after ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Keeps the SDK's own logs to errors (activity failures are expected in these tests). Once per process. */
export async function quietTemporalLogs(level: 'WARN' | 'ERROR' = 'ERROR'): Promise<void> {
  const { Runtime, DefaultLogger } = await import('@temporalio/worker');
  try {
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    /* already installed in this process */
  }
}
