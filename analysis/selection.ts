/**
 * The paper's Algorithm 1, selection step: per (model, dataset), pick a validation cell under a rule.
 * Pure and deterministic: no I/O, no clock, no randomness. The selection activity runs it next to the
 * data; the workflow only sees its result type.
 *
 * A grid point evaluated under several demonstration draws is one candidate, judged by its mean
 * accuracy over the draws; its gain over the unpruned model is tested on the draws' paired examples
 * (analysis/draws.ts). The rules:
 *  - `paper`: the candidate with the best (mean) validation accuracy, ties by {@link compareCandidates};
 *  - `significant`: the best of the pruned candidates whose gain is positive and significant at
 *    `level` (Holm-adjusted over the task's pruned candidates unless `correction` is "none"); when
 *    none is, the unpruned model.
 */
import { MODULES, type ModuleName } from '../engine/vocabulary.ts';
import { holmAdjust, pairedGain, type GainSummary, type PairedDraw } from './draws.ts';

/** One finished cell of the validation grid, as the selection activity reads it. */
export interface ValidationResult {
  model: string;
  dataset: string;
  module: ModuleName;
  /** -1: every layer at once. */
  layer: number;
  ratio: number;
  accuracy: number;
  cellKey: string;
  /** The demonstration draw's seed (null or absent: the sweep has one draw). */
  seed?: number | null;
  /** The cell's examples against the unpruned cell of the same draw (b: only the unpruned right, c: only this cell right); absent when not known. */
  paired?: PairedDraw | null;
}

export type SelectionRule = { rule: 'paper' } | { rule: 'significant'; level: number; correction: 'holm' | 'none' };

const PAPER_RULE: SelectionRule = { rule: 'paper' };

/** A pruned candidate's validation gain over the unpruned model, with the p-value its rule compared with the level. */
export interface CandidateGain extends GainSummary {
  /** Holm-adjusted under the significant rule's correction, else the p-value itself. */
  adjustedP: number;
}

/** The cell picked for one (model, dataset), to be evaluated on the test split against the unpruned model. */
export interface Selection {
  model: string;
  dataset: string;
  module: ModuleName;
  layer: number;
  ratio: number;
  /** Mean validation accuracy over the draws. */
  validationAccuracy: number;
  /** The validation cell of the first draw (the smallest seed). */
  validationCellKey: string;
  rule: SelectionRule;
  /** Demonstration draws every candidate was judged on. */
  draws: number;
  /** Mean validation accuracy of the unpruned model (null when it is not done under every draw). */
  baselineValidationAccuracy: number | null;
  /** The pick's validation gain over the unpruned model; null when the pick is the unpruned model or its examples are not paired. */
  gain: CandidateGain | null;
  /** The pruned candidate with the best mean validation accuracy (what the paper's rule would take), with its gain. */
  bestPruned: { module: ModuleName; layer: number; ratio: number; accuracy: number; gain: CandidateGain | null } | null;
  /** Pruned candidates done under every draw. */
  candidates: number;
  /** How many of them had a significant gain (significant rule; null under the paper's). */
  significant: number | null;
}

const MODULE_RANK = new Map<string, number>(MODULES.map((m, i) => [m, i]));

function moduleRank(module: string): number {
  return MODULE_RANK.get(module) ?? MODULES.length;
}

/** What the tie order compares: a cell, or a grid point over its draws (mean accuracy, first draw's key). */
export type Candidate = Pick<ValidationResult, 'module' | 'layer' | 'ratio' | 'accuracy' | 'cellKey'>;

/**
 * Negative when `a` is the better pick, positive when `b` is, 0 only for identical coordinates and key.
 *
 * The order, in turn:
 *  1. the highest validation accuracy;
 *  2. the lowest ratio (the smallest change to the model; ratio 0, the unpruned model, wins every
 *     tie it is part of);
 *  3. the deepest layer (the highest index; -1, "every layer at once", counts as the shallowest,
 *     as its index says);
 *  4. the earliest module in `MODULES` of engine/vocabulary.ts (q_proj, k_proj, v_proj, out_proj, fc_in,
 *     fc_up, fc_out, mlp, attn, all); names outside that list come after it, in code-point order;
 *  5. the smallest cell key in code-point order (only reached by duplicates of one cell).
 */
export function compareCandidates(a: Candidate, b: Candidate): number {
  // Means over draws of the same fractions may differ in the last bit: closer than this is a tie.
  if (Math.abs(a.accuracy - b.accuracy) > 1e-12) return a.accuracy > b.accuracy ? -1 : 1;
  if (a.ratio !== b.ratio) return a.ratio < b.ratio ? -1 : 1;
  if (a.layer !== b.layer) return a.layer > b.layer ? -1 : 1;
  const ra = moduleRank(a.module);
  const rb = moduleRank(b.module);
  if (ra !== rb) return ra - rb;
  if (a.module !== b.module) return a.module < b.module ? -1 : 1;
  if (a.cellKey !== b.cellKey) return a.cellKey < b.cellKey ? -1 : 1;
  return 0;
}

/** A grid point of one (model, dataset) over its draws. */
interface Point extends Candidate {
  /** Per draw key (JSON of the seed), the draw's result. */
  byDraw: Map<string, ValidationResult>;
}

interface Group {
  model: string;
  dataset: string;
  draws: Set<string>;
  points: Map<string, Point>;
}

function groupResults(results: readonly ValidationResult[]): Group[] {
  const groups = new Map<string, Group>();
  for (const r of results) {
    if (typeof r.accuracy !== 'number' || !Number.isFinite(r.accuracy)) continue;
    // JSON of the pair: unambiguous whatever characters the names hold.
    const id = JSON.stringify([r.model, r.dataset]);
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { model: r.model, dataset: r.dataset, draws: new Set(), points: new Map() }));
    const draw = JSON.stringify(r.seed ?? null);
    g.draws.add(draw);
    const at = JSON.stringify([r.module, r.layer, r.ratio]);
    let p = g.points.get(at);
    if (!p) g.points.set(at, (p = { module: r.module, layer: r.layer, ratio: r.ratio, accuracy: NaN, cellKey: '', byDraw: new Map() }));
    // Duplicates of one cell under one draw: keep the one the tie order prefers, so input order never matters.
    const held = p.byDraw.get(draw);
    if (!held || compareCandidates(r, held) < 0) p.byDraw.set(draw, r);
  }
  return [...groups.values()];
}

/** The seeds' order: no seed first, then ascending. */
function drawOrder(a: string, b: string): number {
  const x = JSON.parse(a) as number | null;
  const y = JSON.parse(b) as number | null;
  return x === y ? 0 : x === null ? -1 : y === null ? 1 : x - y;
}

/** The points done under every draw of the group, with their mean accuracy and first draw's key. */
function completePoints(g: Group): Point[] {
  const draws = [...g.draws].sort(drawOrder);
  const out: Point[] = [];
  for (const p of g.points.values()) {
    if (!draws.every((d) => p.byDraw.has(d))) continue;
    const rows = draws.map((d) => p.byDraw.get(d)!);
    out.push({ ...p, accuracy: rows.reduce((s, r) => s + r.accuracy, 0) / rows.length, cellKey: rows[0].cellKey });
  }
  return out;
}

function best<T extends Candidate>(points: readonly T[]): T | undefined {
  return points.reduce<T | undefined>((b, p) => (b === undefined || compareCandidates(p, b) < 0 ? p : b), undefined);
}

/** The gain over the unpruned model across the point's draws; null when a draw has no pairing. */
function gainOf(p: Point): GainSummary | null {
  const draws = [...p.byDraw.keys()].sort(drawOrder).map((d) => p.byDraw.get(d)!.paired);
  return draws.every((d): d is PairedDraw => d != null) ? pairedGain(draws) : null;
}

/**
 * Pick a cell of each (model, dataset) under `rule` (the module comment; ties by
 * {@link compareCandidates}). A grid point is a candidate only when it is done under every draw its
 * (model, dataset) has; results whose accuracy is not a finite number are ignored. Ratio-0 cells (the
 * unpruned model) are candidates like any other under the paper's rule; the significant rule needs
 * the unpruned model under every draw, else that (model, dataset) gets no selection.
 *
 * The pick does not depend on the order of `results`; the returned list has one entry per (model,
 * dataset), in the order each pair first appears in `results`.
 */
export function selectCells(results: readonly ValidationResult[], rule: SelectionRule = PAPER_RULE): Selection[] {
  const out: Selection[] = [];
  for (const g of groupResults(results)) {
    const points = completePoints(g);
    const unpruned = best(points.filter((p) => p.ratio === 0));
    const pruned = points.filter((p) => p.ratio !== 0);
    const tested = pruned.map((p) => ({ point: p, gain: gainOf(p) }));
    const judged = tested.filter((t): t is { point: Point; gain: GainSummary } => t.gain !== null);
    const adjusted = rule.rule === 'significant' && rule.correction === 'holm' ? holmAdjust(judged.map((t) => t.gain.pValue)) : judged.map((t) => t.gain.pValue);
    const gains = new Map<Point, CandidateGain>(judged.map((t, i) => [t.point, { ...t.gain, adjustedP: adjusted[i] }]));
    let pick: Point | undefined;
    let significant: number | null = null;
    if (rule.rule === 'paper') {
      pick = best(points);
    } else if (unpruned) {
      // Without the unpruned model under every draw there is nothing to test against, and no pick.
      const passed = judged.filter((t) => t.gain.gain > 0 && gains.get(t.point)!.adjustedP <= rule.level).map((t) => t.point);
      significant = passed.length;
      pick = best(passed) ?? unpruned;
    }
    if (!pick) continue;
    const top = best(pruned);
    out.push({
      model: g.model,
      dataset: g.dataset,
      module: pick.module,
      layer: pick.layer,
      ratio: pick.ratio,
      validationAccuracy: pick.accuracy,
      validationCellKey: pick.cellKey,
      rule,
      draws: g.draws.size,
      baselineValidationAccuracy: unpruned?.accuracy ?? null,
      gain: gains.get(pick) ?? null,
      bestPruned: top ? { module: top.module, layer: top.layer, ratio: top.ratio, accuracy: top.accuracy, gain: gains.get(top) ?? null } : null,
      candidates: pruned.length,
      significant,
    });
  }
  return out;
}

/** The paper's rule: {@link selectCells} with `paper`. */
export function selectBest(results: readonly ValidationResult[]): Selection[] {
  return selectCells(results, PAPER_RULE);
}
