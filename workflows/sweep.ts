/**
 * The `sweep` workflow: validate the spec, prepare (fingerprints, grid checks, the sweep's name),
 * run the grid through a sliding window of cell workflows, and with spec.selection pick the best cell
 * per (model, dataset) on validation and run the picks on test. It continues as new before its
 * history grows large, without draining the window: cells in flight report to the next run.
 *
 *   temporal workflow start --type sweep --task-queue icl-sweep --workflow-id my-sweep --input-file sweep.json
 *
 * Input: the spec exactly as a user writes it; the optional second argument is the state carried
 * across continue-as-new (never set it by hand). Deterministic: no I/O, engine or db imports here.
 * Changing this code while sweeps run: see "Changing the workflow code" in README.md (patched()).
 */
import {
  CancellationScope,
  ContinueAsNew,
  condition,
  continueAsNew,
  defineQuery,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SelectionRow } from '../activities/types.ts';
import type { SweepSpec } from '../sweepspec/schema.ts';
import { cellFinishedSignal, cellWorkflowId } from './cell.ts';
import { gridSource, prepare, saveSelections, selectOnValidation, testPlan, validate } from './phases.ts';
import { SWEEP_DATASETS, SWEEP_MODELS, SWEEP_NAME } from './search-attributes.ts';
import { enterTestPhase, inFlightCount, initialState, nextRun, type SweepProgress, type SweepResult, type SweepState } from './state.ts';
import { recordProgress, reported, runWindow, type SweepRun } from './window.ts';

export type { SweepPhase, SweepCounts, SweepProgress, SweepResult, SweepState } from './state.ts';

export const progressQuery = defineQuery<SweepProgress>('progress');

export async function sweep(input: unknown, carried?: SweepState): Promise<SweepResult> {
  const run = openRun(input, carried);
  try {
    const spec = validate(input);
    run.spec = spec;
    tagSearchAttributes(spec);
    if (!run.state) {
      run.phase = 'preparing';
      run.state = initialState(await prepare(spec, workflowInfo().workflowId));
    }
    const state = run.state;
    const grid = gridSource(spec, state.prepared);
    run.total = grid.size;
    log.info('sweep run', { sweep: run.name, run: state.run, phase: state.phase, gridCells: grid.size, cursor: state.cursor, inFlight: inFlightCount(state) });
    if (state.phase === 'grid') {
      run.phase = 'grid';
      if ((await runWindow(run, spec, grid)) === 'continue') return await carryOn(run, input);
      if (!spec.selection) return await finish(run);
      run.phase = 'selecting';
      enterTestPhase(state, await selectOnValidation(run.name, spec.selection));
      log.info('selection made', { sweep: run.name, selections: state.selections!.length });
    }
    const test = testPlan(spec, state.prepared, state.selections ?? []);
    run.phase = 'test';
    run.total = grid.size + test.source.size;
    if ((await runWindow(run, spec, test.source)) === 'continue') return await carryOn(run, input);
    run.phase = 'saving';
    await saveSelections(run.name, test.rows);
    return await finish(run, test.rows);
  } catch (err) {
    if (!(err instanceof ContinueAsNew)) await closeOnError(run, err);
    throw err;
  }
}

/** The run's state, the `progress` query and the cells' reports, registered before anything awaits. */
function openRun(input: unknown, carried: SweepState | undefined): SweepRun {
  const name = (input as { name?: unknown } | null)?.name;
  const run: SweepRun = {
    name: typeof name === 'string' ? name : '',
    phase: 'validating',
    total: 0,
    state: carried,
    reports: 0,
    processed: 0,
    recorded: { at: 0, finished: -1 },
  };
  setHandler(progressQuery, () => progressOf(run));
  setHandler(cellFinishedSignal, (report) => reported(run, report));
  return run;
}

function progressOf(run: SweepRun): SweepProgress {
  const counts = run.state?.counts ?? { done: 0, reused: 0, failed: 0 };
  return { sweep: run.name, phase: run.phase, total: run.total, ...counts, inFlight: run.state ? inFlightCount(run.state) : 0, run: run.state?.run ?? 1 };
}

/** The sweep's name, models and datasets as search attributes (every run, so a reset or a new run keeps them). */
function tagSearchAttributes(spec: SweepSpec): void {
  upsertSearchAttributes([
    { key: SWEEP_NAME, value: spec.name },
    { key: SWEEP_MODELS, value: spec.models.map((m) => m.name) },
    { key: SWEEP_DATASETS, value: spec.datasets.map((d) => d.name) },
  ]);
}

/** Hands over to a new run at once; the cells in flight keep running and report to it. */
async function carryOn(run: SweepRun, input: unknown): Promise<never> {
  const state = run.state!;
  log.info('continuing as new', { sweep: run.name, run: state.run, inFlight: inFlightCount(state), queued: state.queue.length, cursor: state.cursor });
  // Same input as the user gave it, so a reset or a describe shows the spec they wrote.
  return continueAsNew<typeof sweep>(input, nextRun(state));
}

async function finish(run: SweepRun, selections?: SelectionRow[]): Promise<SweepResult> {
  const state = run.state!;
  run.phase = 'done';
  await recordProgress(run, 'completed', true);
  log.info('sweep completed', { sweep: run.name, runs: state.run, total: run.total, ...state.counts });
  return { sweep: run.name, total: run.total, runs: state.run, ...state.counts, ...(selections ? { selections } : {}) };
}

/**
 * Cancelled: cancel the cells in flight (their workflows outlive this one otherwise), wait for them to
 * stop, record the end. Everything stored stays stored. Failed: record the end.
 */
async function closeOnError(run: SweepRun, err: unknown): Promise<void> {
  const state = run.state;
  if (!isCancellation(err)) {
    log.warn('sweep failed', { sweep: run.name, error: String(err) });
    await CancellationScope.nonCancellable(() => recordProgress(run, 'failed', true)).catch(() => {});
    return;
  }
  run.phase = 'cancelled';
  log.info('sweep cancelled', { sweep: run.name, inFlight: state ? inFlightCount(state) : 0 });
  if (!state) return;
  await CancellationScope.nonCancellable(async () => {
    const { workflowId } = workflowInfo();
    await Promise.all(Object.keys(state.inFlight).map((key) => getExternalWorkflowHandle(cellWorkflowId(workflowId, key)).cancel().catch(() => {})));
    // A cell whose worker is gone learns of it only at its heartbeat timeout.
    const grace = 3 * (run.spec?.heartbeatTimeoutSeconds ?? 60) + 30;
    await condition(() => inFlightCount(state) === 0, `${grace} seconds`);
    await recordProgress(run, 'cancelled', true);
  });
}
