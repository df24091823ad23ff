/**
 * The sliding window over a phase's cells: look cells up a batch at a time (skipping those already
 * stored), keep up to maxInFlight cell workflows running, count their reports, and hand over to the
 * next run (continue-as-new) without waiting for the cells in flight: they keep running and report
 * to the next run. Deterministic; its state is the explicit SweepState.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { CancellationScope, ParentClosePolicy, condition, isCancellation, startChild, workflowInfo } from '@temporalio/workflow';
import type { CellRequest } from '../engine/types.ts';
import { datasetRequest, type SweepSpec } from '../sweepspec/schema.ts';
import { cellIdentity, type Cell } from '../sweepspec/cells.ts';
import { light } from './activities.ts';
import { cellWorkflowId, sweepCell, type SweepCellInput } from './cell.ts';
import { finishedCount, inFlightCount, recordOutcome, type CellReport, type SweepPhase, type SweepState } from './state.ts';
import type { RecordProgressInput } from '../activities/types.ts';

/** At most this many cells looked up per activity, and in flight per sweep. */
const LOOKUP_BATCH = 200;
const MAX_IN_FLIGHT = 200;
/** The database's record of the sweep's progress is refreshed at most this often while cells finish. */
const PROGRESS_EVERY_MS = 10_000;

/** A phase's cells by index: the grid (sweepspec/grid.ts) or the test cells of the selection. */
export interface CellSource {
  size: number;
  cells(from: number, count: number): Cell[];
}

/** One workflow run of a sweep: its state and what only this run needs. */
export interface SweepRun {
  name: string;
  /** Set once the input is validated. */
  spec?: SweepSpec;
  phase: SweepPhase;
  /** Cells planned so far (grid, plus test cells in the test phase). */
  total: number;
  state?: SweepState;
  /** Bumped by every counted cell report; the window waits on it. */
  reports: number;
  /** Cells started or found stored in this run (the continue-as-new budget). */
  processed: number;
  /** Workflow time of the last progress record, and what it said. */
  recorded: { at: number; finished: number };
}

/** This run has done its share (or the server suggests a new run): hand over. */
function shouldHandOver(run: SweepRun, spec: SweepSpec): boolean {
  return run.processed >= spec.continueAsNewAfter || workflowInfo().continueAsNewSuggested;
}

/** Runs the phase's cells until all have reported ('finished') or this run should hand over ('continue'). */
export async function runWindow(run: SweepRun, spec: SweepSpec, source: CellSource): Promise<'finished' | 'continue'> {
  const state = run.state!;
  const size = Math.min(spec.maxInFlight, MAX_IN_FLIGHT);
  const looked = new Map<number, Cell>();
  for (;;) {
    // Reports that arrive while this pass awaits count as news for its wait.
    const seen = run.reports;
    if (shouldHandOver(run, spec)) return 'continue';
    await lookUp(run, spec, source, size, looked);
    await startCells(run, spec, source, size, looked);
    if (inFlightCount(state) === 0 && state.queue.length === 0 && state.cursor >= source.size) return 'finished';
    await recordProgress(run, 'running');
    if (shouldHandOver(run, spec)) return 'continue';
    await condition(() => run.reports !== seen);
  }
}

/** Fills the queue of cells to start, a batch of lookups at a time, skipping (and counting) stored cells. */
async function lookUp(run: SweepRun, spec: SweepSpec, source: CellSource, size: number, looked: Map<number, Cell>): Promise<void> {
  const state = run.state!;
  const batch = Math.max(1, Math.min(LOOKUP_BATCH, spec.continueAsNewAfter));
  while (state.queue.length < size && state.cursor < source.size && !shouldHandOver(run, spec)) {
    const from = state.cursor;
    const cells = source.cells(from, batch);
    const stored = new Set(await light.linkCells({ sweep: run.name, cells }));
    state.cursor = from + cells.length;
    cells.forEach((cell, j) => {
      if (stored.has(cell.key)) return;
      state.queue.push(from + j);
      looked.set(from + j, cell);
    });
    state.counts.reused += stored.size;
    run.processed += stored.size;
  }
}

/** Starts cell workflows until the window is full; returns once the server has them all. */
async function startCells(run: SweepRun, spec: SweepSpec, source: CellSource, size: number, looked: Map<number, Cell>): Promise<void> {
  const state = run.state!;
  const starts: Promise<void>[] = [];
  while (inFlightCount(state) < size && state.queue.length > 0 && !shouldHandOver(run, spec)) {
    const index = state.queue.shift()!;
    const cell = looked.get(index) ?? source.cells(index, 1)[0];
    looked.delete(index);
    state.inFlight[cell.key] = index;
    run.processed++;
    starts.push(startCell(run, spec, cell));
  }
  await Promise.all(starts);
}

async function startCell(run: SweepRun, spec: SweepSpec, cell: Cell): Promise<void> {
  const { workflowId, taskQueue } = workflowInfo();
  try {
    // Outside this run's cancellation: the sweep cancels its cells itself (closeOnError), the same way in
    // every run, and their ends must keep counting while it waits for them.
    await CancellationScope.nonCancellable(async () => {
      const child = await startChild(sweepCell, {
        workflowId: cellWorkflowId(workflowId, cell.key),
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [cellInput(run, spec, cell, workflowId, taskQueue)],
      });
      // Within this run the child's end also counts as its report (the signal, or this, whichever comes first).
      child.result().then(
        (outcome) => reported(run, { key: cell.key, outcome }),
        (err) => reported(run, { key: cell.key, outcome: isCancellation(err) ? 'cancelled' : 'failed' }),
      );
    });
  } catch (err) {
    // Still running from an earlier execution under this workflow id: it reports here all the same.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

/** Counts a cell's report once (from its signal, or its end seen by the run that started it). */
export function reported(run: SweepRun, report: CellReport): void {
  if (run.state && recordOutcome(run.state, report)) run.reports++;
}

function cellInput(run: SweepRun, spec: SweepSpec, cell: Cell, sweepWorkflowId: string, sweepTaskQueue: string): SweepCellInput {
  const { prepared } = run.state!;
  const model = prepared.models.find((m) => m.name === cell.model)!;
  const dataset = prepared.datasets.find((d) => d.name === cell.dataset)!;
  const id = cellIdentity(spec, prepared.engineVersion, model, dataset, cell);
  return {
    sweep: run.name,
    cell,
    request: requestFor(spec, cell),
    identity: {
      engineVersion: id.engineVersion,
      modelFingerprint: id.modelFingerprint,
      datasetFingerprint: id.datasetFingerprint,
      shots: id.shots,
      seed: id.seed,
      executionProvider: id.executionProvider,
      params: { sizes: id.sizes, scoring: id.scoring, ...(id.protocol ? { protocol: id.protocol } : {}) },
    },
    sweepWorkflowId,
    sweepTaskQueue,
    policy: { executionProvider: spec.executionProvider, heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds, cellAttempts: spec.cellAttempts },
  };
}

/** What the engine is asked to evaluate for a cell. */
export function requestFor(spec: SweepSpec, cell: Cell): CellRequest {
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
    seed: cell.seed ?? spec.seed,
    sizes: spec.sizes,
    scoring: spec.scoring,
  };
}

/**
 * Records the sweep's own count in the database for the progress gauges: at most every
 * PROGRESS_EVERY_MS while running and something changed; always for an end (`force`).
 */
export async function recordProgress(run: SweepRun, status: RecordProgressInput['status'], force = false): Promise<void> {
  if (!run.state) return;
  const finished = finishedCount(run.state.counts);
  const now = Date.now();
  if (!force && (finished === run.recorded.finished || now - run.recorded.at < PROGRESS_EVERY_MS)) return;
  await light.recordProgress({ sweep: run.name, planned: run.total, finished, status });
  run.recorded = { at: now, finished };
}
