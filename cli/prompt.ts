/**
 * `prompt <sweep> --cell <key | module/layer/ratio> --example <row>`: the exact prompt one example of
 * a cell showed the model, its token ids and the per-choice scores stored for it. The prompt is
 * rebuilt from the dataset files, the demonstration rows the cell recorded and the model's
 * tokenizer (no ONNX session), after checking that the dataset still has the fingerprint the cell
 * was computed with.
 */
import { parseArgs } from 'node:util';
import { cellByKey, cellDemonstrationsOf, cellExamples, createDb, type Db } from '../db/queries.ts';
import { loadTokenizer } from '../engine/model/tokenizer.ts';
import { examplePrompt, type ExamplePrompt } from '../engine/prompts.ts';
import type { ExampleOutcome } from '../engine/types.ts';
import { CommandError, cellInputs, findCell, loadSweep, localEngineSettings, promptSource } from './sweep-data.ts';
import { renderTable } from './table.ts';

export const PROMPT_USAGE = `Usage: prompt <sweep> --cell <key | module/layer/ratio> --example <row> [options]

Prints the exact prompt text of one example of a cell (demonstrations + query, or + context for
multiple choice), its token ids, and each class's scored continuation with the score stored for it.

  --cell <c>       a cell key (or a unique prefix of 8+ hex characters), or module/layer/ratio, e.g.
                   mlp/0/0.9 (ratio 0: the unpruned cell)
  --example <row>  the example's row in its split file (the examples table's idx)
  --model <m>, --dataset <d>, --split <s>, --seed <n>
                   pick among several cells with those coordinates (--seed: a demonstration draw)
  --json           one JSON object instead of text

Reads the database (DATABASE_URL, or the embedded PGlite one) and the sweep's model and dataset
files from this machine (ICL_SWEEP_CACHE_DIR, ICL_SWEEP_TASK_DIRS as a worker).`;

export interface PromptIo {
  out(text: string): void;
  err(text: string): void;
  /** An open database to use (left open); default: createDb() from the environment, closed at the end. */
  db?: Db;
}

interface Shown {
  sweep: string;
  cell: { key: string; model: string; dataset: string; task: string | null; module: string; layer: number; ratio: number; split: string };
  prompt: ExamplePrompt;
  outcome: ExampleOutcome;
}

function quoteText(text: string): string {
  return JSON.stringify(text);
}

function renderPrompt({ sweep, cell, prompt, outcome }: Shown): string {
  const className = (c: number) => prompt.classes[c] ?? String(c);
  const lines = [
    `sweep ${sweep}, cell ${cell.key}`,
    `  model ${cell.model}, dataset ${cell.dataset} (task ${prompt.task}), module ${cell.module}, layer ${cell.layer}, ratio ${cell.ratio}, split ${cell.split}`,
    `example: row ${prompt.example.row} of the ${prompt.example.split} split (${prompt.example.file}); label ${className(outcome.label)}, predicted ${className(outcome.prediction)}`,
    `demonstrations: ${prompt.demonstrations.rows.length} train rows in prompt order: ${prompt.demonstrations.rows.join(', ') || '(none)'}`,
    '',
    `--- prompt (${prompt.text.length} characters, ${prompt.ids.length} tokens; everything between the markers, newlines included) ---`,
    prompt.text,
    '--- end of prompt ---',
    `as a string: ${quoteText(prompt.text)}`,
    `token ids: [${prompt.ids.join(', ')}]`,
    '',
    prompt.kind === 'classification' ? 'scored next token of each class (log-probability):' : 'scored continuation of each choice:',
  ];
  const rows = prompt.candidates.map((c, i) => [
    className(i),
    quoteText(c.text),
    `[${c.ids.join(', ')}]`,
    outcome.scores[i] === undefined ? '-' : String(outcome.scores[i]),
    [i === outcome.prediction ? 'predicted' : '', i === outcome.label ? 'label' : ''].filter(Boolean).join(', '),
  ]);
  return lines.join('\n') + '\n' + renderTable(['class', 'continuation', 'token ids', 'score', ''], rows, [false, false, false, true, false]);
}

async function show(db: Db, args: { sweep: string; cell: string; example: number; model?: string; dataset?: string; split?: string; seed?: number }): Promise<Shown> {
  const sweep = await loadSweep(db, args.sweep);
  const row = findCell(sweep.rows, args.cell, args);
  const cell = await cellByKey(db, row.cellKey);
  if (!cell || cell.status !== 'done') throw new CommandError(`cell ${row.cellKey} is ${cell?.status ?? 'pending'}: it has no stored examples`);
  const examples = await cellExamples(db, row.cellKey);
  const outcome = examples.find((e) => e.index === args.example);
  if (!outcome) {
    const ids = examples.map((e) => e.index);
    throw new CommandError(`cell ${row.cellKey} has no example ${args.example}; its ${ids.length} examples are rows ${ids.slice(0, 12).join(', ')}${ids.length > 12 ? ', ...' : ''}`);
  }
  const draw = await cellDemonstrationsOf(db, row.cellKey);
  const { model } = cellInputs(sweep.spec, row);
  const prompt = await examplePrompt({ ...promptSource(sweep.spec, row, cell, draw), model, example: args.example }, { ...localEngineSettings(), tokenizer: loadTokenizer });
  if (cell.datasetFingerprint && prompt.datasetFingerprint !== cell.datasetFingerprint) {
    throw new CommandError(`dataset "${row.dataset}" changed since the cell was computed (its files or task have another fingerprint): the stored scores belong to other prompts`);
  }
  return { sweep: args.sweep, cell: { key: row.cellKey, model: row.model, dataset: row.dataset, task: row.task, module: row.module, layer: row.layer, ratio: row.ratio, split: row.split }, prompt, outcome };
}

/** Runs `prompt` with the arguments after the command name; resolves to the exit code. */
export async function runPrompt(args: string[], io: PromptIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      cell: { type: 'string' },
      example: { type: 'string' },
      model: { type: 'string' },
      dataset: { type: 'string' },
      split: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(`${PROMPT_USAGE}\n`);
    return 0;
  }
  const example = Number(values.example);
  if (positionals.length !== 1 || !values.cell || values.example === undefined || !Number.isInteger(example) || example < 0) {
    io.err(`prompt needs a sweep name, --cell and --example <row> (a non-negative integer)\n\n${PROMPT_USAGE}\n`);
    return 2;
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0)) {
    io.err(`prompt: --seed must be a non-negative integer, got ${values.seed}\n\n${PROMPT_USAGE}\n`);
    return 2;
  }
  const db = io.db ?? (await createDb());
  try {
    const shown = await show(db, { sweep: positionals[0], cell: values.cell, example, model: values.model, dataset: values.dataset, split: values.split, seed });
    io.out(values.json ? `${JSON.stringify(shown, null, 2)}\n` : renderPrompt(shown));
    return 0;
  } finally {
    if (!io.db) await db.close();
  }
}
