/**
 * Prometheus metrics of a worker (prom-client), served on /metrics by startMetricsServer().
 *
 * Contract: `metrics.*` recorders, `startMetricsServer(port)`, `registry`.
 * Every metric of ours is prefixed `icl_sweep_`; counters end in `_total`, durations are in
 * `_seconds`. Node's default process metrics (process_*, nodejs_*) keep their standard names so
 * stock dashboards work with them.
 *
 * Labels and cardinality: the only labels are `sweep`, `model` and `dataset`, whose values are the
 * names a sweep spec gives (bounded by the spec: a handful of models and datasets per sweep, and
 * names are <= 100 characters). Cell keys, layers, ratios and modules are never labels (they
 * would make one series per cell); per-cell results live in Postgres, not in Prometheus.
 * As a safety net, at most MAX_LABEL_SETS distinct {sweep, model, dataset} combinations are kept
 * per process; beyond that, new combinations are counted under sweep="_overflow".
 * Per-worker breakdowns come from Prometheus' own `instance` / `pod` target labels.
 *
 * Ports (documented in deploy/README.md):
 *  - ICL_SWEEP_METRICS_PORT (default 9464): this module's /metrics, /healthz, /readyz.
 *  - ICL_SWEEP_TEMPORAL_METRICS_PORT (default 9465): the Temporal SDK's own worker metrics
 *    (temporal_*), exported by the SDK's Rust core; see installTemporalMetrics().
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const DEFAULT_METRICS_PORT = 9464;
export const DEFAULT_TEMPORAL_METRICS_PORT = 9465;
export const MAX_LABEL_SETS = 1000;

/** The labels of every per-cell metric: names from the sweep spec (bounded), never cell keys. */
export interface CellLabels {
  sweep: string;
  model: string;
  dataset: string;
}

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const cellLabelNames = ['sweep', 'model', 'dataset'] as const;

const cellsStarted = new Counter({
  name: 'icl_sweep_cells_started_total',
  help: 'Cells whose evaluation started on this worker (each attempt counts).',
  labelNames: cellLabelNames,
  registers: [registry],
});
const cellsCompleted = new Counter({
  name: 'icl_sweep_cells_completed_total',
  help: 'Cells evaluated successfully and stored.',
  labelNames: cellLabelNames,
  registers: [registry],
});
const cellsFailed = new Counter({
  name: 'icl_sweep_cells_failed_total',
  help: 'Cell attempts that failed (transient or bad input).',
  labelNames: cellLabelNames,
  registers: [registry],
});
const cellsReused = new Counter({
  name: 'icl_sweep_cells_reused_total',
  help: 'Cells skipped because a stored result with the same cell key was reused.',
  labelNames: cellLabelNames,
  registers: [registry],
});
const cellDuration = new Histogram({
  name: 'icl_sweep_cell_duration_seconds',
  help: 'Wall time of one successful cell evaluation.',
  labelNames: cellLabelNames,
  buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
  registers: [registry],
});
const cellsInFlight = new Gauge({
  name: 'icl_sweep_cells_in_flight',
  help: 'Cells being evaluated on this worker right now.',
  labelNames: cellLabelNames,
  registers: [registry],
});
const examplesEvaluated = new Counter({
  name: 'icl_sweep_examples_evaluated_total',
  help: 'Evaluation examples scored.',
  labelNames: cellLabelNames,
  registers: [registry],
});
const forwardTokens = new Counter({
  name: 'icl_sweep_forward_tokens_total',
  help: 'Tokens run through the model.',
  labelNames: cellLabelNames,
  registers: [registry],
});
const forwardSeconds = new Counter({
  name: 'icl_sweep_forward_seconds_total',
  help: 'Seconds spent running the tokens of icl_sweep_forward_tokens_total (busy time).',
  labelNames: cellLabelNames,
  registers: [registry],
});
const tokensPerSecond = new Gauge({
  name: 'icl_sweep_forward_tokens_per_second',
  help: 'Forward tokens per second of the last cell reported (rate() of the counters gives averages).',
  labelNames: cellLabelNames,
  registers: [registry],
});
const decompositionHits = new Counter({
  name: 'icl_sweep_decomposition_cache_hits_total',
  help: 'SVD decompositions served from the cache.',
  registers: [registry],
});
const decompositionMisses = new Counter({
  name: 'icl_sweep_decomposition_cache_misses_total',
  help: 'SVD decompositions computed because the cache did not have them.',
  registers: [registry],
});
const decompositionSeconds = new Counter({
  name: 'icl_sweep_decomposition_seconds_total',
  help: 'Seconds spent computing SVD decompositions.',
  registers: [registry],
});
const modelLoadSeconds = new Histogram({
  name: 'icl_sweep_model_load_seconds',
  help: 'Time to load a model (ONNX session + tokenizer).',
  buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  registers: [registry],
});
/** Per-sweep progress as the sweeps' workflows last recorded it in the database; filled at scrape time (exportSweepProgress). */
export interface SweepProgressRow {
  name: string;
  planned: number;
  finished: number;
}
let sweepProgressSource: (() => Promise<SweepProgressRow[]>) | undefined;
/** A scrape waits at most this long for the database; past it (or on an error) the last values stay. */
const PROGRESS_READ_TIMEOUT_MS = 2_000;

async function readSweepProgress(): Promise<SweepProgressRow[] | undefined> {
  if (!sweepProgressSource) return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      sweepProgressSource(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), PROGRESS_READ_TIMEOUT_MS);
      }),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** One read per scrape, shared by the two gauges. */
let progressRead: Promise<SweepProgressRow[] | undefined> | undefined;
function progressOnce(): Promise<SweepProgressRow[] | undefined> {
  progressRead ??= readSweepProgress().finally(() => queueMicrotask(() => (progressRead = undefined)));
  return progressRead;
}

function progressGauge(name: string, help: string, value: (r: SweepProgressRow) => number): Gauge<'sweep'> {
  return new Gauge({
    name,
    help,
    labelNames: ['sweep'],
    registers: [registry],
    async collect() {
      const rows = await progressOnce();
      if (!rows) return;
      this.reset();
      for (const r of rows) this.set({ sweep: r.name }, nonNegative(value(r)));
    },
  });
}

progressGauge('icl_sweep_sweep_cells_planned', 'Cells planned by the sweep (its grid, plus the test cells once chosen), as its workflow last recorded.', (r) => r.planned);
progressGauge(
  'icl_sweep_sweep_cells_done',
  'Cells of the sweep with a result (computed, reused or failed), as its workflow last recorded; equals planned when it completed.',
  (r) => r.finished,
);
const cellConflicts = new Counter({
  name: 'icl_sweep_cell_conflicts_total',
  help: 'Second completions of a done cell with other numbers (kept in cell_conflicts; the first result stands).',
  labelNames: cellLabelNames,
  registers: [registry],
});
const lastCellFinished = new Gauge({
  name: 'icl_sweep_last_cell_finished_timestamp_seconds',
  help: 'Unix time at which this worker last finished a cell (completed or failed).',
  registers: [registry],
});
const workerInfo = new Gauge({
  name: 'icl_sweep_worker_info',
  help: 'Constant 1, labelled with the worker identity and its configuration.',
  labelNames: ['worker', 'task_queue', 'execution_provider', 'engine_version'],
  registers: [registry],
});

const seenLabelSets = new Set<string>();

function labels(l: CellLabels): CellLabels {
  const value = { sweep: String(l.sweep), model: String(l.model), dataset: String(l.dataset) };
  const id = `${value.sweep}\u0000${value.model}\u0000${value.dataset}`;
  if (seenLabelSets.has(id)) return value;
  if (seenLabelSets.size >= MAX_LABEL_SETS) return { sweep: '_overflow', model: '_overflow', dataset: '_overflow' };
  seenLabelSets.add(id);
  // Initialise every per-cell series at 0 the first time a label set is seen, so rate() and
  // increase() work from the first increment and panels show 0 rather than "no data".
  for (const c of [cellsStarted, cellsCompleted, cellsFailed, cellsReused, cellConflicts, examplesEvaluated, forwardTokens, forwardSeconds]) c.inc(value, 0);
  cellsInFlight.inc(value, 0);
  cellDuration.zero(value);
  return value;
}

function nonNegative(x: number): number {
  return Number.isFinite(x) && x > 0 ? x : 0;
}

export const metrics = {
  /** A cell attempt starts on this worker (also raises cells in flight). */
  cellStarted(l: CellLabels): void {
    const v = labels(l);
    cellsStarted.inc(v);
    cellsInFlight.inc(v);
  },
  /** A cell finished and was stored; `seconds` is its wall time. */
  cellCompleted(l: CellLabels, seconds: number): void {
    const v = labels(l);
    cellsCompleted.inc(v);
    cellDuration.observe(v, nonNegative(seconds));
    cellsInFlight.dec(v);
    lastCellFinished.setToCurrentTime();
  },
  /** A cell attempt failed (after cellStarted). */
  cellFailed(l: CellLabels): void {
    const v = labels(l);
    cellsFailed.inc(v);
    cellsInFlight.dec(v);
    lastCellFinished.setToCurrentTime();
  },
  /** `n` cells of a sweep were found already stored and reused. */
  cellsReused(l: CellLabels, n: number): void {
    if (nonNegative(n) > 0) cellsReused.inc(labels(l), n);
  },
  examplesEvaluated(l: CellLabels, n: number): void {
    if (nonNegative(n) > 0) examplesEvaluated.inc(labels(l), n);
  },
  /** `n` tokens run through the model in `seconds` of busy time. */
  forwardTokens(l: CellLabels, n: number, seconds: number): void {
    const v = labels(l);
    const tokens = nonNegative(n);
    const secs = nonNegative(seconds);
    if (tokens > 0) forwardTokens.inc(v, tokens);
    if (secs > 0) forwardSeconds.inc(v, secs);
    if (tokens > 0 && secs > 0) tokensPerSecond.set(v, tokens / secs);
  },
  /** Decomposition cache hits and misses of one cell, and the seconds spent computing SVDs. */
  decomposition(hits: number, misses: number, seconds: number): void {
    if (nonNegative(hits) > 0) decompositionHits.inc(hits);
    if (nonNegative(misses) > 0) decompositionMisses.inc(misses);
    if (nonNegative(seconds) > 0) decompositionSeconds.inc(seconds);
  },
  /** A model was loaded in `seconds` (call only when a load happened, not for a cached model). */
  modelLoad(seconds: number): void {
    modelLoadSeconds.observe(nonNegative(seconds));
  },
  /** A done cell completed again with other numbers (the stored result stood). */
  cellConflict(l: CellLabels): void {
    cellConflicts.inc(labels(l));
  },
  /** Optional: identify this worker (one series; call once at start-up). */
  workerInfo(info: { worker: string; taskQueue: string; executionProvider: string; engineVersion: string }): void {
    workerInfo.reset();
    workerInfo.set(
      {
        worker: info.worker,
        task_queue: info.taskQueue,
        execution_provider: info.executionProvider,
        engine_version: info.engineVersion,
      },
      1,
    );
  },
};

/**
 * Exports the per-sweep progress gauges (icl_sweep_sweep_cells_planned / _done) from `source`, read
 * at each scrape: the orchestrator worker passes the database's record of recent sweeps, so every
 * such worker exports the same values and none goes stale when another one ran the last activity.
 */
export function exportSweepProgress(source: (() => Promise<SweepProgressRow[]>) | undefined): void {
  sweepProgressSource = source;
}

let ready = true;
/** Readiness reported on /readyz: a worker sets false while draining (SIGTERM) so it gets no new traffic. */
export function setReady(value: boolean): void {
  ready = value;
}

export interface MetricsServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics (Prometheus text format), GET /healthz (200 while the process is alive) and
 * GET /readyz (200 while ready, 503 after setReady(false)). Binds 0.0.0.0 unless `host` is given.
 */
export async function startMetricsServer(port: number, options: { host?: string } = {}): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        })
        .catch((err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        });
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'draining\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz, /readyz\n');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections?.();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/**
 * Makes the Temporal SDK export its own worker metrics (temporal_* : task slots, poll and
 * schedule-to-start latencies, activity execution latency, sticky cache, ...) in Prometheus format on
 * `http://<host>:<port>/metrics`. The SDK's Rust core serves that port, separate from
 * startMetricsServer's. Must be called once, before any NativeConnection or Worker is created
 * (it installs the process-wide Temporal Runtime); a second call throws.
 * Counters get `_total`, durations are in seconds with a `_seconds` suffix (Prometheus conventions).
 */
export async function installTemporalMetrics(
  port: number = DEFAULT_TEMPORAL_METRICS_PORT,
  options: { host?: string; globalTags?: Record<string, string> } = {},
): Promise<void> {
  // Imported lazily: only worker processes need the native SDK core.
  const { Runtime } = await import('@temporalio/worker');
  Runtime.install({
    telemetryOptions: {
      metrics: {
        prometheus: {
          bindAddress: `${options.host ?? '0.0.0.0'}:${port}`,
          countersTotalSuffix: true,
          unitSuffix: true,
          useSecondsForDurations: true,
        },
        ...(options.globalTags ? { globalTags: options.globalTags } : {}),
      },
    },
  });
}

/** Ports from the environment, as the worker (and deploy/) use them. */
export function metricsPortsFromEnv(env: NodeJS.ProcessEnv = process.env): { metrics: number; temporal: number } {
  const parse = (v: string | undefined, fallback: number) => {
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`invalid port "${v}"`);
    return n;
  };
  return {
    metrics: parse(env.ICL_SWEEP_METRICS_PORT, DEFAULT_METRICS_PORT),
    temporal: parse(env.ICL_SWEEP_TEMPORAL_METRICS_PORT, DEFAULT_TEMPORAL_METRICS_PORT),
  };
}
