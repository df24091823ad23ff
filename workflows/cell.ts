/**
 * `sweepCell`: one cell as a child workflow of its sweep. It evaluates the cell (retrying transient
 * faults), records a failure when the attempts run out, and reports how it ended by signalling the
 * sweep's workflow id, which reaches whichever run of the sweep is current. Started with the ABANDON
 * parent close policy, a cell keeps running while its sweep continues as new: the window never drains
 * (the model of Temporal's batch sliding-window sample).
 */
import { RetryState } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, CancellationScope, defineSignal, getExternalWorkflowHandle, isCancellation, log } from '@temporalio/workflow';
import type { CellFailureDetails, EvaluateCellInput } from '../activities/types.ts';
import type { SweepSpec } from '../sweepspec/schema.ts';
import { cellEvaluation, light } from './activities.ts';
import type { CellOutcome, CellReport } from './state.ts';

/** Sent by each cell to its sweep when it ends. */
export const cellFinishedSignal = defineSignal<[CellReport]>('cellFinished');

export interface SweepCellInput extends EvaluateCellInput {
  /** The sweep's workflow id (not a run id: the report goes to the current run). */
  sweepWorkflowId: string;
  /** The sweep's task queue; the evaluation goes to its cells queue for the provider. */
  sweepTaskQueue: string;
  policy: Pick<SweepSpec, 'executionProvider' | 'heartbeatTimeoutSeconds' | 'cellAttempts'>;
}

/** The child workflow id of a cell: one per (sweep execution, cell). */
export function cellWorkflowId(sweepWorkflowId: string, key: string): string {
  return `${sweepWorkflowId}/cell/${key}`;
}

export async function sweepCell(input: SweepCellInput): Promise<CellOutcome> {
  let outcome: CellOutcome = 'failed';
  try {
    outcome = await evaluate(input);
    return outcome;
  } catch (err) {
    outcome = isCancellation(err) ? 'cancelled' : 'failed';
    throw err;
  } finally {
    // Whatever happened, the sweep hears of it: a cell that never reports would hold its window slot forever.
    await CancellationScope.nonCancellable(() => report(input.sweepWorkflowId, { key: input.cell.key, outcome }));
  }
}

/** The cell's evaluation; when its attempts run out, its failure is recorded. */
async function evaluate(input: SweepCellInput): Promise<CellOutcome> {
  const { sweepWorkflowId: _, sweepTaskQueue, policy, ...evaluation } = input;
  try {
    return (await cellEvaluation(policy, sweepTaskQueue).evaluateCell(evaluation)).status;
  } catch (err) {
    if (isCancellation(err)) throw err;
    await light.recordCellFailure({ sweep: input.sweep, cell: input.cell, identity: input.identity, error: describeFailure(err), ...failedAttempt(err, policy.cellAttempts) });
    return 'failed';
  }
}

async function report(sweepWorkflowId: string, cellReport: CellReport): Promise<void> {
  try {
    await getExternalWorkflowHandle(sweepWorkflowId).signal(cellFinishedSignal, cellReport);
  } catch (err) {
    // The sweep is gone (terminated, or failed): the cell's row is what remains.
    log.warn('could not report the cell to its sweep', { sweepWorkflowId, key: cellReport.key, error: String(err) });
  }
}

/** The attempt that failed last: the activity says so for bad input; used up retries mean the last one. */
function failedAttempt(err: unknown, attempts: number): { attempt?: number } {
  if (!(err instanceof ActivityFailure)) return {};
  const details = err.cause instanceof ApplicationFailure ? (err.cause.details?.[0] as CellFailureDetails | undefined) : undefined;
  if (typeof details?.attempt === 'number') return { attempt: details.attempt };
  return err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED ? { attempt: attempts } : {};
}

/** The innermost causes with a message: "EngineInputError: ... <- ...", not "Activity task failed". */
function describeFailure(err: unknown): string {
  let e = err as { message?: string; cause?: unknown; type?: string } | undefined;
  const parts: string[] = [];
  while (e) {
    if (e.message) parts.push(e.type ? `${e.type}: ${e.message}` : e.message);
    e = e.cause as typeof e;
  }
  const inner = parts.filter((p) => !p.startsWith('Activity task failed'));
  return (inner.length ? inner : parts).join(' <- ') || String(err);
}
