/**
 * What the `prompt` and `export` commands read about a stored sweep: its validated spec and its
 * cells, a cell picked by key or by coordinates, and the engine settings of this machine (the cache
 * folder, the task folders) for rebuilding prompts from the dataset files.
 */
import { cellResults, sweepByName, type CellDemonstrationsRow, type CellResultRow, type CellRow, type Db } from '../db/queries.ts';
import type { PromptSource } from '../engine/prompts.ts';
import { checkSpec, datasetRequest, type SweepSpec } from '../sweepspec/schema.ts';
import { taskDirsFromEnv } from '../engine/tasks/registry.ts';
import type { CellSampleRecord, DatasetSpec, ModelSpec } from '../engine/types.ts';
import { DEFAULT_CACHE_DIR } from '../worker/config.ts';

/** A problem with what the user asked for (exit code 2 where usage is wrong, 1 otherwise). */
export class CommandError extends Error {}

export interface StoredSweep {
  name: string;
  spec: SweepSpec;
  rows: CellResultRow[];
}

export async function loadSweep(db: Db, name: string): Promise<StoredSweep> {
  const sweep = await sweepByName(db, name);
  if (!sweep) throw new CommandError(`no sweep named "${name}" in the database (${db.location})`);
  const check = checkSpec(sweep.spec);
  if (!check.ok) throw new CommandError(`the stored spec of sweep "${name}" does not validate any more: ${check.problems.join('; ')}`);
  return { name, spec: check.spec, rows: await cellResults(db, name) };
}

/** The spec's model and the engine's view of its dataset for a cell of the sweep. */
export function cellInputs(spec: SweepSpec, row: Pick<CellResultRow, 'model' | 'dataset'>): { model: ModelSpec; dataset: DatasetSpec } {
  const model = spec.models.find((m) => m.name === row.model);
  const dataset = spec.datasets.find((d) => d.name === row.dataset);
  if (!model || !dataset) throw new CommandError(`the stored spec has no model "${row.model}" or dataset "${row.dataset}"`);
  return { model, dataset: datasetRequest(spec, dataset) };
}

/** What rebuilds a stored cell's prompts: its dataset as the engine sees it, its split, the shots and seed it used, and its draw. */
export function promptSource(spec: SweepSpec, row: CellResultRow, cell: Pick<CellRow, 'shots' | 'seed'>, draw: CellDemonstrationsRow | undefined): PromptSource {
  return {
    dataset: cellInputs(spec, row).dataset,
    split: row.split as PromptSource['split'],
    shots: cell.shots ?? undefined,
    seed: cell.seed ?? undefined,
    sizes: spec.sizes,
    ...(draw
      ? {
          record: {
            demonstrations: { split: 'train', rows: draw.demonstrationRows, labels: draw.demonstrationLabels },
            examplesSplit: draw.examplesSplit as CellSampleRecord['examplesSplit'],
          },
        }
      : {}),
  };
}

/** Engine settings of this machine: ICL_SWEEP_CACHE_DIR and ICL_SWEEP_TASK_DIRS, as a worker reads them. */
export function localEngineSettings(env: NodeJS.ProcessEnv = process.env): { cacheDir: string; taskDirs: string[] } {
  return { cacheDir: env.ICL_SWEEP_CACHE_DIR || DEFAULT_CACHE_DIR, taskDirs: taskDirsFromEnv(env) };
}

export interface CellFilter {
  model?: string;
  dataset?: string;
  split?: string;
  /** The demonstration draw's seed (cells.seed). */
  seed?: number;
}

const describeRow = (r: CellResultRow) => `${r.model} / ${r.dataset} / ${r.split}: ${r.module}/${r.layer}/${r.ratio} (${r.status}, ${r.cellKey.slice(0, 12)})`;

/**
 * A cell of the sweep by its key (or a unique prefix of 8+ characters) or by `module/layer/ratio`
 * (ratio 0 is the unpruned cell, whatever module and layer are written); model, dataset, split and
 * seed (a demonstration draw) narrow it down where the sweep has several.
 */
export function findCell(rows: readonly CellResultRow[], selector: string, filter: CellFilter = {}): CellResultRow {
  const narrowed = rows.filter(
    (r) =>
      (!filter.model || r.model === filter.model) &&
      (!filter.dataset || r.dataset === filter.dataset) &&
      (!filter.split || r.split === filter.split) &&
      (filter.seed === undefined || r.seed === filter.seed),
  );
  let found: CellResultRow[];
  if (/^[0-9a-f]{8,64}$/.test(selector)) {
    found = narrowed.filter((r) => r.cellKey.startsWith(selector));
  } else {
    const m = /^([A-Za-z_]+)\/(-?\d+)\/([0-9.]+)$/.exec(selector);
    if (!m) throw new CommandError(`--cell: a cell key, or module/layer/ratio (e.g. mlp/0/0.9), got "${selector}"`);
    const [, module, layer, ratio] = m;
    found = Number(ratio) === 0 ? narrowed.filter((r) => r.ratio === 0) : narrowed.filter((r) => r.module === module && r.layer === Number(layer) && r.ratio === Number(ratio));
  }
  if (found.length === 1) return found[0];
  if (found.length === 0) {
    throw new CommandError(`no cell "${selector}" in this sweep${Object.values(filter).some(Boolean) ? ' with those --model/--dataset/--split/--seed' : ''}; it has ${rows.length} cells, e.g. ${rows.slice(0, 5).map(describeRow).join('; ')}`);
  }
  throw new CommandError(`"${selector}" matches ${found.length} cells; add --model, --dataset, --split or --seed: ${found.slice(0, 8).map(describeRow).join('; ')}`);
}
