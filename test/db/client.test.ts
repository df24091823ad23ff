import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { createDb, describeUrl, queryRows } from '../../db/client.ts';
import { createTestDatabase } from '../support/database.ts';

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
