/**
 * The dashboards against the real thing: a real worker (`worker/main.ts` in a child process, real
 * engine, fixture model) runs real sweeps through the Temporal server into a fresh Postgres
 * database; Debian's prometheus scrapes the worker's /metrics and the Temporal SDK's metrics port
 * on loopback, using deploy/prometheus/prometheus.yml's jobs.
 *
 * - Every SQL query of every dashboard (panels and template variables) runs through the read-only
 *   role made by deploy/postgres/create-readonly-role.sh and returns the columns its panel uses.
 * - The read-only role cannot write.
 * - Every PromQL expression of every dashboard evaluates through Prometheus' HTTP API to a
 *   non-empty result, and every metric it names is one the real worker exports.
 * - The progress panels read values that are right: during a real sweep the cells done never go
 *   down and never exceed those planned; once it completes progress is exactly 100 % and the ETA
 *   zero or empty.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, serverUrl, type TestDatabase } from '../support/database.ts';
import { connectClient, spawnWorker, uniqueTaskQueue, waitFor } from '../support/temporal.ts';
import { linkCells, saveCellFailure } from '../../db/queries.ts';
import {
  DEPLOY_DIR,
  REPO,
  exposedNames,
  findTool,
  freePort,
  interpolatePromql,
  interpolateSql,
  loadDashboards,
  metricNames,
  promQueries,
  sqlQueries,
  startPrometheus,
  type RunningPrometheus,
} from './helpers.ts';

const execFileP = promisify(execFile);
const dashboards = loadDashboards();

/** Columns each panel reads (by dashboard uid / panel id / refId); a query missing here fails the test. */
const EXPECTED_COLUMNS: Record<string, string[]> = {
  'icl-sweep-accuracy-surfaces/var/sweep': ['sweep'],
  'icl-sweep-accuracy-surfaces/var/model': ['model'],
  'icl-sweep-accuracy-surfaces/var/dataset': ['dataset'],
  'icl-sweep-accuracy-surfaces/var/module': ['module'],
  'icl-sweep-accuracy-surfaces/var/split': ['split'],
  'icl-sweep-accuracy-surfaces/1/A': ['total', 'done', 'reused', 'failed', 'remaining'],
  'icl-sweep-accuracy-surfaces/2/A': ['baseline_accuracy', 'best_accuracy', 'best_delta'],
  'icl-sweep-accuracy-surfaces/3/A': ['layer', 'ratio', 'accuracy'],
  'icl-sweep-accuracy-surfaces/4/A': ['layer', 'ratio', 'delta'],
  'icl-sweep-accuracy-surfaces/5/A': [
    'model', 'dataset', 'task', 'module', 'layer', 'ratio', 'accuracy', 'baseline_accuracy', 'delta', 'sd', 'ci_lower', 'ci_upper', 'draws', 'f1_macro', 'n',
  ],
  'icl-sweep-accuracy-surfaces/6/A': [
    'model', 'dataset', 'task', 'rule', 'module', 'layer', 'ratio', 'draws', 'validation_accuracy', 'validation_gain', 'validation_gain_p',
    'baseline_accuracy', 'selected_accuracy', 'delta', 'baseline_n', 'selected_n', 'selected_status',
  ],
  'icl-sweep-accuracy-surfaces/7/A': ['module', 'layer', 'ratio', 'seed', 'accuracy', 'delta', 'f1_macro', 'n', 'seconds', 'forward_tokens', 'worker', 'reused'],
  'icl-sweep-accuracy-surfaces/8/A': ['model', 'dataset', 'module', 'layer', 'ratio', 'split', 'error', 'worker'],
  'icl-sweep-accuracy-surfaces/9/A': ['layer', 'ratio', 'sd'],
  'icl-sweep-accuracy-surfaces/10/A': ['model', 'dataset', 'draws', 'mean_accuracy', 'sd_accuracy', 'min_accuracy', 'max_accuracy', 'ci_lower', 'ci_upper', 'n'],
};

const MODULES = ['q_proj', 'fc_in'];
const LAYERS = [0, 1];
const RATIOS = [0, 0.5, 0.9];
/** Two demonstration draws per cell, so the panels over draws have a spread to show. */
const SEEDS = [1, 2];

let tmp: string;
let t: TestDatabase;
let roUrl: string;
let roRole: string;
let worker: ChildProcess | undefined;
let workerLog = '';
let prom: RunningPrometheus | undefined;
let metricsText = '';
let temporalText = '';
const sweepA = `obs-a-${randomBytes(3).toString('hex')}`;
/** Unix seconds around sweep A's run. */
let sweepAWindow: { start: number; end: number };
const sweepB = `obs-b-${randomBytes(3).toString('hex')}`;

function toyDataset(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const pos = ['a great film', 'wonderful and warm', 'truly moving', 'a joy to watch', 'brilliant acting', 'smart and funny'];
  const neg = ['a dull mess', 'boring and flat', 'painfully slow', 'a waste of time', 'awful script', 'tedious and long'];
  for (const [split, n] of [['train', 40], ['validation', 16], ['test', 16]] as const) {
    const rows = Array.from({ length: n }, (_, i) => JSON.stringify({ sentence: `${(i % 2 ? pos : neg)[i % 6]} ${split} ${i}`, label: i % 2 }));
    writeFileSync(path.join(dir, `${split}.jsonl`), rows.join('\n') + '\n');
  }
}

function spec(name: string, selection: boolean) {
  return {
    name,
    models: [{ name: 'gpt2', path: path.join(REPO, 'test/fixtures/models/gpt2') }],
    datasets: [{ name: 'toy', task: 'sst2', path: path.join(tmp, 'toy') }],
    modules: MODULES,
    layers: LAYERS,
    ratios: RATIOS,
    shots: 2,
    demoSeeds: SEEDS,
    sizes: { validationPerClass: 4, testPerClass: 4 },
    split: 'validation',
    selection,
    maxInFlight: 2,
  };
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'icl-obs-stack-'));
  toyDataset(path.join(tmp, 'toy'));
  findTool('prometheus');
  findTool('psql');
  t = await createTestDatabase({ prefix: 'icl_obs' });

  // The read-only role, made by the deploy script (as an operator would).
  roRole = `icl_obs_ro_${randomBytes(4).toString('hex')}`;
  const roPassword = randomBytes(12).toString('hex');
  await execFileP('bash', [path.join(DEPLOY_DIR, 'postgres/create-readonly-role.sh')], {
    env: { ...process.env, DATABASE_URL: t.url, ICL_SWEEP_GRAFANA_DB_USER: roRole, ICL_SWEEP_GRAFANA_DB_PASSWORD: roPassword },
  });
  const u = new URL(t.url);
  u.username = roRole;
  u.password = roPassword;
  roUrl = u.toString();

  // A real worker with both metrics ports, and Prometheus scraping it before any cell runs.
  const [metricsPort, temporalPort] = [await freePort(), await freePort()];
  const taskQueue = uniqueTaskQueue('obs');
  worker = spawnWorker(
    {
      DATABASE_URL: t.url,
      ICL_SWEEP_TASK_QUEUE: taskQueue,
      ICL_SWEEP_METRICS_PORT: String(metricsPort),
      ICL_SWEEP_TEMPORAL_METRICS_PORT: String(temporalPort),
      ICL_SWEEP_CACHE_DIR: path.join(tmp, 'cache'),
      ICL_SWEEP_CONCURRENCY: '2',
      ICL_SWEEP_WORKER_NAME: `obs-worker-${taskQueue}`,
    },
    (line) => (workerLog = (workerLog + line + '\n').slice(-20_000)),
  );
  await waitFor(async () => {
    if (worker!.exitCode !== null) throw new Error(`worker exited (${worker!.exitCode}):\n${workerLog}`);
    return (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok;
  }, 90_000, 500, 'the worker /readyz');
  prom = await startPrometheus(path.join(tmp, 'prometheus'), {
    'icl-sweep-workers': [`127.0.0.1:${metricsPort}`],
    'icl-sweep-temporal-sdk': [`127.0.0.1:${temporalPort}`],
  });
  await waitFor(async () => {
    const r = await prom!.query('sum(up)');
    return Number(r.result[0]?.value?.[1]) === 2;
  }, 30_000, 500, 'first scrapes');

  // Sweep A: grid on validation + the paper's selection step (test cells). Sweep B: the same grid,
  // all reused. Then one failed cell recorded through db/queries.ts (a real failure would fail the
  // sweep's preparation with the fixtures at hand).
  const { client, close } = await connectClient();
  try {
    const start = Date.now() / 1000;
    await client.workflow.execute('sweep', { taskQueue, workflowId: `${sweepA}-wf`, args: [spec(sweepA, true)], workflowExecutionTimeout: '5 minutes' });
    sweepAWindow = { start, end: Date.now() / 1000 };
    await client.workflow.execute('sweep', { taskQueue, workflowId: `${sweepB}-wf`, args: [spec(sweepB, false)], workflowExecutionTimeout: '5 minutes' });
  } catch (err) {
    throw new Error(`sweep failed: ${(err as Error).message}\n${(err as { cause?: Error }).cause?.message ?? ''}\nworker log:\n${workerLog}`);
  } finally {
    await close();
  }
  const failedKey = `obs-failed-${randomBytes(4).toString('hex')}`;
  await linkCells(t.db, sweepA, [{ key: failedKey, model: 'gpt2', dataset: 'toy', module: 'q_proj', layer: 2, ratio: 0.5, split: 'validation' }]);
  await saveCellFailure(t.db, { key: failedKey, module: 'q_proj', layer: 2, ratio: 0.5, split: 'validation', error: 'EngineInputError: test failure', worker: 'obs-test' });

  // Let Prometheus see the final values, then keep the worker's own exposition for the name checks.
  await new Promise((r) => setTimeout(r, 3_000));
  metricsText = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  temporalText = await (await fetch(`http://127.0.0.1:${temporalPort}/metrics`)).text();
}, 240_000);

afterAll(async () => {
  await prom?.stop();
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker!.once('exit', r));
    worker.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (worker.exitCode === null) worker.kill('SIGKILL');
  }
  await t?.drop();
  if (roRole) {
    const admin = new pg.Client({ connectionString: serverUrl() });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS "${roRole}"`).catch(() => {});
    await admin.end();
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function asReadOnly<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: roUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('accuracy surfaces (Postgres) through the read-only role', () => {
  const vars = () => ({ sweep: sweepA, model: 'gpt2', dataset: 'toy', module: 'q_proj', split: 'validation' });

  it('covers every SQL query of every dashboard', () => {
    const ids = sqlQueries(dashboards).map((q) => q.id).sort();
    expect(ids).toEqual(Object.keys(EXPECTED_COLUMNS).sort());
  });

  for (const q of sqlQueries(dashboards)) {
    it(`${q.where} returns its columns and rows`, async () => {
      const sql = interpolateSql(q.sql, vars());
      expect(sql).not.toMatch(/\$/);
      const res = await asReadOnly((c) => c.query(sql));
      const columns = res.fields.map((f) => f.name);
      expect(columns).toEqual(expect.arrayContaining(EXPECTED_COLUMNS[q.id]));
      expect(res.rows.length, `${q.where} returned no rows`).toBeGreaterThan(0);
      // Fields the panel's transformations and overrides name must exist.
      for (const tr of q.panel?.transformations ?? []) {
        if (tr.id === 'groupingToMatrix') for (const k of ['columnField', 'rowField', 'valueField']) expect(columns).toContain(tr.options[k]);
      }
      for (const o of q.panel?.fieldConfig?.overrides ?? []) {
        if (o.matcher.id === 'byName' && !o.matcher.options.includes('\\')) expect(columns).toContain(o.matcher.options);
        if (o.matcher.id === 'byRegexp') expect(columns.some((c) => new RegExp(o.matcher.options).test(c))).toBe(true);
      }
    });
  }

  it('template variables offer the sweep, model, dataset, module and split of the data', async () => {
    const byVar = Object.fromEntries(
      await Promise.all(
        sqlQueries(dashboards)
          .filter((q) => q.id.includes('/var/'))
          .map(async (q) => [q.id.split('/').pop()!, (await asReadOnly((c) => c.query({ text: interpolateSql(q.sql, vars()), rowMode: 'array' }))).rows.map((r) => r[0])]),
      ),
    );
    expect(byVar.sweep).toEqual(expect.arrayContaining([sweepA, sweepB]));
    expect(byVar.model).toEqual(['gpt2']);
    expect(byVar.dataset).toEqual(['toy']);
    expect(byVar.module.sort()).toEqual([...MODULES].sort());
    // The grid ran on validation; the selection step added test cells (baseline + selected).
    expect(byVar.split).toEqual(['validation', 'test']);
  });

  it('the layer x ratio surface has every (layer, ratio) of the grid, ratio 0 being the unpruned model', async () => {
    const panel = sqlQueries(dashboards).find((q) => q.id === 'icl-sweep-accuracy-surfaces/3/A')!;
    const rows = (await asReadOnly((c) => c.query(interpolateSql(panel.sql, vars())))).rows as { layer: number; ratio: number; accuracy: number }[];
    expect(rows.map((r) => `${r.layer}@${r.ratio}`).sort()).toEqual(LAYERS.flatMap((l) => RATIOS.map((r) => `${l}@${r}`)).sort());
    for (const r of rows) expect(r.accuracy).toBeGreaterThanOrEqual(0), expect(r.accuracy).toBeLessThanOrEqual(1);
    const base = rows.filter((r) => r.ratio === 0).map((r) => r.accuracy);
    expect(new Set(base).size).toBe(1);
    const delta = sqlQueries(dashboards).find((q) => q.id === 'icl-sweep-accuracy-surfaces/4/A')!;
    const drows = (await asReadOnly((c) => c.query(interpolateSql(delta.sql, vars())))).rows as { layer: number; ratio: number; delta: number }[];
    for (const d of drows) {
      const a = rows.find((r) => r.layer === d.layer && r.ratio === d.ratio)!;
      expect(d.delta).toBeCloseTo(a.accuracy - base[0], 9);
    }
  });

  it('the surfaces are means over the draws, and the spread panel is their standard deviation', async () => {
    const cells = (
      await asReadOnly((c) => c.query(`SELECT layer, ratio, seed, accuracy FROM cell_results WHERE sweep = $1 AND module IN ('q_proj', 'none') AND split = 'validation' AND status = 'done'`, [sweepA]))
    ).rows as { layer: number; ratio: number; seed: number; accuracy: number }[];
    const at = (layer: number, ratio: number) => cells.filter((c) => c.ratio === ratio && (ratio === 0 || c.layer === layer)).map((c) => c.accuracy);
    const query = async (id: string) => (await asReadOnly((c) => c.query(interpolateSql(sqlQueries(dashboards).find((q) => q.id === id)!.sql, vars())))).rows;
    const means = (await query('icl-sweep-accuracy-surfaces/3/A')) as { layer: number; ratio: number; accuracy: number }[];
    const spreads = (await query('icl-sweep-accuracy-surfaces/9/A')) as { layer: number; ratio: number; sd: number }[];
    expect(spreads).toHaveLength(LAYERS.length * RATIOS.length);
    for (const s of spreads) {
      const values = at(s.layer, s.ratio);
      expect(values).toHaveLength(SEEDS.length);
      expect(means.find((m) => m.layer === s.layer && m.ratio === s.ratio)!.accuracy).toBeCloseTo((values[0] + values[1]) / 2, 9);
      expect(s.sd).toBeCloseTo(Math.abs(values[0] - values[1]) / Math.SQRT2, 9);
    }
  });

  it('the read-only role cannot write, even with read-only transactions turned off', async () => {
    await asReadOnly(async (c) => {
      await c.query('SET default_transaction_read_only = off');
      const attempts = [
        `INSERT INTO sweeps (name, workflow_id, spec) VALUES ('evil', 'x', '{}')`,
        `UPDATE cells SET accuracy = 1`,
        `DELETE FROM sweep_cells`,
        `DELETE FROM cell_results`,
        `UPDATE selections SET ratio = 0`,
        `TRUNCATE examples`,
        `CREATE TABLE evil (x int)`,
        `SELECT * FROM cells`,
      ];
      for (const sql of attempts) {
        await expect(c.query(sql), sql).rejects.toThrow(/permission denied|must be owner|cannot (delete|update|insert)/);
      }
    });
    // ... and the data is untouched.
    const n = await asReadOnly((c) => c.query(`SELECT count(*)::int AS n FROM cell_results WHERE sweep = $1`, [sweepA]));
    expect(n.rows[0].n).toBeGreaterThan(0);
  });
});

describe('sweep progress (Prometheus) against a real worker', () => {
  const promVars = () => ({ sweep: `(${sweepA}|${sweepB})`, __rate_interval: '1m', __range: '10m' });

  it('the worker exported its metrics and the Temporal SDK metrics', () => {
    expect(metricsText).toMatch(/^icl_sweep_cells_completed_total\{/m);
    expect(temporalText).toMatch(/^temporal_worker_task_slots_used\{/m);
  });

  for (const q of promQueries(dashboards)) {
    it(`${q.where}: names only metrics a real worker exports, and evaluates to data`, async () => {
      const exported = new Set([...exposedNames(metricsText), ...exposedNames(temporalText), 'up']);
      const names = metricNames(q.expr);
      expect(names.length, q.expr).toBeGreaterThan(0);
      for (const n of names) expect(exported, `${q.where}: metric ${n} is not exported by the worker`).toContain(n);
      if (q.labelValues) {
        const res = await fetch(`${prom!.url}/api/v1/label/${q.labelValues.label}/values?${new URLSearchParams({ 'match[]': q.labelValues.metric })}`);
        const body = (await res.json()) as { status: string; data: string[] };
        expect(body.status).toBe('success');
        expect(body.data).toEqual(expect.arrayContaining([sweepA, sweepB]));
        return;
      }
      const data = await prom!.query(interpolatePromql(q.expr, promVars()));
      if (data.result.length === 0) {
        // A filtered expression (the ETA divides only by a throughput "> 0") is empty once rates fall to
        // zero, which depends on scrape timing; then every series it reads must still be there.
        expect(q.expr, `${q.where}: ${q.expr} returned nothing`).toMatch(/\)\s*[<>]=?\s*\d/);
        for (const n of names) expect((await prom!.query(n)).result.length, `${q.where}: ${n} has no series`).toBeGreaterThan(0);
      }
    });
  }

  const panelExpr = (title: string, refId = 'A') => {
    const panel = dashboards.flatMap((d) => d.panels).find((p) => p.title === title);
    if (!panel) throw new Error(`no panel "${title}"`);
    return interpolatePromql(panel.targets.find((t: { refId: string }) => t.refId === refId).expr, promVars());
  };

  it('progress during a real sweep: done never goes down and never exceeds planned', async () => {
    const end = Date.now() / 1000;
    const series = async (refId: string) => {
      const data = await prom!.queryRange(panelExpr('Cells done / planned', refId), sweepAWindow.start - 2, end, 1);
      const s = data.result.find((r: any) => r.metric.sweep === sweepA);
      expect(s, `no ${refId} series for ${sweepA}`).toBeDefined();
      return new Map<number, number>(s.values.map(([t, v]: [number, string]) => [t, Number(v)]));
    };
    const done = await series('A');
    const planned = await series('B');
    // One sample a second over the sweep and the seconds after it.
    expect(done.size).toBeGreaterThan(3);
    let previous = 0;
    for (const [t, d] of done) {
      expect(d, `done went down at ${t}`).toBeGreaterThanOrEqual(previous);
      expect(d, `done above planned at ${t}`).toBeLessThanOrEqual(planned.get(t)!);
      previous = d;
    }
    // It reached the planned cells: the grid (2 modules x 2 layers x 2 ratios + the unpruned cell) and the test cells.
    expect(previous).toBe(planned.get([...done.keys()].pop()!));
    expect(previous).toBeGreaterThanOrEqual(MODULES.length * LAYERS.length * (RATIOS.length - 1) + 1 + 1);
  });

  it('after the sweeps complete: progress is exactly 100 %, the ETA zero or empty, and the cells were counted', async () => {
    const progress = await prom!.query(panelExpr('Progress'));
    expect(Object.fromEntries(progress.result.map((r: any) => [r.metric.sweep, Number(r.value[1])]))).toEqual({ [sweepA]: 1, [sweepB]: 1 });
    const eta = await prom!.query(panelExpr('ETA'));
    for (const r of eta.result) expect(Number(r.value[1])).toBe(0);
    const completed = await prom!.query(`sum(icl_sweep_cells_completed_total{sweep="${sweepA}"})`);
    expect(Number(completed.result[0].value[1])).toBeGreaterThan(0);
    const reused = await prom!.query(`sum(icl_sweep_cells_reused_total{sweep="${sweepB}"})`);
    expect(Number(reused.result[0].value[1])).toBeGreaterThan(0);
  });
});
