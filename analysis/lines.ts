/**
 * The paper's figures: accuracy against the clipping rate, one line per layer, the unpruned
 * model's accuracy as a dashed reference line; and a surface as CSV. Pure: returns strings.
 */
import { csvField } from './csv.ts';
import { escapeXml, layerLabel, ratioLabel, type Surface } from './surface.ts';

/** Okabe-Ito: distinguishable by most colour-blind readers; after eight lines the dash pattern changes too. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];
const DASHES = ['', '6 3', '2 2', '8 3 2 3'];

/** The unpruned accuracy of a surface: its ratio-0 column (the same cell in every row). */
function unprunedValue(surface: Surface): number | null {
  const j = surface.ratios.indexOf(0);
  if (j < 0) return null;
  for (const row of surface.values) if (row[j] !== null) return row[j];
  return null;
}

/** Round tick positions covering [lo, hi]: 4-8 ticks at a step of 1, 2 or 5 times a power of ten. */
export function ticks(lo: number, hi: number): number[] {
  const span = Math.max(hi - lo, 1e-9);
  const raw = span / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => span / s <= 8)!;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + 1e-9; t += step) out.push(Number(t.toFixed(10)));
  return out;
}

/**
 * Accuracy vs ratio as a standalone SVG: ratios evenly spaced on the x axis (as the paper's figures
 * space them), one line per layer with a marker per finished cell (a cell not done breaks its line),
 * the unpruned accuracy dashed across, a legend, and a tooltip with the exact value and n per point.
 */
export function renderAccuracyLinesSvg(surface: Surface): string {
  const left = 64;
  const top = 58;
  const plotW = Math.max(320, 64 * surface.ratios.length);
  const legendX = left + plotW + 24;
  const legendRows = surface.layers.length + 1;
  const plotH = Math.max(260, 18 * legendRows);
  const width = legendX + 130;
  const height = top + plotH + 58;
  const base = unprunedValue(surface);
  const values = surface.values.flat().filter((v): v is number => v !== null);
  const lo0 = Math.min(...values, base ?? Infinity);
  const hi0 = Math.max(...values, base ?? -Infinity);
  const pad = Math.max(0.01, (hi0 - lo0) * 0.08);
  const [lo, hi] = values.length ? [Math.max(0, lo0 - pad), Math.min(1, hi0 + pad)] : [0, 1];
  const x = (j: number) => left + (surface.ratios.length === 1 ? plotW / 2 : (j * plotW) / (surface.ratios.length - 1));
  const y = (v: number) => top + plotH - ((v - lo) / (hi - lo || 1)) * plotH;
  const title = `Accuracy vs clipping rate: ${surface.meta.model} / ${surface.meta.dataset}`;
  const subtitle = `module ${surface.meta.module}, split ${surface.meta.split}${surface.meta.sweep ? `, sweep ${surface.meta.sweep}` : ''}`;
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(`${title} (${subtitle})`)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${left}" y="40" fill="#444444">${escapeXml(subtitle)}</text>`,
    '<g class="grid" stroke="#e3e3e3">',
  ];
  const yTicks = ticks(lo, hi);
  for (const t of yTicks) out.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}"/>`);
  out.push('</g>', '<g class="axis-accuracy" text-anchor="end">');
  for (const t of yTicks) out.push(`<text x="${left - 6}" y="${(y(t) + 4).toFixed(1)}">${t.toFixed(2)}</text>`);
  out.push('</g>', '<g class="axis-ratio" text-anchor="middle">');
  surface.ratios.forEach((r, j) => out.push(`<text x="${x(j).toFixed(1)}" y="${top + plotH + 18}">${escapeXml(ratioLabel(r))}</text>`));
  out.push(
    '</g>',
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888888"/>`,
    `<text x="${left + plotW / 2}" y="${top + plotH + 40}" text-anchor="middle" font-weight="bold">clipping rate ξ (ratio)</text>`,
    `<text x="16" y="${top + plotH / 2}" text-anchor="middle" font-weight="bold" transform="rotate(-90 16 ${top + plotH / 2})">accuracy</text>`,
  );
  if (base !== null) {
    out.push(
      `<line class="unpruned" x1="${left}" x2="${left + plotW}" y1="${y(base).toFixed(1)}" y2="${y(base).toFixed(1)}" stroke="#555555" stroke-width="1.5" stroke-dasharray="5 4"><title>${escapeXml(`unpruned: ${base}`)}</title></line>`,
    );
  }
  surface.layers.forEach((layer, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length];
    const segments: string[][] = [[]];
    const markers: string[] = [];
    surface.ratios.forEach((ratio, j) => {
      const v = surface.values[i][j];
      if (v === null) {
        segments.push([]);
        return;
      }
      segments[segments.length - 1].push(`${x(j).toFixed(1)},${y(v).toFixed(1)}`);
      const n = surface.n[i][j];
      markers.push(
        `<circle cx="${x(j).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${colour}"><title>${escapeXml(`layer ${layerLabel(layer)}, ratio ${ratioLabel(ratio)}: ${v}${n != null ? ` (n=${n})` : ''}`)}</title></circle>`,
      );
    });
    out.push(`<g class="layer" data-layer="${layer}">`);
    for (const seg of segments.filter((s) => s.length > 1)) {
      out.push(`<polyline points="${seg.join(' ')}" fill="none" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    }
    out.push(...markers, '</g>');
  });
  out.push('<g class="legend">');
  surface.layers.forEach((layer, i) => {
    const ly = top + 8 + 18 * i;
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length];
    out.push(
      `<line x1="${legendX}" x2="${legendX + 22}" y1="${ly}" y2="${ly}" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      `<text x="${legendX + 28}" y="${ly + 4}">layer ${escapeXml(layerLabel(layer))}</text>`,
    );
  });
  if (base !== null) {
    const ly = top + 8 + 18 * surface.layers.length;
    out.push(
      `<line x1="${legendX}" x2="${legendX + 22}" y1="${ly}" y2="${ly}" stroke="#555555" stroke-width="1.5" stroke-dasharray="5 4"/>`,
      `<text x="${legendX + 28}" y="${ly + 4}">unpruned ${base.toFixed(3)}</text>`,
    );
  }
  out.push('</g>', '</svg>');
  return out.join('\n') + '\n';
}

/** A surface as CSV for pandas: one row per (layer, ratio) of the grid, with the surface's coordinates, status and n. */
export function surfaceCsv(surface: Surface): string {
  const { model, dataset, module, split } = surface.meta;
  // Over several demonstration draws the value is their mean: its spread and the draws follow.
  const draws = surface.draws > 1;
  const lines = [`model,dataset,module,split,layer,ratio,${surface.kind === 'delta' ? 'delta' : 'accuracy'},status,n${draws ? ',sd,draws' : ''}`];
  surface.layers.forEach((layer, i) =>
    surface.ratios.forEach((ratio, j) => {
      if (surface.status[i][j] === 'missing') return;
      const fields = [model, dataset, module, split].map(csvField);
      const spread = draws ? [surface.sd[i][j] ?? '', surface.draws] : [];
      lines.push([...fields, layer, ratioLabel(ratio), surface.values[i][j] ?? '', surface.status[i][j], surface.n[i][j] ?? '', ...spread].join(','));
    }),
  );
  return lines.join('\n') + '\n';
}
