/**
 * scripts/start-services.sh starts the Postgres cluster on $PGPORT, beside the clusters already on
 * other ports (this machine's shared one on 5432 keeps running), and is idempotent. It creates a
 * cluster of its own on a free port for the test and drops it afterwards.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/temporal.ts';

const execFileP = promisify(execFile);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'icl-services-'));
let created: string[] | undefined;

afterAll(async () => {
  if (created) await execFileP('pg_dropcluster', ['--stop', ...created]).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function clusters(): Promise<{ version: string; name: string; port: number; status: string }[]> {
  const { stdout } = await execFileP('pg_lsclusters', ['--no-header']);
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [version, name, port, status] = l.split(/\s+/);
      return { version, name, port: Number(port), status };
    });
}

describe('scripts/start-services.sh', () => {
  it('starts the cluster on PGPORT beside a cluster already running on another port', async () => {
    const before = await clusters();
    expect(before.some((c) => c.status === 'online')).toBe(true); // the shared cluster
    const port = await freePort();
    const env = { ...process.env, PGPORT: String(port), ICL_SWEEP_SERVICES_DIR: tmp, DATABASE_URL: '', TEMPORAL_ADDRESS: '' };
    const run = () => execFileP('bash', ['scripts/start-services.sh'], { cwd: REPO_ROOT, env, timeout: 120_000 });
    const first = await run().catch((e: { code: number; stdout: string; stderr: string }) => e);
    const mine = (await clusters()).find((c) => c.port === port);
    if (mine) created = [mine.version, mine.name];
    expect((first as { code?: number }).code, JSON.stringify(first)).toBeUndefined();
    expect((first as { stdout: string }).stdout).toContain(`DATABASE_URL=postgres://postgres:***@localhost:${port}/postgres`);
    expect(mine).toMatchObject({ status: 'online' });
    expect(mine!.name).toBe(`icl_sweep_${port}`);
    // Reachable over TCP with the password the tests use.
    const client = new pg.Client({ connectionString: `postgres://postgres:postgres@localhost:${port}/postgres` });
    await client.connect();
    expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await client.end();
    // The clusters that were there are as they were.
    const after = await clusters();
    for (const c of before) expect(after.find((a) => a.version === c.version && a.name === c.name)).toEqual(c);
    // Idempotent: a second run reuses the running cluster.
    await run();
    expect((await clusters()).filter((c) => c.port === port)).toHaveLength(1);
  });
});
