/**
 * A sweep's cells in lm-evaluation-harness's output format (lm_eval/result_schema.py; real samples
 * in test/fixtures/lm-eval/): one folder per pruned model and split, as lm-eval writes one folder
 * per model, holding `results.json` (results, configs, versions, n-shot, higher_is_better, n-samples,
 * config with the model args) and `samples_<dataset>.jsonl` (one line per example: doc_id, doc,
 * target, arguments, resps, filtered_resps, hashes, per-sample metrics). Each cell is one entry,
 * keyed by the dataset's name in the spec; module, layer and ratio are in the model args. Pure.
 */
import { createHash } from 'node:crypto';
import type { ExampleOutcome } from '../../engine/types.ts';

/** One done cell with what its results entry says about it. */
export interface LmEvalCell {
  sweep: string;
  cellKey: string;
  model: { name: string; path: string; file?: string; fingerprint: string | null };
  dataset: { name: string; task: string | null; path?: string; recipe?: string; fingerprint: string | null };
  module: string;
  layer: number;
  ratio: number;
  split: string;
  shots: number | null;
  seed: number | null;
  scoring: { multipleChoice: string; svd: string };
  protocol: string;
  engineVersion: string | null;
  kind: 'classification' | 'multiple-choice' | null;
  accuracy: number;
  accuracyNorm: number | null;
  f1Macro: number | null;
  n: number;
  seconds: number | null;
  finishedAt: Date | null;
  /** The task's templates, where the dataset could be read (lm-eval's doc_to_text / doc_to_choice). */
  templates?: { text: string; choices: string[]; labelField: string; examplesSplit: string };
}

/** The text of one example, rebuilt from the dataset (engine/prompts.ts). */
export interface LmEvalExampleText {
  doc: Record<string, unknown>;
  context: string;
  continuations: string[];
  target: string;
}

/** lm-eval's stderr of a mean of 0/1 values: the sample standard deviation over sqrt(n). */
export function meanStderr(p: number, n: number): number | 'N/A' {
  return n > 1 ? Math.sqrt((p * (1 - p)) / (n - 1)) : 'N/A';
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * lm-eval's folder name for a model; here one per pruned model and split, and per demonstration draw
 * (`__seed<n>`) when the sweep has several.
 */
export function lmEvalFolder(c: Pick<LmEvalCell, 'model' | 'module' | 'layer' | 'ratio' | 'split' | 'seed'>, draws = false): string {
  const what = c.ratio === 0 ? 'unpruned' : `${c.module}__layer${c.layer}__ratio${c.ratio}`;
  return `${c.model.name}__${what}__${c.split}${draws ? `__seed${c.seed}` : ''}`.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** lm-eval's `model_args` string: the model, and the pruning that makes this cell's model. */
export function modelArgs(c: LmEvalCell): string {
  const args: [string, string | number][] = [['pretrained', c.model.path]];
  if (c.model.file) args.push(['file', c.model.file]);
  args.push(['module', c.module], ['layer', c.layer], ['ratio', c.ratio]);
  if (c.ratio > 0) args.push(['svd', c.scoring.svd]);
  return args.map(([k, v]) => `${k}=${v}`).join(',');
}

function metrics(c: LmEvalCell): { name: string; value: number; stderr: number | 'N/A' }[] {
  const out = [{ name: 'acc', value: c.accuracy, stderr: meanStderr(c.accuracy, c.n) }];
  if (c.accuracyNorm !== null) out.push({ name: 'acc_norm', value: c.accuracyNorm, stderr: meanStderr(c.accuracyNorm, c.n) });
  if (c.f1Macro !== null) out.push({ name: 'f1', value: c.f1Macro, stderr: 'N/A' });
  return out;
}

function taskConfig(c: LmEvalCell): Record<string, unknown> {
  const m = metrics(c);
  return {
    task: c.dataset.name,
    ...(c.dataset.task ? { tag: [c.dataset.task] } : {}),
    dataset_path: c.dataset.path ?? c.dataset.recipe ?? null,
    ...(c.templates
      ? {
          test_split: c.templates.examplesSplit,
          fewshot_split: 'train',
          doc_to_text: c.templates.text,
          doc_to_target: c.templates.labelField,
          doc_to_choice: c.templates.choices,
        }
      : {}),
    description: '',
    target_delimiter: '',
    fewshot_delimiter: '',
    num_fewshot: c.shots,
    metric_list: m.map(({ name }) => (name === 'f1' ? { metric: 'f1', aggregation: 'macro_f1', higher_is_better: true } : { metric: name, aggregation: 'mean', higher_is_better: true })),
    output_type: 'multiple_choice',
    repeats: 1,
    should_decontaminate: false,
    fewshot_config: { sampler: 'icl-sweep: seeded shuffle, classes interleaved', seed: c.seed },
    metadata: {
      version: c.engineVersion,
      icl_sweep: {
        sweep: c.sweep,
        cell_key: c.cellKey,
        module: c.module,
        layer: c.layer,
        ratio: c.ratio,
        split: c.split,
        protocol: c.protocol,
        scoring: c.scoring,
        model_fingerprint: c.model.fingerprint,
        dataset_fingerprint: c.dataset.fingerprint,
      },
    },
  };
}

/** results.json for the cells of one pruned model on one split (one entry per cell). */
export function lmEvalResults(cells: readonly LmEvalCell[]): Record<string, unknown> {
  const first = cells[0];
  const byName = <T>(f: (c: LmEvalCell) => T) => Object.fromEntries(cells.map((c) => [c.dataset.name, f(c)]));
  const results = byName((c) => {
    const entry: Record<string, unknown> = { alias: c.dataset.name };
    for (const m of metrics(c)) {
      entry[`${m.name},none`] = m.value;
      entry[`${m.name}_stderr,none`] = m.stderr;
    }
    return entry;
  });
  const finished = cells.map((c) => c.finishedAt?.getTime() ?? 0).reduce((a, b) => Math.max(a, b), 0);
  return {
    results,
    group_subtasks: byName(() => []),
    configs: byName(taskConfig),
    versions: byName((c) => c.engineVersion),
    'n-shot': byName((c) => c.shots),
    higher_is_better: byName((c) => Object.fromEntries(metrics(c).map((m) => [m.name, true]))),
    'n-samples': byName((c) => ({ original: c.n, effective: c.n })),
    config: {
      model: 'icl-sweep',
      model_args: modelArgs(first),
      batch_size: null,
      batch_sizes: [],
      device: null,
      use_cache: null,
      limit: null,
      bootstrap_iters: 0,
      gen_kwargs: null,
      random_seed: first.seed,
      numpy_seed: first.seed,
      torch_seed: first.seed,
      fewshot_seed: first.seed,
    },
    git_hash: null,
    date: finished / 1000,
    model_source: 'icl-sweep',
    model_name: first.model.name,
    model_name_sanitized: first.model.name.replace(/[^A-Za-z0-9._-]+/g, '__'),
    total_evaluation_time_seconds: String(cells.reduce((s, c) => s + (c.seconds ?? 0), 0)),
  };
}

/**
 * One line of samples_<dataset>.jsonl. Scores are the stored per-class scores (the log-likelihood
 * of each continuation under the loglik modes); whether a continuation is the greedy one is not
 * known here and is written "None". Without the example's text (dataset unreadable), doc and
 * arguments are empty and the hashes are of the empty text.
 */
export function lmEvalSample(c: Pick<LmEvalCell, 'kind' | 'accuracyNorm'>, e: ExampleOutcome, text: LmEvalExampleText | null, norm?: { prediction: number }): Record<string, unknown> {
  const doc = text?.doc ?? {};
  const target = text?.target ?? String(e.label);
  const resps = e.scores.map((s) => [String(s), 'None']);
  const sample: Record<string, unknown> = {
    doc_id: e.index,
    doc,
    target,
    arguments: Object.fromEntries((text?.continuations ?? []).map((cont, i) => [`gen_args_${i}`, { arg_0: text!.context, arg_1: cont }])),
    resps: resps.map((r) => [r]),
    filtered_resps: resps,
    filter: 'none',
    metrics: [] as string[],
    doc_hash: sha256(JSON.stringify(doc, null, 2)),
    prompt_hash: sha256(text?.context ?? ''),
    target_hash: sha256(target),
    acc: e.prediction === e.label ? 1.0 : 0.0,
  };
  const names = ['acc'];
  if (c.kind === 'multiple-choice' && norm) {
    sample.acc_norm = norm.prediction === e.label ? 1.0 : 0.0;
    names.push('acc_norm');
  }
  if (c.kind === 'classification') {
    sample.f1 = [e.label, e.prediction];
    names.push('f1');
  }
  sample.metrics = names;
  return sample;
}
