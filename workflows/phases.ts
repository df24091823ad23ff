/**
 * The phases of a sweep, each a small function the `sweep` workflow calls in turn: validate the
 * spec, prepare (fingerprints, grid checks, the sweep's name), the grid, the selection on
 * validation, the test cells of the picks. The pure ones (validate, gridSource, testPlan) are
 * tested without Temporal; the rest are activities.
 */
import { ActivityFailure, ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { Selection, SelectionRule } from '../analysis/selection.ts';
import type { SelectionRow } from '../activities/types.ts';
import { pickDraws, type Cell, type PreparedSweep } from '../sweepspec/cells.ts';
import { cellsAt, gridShape, gridSplit } from '../sweepspec/grid.ts';
import { problemsMessage } from '../sweepspec/inputs.ts';
import { checkSpec, type SweepSpec } from '../sweepspec/schema.ts';
import { light, preparation } from './activities.ts';
import type { CellSource } from './window.ts';

function invalidSpec(message: string, problems: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidSpec', nonRetryable: true, message, details: [problems] });
}

/** The spec with its defaults, or a non-retryable InvalidSpec failure listing every problem by field. */
export function validate(input: unknown): SweepSpec {
  const check = checkSpec(input);
  if (check.ok) return check.spec;
  throw invalidSpec(problemsMessage(check.problems), check.problems);
}

/** Fingerprints and layer counts; the grid checked against the models and the cell limit; the sweep's name claimed. */
export async function prepare(spec: SweepSpec, workflowId: string): Promise<PreparedSweep> {
  try {
    return await preparation(spec, workflowInfo().taskQueue).prepareSweep({ spec, workflowId });
  } catch (err) {
    // Fail with the activity's own readable message (every problem by field), not "Activity task failed".
    const cause = err instanceof ActivityFailure ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === 'InvalidSpec') throw invalidSpec(cause.message, cause.details?.[0] ?? []);
    throw err;
  }
}

/** The grid's cells by index: each batch expanded and keyed when the window asks for it. */
export function gridSource(spec: SweepSpec, prepared: PreparedSweep): CellSource {
  const shape = gridShape(spec, prepared, gridSplit(spec));
  return { size: shape.size, cells: (from, count) => cellsAt(spec, shape, from, count) };
}

/** Algorithm 1's pick per (model, dataset) under the spec's rule, made next to the data. */
export async function selectOnValidation(name: string, rule: SelectionRule): Promise<Selection[]> {
  return light.selectOnValidation({ sweep: name, rule });
}

/**
 * The test cells of the picks (under every demonstration draw, the unpruned model and each pick, once
 * each) and the selection rows to store.
 */
export function testPlan(spec: SweepSpec, prepared: PreparedSweep, selections: Selection[]): { source: CellSource; rows: SelectionRow[] } {
  const cells = new Map<string, Cell>();
  const rows: SelectionRow[] = [];
  const add = (c: Cell) => {
    if (!cells.has(c.key)) cells.set(c.key, c);
  };
  for (const s of selections) {
    const draws = pickDraws(spec, prepared, s);
    for (const d of draws) {
      add(d.baseline);
      add(d.selected);
    }
    const drawCells = draws.map((d) => ({ seed: d.seed, validationCellKey: d.validation.key, baselineCellKey: d.baseline.key, selectedCellKey: d.selected.key }));
    rows.push({ ...s, baselineCellKey: draws[0].baseline.key, selectedCellKey: draws[0].selected.key, drawCells });
  }
  const ordered = [...cells.values()];
  return { source: { size: ordered.length, cells: (from, count) => ordered.slice(from, from + count) }, rows };
}

export async function saveSelections(name: string, rows: SelectionRow[]): Promise<void> {
  await light.saveSelections({ sweep: name, rows });
}
