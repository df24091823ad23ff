/**
 * Task queue names. The workflows (the sweep and its cells' child workflows) and their light
 * activities (prepare, link, record, select) run on the sweep's task queue (default "icl-sweep");
 * cell evaluations run on the cells queue of the sweep's execution provider, polled by the workers
 * whose engine runs that provider (GPU machines for "cuda"). One worker process normally polls both.
 */
import type { ExecutionProvider } from '../sweepspec/schema.ts';

export const DEFAULT_TASK_QUEUE = 'icl-sweep';

export function cellsTaskQueue(taskQueue: string, provider: ExecutionProvider): string {
  return `${taskQueue}-cells-${provider}`;
}
