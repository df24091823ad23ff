/**
 * A sweep's cells gathered per grid point over their demonstration draws: one row per (model,
 * dataset, module, layer, ratio, split) with the mean accuracy, the spread across draws and the
 * interval of analysis/draws.ts, what the cell_draw_summaries view computes in SQL. Pure.
 */
import { csvField } from './csv.ts';
import { summarizeDraws } from './draws.ts';
import { table } from './report.ts';
import { quantile } from './stats.ts';
import type { SurfaceSourceRow } from './surface.ts';

/** A cell_results row (the columns this reads): a surface's row with its n and draw seed. */
export interface DrawCellRow extends Omit<SurfaceSourceRow, 'n' | 'sd' | 'draws'> {
  n: number | null;
  seed?: number | null;
}

export interface DrawPoint extends SurfaceSourceRow {
  /** Cells of the point (one per draw) and how many are done. */
  draws: number;
  done: number;
  /** Mean accuracy over the draws once every draw is done (null before), with n summed over them. */
  accuracy: number | null;
  n: number | null;
  sd: number | null;
  lower: number | null;
  upper: number | null;
  min: number | null;
  max: number | null;
  /** The done draws' seeds, ascending. */
  seeds: (number | null)[];
}

/** done once every draw is; else failed if one failed, running if one runs, pending otherwise. */
function pointStatus(statuses: readonly string[]): string {
  if (statuses.every((s) => s === 'done')) return 'done';
  for (const s of ['failed', 'running']) if (statuses.includes(s)) return s;
  return 'pending';
}

/** The grid points of `rows` over their draws, in the order each point first appears. */
export function pointsOverDraws(rows: readonly DrawCellRow[], confidence = 0.95): DrawPoint[] {
  const groups = new Map<string, DrawCellRow[]>();
  for (const r of rows) {
    const key = JSON.stringify([r.model, r.dataset, r.module, r.layer, r.ratio, r.split]);
    const list = groups.get(key);
    if (list) list.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values()].map((cells) => {
    const done = cells.filter((c) => c.status === 'done' && c.accuracy != null && c.n != null && c.n > 0);
    const status = pointStatus(cells.map((c) => c.status));
    const summary = done.length > 0 ? summarizeDraws(done.map((c) => ({ accuracy: c.accuracy!, n: c.n! })), confidence) : null;
    const complete = status === 'done' && summary !== null;
    const { model, dataset, module, layer, ratio, split } = cells[0];
    return {
      model,
      dataset,
      module,
      layer,
      ratio,
      split,
      status,
      draws: cells.length,
      done: done.length,
      accuracy: complete ? summary.mean : null,
      n: complete ? done.reduce((s, c) => s + c.n!, 0) : null,
      sd: summary?.sd ?? null,
      lower: summary?.lower ?? null,
      upper: summary?.upper ?? null,
      min: summary?.min ?? null,
      max: summary?.max ?? null,
      seeds: done.map((c) => c.seed ?? null).sort((a, b) => (a ?? -1) - (b ?? -1)),
    };
  });
}

/**
 * How far accuracy moves across demonstration draws, per (model, dataset, split): the unpruned model's
 * mean, spread, range and interval, and the median and largest spread of the pruned cells. Empty text
 * when no point has more than one draw.
 */
export function renderDrawSpread(points: readonly DrawPoint[], confidence = 0.95): string {
  if (!points.some((p) => p.draws > 1)) return '';
  const groups = new Map<string, DrawPoint[]>();
  for (const p of points) {
    const key = JSON.stringify([p.model, p.dataset, p.split]);
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const f3 = (v: number | null | undefined) => (v == null ? '-' : v.toFixed(3));
  const pct = Math.round(confidence * 1000) / 10;
  const header = ['model', 'dataset', 'split', 'draws', 'unpruned mean', 'sd', 'min-max', `${pct}% CI`, 'pruned cells: median sd', 'max sd'];
  const rows = [...groups.values()].map((ps) => {
    const base = ps.find((p) => p.ratio === 0);
    const sds = ps.filter((p) => p.ratio !== 0 && p.sd !== null).map((p) => p.sd!).sort((a, b) => a - b);
    const median = sds.length === 0 ? null : quantile(sds, 0.5);
    return [
      ps[0].model,
      ps[0].dataset,
      ps[0].split,
      String(Math.max(...ps.map((p) => p.draws))),
      f3(base?.accuracy),
      f3(base?.sd),
      base?.min != null ? `${f3(base.min)}-${f3(base.max)}` : '-',
      base?.lower != null && base.accuracy !== null ? `[${f3(base.lower)}, ${f3(base.upper)}]` : '-',
      f3(median),
      f3(sds.length ? sds[sds.length - 1] : null),
    ];
  });
  return [
    'Demonstration draws: how far accuracy moves with the demonstrations drawn',
    '',
    ...table(header, rows, new Set([3, 4, 5, 6, 7, 8, 9])),
    '',
    `sd: standard deviation across draws; CI: interval of the mean over the draws (their spread, never narrower than their examples allow).`,
  ].join('\n') + '\n';
}

/** Every grid point over its draws as CSV: the mean, spread, range and interval of its accuracy. */
export function pointsCsv(points: readonly DrawPoint[]): string {
  const lines = ['model,dataset,module,layer,ratio,split,status,draws,done,mean,sd,min,max,ci_lower,ci_upper,n,seeds'];
  for (const p of points) {
    const fields = [p.model, p.dataset, p.module, p.layer, p.ratio, p.split, p.status, p.draws, p.done, p.accuracy, p.sd, p.min, p.max, p.lower, p.upper, p.n, p.seeds.join(' ')];
    lines.push(fields.map((f) => csvField(f)).join(','));
  }
  return lines.join('\n') + '\n';
}
