/**
 * The shapes lm-evaluation-harness writes (lm_eval/result_schema.py: EvalResults, _TaskMetrics,
 * SampleResult; lm_eval/config/task.py: TaskConfig), as checks. Run on the real files in
 * test/fixtures/lm-eval/ too, so a check that real lm-eval output fails is caught.
 */
import path from 'node:path';
import { expect } from 'vitest';

export const LM_EVAL_FIXTURES = path.join(import.meta.dirname, '../fixtures/lm-eval');

/** EvalResults' keys. */
const RESULT_KEYS = new Set([
  'results', 'groups', 'group_subtasks', 'configs', 'versions', 'n-shot', 'higher_is_better', 'n-samples', 'samples', 'config', 'git_hash', 'date',
  'pretty_env_info', 'transformers_version', 'lm_eval_version', 'upper_git_hash', 'tokenizer_pad_token', 'tokenizer_eos_token', 'tokenizer_bos_token',
  'eot_token_id', 'max_length', 'model_source', 'model_name', 'model_name_sanitized', 'system_instruction', 'system_instruction_sha',
  'fewshot_as_multiturn', 'chat_template', 'chat_template_sha', 'task_hashes', 'total_evaluation_time_seconds', 'start_time', 'end_time',
]);
/** TaskConfig's fields. */
const TASK_CONFIG_KEYS = new Set(
  ('task task_alias tag custom_dataset dataset_path dataset_name dataset_kwargs training_split validation_split test_split fewshot_split process_docs ' +
    'doc_to_text doc_to_target doc_to_image doc_to_audio unsafe_code doc_to_choice process_results use_prompt description target_delimiter ' +
    'fewshot_delimiter fewshot_config num_fewshot metric_list output_type generation_kwargs repeats filter_list should_decontaminate ' +
    'doc_to_decontamination_query gen_prefix metadata').split(' '),
);
/** _EvalConfig's fields. */
const EVAL_CONFIG_KEYS = new Set(
  ('model model_args model_num_parameters model_dtype model_revision model_sha batch_size batch_sizes device use_cache limit bootstrap_iters ' +
    'gen_kwargs random_seed numpy_seed torch_seed fewshot_seed').split(' '),
);
/** SampleResult's fixed keys; the rest are per-sample metrics. */
const SAMPLE_KEYS = new Set('doc_id doc target arguments resps filtered_resps filter metrics doc_hash prompt_hash target_hash'.split(' '));

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const HEX64 = /^[0-9a-f]{64}$/;

export function checkResultsShape(r: Record<string, unknown>): void {
  for (const k of Object.keys(r)) expect(RESULT_KEYS.has(k), `results.json key "${k}"`).toBe(true);
  const tasks = Object.keys(r.results as object);
  expect(tasks.length).toBeGreaterThan(0);
  for (const key of ['group_subtasks', 'configs', 'versions', 'n-shot', 'higher_is_better', 'n-samples']) expect(Object.keys(r[key] as object).sort(), key).toEqual([...tasks].sort());
  for (const t of tasks) {
    const metrics = (r.results as Record<string, Record<string, unknown>>)[t];
    const better = (r.higher_is_better as Record<string, Record<string, boolean>>)[t];
    expect(typeof metrics.alias).toBe('string');
    for (const k of Object.keys(metrics)) expect(k === 'alias' || k === 'name' || k === 'sample_len' || /^[a-z_0-9]+,[a-z_-]+$/.test(k), `metric key "${k}"`).toBe(true);
    for (const m of Object.keys(better)) {
      expect(typeof metrics[`${m},none`], `${t} ${m},none`).toBe('number');
      const se = metrics[`${m}_stderr,none`];
      expect(typeof se === 'number' || se === 'N/A', `${t} ${m}_stderr,none`).toBe(true);
      expect(typeof better[m]).toBe('boolean');
    }
    const config = (r.configs as Record<string, Record<string, unknown>>)[t];
    for (const k of Object.keys(config)) expect(TASK_CONFIG_KEYS.has(k), `config key "${k}"`).toBe(true);
    expect(config.task).toBe(t);
    expect(Array.isArray(config.metric_list)).toBe(true);
    const shot = (r['n-shot'] as Record<string, unknown>)[t];
    expect(Number.isInteger(shot)).toBe(true);
    const n = (r['n-samples'] as Record<string, { original: number; effective: number }>)[t];
    expect(Object.keys(n).sort()).toEqual(['effective', 'original']);
    const version = (r.versions as Record<string, unknown>)[t];
    expect(['string', 'number'].includes(typeof version) || version === null).toBe(true);
  }
  expect(isObject(r.config)).toBe(true);
  for (const k of Object.keys(r.config as object)) expect(EVAL_CONFIG_KEYS.has(k), `config.${k}`).toBe(true);
  expect(typeof (r.config as { model_args: unknown }).model_args).toBe('string');
}

export function checkSampleShape(s: Record<string, unknown>): void {
  expect(Number.isInteger(s.doc_id)).toBe(true);
  expect(isObject(s.doc)).toBe(true);
  expect(typeof s.target).toBe('string');
  expect(isObject(s.arguments)).toBe(true);
  const args = Object.entries(s.arguments as Record<string, Record<string, unknown>>);
  for (const [k, v] of args) {
    expect(k).toMatch(/^gen_args_\d+$/);
    expect(typeof v.arg_0).toBe('string');
    expect(typeof v.arg_1).toBe('string');
  }
  const resps = s.resps as string[][][];
  const filtered = s.filtered_resps as string[][];
  expect(resps.length).toBe(filtered.length);
  resps.forEach((r, i) => {
    expect(r).toHaveLength(1);
    expect(r[0]).toEqual(filtered[i]);
    expect(filtered[i]).toHaveLength(2);
    expect(Number.isNaN(Number(filtered[i][0]))).toBe(false);
    expect(typeof filtered[i][1]).toBe('string');
  });
  for (const h of ['doc_hash', 'prompt_hash', 'target_hash']) expect(s[h]).toMatch(HEX64);
  for (const [k, v] of Object.entries(s)) {
    if (SAMPLE_KEYS.has(k)) continue;
    // Per-sample metrics: a number (acc, acc_norm) or, for f1, the [gold, prediction] pair.
    if (k === 'f1') expect((v as number[]).map(Number.isInteger)).toEqual([true, true]);
    else expect(typeof v, `sample metric ${k}`).toBe('number');
  }
}
