/**
 * activities/metrics.ts: the recorders produce the documented series, names follow Prometheus
 * conventions (checked by promtool's own linter), label cardinality stays bounded, and the HTTP
 * server answers /metrics, /healthz and /readyz.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LABEL_SETS, exportSweepProgress, metrics, registry, setReady, startMetricsServer, metricsPortsFromEnv, type MetricsServer } from '../../activities/metrics.ts';
import { findTool } from './helpers.ts';

const l = { sweep: 'unit-sweep', model: 'gpt2', dataset: 'sst2' };

let server: MetricsServer;
let base: string;

beforeAll(async () => {
  server = await startMetricsServer(0, { host: '127.0.0.1' });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => {
  await server?.close();
});

async function scrape(): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([^{ ]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('metrics API', () => {
  it('records a cell lifecycle into icl_sweep_* series labelled {sweep, model, dataset}', async () => {
    exportSweepProgress(async () => [{ name: 'unit-sweep', planned: 10, finished: 0 }]);
    metrics.cellStarted(l);
    let text = await scrape();
    expect(sample(text, 'icl_sweep_cells_in_flight', l)).toBe(1);
    // Series are initialised at 0 when a label set first appears.
    expect(sample(text, 'icl_sweep_cells_failed_total', l)).toBe(0);
    expect(sample(text, 'icl_sweep_cells_reused_total', l)).toBe(0);

    metrics.examplesEvaluated(l, 32);
    metrics.forwardTokens(l, 1000, 0.5);
    metrics.decomposition(2, 1, 0.25);
    metrics.modelLoad(1.5);
    metrics.cellCompleted(l, 3.2);
    metrics.cellStarted(l);
    metrics.cellFailed(l);
    metrics.cellsReused(l, 5);
    metrics.cellConflict(l);
    exportSweepProgress(async () => [{ name: 'unit-sweep', planned: 10, finished: 7 }]);

    text = await scrape();
    expect(sample(text, 'icl_sweep_cells_started_total', l)).toBe(2);
    expect(sample(text, 'icl_sweep_cells_completed_total', l)).toBe(1);
    expect(sample(text, 'icl_sweep_cells_failed_total', l)).toBe(1);
    expect(sample(text, 'icl_sweep_cells_reused_total', l)).toBe(5);
    expect(sample(text, 'icl_sweep_cells_in_flight', l)).toBe(0);
    expect(sample(text, 'icl_sweep_cell_duration_seconds_count', l)).toBe(1);
    expect(sample(text, 'icl_sweep_cell_duration_seconds_sum', l)).toBeCloseTo(3.2);
    expect(sample(text, 'icl_sweep_cell_duration_seconds_bucket', { ...l, le: '5' })).toBe(1);
    expect(sample(text, 'icl_sweep_cell_duration_seconds_bucket', { ...l, le: '2.5' })).toBe(0);
    expect(sample(text, 'icl_sweep_examples_evaluated_total', l)).toBe(32);
    expect(sample(text, 'icl_sweep_forward_tokens_total', l)).toBe(1000);
    expect(sample(text, 'icl_sweep_forward_seconds_total', l)).toBe(0.5);
    expect(sample(text, 'icl_sweep_forward_tokens_per_second', l)).toBe(2000);
    expect(sample(text, 'icl_sweep_decomposition_cache_hits_total')).toBe(2);
    expect(sample(text, 'icl_sweep_decomposition_cache_misses_total')).toBe(1);
    expect(sample(text, 'icl_sweep_decomposition_seconds_total')).toBe(0.25);
    expect(sample(text, 'icl_sweep_model_load_seconds_count')).toBe(1);
    expect(sample(text, 'icl_sweep_sweep_cells_planned', { sweep: 'unit-sweep' })).toBe(10);
    expect(sample(text, 'icl_sweep_sweep_cells_done', { sweep: 'unit-sweep' })).toBe(7);
    expect(sample(text, 'icl_sweep_cell_conflicts_total', l)).toBe(1);
    expect(sample(text, 'icl_sweep_last_cell_finished_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    // Default process metrics keep their standard names.
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('sweep progress is read at each scrape: sweeps gone from the source drop out, an unreachable source keeps the last values', async () => {
    exportSweepProgress(async () => [{ name: 'sweep-a', planned: 5, finished: 5 }, { name: 'sweep-b', planned: 3, finished: 1 }]);
    let text = await scrape();
    expect(sample(text, 'icl_sweep_sweep_cells_done', { sweep: 'sweep-a' })).toBe(5);
    expect(sample(text, 'icl_sweep_sweep_cells_planned', { sweep: 'sweep-b' })).toBe(3);
    exportSweepProgress(async () => [{ name: 'sweep-b', planned: 3, finished: 2 }]);
    text = await scrape();
    expect(sample(text, 'icl_sweep_sweep_cells_done', { sweep: 'sweep-a' })).toBeUndefined();
    expect(sample(text, 'icl_sweep_sweep_cells_done', { sweep: 'sweep-b' })).toBe(2);
    exportSweepProgress(async () => {
      throw new Error('database unreachable');
    });
    expect(sample(await scrape(), 'icl_sweep_sweep_cells_done', { sweep: 'sweep-b' })).toBe(2);
    exportSweepProgress(() => new Promise(() => {})); // a database that never answers
    const t0 = Date.now();
    expect(sample(await scrape(), 'icl_sweep_sweep_cells_done', { sweep: 'sweep-b' })).toBe(2);
    expect(Date.now() - t0).toBeLessThan(5_000);
    exportSweepProgress(undefined);
  });

  it('ignores negative and non-finite amounts instead of throwing', async () => {
    const before = sample(await scrape(), 'icl_sweep_forward_tokens_total', l);
    metrics.forwardTokens(l, -5, Number.NaN);
    metrics.examplesEvaluated(l, Number.POSITIVE_INFINITY);
    metrics.cellsReused(l, -1);
    expect(sample(await scrape(), 'icl_sweep_forward_tokens_total', l)).toBe(before);
  });

  it('exports the worker identity as an info series', async () => {
    metrics.workerInfo({ worker: 'w1', taskQueue: 'q', executionProvider: 'cuda', engineVersion: '1.0.0' });
    metrics.workerInfo({ worker: 'w2', taskQueue: 'q', executionProvider: 'cuda', engineVersion: '1.0.0' });
    const text = await scrape();
    expect(sample(text, 'icl_sweep_worker_info', { worker: 'w2', execution_provider: 'cuda' })).toBe(1);
    expect(sample(text, 'icl_sweep_worker_info', { worker: 'w1' })).toBeUndefined();
  });

  it('follows Prometheus naming conventions (promtool check metrics) and the icl_sweep_ prefix', async () => {
    const promtool = findTool('promtool');
    const text = await scrape();
    const { code, out } = await new Promise<{ code: number; out: string }>((resolve) => {
      const child = execFile(promtool, ['check', 'metrics'], (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
      child.stdin!.end(text);
    });
    const ours = out.split('\n').filter((line) => line.startsWith('icl_sweep_'));
    expect(ours, out).toEqual([]);
    expect([0, 3]).toContain(code); // 3: lint problems, all of them in metrics that are not ours (checked above)
    const metricsJson = await registry.getMetricsAsJSON();
    for (const m of metricsJson) {
      if (m.name.startsWith('process_') || m.name.startsWith('nodejs_')) continue;
      expect(m.name).toMatch(/^icl_sweep_[a-z0-9_]+$/);
      if (m.type === ('counter' as never)) expect(m.name).toMatch(/_total$/);
      else expect(m.name).not.toMatch(/_total$/);
      expect(m.help.length).toBeGreaterThan(10);
    }
  });

  it('never uses cell keys or per-cell coordinates as labels', async () => {
    const allowed = new Set(['sweep', 'model', 'dataset', 'le', 'worker', 'task_queue', 'execution_provider', 'engine_version']);
    for (const m of await registry.getMetricsAsJSON()) {
      if (!m.name.startsWith('icl_sweep_')) continue;
      for (const v of m.values) for (const k of Object.keys(v.labels)) expect(allowed, `${m.name} label ${k}`).toContain(k);
    }
  });

  it('caps the number of label sets (overflow goes to sweep="_overflow")', async () => {
    for (let i = 0; i < MAX_LABEL_SETS + 50; i++) metrics.examplesEvaluated({ sweep: `s${i}`, model: 'm', dataset: 'd' }, 1);
    const text = await scrape();
    const series = text.split('\n').filter((x) => x.startsWith('icl_sweep_examples_evaluated_total{'));
    expect(series.length).toBeLessThanOrEqual(MAX_LABEL_SETS + 1);
    expect(sample(text, 'icl_sweep_examples_evaluated_total', { sweep: '_overflow' })).toBeGreaterThan(0);
  });
});

describe('metrics server', () => {
  it('answers /healthz always and /readyz until the worker drains', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    setReady(false);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    setReady(true);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('reads its ports from the environment', () => {
    expect(metricsPortsFromEnv({})).toEqual({ metrics: 9464, temporal: 9465 });
    expect(metricsPortsFromEnv({ ICL_SWEEP_METRICS_PORT: '9000', ICL_SWEEP_TEMPORAL_METRICS_PORT: '9001' })).toEqual({ metrics: 9000, temporal: 9001 });
    expect(() => metricsPortsFromEnv({ ICL_SWEEP_METRICS_PORT: 'x' })).toThrow(/invalid port/);
  });

  it('fails to start on a port already in use', async () => {
    await expect(startMetricsServer(server.port, { host: '127.0.0.1' })).rejects.toThrow(/EADDRINUSE/);
  });
});
