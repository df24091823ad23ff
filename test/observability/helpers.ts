/**
 * Shared helpers of the observability tests: external tools (found on PATH, failing clearly when
 * missing), the dashboards' queries, PromQL metric names, a loopback Prometheus, free ports.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { waitFor } from '../support/temporal.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const DASHBOARDS_DIR = path.join(REPO, 'dashboards');
export const DEPLOY_DIR = path.join(REPO, 'deploy');
export const execFileP = promisify(execFile);

/** How CI gets each tool (printed when one is missing). */
export const INSTALL_HINTS: Record<string, string> = {
  prometheus: 'apt-get install -y prometheus (Debian; also brings promtool)',
  promtool: 'apt-get install -y prometheus (Debian)',
  psql: 'apt-get install -y postgresql-client (or postgresql)',
  docker: 'the docker CLI (docker-ce-cli or docker.io) plus the compose plugin: see deploy/README.md "CI tools"',
  kubeconform:
    'go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0 and put $(go env GOPATH)/bin on PATH',
  python3: 'python3 with `pip install kubernetes-validate` (ships the Kubernetes JSON schemas kubeconform reads offline)',
};

/** Absolute path of `name` on PATH (plus $(go env GOPATH)/bin for Go tools), or a clear error. */
export function findTool(name: string): string {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const gopath = process.env.GOPATH || path.join(os.homedir(), 'go');
  dirs.push(path.join(gopath, 'bin'));
  for (const d of dirs) {
    const p = path.join(d, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`required tool "${name}" not found on PATH. Install it: ${INSTALL_HINTS[name] ?? name}`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Dashboards

export interface Dashboard {
  uid: string;
  title: string;
  file: string;
  templating: { list: any[] };
  panels: any[];
}

export function loadDashboards(): Dashboard[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ ...JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')), file: f }));
}

/** Panels, including those nested in rows. */
export function allPanels(d: Dashboard): any[] {
  const out: any[] = [];
  const walk = (ps: any[]) => {
    for (const p of ps ?? []) {
      out.push(p);
      if (p.panels) walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

export interface SqlQuery {
  where: string;
  id: string;
  sql: string;
  panel?: any;
}

const isPostgres = (ds: any) => ds?.type === 'grafana-postgresql-datasource' || ds?.type === 'postgres';
const isPrometheus = (ds: any) => ds?.type === 'prometheus';

export function sqlQueries(dashboards: Dashboard[]): SqlQuery[] {
  const out: SqlQuery[] = [];
  for (const d of dashboards) {
    for (const v of d.templating?.list ?? []) {
      if (isPostgres(v.datasource)) out.push({ where: `${d.file} variable ${v.name}`, id: `${d.uid}/var/${v.name}`, sql: typeof v.query === 'string' ? v.query : v.query?.rawSql });
    }
    for (const p of allPanels(d)) {
      for (const t of p.targets ?? []) {
        const ds = t.datasource ?? p.datasource;
        if (isPostgres(ds)) out.push({ where: `${d.file} panel ${p.id} "${p.title}" ${t.refId}`, id: `${d.uid}/${p.id}/${t.refId}`, sql: t.rawSql, panel: p });
      }
    }
  }
  return out;
}

export interface PromQuery {
  where: string;
  id: string;
  expr: string;
  /** label_values(metric, label) variable queries (a Grafana function, not PromQL). */
  labelValues?: { metric: string; label: string };
}

export function promQueries(dashboards: Dashboard[]): PromQuery[] {
  const out: PromQuery[] = [];
  for (const d of dashboards) {
    for (const v of d.templating?.list ?? []) {
      if (!isPrometheus(v.datasource)) continue;
      const q: string = typeof v.query === 'string' ? v.query : v.query?.query;
      const m = /^label_values\(\s*([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s*,\s*(\w+)\s*\)$/.exec(q.trim());
      if (m) out.push({ where: `${d.file} variable ${v.name}`, id: `${d.uid}/var/${v.name}`, expr: m[1], labelValues: { metric: m[1], label: m[2] } });
      else out.push({ where: `${d.file} variable ${v.name}`, id: `${d.uid}/var/${v.name}`, expr: q });
    }
    for (const p of allPanels(d)) {
      for (const t of p.targets ?? []) {
        const ds = t.datasource ?? p.datasource;
        if (isPrometheus(ds)) out.push({ where: `${d.file} panel ${p.id} "${p.title}" ${t.refId}`, id: `${d.uid}/${p.id}/${t.refId}`, expr: t.expr });
      }
    }
  }
  return out;
}

/** Grafana's interpolation of `${name:sqlstring}` / `$name` for single values (what Grafana sends to Postgres). */
export function interpolateSql(sql: string, vars: Record<string, string>): string {
  const quote = (v: string) => `'${v.replace(/'/g, "''")}'`;
  const out = sql
    .replace(/\$\{(\w+):sqlstring\}/g, (_, n: string) => {
      if (!(n in vars)) throw new Error(`unknown variable ${n}`);
      return quote(vars[n]);
    })
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => {
      const n = (a ?? b)!;
      if (!(n in vars)) throw new Error(`unknown variable ${n}`);
      return vars[n];
    });
  return out;
}

/** Grafana's Prometheus interpolation for the variables our dashboards use. */
export function interpolatePromql(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (_, a?: string, b?: string) => {
    const n = (a ?? b)!;
    if (!(n in vars)) throw new Error(`unknown variable $${n} in ${expr}`);
    return vars[n];
  });
}

const PROMQL_WORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan',
]);

/** Metric names an expression selects (heuristic parser good enough for our dashboards). */
export function metricNames(expr: string): string[] {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  const re = /[a-zA-Z_:][\w:]*/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const word = m[0];
    const after = s.slice(m.index + word.length).trimStart();
    const before = s.slice(0, m.index);
    if (after.startsWith('(')) continue; // a function or aggregation
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    if (/\d$/.test(before.trimEnd()) && /^e\d*$/i.test(word)) continue;
    if (/[\d.]$/.test(before)) continue; // part of a number
    names.add(word);
  }
  s = '';
  return [...names];
}

// ---------------------------------------------------------------------------------------------
// Prometheus on loopback

export interface RunningPrometheus {
  url: string;
  process: ChildProcess;
  log(): string;
  query(expr: string): Promise<{ resultType: string; result: any[] }>;
  /** A range query: one series per label set, values [unix seconds, string] every `step` seconds. */
  queryRange(expr: string, start: number, end: number, step: number): Promise<{ resultType: string; result: any[] }>;
  stop(): Promise<void>;
}

/**
 * Runs Debian's prometheus with deploy/prometheus/prometheus.yml, its worker jobs pointed at
 * loopback targets (job name -> host:port list), scraping every second.
 */
export async function startPrometheus(dir: string, targets: Record<string, string[]>): Promise<RunningPrometheus> {
  const bin = findTool('prometheus');
  const config = YAML.parse(readFileSync(path.join(DEPLOY_DIR, 'prometheus/prometheus.yml'), 'utf8'));
  config.global = { ...config.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' };
  const jobs = new Set(Object.keys(targets));
  for (const job of jobs) {
    if (!config.scrape_configs.some((c: any) => c.job_name === job)) throw new Error(`deploy/prometheus/prometheus.yml has no job ${job}`);
  }
  config.scrape_configs = config.scrape_configs
    .filter((c: any) => jobs.has(c.job_name))
    .map((c: any) => {
      const { dns_sd_configs: _d, static_configs: _s, ...rest } = c;
      return { ...rest, scrape_interval: '1s', scrape_timeout: '1s', static_configs: [{ targets: targets[c.job_name] }] };
    });
  mkdirSync(dir, { recursive: true });
  const configPath = path.join(dir, 'prometheus.yml');
  writeFileSync(configPath, YAML.stringify(config));
  const port = await freePort();
  let log = '';
  const child = spawn(
    bin,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (b) => (log += b.toString()));
  child.stderr?.on('data', (b) => (log = (log + b.toString()).slice(-20_000)));
  const url = `http://127.0.0.1:${port}`;
  const api = async (endpoint: string, params: Record<string, string>) => {
    const res = await fetch(`${url}/api/v1/${endpoint}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
    const body = (await res.json()) as any;
    if (body.status !== 'success') throw new Error(`PromQL error for ${params.query}: ${body.errorType}: ${body.error}`);
    return body.data;
  };
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${log}`);
    return (await fetch(`${url}/-/ready`)).ok;
  }, 30_000, 250, 'prometheus ready');
  return {
    url,
    process: child,
    log: () => log,
    async query(expr: string) {
      return api('query', { query: expr });
    },
    async queryRange(expr: string, start: number, end: number, step: number) {
      return api('query_range', { query: expr, start: String(start), end: String(end), step: String(step) });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Metric names in a Prometheus text exposition. */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    names.add(line.split(/[{ ]/)[0]);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes schemas for kubeconform, offline

/**
 * The Kubernetes JSON schemas shipped by the PyPI package kubernetes-validate, turned into the
 * standalone files kubeconform reads from a local -schema-location (its own default location is a
 * URL this network cannot reach). Returns the schema-location template.
 */
export async function kubeconformSchemas(dir: string, kinds: { kind: string; apiVersion: string }[], k8sVersion = '1.33.0'): Promise<string> {
  const python = findTool('python3');
  let pkg: string;
  try {
    const { stdout } = await execFileP(python, ['-c', 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))']);
    pkg = stdout.trim();
  } catch {
    throw new Error(`Python package kubernetes-validate missing. Install it: ${INSTALL_HINTS.python3}`);
  }
  const src = path.join(pkg, 'kubernetes-json-schema', `v${k8sVersion}-local-strict`);
  if (!existsSync(src)) throw new Error(`kubernetes-validate has no schemas for Kubernetes ${k8sVersion} (${src})`);
  const defs = JSON.parse(readFileSync(path.join(src, '_definitions.json'), 'utf8')).$defs;
  mkdirSync(dir, { recursive: true });
  for (const { kind, apiVersion } of kinds) {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    const name = `${kind.toLowerCase()}${group ? `-${group.split('.')[0]}` : ''}-${version}`;
    const file = path.join(src, `${name}.json`);
    if (!existsSync(file)) throw new Error(`no schema ${name}.json for ${apiVersion} ${kind} in ${src}`);
    const schema = JSON.parse(readFileSync(file, 'utf8').split('/api/_definitions.json#').join('#'));
    delete schema.$id;
    schema.$defs = defs;
    writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(schema));
  }
  return path.join(dir, '{{.ResourceKind}}{{.KindSuffix}}.json');
}
