/**
 * Cells and their identity. Pure and deterministic: the `sweep` workflow runs this inside
 * Temporal's sandbox, so no Node imports, no clocks, no randomness.
 *
 * A cell is one (model, dataset, module, layer, ratio, split) point of a grid. Its key is the
 * sha256 of the canonical JSON of everything its result depends on (file fingerprints, protocol,
 * engine version, execution provider), so a cell computed once is reused by every later sweep that
 * contains it. The grid itself, addressed by cell index, is in grid.ts.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import type { ExecutionProvider, SweepSpec } from './schema.ts';
import type { ModuleName } from '../engine/vocabulary.ts';

export type Split = 'validation' | 'test';
/** Module of the canonical unpruned (ratio 0) cell. */
export const BASELINE_MODULE = 'none';
export type CellModule = ModuleName | typeof BASELINE_MODULE;

/** What the prepare activity learned about a model (engine.describeModel). */
export interface PreparedModel {
  name: string;
  fingerprint: string;
  numLayers: number;
  family: string;
  /** Module names (groups included) the model's family supports. */
  modules: ModuleName[];
  /** Element type of the prunable weights as stored ('float32', 'float16', 'bfloat16'). */
  weightDtype: string;
}

/** What the prepare activity learned about a dataset (engine.describeDataset). */
export interface PreparedDataset {
  name: string;
  fingerprint: string;
  /** The task's default seed (demonstration draws count up from it when the spec gives no seed). */
  defaultSeed?: number;
}

export interface PreparedSweep {
  engineVersion: string;
  models: PreparedModel[];
  datasets: PreparedDataset[];
}

export interface CellCoordinates {
  model: string;
  dataset: string;
  module: CellModule;
  layer: number;
  ratio: number;
  split: Split;
}

export interface Cell extends CellCoordinates {
  key: string;
  /** The demonstration draw's seed (spec.demoSeeds); absent: the spec's seed, or the task's default. */
  seed?: number;
}

/** A point of the grid, with the draw it is evaluated under. */
export interface GridPoint {
  module: CellModule;
  layer: number;
  ratio: number;
  split: Split;
  /** The draw's seed; absent: the spec's seed. */
  seed?: number;
}

/** Everything a cell's result depends on; the key hashes exactly this. */
export interface CellIdentity {
  engineVersion: string;
  modelFingerprint: string;
  /** The weights' stored type: with the execution provider it decides the precision the cell runs in. */
  weightDtype: string;
  datasetFingerprint: string;
  module: CellModule;
  layer: number;
  ratio: number;
  split: Split;
  shots: number | null;
  seed: number | null;
  sizes: { validationPerClass: number | null; testPerClass: number | null };
  scoring: { multipleChoice: string; svd: string };
  /** "paper" under the paper's protocol; absent under the default one, so default keys are what they always were. */
  protocol?: 'paper';
  /** ONNX Runtime execution provider the cell runs on (CPU and CUDA kernels differ in their last bits). */
  executionProvider: ExecutionProvider;
}

/** The parts of a spec a cell key depends on. */
export type KeySpec = Pick<SweepSpec, 'shots' | 'seed' | 'sizes' | 'scoring' | 'protocol' | 'executionProvider'>;

/** JSON with object keys sorted at every level; `undefined` members are dropped, -0 becomes 0. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new Error(`canonicalJson: non-finite number ${value}`);
      return JSON.stringify(Object.is(value, -0) ? 0 : value);
    }
    if (value === undefined) return 'null';
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The identity of a cell, canonicalised: a ratio-0 cell is the unpruned model whatever its module
 * and layer (and whatever SVD it would have used), so it gets module "none", layer 0, svd "none".
 */
export function cellIdentity(
  spec: KeySpec,
  engineVersion: string,
  model: Pick<PreparedModel, 'fingerprint' | 'weightDtype'>,
  dataset: Pick<PreparedDataset, 'fingerprint'>,
  point: GridPoint,
): CellIdentity {
  const baseline = point.ratio === 0;
  return {
    engineVersion,
    modelFingerprint: model.fingerprint,
    weightDtype: model.weightDtype,
    datasetFingerprint: dataset.fingerprint,
    module: baseline ? BASELINE_MODULE : point.module,
    layer: baseline ? 0 : point.layer,
    ratio: baseline ? 0 : point.ratio,
    split: point.split,
    shots: spec.shots ?? null,
    seed: point.seed ?? spec.seed ?? null,
    sizes: {
      validationPerClass: spec.sizes?.validationPerClass ?? null,
      testPerClass: spec.sizes?.testPerClass ?? null,
    },
    scoring: { multipleChoice: spec.scoring.multipleChoice, svd: baseline ? 'none' : spec.scoring.svd },
    ...(spec.protocol === 'paper' ? { protocol: 'paper' as const } : {}),
    executionProvider: spec.executionProvider,
  };
}

export function cellKey(identity: CellIdentity): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(identity))));
}

/** The layers a model is swept over: "all" is each layer in turn; a list is taken as given. */
export function layersFor(spec: Pick<SweepSpec, 'layers'>, model: Pick<PreparedModel, 'numLayers'>): number[] {
  if (spec.layers === 'all') return Array.from({ length: model.numLayers }, (_, i) => i);
  return [...spec.layers];
}

/**
 * Problems of a valid spec that only the models can reveal (layer out of range, module no model has), by
 * field. `allModels: false`: `prepared` holds only some of the spec's models, so a module none of them
 * has may still be another's and is not reported.
 */
export function gridProblems(spec: SweepSpec, prepared: PreparedSweep, allModels = true): string[] {
  const problems: string[] = [];
  if (spec.layers !== 'all') {
    spec.layers.forEach((layer, i) => {
      for (const m of prepared.models) {
        if (layer >= m.numLayers) {
          problems.push(`layers[${i}]: layer ${layer} is out of range for model "${m.name}" (${m.numLayers} layers: 0..${m.numLayers - 1}, or -1 for every layer)`);
        }
      }
    });
  }
  spec.modules.forEach((module, i) => {
    if (allModels && !prepared.models.some((m) => m.modules.includes(module))) {
      const families = [...new Set(prepared.models.map((m) => m.family))].join(', ');
      problems.push(`modules[${i}]: "${module}" is not a module of any model in the sweep (families: ${families})`);
    }
  });
  // Two entries with the same files would be the same cells under two names: one grid row each is required.
  for (const [field, items] of [
    ['models', prepared.models],
    ['datasets', prepared.datasets],
  ] as const) {
    const first = new Map<string, string>();
    for (const item of items) {
      const earlier = first.get(item.fingerprint);
      const i = (spec[field] as { name: string }[]).findIndex((x) => x.name === item.name);
      if (earlier !== undefined) problems.push(`${field}[${i}]: the same files as "${earlier}" (give each ${field === 'models' ? 'model' : 'dataset'} once)`);
      else first.set(item.fingerprint, item.name);
    }
  }
  return problems;
}

/**
 * The demonstration draws of a dataset: the spec's list of seeds, or `demoSeeds` seeds counting up
 * from the spec's seed (else the task's default seed), or one draw under the spec's seed (undefined:
 * the task's default, decided by the engine, as without draws).
 */
export function drawSeeds(spec: Pick<SweepSpec, 'seed' | 'demoSeeds'>, dataset: Pick<PreparedDataset, 'name' | 'defaultSeed'>): (number | undefined)[] {
  const draws = spec.demoSeeds;
  if (draws === undefined) return [spec.seed];
  if (Array.isArray(draws)) return [...draws];
  const from = spec.seed ?? dataset.defaultSeed;
  if (from === undefined) throw new Error(`drawSeeds: dataset "${dataset.name}" was prepared without its task's default seed`);
  return Array.from({ length: draws }, (_, i) => from + i);
}

/** One cell, with canonical coordinates for a ratio-0 point. */
export function makeCell(
  spec: KeySpec,
  engineVersion: string,
  model: Pick<PreparedModel, 'name' | 'fingerprint' | 'weightDtype'>,
  dataset: Pick<PreparedDataset, 'name' | 'fingerprint'>,
  point: GridPoint,
): Cell {
  const identity = cellIdentity(spec, engineVersion, model, dataset, point);
  return {
    key: cellKey(identity),
    model: model.name,
    dataset: dataset.name,
    module: identity.module,
    layer: identity.layer,
    ratio: identity.ratio,
    split: point.split,
    ...(point.seed === undefined ? {} : { seed: point.seed }),
  };
}

/** The baseline (unpruned) cell of a (model, dataset, split), under the draw `seed` (absent: the spec's seed). */
export function baselineCell(
  spec: KeySpec,
  prepared: PreparedSweep,
  modelName: string,
  datasetName: string,
  split: Split,
  seed?: number,
): Cell {
  const model = prepared.models.find((m) => m.name === modelName);
  const dataset = prepared.datasets.find((d) => d.name === datasetName);
  if (!model || !dataset) throw new Error(`baselineCell: unknown model "${modelName}" or dataset "${datasetName}"`);
  return makeCell(spec, prepared.engineVersion, model, dataset, { module: BASELINE_MODULE, layer: 0, ratio: 0, split, seed });
}

/** One demonstration draw of a pick: its validation cell, and the test cells of the unpruned model and of the pick. */
export interface PickDraw {
  seed: number | null;
  validation: Cell;
  baseline: Cell;
  selected: Cell;
}

/** The draws of a pick of the selection step, in the grid's draw order (the selected cell is the baseline when the pick is ratio 0). */
export function pickDraws(
  spec: KeySpec & Pick<SweepSpec, 'demoSeeds'>,
  prepared: PreparedSweep,
  pick: { model: string; dataset: string; module: CellModule; layer: number; ratio: number },
): PickDraw[] {
  const model = prepared.models.find((m) => m.name === pick.model);
  const dataset = prepared.datasets.find((d) => d.name === pick.dataset);
  if (!model || !dataset) throw new Error(`pickDraws: unknown model "${pick.model}" or dataset "${pick.dataset}"`);
  const seeds = spec.demoSeeds === undefined ? [undefined] : drawSeeds(spec, dataset);
  return seeds.map((seed) => {
    const at = (split: Split, point: { module: CellModule; layer: number; ratio: number }) => makeCell(spec, prepared.engineVersion, model, dataset, { ...point, split, seed });
    return {
      seed: seed ?? spec.seed ?? null,
      validation: at('validation', pick),
      baseline: at('test', { module: BASELINE_MODULE, layer: 0, ratio: 0 }),
      selected: at('test', pick),
    };
  });
}
