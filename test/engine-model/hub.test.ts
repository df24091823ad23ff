/**
 * Models from the Hugging Face cache: a tiny Llama laid out as `huggingface-cli download` leaves an
 * onnx-community repository (snapshots linked into blobs/, refs naming commits, onnx/model.onnx with
 * its external data beside it, a second ONNX variant), found by Hub id through HF_HOME or
 * HF_HUB_CACHE and never downloaded.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, EngineInputError, locateModel, type CellRequest } from '../../engine/index.ts';
import { hubCacheDir } from '../../engine/hub.ts';
import { onnxCommunityFiles, writeHubModel } from '../support/hub-cache.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures');
const tmp = mkdtempSync(join(tmpdir(), 'icl-hub-'));
const HF_HOME = join(tmp, 'hf');
const env = { HF_HOME };
const MAIN = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const files = onnxCommunityFiles(FIXTURES);
const snapshots = writeHubModel(join(HF_HOME, 'hub'), 'tiny-org/tiny-llama', [{ commit: MAIN, files }, { commit: OLD, files: { ...files, 'onnx/model.onnx': files['onnx/model_nopast.onnx'] } }], {
  main: MAIN,
  v0: OLD,
});
const engine = createEngine({ executionProvider: 'cpu', cacheDir: join(tmp, 'cache'), maxModels: 4, decompositionCacheBytes: 1 << 24, threads: 1 });
afterAll(async () => {
  await engine.close();
  rmSync(tmp, { recursive: true, force: true });
});

function error(f: () => unknown): EngineInputError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineInputError);
    return e as EngineInputError;
  }
  throw new Error('expected an EngineInputError');
}

describe('locating a model', () => {
  it('finds a Hub id in $HF_HOME/hub (or $HF_HUB_CACHE) by ref, tag or commit, and the onnx-community file', () => {
    expect(hubCacheDir({ HF_HOME })).toBe(join(HF_HOME, 'hub'));
    expect(hubCacheDir({ HF_HOME: '/x', HF_HUB_CACHE: '/y' })).toBe('/y');
    expect(locateModel({ path: 'tiny-org/tiny-llama' }, env)).toEqual({ dir: snapshots[MAIN], file: 'onnx/model.onnx' });
    expect(locateModel({ path: 'tiny-org/tiny-llama@v0' }, env).dir).toBe(snapshots[OLD]);
    expect(locateModel({ path: `tiny-org/tiny-llama@${OLD}` }, { HF_HUB_CACHE: join(HF_HOME, 'hub') }).dir).toBe(snapshots[OLD]);
    expect(locateModel({ path: 'tiny-org/tiny-llama', file: 'onnx/model_nopast.onnx' }, env)).toEqual({ dir: snapshots[MAIN], file: 'onnx/model_nopast.onnx' });
    // A folder is a folder (the exporters' layout: model.onnx at the top).
    expect(locateModel({ path: join(FIXTURES, 'models/gpt2') }, env)).toEqual({ dir: join(FIXTURES, 'models/gpt2'), file: 'model.onnx' });
  });

  it('says what is missing and never downloads', () => {
    expect(error(() => locateModel({ path: 'tiny-org/absent' }, env)).message).toMatch(
      /no Hub model tiny-org\/absent in the Hugging Face cache .*hf\/hub \(it is never downloaded here: `huggingface-cli download tiny-org\/absent`/,
    );
    expect(error(() => locateModel({ path: 'tiny-org/tiny-llama@v9' }, env)).message).toMatch(/no revision "v9" \(refs: main, v0; snapshots: a{40}, b{40}\)/);
    expect(error(() => locateModel({ path: 'tiny-org/tiny-llama', file: 'onnx/model_q4.onnx' }, env)).message).toMatch(
      /model file onnx\/model_q4\.onnx not found in .*\(ONNX files there: onnx\/model\.onnx, onnx\/model_nopast\.onnx\)/,
    );
    expect(error(() => locateModel({ path: 'tiny-org/tiny-llama', file: '../../x.onnx' }, env)).message).toMatch(/inside the model folder/);
    expect(error(() => locateModel({ path: '/no/such/folder' }, env)).message).toMatch(/model folder \/no\/such\/folder does not exist/);
    const noModel = join(tmp, 'no-model');
    mkdirSync(join(noModel, 'onnx'), { recursive: true });
    cpSync(files['onnx/model_nopast.onnx'], join(noModel, 'onnx/model_fp16.onnx'));
    expect(error(() => locateModel({ path: noModel }, env)).message).toMatch(/no model\.onnx or onnx\/model\.onnx in model folder .*; choose one of onnx\/model_fp16\.onnx with "file"/);
  });
});

describe('a cached model in the engine', () => {
  const cell = (path: string, file?: string): CellRequest => ({
    model: { name: 'tiny', path, ...(file ? { file } : {}) },
    dataset: { name: 'sst2', task: 'sst2', path: join(FIXTURES, 'datasets/sst2') },
    module: 'mlp',
    layer: 1,
    ratio: 0.5,
    split: 'test',
    shots: 2,
    sizes: { testPerClass: 3 },
    scoring: { multipleChoice: 'loglik', svd: 'exact' },
  });

  it('loads onnx/model.onnx with its external data beside it and scores exactly as the exporter-layout folder', async () => {
    process.env.HF_HOME = HF_HOME;
    try {
      const fromHub = await engine.evaluate(cell('tiny-org/tiny-llama'));
      const fromFolder = await engine.evaluate(cell(join(FIXTURES, 'models/llama')));
      expect(fromHub.examples).toEqual(fromFolder.examples);
      expect(fromHub.n).toBe(6);
    } finally {
      delete process.env.HF_HOME;
    }
  });

  it('has a content fingerprint: the same files elsewhere hash alike; another ONNX variant or revision does not', async () => {
    process.env.HF_HOME = HF_HOME;
    try {
      const hub = await engine.describeModel({ name: 'a', path: 'tiny-org/tiny-llama' });
      // The same snapshot copied out of the cache (links resolved) is the same model.
      const copy = join(tmp, 'copy');
      cpSync(snapshots[MAIN], copy, { recursive: true, dereference: true });
      const copied = await engine.describeModel({ name: 'b', path: copy });
      expect(copied.fingerprint).toBe(hub.fingerprint);
      // The unused variant is not part of the model: removing it changes nothing.
      rmSync(join(copy, 'onnx/model_nopast.onnx'));
      expect((await engine.describeModel({ name: 'c', path: copy })).fingerprint).toBe(hub.fingerprint);
      const nopast = await engine.describeModel({ name: 'd', path: 'tiny-org/tiny-llama', file: 'onnx/model_nopast.onnx' });
      expect(nopast.hasPastKeyValues).toBe(false);
      expect(hub.hasPastKeyValues).toBe(true);
      expect(nopast.fingerprint).not.toBe(hub.fingerprint);
      expect((await engine.describeModel({ name: 'e', path: 'tiny-org/tiny-llama@v0' })).fingerprint).not.toBe(hub.fingerprint);
      expect(dirname(snapshots[MAIN])).toBe(dirname(snapshots[OLD]));
    } finally {
      delete process.env.HF_HOME;
    }
  });
});
