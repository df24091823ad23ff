/** The export's rules against lm-evaluation-harness's own output (test/fixtures/lm-eval/), and the table encodings. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { lmEvalFolder, lmEvalSample, meanStderr, modelArgs, type LmEvalCell } from '../../analysis/export/lm-eval.ts';
import { csvLines, parquetTable, type Column } from '../../analysis/export/tables.ts';
import { LM_EVAL_FIXTURES } from './lm-eval-shape.ts';

const sha256 = (t: string) => createHash('sha256').update(t).digest('hex');
const fixtureResults = JSON.parse(readFileSync(path.join(LM_EVAL_FIXTURES, 'results.json'), 'utf8'));
const fixtureSamples = readFileSync(path.join(LM_EVAL_FIXTURES, 'samples_bias_classification.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('lm-eval rules, checked on its own files', () => {
  it('acc_stderr is the sample standard deviation over sqrt(n)', () => {
    const r = fixtureResults.results.bias_classification;
    const n = fixtureResults['n-samples'].bias_classification.effective;
    expect(meanStderr(r['acc,none'], n)).toBeCloseTo(r['acc_stderr,none'], 15);
    expect(meanStderr(r['acc_norm,none'], n)).toBeCloseTo(r['acc_norm_stderr,none'], 15);
    expect(meanStderr(1, 1)).toBe('N/A');
  });

  it('doc_hash and target_hash are computed as lm-eval computes them', () => {
    for (const s of fixtureSamples) {
      expect(sha256(JSON.stringify(s.doc, null, 2))).toBe(s.doc_hash);
      expect(sha256(s.target)).toBe(s.target_hash);
    }
  });

  it('a sample: per-choice scores as [log-likelihood, is_greedy] strings, f1 as [gold, prediction], arguments per choice', () => {
    const text = { doc: { review: 'fine', verdict: 'good' }, context: 'Review: fine\nVerdict:', continuations: [' No', ' Yes'], target: 'Yes' };
    const s = lmEvalSample({ kind: 'classification', accuracyNorm: null }, { index: 7, label: 1, prediction: 0, scores: [-0.25, -1.5] }, text);
    expect(s).toEqual({
      doc_id: 7,
      doc: text.doc,
      target: 'Yes',
      arguments: { gen_args_0: { arg_0: text.context, arg_1: ' No' }, gen_args_1: { arg_0: text.context, arg_1: ' Yes' } },
      resps: [[['-0.25', 'None']], [['-1.5', 'None']]],
      filtered_resps: [['-0.25', 'None'], ['-1.5', 'None']],
      filter: 'none',
      metrics: ['acc', 'f1'],
      doc_hash: sha256(JSON.stringify(text.doc, null, 2)),
      prompt_hash: sha256(text.context),
      target_hash: sha256('Yes'),
      acc: 0,
      f1: [1, 0],
    });
    // Its keys are the real sample's, plus the newer filter / metrics.
    expect(new Set([...Object.keys(fixtureSamples[0]), 'filter', 'metrics'])).toEqual(new Set(Object.keys({ ...s, acc_norm: 1 })));
  });

  it('one folder per pruned model and split; module, layer and ratio in model_args', () => {
    const cell = { model: { name: 'smol/135m', path: 'HuggingFaceTB/SmolLM2-135M', file: 'onnx/model.onnx', fingerprint: null }, module: 'mlp', layer: 0, ratio: 0.9, split: 'test', scoring: { multipleChoice: 'loglik', svd: 'exact' } } as unknown as LmEvalCell;
    expect(lmEvalFolder(cell)).toBe('smol_135m__mlp__layer0__ratio0.9__test');
    expect(lmEvalFolder({ ...cell, module: 'none', layer: 0, ratio: 0 })).toBe('smol_135m__unpruned__test');
    // A sweep with several demonstration draws: one folder per draw.
    expect(lmEvalFolder({ ...cell, seed: 43 }, true)).toBe('smol_135m__mlp__layer0__ratio0.9__test__seed43');
    expect(modelArgs(cell)).toBe('pretrained=HuggingFaceTB/SmolLM2-135M,file=onnx/model.onnx,module=mlp,layer=0,ratio=0.9,svd=exact');
  });
});

describe('tables', () => {
  const columns: Column[] = [
    { name: 'name', type: 'text', key: 'name' },
    { name: 'n', type: 'int', key: 'n' },
    { name: 'tokens', type: 'int64', key: 'tokens' },
    { name: 'acc', type: 'double', key: 'acc' },
    { name: 'ok', type: 'bool', key: 'ok' },
    { name: 'scores', type: 'doubles', key: 'scores' },
  ];
  const rows = [
    { name: 'a, "quoted"\nline', n: 3, tokens: 5_000_000_000, acc: 0.5, ok: true, scores: [-0.5, Number.NEGATIVE_INFINITY] },
    { name: 'b', n: null, tokens: null, acc: null, ok: false, scores: null },
  ];

  it("CSV quotes what needs quoting, leaves null empty and writes scores as JSON (non-finite as Python's json reads them)", () => {
    const text = csvLines(columns, rows, true);
    expect(parseCsv(text, { columns: true })).toEqual([
      { name: 'a, "quoted"\nline', n: '3', tokens: '5000000000', acc: '0.5', ok: 'true', scores: '[-0.5,-Infinity]' },
      { name: 'b', n: '', tokens: '', acc: '', ok: 'false', scores: '' },
    ]);
  });

  it('Parquet keeps types, nulls, 64-bit integers and the score lists', async () => {
    const back = await parquetReadObjects({ file: parquetTable(columns, rows) });
    expect(back).toEqual([
      { name: 'a, "quoted"\nline', n: 3, tokens: 5_000_000_000n, acc: 0.5, ok: true, scores: [-0.5, Number.NEGATIVE_INFINITY] },
      { name: 'b', n: null, tokens: null, acc: null, ok: false, scores: null },
    ]);
  });
});
