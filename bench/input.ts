/**
 * bench:input: what one oversized example costs a worker. A dataset whose test split holds one line of
 * --line-mb megabytes (default 50) is given to a cell of the tiny GPT-2 fixture, as a worker would
 * run it; prints how long until the cell is refused (or finishes), the worker's memory before, at its
 * peak and after (and after a garbage collection), and the longest the event loop was blocked (what
 * other workflows and heartbeats on that worker wait).
 *
 *   npm run bench:input [-- --line-mb 50]
 */
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createEngine, type CellRequest } from '../engine/index.ts';

const { values } = parseArgs({ options: { 'line-mb': { type: 'string', default: '50' } } });
const lineMb = Number(values['line-mb']);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function main(): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'icl-bench-input-'));
  try {
    const data = path.join(tmp, 'dataset');
    await mkdir(data, { recursive: true });
    const rows = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ sentence: i % 2 ? 'a great film' : 'a dull mess', label: i % 2 }));
    await writeFile(path.join(data, 'train.jsonl'), rows(40).join('\n') + '\n');
    // Written in pieces, so the bench itself never holds the line.
    const file = await open(path.join(data, 'test.jsonl'), 'w');
    await file.write(rows(10).join('\n') + '\n{"sentence": "');
    const piece = 'word '.repeat(2 ** 20 / 5);
    for (let i = 0; i < lineMb; i++) await file.write(piece);
    await file.write('", "label": 0}\n');
    await file.close();

    const engine = createEngine({
      executionProvider: 'cpu',
      cacheDir: path.join(tmp, 'cache'),
      maxModels: 1,
      decompositionCacheBytes: 1 << 26,
      threads: 1,
      dataRoots: [tmp, path.join(ROOT, 'test/fixtures')],
    });
    const request: CellRequest = {
      model: { name: 'gpt2-tiny', path: path.join(ROOT, 'test/fixtures/models/gpt2') },
      dataset: { name: 'huge', task: 'sst2', path: data },
      module: 'all',
      layer: -1,
      ratio: 0,
      split: 'test',
      shots: 2,
      sizes: {},
      scoring: { multipleChoice: 'loglik', svd: 'exact' },
    };
    gc();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const t0 = performance.now();
    let outcome: string;
    try {
      const r = await engine.evaluate(request);
      outcome = `accepted: the cell ran (${r.n} examples, accuracy ${r.accuracy.toFixed(3)})`;
    } catch (err) {
      outcome = `refused: ${(err as Error).message}`;
    }
    const seconds = (performance.now() - t0) / 1000;
    loop.disable();
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const after = process.memoryUsage().rss;
    gc();
    const afterGc = process.memoryUsage().rss;
    await engine.close();
    console.log(`one ${lineMb} MB line in the test split of a ${request.model.name} cell:`);
    console.log(`  ${outcome}`);
    console.log(`  after ${seconds.toFixed(3)} s; event loop blocked at most ${(loop.max / 1e6).toFixed(0)} ms`);
    console.log(`  worker RSS: before ${mb(before)}, peak ${mb(peak)}, after ${mb(after)}, after GC ${mb(afterGc)}`);
    console.log(`  load average: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
