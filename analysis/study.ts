/**
 * The demonstration-draw study's tables (cli/study.ts runs its sweeps): how far accuracy moves across
 * draws for the unpruned model, and how each selection rule's picks fare on test. Pure: the command
 * reads the stored results into these shapes.
 */
import { summarizeDraws } from './draws.ts';
import { layerLabel, ratioLabel } from './surface.ts';

/** One pick of a rule: its coordinates, validation numbers, and per draw the test accuracies of the unpruned model and the pick. */
export interface StudyPick {
  dataset: string;
  module: string;
  layer: number;
  ratio: number;
  /** The pick's validation gain over the unpruned model (0 when the pick is the unpruned model). */
  validationGain: number;
  test: Array<{ seed: number | null; baseline: number; selected: number }>;
}

/** A rule as the study ran it: a name for the table, the draws it judged on, and its picks (one per task, or per task and seed). */
export interface StudyRule {
  rule: string;
  judgedOn: string;
  picks: StudyPick[];
}

export interface RuleOutcome {
  rule: string;
  judgedOn: string;
  picks: number;
  /** Picks of a pruned cell (not the unpruned model). */
  pruned: number;
  /** Picks whose test accuracy (mean over draws) beats the unpruned model's, ties, or loses. */
  improved: number;
  tied: number;
  worse: number;
  /** (pick, draw) pairs: the pick beats the unpruned model under that draw's test examples. */
  drawsImproved: number;
  draws: number;
  /** Means over the picks, in accuracy (0.01 = one point). */
  meanValidationGain: number;
  meanTestChange: number;
}

/** A pick's test change against the unpruned model: the mean over its draws. */
function testChange(p: StudyPick): number {
  return p.test.reduce((s, d) => s + d.selected - d.baseline, 0) / p.test.length;
}

/** How each rule's picks fared on test. */
export function ruleOutcomes(rules: readonly StudyRule[]): RuleOutcome[] {
  return rules.map(({ rule, judgedOn, picks }) => {
    const changes = picks.map(testChange);
    const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((s, x) => s + x, 0) / xs.length);
    const pairs = picks.flatMap((p) => p.test);
    return {
      rule,
      judgedOn,
      picks: picks.length,
      pruned: picks.filter((p) => p.ratio !== 0).length,
      improved: changes.filter((c) => c > 1e-12).length,
      tied: changes.filter((c) => Math.abs(c) <= 1e-12).length,
      worse: changes.filter((c) => c < -1e-12).length,
      drawsImproved: pairs.filter((d) => d.selected - d.baseline > 1e-12).length,
      draws: pairs.length,
      meanValidationGain: mean(picks.map((p) => p.validationGain)),
      meanTestChange: mean(changes),
    };
  });
}

/** The unpruned model of one task under each draw: accuracy and examples per split. */
export interface UnprunedDraws {
  dataset: string;
  validation: Array<{ accuracy: number; n: number }>;
  test: Array<{ accuracy: number; n: number }>;
}

const pts = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;
const pct = (v: number) => (100 * v).toFixed(1);

function table(header: string[], rows: string[][], left = 1): string[] {
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => `| ${cells.map((c, k) => (k < left ? c.padEnd(widths[k]) : c.padStart(widths[k]))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, k) => (k < left ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`, ...rows.map(line)];
}

/** The study's tables as Markdown (accuracies in percent, changes in points). */
export function renderStudy(unpruned: readonly UnprunedDraws[], rules: readonly StudyRule[]): string {
  const spread = unpruned.map((u) => {
    const cells = (draws: UnprunedDraws['validation']) => {
      if (draws.length === 0) return ['-', '-', '-'];
      const s = summarizeDraws(draws);
      return [`${pct(s.mean)} ± ${pct(s.sd ?? 0)}`, `${pct(s.min)}-${pct(s.max)}`, pct(s.max - s.min)];
    };
    return [u.dataset, String(u.validation.length), ...cells(u.validation), ...cells(u.test)];
  });
  const outcomes = ruleOutcomes(rules).map((o) => [
    o.rule,
    o.judgedOn,
    `${o.pruned} of ${o.picks}`,
    `${o.improved} / ${o.tied} / ${o.worse}`,
    `${o.drawsImproved} of ${o.draws}`,
    pts(o.meanValidationGain),
    pts(o.meanTestChange),
  ]);
  const picks = rules.flatMap((r) =>
    r.picks.map((p) => {
      const seeds = p.test.map((d) => d.seed).join(',');
      return [r.rule, p.dataset, seeds, p.ratio === 0 ? 'unpruned' : `${p.module} ${layerLabel(p.layer)} ${ratioLabel(p.ratio)}`, pts(p.validationGain), pts(testChange(p))];
    }),
  );
  return [
    'Unpruned model across demonstration draws (accuracy in %: mean ± sd across draws; range; max - min in points)',
    '',
    ...table(['task', 'draws', 'validation', 'range', 'spread', 'test', 'range', 'spread'], spread),
    '',
    'Selection rules on test (picks: one per task, or per task and seed for the one-draw rule; changes in points against the unpruned model under the same draws)',
    '',
    ...table(['rule', 'judged on', 'pruned picks', 'test better / same / worse', '(pick, draw) better', 'mean val gain', 'mean test change'], outcomes, 2),
    '',
    'Every pick',
    '',
    ...table(['rule', 'task', 'draws (seeds)', 'pick (module layer ratio)', 'val gain', 'test change'], picks, 4),
  ].join('\n') + '\n';
}
