/**
 * The engine on its own thread (engine/thread.ts), as a worker runs it: the same outcome as the engine in
 * the caller's thread, progress and model loads reported back, an EngineInputError still one (with its
 * subject), a cancelled cell rejected while the thread lives on, and the caller's thread free while a cell
 * computes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, createThreadedEngine, EngineInputError, type CellRequest, type EngineOptions } from '../../engine/index.ts';
import { MODELS, sst2Cell } from '../support/fixture-models.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'engine-thread-'));
const loads: string[] = [];
const options: EngineOptions = { executionProvider: 'cpu', cacheDir, maxModels: 2, decompositionCacheBytes: 1 << 26, threads: 1 };
const threaded = createThreadedEngine({ ...options, onModelLoad: (_, dir) => loads.push(dir) });
afterAll(async () => {
  await threaded.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

const cell = (over: Partial<CellRequest> = {}): CellRequest => ({ ...sst2Cell('llama'), sizes: { testPerClass: 8 }, ...over });

describe('the threaded engine', () => {
  it('gives the outcome of the engine in this thread, reports progress and the model load', async () => {
    const local = createEngine(options);
    const expected = await local.evaluate(cell());
    await local.close();
    const progress: number[] = [];
    const outcome = await threaded.evaluate(cell(), { onProgress: (done, total) => progress.push(done / total) });
    expect(outcome.examples.map((e) => [e.prediction, e.scores])).toEqual(expected.examples.map((e) => [e.prediction, e.scores]));
    expect(outcome.accuracy).toBe(expected.accuracy);
    expect(outcome.sample).toEqual(expected.sample);
    expect(progress.at(-1)).toBe(1);
    expect(loads).toEqual([join(MODELS, 'llama')]);
  });

  it("keeps this thread free while the engine's thread is held by a run", async () => {
    const held = createThreadedEngine({ ...options, holdMs: 600 }, new URL('./blocking-engine.ts', import.meta.url));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    await held.evaluate(cell());
    clearInterval(timer);
    await held.close();
    expect(ticks).toBeGreaterThanOrEqual(20);
  });

  it('an EngineInputError arrives as one, with its subject; other calls answer as before', async () => {
    const missing = join(MODELS, 'no-such-model');
    const err = await threaded.describeModel({ name: 'x', path: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineInputError);
    expect((err as EngineInputError).subject).toBeDefined();
    expect((err as Error).message).toContain('no-such-model');
    const info = await threaded.describeModel({ name: 'llama', path: join(MODELS, 'llama') });
    expect(info.family).toBe('llama');
  });

  it('a cancelled cell is rejected and the thread goes on with the next', async () => {
    const twoAtATime = createThreadedEngine({ ...options, batchSize: 2 });
    const controller = new AbortController();
    const progress: number[] = [];
    const started = twoAtATime.evaluate(cell({ layer: 0, ratio: 0.9 }), {
      signal: controller.signal,
      onProgress: (done) => (progress.push(done), controller.abort(new Error('CANCELLED'))),
    });
    await expect(started).rejects.toThrow();
    expect(Math.max(...progress)).toBeLessThan(16);
    const next = await twoAtATime.evaluate(cell({ layer: 0, ratio: 0.9 }));
    expect(next.n).toBe(16);
    await twoAtATime.close();
  });
});
