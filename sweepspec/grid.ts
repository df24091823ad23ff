/**
 * The grid of a sweep, addressed by cell index. Pure and deterministic (the `sweep` workflow runs it).
 *
 * A grid is a list of blocks, one per (model, dataset) in spec order, model-major. A block holds the
 * unpruned cell first (when the ratios include 0), then every (module, layer, ratio) with a nonzero
 * ratio, module-major, then layer, then ratio: all ratios of one matrix back to back, so they share
 * one decomposition; each point under every demonstration draw (spec demoSeeds), the draws of one
 * point back to back. Inside a block a cell index is a mixed-radix number over the axes
 * (module, layer, ratio, draw), so cell i is found in O(models) without listing the cells before it:
 * the workflow expands and keys one batch at a time, whatever the grid's size.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import type { ModuleName } from '../engine/vocabulary.ts';
import type { SweepSpec } from './schema.ts';
import { BASELINE_MODULE, canonicalJson, drawSeeds, layersFor, makeCell, type Cell, type PreparedDataset, type PreparedModel, type PreparedSweep, type Split } from './cells.ts';

/** Cells a sweep may have unless a worker's ICL_SWEEP_MAX_CELLS says otherwise. */
export const DEFAULT_MAX_CELLS = 1_000_000;

interface ModelAxes {
  model: PreparedModel;
  /** The spec's modules this model's family has, in spec order. */
  modules: ModuleName[];
  layers: number[];
  /** Cells of one (model, dataset) block. */
  blockSize: number;
}

/** The axes of a grid: proportional to the spec's lists, never to their product. */
export interface GridShape {
  split: Split;
  engineVersion: string;
  datasets: PreparedDataset[];
  models: ModelAxes[];
  /** Distinct nonzero ratios, in spec order. */
  ratios: number[];
  /** The ratios include 0: each block starts with the unpruned cell. */
  baseline: boolean;
  /** Per dataset (in `datasets` order), the seeds of its demonstration draws; [undefined]: one draw under the spec's seed. */
  seeds: (number | undefined)[][];
  size: number;
}

/** Demonstration draws per grid point: the spec's demoSeeds, else one. */
function drawCount(spec: Pick<SweepSpec, 'demoSeeds'>): number {
  return spec.demoSeeds === undefined ? 1 : Array.isArray(spec.demoSeeds) ? spec.demoSeeds.length : spec.demoSeeds;
}

const unique = <T>(values: readonly T[]): T[] => [...new Set(values)];

export function gridShape(spec: SweepSpec, prepared: PreparedSweep, split: Split): GridShape {
  const byName = <T extends { name: string }>(items: T[], name: string, what: string): T => {
    const found = items.find((x) => x.name === name);
    if (!found) throw new Error(`gridShape: ${what} "${name}" was not prepared`);
    return found;
  };
  const datasets = spec.datasets.map((d) => byName(prepared.datasets, d.name, 'dataset'));
  const ratios = unique(spec.ratios.filter((r) => r !== 0));
  const baseline = spec.ratios.some((r) => r === 0);
  // Without demoSeeds a cell carries no seed of its own: its key takes the spec's (cellIdentity).
  const seeds = datasets.map((d) => (spec.demoSeeds === undefined ? [undefined] : drawSeeds(spec, d)));
  const draws = drawCount(spec);
  const models = spec.models.map((m): ModelAxes => {
    const model = byName(prepared.models, m.name, 'model');
    const modules = unique(spec.modules).filter((mod) => model.modules.includes(mod));
    const layers = unique(layersFor(spec, model));
    return { model, modules, layers, blockSize: draws * ((baseline ? 1 : 0) + modules.length * layers.length * ratios.length) };
  });
  const size = models.reduce((n, m) => n + m.blockSize * datasets.length, 0);
  return { split, engineVersion: prepared.engineVersion, datasets, models, ratios, baseline, seeds, size };
}

/** The split the grid is evaluated on: validation when the paper's selection step follows. */
export function gridSplit(spec: Pick<SweepSpec, 'selection' | 'split'>): Split {
  return spec.selection ? 'validation' : spec.split;
}

/** Cell `index` (0 <= index < shape.size) of the grid, with its key. */
export function cellAt(spec: SweepSpec, shape: GridShape, index: number): Cell {
  if (!Number.isInteger(index) || index < 0 || index >= shape.size) throw new RangeError(`cellAt: index ${index} outside 0..${shape.size - 1}`);
  let rest = index;
  for (const axes of shape.models) {
    const span = axes.blockSize * shape.datasets.length;
    if (rest >= span) {
      rest -= span;
      continue;
    }
    const d = Math.floor(rest / axes.blockSize);
    const dataset = shape.datasets[d];
    const seeds = shape.seeds[d];
    const at = rest % axes.blockSize;
    let offset = Math.floor(at / seeds.length);
    const point = { module: BASELINE_MODULE as ModuleName | typeof BASELINE_MODULE, layer: 0, ratio: 0, split: shape.split, seed: seeds[at % seeds.length] };
    if (shape.baseline && offset === 0) return makeCell(spec, shape.engineVersion, axes.model, dataset, point);
    if (shape.baseline) offset -= 1;
    const r = shape.ratios.length;
    const l = axes.layers.length;
    point.ratio = shape.ratios[offset % r];
    point.layer = axes.layers[Math.floor(offset / r) % l];
    point.module = axes.modules[Math.floor(offset / (r * l))];
    return makeCell(spec, shape.engineVersion, axes.model, dataset, point);
  }
  throw new RangeError(`cellAt: index ${index} not found`); // unreachable: index < size
}

/** Cells [from, from + count) of the grid (fewer at its end). */
export function cellsAt(spec: SweepSpec, shape: GridShape, from: number, count: number): Cell[] {
  const end = Math.min(shape.size, from + count);
  const out: Cell[] = [];
  for (let i = from; i < end; i++) out.push(cellAt(spec, shape, i));
  return out;
}

/** Every cell of a small grid, in grid order (tests and tools; the workflow reads batches with cellsAt). */
export function expandCells(spec: SweepSpec, prepared: PreparedSweep, split: Split): Cell[] {
  const shape = gridShape(spec, prepared, split);
  return cellsAt(spec, shape, 0, shape.size);
}

/**
 * The grid's size as far as the spec alone tells, before the models are read: with listed layers an
 * upper bound (every module counted for every model, though a family may lack some); with "all" a
 * lower bound (one layer per model).
 */
export function gridSizeBound(spec: SweepSpec): { cells: number; bound: 'upper' | 'lower' } {
  const ratios = unique(spec.ratios.filter((r) => r !== 0)).length;
  const baseline = spec.ratios.some((r) => r === 0) ? 1 : 0;
  const layers = spec.layers === 'all' ? 1 : unique(spec.layers).length;
  const block = drawCount(spec) * (baseline + unique(spec.modules).length * layers * ratios);
  return { cells: spec.models.length * spec.datasets.length * block, bound: spec.layers === 'all' ? 'lower' : 'upper' };
}

/** The problem with a grid over the cell limit, naming both, or undefined. `about`: "up to" / "at least" for a bound. */
export function gridLimitProblem(cells: number, limit: number, about = ''): string | undefined {
  if (cells <= limit) return undefined;
  const n = (x: number) => x.toLocaleString('en-US');
  return (
    `the grid has ${about ? `${about} ` : ''}${n(cells)} cells, more than the limit of ${n(limit)} ` +
    '(ICL_SWEEP_MAX_CELLS): split the sweep, or raise the limit on the workers'
  );
}

/**
 * What the sweep's results are a grid of: everything that decides its cell keys and coordinates
 * (names, file fingerprints, axes, protocol, provider, engine version), without what only steers
 * the run (window size, attempts, model paths). Two specs with one grid identity fill the same rows.
 */
export function gridIdentity(spec: SweepSpec, prepared: PreparedSweep): string {
  const fingerprint = (items: { name: string; fingerprint: string }[], name: string) => items.find((x) => x.name === name)?.fingerprint ?? null;
  const grid = {
    engineVersion: prepared.engineVersion,
    models: spec.models.map((m) => ({ name: m.name, fingerprint: fingerprint(prepared.models, m.name) })),
    datasets: spec.datasets.map((d) => ({ name: d.name, fingerprint: fingerprint(prepared.datasets, d.name) })),
    modules: spec.modules,
    layers: spec.layers,
    ratios: spec.ratios,
    shots: spec.shots,
    seed: spec.seed,
    demoSeeds: spec.demoSeeds,
    sizes: spec.sizes,
    split: spec.split,
    scoring: spec.scoring,
    // The paper's rule is what `selection: true` always meant: its grids keep their identity.
    selection: spec.selection !== false && spec.selection.rule === 'paper' ? true : spec.selection,
    executionProvider: spec.executionProvider,
  };
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(grid))));
}
