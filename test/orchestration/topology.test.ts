/**
 * The deploy topology: a workflows-only orchestrator that cannot read the model and dataset folders
 * (its own mount namespace with them hidden under an empty tmpfs; where mount namespaces are not
 * allowed, another user without read permission) and a cells worker that can. Everything that reads
 * those files (preparing the sweep, evaluating cells) runs on the cells task queue, so the sweep
 * completes.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellResults } from '../../db/queries.ts';
import type { SweepResult } from '../../workflows/sweep.ts';
import { spawnWorker, startWorker, waitFor, type RunningWorker, type SpawnOptions } from '../support/temporal.ts';
import { MODELS, makeSentimentDataset, setupSuite, type Suite } from './helpers.ts';

const execFileP = promisify(execFile);
let suite: Suite;
let cells: RunningWorker | undefined;
let orchestrator: ChildProcess | undefined;
let home: string | undefined;

beforeAll(async () => {
  suite = await setupSuite('topology');
});

afterAll(async () => {
  if (orchestrator && orchestrator.exitCode === null && orchestrator.signalCode === null) {
    const exited = new Promise((r) => orchestrator!.once('exit', r));
    orchestrator.kill('SIGTERM');
    await exited;
  }
  await cells?.stop().catch(() => {});
  if (home) await rm(home, { recursive: true, force: true });
  await suite?.teardown();
});

/** How to run a process that cannot see `folder`: a private mount namespace hiding it, else the user nobody. */
async function withoutAccessTo(folder: string): Promise<{ how: string; opts: SpawnOptions }> {
  const wrap = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m icl-hidden "$0" && exec "$@"', folder];
  try {
    await execFileP(wrap[0], [...wrap.slice(1), 'true']);
    return { how: 'a mount namespace with the folder under an empty tmpfs', opts: { wrap } };
  } catch {
    await chmod(folder, 0o700); // root's own; nobody may not enter
    return { how: 'user nobody, without permission on the folder', opts: { uid: 65534, gid: 65534 } };
  }
}

/** Runs `sh -c script` the way the orchestrator will run; its exit code. */
async function exitCodeOf(opts: SpawnOptions, script: string, env: Record<string, string>): Promise<number> {
  const command = [...(opts.wrap ?? []), 'sh', '-c', script];
  return execFileP(command[0], command.slice(1), { env: { ...process.env, ...env }, uid: opts.uid, gid: opts.gid }).then(
    () => 0,
    (e: { code?: number }) => e.code ?? 1,
  );
}

describe('a workflows-only orchestrator without access to the model and dataset folders', () => {
  it('runs a sweep with a cells worker that has it', async () => {
    const mounted = path.join(suite.tmp, 'mounted');
    await cp(path.join(MODELS, 'gpt2'), path.join(mounted, 'models', 'gpt2'), { recursive: true });
    await makeSentimentDataset(path.join(mounted, 'datasets', 'sentiment'), { train: 40, validation: 10, test: 20 });
    await mkdir(path.join(suite.tmp, 'cache'), { recursive: true });
    const { how, opts } = await withoutAccessTo(mounted);

    // The orchestrator's view: the folders are not there.
    const config = path.join(mounted, 'models', 'gpt2', 'config.json');
    expect(await exitCodeOf({}, 'test -r "$F"', { F: config })).toBe(0);
    expect(await exitCodeOf(opts, 'test -r "$F"', { F: config }), how).not.toBe(0);

    // A home of its own that any user may use (Temporal's client configuration looks for a file there).
    home = await mkdtemp(path.join(os.tmpdir(), 'icl-orchestrator-home-'));
    await chmod(home, 0o777);
    const output: string[] = [];
    orchestrator = spawnWorker(
      {
        DATABASE_URL: suite.db.url,
        ICL_SWEEP_TASK_QUEUE: suite.taskQueue,
        ICL_SWEEP_ROLES: 'workflows',
        ICL_SWEEP_WORKER_NAME: 'orchestrator',
        ICL_SWEEP_DATA_ROOTS: mounted,
        ICL_SWEEP_CACHE_DIR: path.join(home, 'cache'),
        HOME: home,
      },
      (line) => output.push(line),
      opts,
    );
    const exited = new Promise<never>((_, reject) =>
      orchestrator!.once('exit', (code) => reject(new Error(`orchestrator exited (${code}):\n${output.join('\n')}`))),
    );
    await Promise.race([waitFor(async () => output.some((l) => l.includes('icl-sweep worker orchestrator')), 90_000), exited]);
    expect(output.join('\n')).toContain(`task queues ${suite.taskQueue}, `); // the workflow queue only

    cells = await startWorker(suite.taskQueue, {
      db: suite.db.db,
      config: { roles: ['cells'], cacheDir: path.join(suite.tmp, 'cache'), dataRoots: [mounted], workerName: 'gpu-worker' },
    });

    const spec = {
      name: 'topology-sweep',
      models: [{ name: 'gpt2', path: path.join(mounted, 'models', 'gpt2') }],
      datasets: [{ name: 'sentiment', task: 'sst2', path: path.join(mounted, 'datasets', 'sentiment') }],
      modules: ['fc_in'],
      layers: [0, 1],
      ratios: [0, 0.5, 0.9],
      shots: 2,
      sizes: { testPerClass: 4 },
    };
    const handle = await suite.client.workflow.start('sweep', { taskQueue: suite.taskQueue, workflowId: `${suite.taskQueue}-wf`, args: [spec] });
    const result = (await handle.result()) as SweepResult;
    expect(result).toMatchObject({ total: 5, done: 5, reused: 0, failed: 0 });
    const rows = await cellResults(suite.db.db, 'topology-sweep');
    expect(rows).toHaveLength(5);
    expect(rows.every((r) => r.status === 'done' && r.worker === 'gpu-worker' && r.n === 8)).toBe(true);
    // The workflow ran on the orchestrator (the in-process worker polls only the cells queue).
    const history = await handle.fetchHistory();
    const identities = new Set(history.events!.filter((e) => e.workflowTaskCompletedEventAttributes).map((e) => e.workflowTaskCompletedEventAttributes!.identity));
    expect([...identities]).toEqual(['orchestrator']);
  });
});
