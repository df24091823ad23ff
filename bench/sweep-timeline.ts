/**
 * Where a sweep's wall time goes before its first cell computes and after its last one: the sweep
 * workflow's history (workflow start, its workflow tasks, the prepare and linkCells activities, the
 * first cell workflow, progress records, completion) against the engine's first evaluation start and
 * last evaluation end, all in seconds from the client's start call. For bench/grid-sweep.ts.
 */
import type { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface TimelineMarks {
  /** Date.now() of the client's start call and of the result's arrival. */
  calledAt: number;
  resultAt: number;
  /** Date.now() of the engine's first evaluation start and last evaluation end. */
  firstEvaluation: number;
  lastEvaluation: number;
}

const millis = (e: HistoryEvent) => Number(e.eventTime!.seconds) * 1000 + (e.eventTime!.nanos ?? 0) / 1e6;

/** The sweep's steps before the first evaluation and after the last, as [what, seconds from the start call], in time order. */
export function sweepTimeline(history: History, marks: TimelineMarks): [string, number][] {
  const events = history.events ?? [];
  const out: [string, number][] = [];
  const at = (what: string, ms: number) => {
    if (ms <= marks.firstEvaluation || ms >= marks.lastEvaluation) out.push([what, (ms - marks.calledAt) / 1000]);
  };
  const activityOf = new Map<string, string>();
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      activityOf.set(String(e.eventId), scheduled.activityType?.name ?? '?');
      at(`${scheduled.activityType?.name} scheduled`, millis(e));
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) at(`${activityOf.get(String(started.scheduledEventId))} started`, millis(e));
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) at(`${activityOf.get(String(completed.scheduledEventId))} completed`, millis(e));
    if (e.workflowExecutionStartedEventAttributes) at('workflow started', millis(e));
    if (e.workflowTaskStartedEventAttributes) at('workflow task started', millis(e));
    if (e.workflowTaskCompletedEventAttributes) at('workflow task completed', millis(e));
    if (e.workflowExecutionCompletedEventAttributes) at('workflow completed', millis(e));
  }
  const firstChild = events.find((e) => e.startChildWorkflowExecutionInitiatedEventAttributes);
  if (firstChild) at('first cell workflow started', millis(firstChild));
  at('first evaluation started', marks.firstEvaluation);
  at('last evaluation ended', marks.lastEvaluation);
  at('result received', marks.resultAt);
  return out.sort((a, b) => a[1] - b[1]);
}

/** Seconds before the first evaluation and after the last one. */
export function startAndFinish(marks: TimelineMarks): { startSeconds: number; finishSeconds: number } {
  return { startSeconds: (marks.firstEvaluation - marks.calledAt) / 1000, finishSeconds: (marks.resultAt - marks.lastEvaluation) / 1000 };
}
