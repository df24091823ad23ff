/**
 * The selection report (the paper's Algorithm 1 with the statistics users need), built from what
 * the database holds: selections, their test cells' per-example predictions, and the sweep's
 * surfaces. Pure: cli/report.ts does the reads and writes.
 */
import {
  mcnemarPaired,
  pairPredictions,
  pairedBootstrap,
  validationTestGap,
  wilsonInterval,
  type BootstrapResult,
  type ExamplePrediction,
  type McNemarResult,
} from './stats.ts';
import { layerLabel, ratioLabel, type Surface } from './surface.ts';
import type { SelectionResultRow } from '../db/queries.ts';

/** A row of the selection_results view (the parts the report reads). */
export type SelectionInput = Omit<SelectionResultRow, 'sweep' | 'delta'>;

export interface ReportOptions {
  /** Confidence level of the intervals (default 0.95). */
  confidence?: number;
  /** Paired bootstrap of the difference with this many resamples (0 or undefined: none). */
  bootstrap?: number;
  /** Seed of the bootstrap (default 0). */
  seed?: number;
}

export interface TestCellReport {
  cellKey: string;
  status: string;
  /** Accuracy on the test split: correct / n from the stored predictions (the cell's stored accuracy when it has none). */
  accuracy: number | null;
  correct: number | null;
  n: number | null;
  /** Wilson score interval of the accuracy. */
  interval: { lower: number; upper: number } | null;
  /** Macro-F1 over the task's classes as the cell stored it (classification only). */
  f1Macro: number | null;
}

export interface SelectionReport {
  task: string | null;
  model: string;
  dataset: string;
  module: string;
  layer: number;
  ratio: number;
  validation: { accuracy: number; cellKey: string };
  test: {
    baseline: TestCellReport;
    selected: TestCellReport;
    /** selected - baseline accuracy. */
    difference: number | null;
    /** Exact McNemar test of the selected cell against the baseline on the same examples (null until both have predictions). */
    mcnemar: McNemarResult | null;
    bootstrap: BootstrapResult | null;
  };
  /** Validation accuracy of the selected cell minus its test accuracy (positive: validation was optimistic). */
  validationTestGap: number | null;
  /** Problems found while building this row (e.g. the two cells hold different examples). */
  warnings: string[];
}

export interface Report {
  sweep: string;
  confidence: number;
  selections: SelectionReport[];
  surfaces: Array<{
    model: string;
    dataset: string;
    module: string;
    split: string;
    /** Path of the SVG heatmap written, when one was. */
    file: string | null;
    /** Path of the accuracy-vs-ratio line plot (accuracy surfaces) and of the CSV, when written. */
    linesFile: string | null;
    csvFile: string | null;
    layers: number[];
    ratios: number[];
    /** accuracy[layer index][ratio index], null where not done. */
    accuracy: (number | null)[][];
    status: string[][];
  }>;
}

function testCell(
  key: string,
  status: string,
  stored: { accuracy: number | null; n: number | null; f1Macro: number | null },
  preds: ExamplePrediction[] | undefined,
  confidence: number,
): TestCellReport {
  const { accuracy: storedAccuracy, n: storedN } = stored;
  let correct: number | null = null;
  let n: number | null = null;
  let accuracy: number | null = null;
  if (preds && preds.length > 0) {
    n = preds.length;
    correct = preds.reduce((s, e) => s + (e.prediction === e.label ? 1 : 0), 0);
    accuracy = correct / n;
  } else if (status === 'done' && storedAccuracy != null && storedN != null && storedN > 0) {
    n = storedN;
    correct = Math.round(storedAccuracy * storedN);
    accuracy = storedAccuracy;
  }
  const interval = correct !== null && n !== null ? wilsonInterval(correct, n, confidence) : null;
  return { cellKey: key, status, accuracy, correct, n, interval: interval && { lower: interval.lower, upper: interval.upper }, f1Macro: status === 'done' ? stored.f1Macro : null };
}

/** One report row per selection, with intervals, the paired test and the gap. */
export function buildSelectionReports(
  selections: readonly SelectionInput[],
  predictions: ReadonlyMap<string, ExamplePrediction[]>,
  options: ReportOptions = {},
): SelectionReport[] {
  const confidence = options.confidence ?? 0.95;
  return selections.map((s) => {
    const warnings: string[] = [];
    const bp = predictions.get(s.baselineCellKey);
    const sp = predictions.get(s.selectedCellKey);
    const baseline = testCell(s.baselineCellKey, s.baselineStatus, { accuracy: s.baselineAccuracy, n: s.baselineN, f1Macro: s.baselineF1Macro }, bp, confidence);
    const selected = testCell(s.selectedCellKey, s.selectedStatus, { accuracy: s.selectedAccuracy, n: s.selectedN, f1Macro: s.selectedF1Macro }, sp, confidence);
    for (const [name, cell, stored] of [
      ['baseline', baseline, s.baselineAccuracy],
      ['selected', selected, s.selectedAccuracy],
    ] as const) {
      if (cell.accuracy !== null && stored != null && Math.abs(cell.accuracy - stored) > 1e-9) {
        warnings.push(`${name} cell: stored accuracy ${stored} differs from its predictions' ${cell.accuracy}`);
      }
    }
    let mcnemar: McNemarResult | null = null;
    let bootstrap: BootstrapResult | null = null;
    if (bp && sp && bp.length > 0 && sp.length > 0) {
      try {
        const paired = pairPredictions(bp, sp);
        mcnemar = mcnemarPaired(paired.baseline, paired.other);
        if (options.bootstrap && options.bootstrap > 0) {
          bootstrap = pairedBootstrap(paired.baseline, paired.other, { resamples: options.bootstrap, seed: options.seed ?? 0, confidence });
        }
      } catch (err) {
        warnings.push(`no paired test: ${(err as Error).message}`);
      }
    }
    const difference = baseline.accuracy !== null && selected.accuracy !== null ? selected.accuracy - baseline.accuracy : null;
    return {
      task: s.task,
      model: s.model,
      dataset: s.dataset,
      module: s.module,
      layer: s.layer,
      ratio: s.ratio,
      validation: { accuracy: s.validationAccuracy, cellKey: s.validationCellKey },
      test: { baseline, selected, difference, mcnemar, bootstrap },
      validationTestGap: validationTestGap(s.validationAccuracy, selected.accuracy),
      warnings,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

const f3 = (v: number | null | undefined) => (v == null || !Number.isFinite(v) ? '-' : v.toFixed(3));
const signed = (v: number | null | undefined) => (v == null || !Number.isFinite(v) ? '-' : (v > 0 ? '+' : v < 0 ? '' : '±') + v.toFixed(3));
const interval = (i: { lower: number; upper: number } | null) => (i ? `[${i.lower.toFixed(3)}, ${i.upper.toFixed(3)}]` : '-');

/** p-values: 4 significant digits, scientific below 1e-4. */
export function formatP(p: number | null | undefined): string {
  if (p == null || !Number.isFinite(p)) return '-';
  if (p === 1) return '1';
  if (p < 1e-4) return p.toExponential(2);
  return String(Number(p.toPrecision(4)));
}

function table(header: string[], rows: string[][], rightAligned: Set<number>): string[] {
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => cells.map((c, k) => (rightAligned.has(k) ? c.padStart(widths[k]) : c.padEnd(widths[k]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/**
 * The paper-shaped table: task, model, module, layer, ratio selected, validation accuracy, test
 * accuracy before -> after (change), the Wilson interval of each, test macro-F1 before -> after
 * (classification), the exact McNemar p-value, the validation-to-test gap and n; then any warnings.
 */
export function renderSelectionTable(selections: readonly SelectionReport[], options: { confidence?: number } = {}): string {
  const pct = Math.round((options.confidence ?? 0.95) * 1000) / 10;
  if (selections.length === 0) return 'No selections stored for this sweep (the spec has selection off, or the validation grid has not finished).\n';
  const withBootstrap = selections.some((s) => s.test.bootstrap);
  const withF1 = selections.some((s) => s.test.baseline.f1Macro !== null || s.test.selected.f1Macro !== null);
  const header = [
    'task',
    'model',
    'module',
    'layer',
    'ratio',
    'val acc',
    'test acc before -> after',
    `${pct}% CI before`,
    `${pct}% CI after`,
    ...(withBootstrap ? [`${pct}% CI diff (bootstrap)`] : []),
    ...(withF1 ? ['test macro-F1 before -> after'] : []),
    'McNemar p',
    'b/c',
    'val-test gap',
    'n',
  ];
  const rows = selections.map((s) => {
    const t = s.test;
    const status =
      t.baseline.accuracy === null || t.selected.accuracy === null
        ? ` (test ${t.baseline.accuracy === null ? `baseline ${t.baseline.status}` : ''}${t.baseline.accuracy === null && t.selected.accuracy === null ? ', ' : ''}${t.selected.accuracy === null ? `selected ${t.selected.status}` : ''})`
        : ` (${signed(t.difference)})`;
    return [
      s.task ?? s.dataset,
      s.model,
      s.module,
      layerLabel(s.layer),
      ratioLabel(s.ratio),
      f3(s.validation.accuracy),
      `${f3(t.baseline.accuracy)} -> ${f3(t.selected.accuracy)}${status}`,
      interval(t.baseline.interval),
      interval(t.selected.interval),
      ...(withBootstrap ? [interval(t.bootstrap)] : []),
      ...(withF1 ? [`${f3(t.baseline.f1Macro)} -> ${f3(t.selected.f1Macro)}`] : []),
      formatP(t.mcnemar?.pValue),
      t.mcnemar ? `${t.mcnemar.b}/${t.mcnemar.c}` : '-',
      signed(s.validationTestGap),
      t.selected.n === null ? '-' : String(t.selected.n),
    ];
  });
  const right = new Set([3, 4, 5, header.length - 4, header.length - 3, header.length - 2, header.length - 1]);
  const lines = table(header, rows, right);
  const notes = selections.flatMap((s) => s.warnings.map((w) => `warning: ${s.model} / ${s.dataset}: ${w}`));
  lines.push(
    '',
    `test acc: the unpruned model (ratio 0) -> the selected cell, on the same test examples. CI: Wilson score interval.`,
    `McNemar p: exact two-sided test on the b (only the unpruned model right) / c (only the selected cell right) pairs.`,
    `val-test gap: validation minus test accuracy of the selected cell (positive: the pick looked better on validation).`,
    ...(withF1 ? ['macro-F1: the mean over the task\'s classes of each class\'s F1 (classification tasks).'] : []),
    ...notes,
  );
  return lines.join('\n') + '\n';
}

/** The files written for one surface (null: not written). */
export interface SurfaceFiles {
  svg: string | null;
  lines: string | null;
  csv: string | null;
}

/** The JSON shape of a surface in the report. */
export function surfaceJson(surface: Surface, files?: SurfaceFiles): Report['surfaces'][number] {
  return {
    model: surface.meta.model,
    dataset: surface.meta.dataset,
    module: surface.meta.module,
    split: surface.meta.split,
    file: files?.svg ?? null,
    linesFile: files?.lines ?? null,
    csvFile: files?.csv ?? null,
    layers: surface.layers,
    ratios: surface.ratios,
    accuracy: surface.values,
    status: surface.status,
  };
}
