/**
 * `export <sweep> --format lm-eval|csv|parquet --out DIR`: a sweep's results in the files other
 * tools read. lm-eval: lm-evaluation-harness's results.json and samples_<dataset>.jsonl, one folder
 * per pruned model and split (analysis/export/lm-eval.ts); csv and parquet: the cell_results view
 * and every example of the sweep's cells (analysis/export/tables.ts). The lm-eval samples carry the
 * prompt texts, rebuilt from the dataset files where this machine can read them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cellDemonstrationsByKey, cellResultColumns, cellsByKey, createDb, sweepExamples, type CellResultRow, type CellRow, type Db } from '../db/queries.ts';
import { DatasetCache } from '../engine/data/index.ts';
import { cellTexts, type CellTexts } from '../engine/prompts.ts';
import { argmax, utf8Length } from '../engine/tasks/scoring.ts';
import type { ExampleOutcome } from '../engine/types.ts';
import { lmEvalFolder, lmEvalResults, lmEvalSample, type LmEvalCell } from '../analysis/export/lm-eval.ts';
import { csvLines, EXAMPLE_COLUMNS, parquetTable, type Column, type ColumnType } from '../analysis/export/tables.ts';
import { CommandError, cellInputs, loadSweep, localEngineSettings, promptSource, type StoredSweep } from './sweep-data.ts';

export const EXPORT_USAGE = `Usage: export <sweep> --format lm-eval|csv|parquet --out DIR

  lm-eval   lm-evaluation-harness's files: DIR/<model>__<module>__layer<L>__ratio<r>__<split>/results.json
            (acc, acc_stderr, acc_norm for multiple choice, f1 = macro-F1 for classification, configs,
            versions, n-shot, higher_is_better, n-samples; module, layer and ratio in model_args) and
            samples_<dataset>.jsonl (doc, prompt and continuations, per-choice scores, acc / f1)
  csv       DIR/cell_results.csv (the view's columns) and DIR/examples.csv (one row per example:
            the cell's coordinates, idx, label, prediction, correct, scores as a JSON array)
  parquet   the same two tables as Parquet (scores as a list of doubles)

Reads the database (DATABASE_URL, or the embedded PGlite one); lm-eval also reads the datasets
(ICL_SWEEP_CACHE_DIR, ICL_SWEEP_TASK_DIRS as a worker) to write each sample's document and prompt.`;

const FORMATS = ['lm-eval', 'csv', 'parquet'] as const;
type Format = (typeof FORMATS)[number];

export interface ExportIo {
  out(text: string): void;
  err(text: string): void;
  db?: Db;
}

const COLUMN_TYPES: Record<string, ColumnType> = { PgText: 'text', PgInteger: 'int', PgDoublePrecision: 'double', PgBoolean: 'bool', PgBigInt53: 'int64' };

function viewColumns(): Column[] {
  return cellResultColumns().map((c) => {
    const type = COLUMN_TYPES[c.columnType];
    if (!type) throw new Error(`export: no table type for column ${c.name} (${c.columnType})`);
    return { name: c.name, key: c.key, type };
  });
}

async function exportTables(db: Db, sweep: StoredSweep, format: 'csv' | 'parquet', out: string): Promise<string[]> {
  const keys = sweep.rows.filter((r) => r.status === 'done').map((r) => r.cellKey);
  const examples = await sweepExamples(db, sweep.name, keys);
  const tables: [string, Column[], object[]][] = [
    ['cell_results', viewColumns(), sweep.rows],
    ['examples', EXAMPLE_COLUMNS, examples],
  ];
  const files: string[] = [];
  for (const [name, columns, rows] of tables) {
    const file = path.join(out, `${name}.${format}`);
    const records = rows as Record<string, unknown>[];
    await writeFile(file, format === 'csv' ? csvLines(columns, records, true) : new Uint8Array(parquetTable(columns, records)));
    files.push(file);
  }
  return files;
}

/** What the lm-eval entry of a cell says, from its sweep row, its cell row and the spec. */
function lmEvalCell(sweep: StoredSweep, row: CellResultRow, cell: CellRow, texts: CellTexts | null): LmEvalCell {
  const { model, dataset } = cellInputs(sweep.spec, row);
  const params = (cell.params ?? {}) as { scoring?: LmEvalCell['scoring']; protocol?: string };
  return {
    sweep: sweep.name,
    cellKey: row.cellKey,
    model: { name: model.name, path: model.path, ...(model.file ? { file: model.file } : {}), fingerprint: cell.modelFingerprint },
    dataset: { name: row.dataset, task: row.task, ...(dataset.path ? { path: dataset.path } : {}), ...(dataset.recipe ? { recipe: dataset.recipe } : {}), fingerprint: cell.datasetFingerprint },
    module: row.module,
    layer: row.layer,
    ratio: row.ratio,
    split: row.split,
    shots: cell.shots,
    seed: cell.seed,
    scoring: params.scoring ?? sweep.spec.scoring,
    protocol: params.protocol ?? 'default',
    engineVersion: cell.engineVersion,
    kind: texts?.task.kind ?? (cell.accuracyNorm !== null ? 'multiple-choice' : cell.f1Macro !== null ? 'classification' : null),
    accuracy: cell.accuracy ?? 0,
    accuracyNorm: cell.accuracyNorm,
    f1Macro: cell.f1Macro,
    n: cell.n ?? 0,
    seconds: cell.seconds,
    finishedAt: cell.finishedAt,
    ...(texts
      ? {
          templates: {
            text: texts.task.query ? texts.task.query.body + texts.task.query.suffix : texts.task.choices!.context,
            choices: texts.task.verbalizers ?? texts.task.choices!.fields,
            labelField: texts.task.labelField,
            examplesSplit: texts.examples.split,
          },
        }
      : {}),
  };
}

/** acc_norm's prediction of a multiple-choice example: its log-likelihood per byte of each continuation, where the stored scores are sums. */
function normPrediction(c: LmEvalCell, e: ExampleOutcome, continuations: string[] | undefined): { prediction: number } | undefined {
  if (c.kind !== 'multiple-choice' || !continuations) return undefined;
  if (c.scoring.multipleChoice === 'loglik-norm') return { prediction: e.prediction };
  if (c.scoring.multipleChoice !== 'loglik') return undefined;
  return { prediction: argmax(e.scores.map((s, i) => s / Math.max(1, utf8Length(continuations[i])))) };
}

async function exportLmEval(db: Db, sweep: StoredSweep, out: string, warn: (text: string) => void): Promise<string[]> {
  const done = sweep.rows.filter((r) => r.status === 'done');
  const keys = done.map((r) => r.cellKey);
  const [cellRows, draws, examples] = await Promise.all([cellsByKey(db, keys), cellDemonstrationsByKey(db, keys), sweepExamples(db, sweep.name, keys)]);
  const byCell = new Map<string, ExampleOutcome[]>();
  for (const e of examples) (byCell.get(e.cellKey) ?? byCell.set(e.cellKey, []).get(e.cellKey)!).push({ index: e.idx, label: e.label, prediction: e.prediction, scores: e.scores });
  const settings = localEngineSettings();
  const datasets = new DatasetCache(settings.cacheDir, { taskDirs: settings.taskDirs });
  const unreadable = new Set<string>();
  const folders = new Map<string, { cell: LmEvalCell; samples: string }[]>();
  for (const row of done) {
    const cell = cellRows.get(row.cellKey)!;
    const draw = draws.get(row.cellKey);
    let texts: CellTexts | null = null;
    if (!unreadable.has(row.dataset)) {
      try {
        texts = await cellTexts(promptSource(sweep.spec, row, cell, draw), datasets);
        if (cell.datasetFingerprint && texts.datasetFingerprint !== cell.datasetFingerprint) throw new Error('its files or task changed since the sweep ran');
      } catch (err) {
        unreadable.add(row.dataset);
        texts = null;
        warn(`export: dataset "${row.dataset}": samples without documents and prompts (${(err as Error).message})\n`);
      }
    }
    const entry = lmEvalCell(sweep, row, cell, texts);
    const lines = (byCell.get(row.cellKey) ?? []).map((e) => {
      const text = texts?.example(e.index);
      const target = text ? (texts!.task.kind === 'classification' ? texts!.task.classes[text.label] : text.continuations[text.label]) : String(e.label);
      return JSON.stringify(lmEvalSample(entry, e, text ? { doc: text.doc, context: text.context, continuations: text.continuations, target } : null, normPrediction(entry, e, text?.continuations)));
    });
    const folder = lmEvalFolder(entry, sweep.spec.demoSeeds !== undefined);
    (folders.get(folder) ?? folders.set(folder, []).get(folder)!).push({ cell: entry, samples: lines.join('\n') + (lines.length ? '\n' : '') });
  }
  const files: string[] = [];
  for (const [folder, entries] of folders) {
    const dir = path.join(out, folder);
    await mkdir(dir, { recursive: true });
    const results = path.join(dir, 'results.json');
    await writeFile(results, `${JSON.stringify(lmEvalResults(entries.map((e) => e.cell)), null, 2)}\n`);
    files.push(results);
    for (const e of entries) {
      const file = path.join(dir, `samples_${e.cell.dataset.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.jsonl`);
      await writeFile(file, e.samples);
      files.push(file);
    }
  }
  return files;
}

/** Runs `export` with the arguments after the command name; resolves to the exit code. */
export async function runExport(args: string[], io: ExportIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { format: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    io.out(`${EXPORT_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1 || !values.out || !FORMATS.includes(values.format as Format)) {
    io.err(`export needs a sweep name, --format ${FORMATS.join('|')} and --out DIR\n\n${EXPORT_USAGE}\n`);
    return 2;
  }
  const db = io.db ?? (await createDb());
  try {
    const sweep = await loadSweep(db, positionals[0]);
    if (!sweep.rows.some((r) => r.status === 'done')) throw new CommandError(`sweep "${sweep.name}" has no computed cells yet`);
    await mkdir(values.out, { recursive: true });
    const format = values.format as Format;
    const files = format === 'lm-eval' ? await exportLmEval(db, sweep, values.out, io.err) : await exportTables(db, sweep, format, values.out);
    io.out(`exported sweep "${sweep.name}" (${format}): ${files.length} files under ${values.out}\n`);
    return 0;
  } finally {
    if (!io.db) await db.close();
  }
}
