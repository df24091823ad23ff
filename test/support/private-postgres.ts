/**
 * A Postgres server of the test's own (initdb + pg_ctl on a free port in a temp folder), for tests
 * that stop and start the database: the shared server is never touched. Uses Debian's
 * /usr/lib/postgresql/<version>/bin (the newest there) or initdb / pg_ctl on PATH. Postgres refuses
 * to run as root: as root the server runs as the `postgres` user (runuser), owning its folder.
 *
 *   const pg = await startPrivatePostgres();   // pg.url: postgres://postgres@127.0.0.1:<port>/postgres
 *   await pg.stop(); await pg.start();         // an outage
 *   await pg.destroy();                        // stops it and removes the folder
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../observability/helpers.ts';

const execFileP = promisify(execFile);

export interface PrivatePostgres {
  url: string;
  port: number;
  dir: string;
  /** Fast shutdown: connections are cut, as in a crash of the database host's service. */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

async function binDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = (await readdir(root)).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions.length) return path.join(root, versions[0], 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir && existsSync(path.join(dir, 'initdb'))) return dir;
  throw new Error('initdb not found (apt-get install postgresql, or put its bin folder on PATH)');
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = await binDir();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'icl-private-pg-'));
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { stdout } = await execFileP('id', ['-u', 'postgres']);
    const { stdout: gid } = await execFileP('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const run = (tool: string, args: string[]) =>
    asRoot ? execFileP('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]) : execFileP(path.join(bin, tool), args);
  const port = await freePort();
  await run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const pgCtl = (args: string[]) => run('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-o', options, '-w', '-t', '60', ...args]);
  await pgCtl(['start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    async stop() {
      await pgCtl(['-m', 'fast', 'stop']);
    },
    async start() {
      await pgCtl(['start']);
    },
    async destroy() {
      await pgCtl(['-m', 'immediate', 'stop']).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
