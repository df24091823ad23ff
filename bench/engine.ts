/**
 * Engine benchmark (a command, not a test): per cell, forward tokens and wall time with prefix reuse vs
 * the plain full-prompt path, tokens per second, and the target check
 * forwardTokens <= 1.1 x promptTokens (demonstration tokens + query tokens [+ candidate tokens]).
 *
 *   npx tsx bench/engine.ts                         # the largest fixture model (test/fixtures/models)
 *   npx tsx bench/engine.ts path/to/model [more...] # any exported model folders
 *   options: --shots N (default sst2 4, copa 2: the fixture models have 128 positions) --per-class N (default 8) --batch N (default 16) --threads N
 *            --ratios 0,0.5,0.9 --module mlp --layer -1 --ep cpu|cuda --tasks sst2,copa
 *
 * Cells: sst2 (classification; test/fixtures/datasets/sst2) and copa (multiple choice;
 * test/fixtures/datasets/copa), module x layer x ratios. Exit code 1 when a target check fails.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createEngine, type CellOutcome, type CellRequest } from '../engine/index.ts';
import type { ModuleName } from '../engine/vocabulary.ts';

const ROOT = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const shotsOpt = opt('shots', '');
const perClass = Number(opt('per-class', '8'));
const batchSize = Number(opt('batch', '16'));
const threadsOpt = opt('threads', '');
const ratios = opt('ratios', '0,0.5,0.9').split(',').map(Number);
const module = opt('module', 'mlp') as ModuleName;
const layer = Number(opt('layer', '-1'));
const ep = opt('ep', 'cpu') as 'cpu' | 'cuda';
const tasks = opt('tasks', 'sst2,copa').split(',');

function folderBytes(dir: string): number {
  return readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
}

function largestFixture(): string {
  const base = join(ROOT, 'test/fixtures/models');
  const dirs = readdirSync(base)
    .map((d) => join(base, d))
    .filter((d) => statSync(d).isDirectory() && !d.endsWith('-nopast'));
  dirs.sort((a, b) => folderBytes(b) - folderBytes(a));
  return dirs[0];
}

const models = argv.filter((a) => !a.startsWith('--')).map((p) => resolve(p));
if (models.length === 0) models.push(largestFixture());

const cacheDir = mkdtempSync(join(tmpdir(), 'bench-engine-'));
const engine = createEngine({
  executionProvider: ep,
  cacheDir,
  maxModels: 1,
  decompositionCacheBytes: 1 << 30,
  threads: threadsOpt ? Number(threadsOpt) : undefined,
  batchSize,
});

const datasets = [
  { name: 'sst2', path: join(ROOT, 'test/fixtures/datasets/sst2'), task: 'sst2' as const, split: 'test' as const, sizes: { testPerClass: perClass }, shots: 4 },
  { name: 'copa', path: join(ROOT, 'test/fixtures/datasets/copa'), task: 'copa' as const, split: 'validation' as const, sizes: { validationPerClass: perClass }, shots: 2 },
];

const rows: string[][] = [];
let failed = false;
const fmt = (x: number, d = 2) => x.toFixed(d);

const selected = datasets.filter((d) => tasks.includes(d.name));
for (const dir of models) {
  const spec = { name: basename(dir), path: dir };
  const t0 = performance.now();
  const info = await engine.describeModel(spec);
  console.log(`model ${dir}: ${info.family}, ${info.numLayers} layers, past KV ${info.hasPastKeyValues}, ${(folderBytes(dir) / 1e6).toFixed(1)} MB, loaded in ${fmt((performance.now() - t0) / 1000)} s`);
  for (const ds of selected) {
    const base: CellRequest = {
      model: spec,
      dataset: { name: ds.name, path: ds.path, task: ds.task },
      module,
      layer,
      ratio: 0,
      split: ds.split,
      shots: shotsOpt ? Number(shotsOpt) : ds.shots,
      sizes: ds.sizes,
      scoring: { multipleChoice: 'loglik', svd: 'exact' },
    };
    await engine.evaluate(base); // warm-up: tokenization cache, ORT session warm
    for (const ratio of ratios) {
      const req = { ...base, ratio };
      const out: Record<string, CellOutcome> = {};
      for (const path of ['reuse', 'full'] as const) out[path] = await engine.evaluate(req, { reusePrefix: path === 'reuse' });
      const r = out.reuse.cost;
      const f = out.full.cost;
      const ok = r.forwardTokens <= 1.1 * r.promptTokens;
      if (!ok) failed = true;
      rows.push([
        basename(dir),
        ds.name,
        `${module}/${layer}/${ratio}`,
        String(req.shots),
        String(out.reuse.n),
        String(r.promptTokens),
        String(r.demoTokens),
        `${r.forwardTokens} (${fmt(r.forwardTokens / r.promptTokens)}x)`,
        `${f.forwardTokens} (${fmt(f.forwardTokens / f.promptTokens)}x)`,
        fmt(r.seconds, 3),
        fmt(f.seconds, 3),
        fmt(r.forwardTokens / r.seconds, 0),
        fmt(f.forwardTokens / f.seconds, 0),
        fmt(r.svdSeconds, 3),
        fmt(out.reuse.accuracy, 3),
        ok ? 'PASS' : 'FAIL',
      ]);
    }
  }
}
await engine.close();
rmSync(cacheDir, { recursive: true, force: true });

const header = ['model', 'task', 'module/layer/ratio', 'shots', 'n', 'prompt tok', 'demo tok', 'fwd tok reuse', 'fwd tok full', 's reuse', 's full', 'tok/s reuse', 'tok/s full', 'svd s', 'acc', 'fwd<=1.1xprompt'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(`\nshots ${shotsOpt || 'sst2 4, copa 2'}, ${perClass} per class, batch ${batchSize}, ${ep}${threadsOpt ? `, ${threadsOpt} threads` : ''}; seconds are whole cells (edit + prefill + queries)`);
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log(`\ntarget forwardTokens <= 1.1 x promptTokens with prefix reuse: ${failed ? 'FAIL' : 'PASS'} (${rows.length} cells)`);
process.exitCode = failed ? 1 : 0;
