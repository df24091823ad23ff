/**
 * Allowed roots: model and dataset paths resolve with symlinks followed and must lie under a root;
 * a path outside is refused with the same words whether or not it exists, and so is a folder with a
 * link that leaves the roots (a config.json linked to /etc/passwd is never read).
 */
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, EngineInputError, locateModel } from '../../engine/index.ts';
import { DataRoots, realPathOf } from '../../engine/paths.ts';
import { onnxCommunityFiles, writeHubModel } from '../support/hub-cache.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures');
const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'engine-roots-')));
const root = join(tmp, 'allowed');
const outside = join(tmp, 'outside');
mkdirSync(join(root, 'models'), { recursive: true });
mkdirSync(join(root, 'datasets'), { recursive: true });
mkdirSync(outside, { recursive: true });
cpSync(join(FIXTURES, 'models/gpt2'), join(root, 'models/gpt2'), { recursive: true });
cpSync(join(FIXTURES, 'datasets/sst2'), join(root, 'datasets/sst2'), { recursive: true });
cpSync(join(FIXTURES, 'models/gpt2'), join(outside, 'gpt2'), { recursive: true });
const secret = join(outside, 'secret.json');
writeFileSync(secret, '{"password": "hunter2"}');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const roots = new DataRoots([root]);

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(EngineInputError);
  const message = (err as Error).message;
  expect(message).toContain(`is outside the allowed roots (${root}; ICL_SWEEP_DATA_ROOTS)`);
  expect(message).not.toContain('hunter2');
  return message;
}

describe('DataRoots.folder', () => {
  it('gives the real path of a folder under a root', async () => {
    expect(await roots.folder('model folder', join(root, 'models/gpt2'))).toBe(join(root, 'models/gpt2'));
    expect(await roots.folder('model folder', join(root, 'models/../models/gpt2'))).toBe(join(root, 'models/gpt2'));
    // Inside the roots, a missing folder is let through: the reader then says it does not exist.
    expect(await roots.folder('model folder', join(root, 'models/nope'))).toBe(join(root, 'models/nope'));
  });

  it('refuses a path outside the roots with the same words whether or not it exists', async () => {
    const there = await refusal(roots.folder('model folder', join(outside, 'gpt2')));
    const missing = await refusal(roots.folder('model folder', join(outside, 'no-such-model')));
    expect(there.replace('gpt2', 'X')).toBe(missing.replace('no-such-model', 'X'));
    await refusal(roots.folder('model folder', '/etc'));
    await refusal(roots.folder('model folder', join(root, '../outside/gpt2')));
    await refusal(roots.folder('model folder', `${root}-sibling`)); // a prefix of the name is not a parent
  });

  it('follows links: a link under a root to a folder outside is outside', async () => {
    symlinkSync(join(outside, 'gpt2'), join(root, 'models/linked-out'));
    symlinkSync(join(root, 'models/gpt2'), join(root, 'models/linked-in'));
    symlinkSync(join(outside, 'nowhere'), join(root, 'models/dangling-out'));
    await refusal(roots.folder('model folder', join(root, 'models/linked-out')));
    await refusal(roots.folder('model folder', join(root, 'models/dangling-out')));
    expect(await roots.folder('model folder', join(root, 'models/linked-in'))).toBe(join(root, 'models/gpt2'));
    expect(await realPathOf(join(root, 'models/dangling-out/x'))).toBe(join(outside, 'nowhere/x'));
  });

  it('refuses a folder holding a link that leaves the roots (config.json -> /etc/passwd)', async () => {
    const dir = join(root, 'models/passwd');
    cpSync(join(root, 'models/gpt2'), dir, { recursive: true });
    unlinkSync(join(dir, 'config.json'));
    symlinkSync('/etc/passwd', join(dir, 'config.json'));
    const message = await refusal(roots.folder('model folder', dir));
    expect(message).toContain(join(dir, 'config.json'));
    expect(message).not.toContain('root:');
    const data = join(root, 'datasets/nested');
    mkdirSync(join(data, 'data'), { recursive: true });
    symlinkSync(secret, join(data, 'data/train-00000-of-00001.parquet'));
    expect(await refusal(roots.folder('dataset folder', data))).toContain('data/train-00000-of-00001.parquet');
  });
});

describe('an engine with allowed roots', () => {
  const engine = createEngine({ executionProvider: 'cpu', cacheDir: join(tmp, 'cache'), maxModels: 1, decompositionCacheBytes: 1 << 24, threads: 1, dataRoots: [root] });
  afterAll(() => engine.close());

  it('reads models and datasets under them', async () => {
    expect((await engine.describeModel({ name: 'm', path: join(root, 'models/gpt2') })).family).toBe('gpt2');
    expect((await engine.describeDataset({ name: 'd', task: 'sst2', path: join(root, 'datasets/sst2') })).classes).toHaveLength(2);
  });

  it('refuses a model, a dataset or a cell whose files are elsewhere, before reading them', async () => {
    await refusal(engine.describeModel({ name: 'm', path: join(outside, 'gpt2') }));
    await refusal(engine.describeModel({ name: 'm', path: join(root, 'models/passwd') }));
    await refusal(engine.describeDataset({ name: 'd', task: 'sst2', path: outside }));
    await refusal(engine.describeDataset({ name: 'd', task: 'sst2', path: join(FIXTURES, 'datasets/sst2') }));
    await refusal(
      engine.checkCells({ model: { name: 'm', path: join(outside, 'gpt2') }, dataset: { name: 'd', task: 'sst2', path: join(root, 'datasets/sst2') }, split: 'test', shots: 2, sizes: { testPerClass: 2 } }),
    );
  });

  it('refuses a spec task folder outside them', async () => {
    mkdirSync(join(outside, 'tasks'), { recursive: true });
    await refusal(engine.describeDataset({ name: 'd', task: 'sst2', path: join(root, 'datasets/sst2'), taskDirs: [join(outside, 'tasks')] }));
  });

  it('finds a Hub id in a Hub cache under them, and refuses one in a cache elsewhere', async () => {
    const files = onnxCommunityFiles(FIXTURES);
    const refs = { main: 'c'.repeat(40) };
    const inside = join(root, 'hf-hub');
    const elsewhere = join(outside, 'hf-hub');
    for (const hub of [inside, elsewhere]) writeHubModel(hub, 'tiny-org/tiny-llama', [{ commit: refs.main, files }], refs);
    const options = { executionProvider: 'cpu' as const, cacheDir: join(tmp, 'cache'), maxModels: 1, decompositionCacheBytes: 1 << 24, threads: 1, dataRoots: [root] };
    const found = createEngine({ ...options, locateModel: (m) => locateModel(m, { HF_HUB_CACHE: inside }) });
    const refused = createEngine({ ...options, locateModel: (m) => locateModel(m, { HF_HUB_CACHE: elsewhere }) });
    try {
      expect((await found.describeModel({ name: 'm', path: 'tiny-org/tiny-llama' })).family).toBe('llama');
      await refusal(refused.describeModel({ name: 'm', path: 'tiny-org/tiny-llama' }));
    } finally {
      await Promise.all([found.close(), refused.close()]);
    }
  });
});
