/**
 * `study`: the demonstration-draw study. One grid (by default SmolLM2-135M on the three sentiment-uci
 * recipes, mlp and attn at layers 0, 15 and 29, the paper's eight ratios, five draws) selected under
 * each rule by its own sweep, all sharing the grid's stored cells:
 *  - `paper, one draw`: the paper's protocol, once per seed (a sweep with that seed alone);
 *  - `paper`: the best mean validation accuracy over the draws;
 *  - `significant` (Holm) and `significant, uncorrected`: a pruned cell only with a significant gain.
 * Then prints the study's tables (analysis/study.ts). Services from the environment like `start`
 * (DATABASE_URL, Temporal's variables); `--worker` runs an in-process worker on the task queue.
 */
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { createDb, migrate, type Db } from '../db/client.ts';
import { cellResults, cellsByKey, selectionDrawRows, selectionResults } from '../db/queries.ts';
import { prepareSmolLM2 } from '../engine/gguf/smollm2.ts';
import { renderStudy, type StudyPick, type StudyRule, type UnprunedDraws } from '../analysis/study.ts';
import { checkSpec, type SweepSpecInput } from '../sweepspec/schema.ts';
import { DEFAULT_TASK_QUEUE } from '../workflows/queues.ts';
import type { SweepResult } from '../workflows/sweep.ts';
import { workerConfigFromEnv } from '../worker/config.ts';
import { createSweepWorker } from '../worker/create.ts';
import { connectTemporal } from './client.ts';
import { follow } from './progress.ts';
import { formatProblems, readSpecFile } from './spec-file.ts';

export const STUDY_USAGE = `Usage: study [options]

Runs the demonstration-draw study: one grid evaluated under several demonstration draws (seeds), its
selection made by each rule in its own sweep (every sweep reuses the grid's stored cells), then prints
how far the unpruned model's accuracy moves across draws and how each rule's picks fare on test.
Default grid: SmolLM2-135M-Instruct (imported into data/models on first use) on sentiment-uci/imdb,
amazon and yelp; mlp and attn at layers 0, 15, 29; ratios 0, 0.1, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995;
5 draws (seeds 42-46); 15 validation and 40 test examples per class and draw.

Options:
  --spec <file>        another grid: a sweep spec whose demoSeeds is a list, or a count with a seed
                       (its name prefixes the sweeps; its selection is replaced)
  --name <prefix>      prefix of the sweep names (default: variance-study, or the spec's name)
  --level <p>          level of the significant rules (default 0.05)
  --worker             run an in-process worker on the task queue (else workers must be polling it)
  --task-queue <q>     task queue (default ICL_SWEEP_TASK_QUEUE or icl-sweep)
  --table-only         print the tables from the stored sweeps, start nothing
  --out <file>         also write the tables (Markdown) to this file
  -h, --help           this text`;

/** The default grid (every rule's sweep adds its selection). */
function studyGrid(modelDir: string): SweepSpecInput {
  return {
    name: 'variance-study',
    models: [{ name: 'smollm2-135m', path: modelDir }],
    datasets: [
      { name: 'imdb', recipe: 'sentiment-uci/imdb' },
      { name: 'amazon', recipe: 'sentiment-uci/amazon' },
      { name: 'yelp', recipe: 'sentiment-uci/yelp' },
    ],
    modules: ['mlp', 'attn'],
    layers: [0, 15, 29],
    ratios: [0, 0.1, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995],
    seed: 42,
    demoSeeds: 5,
    sizes: { validationPerClass: 15, testPerClass: 40 },
    maxInFlight: 2,
  };
}

interface RuleSweep {
  /** The rule's name in the tables. */
  rule: string;
  judgedOn: string;
  specs: SweepSpecInput[];
}

/** The seeds of the grid's draws: a list as given, a count from its seed. */
function gridSeeds(grid: SweepSpecInput): number[] {
  const draws = grid.demoSeeds;
  if (Array.isArray(draws)) return draws;
  if (typeof draws === 'number' && typeof grid.seed === 'number') return Array.from({ length: draws }, (_, i) => grid.seed! + i);
  throw new Error('the study grid needs demoSeeds as a list, or a count with a seed');
}

/** Each rule's sweeps over the grid. */
function ruleSweeps(grid: SweepSpecInput, prefix: string, level: number): RuleSweep[] {
  const seeds = gridSeeds(grid);
  const { demoSeeds: _draws, seed: _seed, ...oneDraw } = grid;
  const sweep = (name: string, over: Partial<SweepSpecInput>): SweepSpecInput => ({ ...grid, ...over, name: `${prefix}-${name}` });
  const draws = `${seeds.length} draws`;
  return [
    { rule: 'paper, one draw', judgedOn: '1 draw', specs: seeds.map((seed) => ({ ...oneDraw, seed, selection: true, name: `${prefix}-paper-seed${seed}` })) },
    { rule: 'paper', judgedOn: draws, specs: [sweep('paper', { selection: { rule: 'paper' } })] },
    { rule: `significant ${level}, Holm`, judgedOn: draws, specs: [sweep('significant', { selection: { rule: 'significant', level, correction: 'holm' } })] },
    { rule: `significant ${level}, uncorrected`, judgedOn: draws, specs: [sweep('significant-uncorrected', { selection: { rule: 'significant', level, correction: 'none' } })] },
  ];
}

export interface StudyIo {
  out(text: string): void;
  err(text: string): void;
  /** An open database to use (left open); default: createDb() from the environment (migrated), closed at the end. */
  db?: Db;
  /** Show a live progress bar per sweep on stderr (default true). */
  progress?: boolean;
}

const defaultIo: StudyIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** A rule's picks as stored: per selection, the test accuracies of the unpruned model and the pick under each draw. */
async function storedPicks(db: Db, sweeps: readonly string[], io: StudyIo): Promise<StudyPick[]> {
  const picks: StudyPick[] = [];
  for (const sweep of sweeps) {
    const draws = await selectionDrawRows(db, sweep);
    const cells = await cellsByKey(db, draws.flatMap((d) => [d.baselineCellKey, d.selectedCellKey]));
    for (const s of await selectionResults(db, sweep)) {
      const own = draws.filter((d) => d.model === s.model && d.dataset === s.dataset);
      const test = own.map((d) => ({ seed: d.seed, baseline: cells.get(d.baselineCellKey)?.accuracy, selected: cells.get(d.selectedCellKey)?.accuracy }));
      if (test.length === 0 || test.some((t) => t.baseline == null || t.selected == null)) {
        io.err(`warning: sweep "${sweep}": the test cells of ${s.model} / ${s.dataset} are not all done; that pick is left out\n`);
        continue;
      }
      picks.push({
        dataset: s.dataset,
        module: s.module,
        layer: s.layer,
        ratio: s.ratio,
        validationGain: s.ratio === 0 ? 0 : (s.validationGain ?? s.validationAccuracy - (s.baselineValidationAccuracy ?? NaN)),
        test: test.map((t) => ({ seed: t.seed, baseline: t.baseline!, selected: t.selected! })),
      });
    }
  }
  return picks;
}

/** The unpruned model under each draw, per dataset, from a sweep over all the draws. */
async function unprunedDraws(db: Db, sweep: string): Promise<UnprunedDraws[]> {
  const rows = (await cellResults(db, sweep)).filter((r) => r.ratio === 0 && r.status === 'done' && r.accuracy !== null && r.n);
  const datasets = [...new Set(rows.map((r) => r.dataset))];
  const of = (dataset: string, split: string) => rows.filter((r) => r.dataset === dataset && r.split === split).map((r) => ({ accuracy: r.accuracy!, n: r.n! }));
  return datasets.map((dataset) => ({ dataset, validation: of(dataset, 'validation'), test: of(dataset, 'test') }));
}

async function runSweep(client: Client, taskQueue: string, spec: SweepSpecInput, io: StudyIo): Promise<SweepResult> {
  const handle = await client.workflow.start('sweep', { taskQueue, workflowId: `study-${spec.name}-${Date.now().toString(36)}`, args: [spec] });
  io.err(`sweep "${spec.name}" (workflow ${handle.workflowId})\n`);
  const r = io.progress === false ? ((await handle.result()) as SweepResult) : await follow(handle);
  io.err(`  ${r.total} cells: ${r.done} computed, ${r.reused} reused, ${r.failed} failed\n`);
  return r;
}

/** Run `study` with the arguments after the command name; resolves to the exit code. */
export async function runStudy(args: string[], io: StudyIo = defaultIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      spec: { type: 'string' },
      name: { type: 'string' },
      level: { type: 'string' },
      worker: { type: 'boolean', default: false },
      'task-queue': { type: 'string' },
      'table-only': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(STUDY_USAGE + '\n');
    return 0;
  }
  const level = values.level === undefined ? 0.05 : Number(values.level);
  if (!(level > 0 && level < 1)) {
    io.err(`study: --level must be a number between 0 and 1, got ${values.level}\n`);
    return 2;
  }
  const grid = values.spec
    ? ((await readSpecFile(values.spec)) as SweepSpecInput)
    : studyGrid(await prepareSmolLM2(path.resolve('data/models'), () => {}));
  const prefix = values.name ?? grid.name;
  let rules: RuleSweep[];
  try {
    rules = ruleSweeps(grid, prefix, level);
  } catch (err) {
    io.err(`study: ${(err as Error).message}\n`);
    return 2;
  }
  for (const spec of rules.flatMap((r) => r.specs)) {
    const check = checkSpec(spec);
    if (!check.ok) {
      io.err(formatProblems(values.spec ?? '(study grid)', check.problems));
      return 2;
    }
  }

  const db = io.db ?? (await createDb());
  const cleanup: (() => Promise<void>)[] = io.db ? [] : [() => db.close()];
  try {
    if (!io.db) await migrate(db);
    if (!values['table-only']) {
      const taskQueue = values['task-queue'] ?? process.env.ICL_SWEEP_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
      const { client, close } = await connectTemporal();
      cleanup.push(close);
      if (values.worker) {
        const worker = await createSweepWorker({ ...workerConfigFromEnv(), taskQueue, metricsPort: undefined }, { db });
        const running = worker.run();
        cleanup.push(async () => {
          worker.shutdown();
          await running.catch(() => {});
        });
      }
      // The many-draw paper sweep first: it computes the grid every other sweep reuses.
      const order = [rules[1], rules[0], rules[2], rules[3]];
      for (const spec of order.flatMap((r) => r.specs)) {
        const r = await runSweep(client, taskQueue, spec, io);
        if (r.failed > 0) io.err(`  warning: ${r.failed} cells of "${spec.name}" failed; their picks are left out\n`);
      }
    }
    const studyRules: StudyRule[] = [];
    for (const r of rules) studyRules.push({ rule: r.rule, judgedOn: r.judgedOn, picks: await storedPicks(db, r.specs.map((s) => s.name), io) });
    const text = renderStudy(await unprunedDraws(db, rules[1].specs[0].name), studyRules);
    io.out(text);
    if (values.out) await writeFile(values.out, text);
    return 0;
  } catch (err) {
    io.err(`study: ${(err as Error).message}\n`);
    return 1;
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  }
}
