/**
 * Tasks as data: the protocol tasks read from engine/tasks/builtin/*.yaml resolve to exactly the
 * definitions the cell keys of stored sweeps hash (pinned below); lm-evaluation-harness names are
 * aliases; a user's task folder adds tasks; bad files get errors naming the file and the field; the
 * paper's protocol switches the task variants its files declare, and nothing else.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, loadDataset, prepareDataset } from '../../engine/data/index.ts';
import { BUILTIN_DEFINITIONS, resolveTask, taskRegistry } from '../../engine/tasks/registry.ts';
import { renderDemo, renderQuery } from '../../engine/tasks/render.ts';
import { sampleCell } from '../../engine/tasks/sampling.ts';
import { createEngine } from '../../engine/index.ts';
import { EngineInputError } from '../../engine/types.ts';
import { BUILTIN_TASKS } from '../../engine/vocabulary.ts';
import { virtualRead } from './virtual-dataset.ts';

const FIX = join(import.meta.dirname, '../fixtures/datasets');
const tmp = mkdtempSync(join(tmpdir(), 'icl-task-files-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** sha256 of each resolved protocol task's canonical JSON, as the TypeScript table defined them before they became files. */
const PINNED: Record<string, string> = {
  sst2: '434796c3cdd3149f910668cad5b08fc88e4fb45bf9b34ad8acd24934ba99b7cb',
  emoc: '6462e84e031ef436b141e038dd2cddbfa8d48e885777d961460f231e8cee9192',
  agnews: 'd90ecb607fa49559ce3cbb787591285242d895b873f8deea823b48987022ac3b',
  mrpc: '948dfe171c81e548eec94d9a52606dc413e90b54e2c57cd2fe5362a6030482fc',
  rte: '19fbfe8da4b71eef148c9639ceec343529a61e35f2e58f31cd1e175315edad17',
  cb: 'b8ba3a6834e978eaf2da8cb0861c33a3a68fe6d2c670b6dfddfd4965a535ac04',
  copa: 'eba88fe3b7cf9ad18790675e6ace249c227b07a79996c9b3e73b692cef544530',
};
const hash = (v: unknown) => createHash('sha256').update(canonicalJson(v)).digest('hex');

function folder(name: string, files: Record<string, string>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

async function inputError(p: Promise<unknown> | (() => unknown)): Promise<EngineInputError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(EngineInputError);
    return e as EngineInputError;
  }
  throw new Error('expected an EngineInputError');
}

describe('builtin task files', () => {
  it('resolve to the definitions stored cell keys hash, for all seven tasks', () => {
    expect(Object.fromEntries(BUILTIN_TASKS.map((t) => [t, hash(BUILTIN_DEFINITIONS[t])]))).toEqual(PINNED);
  });

  it("lm-evaluation-harness's names are aliases with the same definition (and so the same fingerprint)", async () => {
    expect(resolveTask('ag_news')).toEqual(BUILTIN_DEFINITIONS.agnews);
    expect(resolveTask('sglue_rte')).toEqual(BUILTIN_DEFINITIONS.rte);
    for (const name of ['sst2', 'cb', 'copa', 'rte', 'mrpc']) expect(resolveTask(name).name).toBe(name);
    expect((await loadDataset(join(FIX, 'rte'), 'sglue_rte')).fingerprint).toBe((await loadDataset(join(FIX, 'rte'), 'rte')).fingerprint);
  });

  it('an unknown name lists every known task and its aliases', async () => {
    const e = await inputError(() => resolveTask('sst-2'));
    expect(e.message).toMatch(/unknown task "sst-2" \(did you mean "sst2"\?\); known tasks: /);
    for (const t of BUILTIN_TASKS) expect(e.message).toContain(t);
    expect(e.message).toContain('agnews (alias ag_news)');
    expect(e.message).toMatch(/taskDirs/);
  });
});

describe('a user task folder', () => {
  const TASKS = join(import.meta.dirname, '../fixtures/tasks'); // verdicts.yaml: the full form, with an alias
  // the template form, with its own defaults
  const tickets = folder('user-tasks', {
    'tickets.yaml': 'template: "ticket: {body}\\n team : {answer} \\n"\nanswers: { "0": billing, "1": network }\ndefaults: { demonstrationsPerClass: 1, seed: 5, validationPerClass: 3 }\n',
  });
  const dirs = [tickets, TASKS];

  it('adds tasks by file, in both forms, with the prompts their templates spell', () => {
    const t = resolveTask('tickets', { dirs });
    expect(t).toMatchObject({ name: 'tickets', classes: ['billing', 'network'], verbalizers: [' billing', ' network'], defaults: { shots: 2, seed: 5, validationPerClass: 3 } });
    expect(renderDemo(t, { body: 'my bill is wrong' }, 0)).toBe('ticket: my bill is wrong\n team : billing \n');
    expect(renderQuery(t, { body: 'no signal' })).toBe('ticket: no signal\n team :');
    const v = resolveTask('verdict-v1', { dirs });
    expect(v).toEqual(resolveTask('verdicts', { dirs }));
    expect(v).toMatchObject({ labelField: 'verdict', labels: { bad: 0, good: 1 }, interleave: [1, 0], verbalizers: [' No', ' Yes'] });
    expect(renderQuery(v, { review: 'fine' })).toBe('Review: fine\nVerdict:');
    expect(taskRegistry(dirs).entries.map((e) => e.name)).toEqual([...Object.keys(PINNED).sort(), 'tickets', 'verdicts']);
  });

  it('reach the engine from the spec (dataset taskDirs) and from the environment (engine taskDirs)', async () => {
    const data = { name: 'reviews', path: join(FIX, 'custom'), task: 'verdicts' };
    const fromSpec = createEngine({ executionProvider: 'cpu', cacheDir: join(tmp, 'c1'), maxModels: 1, decompositionCacheBytes: 1 << 20 });
    const fromEnv = createEngine({ executionProvider: 'cpu', cacheDir: join(tmp, 'c2'), maxModels: 1, decompositionCacheBytes: 1 << 20, taskDirs: [TASKS] });
    try {
      const a = await fromSpec.describeDataset({ ...data, taskDirs: [TASKS] });
      const b = await fromEnv.describeDataset(data);
      expect(a).toEqual(b);
      expect(a).toMatchObject({ task: 'verdicts', classes: ['No', 'Yes'], kind: 'classification' });
      await expect(fromSpec.describeDataset(data)).rejects.toThrow(/unknown task "verdicts"/);
    } finally {
      await Promise.all([fromSpec.close(), fromEnv.close()]);
    }
  });

  it('a name defined twice is an error naming both files', async () => {
    const twin = folder('twin', { 'sst2.yaml': 'template: "{s} {answer}"\nanswers: { "0": a, "1": b }\n' });
    const e = await inputError(() => resolveTask('sst2', { dirs: [twin] }));
    expect(e.message).toMatch(/task "sst2" is defined twice: in .*builtin\/sst2\.yaml and in .*twin\/sst2\.yaml/);
  });

  it('bad files: the file and the field or position, never the file\'s text', async () => {
    const secret = 'hunter2-do-not-echo';
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'a.yaml': `template: "{x} {answer}"\nanswers: [${secret}\n` }, /a\.yaml: invalid YAML at line \d+, column \d+/],
      [{ 'b.yaml': `kind: classification\nfields: [x]\nclasses: [p, q]\nlabels: { "0": ${secret} }\ndemonstration: "{x} {answer}"\nquery: { body: "{x}" }\ninterleave: [p, q]\ndefaults: { shots: 2, seed: 1, validationPerClass: 2 }\n` }, /b\.yaml: labels\.0 names a class that is not in "classes"/],
      [{ 'c.yaml': `kind: classification\nfields: [x]\nclasses: [p, q]\nlabels: { "0": p }\ndemonstration: "{${secret}} {answer}"\nquery: { body: "{x}" }\ninterleave: [p, q]\ndefaults: { shots: 2, seed: 1, validationPerClass: 2 }\n` }, /c\.yaml: demonstration has a placeholder that is not in "fields"/],
      [{ 'd.yaml': `template: "{x} {answer}"\nanswers: { "0": a, "1": b }\ndefaults: { seed: 1, validationPerClass: 2 }\n${secret}: 1\n` }, /d\.yaml: defaults: give exactly one of "shots" or "demonstrationsPerClass"; \(file\): 1 unknown key\(s\); a task file has .*template/],
    ];
    for (const [files, pattern] of cases) {
      const dir = folder(`bad-${Object.keys(files)[0]}`, files);
      const e = await inputError(() => resolveTask('anything', { dirs: [dir] }));
      expect(e.message).toMatch(pattern);
      expect(e.message).not.toContain(secret);
    }
  });
});

describe('the paper protocol', () => {
  it('changes only what the task files declare: CB query wording, SST-2 test source, MRPC validation source', () => {
    const paper = (t: string) => resolveTask(t, { protocol: 'paper' });
    const row = { premise: 'It was a complex language.', hypothesis: 'the language was peeled down' };
    expect(renderQuery(paper('cb'), row)).toBe("Suppose It was a complex language. Can we infer that 'the language was peeled down'? Yes, or No, or Mi? ");
    expect(renderDemo(paper('cb'), row, 2)).toBe(renderDemo(BUILTIN_DEFINITIONS.cb, row, 2));
    expect(paper('sst2')).toEqual({ ...BUILTIN_DEFINITIONS.sst2, testSplit: 'train' });
    expect(paper('mrpc')).toEqual({ ...BUILTIN_DEFINITIONS.mrpc, validationSplit: 'validation' });
    for (const t of ['rte', 'copa', 'agnews', 'emoc'] as const) expect(paper(t)).toEqual(BUILTIN_DEFINITIONS[t]);
    // The default protocol is untouched.
    expect(resolveTask('cb', { protocol: 'default' })).toEqual(BUILTIN_DEFINITIONS.cb);
  });

  it("SST-2 tests on the rest of train; MRPC validates on the dataset's validation split, and its test never reuses it", () => {
    const rows = (n: number, field: string) => Array.from({ length: n }, (_, i) => ({ [field]: `r${i}`, sentence1: `a${i}`, sentence2: `b${i}`, label: i % 2 }));
    const sst2 = prepareDataset(virtualRead({ train: rows(40, 'sentence'), validation: rows(10, 'sentence') }), resolveTask('sst2', { protocol: 'paper' }));
    const test = sampleCell(sst2, { split: 'test', shots: 4, seed: 49, sizes: { validationPerClass: 5 } });
    const validation = sampleCell(sst2, { split: 'validation', shots: 4, seed: 49, sizes: { validationPerClass: 5 } });
    expect(test.source.split).toBe('train');
    expect(test.examples).toHaveLength(40 - 4 - 10);
    const used = new Set([...test.demos, ...validation.examples].map((e) => e.index));
    expect(test.examples.every((e) => !used.has(e.index))).toBe(true);

    const mrpc = prepareDataset(virtualRead({ train: rows(30, 'x'), validation: rows(8, 'x'), test: rows(6, 'x') }), resolveTask('mrpc', { protocol: 'paper' }));
    const v = sampleCell(mrpc, { split: 'validation', shots: 4, seed: 42, sizes: {} });
    expect(v.source.split).toBe('validation');
    expect(v.examples.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(sampleCell(mrpc, { split: 'validation', shots: 4, seed: 42, sizes: { validationPerClass: 2 } }).examples).toHaveLength(4);
    expect(sampleCell(mrpc, { split: 'test', shots: 4, seed: 42, sizes: {} }).source.split).toBe('test');
    // Without a test split, the rest of train (the validation split stays validation only).
    const noTest = prepareDataset(virtualRead({ train: rows(30, 'x'), validation: rows(8, 'x') }), resolveTask('mrpc', { protocol: 'paper' }));
    const t2 = sampleCell(noTest, { split: 'test', shots: 4, seed: 42, sizes: {} });
    expect(t2.source.split).toBe('train');
    expect(t2.examples).toHaveLength(26);
    // Where the folder has no labelled validation split, validation is drawn from train as by default.
    const noVal = prepareDataset(virtualRead({ train: rows(30, 'x') }), resolveTask('mrpc', { protocol: 'paper' }));
    expect(sampleCell(noVal, { split: 'validation', shots: 4, seed: 42, sizes: { validationPerClass: 3 } }).source.split).toBe('train');
  });
});
