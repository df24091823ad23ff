/**
 * Records the workflow histories that replay.test.ts replays in CI: representative sweeps run for
 * real (the Temporal server at TEMPORAL_ADDRESS, a fresh database on DATABASE_URL's server, the real
 * engine on the committed fixtures), every run of each sweep and some of its cell workflows, written
 * to test/replay/histories/*.json.
 *
 *   npm run histories:record
 *
 * Record new histories only for a deliberate change the old ones cannot replay under (with the
 * rollout README.md describes); add them, never replace histories of a version still running.
 * Specs use paths relative to the repository, so no machine's folders end up in the files.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { createTestDatabase } from '../support/database.ts';
import { REPO_ROOT, connectClient, quietTemporalLogs, startWorker, testWorkerConfig, uniqueTaskQueue, waitFor } from '../support/temporal.ts';
import { createEngine, type Engine } from '../../engine/index.ts';
import { metrics } from '../../activities/metrics.ts';
import { engineOptions } from '../../worker/create.ts';
import { count, makeSentimentDataset, runHistories, terminateRunning } from '../orchestration/helpers.ts';

export const HISTORIES_DIR = path.join(REPO_ROOT, 'test/replay/histories');
/** Scratch data the specs point at (relative to the repository, git-ignored). */
const WORK = 'test/replay/.work';

const base = {
  models: [{ name: 'gpt2-tiny', path: 'test/fixtures/models/gpt2' }],
  datasets: [{ name: 'sst2-tiny', task: 'sst2', path: 'test/fixtures/datasets/sst2' }],
  modules: ['fc_in'],
  layers: [0, 2],
  ratios: [0, 0.5],
  shots: 1,
  sizes: { validationPerClass: 2, testPerClass: 2 },
  maxInFlight: 2,
};

/** The model whose pruned layer-2 cells the recorder's engine fails, as a faulty device would, on every attempt. */
const FLAKY_MODEL = 'gpt2-flaky';

function flakyEngine(engine: Engine): Engine {
  return {
    evaluate: (request, options) =>
      request.model.name === FLAKY_MODEL && request.layer === 2 && request.ratio > 0
        ? Promise.reject(new Error('device error (the recorder fails this cell on every attempt)'))
        : engine.evaluate(request, options),
    describeModel: (model) => engine.describeModel(model),
    describeDataset: (dataset) => engine.describeDataset(dataset),
    checkCells: (request) => engine.checkCells(request),
    close: () => engine.close(),
  };
}

interface Scenario {
  name: string;
  spec: Record<string, unknown>;
  /** Cancel while a cell has been evaluated for a few seconds. */
  cancelMidCell?: boolean;
  /** Record the cell workflows that ended so (at most one each). */
  cells: ('done' | 'failed' | 'cancelled')[];
}

const scenarios: Scenario[] = [
  { name: 'window', spec: { ...base, name: 'replay-window' }, cells: ['done'] },
  { name: 'continue-as-new', spec: { ...base, name: 'replay-can', modules: ['q_proj', 'fc_in'], layers: [0, 1, 2], continueAsNewAfter: 2 }, cells: [] },
  {
    // Each attempt of one cell fails (flakyEngine), so its attempts run out and the failure is recorded.
    name: 'failure',
    spec: { ...base, name: 'replay-failure', models: [...base.models, { name: FLAKY_MODEL, path: 'test/fixtures/models/gpt2-nopast' }], cellAttempts: 2 },
    cells: ['failed'],
  },
  {
    name: 'cancellation',
    // Slow cells, and heartbeats often enough that the cancellation reaches a cell in the middle of it.
    spec: {
      ...base,
      name: 'replay-cancel',
      models: [{ name: 'gpt2-nopast', path: 'test/fixtures/models/gpt2-nopast' }],
      datasets: [{ name: 'slow', task: 'sst2', path: `${WORK}/slow` }],
      layers: [0, 1, 2],
      ratios: [0, 0.3, 0.6, 0.9],
      shots: 3,
      sizes: { testPerClass: 1000 },
      heartbeatTimeoutSeconds: 3,
    },
    cancelMidCell: true,
    cells: ['cancelled'],
  },
  { name: 'selection', spec: { ...base, name: 'replay-selection', selection: true, modules: ['fc_in', 'out_proj'] }, cells: [] },
  { name: 'invalid-spec', spec: { ...base, name: 'replay-invalid', ratios: [1.5] }, cells: [] },
];

async function prepareData(): Promise<void> {
  const work = path.join(REPO_ROOT, WORK);
  await rm(work, { recursive: true, force: true });
  await makeSentimentDataset(path.join(work, 'slow'), { train: 40, validation: 20, test: 2000 });
}

async function runScenario(client: Client, taskQueue: string, s: Scenario, cellsRunning: () => Promise<number>): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const handle = await client.workflow.start('sweep', { taskQueue, workflowId: `${taskQueue}-${s.name}`, args: [s.spec] });
  if (s.cancelMidCell) {
    await waitFor(async () => (await cellsRunning()) > 0, 120_000, 100, `${s.name}: a cell running`);
    await handle.cancel();
  }
  await handle.result().catch(() => {}); // failed and cancelled sweeps are scenarios too
  return handle;
}

/** This checkout's folder cut from a text (stack traces, the engine's messages): no machine's paths in the files. */
const relative = (text: string) => text.split(REPO_ROOT).join('');

/** Payloads (base64 JSON) with relative paths; replay compares commands, not the values they carry. */
function relativePayloads(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relativePayloads);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = relativePayloads(v);
  if (typeof out.data === 'string' && out.metadata) out.data = Buffer.from(relative(Buffer.from(out.data, 'base64').toString('utf8'))).toString('base64');
  return out;
}

/** Writes a history as Temporal's tools write it (proto JSON). */
async function save(file: string, history: Parameters<typeof historyToJSON>[0]): Promise<void> {
  const json = relativePayloads(JSON.parse(relative(historyToJSON(history))));
  await writeFile(path.join(HISTORIES_DIR, file), `${JSON.stringify(json, null, 2)}\n`);
  console.log(`  ${file}`);
}

async function recordCells(client: Client, sweepId: string, s: Scenario): Promise<void> {
  for (const outcome of s.cells) {
    for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH '${sweepId}/cell/' AND ExecutionStatus != 'Running'` })) {
      const handle = client.workflow.getHandle(wf.workflowId, wf.runId);
      const ended = outcome === 'cancelled' ? wf.status.name === 'CANCELLED' : wf.status.name === 'COMPLETED' && (await handle.result()) === outcome;
      if (!ended) continue;
      await save(`${s.name}.cell-${outcome}.json`, await handle.fetchHistory());
      break;
    }
  }
}

async function main(): Promise<void> {
  process.chdir(REPO_ROOT);
  await quietTemporalLogs();
  await prepareData();
  await rm(HISTORIES_DIR, { recursive: true, force: true });
  await mkdir(HISTORIES_DIR, { recursive: true });
  const db = await createTestDatabase({ prefix: 'icl_replay' });
  const taskQueue = uniqueTaskQueue('replay');
  const config = testWorkerConfig(taskQueue, {
    cacheDir: path.join(WORK, 'cache'),
    concurrency: 2,
    workerName: 'replay-recorder',
    dataRoots: [path.join(REPO_ROOT, 'test/fixtures'), path.join(REPO_ROOT, WORK)],
  });
  const engine = createEngine(engineOptions(config, metrics));
  const worker = await startWorker(taskQueue, { db: db.db, engine: flakyEngine(engine), config });
  const { client, close } = await connectClient();
  try {
    for (const s of scenarios) {
      console.log(`${s.name}:`);
      const running = () =>
        count(db.db, `select count(*) as n from cell_results r join cells c on c.key = r.cell_key where r.sweep = '${s.spec.name}' and c.status = 'running' and c.started_at < now() - interval '2 seconds'`);
      const handle = await runScenario(client, taskQueue, s, running);
      const runs = await runHistories(client, handle.workflowId, handle.firstExecutionRunId);
      for (const [i, { history }] of runs.entries()) await save(`${s.name}.run${i + 1}.json`, history);
      await recordCells(client, handle.workflowId, s);
    }
  } finally {
    await terminateRunning(client, taskQueue);
    await close();
    await worker.stop();
    await engine.close();
    await db.drop();
    await rm(path.join(REPO_ROOT, WORK), { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
