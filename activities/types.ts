/**
 * Inputs and outputs of the sweep's activities: plain JSON, shared (as types only) by the
 * workflow and the activity implementations. Never credentials: activities get the database and
 * the engine from their worker's context.
 */
import type { CellRequest } from '../engine/types.ts';
import type { ExecutionProvider, SweepSpec } from '../sweepspec/schema.ts';
import type { Cell, PreparedSweep } from '../sweepspec/cells.ts';
import type { Selection, SelectionRule } from '../analysis/selection.ts';
import type { SweepStatus } from '../db/schema/tables.ts';
import type { SelectionDrawInput } from '../db/selections.ts';

export interface PrepareSweepInput {
  spec: SweepSpec;
  workflowId: string;
}

export interface LinkCellsInput {
  sweep: string;
  cells: Cell[];
}

export interface EvaluateCellInput {
  sweep: string;
  cell: Cell;
  request: CellRequest;
  /** Canonical identity bits stored with the cell (fingerprints, protocol, execution provider). */
  identity: {
    engineVersion: string;
    modelFingerprint: string;
    datasetFingerprint: string;
    shots: number | null;
    seed: number | null;
    executionProvider: ExecutionProvider;
    params: unknown;
  };
}

export interface EvaluateCellResult {
  /** "reused": another attempt or sweep had already stored the cell; nothing of this attempt was stored. */
  status: 'done' | 'reused';
  accuracy: number | null;
  n: number | null;
  seconds: number;
}

/** What an evaluateCell failure carries in its details (EngineInputError). */
export interface CellFailureDetails {
  subject: string | null;
  /** Temporal's attempt number of the failed attempt. */
  attempt: number;
}

export interface RecordCellFailureInput extends Pick<EvaluateCellInput, 'sweep' | 'cell' | 'identity'> {
  error: string;
  /** Temporal's attempt number of the last attempt, when known. */
  attempt?: number;
}

export interface RecordProgressInput {
  sweep: string;
  /** Cells planned so far (the grid, plus the test cells once chosen). */
  planned: number;
  /** Of those, cells with a result (computed, reused or failed). */
  finished: number;
  status: SweepStatus;
}

export interface SelectOnValidationInput {
  sweep: string;
  /** The spec's selection rule (absent in histories older than the rules: the paper's). */
  rule?: SelectionRule;
}

export interface SelectionRow extends Selection {
  /** The test cells of the first draw. */
  baselineCellKey: string;
  selectedCellKey: string;
  /** Per draw, in seed order: the pick's validation cell and the test cells of the unpruned model and the pick. */
  drawCells: SelectionDrawInput[];
}

export interface SaveSelectionsInput {
  sweep: string;
  rows: SelectionRow[];
}

/** The activities of the sweep's task queue as the workflow calls them (implemented in activities/index.ts). */
export interface SweepActivities {
  linkCells(input: LinkCellsInput): Promise<string[]>;
  recordCellFailure(input: RecordCellFailureInput): Promise<void>;
  recordProgress(input: RecordProgressInput): Promise<void>;
  selectOnValidation(input: SelectOnValidationInput): Promise<Selection[]>;
  saveSelections(input: SaveSelectionsInput): Promise<void>;
}

/** The activities that read model and dataset files, on the cells (GPU) task queue of the sweep's execution provider. */
export interface CellActivities {
  prepareSweep(input: PrepareSweepInput): Promise<PreparedSweep>;
  evaluateCell(input: EvaluateCellInput): Promise<EvaluateCellResult>;
}
