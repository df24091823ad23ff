/**
 * Task queue names. The workflow and its light activities (prepare, link, record, select) run on
 * the sweep's task queue (default "icl-sweep"); cell evaluations run on its cells queue, polled by
 * the workers that hold an engine (GPU machines). One worker process normally polls both.
 */
export const DEFAULT_TASK_QUEUE = 'icl-sweep';

export function cellsTaskQueue(taskQueue: string): string {
  return `${taskQueue}-cells`;
}
