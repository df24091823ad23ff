/**
 * Sweep scale benchmark (a command, not a test): one real sweep of N distinct cells end to end through
 * the real stack, and the numbers that say whether a large grid completes:
 *  - the `sweep` workflow on the Temporal server of TEMPORAL_ADDRESS (default localhost:7233),
 *  - in-process worker(s) made by worker/create.ts (the module `npm run worker` uses), real engine,
 *  - a fresh Postgres database on the server of DATABASE_URL (default postgres://postgres:postgres@localhost:5432/postgres),
 *    created for the run and dropped afterwards (--keep-db keeps it),
 *  - the tiny fixture model (test/fixtures/models/gpt2) and the sst2 fixture dataset, few shots, few examples.
 *
 *   npx tsx bench/sweep-scale.ts                       # 10,000 cells
 *   npx tsx bench/sweep-scale.ts --cells 500 --every 5
 *   options: --cells N (10000) --workers K (1) --concurrency C (4, per worker) --max-in-flight M (32)
 *            --continue-as-new-after X (unset: the spec's default) --model gpt2|llama|PATH (gpt2)
 *            --shots S (2) --per-class P (2) --threads T (1, ONNX intra-op) --every SECONDS (10) --keep-db
 *
 * While running: a progress line every --every seconds (the workflow's `progress` query: finished / total,
 * cells/s overall and since the last line, the current run and its history length). At the end: wall
 * time, cells/s, workflow runs (1 + continue-as-new count), history length of every run (walked back
 * through the continue-as-new chain), rows in cell_results for the sweep (must be N, each cell once),
 * failures (must be 0). Exit code 1 when a check fails.
 *
 * The grid: modules x layers x R distinct ratios (plus, when it makes the count exact, the ratio-0
 * baseline, which is one cell per (model, dataset) whatever the module and layer).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { WorkflowNotFoundError } from '@temporalio/client';
import { queryRows } from '../db/client.ts';
import { connectTemporal } from '../cli/client.ts';
import { workerConfigFromEnv } from '../worker/config.ts';
import { createSweepWorker, type SweepWorker } from '../worker/create.ts';
import type { SweepProgress, SweepResult } from '../workflows/sweep.ts';
import { createTestDatabase } from '../test/support/database.ts';

const ROOT = resolve(import.meta.dirname, '..');

const { values: opts } = parseArgs({
  options: {
    cells: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '4' },
    'max-in-flight': { type: 'string', default: '32' },
    'continue-as-new-after': { type: 'string' },
    model: { type: 'string', default: 'gpt2' },
    shots: { type: 'string', default: '2' },
    'per-class': { type: 'string', default: '2' },
    threads: { type: 'string', default: '1' },
    every: { type: 'string', default: '10' },
    'keep-db': { type: 'boolean', default: false },
  },
});

function intOpt(name: keyof typeof opts, min = 1): number {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name}: expected an integer >= ${min}, got "${opts[name]}"`);
  return v;
}

const N = intOpt('cells');
const WORKERS = intOpt('workers');
const CONCURRENCY = intOpt('concurrency');
const MAX_IN_FLIGHT = intOpt('max-in-flight');
const SHOTS = intOpt('shots', 0);
const PER_CLASS = intOpt('per-class');
const THREADS = intOpt('threads');
const EVERY_MS = Number(opts.every) * 1000;
const CAN_AFTER = opts['continue-as-new-after'] !== undefined ? intOpt('continue-as-new-after') : undefined;

const MODEL_DIR =
  opts.model === 'gpt2' || opts.model === 'llama' ? join(ROOT, 'test/fixtures/models', opts.model!) : isAbsolute(opts.model!) ? opts.model! : resolve(opts.model!);

/** Modules of both fixture families (GPT-2 and Llama map the paper's names), and the fixtures' layers (3). */
const MODULES = ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_out', 'mlp', 'attn', 'all'];
const LAYERS = [-1, 0, 1, 2];

interface Grid {
  modules: string[];
  layers: number[];
  ratios: number[];
  baseline: boolean;
}

/**
 * modules x layers x R nonzero ratios (+ 1 when the ratio-0 baseline is in) = exactly n cells. Prefers the
 * most (module, layer) matrices, so each has the fewest ratios; a one-matrix grid with the baseline
 * always fits.
 */
function gridFor(n: number): Grid {
  let best: { m: number; l: number; r: number; baseline: boolean } | undefined;
  for (let m = 1; m <= MODULES.length; m++) {
    for (let l = 1; l <= LAYERS.length; l++) {
      for (const baseline of [false, true]) {
        const rest = n - (baseline ? 1 : 0);
        if (rest < m * l || rest % (m * l) !== 0) continue;
        if (!best || m * l > best.m * best.l) best = { m, l, r: rest / (m * l), baseline };
      }
    }
  }
  if (!best) throw new Error(`no grid of ${n} cells`); // unreachable for n >= 2 (m = l = 1, with or without the baseline)
  // R distinct ratios strictly inside (0, 1): i / (R + 1), rounded to 6 decimals (distinct while R < 500,000).
  const ratios = Array.from({ length: best.r }, (_, i) => Number(((i + 1) / (best.r + 1)).toFixed(6)));
  if (new Set(ratios).size !== ratios.length || ratios.some((x) => x <= 0 || x >= 1)) throw new Error(`ratios not distinct for R = ${best.r}`);
  return { modules: MODULES.slice(0, best.m), layers: LAYERS.slice(0, best.l), ratios: best.baseline ? [0, ...ratios] : ratios, baseline: best.baseline };
}

const fmt = (x: number, d = 1) => x.toFixed(d);
const hms = (ms: number) => {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<number> {
  if (N < 2) throw new Error('--cells: at least 2');
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const grid = gridFor(N);
  const stamp = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const sweepName = `bench-scale-${N}-${stamp}`;
  const taskQueue = `bench-scale-${stamp}`;
  const workflowId = sweepName;
  const spec = {
    name: sweepName,
    models: [{ name: 'fixture', path: MODEL_DIR }],
    datasets: [{ name: 'sst2-tiny', task: 'sst2', path: join(ROOT, 'test/fixtures/datasets/sst2') }],
    modules: grid.modules,
    layers: grid.layers,
    ratios: grid.ratios,
    shots: SHOTS,
    sizes: { validationPerClass: PER_CLASS, testPerClass: PER_CLASS },
    split: 'test',
    maxInFlight: MAX_IN_FLIGHT,
    ...(CAN_AFTER !== undefined ? { continueAsNewAfter: CAN_AFTER } : {}),
  };

  const cleanup: (() => Promise<void>)[] = [];
  let ok = true;
  try {
    // A fresh database on the server of DATABASE_URL.
    const fresh = await createTestDatabase({ prefix: 'icl_bench_scale' });
    const { db, url: dbUrl } = fresh;
    cleanup.push(async () => {
      if (!opts['keep-db']) return fresh.drop();
      await db.close();
      log(`kept database ${fresh.name} (${dbUrl.replace(/:[^:@/]*@/, ':***@')})`);
    });

    const { client, close } = await connectTemporal();
    cleanup.push(close);

    // Workers as `npm run worker` makes them: config from the environment, own engine, db pool and connection.
    const cacheDir = mkdtempSync(join(tmpdir(), 'bench-scale-cache-'));
    cleanup.push(async () => rmSync(cacheDir, { recursive: true, force: true }));
    const workers: { worker: SweepWorker; running: Promise<void> }[] = [];
    cleanup.push(async () => {
      for (const w of workers) w.worker.shutdown();
      await Promise.all(workers.map((w) => w.running.catch(() => {})));
    });
    for (let i = 0; i < WORKERS; i++) {
      const base = workerConfigFromEnv();
      const config = {
        ...base,
        dataRoots: [...base.dataRoots, MODEL_DIR], // the model given on the command line
        databaseUrl: dbUrl,
        taskQueue,
        concurrency: CONCURRENCY,
        metricsPort: undefined,
        cacheDir,
        threads: THREADS,
        shutdownGraceSeconds: 5,
        workerName: `bench-${stamp}-w${i}`,
      };
      const worker = await createSweepWorker(config);
      const running = worker.run();
      running.catch((err) => log(`worker ${i} stopped: ${(err as Error).message}`));
      workers.push({ worker, running });
    }

    const cansAfter = CAN_AFTER ?? 500;
    log(
      `sweep ${sweepName}: ${N} cells = ${grid.modules.length} modules x ${grid.layers.length} layers x ${grid.ratios.length - (grid.baseline ? 1 : 0)} ratios` +
        `${grid.baseline ? ' + 1 baseline' : ''}; model ${MODEL_DIR}, shots ${SHOTS}, ${PER_CLASS}/class; ` +
        `${WORKERS} worker(s) x concurrency ${CONCURRENCY}, maxInFlight ${MAX_IN_FLIGHT}, continueAsNewAfter ${CAN_AFTER ?? '(default 500)'}; task queue ${taskQueue}`,
    );

    const t0 = Date.now();
    const handle = await client.workflow.start('sweep', { taskQueue, workflowId, args: [spec] });
    let finished = false;
    let interrupted = false;
    const result = (handle.result() as Promise<SweepResult>).finally(() => (finished = true));
    result.catch(() => {});
    // Interrupted (Ctrl-C, an error here): do not leave the sweep running on the server.
    cleanup.push(async () => {
      if (!finished) await client.workflow.getHandle(workflowId).terminate('bench/sweep-scale.ts stopped').catch(() => {});
    });
    process.once('SIGINT', () => {
      log('SIGINT: terminating the sweep and cleaning up');
      finished = true;
      interrupted = true;
    });

    // Progress every EVERY_MS.
    let last = { t: t0, n: 0 };
    let maxSeenInFlight = 0;
    let queryErrors = 0;
    const history: { run: number; historyLength: number }[] = [];
    while (!finished) {
      await Promise.race([result.catch(() => {}), new Promise((r) => setTimeout(r, EVERY_MS))]);
      if (finished) break;
      try {
        const p = (await client.workflow.getHandle(workflowId).query('progress')) as SweepProgress;
        const d = await client.workflow.getHandle(workflowId).describe();
        const now = Date.now();
        const n = p.done + p.reused + p.failed;
        maxSeenInFlight = Math.max(maxSeenInFlight, p.inFlight);
        history.push({ run: p.run, historyLength: d.historyLength });
        log(
          `${p.phase} ${n}/${p.total} (done ${p.done}, reused ${p.reused}, failed ${p.failed}) in flight ${p.inFlight}; ` +
            `${fmt(n / ((now - t0) / 1000), 2)} cells/s overall, ${fmt((n - last.n) / ((now - last.t) / 1000), 2)} cells/s now; ` +
            `run ${p.run}, its history ${d.historyLength} events; elapsed ${hms(now - t0)}` +
            (n > 0 && p.total > n ? `, eta ${hms(((p.total - n) * (now - t0)) / n)}` : ''),
        );
        last = { t: now, n };
      } catch (err) {
        queryErrors++;
        log(`progress query failed (${(err as Error).message.split('\n')[0]}); between runs?`);
      }
    }
    if (interrupted) {
      finished = false; // so the cleanup terminates the sweep
      return 130;
    }
    let r: SweepResult;
    try {
      r = await result;
    } catch (err) {
      log(`sweep FAILED: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` <- ${(err as { cause?: Error }).cause!.message}` : ''}`);
      return 1;
    }
    const wallMs = Date.now() - t0;

    // Every run of the continue-as-new chain, walked back from the last one (each run's first event names its predecessor).
    const runs: { runId: string; historyLength: number; historySizeBytes?: number; status: string }[] = [];
    const lastDesc = await client.workflow.getHandle(workflowId).describe();
    let runId: string | undefined = lastDesc.runId;
    while (runId) {
      const h = client.workflow.getHandle(workflowId, runId);
      let d;
      try {
        d = await h.describe();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) break;
        throw err;
      }
      runs.unshift({ runId, historyLength: d.historyLength, historySizeBytes: d.historySize, status: d.status.name });
      const first: { history?: { events?: { workflowExecutionStartedEventAttributes?: { continuedExecutionRunId?: string | null } | null }[] | null } | null } = await client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId, runId },
        maximumPageSize: 1,
      });
      const prev: string | null | undefined = first.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
      runId = prev || undefined;
    }
    const lengths = runs.map((x) => x.historyLength);
    const maxHistory = Math.max(...lengths);
    const maxBytes = Math.max(...runs.map((x) => x.historySizeBytes ?? 0));

    // The database: one row per cell, each exactly once, none failed.
    const [row] = await queryRows<{ rows: string; keys: string; failed: string; done: string; reused: string }>(
      db,
      `select count(*) as rows, count(distinct cell_key) as keys,
              count(*) filter (where status = 'failed') as failed,
              count(*) filter (where status = 'done') as done,
              count(*) filter (where reused) as reused
       from cell_results where sweep = '${sweepName}'`,
    );
    const [cellsRow] = await queryRows<{ n: string; max_attempts: string | null; min_acc: string | null; max_acc: string | null }>(
      db,
      `select count(*) as n, max(attempts) as max_attempts, min(accuracy) as min_acc, max(accuracy) as max_acc from cells`,
    );
    const rowsN = Number(row.rows);
    const keysN = Number(row.keys);
    const failedRows = Number(row.failed);
    const errors = failedRows > 0
      ? await queryRows<{ error: string; n: string }>(db, `select error, count(*) as n from cell_results where sweep = '${sweepName}' and status = 'failed' group by error order by n desc limit 5`)
      : [];

    const checks: [string, boolean][] = [
      [`workflow result total == N (${r.total})`, r.total === N],
      [`done + reused + failed == N (${r.done} + ${r.reused} + ${r.failed})`, r.done + r.reused + r.failed === N],
      [`failures == 0 (workflow ${r.failed}, rows ${failedRows})`, r.failed === 0 && failedRows === 0],
      [`cell_results rows == N (${rowsN})`, rowsN === N],
      [`each cell exactly once (${keysN} distinct keys)`, keysN === N],
      [`cells table == N (${cellsRow.n})`, Number(cellsRow.n) === N],
      [`runs found in the chain == result.runs (${runs.length} vs ${r.runs})`, runs.length === r.runs],
      [`in flight never above maxInFlight (max seen ${maxSeenInFlight})`, maxSeenInFlight <= MAX_IN_FLIGHT],
    ];
    ok = checks.every(([, pass]) => pass);

    console.log('');
    console.log(`== sweep scale: ${N} cells ==`);
    console.log(`wall time           ${hms(wallMs)} (${fmt(wallMs / 1000)} s)`);
    console.log(`throughput          ${fmt(N / (wallMs / 1000), 2)} cells/s (${WORKERS} worker(s) x concurrency ${CONCURRENCY}, maxInFlight ${MAX_IN_FLIGHT})`);
    console.log(`workflow result     ${JSON.stringify(r)}`);
    console.log(`workflow runs       ${runs.length} (continue-as-new ${runs.length - 1} times, every ${cansAfter} cells)`);
    console.log(`history per run     max ${maxHistory} events (${fmt(maxBytes / 1024)} KiB), mean ${fmt(lengths.reduce((a, b) => a + b, 0) / lengths.length)}, last ${lengths[lengths.length - 1]}`);
    console.log(`                    ${lengths.join(' ')}`);
    console.log(`cell_results        ${rowsN} rows, ${keysN} distinct cells, done ${row.done}, reused ${row.reused}, failed ${failedRows}`);
    console.log(`cells table         ${cellsRow.n} cells, max attempts ${cellsRow.max_attempts}, accuracy ${cellsRow.min_acc}..${cellsRow.max_acc}`);
    console.log(`progress queries    ${queryErrors} failed (of ${history.length + queryErrors})`);
    for (const e of errors) console.log(`  failed x${e.n}: ${e.error}`);
    for (const [label, pass] of checks) console.log(`${pass ? 'ok  ' : 'FAIL'}  ${label}`);
    console.log(
      `BENCH ${JSON.stringify({ cells: N, wallSeconds: Math.round(wallMs / 100) / 10, cellsPerSecond: Number(fmt(N / (wallMs / 1000), 3)), runs: runs.length, maxHistoryEvents: maxHistory, rows: rowsN, distinctCells: keysN, failures: r.failed, ok })}`,
    );
    return ok ? 0 : 1;
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch((err) => console.error('cleanup:', (err as Error).message));
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
