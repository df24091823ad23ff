/**
 * Inputs and outputs of the sweep's activities: plain JSON, shared (as types only) by the
 * workflow and the activity implementations. Never credentials: activities get the database and
 * the engine from their worker's context.
 */
import type { CellRequest } from '../engine/types.ts';
import type { SweepSpec } from '../sweepspec/schema.ts';
import type { Cell, PreparedSweep } from '../sweepspec/cells.ts';
import type { Selection } from '../analysis/selection.ts';

export interface PrepareSweepInput {
  spec: SweepSpec;
  workflowId: string;
}

export interface LinkCellsInput {
  sweep: string;
  cells: Cell[];
  /** For the sweep-progress gauge: cells in the grid so far, and finished (done + reused + failed) before this batch. */
  total: number;
  finished: number;
}

export interface EvaluateCellInput {
  sweep: string;
  cell: Cell;
  request: CellRequest;
  /** Canonical identity bits stored with the cell (fingerprints, protocol). */
  identity: {
    engineVersion: string;
    modelFingerprint: string;
    datasetFingerprint: string;
    shots: number | null;
    seed: number | null;
    params: unknown;
  };
}

export interface EvaluateCellResult {
  /** "reused": another attempt or sweep had already stored the cell; nothing was computed. */
  status: 'done' | 'reused';
  accuracy: number | null;
  n: number | null;
  seconds: number;
}

export interface RecordCellFailureInput extends Pick<EvaluateCellInput, 'sweep' | 'cell' | 'identity'> {
  error: string;
}

export interface SelectOnValidationInput {
  sweep: string;
  spec: SweepSpec;
  prepared: PreparedSweep;
}

export interface SelectionRow extends Selection {
  baselineCellKey: string;
  selectedCellKey: string;
}

export interface SaveSelectionsInput {
  sweep: string;
  rows: SelectionRow[];
}

/** The activities of the sweep's task queue as the workflow calls them (implemented in activities/index.ts). */
export interface SweepActivities {
  linkCells(input: LinkCellsInput): Promise<string[]>;
  recordCellFailure(input: RecordCellFailureInput): Promise<void>;
  selectOnValidation(input: SelectOnValidationInput): Promise<Selection[]>;
  saveSelections(input: SaveSelectionsInput): Promise<void>;
}

/** The activities that read model and dataset files, on the cells (GPU) task queue. */
export interface CellActivities {
  prepareSweep(input: PrepareSweepInput): Promise<PreparedSweep>;
  evaluateCell(input: EvaluateCellInput): Promise<EvaluateCellResult>;
}
