/**
 * `npm run worker` (the README's command) passes SIGTERM and SIGINT on to the worker, which drains
 * and exits: signalling the npm process leaves no worker behind, still polling. Every npm script
 * execs its program, so npm's shell is not in the way of a signal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, waitFor } from '../support/temporal.ts';
import { setupSuite, type Suite } from './helpers.ts';

let suite: Suite;
const orphans: number[] = [];

beforeAll(async () => {
  suite = await setupSuite('signals');
});

afterAll(async () => {
  for (const pid of orphans) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await suite?.teardown();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `npm run worker` as a user starts it (workflows only: no engine to load), and the worker's own pid. */
async function npmRunWorker(taskQueue: string): Promise<{ npm: ChildProcess; workerPid: number; output: string[] }> {
  const output: string[] = [];
  const npm = spawn('npm', ['run', 'worker'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE,
      DATABASE_URL: suite.db.url,
      ICL_SWEEP_TASK_QUEUE: taskQueue,
      ICL_SWEEP_ROLES: 'workflows',
      ICL_SWEEP_METRICS_PORT: 'off',
      ICL_SWEEP_WORKER_NAME: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [npm.stdout!, npm.stderr!]) stream.on('data', (b: Buffer) => output.push(...b.toString().split('\n').filter(Boolean)));
  // The default worker name is host:pid, so the start line says which process is the worker.
  const line = await waitFor(async () => output.find((l) => l.startsWith('icl-sweep worker ')), 90_000, 100, 'worker start line').catch((err) => {
    throw new Error(`${err}\n${output.join('\n')}`);
  });
  const workerPid = Number(/^icl-sweep worker [^:]+:(\d+):/.exec(line)?.[1]);
  expect(workerPid).toBeGreaterThan(0);
  orphans.push(workerPid);
  return { npm, workerPid, output };
}

describe('npm run worker', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} to the npm process: the worker drains and exits, nothing is left running`, async () => {
      const { npm, workerPid, output } = await npmRunWorker(`${suite.taskQueue}-${signal.toLowerCase()}`);
      expect(workerPid).not.toBe(npm.pid);
      const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
      npm.kill(signal);
      const code = await exited;
      await waitFor(async () => !alive(workerPid), 30_000, 100, `worker ${workerPid} to exit`);
      const log = output.join('\n');
      expect(log).toContain(`${signal}: draining`);
      expect(log).toContain('worker stopped');
      expect(code).toBe(0);
    });
  }

  it('every npm script execs its program (npm signals its shell, which would not pass the signal on)', () => {
    const scripts = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    for (const [name, command] of Object.entries(scripts)) expect(command, name).toMatch(/^exec /);
  });
});
