/**
 * The checks a sweep's models and datasets must pass before any cell runs, through an Engine (so
 * they read the files where the engine runs): each model loads (files, family, tokenizer), each
 * dataset reads (limits, fields, labels), every (model, dataset, split) of the grid can make its
 * prompts (enough examples for the shots and sizes, single-token verbalizers, prompts within the
 * model's context), and the grid fits the models (layers, modules). Every problem is found at once
 * and named by field, model and dataset; only faults of a single cell are left to the cells.
 *
 * Used by the prepare activity (on the cells task queue, where the files are) and by the CLI's
 * validate / start when the spec's files are on the machine it runs on.
 */
import type { DatasetSpec, Engine, EngineInputError, ModelSpec } from '../engine/types.ts';
import { drawSeeds, gridProblems, type PreparedSweep, type Split } from './cells.ts';
import { datasetRequest, type SweepSpec } from './schema.ts';

/** Bad input from the engine (its class may come from another copy of the module: match the name too). */
export function isEngineInputError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'EngineInputError';
}

export interface InputsCheck {
  prepared: PreparedSweep;
  problems: string[];
}

/** The splits a sweep evaluates: validation then test with the selection step, else its split. */
export function sweepSplits(spec: Pick<SweepSpec, 'selection' | 'split'>): Split[] {
  return spec.selection ? ['validation', 'test'] : [spec.split];
}

export interface InputsCheckOptions {
  /** Called before each step (e.g. to heartbeat). */
  onStep?: (what: string) => void;
  /** Only the models and datasets this accepts are checked (the CLI: those whose files are on its machine); default all. */
  reachable?: { model(model: ModelSpec): boolean; dataset(dataset: DatasetSpec): boolean };
}

/**
 * Describes every model and dataset of `spec` and checks every (model, dataset, split) it sweeps.
 * Input problems are collected; any other error (a transient fault) is thrown.
 */
export async function checkSweepInputs(engine: Engine, spec: SweepSpec, engineVersion: string, opts: InputsCheckOptions = {}): Promise<InputsCheck> {
  const onStep = opts.onStep ?? (() => {});
  const problems: string[] = [];
  const prepared: PreparedSweep = { engineVersion, models: [], datasets: [] };
  for (const [i, model] of spec.models.entries()) {
    if (opts.reachable && !opts.reachable.model(model)) continue;
    onStep(`model "${model.name}"`);
    const info = await inputProblem(() => engine.describeModel(model));
    if (info instanceof Error) problems.push(`models[${i}].path: model "${model.name}": ${info.message}`);
    else prepared.models.push({ name: model.name, fingerprint: info.fingerprint, numLayers: info.numLayers, family: info.family, modules: info.modules, weightDtype: info.weightDtype });
  }
  for (const [i, dataset] of spec.datasets.entries()) {
    if (opts.reachable && !opts.reachable.dataset(dataset)) continue;
    onStep(`dataset "${dataset.name}"`);
    const info = await inputProblem(() => engine.describeDataset(datasetRequest(spec, dataset)));
    if (info instanceof Error) problems.push(`datasets[${i}].${datasetField(dataset, info)}: dataset "${dataset.name}": ${info.message}`);
    else prepared.datasets.push({ name: dataset.name, fingerprint: info.fingerprint, defaultSeed: info.defaultSeed });
  }
  for (const model of spec.models.filter((m) => prepared.models.some((p) => p.name === m.name))) {
    for (const dataset of spec.datasets.filter((d) => prepared.datasets.some((p) => p.name === d.name))) {
      // One line per problem of a pair: a verbalizer or context problem is the same on both splits and every draw.
      const reasons = new Set<string>();
      const seeds = drawSeeds(spec, prepared.datasets.find((p) => p.name === dataset.name)!);
      for (const split of sweepSplits(spec)) {
        for (const seed of seeds) {
          const draw = spec.demoSeeds === undefined ? '' : `, seed ${seed}`;
          onStep(`model "${model.name}" on dataset "${dataset.name}" (${split}${draw})`);
          const request = { model, dataset: datasetRequest(spec, dataset), split, shots: spec.shots, seed, sizes: spec.sizes };
          const outcome = await inputProblem(() => engine.checkCells(request));
          if (outcome instanceof Error && !reasons.has(outcome.message)) {
            reasons.add(outcome.message);
            problems.push(`model "${model.name}" on dataset "${dataset.name}" (${split} split${draw}): ${outcome.message}`);
          }
        }
      }
    }
  }
  if (problems.length === 0) problems.push(...gridProblems(spec, prepared, prepared.models.length === spec.models.length));
  return { prepared, problems };
}

/** The step's result, or the input error it threw (any other error is thrown). */
async function inputProblem<T>(step: () => Promise<T>): Promise<T | EngineInputError> {
  try {
    return await step();
  } catch (err) {
    if (isEngineInputError(err)) return err as EngineInputError;
    throw err;
  }
}

/** The spec field a dataset's input error is about: its task when the error names the task, else its files. */
function datasetField(dataset: SweepSpec['datasets'][number], err: EngineInputError): string {
  if (typeof dataset.task === 'string' && err.subject === dataset.task) return 'task';
  return dataset.path !== undefined ? 'path' : 'recipe';
}

/** The one message for a list of problems, as the workflow and the CLI show it. */
export function problemsMessage(problems: string[]): string {
  return `invalid sweep spec (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`;
}
