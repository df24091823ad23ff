/** prepareSweep: fingerprints and layer counts of the spec's models and datasets; registers the sweep. */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import type { ModuleName } from '../engine/vocabulary.ts';
import { EngineInputError, fingerprintFolder, locateModel, type ModelSpec } from '../engine/index.ts';
import { upsertSweep } from '../db/queries.ts';
import { gridProblems, type PreparedModel, type PreparedSweep } from '../sweepspec/cells.ts';
import { datasetRequest } from '../sweepspec/schema.ts';
import type { PrepareSweepInput } from './types.ts';
import type { ActivityContext } from './context.ts';

/**
 * Identity of a model folder the engine rejects: a content hash of its files (so fixing a file gives
 * new cells) and the layer count from config.json when readable. null when there is no such folder.
 */
async function describeBrokenModel(dir: string, modules: ModuleName[]): Promise<Omit<PreparedModel, 'name' | 'broken'> | null> {
  try {
    if (!(await stat(join(dir, 'config.json'))).isFile()) return null;
  } catch {
    return null;
  }
  const fingerprint = await fingerprintFolder(dir);
  let numLayers = 1;
  let family = 'unknown';
  try {
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const n = config.num_hidden_layers ?? config.n_layer ?? config.num_layers;
    if (typeof n === 'number' && Number.isInteger(n) && n > 0) numLayers = n;
    if (typeof config.model_type === 'string') family = config.model_type;
  } catch {
    /* unreadable config: one layer */
  }
  return { fingerprint: `unusable:${fingerprint}`, numLayers, family, modules: [...modules] };
}

/** The folder of a model spec (a Hub id's snapshot), or its path as written when it cannot be located. */
function modelFolder(model: ModelSpec): string {
  try {
    return locateModel(model).dir;
  } catch {
    return model.path;
  }
}

function isInputError(err: unknown): err is Error {
  return err instanceof EngineInputError || (err instanceof Error && err.name === 'EngineInputError');
}

export function prepareActivities(ctx: ActivityContext) {
  return {
    async prepareSweep({ spec, workflowId }: PrepareSweepInput): Promise<PreparedSweep> {
      const problems: string[] = [];
      const prepared: PreparedSweep = { engineVersion: ctx.engineVersion, models: [], datasets: [] };
      // Input errors are collected (every problem by field); anything else is transient and retried.
      for (const [i, model] of spec.models.entries()) {
        heartbeat({ model: model.name });
        try {
          const info = await ctx.engine.describeModel(model);
          prepared.models.push({ name: model.name, fingerprint: info.fingerprint, numLayers: info.numLayers, family: info.family, modules: info.modules });
        } catch (err) {
          if (!isInputError(err)) throw err;
          // A folder that is there but unusable (corrupt or incomplete files): its cells fail one by one with
          // the engine's reason and the rest of the sweep goes on. A missing folder is a mistake in the spec.
          const broken = await describeBrokenModel(modelFolder(model), spec.modules);
          if (broken) prepared.models.push({ name: model.name, ...broken, broken: err.message });
          else problems.push(`models[${i}].path: ${err.message}`);
        }
      }
      for (const [i, dataset] of spec.datasets.entries()) {
        heartbeat({ dataset: dataset.name });
        try {
          const info = await ctx.engine.describeDataset(datasetRequest(spec, dataset));
          prepared.datasets.push({ name: dataset.name, fingerprint: info.fingerprint });
        } catch (err) {
          if (!isInputError(err)) throw err;
          const field = typeof dataset.task === 'string' && (err as EngineInputError).subject === dataset.task ? 'task' : dataset.path !== undefined ? 'path' : 'recipe';
          problems.push(`datasets[${i}].${field}: ${err.message}`);
        }
      }
      if (problems.length === 0) problems.push(...gridProblems(spec, prepared));
      if (problems.length > 0) {
        throw ApplicationFailure.create({
          type: 'InvalidSpec',
          nonRetryable: true,
          message: `invalid sweep spec (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
          details: [problems],
        });
      }
      await upsertSweep(ctx.db, { name: spec.name, workflowId, spec });
      return prepared;
    },
  };
}
