/**
 * The sweep workflow's explicit state and the pure rules that change it. What continue-as-new
 * carries (SweepState) is bounded by the window (cells in flight and looked up but not started),
 * never by the grid: cells are addressed by index and re-derived from the spec in each run.
 */
import type { Selection } from '../analysis/selection.ts';
import type { PreparedSweep } from '../sweepspec/cells.ts';
import type { SelectionRow } from '../activities/types.ts';

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

/** How a cell's child workflow ended, as it reports to the sweep. */
export type CellOutcome = 'done' | 'reused' | 'failed' | 'cancelled';

export interface CellReport {
  key: string;
  outcome: CellOutcome;
}

/** Carried across continue-as-new. */
export interface SweepState {
  phase: 'grid' | 'test';
  prepared: PreparedSweep;
  /** Next index (in the phase's cells) not yet looked up. */
  cursor: number;
  /** Indices looked up (not stored yet) but not started. */
  queue: number[];
  /** Cells whose child workflow runs: key -> index in the phase's cells. They keep running across continue-as-new. */
  inFlight: Record<string, number>;
  counts: SweepCounts;
  /** The picks on validation (test phase). */
  selections?: Selection[];
  run: number;
}

export function initialState(prepared: PreparedSweep): SweepState {
  return { phase: 'grid', prepared, cursor: 0, queue: [], inFlight: {}, counts: { done: 0, reused: 0, failed: 0 }, run: 1 };
}

export function inFlightCount(state: SweepState): number {
  return Object.keys(state.inFlight).length;
}

/** The next run's state: the same cells in flight and queued, one run more. */
export function nextRun(state: SweepState): SweepState {
  return { ...state, run: state.run + 1 };
}

/** A new phase over other cells; only when nothing of the last one is in flight or queued. */
export function enterTestPhase(state: SweepState, selections: Selection[]): void {
  if (inFlightCount(state) > 0 || state.queue.length > 0) throw new Error('enterTestPhase: cells of the grid are still in flight');
  Object.assign(state, { phase: 'test', cursor: 0, queue: [], selections });
}

/**
 * Counts a cell's report once: true when it was in flight. A report for a cell not in flight (sent
 * twice, or by a cell of an earlier execution under this workflow id) changes nothing. A cancelled
 * cell leaves the window without a result.
 */
export function recordOutcome(state: SweepState, report: CellReport): boolean {
  if (!(report.key in state.inFlight)) return false;
  delete state.inFlight[report.key];
  if (report.outcome !== 'cancelled') state.counts[report.outcome]++;
  return true;
}

export function finishedCount(counts: SweepCounts): number {
  return counts.done + counts.reused + counts.failed;
}
