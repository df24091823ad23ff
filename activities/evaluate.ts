/**
 * evaluateCell: one cell on this worker's engine. Runs on the cells task queue of the worker's
 * execution provider.
 * - Heartbeats { done, total } examples as the engine reports progress, and on a timer while it
 *   loads a model or decomposes weights, so a killed worker's cell is retried elsewhere after the
 *   heartbeat timeout, and a cancelled sweep reaches the cell within one heartbeat.
 * - EngineInputError (bad model file, unknown module, ...) -> non-retryable ApplicationFailure
 *   with the engine's message; anything else is transient and retried by the workflow's policy.
 * - A cell already stored (by an earlier attempt or an overlapping sweep) is not recomputed; it counts
 *   as computed when an earlier attempt of this same activity stored it, else as reused. A stored
 *   result is never overwritten (a second completion with other numbers is a conflict record).
 * - The database being unreachable costs time, not the attempt: every database step waits it out
 *   (activities/outage.ts), and a finished evaluation keeps its outcome while the save is retried.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { EngineInputError } from '../engine/types.ts';
import { cellByKey, findDoneCells, markCellRunning, markReused, saveCellFailure, saveCellResult } from '../db/queries.ts';
import type { CellFailureDetails, EvaluateCellInput, EvaluateCellResult } from './types.ts';
import type { CellActivityContext } from './context.ts';
import { activityOutage } from './outage.ts';

export function evaluateActivities(ctx: CellActivityContext) {
  return {
    async evaluateCell({ sweep, cell, request, identity }: EvaluateCellInput): Promise<EvaluateCellResult> {
      const actx = Context.current();
      const { attempt } = actx.info;
      if (identity.executionProvider !== ctx.executionProvider) {
        // Routing sends a cell to its provider's queue only; a mismatch is a misconfigured worker, not the cell's fault.
        throw ApplicationFailure.retryable(`cell keyed for ${identity.executionProvider} reached worker ${ctx.workerName}, which runs ${ctx.executionProvider}`, 'WrongExecutionProvider');
      }
      const labels = { sweep, model: cell.model, dataset: cell.dataset };
      let progress = { done: 0, total: 0, attempt };
      const database = activityOutage(ctx.outageToleranceMs, () => progress);
      // This activity across its attempts (a retry keeps the run and activity id).
      const run = actx.info.workflowExecution;
      const computedBy = run ? `${run.workflowId}/${run.runId}/${actx.info.activityId}` : undefined;
      /** Stored meanwhile: by an earlier attempt of this activity whose completion was lost (computed), else by another (reused). */
      const alreadyStored = async (): Promise<EvaluateCellResult> => {
        const stored = await database('read the stored cell', () => cellByKey(ctx.db, cell.key));
        if (computedBy !== undefined && stored?.computedBy === computedBy) return { status: 'done', accuracy: stored.accuracy, n: stored.n, seconds: stored.seconds ?? 0 };
        await database('mark the cell reused', () => markReused(ctx.db, sweep, [cell.key]));
        ctx.metrics.cellsReused(labels, 1);
        return { status: 'reused', accuracy: null, n: null, seconds: 0 };
      };
      // Stored meanwhile (an overlapping sweep, or an earlier attempt that died after saving): nothing to compute.
      if ((await database('look the cell up', () => findDoneCells(ctx.db, [cell.key]))).has(cell.key)) return await alreadyStored();

      actx.heartbeat(progress);
      const startedAt = new Date();
      const coordinates = { key: cell.key, module: cell.module, layer: cell.layer, ratio: cell.ratio, split: cell.split, ...identity };
      const provenance = { worker: ctx.workerName, host: ctx.host, attempt, executionProvider: ctx.executionProvider };
      // Visible as "running" in cell_results; false: it became done meanwhile (a duplicate attempt).
      if (!(await database('mark the cell running', () => markCellRunning(ctx.db, { ...coordinates, ...provenance, startedAt })))) return await alreadyStored();
      ctx.metrics.cellStarted(labels);
      const every = ctx.heartbeatEverySeconds !== undefined ? ctx.heartbeatEverySeconds * 1000 : Math.max(200, Math.min(5000, (actx.info.heartbeatTimeoutMs ?? 30_000) / 3));
      const timer = setInterval(() => actx.heartbeat(progress), every);
      try {
        const evaluation = ctx.engine.evaluate(request, {
          signal: actx.cancellationSignal,
          onProgress: (done, total) => {
            progress = { done, total, attempt };
            actx.heartbeat(progress);
          },
        });
        evaluation.catch(() => {}); // when cancellation wins the race below
        // Cancellation wins even if the engine does not watch the signal.
        const outcome = await Promise.race([evaluation, actx.cancelled]);
        const finishedAt = new Date();
        const { runtime } = outcome;
        const saved = await database('save the result', () =>
          saveCellResult(ctx.db, {
            ...coordinates,
            ...provenance,
            executionProvider: runtime.executionProvider,
            weightDtype: runtime.weightDtype,
            onnxruntimeVersion: runtime.onnxruntime,
            computedBy,
            sweep,
            outcome,
            startedAt,
            finishedAt,
          }),
        );
        const seconds = (finishedAt.getTime() - startedAt.getTime()) / 1000;
        const { cost } = outcome;
        ctx.metrics.cellCompleted(labels, seconds);
        if (saved === 'conflict') ctx.metrics.cellConflict(labels);
        ctx.metrics.examplesEvaluated(labels, outcome.n);
        ctx.metrics.forwardTokens(labels, cost.forwardTokens, Math.max(0, cost.seconds - cost.svdSeconds));
        ctx.metrics.decomposition(cost.decompositionCacheHits, cost.decompositionCacheMisses, cost.svdSeconds);
        // Model loads reach metrics.modelLoad through the engine's onModelLoad (worker/create.ts), which also
        // sees the load describeModel does in prepareSweep; cost.modelLoadSeconds would count a cell's load twice.
        return { status: saved === 'stored' ? 'done' : 'reused', accuracy: outcome.accuracy, n: outcome.n, seconds };
      } catch (err) {
        ctx.metrics.cellFailed(labels);
        if (actx.cancellationSignal.aborted) {
          const reason = (actx.cancellationSignal.reason as Error | undefined)?.message;
          if (reason === 'WORKER_SHUTDOWN') {
            // This worker is stopping and its grace time ran out: a retryable failure, so another worker takes the cell.
            throw ApplicationFailure.retryable(`worker ${ctx.workerName} shut down during the cell`, 'WorkerShutdown');
          }
          if (reason === 'CANCELLED') {
            // The sweep was cancelled: say so instead of "running" forever.
            await saveCellFailure(ctx.db, { ...coordinates, ...provenance, error: 'cancelled', startedAt }).catch(() => {});
          }
          throw err instanceof CancelledFailure ? err : new CancelledFailure(reason ?? 'cancelled');
        }
        if (err instanceof EngineInputError || (err instanceof Error && err.name === 'EngineInputError')) {
          const details: CellFailureDetails = { subject: (err as EngineInputError).subject ?? null, attempt };
          throw ApplicationFailure.create({ type: 'EngineInputError', message: err.message, nonRetryable: true, details: [details] });
        }
        throw err;
      } finally {
        clearInterval(timer);
      }
    },
  };
}
