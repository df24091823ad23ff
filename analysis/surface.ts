/**
 * Accuracy surfaces: the layer x ratio grid of one (sweep, model, dataset, module, split), as a text
 * table and as a standalone SVG heatmap (labelled axes, a value in every cell, a colour scale).
 * Pure: returns strings; writing files is the caller's business (cli/report.ts).
 */

import { MODULES } from '../engine/vocabulary.ts';

const MODULE_ORDER: readonly string[] = MODULES;

export type CellState = 'done' | 'pending' | 'running' | 'failed';

/** One cell of a surface. `value` is the accuracy (or the change against the unpruned model); null when not done. */
export interface SurfaceCell {
  layer: number;
  ratio: number;
  value: number | null;
  /** Default: 'done' when value is a number, else 'pending'. */
  status?: string;
  n?: number | null;
  /** Standard deviation across demonstration draws (null or absent: one draw). */
  sd?: number | null;
  /** Draws behind the value (absent: one). */
  draws?: number;
}

export interface SurfaceMeta {
  sweep?: string;
  model: string;
  dataset: string;
  module: string;
  split: string;
}

/** What the values are: accuracies (sequential colours) or differences against the unpruned model (diverging colours). */
export type SurfaceKind = 'accuracy' | 'delta';

export interface Surface {
  meta: SurfaceMeta;
  kind: SurfaceKind;
  /** Row labels, ascending (-1, every layer at once, first). */
  layers: number[];
  /** Column labels, ascending. */
  ratios: number[];
  /** values[row][column]; null where the cell is missing or not done. */
  values: (number | null)[][];
  /** status[row][column]: 'done', 'pending', 'running', 'failed', or 'missing' (not in the grid). */
  status: string[][];
  n: (number | null)[][];
  /** sd[row][column]: the spread across demonstration draws (null: one draw, or not done). */
  sd: (number | null)[][];
  /** The most demonstration draws any cell of the surface has (1 without draws). */
  draws: number;
}

/** Arrange cells on the layer x ratio grid. Throws when two cells share a (layer, ratio). */
export function buildSurface(cells: readonly SurfaceCell[], meta: SurfaceMeta, kind: SurfaceKind = 'accuracy'): Surface {
  const layers = [...new Set(cells.map((c) => c.layer))].sort((a, b) => a - b);
  const ratios = [...new Set(cells.map((c) => c.ratio))].sort((a, b) => a - b);
  const li = new Map(layers.map((l, i) => [l, i]));
  const ri = new Map(ratios.map((r, i) => [r, i]));
  const values = layers.map(() => ratios.map((): number | null => null));
  const status = layers.map(() => ratios.map(() => 'missing'));
  const n = layers.map(() => ratios.map((): number | null => null));
  const sd = layers.map(() => ratios.map((): number | null => null));
  let draws = 1;
  for (const c of cells) {
    const i = li.get(c.layer)!;
    const j = ri.get(c.ratio)!;
    if (status[i][j] !== 'missing') throw new Error(`two cells at layer ${c.layer}, ratio ${c.ratio} in ${describe(meta)}`);
    const v = c.value != null && Number.isFinite(c.value) ? c.value : null;
    values[i][j] = v;
    status[i][j] = c.status ?? (v === null ? 'pending' : 'done');
    n[i][j] = c.n ?? null;
    sd[i][j] = c.sd ?? null;
    draws = Math.max(draws, c.draws ?? 1);
  }
  return { meta, kind, layers, ratios, values, status, n, sd, draws };
}

export function describe(meta: SurfaceMeta): string {
  return [meta.sweep && `sweep ${meta.sweep}`, `model ${meta.model}`, `dataset ${meta.dataset}`, `module ${meta.module}`, `split ${meta.split}`]
    .filter(Boolean)
    .join(', ');
}

/** "-1 (all)" for every layer at once, else the index. */
export function layerLabel(layer: number): string {
  return layer === -1 ? '-1 (all)' : String(layer);
}

/** Ratios as the spec writes them (0.995, not 0.9950000001). */
export function ratioLabel(ratio: number): string {
  return String(Number(ratio.toPrecision(6)));
}

/** The text of a value in a cell: 0.812 for accuracies, +0.012 / -0.030 for changes. */
export function formatValue(value: number, kind: SurfaceKind, digits = 3): string {
  if (kind === 'delta') {
    const s = value.toFixed(digits);
    return value > 0 && s !== (0).toFixed(digits) ? `+${s}` : s.startsWith('-') && Number(s) === 0 ? s.slice(1) : s;
  }
  return value.toFixed(digits);
}

function statusText(status: string): string {
  switch (status) {
    case 'failed':
      return 'failed';
    case 'running':
      return 'running';
    case 'missing':
      return '';
    default:
      return '-';
  }
}

/** Where the best value(s) of the surface are (highest value; all of them on ties). */
export function bestCells(surface: Surface): Array<[number, number]> {
  let best = -Infinity;
  for (const row of surface.values) for (const v of row) if (v !== null && v > best) best = v;
  const out: Array<[number, number]> = [];
  surface.values.forEach((row, i) => row.forEach((v, j) => v !== null && v === best && out.push([i, j])));
  return out;
}

/**
 * The surface as a text table: one row per layer, one column per ratio, the best value(s) marked
 * with "*", "-" for a cell not done yet, "failed" for a failed one.
 */
export function renderSurfaceText(surface: Surface, options: { digits?: number } = {}): string {
  const digits = options.digits ?? 3;
  const best = new Set(bestCells(surface).map(([i, j]) => `${i},${j}`));
  const header = ['layer \\ ratio', ...surface.ratios.map(ratioLabel)];
  const rows = surface.layers.map((layer, i) => [
    layerLabel(layer),
    ...surface.ratios.map((_, j) => {
      const v = surface.values[i][j];
      if (v === null) return statusText(surface.status[i][j]);
      const sd = surface.sd[i][j];
      return formatValue(v, surface.kind, digits) + (sd === null ? '' : `±${sd.toFixed(digits)}`) + (best.has(`${i},${j}`) ? '*' : '');
    }),
  ]);
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  const line = (cells: string[]) => cells.map((c, k) => (k === 0 ? c.padEnd(widths[k]) : c.padStart(widths[k]))).join('  ').trimEnd();
  const what = surface.kind === 'delta' ? 'accuracy change vs unpruned' : 'accuracy';
  const title = `${surface.draws > 1 ? `mean ${what} over ${surface.draws} demonstration draws` : what}: ${describe(surface.meta)}`;
  const legend = surface.sd.some((row) => row.some((v) => v !== null)) ? '(* best; ±: standard deviation across draws)' : '(* best)';
  return [title, line(header), ...rows.map(line), legend].join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------------------------

type Rgb = [number, number, number];

/** Viridis, 9 stops: perceptually uniform, readable in grey and by most colour-blind readers. */
const VIRIDIS: Rgb[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** Red (worse) - white (no change) - blue (better). */
const RED_BLUE: Rgb[] = [
  [178, 24, 43],
  [239, 138, 98],
  [253, 219, 199],
  [247, 247, 247],
  [209, 229, 240],
  [103, 169, 207],
  [33, 102, 172],
];

function interpolate(stops: Rgb[], t: number): Rgb {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0.5)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((k) => Math.round(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]))) as Rgb;
}

function hex([r, g, b]: Rgb): string {
  return '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
}

function textColour([r, g, b]: Rgb): string {
  // Relative luminance (sRGB approximation): dark text on light cells, light text on dark ones.
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 140 ? '#111111' : '#ffffff';
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!);
}

/** The colour domain: min..max of the values (accuracy) or symmetric around 0 (delta), unless given. */
export function colourDomain(surface: Surface, domain?: [number, number]): [number, number] {
  if (domain) return domain;
  const vs = surface.values.flat().filter((v): v is number => v !== null);
  if (vs.length === 0) return surface.kind === 'delta' ? [-0.01, 0.01] : [0, 1];
  if (surface.kind === 'delta') {
    const m = Math.max(...vs.map(Math.abs), 1e-3);
    return [-m, m];
  }
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  return lo === hi ? [lo - 0.005, hi + 0.005] : [lo, hi];
}

function cellRgb(surface: Surface, value: number, domain: [number, number]): Rgb {
  const t = (value - domain[0]) / (domain[1] - domain[0]);
  return interpolate(surface.kind === 'delta' ? RED_BLUE : VIRIDIS, t);
}

/** The fill colour (#rrggbb) of a value under the surface's colour scale and domain. */
export function cellColour(surface: Surface, value: number, domain: [number, number]): string {
  return hex(cellRgb(surface, value, domain));
}

/**
 * The surface as a standalone SVG document: one rectangle per (layer, ratio) coloured by value with
 * the value written in it (and a tooltip with full precision and n), layers on the vertical axis,
 * ratios on the horizontal one, a colour bar with its range, the best cell(s) outlined.
 */
export function renderSurfaceSvg(surface: Surface, options: { digits?: number; domain?: [number, number]; title?: string } = {}): string {
  const digits = options.digits ?? 3;
  const domain = colourDomain(surface, options.domain);
  const cw = 68;
  const ch = 30;
  const left = 84;
  const top = 66;
  const nx = surface.ratios.length;
  const ny = surface.layers.length;
  const gridW = Math.max(1, nx) * cw;
  const gridH = Math.max(1, ny) * ch;
  const barX = left + gridW + 24;
  const barW = 16;
  const title = options.title ?? `${surface.kind === 'delta' ? 'Accuracy change vs unpruned' : 'Accuracy'}: ${surface.meta.model} / ${surface.meta.dataset}`;
  const subtitle = `module ${surface.meta.module}, split ${surface.meta.split}${surface.meta.sweep ? `, sweep ${surface.meta.sweep}` : ''}`;
  // Wide enough for the grid and colour bar, and (roughly: ~8 px a character) for the titles.
  const width = Math.ceil(Math.max(barX + barW + 70, left + 8.5 * title.length + 10, left + 7 * subtitle.length + 10));
  // The colour bar keeps a readable height on one-row surfaces.
  const barH = Math.max(gridH, 90);
  const height = top + Math.max(gridH, barH) + 60;
  const best = new Set(bestCells(surface).map(([i, j]) => `${i},${j}`));
  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<title>${escapeXml(`${title} (${subtitle})`)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  out.push(`<text x="${left}" y="38" fill="#444444">${escapeXml(subtitle)}</text>`);
  // Cells.
  out.push('<g class="cells">');
  surface.layers.forEach((layer, i) => {
    surface.ratios.forEach((ratio, j) => {
      const x = left + j * cw;
      const y = top + i * ch;
      const v = surface.values[i][j];
      const st = surface.status[i][j];
      const n = surface.n[i][j];
      let fill = '#e6e6e6';
      let ink = '#555555';
      let label = statusText(st);
      if (v !== null) {
        const rgb = cellRgb(surface, v, domain);
        fill = hex(rgb);
        ink = textColour(rgb);
        label = formatValue(v, surface.kind, digits);
      }
      const tip = `layer ${layerLabel(layer)}, ratio ${ratioLabel(ratio)}: ${v !== null ? String(v) : st}${n != null ? ` (n=${n})` : ''}`;
      out.push(
        `<g data-layer="${layer}" data-ratio="${ratioLabel(ratio)}"><title>${escapeXml(tip)}</title>` +
          `<rect x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${fill}" stroke="#ffffff" stroke-width="1"/>` +
          (label ? `<text x="${x + cw / 2}" y="${y + ch / 2 + 4}" text-anchor="middle" fill="${ink}">${escapeXml(label)}</text>` : '') +
          '</g>',
      );
    });
  });
  out.push('</g>');
  // Best cell(s) outlined.
  for (const key of best) {
    const [i, j] = key.split(',').map(Number);
    out.push(
      `<rect class="best" x="${left + j * cw + 1.5}" y="${top + i * ch + 1.5}" width="${cw - 3}" height="${ch - 3}" fill="none" stroke="${surface.kind === 'delta' ? '#111111' : '#d62728'}" stroke-width="2"/>`,
    );
  }
  // Axes.
  out.push('<g class="axis-layer" text-anchor="end">');
  surface.layers.forEach((layer, i) => out.push(`<text x="${left - 8}" y="${top + i * ch + ch / 2 + 4}">${escapeXml(layerLabel(layer))}</text>`));
  out.push('</g>');
  out.push('<g class="axis-ratio" text-anchor="middle">');
  surface.ratios.forEach((ratio, j) => out.push(`<text x="${left + j * cw + cw / 2}" y="${top + gridH + 16}">${escapeXml(ratioLabel(ratio))}</text>`));
  out.push('</g>');
  out.push(`<text x="${left + gridW / 2}" y="${top + gridH + 38}" text-anchor="middle" font-weight="bold">ratio (clipping rate ξ)</text>`);
  out.push(
    `<text x="18" y="${top + gridH / 2}" text-anchor="middle" font-weight="bold" transform="rotate(-90 18 ${top + gridH / 2})">layer</text>`,
  );
  // Colour bar: a vertical gradient from domain[0] (bottom) to domain[1] (top).
  const stops = surface.kind === 'delta' ? RED_BLUE : VIRIDIS;
  out.push('<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">');
  stops.forEach((s, k) => out.push(`<stop offset="${(k / (stops.length - 1)).toFixed(4)}" stop-color="${hex(s)}"/>`));
  out.push('</linearGradient></defs>');
  out.push(`<rect class="colour-scale" x="${barX}" y="${top}" width="${barW}" height="${barH}" fill="url(#scale)" stroke="#888888"/>`);
  out.push(`<text x="${barX + barW + 4}" y="${top + 10}">${escapeXml(formatValue(domain[1], surface.kind, digits))}</text>`);
  out.push(`<text x="${barX + barW + 4}" y="${top + barH}">${escapeXml(formatValue(domain[0], surface.kind, digits))}</text>`);
  out.push(
    `<text x="${barX + barW / 2}" y="${top - 6}" text-anchor="middle" fill="#444444">${surface.kind === 'delta' ? 'change' : 'accuracy'}</text>`,
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** A file name for a surface: model__dataset__module__split[__delta].svg, unsafe characters replaced by "_". */
export function surfaceFileName(meta: SurfaceMeta, kind: SurfaceKind = 'accuracy'): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_');
  return [meta.model, meta.dataset, meta.module, meta.split, ...(kind === 'delta' ? ['delta'] : [])].map(safe).join('__') + '.svg';
}

// ---------------------------------------------------------------------------------------------
// Surfaces of a whole sweep
// ---------------------------------------------------------------------------------------------

/** A row of the cell_results view (the columns surfaces need). */
export interface SurfaceSourceRow {
  model: string;
  dataset: string;
  module: string;
  layer: number;
  ratio: number;
  split: string;
  accuracy: number | null;
  n?: number | null;
  status: string;
  /** Over demonstration draws (analysis/draw-points.ts): the spread and the number of draws. */
  sd?: number | null;
  draws?: number;
}

/**
 * Every surface of a sweep: one per (model, dataset, module, split) among the pruned (ratio > 0)
 * cells. The unpruned cell (ratio 0) is one cell per (model, dataset, split), whatever module and
 * layer a sweep lists it under, so it fills the ratio-0 column of every layer of every module.
 * A (model, dataset, split) with only its unpruned cell gets one surface under that cell's module.
 * `kind: 'delta'` gives the change against the unpruned cell instead (null where either is not done).
 * Order: as the rows first name each model and dataset, then split (validation first), then module.
 */
export function surfacesFromRows(rows: readonly SurfaceSourceRow[], options: { sweep?: string; kind?: SurfaceKind } = {}): Surface[] {
  const kind = options.kind ?? 'accuracy';
  const modelOrder = new Map<string, number>();
  const datasetOrder = new Map<string, number>();
  for (const r of rows) {
    if (!modelOrder.has(r.model)) modelOrder.set(r.model, modelOrder.size);
    if (!datasetOrder.has(r.dataset)) datasetOrder.set(r.dataset, datasetOrder.size);
  }
  const pairKey = (r: { model: string; dataset: string; split: string }) => JSON.stringify([r.model, r.dataset, r.split]);
  // The unpruned cell of each (model, dataset, split): a done one first.
  const baselines = new Map<string, SurfaceSourceRow>();
  for (const r of rows) {
    if (r.ratio !== 0) continue;
    const k = pairKey(r);
    const cur = baselines.get(k);
    if (!cur || (cur.status !== 'done' && r.status === 'done')) baselines.set(k, r);
  }
  const groups = new Map<string, { meta: SurfaceMeta; rows: SurfaceSourceRow[] }>();
  for (const r of rows) {
    if (r.ratio === 0) continue;
    const k = JSON.stringify([r.model, r.dataset, r.split, r.module]);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { meta: { sweep: options.sweep, model: r.model, dataset: r.dataset, module: r.module, split: r.split }, rows: [] }));
    g.rows.push(r);
  }
  const covered = new Set([...groups.values()].map((g) => pairKey(g.meta)));
  for (const [k, b] of baselines) {
    if (!covered.has(k)) groups.set(k + b.module, { meta: { sweep: options.sweep, model: b.model, dataset: b.dataset, module: b.module, split: b.split }, rows: [] });
  }
  const surfaces: Surface[] = [];
  for (const g of groups.values()) {
    const base = baselines.get(pairKey(g.meta));
    const baseValue = base && base.status === 'done' && base.accuracy != null ? base.accuracy : null;
    const layers = g.rows.length > 0 ? [...new Set(g.rows.map((r) => r.layer))] : [base!.layer];
    const cells: SurfaceCell[] = [];
    if (base) {
      for (const layer of layers) {
        cells.push({
          layer,
          ratio: 0,
          value: kind === 'delta' ? (baseValue === null ? null : 0) : baseValue,
          status: base.status,
          n: base.n ?? null,
          sd: kind === 'delta' ? null : (base.sd ?? null),
          draws: base.draws,
        });
      }
    }
    for (const r of g.rows) {
      const acc = r.status === 'done' ? r.accuracy : null;
      const value = kind === 'delta' ? (acc == null || baseValue === null ? null : acc - baseValue) : acc;
      const status = r.status === 'done' && value === null ? 'pending' : r.status;
      cells.push({ layer: r.layer, ratio: r.ratio, value, status, n: r.n ?? null, sd: kind === 'delta' || value === null ? null : (r.sd ?? null), draws: r.draws });
    }
    surfaces.push(buildSurface(cells, g.meta, kind));
  }
  const splitRank = (s: string) => (s === 'validation' ? 0 : s === 'test' ? 1 : 2);
  const moduleRank = (m: string) => {
    const i = MODULE_ORDER.indexOf(m);
    return i === -1 ? MODULE_ORDER.length : i;
  };
  return surfaces.sort(
    (a, b) =>
      modelOrder.get(a.meta.model)! - modelOrder.get(b.meta.model)! ||
      datasetOrder.get(a.meta.dataset)! - datasetOrder.get(b.meta.dataset)! ||
      splitRank(a.meta.split) - splitRank(b.meta.split) ||
      (a.meta.split < b.meta.split ? -1 : a.meta.split > b.meta.split ? 1 : 0) ||
      moduleRank(a.meta.module) - moduleRank(b.meta.module) ||
      (a.meta.module < b.meta.module ? -1 : a.meta.module > b.meta.module ? 1 : 0),
  );
}
