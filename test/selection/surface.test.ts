import { describe, expect, it } from 'vitest';
import {
  buildSurface,
  colourDomain,
  renderSurfaceSvg,
  renderSurfaceText,
  surfaceFileName,
  surfacesFromRows,
  type SurfaceCell,
  type SurfaceSourceRow,
} from '../../analysis/surface.ts';
import { elements, parseXml, textOf } from './xml.ts';

const meta = { sweep: 'paper<&>"sweep"', model: 'gpt-j/6b', dataset: 'cb', module: 'mlp', split: 'validation' };

// 3 layers x 4 ratios with distinct values; one failed cell and one pending.
const LAYERS = [27, -1, 0];
const RATIOS = [0.995, 0, 0.5, 0.9];
function grid(): SurfaceCell[] {
  const cells: SurfaceCell[] = [];
  LAYERS.forEach((layer, i) =>
    RATIOS.forEach((ratio, j) => {
      if (layer === 0 && ratio === 0.995) cells.push({ layer, ratio, value: null, status: 'failed' });
      else if (layer === 0 && ratio === 0.9) cells.push({ layer, ratio, value: null, status: 'pending' });
      else cells.push({ layer, ratio, value: 0.5 + 0.0371 * i + 0.0117 * j, n: 200 });
    }),
  );
  return cells;
}

describe('buildSurface', () => {
  it('sorts layers (-1 first) and ratios ascending and places every value', () => {
    const s = buildSurface(grid(), meta);
    expect(s.layers).toEqual([-1, 0, 27]);
    expect(s.ratios).toEqual([0, 0.5, 0.9, 0.995]);
    // layer 27 (i = 0 in LAYERS), ratio 0.5 (j = 2 in RATIOS).
    expect(s.values[2][1]).toBeCloseTo(0.5 + 0.0234, 12);
    expect(s.status[1][3]).toBe('failed');
    expect(s.status[1][2]).toBe('pending');
    expect(s.values[1][3]).toBeNull();
  });

  it('refuses two cells at one place', () => {
    expect(() => buildSurface([{ layer: 0, ratio: 0.5, value: 0.1 }, { layer: 0, ratio: 0.5, value: 0.2 }], meta)).toThrow(/two cells/);
  });

  it('marks missing grid points', () => {
    const s = buildSurface([{ layer: 0, ratio: 0.5, value: 0.1 }, { layer: 1, ratio: 0.9, value: 0.2 }], meta);
    expect(s.status).toEqual([
      ['done', 'missing'],
      ['missing', 'done'],
    ]);
  });
});

describe('renderSurfaceSvg', () => {
  const surface = buildSurface(grid(), meta);
  const svg = renderSurfaceSvg(surface);
  const root = parseXml(svg);
  const all = elements(root);

  it('is a well-formed SVG document', () => {
    expect(root.name).toBe('svg');
    expect(root.attributes.xmlns).toBe('http://www.w3.org/2000/svg');
    expect(Number(root.attributes.width)).toBeGreaterThan(0);
    expect(Number(root.attributes.height)).toBeGreaterThan(0);
    // The checker itself rejects broken documents.
    expect(() => parseXml('<svg><g></svg>')).toThrow();
    expect(() => parseXml('<svg><text>a & b</text></svg>')).toThrow();
    expect(() => parseXml('<svg a="1" a="2"/>')).toThrow();
    expect(() => parseXml('<svg/><svg/>')).toThrow();
  });

  it('writes every done cell value, as text in its own cell', () => {
    const cellGroups = all.filter((e) => e.attributes['data-layer'] !== undefined);
    expect(cellGroups).toHaveLength(LAYERS.length * RATIOS.length);
    for (const c of grid()) {
      const g = cellGroups.find((e) => Number(e.attributes['data-layer']) === c.layer && Number(e.attributes['data-ratio']) === c.ratio);
      expect(g, `cell ${c.layer}/${c.ratio}`).toBeDefined();
      const text = g!.children.find((x) => typeof x !== 'string' && x.name === 'text');
      const label = text && typeof text !== 'string' ? textOf(text) : '';
      if (c.value !== null) {
        expect(label).toBe(c.value.toFixed(3));
        // Tooltip with full precision and n.
        expect(svg).toContain(`${c.value} (n=200)`);
        const rect = g!.children.find((x) => typeof x !== 'string' && x.name === 'rect');
        expect(rect && typeof rect !== 'string' && /^#[0-9a-f]{6}$/.test(rect.attributes.fill)).toBe(true);
      } else {
        expect(label).toBe(c.status === 'failed' ? 'failed' : '-');
      }
    }
  });

  it('labels both axes and draws a colour scale with its range', () => {
    const texts = all.filter((e) => e.name === 'text').map(textOf);
    for (const l of ['-1 (all)', '0', '27']) expect(texts).toContain(l);
    for (const r of ['0', '0.5', '0.9', '0.995']) expect(texts).toContain(r);
    expect(texts).toContain('layer');
    expect(texts.some((t) => t.startsWith('ratio'))).toBe(true);
    expect(all.some((e) => e.attributes.class === 'colour-scale')).toBe(true);
    expect(all.filter((e) => e.name === 'stop').length).toBeGreaterThanOrEqual(2);
    const [lo, hi] = colourDomain(surface);
    expect(texts).toContain(lo.toFixed(3));
    expect(texts).toContain(hi.toFixed(3));
    // Names with XML specials survive escaping.
    expect(textOf(all.find((e) => e.name === 'title')!)).toContain('paper<&>"sweep"');
    expect(textOf(root)).toContain('gpt-j/6b');
  });

  it('colours higher values differently from lower ones and outlines the best cell', () => {
    const fills = new Set(all.filter((e) => e.name === 'rect' && e.attributes.fill?.startsWith('#') && e.attributes.fill !== '#ffffff').map((e) => e.attributes.fill));
    expect(fills.size).toBeGreaterThan(5);
    expect(all.filter((e) => e.attributes.class === 'best')).toHaveLength(1);
  });

  it('renders an empty and a delta surface too', () => {
    expect(parseXml(renderSurfaceSvg(buildSurface([], meta))).name).toBe('svg');
    const d = buildSurface(
      [
        { layer: 0, ratio: 0, value: 0 },
        { layer: 0, ratio: 0.5, value: 0.0123 },
        { layer: 0, ratio: 0.9, value: -0.04 },
      ],
      meta,
      'delta',
    );
    const dsvg = renderSurfaceSvg(d);
    const texts = elements(parseXml(dsvg)).map(textOf);
    expect(texts).toContain('+0.012');
    expect(texts).toContain('-0.040');
    expect(texts).toContain('0.000');
  });
});

describe('renderSurfaceText', () => {
  it('prints a row per layer with every value and marks the best', () => {
    const s = buildSurface(grid(), meta);
    const text = renderSurfaceText(s);
    const lines = text.trim().split('\n');
    expect(lines[0]).toContain('model gpt-j/6b');
    expect(lines[1].split(/\s+/).slice(-4)).toEqual(['0', '0.5', '0.9', '0.995']);
    const row27 = lines.find((l) => l.startsWith('27 '))!;
    expect(row27.split(/\s+/).slice(1)).toEqual(['0.512', '0.523', '0.535', '0.500']);
    const row0 = lines.find((l) => l.startsWith('0 '))!;
    expect(row0.split(/\s+/).slice(1)).toEqual(['0.586', '0.598*', '-', 'failed']);
    for (const c of grid()) if (c.value !== null) expect(text).toContain(c.value.toFixed(3));
  });
});

describe('surfacesFromRows', () => {
  const row = (p: Partial<SurfaceSourceRow>): SurfaceSourceRow => ({
    model: 'm',
    dataset: 'd',
    module: 'mlp',
    layer: 0,
    ratio: 0.5,
    split: 'validation',
    accuracy: 0.5,
    n: 10,
    status: 'done',
    ...p,
  });

  it('one surface per (model, dataset, module, split); the unpruned cell fills ratio 0 of every layer', () => {
    const rows = [
      row({ module: 'none', layer: 0, ratio: 0, accuracy: 0.6 }),
      row({ module: 'mlp', layer: 0, ratio: 0.5, accuracy: 0.61 }),
      row({ module: 'mlp', layer: 5, ratio: 0.5, accuracy: 0.62 }),
      row({ module: 'attn', layer: 5, ratio: 0.9, accuracy: 0.55 }),
      row({ module: 'mlp', layer: 5, ratio: 0.9, status: 'failed', accuracy: null }),
      row({ split: 'test', module: 'none', layer: 0, ratio: 0, accuracy: 0.58 }),
      row({ split: 'test', module: 'mlp', layer: 5, ratio: 0.5, accuracy: 0.64 }),
    ];
    const s = surfacesFromRows(rows, { sweep: 'x' });
    expect(s.map((x) => [x.meta.split, x.meta.module])).toEqual([
      ['validation', 'mlp'],
      ['validation', 'attn'],
      ['test', 'mlp'],
    ]);
    expect(s[0].layers).toEqual([0, 5]);
    expect(s[0].ratios).toEqual([0, 0.5, 0.9]);
    expect(s[0].values).toEqual([
      [0.6, 0.61, null],
      [0.6, 0.62, null],
    ]);
    expect(s[0].status[1][2]).toBe('failed');
    expect(s[1].values).toEqual([[0.6, 0.55]]);
    expect(s[2].values).toEqual([[0.58, 0.64]]);

    const d = surfacesFromRows(rows, { kind: 'delta' });
    expect(d[0].kind).toBe('delta');
    expect(d[0].values[0][0]).toBe(0);
    expect(d[0].values[1][1]).toBeCloseTo(0.02, 12);
  });

  it('a split with only the unpruned cell still gets a surface', () => {
    const s = surfacesFromRows([row({ module: 'none', ratio: 0, accuracy: 0.6, split: 'test' })]);
    expect(s).toHaveLength(1);
    expect(s[0].values).toEqual([[0.6]]);
  });

  it('file names are safe and distinct per surface', () => {
    expect(surfaceFileName({ model: 'org/model', dataset: 'sentiment-uci/yelp', module: 'mlp', split: 'test' })).toBe(
      'org_model__sentiment-uci_yelp__mlp__test.svg',
    );
    expect(surfaceFileName({ model: '..', dataset: 'd', module: 'attn', split: 'validation' }, 'delta')).toBe('___d__attn__validation__delta.svg');
  });
});
