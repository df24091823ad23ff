/** The worker's engine: built from its config, every model load (describeModel in prepare, or a cell's) recorded as metrics.modelLoad. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../engine/index.ts';
import { engineOptions } from '../../worker/create.ts';
import { workerConfigFromEnv } from '../../worker/config.ts';
import { fakeLoader } from '../engine-tasks/fake-model.ts';

const tmp = mkdtempSync(join(tmpdir(), 'worker-engine-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('worker engine options', () => {
  it('carry the config and report model loads to metrics.modelLoad', async () => {
    const config = workerConfigFromEnv({
      ICL_SWEEP_CACHE_DIR: join(tmp, 'cache'),
      ICL_SWEEP_MAX_MODELS: '1',
      ICL_SWEEP_THREADS: '2',
      ICL_SWEEP_METRICS_PORT: 'off',
      ICL_SWEEP_DATA_ROOTS: ['/fake', 'relative/models'].join(delimiter),
      ICL_SWEEP_MAX_EXAMPLE_KB: '64',
      ICL_SWEEP_MAX_DATASET_MB: '10',
      ICL_SWEEP_DATASET_CACHE_MB: '100',
      ICL_SWEEP_DISK_CACHE_MB: '300',
      ICL_SWEEP_STATES_DISK_MB: '200',
    });
    const observed: number[] = [];
    const opts = engineOptions(config, { modelLoad: (s: number) => observed.push(s) });
    expect(opts).toMatchObject({
      executionProvider: 'cpu',
      cacheDir: join(tmp, 'cache'),
      maxModels: 1,
      threads: 2,
      decompositionCacheBytes: config.decompositionCacheBytes,
      decompositionDiskBytes: 300 * 2 ** 20,
      statesDiskBytes: 200 * 2 ** 20,
      dataRoots: ['/fake', resolve('relative/models')],
      datasetLimits: { exampleBytes: 64 * 1024, datasetBytes: 10 * 2 ** 20 },
      datasetCacheBytes: 100 * 2 ** 20,
    });
    expect(workerConfigFromEnv({})).toMatchObject({ diskCacheBytes: 20480 * 2 ** 20, statesDiskBytes: 8192 * 2 ** 20, maxCells: 1_000_000, outageToleranceSeconds: 1800 });

    const fake = fakeLoader({ loadDelayMs: 30 });
    const engine = createEngine({ ...opts, loadModel: fake.load, locateModel: fake.locate });
    await engine.describeModel({ name: 'm', path: '/fake/m' }); // what prepareSweep does
    expect(observed).toHaveLength(1);
    expect(observed[0]).toBeGreaterThanOrEqual(0.02);
    await engine.describeModel({ name: 'm', path: '/fake/m' }); // already loaded: nothing to record
    expect(observed).toHaveLength(1);
    await engine.close();
  });

  it('default to roots that keep the demo, recipes and the tests working, and limits that suit real benchmark data', () => {
    const config = workerConfigFromEnv({ ICL_SWEEP_CACHE_DIR: join(tmp, 'cache'), HF_HOME: join(tmp, 'hf') });
    expect(config.dataRoots).toEqual([resolve('data'), join(tmp, 'cache'), join(tmp, 'hf', 'hub'), resolve(import.meta.dirname, '../fixtures')]);
    expect(config.datasetLimits).toEqual({ exampleBytes: 2 ** 20, datasetBytes: 512 * 2 ** 20 });
    expect(config.datasetCacheBytes).toBe(2 ** 30);
    expect(() => workerConfigFromEnv({ ICL_SWEEP_MAX_EXAMPLE_KB: '0' })).toThrow(/ICL_SWEEP_MAX_EXAMPLE_KB/);
  });
});
