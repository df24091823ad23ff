import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { assertMigrated, createDb, describeUrl, queryRows } from '../../db/client.ts';
import { createTestDatabase } from '../support/database.ts';
import { REPO_ROOT } from '../support/temporal.ts';

const execFileP = promisify(execFile);

/** A port on localhost that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('createDb', () => {
  it('an unreachable database gives an error naming host and port, without the password', async () => {
    const port = await closedPort();
    const url = `postgres://alice:s3cr3t-pw@127.0.0.1:${port}/results`;
    const err = await createDb(url).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(`127.0.0.1:${port}`);
    expect(err!.message).toMatch(/unreachable/i);
    expect(err!.message).not.toContain('s3cr3t-pw');
  });

  it('an unknown host is unreachable too', async () => {
    const err = await createDb('postgres://u:pw-xyz@no-such-host.invalid:6543/db', { connectTimeoutMs: 5000 }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/unreachable at no-such-host\.invalid:6543/i);
    expect((err as Error).message).not.toContain('pw-xyz');
  });

  it('a wrong password names the server but not the password', async () => {
    const t = await createTestDatabase({ migrate: false });
    try {
      const u = new URL(t.url);
      u.password = 'definitely-wrong-pw';
      const err = await createDb(u.toString()).catch((e: Error) => e);
      // Local trust authentication may accept any password; only check the message when it failed.
      if (err instanceof Error) {
        expect(err.message).toContain(`${u.hostname}:${u.port || 5432}`);
        expect(err.message).not.toContain('definitely-wrong-pw');
      } else {
        await err.close();
      }
    } finally {
      await t.drop();
    }
  });

  it('a URL of another database (mysql://) is refused, not used as Postgres on localhost', async () => {
    for (const url of ['mysql://root:s3cr3t-pw@db.example:3306/results', 'localhost:5432/results']) {
      const err = await createDb(url).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
      expect((err as Error).message).not.toContain('s3cr3t-pw');
    }
    expect(((await createDb('mysql://x@y/z').catch((e: Error) => e)) as Error).message).toMatch(/not a mysql: URL$/);
    // postgresql:// is the same server type
    const t = await createTestDatabase({ migrate: false });
    try {
      const db = await createDb(t.url.replace(/^postgres:/, 'postgresql:'));
      expect((await queryRows(db, 'select 1 as one'))[0]).toEqual({ one: 1 });
      await db.close();
    } finally {
      await t.drop();
    }
  });

  it('an unmigrated database gets "run npm run db:migrate", not a driver error', async () => {
    const t = await createTestDatabase({ migrate: false });
    try {
      await expect(assertMigrated(t.db)).rejects.toThrow(/has no icl-sweep tables: run `npm run db:migrate`/);
      const r = await execFileP(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'results', 'some-sweep'], {
        cwd: REPO_ROOT,
        env: { ...process.env, DATABASE_URL: t.url },
      }).catch((e: { code: number; stderr: string }) => e);
      expect((r as { code: number }).code).toBe(1);
      expect((r as { stderr: string }).stderr).toMatch(/^The database at .* has no icl-sweep tables: run `npm run db:migrate` \(with the same DATABASE_URL\) first\.\n$/);
    } finally {
      await t.drop();
    }
  });

  it('a database migrated by an older version is told to migrate too', async () => {
    const t = await createTestDatabase();
    try {
      await assertMigrated(t.db);
      await queryRows(t.db, 'delete from drizzle.__drizzle_migrations where id = (select max(id) from drizzle.__drizzle_migrations)');
      await expect(assertMigrated(t.db)).rejects.toThrow(/has \d+ of the \d+ icl-sweep migrations: run `npm run db:migrate`/);
    } finally {
      await t.drop();
    }
  });

  it('describeUrl never shows credentials', () => {
    expect(describeUrl('postgres://bob:hunter2@db.example:5433/sweeps')).toBe('db.example:5433/sweeps');
    expect(describeUrl('postgres://bob:hunter2@db.example/sweeps')).toBe('db.example:5432/sweeps');
  });

  it('gives the same query API on Postgres', async () => {
    const t = await createTestDatabase();
    try {
      expect(t.db.driver).toBe('pg');
      const r = await queryRows(t.db, 'select 1 as one');
      expect(r[0]).toEqual({ one: 1 });
    } finally {
      await t.drop();
    }
  });
});
