/**
 * bench/grid.ts --sweep: the grid as a real sweep (the `sweep` workflow on the Temporal server of
 * TEMPORAL_ADDRESS, a fresh database on the Postgres server of DATABASE_URL, dropped afterwards, and an
 * in-process worker as `npm run worker` makes it: one cell evaluated at a time, ICL_SWEEP_PREFETCH more
 * taken), with the engine's calls timed, so the Temporal and database share of the wall time is the
 * time the engine was not working: wall time minus the time any engine call was running (the union of
 * the calls' spans, so calls that overlap are not counted twice), over wall time. Also prints where the
 * time before the first evaluation and after the last one goes (bench/sweep-timeline.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { connectTemporal } from '../cli/client.ts';
import { BusyClock } from '../engine/model/edits.ts';
import { createThreadedEngine } from '../engine/thread.ts';
import type { CellOutcome, CellRequest, Engine, EvaluateOptions } from '../engine/types.ts';
import type { ModuleName } from '../engine/vocabulary.ts';
import { workerConfigFromEnv } from '../worker/config.ts';
import { createSweepWorker } from '../worker/create.ts';
import type { SweepResult } from '../workflows/sweep.ts';
import type { GridCell } from './grid.ts';
import type { GridEngineOptions, OutcomeWithStats } from './grid-engine.ts';
import { startAndFinish, sweepTimeline } from './sweep-timeline.ts';
import { createTestDatabase } from '../test/support/database.ts';

interface SweepBench {
  engineOpts: GridEngineOptions;
  engineVersion: string;
  modelDir: string;
  grid: { module: ModuleName; layer: number; ratio: number }[];
  opts: Record<string, string | boolean | undefined>;
}

interface TimedEngine extends Engine {
  /** Seconds during which at least one engine call was running. */
  busy: number;
  /** Date.now() of the first evaluation's start and the last one's end. */
  firstEvaluation: number;
  lastEvaluation: number;
}

/** The engine with every call timed (`busy`: the union of the calls' spans); each evaluated cell is recorded. */
function timedEngine(engine: Engine, cells: GridCell[]): TimedEngine {
  const clock = new BusyClock();
  const timed = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => (...a: A): Promise<R> => clock.time(() => fn(...a));
  const wrapped = {
    get busy() {
      return clock.seconds;
    },
    firstEvaluation: 0,
    lastEvaluation: 0,
    describeModel: timed(engine.describeModel.bind(engine)),
    describeDataset: timed(engine.describeDataset.bind(engine)),
    checkCells: timed(engine.checkCells.bind(engine)),
    close: engine.close.bind(engine),
    evaluate: timed(async (request: CellRequest, options?: EvaluateOptions): Promise<CellOutcome> => {
      wrapped.firstEvaluation ||= Date.now();
      try {
        const { stats, ...outcome } = (await engine.evaluate(request, options)) as OutcomeWithStats;
        cells.push({ module: request.module, layer: request.layer, ratio: request.ratio, outcome, stats });
        return outcome;
      } finally {
        wrapped.lastEvaluation = Date.now();
      }
    }),
  };
  return wrapped;
}

export async function runSweep(b: SweepBench): Promise<{ cells: GridCell[]; wall: number; extra: Record<string, number | string> }> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const stamp = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const name = `bench-grid-${stamp}`;
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    const { db, url: dbUrl, drop } = await createTestDatabase({ prefix: 'icl_bench_grid' });
    cleanup.push(drop);
    const { client, close } = await connectTemporal();
    cleanup.push(close);

    const cells: GridCell[] = [];
    // on the engine thread, as a worker's engine runs
    const engine = timedEngine(createThreadedEngine(b.engineOpts, new URL('./grid-engine.ts', import.meta.url)), cells);
    cleanup.push(() => engine.close());
    const base = workerConfigFromEnv();
    const cacheDir = mkdtempSync(join(tmpdir(), 'bench-grid-sweep-'));
    cleanup.push(async () => rmSync(cacheDir, { recursive: true, force: true }));
    const worker = await createSweepWorker(
      { ...base, databaseUrl: dbUrl, taskQueue: name, concurrency: 1, metricsPort: undefined, cacheDir, shutdownGraceSeconds: 5, workerName: name },
      { engine, engineVersion: b.engineVersion, db },
    );
    const running = worker.run();
    cleanup.push(async () => {
      worker.shutdown();
      await running.catch(() => {});
    });

    const layers = [...new Set(b.grid.filter((c) => c.ratio > 0).map((c) => c.layer))];
    const ratios = String(b.opts.ratios).split(',').map(Number);
    const perClass = Number(b.opts['per-class']);
    const spec = {
      name,
      models: [{ name: 'model', path: b.modelDir }],
      datasets: [{ name: 'data', recipe: b.opts.recipe }],
      modules: [b.grid[0].module],
      layers,
      ratios,
      shots: Number(b.opts.shots),
      sizes: { validationPerClass: perClass, testPerClass: perClass },
      split: b.opts.split,
    };
    const calledAt = Date.now();
    const t0 = performance.now();
    const handle = await client.workflow.start('sweep', { taskQueue: name, workflowId: name, args: [spec] });
    const result = (await handle.result()) as SweepResult;
    const wall = (performance.now() - t0) / 1000;
    if (result.failed > 0 || cells.length !== b.grid.length) throw new Error(`sweep ${name}: ${JSON.stringify(result)}, ${cells.length} cells evaluated of ${b.grid.length}`);
    const cellSeconds = cells.reduce((a, c) => a + c.outcome.cost.seconds, 0);
    const marks = { calledAt, resultAt: calledAt + wall * 1000, firstEvaluation: engine.firstEvaluation, lastEvaluation: engine.lastEvaluation };
    console.log(`prefetch ${base.prefetch}; before the first evaluation and after the last (s from the start call):`);
    for (const [what, seconds] of sweepTimeline(await handle.fetchHistory(), marks)) console.log(`  ${seconds.toFixed(3).padStart(8)}  ${what}`);
    const { startSeconds, finishSeconds } = startAndFinish(marks);
    return {
      cells,
      wall,
      extra: {
        sweepWallSeconds: Number(wall.toFixed(1)),
        sweepCellsPerHour: Math.round((3600 * cells.length) / wall),
        engineSeconds: Number(engine.busy.toFixed(1)),
        engineSecondsInCells: Number(cellSeconds.toFixed(1)),
        secondsBeforeFirstEvaluation: Number(startSeconds.toFixed(2)),
        secondsAfterLastEvaluation: Number(finishSeconds.toFixed(2)),
        prefetch: base.prefetch,
        // what the engine did not spend: workflow tasks, activity dispatch, database writes and reads
        temporalAndDatabaseShare: Number(((wall - engine.busy) / wall).toFixed(3)),
      },
    };
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch((err) => console.error('cleanup:', (err as Error).message));
  }
}
