/**
 * `validate` checks what it can see: after the schema, the models and datasets whose files are on
 * the CLI's machine get the prepare step's checks (paths and allowed roots, family, layers, modules,
 * dataset fields and labels, verbalizers, prompt length); files elsewhere are left to the workers;
 * --schema-only skips the file checks.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/temporal.ts';
import { MODELS, SST2, makeSentimentDataset } from './helpers.ts';

const execFileP = promisify(execFile);
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'icl-cli-validate-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function cli(args: string[], roots = [tmp, path.join(REPO_ROOT, 'test/fixtures')]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, ICL_SWEEP_DATA_ROOTS: roots.join(path.delimiter), ICL_SWEEP_CACHE_DIR: path.join(tmp, 'cache') };
  return execFileP(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: REPO_ROOT, env, timeout: 120_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function specFile(name: string, spec: object): Promise<string> {
  const file = path.join(tmp, `${name}.json`);
  await writeFile(file, JSON.stringify(spec));
  return file;
}

const base = {
  name: 'cli-check',
  models: [{ name: 'gpt2', path: path.join(MODELS, 'gpt2') }],
  datasets: [{ name: 'sst2', task: 'sst2', path: SST2 }],
  modules: ['fc_in'],
  layers: [0, 1],
  ratios: [0, 0.5],
  shots: 2,
  sizes: { testPerClass: 2 },
};

describe('validate', () => {
  it('names a spec file it cannot read', async () => {
    const missing = path.join(tmp, 'no-such-spec.yaml');
    const r = await cli(['validate', missing]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${missing}: cannot read the spec file (no such file)`);
    expect(r.stderr).not.toMatch(/ENOENT|at async/);
  });

  it('passes a spec whose files pass the prepare checks', async () => {
    const r = await cli(['validate', await specFile('good', base)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid sweep "cli-check"');
    expect(r.stdout).toContain('files checked here: 1 model(s), 1 dataset(s)');
  });

  it('runs the prepare checks on the files it can see and lists every problem; --schema-only does not', async () => {
    const corrupt = path.join(tmp, 'corrupt');
    await cp(path.join(MODELS, 'gpt2'), corrupt, { recursive: true });
    await writeFile(path.join(corrupt, 'model.onnx'), 'not onnx');
    const few = await makeSentimentDataset(path.join(tmp, 'few'), { train: 1, validation: 2, test: 4 });
    const file = await specFile('bad', {
      ...base,
      models: [...base.models, { name: 'corrupt', path: corrupt }],
      datasets: [
        ...base.datasets,
        { name: 'few', task: 'sst2', path: few },
        { name: 'words', path: SST2, task: { template: 'Review: {sentence}\nVerdict: {answer}\n', answers: { 0: 'unconvincingly', 1: 'pos' } } },
      ],
      layers: [0, 5],
    });
    const r = await cli(['validate', file]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).toBe(`${file}: invalid sweep spec (3 problems):`);
    expect(lines[1]).toMatch(/^ {2}- models\[1\]\.path: model "corrupt": corrupt ONNX model/);
    expect(lines[2]).toMatch(/^ {2}- model "gpt2" on dataset "few" \(test split\): .*too few examples of class/);
    expect(lines[3]).toMatch(/^ {2}- model "gpt2" on dataset "words" \(test split\): verbalizer " unconvincingly" of task custom is \d+ tokens/);
    const schemaOnly = await cli(['validate', '--schema-only', file]);
    expect(schemaOnly.code).toBe(0);
    expect(schemaOnly.stdout).toContain('(schema only)');
  });

  it('names a layer out of range for the models it can see, and a path outside its allowed roots', async () => {
    const outOfRange = await cli(['validate', await specFile('layers', { ...base, layers: [0, 7] })]);
    expect(outOfRange.code).toBe(2);
    expect(outOfRange.stderr).toContain('layers[1]: layer 7 is out of range for model "gpt2"');
    const outside = await cli(['validate', await specFile('roots', base)], [tmp]);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toContain(`models[0].path: model "gpt2": model folder ${path.join(MODELS, 'gpt2')} is outside the allowed roots`);
  });

  it('leaves files that are not on this machine to the workers', async () => {
    const file = await specFile('elsewhere', { ...base, models: [{ name: 'big', path: '/models/no-such-model-here' }], datasets: [{ name: 'd', task: 'sst2', path: '/datasets/nope' }] });
    const r = await cli(['validate', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('models[0].path: /models/no-such-model-here is not on this machine: the workers check it');
    expect(r.stderr).toContain('datasets[0].path: /datasets/nope is not on this machine: the workers check it');
    expect(r.stdout).toContain('files checked here: 0 model(s), 0 dataset(s)');
  });
});
