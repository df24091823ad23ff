/**
 * The selection report (the paper's Algorithm 1 with the statistics users need), built from what
 * the database holds: selections, their test cells' per-example predictions, and the sweep's
 * surfaces. Pure: cli/report.ts does the reads and writes.
 */
import {
  discordantPairs,
  mcnemarExact,
  pairPredictions,
  pairedBootstrap,
  validationTestGap,
  wilsonInterval,
  type BootstrapResult,
  type ExamplePrediction,
  type McNemarResult,
  type PairedCorrectness,
} from './stats.ts';
import { pairedGain, summarizeDraws, type GainSummary, type PairedDraw } from './draws.ts';
import type { DrawPoint } from './draw-points.ts';
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
  /** Accuracy on the test split: correct / n from the stored predictions (the cell's stored accuracy when it has none); over several draws, their mean. */
  accuracy: number | null;
  /** Over all draws. */
  correct: number | null;
  n: number | null;
  /** Wilson score interval of the accuracy; over several draws, the interval of analysis/draws.ts. */
  interval: { lower: number; upper: number } | null;
  /** Macro-F1 over the task's classes as the cell stored it (classification only); over draws, the mean. */
  f1Macro: number | null;
  /** Standard deviation of the accuracy across draws (null with one draw). */
  sd: number | null;
}

/** The test cells of one demonstration draw of a pick (selection_draws). */
export interface SelectionDrawCells {
  seed: number | null;
  baselineCellKey: string;
  selectedCellKey: string;
}

export interface SelectionReport {
  task: string | null;
  model: string;
  dataset: string;
  module: string;
  layer: number;
  ratio: number;
  rule: { rule: string; level: number | null; correction: string | null };
  /** Demonstration draws of the pick. */
  draws: number;
  validation: {
    /** Mean over the draws. */
    accuracy: number;
    cellKey: string;
    /** The unpruned model's mean validation accuracy, and the pick's gain over it (null when the pick is the unpruned model). */
    baselineAccuracy: number | null;
    gain: { gain: number; lower: number; upper: number; pValue: number } | null;
    /** The rule's whole decision as stored (analysis/selection.ts Selection). */
    decision: SelectionDecision | null;
  };
  test: {
    baseline: TestCellReport;
    selected: TestCellReport;
    /** selected - baseline accuracy (means over draws). */
    difference: number | null;
    /** The paired gain across draws and examples with its interval and test (analysis/draws.ts; McNemar's exact test with one draw). */
    paired: GainSummary | null;
    /** Discordant pairs summed over draws: b only the unpruned model right, c only the pick. */
    discordant: { b: number; c: number } | null;
    /** Exact McNemar test of the selected cell against the baseline on the same examples (one draw; null until both have predictions). */
    mcnemar: McNemarResult | null;
    /** Paired bootstrap of the difference (one draw, on request). */
    bootstrap: BootstrapResult | null;
  };
  /** Validation accuracy of the selected cell minus its test accuracy (positive: validation was optimistic). */
  validationTestGap: number | null;
  /** Problems found while building this row (e.g. the two cells hold different examples). */
  warnings: string[];
}

/** The parts of a stored decision the report reads. */
export interface SelectionDecision {
  bestPruned?: { module: string; layer: number; ratio: number; accuracy: number; gain: { gain: number; lower: number; upper: number; pValue: number; adjustedP: number } | null } | null;
  candidates?: number;
  significant?: number | null;
}

export interface Report {
  sweep: string;
  confidence: number;
  selections: SelectionReport[];
  /** Every grid point over its demonstration draws (analysis/draw-points.ts). */
  points: DrawPoint[];
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
    /** accuracy[layer index][ratio index], null where not done; the mean over the draws. */
    accuracy: (number | null)[][];
    /** Standard deviation across demonstration draws (null: one draw). */
    sd: (number | null)[][];
    draws: number;
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
  return { cellKey: key, status, accuracy, correct, n, interval: interval && { lower: interval.lower, upper: interval.upper }, f1Macro: status === 'done' ? stored.f1Macro : null, sd: null };
}

/** A pick's test side over several draws: each side's mean and interval from the predictions of every draw. */
function drawsCell(key: string, status: string, f1Macro: number | null, preds: (ExamplePrediction[] | undefined)[], confidence: number): TestCellReport {
  const complete = preds.every((p) => p && p.length > 0);
  if (!complete) return { cellKey: key, status, accuracy: null, correct: null, n: null, interval: null, f1Macro: null, sd: null };
  const counts = preds.map((p) => ({ correct: p!.reduce((s, e) => s + (e.prediction === e.label ? 1 : 0), 0), n: p!.length }));
  const summary = summarizeDraws(counts.map((c) => ({ accuracy: c.correct / c.n, n: c.n })), confidence);
  return {
    cellKey: key,
    status,
    accuracy: summary.mean,
    correct: counts.reduce((s, c) => s + c.correct, 0),
    n: counts.reduce((s, c) => s + c.n, 0),
    interval: { lower: summary.lower, upper: summary.upper },
    f1Macro: status === 'done' ? f1Macro : null,
    sd: summary.sd,
  };
}

/** The paired examples of each draw (null when a draw has no pairing: a warning says why). */
function pairedDraws(draws: readonly SelectionDrawCells[], predictions: ReadonlyMap<string, ExamplePrediction[]>, warnings: string[]): PairedCorrectness[] | null {
  const out: PairedCorrectness[] = [];
  for (const d of draws) {
    const bp = predictions.get(d.baselineCellKey);
    const sp = predictions.get(d.selectedCellKey);
    if (!bp?.length || !sp?.length) return null;
    try {
      out.push(pairPredictions(bp, sp));
    } catch (err) {
      warnings.push(`no paired test${draws.length > 1 ? ` (draw with seed ${d.seed})` : ''}: ${(err as Error).message}`);
      return null;
    }
  }
  return out;
}

/**
 * One report row per selection, with intervals, the paired test and the gap. `draws` gives each
 * selection's draws by JSON [model, dataset] (selection_draws); without an entry, the one draw of its
 * own columns.
 */
export function buildSelectionReports(
  selections: readonly SelectionInput[],
  predictions: ReadonlyMap<string, ExamplePrediction[]>,
  options: ReportOptions = {},
  draws: ReadonlyMap<string, readonly SelectionDrawCells[]> = new Map(),
): SelectionReport[] {
  const confidence = options.confidence ?? 0.95;
  return selections.map((s) => {
    const warnings: string[] = [];
    const cells = draws.get(JSON.stringify([s.model, s.dataset])) ?? [{ seed: null, baselineCellKey: s.baselineCellKey, selectedCellKey: s.selectedCellKey }];
    let baseline: TestCellReport;
    let selected: TestCellReport;
    if (cells.length === 1) {
      baseline = testCell(s.baselineCellKey, s.baselineStatus, { accuracy: s.baselineAccuracy, n: s.baselineN, f1Macro: s.baselineF1Macro }, predictions.get(cells[0].baselineCellKey), confidence);
      selected = testCell(s.selectedCellKey, s.selectedStatus, { accuracy: s.selectedAccuracy, n: s.selectedN, f1Macro: s.selectedF1Macro }, predictions.get(cells[0].selectedCellKey), confidence);
    } else {
      baseline = drawsCell(s.baselineCellKey, s.baselineStatus, s.baselineF1Macro, cells.map((d) => predictions.get(d.baselineCellKey)), confidence);
      selected = drawsCell(s.selectedCellKey, s.selectedStatus, s.selectedF1Macro, cells.map((d) => predictions.get(d.selectedCellKey)), confidence);
    }
    for (const [name, cell, stored] of [
      ['baseline', baseline, s.baselineAccuracy],
      ['selected', selected, s.selectedAccuracy],
    ] as const) {
      if (cell.accuracy !== null && stored != null && Math.abs(cell.accuracy - stored) > 1e-9) {
        warnings.push(`${name} cell: stored accuracy ${stored} differs from its predictions' ${cell.accuracy}`);
      }
    }
    const examples = pairedDraws(cells, predictions, warnings);
    const pairs: PairedDraw[] | null = examples && examples.map((e) => ({ n: e.idx.length, ...discordantPairs(e.baseline, e.other) }));
    const paired = pairs ? pairedGain(pairs, confidence) : null;
    const discordant = pairs ? { b: pairs.reduce((t, p) => t + p.b, 0), c: pairs.reduce((t, p) => t + p.c, 0) } : null;
    let bootstrap: BootstrapResult | null = null;
    if (cells.length === 1 && examples && options.bootstrap && options.bootstrap > 0) {
      bootstrap = pairedBootstrap(examples[0].baseline, examples[0].other, { resamples: options.bootstrap, seed: options.seed ?? 0, confidence });
    }
    const difference = baseline.accuracy !== null && selected.accuracy !== null ? selected.accuracy - baseline.accuracy : null;
    const gain = s.validationGain !== null && s.validationGainLower !== null && s.validationGainUpper !== null && s.validationGainP !== null
      ? { gain: s.validationGain, lower: s.validationGainLower, upper: s.validationGainUpper, pValue: s.validationGainP }
      : null;
    return {
      task: s.task,
      model: s.model,
      dataset: s.dataset,
      module: s.module,
      layer: s.layer,
      ratio: s.ratio,
      rule: { rule: s.rule, level: s.level, correction: s.correction },
      draws: cells.length,
      validation: { accuracy: s.validationAccuracy, cellKey: s.validationCellKey, baselineAccuracy: s.baselineValidationAccuracy, gain, decision: (s.decision as SelectionDecision | null) ?? null },
      test: { baseline, selected, difference, paired, discordant, mcnemar: cells.length === 1 && discordant ? mcnemarExact(discordant.b, discordant.c) : null, bootstrap },
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

/** A plain-text table: the header, a rule of dashes, the rows; columns two spaces apart, those in `rightAligned` padded on the left. */
export function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => cells.map((c, k) => (rightAligned.has(k) ? c.padStart(widths[k]) : c.padEnd(widths[k]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

const signedInterval = (i: { lower: number; upper: number } | null) => (i ? `[${signed(i.lower)}, ${signed(i.upper)}]` : '-');

/** "paper", or "significant 0.05 holm". */
function ruleLabel(rule: SelectionReport['rule']): string {
  return rule.rule === 'significant' ? `significant ${rule.level ?? ''} ${rule.correction ?? ''}`.trim() : rule.rule;
}

/** What the significant rule decided, in words (nothing for the paper's rule). */
function decisionNote(s: SelectionReport): string | null {
  const d = s.validation.decision;
  if (s.rule.rule !== 'significant' || !d) return null;
  const family = `${d.candidates ?? '?'} pruned cells${s.rule.correction === 'holm' ? ', Holm-adjusted' : ''}`;
  if (s.ratio !== 0) return `${s.model} / ${s.dataset}: ${d.significant} of ${family} had a significant validation gain at ${s.rule.level}; the best of them was kept.`;
  const b = d.bestPruned;
  const best = b
    ? `; the best pruned cell, ${b.module} layer ${layerLabel(b.layer)} ratio ${ratioLabel(b.ratio)}, gained ${signed(b.gain?.gain)} ${signedInterval(b.gain ?? null)} (p ${formatP(b.gain?.pValue)}, adjusted ${formatP(b.gain?.adjustedP)})`
    : '';
  return `${s.model} / ${s.dataset}: kept the unpruned model: no pruned cell's validation gain was significant at ${s.rule.level} (${family})${best}.`;
}

/**
 * The paper-shaped table: task, model, the rule, module, layer, ratio selected, demonstration draws,
 * validation accuracy and the pick's validation gain over the unpruned model (interval, p-value), test
 * accuracy before -> after (change), the interval of each and of the change, test macro-F1 before ->
 * after (classification), the paired test's p-value and discordant pairs, the validation-to-test gap
 * and n; then what the significant rule decided, and any warnings.
 */
export function renderSelectionTable(selections: readonly SelectionReport[], options: { confidence?: number } = {}): string {
  const pct = Math.round((options.confidence ?? 0.95) * 1000) / 10;
  if (selections.length === 0) return 'No selections stored for this sweep (the spec has selection off, or the validation grid has not finished).\n';
  const withBootstrap = selections.some((s) => s.test.bootstrap);
  const withF1 = selections.some((s) => s.test.baseline.f1Macro !== null || s.test.selected.f1Macro !== null);
  const withDraws = selections.some((s) => s.draws > 1);
  const header = [
    'task',
    'model',
    'rule',
    'module',
    'layer',
    'ratio',
    'draws',
    'val acc',
    `val gain [${pct}% CI] p`,
    'test acc before -> after',
    `${pct}% CI before`,
    `${pct}% CI after`,
    `${pct}% CI change`,
    ...(withBootstrap ? [`${pct}% CI diff (bootstrap)`] : []),
    ...(withF1 ? ['test macro-F1 before -> after'] : []),
    'test p',
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
    const g = s.validation.gain;
    return [
      s.task ?? s.dataset,
      s.model,
      ruleLabel(s.rule),
      s.module,
      layerLabel(s.layer),
      ratioLabel(s.ratio),
      String(s.draws),
      f3(s.validation.accuracy),
      g ? `${signed(g.gain)} ${signedInterval(g)} ${formatP(g.pValue)}` : '-',
      `${f3(t.baseline.accuracy)} -> ${f3(t.selected.accuracy)}${status}`,
      interval(t.baseline.interval),
      interval(t.selected.interval),
      signedInterval(t.paired),
      ...(withBootstrap ? [interval(t.bootstrap)] : []),
      ...(withF1 ? [`${f3(t.baseline.f1Macro)} -> ${f3(t.selected.f1Macro)}`] : []),
      formatP(t.paired?.pValue),
      t.discordant ? `${t.discordant.b}/${t.discordant.c}` : '-',
      signed(s.validationTestGap),
      t.selected.n === null ? '-' : String(t.selected.n),
    ];
  });
  const right = new Set([4, 5, 6, 7, header.length - 4, header.length - 3, header.length - 2, header.length - 1]);
  const lines = table(header, rows, right);
  const notes = selections.flatMap((s) => s.warnings.map((w) => `warning: ${s.model} / ${s.dataset}: ${w}`));
  lines.push(
    '',
    `rule: paper = the best validation accuracy; significant = only a pruned cell whose validation gain over the unpruned model is significant (level, correction), else the unpruned model.`,
    `val gain: the pick's validation accuracy minus the unpruned model's, with its interval and p-value (none when the pick is the unpruned model).`,
    `test acc: the unpruned model (ratio 0) -> the selected cell, on the same test examples. CI: Wilson score interval${withDraws ? '; over several draws, the mean\'s interval from the draws\' spread, never narrower than their examples allow' : ''}.`,
    `CI change: the interval of the paired change on test (the normal one with one draw; over several draws, from their spread as above).`,
    `test p: exact two-sided McNemar test on the b (only the unpruned model right) / c (only the selected cell right) pairs${withDraws ? '; over several draws, a t test of the mean paired change across draws and examples (b/c summed over draws)' : ''}.`,
    `val-test gap: validation minus test accuracy of the selected cell (positive: the pick looked better on validation).`,
    ...(withDraws ? ['draws: demonstration draws (seeds); accuracies are means over them, n counts the examples of every draw.'] : []),
    ...(withF1 ? ['macro-F1: the mean over the task\'s classes of each class\'s F1 (classification tasks).'] : []),
    ...selections.map(decisionNote).filter((n): n is string => n !== null),
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
    sd: surface.sd,
    draws: surface.draws,
    status: surface.status,
  };
}
