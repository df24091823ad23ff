/**
 * The `sweep` workflow: validate the spec, prepare (fingerprints, layer counts), expand the grid,
 * skip cells already stored, evaluate the rest through a sliding window of activities, record
 * failures and go on, continue-as-new before the history grows large, and (with spec.selection)
 * the paper's selection step.
 *
 *   temporal workflow start --type sweep --task-queue icl-sweep --workflow-id my-sweep --input-file sweep.json
 *
 * Input: the spec exactly as a user writes it; the optional second argument is the state carried
 * across continue-as-new (never set it by hand). Deterministic: no I/O, engine or db imports here.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { checkSpec, datasetRequest, type SweepSpec } from '../sweepspec/schema.ts';
import { baselineCell, cellIdentity, expandCells, makeCell, type Cell, type PreparedSweep, type Split } from '../sweepspec/cells.ts';
import type { CellActivities, SelectionRow, SweepActivities } from '../activities/types.ts';
import type { CellRequest } from '../engine/types.ts';
import type { Selection } from '../analysis/selection.ts';
import { cellsTaskQueue } from './queues.ts';

/** At most this many cells looked up per activity, and activities pending per run. */
export const LOOKUP_BATCH = 200;
export const MAX_PENDING_CELLS = 200;

export type SweepPhase = 'validating' | 'preparing' | 'grid' | 'selecting' | 'test' | 'saving' | 'done' | 'cancelled';

export interface SweepCounts {
  /** Computed by this sweep. */
  done: number;
  /** Found already stored (by an earlier run or another sweep). */
  reused: number;
  /** Recorded as failed, with their error. */
  failed: number;
}

export interface SweepProgress extends SweepCounts {
  sweep: string;
  phase: SweepPhase;
  /** Cells known so far (grid; plus the test cells once the selection is made). */
  total: number;
  inFlight: number;
  /** Workflow runs so far (1 + continue-as-new count). */
  run: number;
}

export interface SweepResult extends SweepCounts {
  sweep: string;
  total: number;
  runs: number;
  selections?: SelectionRow[];
}

/** Carried across continue-as-new. */
export interface SweepState {
  phase: 'grid' | 'test';
  /** Next cell index (in the phase's cell list) not yet looked up. */
  cursor: number;
  /** Indices looked up (not done) but not started yet. */
  pending: number[];
  counts: SweepCounts;
  prepared: PreparedSweep;
  gridTotal: number;
  selections?: Selection[];
  run: number;
}

export const progressQuery = defineQuery<SweepProgress>('progress');

const lightRetry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20, nonRetryableErrorTypes: ['InvalidSpec'] };
/** Database work on the sweep's task queue (transient faults, e.g. Postgres restarting, are retried). */
const light = proxyActivities<SweepActivities>({ startToCloseTimeout: '10 minutes', retry: lightRetry });

function describeFailure(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; type?: string; name?: string } | undefined;
  // ActivityFailure -> ApplicationFailure / TimeoutFailure: report the innermost cause with a message.
  const parts: string[] = [];
  while (e) {
    if (e.message) parts.push(e.type ? `${e.type}: ${e.message}` : e.message);
    e = e.cause as typeof e;
  }
  const inner = parts.filter((p) => !p.startsWith('Activity task failed'));
  return (inner.length ? inner : parts).join(' <- ') || String(err);
}

function requestFor(spec: SweepSpec, cell: Cell): CellRequest {
  const model = spec.models.find((m) => m.name === cell.model)!;
  const dataset = spec.datasets.find((d) => d.name === cell.dataset)!;
  const module = cell.module;
  const baseline = module === 'none';
  return {
    model,
    dataset: datasetRequest(spec, dataset),
    // The unpruned model: ratio 0 leaves every weight untouched whatever the module; "all" exists in every family.
    module: module === 'none' ? 'all' : module,
    layer: baseline ? -1 : cell.layer,
    ratio: cell.ratio,
    split: cell.split,
    shots: spec.shots,
    seed: spec.seed,
    sizes: spec.sizes,
    scoring: spec.scoring,
  };
}

export async function sweep(input: unknown, carried?: SweepState): Promise<SweepResult> {
  const progress: SweepProgress = {
    sweep: typeof (input as { name?: unknown })?.name === 'string' ? (input as { name: string }).name : '',
    phase: 'validating',
    total: 0,
    done: carried?.counts.done ?? 0,
    reused: carried?.counts.reused ?? 0,
    failed: carried?.counts.failed ?? 0,
    inFlight: 0,
    run: carried?.run ?? 1,
  };
  setHandler(progressQuery, () => ({ ...progress }));

  const check = checkSpec(input);
  if (!check.ok) {
    throw ApplicationFailure.create({
      type: 'InvalidSpec',
      nonRetryable: true,
      message: `invalid sweep spec (${check.problems.length} problem${check.problems.length === 1 ? '' : 's'}):\n${check.problems.map((p) => `  - ${p}`).join('\n')}`,
      details: [check.problems],
    });
  }
  const spec = check.spec;
  const name = spec.name;
  const info = workflowInfo();

  const cellActs = proxyActivities<CellActivities>({
    taskQueue: cellsTaskQueue(info.taskQueue),
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: `${spec.heartbeatTimeoutSeconds} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: spec.cellAttempts,
      nonRetryableErrorTypes: ['EngineInputError'],
    },
  });

  // Preparing reads the model and dataset files, so it runs where the cells do (the workers that mount
  // them). Fingerprinting reads every model file once (the engine caches it): allow for very large models.
  const preparation = proxyActivities<Pick<CellActivities, 'prepareSweep'>>({
    taskQueue: cellsTaskQueue(info.taskQueue),
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${spec.heartbeatTimeoutSeconds} seconds`,
    retry: lightRetry,
  });

  let prepared: PreparedSweep;
  if (carried) {
    prepared = carried.prepared;
  } else {
    progress.phase = 'preparing';
    try {
      prepared = await preparation.prepareSweep({ spec, workflowId: info.workflowId });
    } catch (err) {
      // Fail with the activity's own readable message (every problem by field), not "Activity task failed".
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === 'InvalidSpec') {
        throw ApplicationFailure.create({ type: 'InvalidSpec', nonRetryable: true, message: cause.message, details: cause.details ?? [] });
      }
      throw err;
    }
  }
  const state: SweepState = carried ?? {
    phase: 'grid',
    cursor: 0,
    pending: [],
    counts: { done: 0, reused: 0, failed: 0 },
    prepared,
    gridTotal: 0,
    run: 1,
  };
  const counts = state.counts;
  const syncProgress = () => Object.assign(progress, counts);

  const gridSplit: Split = spec.selection ? 'validation' : spec.split;
  const grid = expandCells(spec, prepared, gridSplit);
  state.gridTotal = grid.length;
  progress.total = grid.length;

  let inFlight = 0;
  let processedThisRun = 0;
  let changes = 0;
  const window = Math.min(spec.maxInFlight, MAX_PENDING_CELLS);
  const batchSize = Math.max(1, Math.min(LOOKUP_BATCH, spec.continueAsNewAfter));
  const shouldContinueAsNew = () => processedThisRun >= spec.continueAsNewAfter || workflowInfo().continueAsNewSuggested;

  /** Evaluates `cells` from state.cursor / state.pending on; 'continue' when this run should continue as new. */
  async function runCells(cells: Cell[], totalBefore: number): Promise<'finished' | 'continue'> {
    const queue = [...state.pending];
    state.pending = [];
    let failure: unknown;

    const start = (index: number) => {
      const cell = cells[index];
      const id = cellIdentity(spec, prepared.engineVersion, prepared.models.find((m) => m.name === cell.model)!, prepared.datasets.find((d) => d.name === cell.dataset)!, cell);
      const identity = {
        engineVersion: id.engineVersion,
        modelFingerprint: id.modelFingerprint,
        datasetFingerprint: id.datasetFingerprint,
        shots: id.shots,
        seed: id.seed,
        params: { sizes: id.sizes, scoring: id.scoring, ...(id.protocol ? { protocol: id.protocol } : {}) },
      };
      inFlight++;
      progress.inFlight = inFlight;
      cellActs
        .evaluateCell({ sweep: name, cell, request: requestFor(spec, cell), identity })
        .then(
          (r) => {
            if (r.status === 'reused') counts.reused++;
            else counts.done++;
          },
          async (err) => {
            if (isCancellation(err)) throw err;
            await light.recordCellFailure({ sweep: name, cell, identity, error: describeFailure(err) });
            counts.failed++;
          },
        )
        .catch((err) => {
          failure ??= err;
        })
        .finally(() => {
          inFlight--;
          progress.inFlight = inFlight;
          processedThisRun++;
          changes++;
          syncProgress();
        });
    };

    for (;;) {
      if (failure !== undefined) throw failure;
      if (!shouldContinueAsNew()) {
        while (queue.length < window && state.cursor < cells.length && !shouldContinueAsNew()) {
          const from = state.cursor;
          const batch = cells.slice(from, from + batchSize);
          const done = new Set(
            await light.linkCells({ sweep: name, cells: batch, total: totalBefore + cells.length, finished: counts.done + counts.reused + counts.failed }),
          );
          state.cursor = from + batch.length;
          counts.reused += done.size;
          processedThisRun += done.size;
          syncProgress();
          batch.forEach((cell, j) => {
            if (!done.has(cell.key)) queue.push(from + j);
          });
        }
        while (inFlight < window && queue.length > 0 && !shouldContinueAsNew()) start(queue.shift()!);
      }
      if (inFlight === 0) {
        if (queue.length === 0 && state.cursor >= cells.length) return 'finished';
        if (shouldContinueAsNew()) {
          state.pending = queue;
          return 'continue';
        }
        continue;
      }
      const seen = changes;
      await condition(() => changes !== seen || failure !== undefined);
    }
  }

  const carryOn = (): never => {
    state.run += 1;
    // Same input as the user gave it, so a reset or a describe shows the spec they wrote.
    return continueAsNew<typeof sweep>(input, state) as never;
  };

  const waitForInFlight = () => CancellationScope.nonCancellable(() => condition(() => inFlight === 0));

  try {
    if (state.phase === 'grid') {
      progress.phase = 'grid';
      if ((await runCells(grid, 0)) === 'continue') return carryOn();
      if (!spec.selection) {
        progress.phase = 'done';
        return { sweep: name, total: grid.length, runs: state.run, ...counts };
      }
      progress.phase = 'selecting';
      state.selections = await light.selectOnValidation({ sweep: name, spec, prepared });
      state.phase = 'test';
      state.cursor = 0;
      state.pending = [];
    }

    // Selection step, on test: the unpruned model and each pick (the same cell when the pick is ratio 0).
    const selections = state.selections ?? [];
    const rows: SelectionRow[] = [];
    const testCells: Cell[] = [];
    const seen = new Set<string>();
    const add = (c: Cell) => {
      if (!seen.has(c.key)) {
        seen.add(c.key);
        testCells.push(c);
      }
    };
    for (const s of selections) {
      const base = baselineCell(spec, prepared, s.model, s.dataset, 'test');
      const model = prepared.models.find((m) => m.name === s.model)!;
      const dataset = prepared.datasets.find((d) => d.name === s.dataset)!;
      const picked = makeCell(spec, prepared.engineVersion, model, dataset, { module: s.module, layer: s.layer, ratio: s.ratio, split: 'test' });
      add(base);
      add(picked);
      rows.push({ ...s, baselineCellKey: base.key, selectedCellKey: picked.key });
    }
    progress.phase = 'test';
    progress.total = grid.length + testCells.length;
    if ((await runCells(testCells, grid.length)) === 'continue') return carryOn();
    progress.phase = 'saving';
    await light.saveSelections({ sweep: name, rows });
    progress.phase = 'done';
    return { sweep: name, total: grid.length + testCells.length, runs: state.run, ...counts, selections: rows };
  } catch (err) {
    if (isCancellation(err)) {
      // Everything stored stays stored; let in-flight cells see their cancellation and stop cleanly.
      progress.phase = 'cancelled';
      await waitForInFlight();
    }
    throw err;
  }
}
