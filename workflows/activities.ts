/**
 * The activities as the sweep and its cells call them, with their timeouts and retries. Database work
 * waits out outages inside the activity (activities/outage.ts, default 30 minutes), heartbeating, so
 * the start-to-close timeouts leave room for that and the heartbeat timeouts catch a dead worker.
 */
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { CellActivities, SweepActivities } from '../activities/types.ts';
import type { SweepSpec } from '../sweepspec/schema.ts';
import { cellsTaskQueue } from './queues.ts';

const lightRetry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 20, nonRetryableErrorTypes: ['InvalidSpec'] };

/** Database work on the sweep's task queue. */
export const light = proxyActivities<SweepActivities>({ startToCloseTimeout: '45 minutes', heartbeatTimeout: '2 minutes', retry: lightRetry });

/**
 * Preparing reads the model and dataset files, so it runs where the cells do (the workers that mount
 * them). Fingerprinting reads every model file once (the engine caches it): allow for very large models.
 */
export function preparation(spec: Pick<SweepSpec, 'executionProvider' | 'heartbeatTimeoutSeconds'>, sweepTaskQueue: string) {
  return proxyActivities<Pick<CellActivities, 'prepareSweep'>>({
    taskQueue: cellsTaskQueue(sweepTaskQueue, spec.executionProvider),
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${spec.heartbeatTimeoutSeconds} seconds`,
    retry: lightRetry,
  });
}

/** The cell evaluation, on the cells queue of the sweep's execution provider. */
export function cellEvaluation(spec: Pick<SweepSpec, 'executionProvider' | 'heartbeatTimeoutSeconds' | 'cellAttempts'>, sweepTaskQueue: string) {
  return proxyActivities<Pick<CellActivities, 'evaluateCell'>>({
    taskQueue: cellsTaskQueue(sweepTaskQueue, spec.executionProvider),
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
}
