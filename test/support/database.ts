/**
 * A fresh, migrated Postgres database per test file, on the server of DATABASE_URL
 * (default postgres://postgres:postgres@localhost:5432/postgres). Fails (does not skip) when the
 * server is unreachable.
 *
 *   const t = await createTestDatabase();   // in beforeAll
 *   // t.url: postgres URL of the new database (give it to workers/activities as DATABASE_URL)
 *   // t.db:  an open Db (db/client.ts) on it, migrations applied
 *   await t.drop();                         // in afterAll: closes t.db and drops the database
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connectionError, createDb, migrate, type Db } from '../../db/client.ts';

export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres:postgres@localhost:5432/postgres';

export interface TestDatabase {
  /** URL of the fresh database. */
  url: string;
  name: string;
  db: Db;
  /** Closes db and drops the database (other connections to it are terminated). */
  drop(): Promise<void>;
}

export function serverUrl(): string {
  return process.env.DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
}

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw connectionError(url, err);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function createTestDatabase(opts: { prefix?: string; migrate?: boolean } = {}): Promise<TestDatabase> {
  const base = serverUrl();
  const name = `${opts.prefix ?? 'icl_test'}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`.toLowerCase();
  await admin(base, (c) => c.query(`CREATE DATABASE "${name}"`));
  const u = new URL(base);
  u.pathname = `/${name}`;
  const url = u.toString();
  let db: Db;
  try {
    db = await createDb(url);
    if (opts.migrate !== false) await migrate(db);
  } catch (err) {
    await admin(base, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).catch(() => {});
    throw err;
  }
  let dropped = false;
  return {
    url,
    name,
    db,
    async drop() {
      if (dropped) return;
      dropped = true;
      await db.close().catch(() => {});
      await admin(base, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}
