/**
 * evaluateCell: one cell on this worker's engine. Runs on the cells task queue of the worker's
 * execution provider.
 * - The worker takes up to concurrency + prefetch cells from the queue but evaluates at most
 *   `concurrency` at once (the evaluation gate, activities/gate.ts): a prefetched cell looks itself up
 *   and waits, heartbeating, while the cells before it compute, and saves its result after giving its
 *   slot to the next one. So dispatch and database work hide behind the engine's. A waiting cell is not
 *   "running" in cell_results: it is marked so when it takes a slot, the mark sent with the start of
 *   its evaluation. A waiting cell that is cancelled ends at once; one on a stopping worker is handed
 *   back at once (a retryable failure), neither touching the engine.
 * - Heartbeats { done, total } examples as the engine reports progress, and on a timer while it waits
 *   for a slot, loads a model or decomposes weights, so a killed worker's cell is retried elsewhere
 *   after the heartbeat timeout, and a cancelled sweep reaches the cell within one heartbeat.
 * - EngineInputError (bad model file, unknown module, ...) -> non-retryable ApplicationFailure
 *   with the engine's message; anything else is transient and retried by the workflow's policy.
 * - A cell already stored (by an earlier attempt or an overlapping sweep) is not recomputed; it counts
 *   as computed when an earlier attempt of this same activity stored it, else as reused. A stored
 *   result is never overwritten (a second completion with other numbers is a conflict record).
 * - The database being unreachable costs time, not the attempt: every database step waits it out
 *   (activities/outage.ts), and a finished evaluation keeps its outcome while the save is retried.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { EngineInputError, type CellOutcome } from '../engine/types.ts';
import { cellByKey, markCellRunning, markReused, saveCellFailure, saveCellResult, type CellRow, type SaveOutcome } from '../db/queries.ts';
import type { CellFailureDetails, EvaluateCellInput, EvaluateCellResult } from './types.ts';
import type { CellActivityContext } from './context.ts';
import { GateClosedError } from './gate.ts';
import { activityOutage } from './outage.ts';

/** One attempt at one cell: what its steps share. */
interface CellAttempt {
  input: EvaluateCellInput;
  actx: Context;
  labels: { sweep: string; model: string; dataset: string };
  progress: { done: number; total: number; attempt: number };
  database: ReturnType<typeof activityOutage>;
  /** This activity across its attempts (a retry keeps the run and activity id). */
  computedBy: string | undefined;
  coordinates: ReturnType<typeof coordinatesOf>;
  provenance: { worker: string; host: string; attempt: number; executionProvider: CellActivityContext['executionProvider'] };
}

export function evaluateActivities(ctx: CellActivityContext) {
  return {
    async evaluateCell(input: EvaluateCellInput): Promise<EvaluateCellResult> {
      const actx = Context.current();
      refuseMisrouted(ctx, input);
      const a = attemptOf(ctx, input, actx);
      actx.heartbeat(a.progress);
      const heartbeats = setInterval(() => actx.heartbeat(a.progress), heartbeatEveryMs(ctx, actx));
      try {
        // Stored meanwhile (an overlapping sweep, or an earlier attempt that died after saving): nothing to compute.
        const stored = await a.database('look the cell up', () => cellByKey(ctx.db, input.cell.key));
        if (stored?.status === 'done') return await alreadyStored(ctx, a, stored);
        const release = await waitForSlot(ctx, a);
        return await evaluateInSlot(ctx, a, release);
      } finally {
        clearInterval(heartbeats);
      }
    },
  };
}

function refuseMisrouted(ctx: CellActivityContext, { identity }: EvaluateCellInput): void {
  if (identity.executionProvider === ctx.executionProvider) return;
  // Routing sends a cell to its provider's queue only; a mismatch is a misconfigured worker, not the cell's fault.
  throw ApplicationFailure.retryable(`cell keyed for ${identity.executionProvider} reached worker ${ctx.workerName}, which runs ${ctx.executionProvider}`, 'WrongExecutionProvider');
}

function coordinatesOf({ cell, identity }: EvaluateCellInput) {
  return { key: cell.key, module: cell.module, layer: cell.layer, ratio: cell.ratio, split: cell.split, ...identity };
}

function attemptOf(ctx: CellActivityContext, input: EvaluateCellInput, actx: Context): CellAttempt {
  const { attempt, workflowExecution: run, activityId } = actx.info;
  const a: CellAttempt = {
    input,
    actx,
    labels: { sweep: input.sweep, model: input.cell.model, dataset: input.cell.dataset },
    progress: { done: 0, total: 0, attempt },
    database: activityOutage(ctx.outageToleranceMs, () => a.progress),
    computedBy: run ? `${run.workflowId}/${run.runId}/${activityId}` : undefined,
    coordinates: coordinatesOf(input),
    provenance: { worker: ctx.workerName, host: ctx.host, attempt, executionProvider: ctx.executionProvider },
  };
  return a;
}

function heartbeatEveryMs(ctx: CellActivityContext, actx: Context): number {
  return ctx.heartbeatEverySeconds !== undefined ? ctx.heartbeatEverySeconds * 1000 : Math.max(200, Math.min(5000, (actx.info.heartbeatTimeoutMs ?? 30_000) / 3));
}

/** Stored by an earlier attempt of this activity whose completion was lost (computed), else by another (reused). */
async function alreadyStored(ctx: CellActivityContext, a: CellAttempt, stored: CellRow): Promise<EvaluateCellResult> {
  if (a.computedBy !== undefined && stored.computedBy === a.computedBy) return { status: 'done', accuracy: stored.accuracy, n: stored.n, seconds: stored.seconds ?? 0 };
  await a.database('mark the cell reused', () => markReused(ctx.db, a.input.sweep, [a.input.cell.key]));
  ctx.metrics.cellsReused(a.labels, 1);
  return { status: 'reused', accuracy: null, n: null, seconds: 0 };
}

/** A slot of the gate; a cell turned away (its worker is stopping) or cancelled here has touched neither the engine nor its row. */
async function waitForSlot(ctx: CellActivityContext, a: CellAttempt): Promise<() => void> {
  try {
    return await ctx.gate.enter(a.actx.cancellationSignal);
  } catch (err) {
    const reason = cancelReason(a.actx);
    if (err instanceof GateClosedError || reason === 'WORKER_SHUTDOWN') {
      // Retryable, so another worker takes the cell now rather than after the grace time.
      throw ApplicationFailure.retryable(`worker ${ctx.workerName} is stopping; the cell had not started`, 'WorkerShutdown');
    }
    throw err instanceof CancelledFailure ? err : new CancelledFailure(reason ?? 'cancelled');
  }
}

function cancelReason(actx: Context): string | undefined {
  return actx.cancellationSignal.aborted ? ((actx.cancellationSignal.reason as Error | undefined)?.message ?? 'cancelled') : undefined;
}

/**
 * Holding a slot: starts the evaluation and marks the cell running at once (the mark's round trip overlaps
 * the engine's start). Should the mark find the cell done meanwhile, the engine is stopped. The slot is
 * released when the engine has stopped, before the save, so the next cell computes while this one saves.
 */
async function evaluateInSlot(ctx: CellActivityContext, a: CellAttempt, release: () => void): Promise<EvaluateCellResult> {
  const startedAt = new Date();
  const stop = new AbortController();
  const evaluation = startEvaluation(ctx, a, AbortSignal.any([a.actx.cancellationSignal, stop.signal]));
  evaluation.then(release, release);
  // Visible as "running" in cell_results; false: it became done meanwhile (a duplicate attempt).
  const marked = await a.database('mark the cell running', () => markCellRunning(ctx.db, { ...a.coordinates, ...a.provenance, startedAt })).catch((err: unknown) => {
    stop.abort(err);
    throw err;
  });
  if (!marked) {
    stop.abort(new Error('the cell was stored meanwhile'));
    const stored = await a.database('read the stored cell', () => cellByKey(ctx.db, a.input.cell.key));
    return await alreadyStored(ctx, a, stored!);
  }
  ctx.metrics.cellStarted(a.labels);
  try {
    // Cancellation wins even if the engine does not watch the signal (the slot stays held until it stops).
    const outcome = await Promise.race([evaluation, a.actx.cancelled]);
    const finishedAt = new Date();
    const saved = await saveResult(ctx, a, outcome, startedAt, finishedAt);
    const seconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
    recordCompletion(ctx, a, outcome, saved, seconds);
    return { status: saved === 'stored' ? 'done' : 'reused', accuracy: outcome.accuracy, n: outcome.n, seconds };
  } catch (err) {
    ctx.metrics.cellFailed(a.labels);
    throw await failureOf(ctx, a, err, startedAt);
  }
}

function startEvaluation(ctx: CellActivityContext, a: CellAttempt, signal: AbortSignal): Promise<CellOutcome> {
  const { actx, progress } = a;
  const evaluation = (async () =>
    ctx.engine.evaluate(a.input.request, {
      signal,
      onProgress: (done, total) => {
        a.progress = { done, total, attempt: progress.attempt };
        actx.heartbeat(a.progress);
      },
    }))();
  evaluation.catch(() => {}); // not awaited when the cell was stored meanwhile, or cancellation won
  return evaluation;
}

function saveResult(ctx: CellActivityContext, a: CellAttempt, outcome: CellOutcome, startedAt: Date, finishedAt: Date): Promise<SaveOutcome> {
  const { runtime } = outcome;
  return a.database('save the result', () =>
    saveCellResult(ctx.db, {
      ...a.coordinates,
      ...a.provenance,
      executionProvider: runtime.executionProvider,
      weightDtype: runtime.weightDtype,
      onnxruntimeVersion: runtime.onnxruntime,
      computedBy: a.computedBy,
      sweep: a.input.sweep,
      outcome,
      startedAt,
      finishedAt,
    }),
  );
}

function recordCompletion(ctx: CellActivityContext, a: CellAttempt, outcome: CellOutcome, saved: SaveOutcome, seconds: number): void {
  const { cost } = outcome;
  ctx.metrics.cellCompleted(a.labels, seconds);
  if (saved === 'conflict') ctx.metrics.cellConflict(a.labels);
  ctx.metrics.examplesEvaluated(a.labels, outcome.n);
  ctx.metrics.forwardTokens(a.labels, cost.forwardTokens, Math.max(0, cost.seconds - cost.svdSeconds));
  ctx.metrics.decomposition(cost.decompositionCacheHits, cost.decompositionCacheMisses, cost.svdSeconds);
  // Model loads reach metrics.modelLoad through the engine's onModelLoad (worker/create.ts), which also
  // sees the load describeModel does in prepareSweep; cost.modelLoadSeconds would count a cell's load twice.
}

/** What a started cell's attempt fails with: cancelled, handed back (worker stopping), bad input, or transient. */
async function failureOf(ctx: CellActivityContext, a: CellAttempt, err: unknown, startedAt: Date): Promise<unknown> {
  const reason = cancelReason(a.actx);
  if (reason !== undefined) {
    if (reason === 'WORKER_SHUTDOWN') {
      // This worker is stopping and its grace time ran out: a retryable failure, so another worker takes the cell.
      return ApplicationFailure.retryable(`worker ${ctx.workerName} shut down during the cell`, 'WorkerShutdown');
    }
    if (reason === 'CANCELLED') {
      // The sweep was cancelled: say so instead of "running" forever.
      await saveCellFailure(ctx.db, { ...a.coordinates, ...a.provenance, error: 'cancelled', startedAt }).catch(() => {});
    }
    return err instanceof CancelledFailure ? err : new CancelledFailure(reason);
  }
  if (err instanceof EngineInputError || (err instanceof Error && err.name === 'EngineInputError')) {
    const details: CellFailureDetails = { subject: (err as EngineInputError).subject ?? null, attempt: a.progress.attempt };
    return ApplicationFailure.create({ type: 'EngineInputError', message: err.message, nonRetryable: true, details: [details] });
  }
  return err;
}
