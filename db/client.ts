/**
 * Database connection: Postgres through node-postgres when a URL (or DATABASE_URL) is given, else
 * an embedded PGlite database kept under a data folder. Both give the same drizzle query API.
 * Credentials come only from the URL / environment and never appear in logs or error messages.
 */
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import * as schema from './schema/index.ts';

export type Schema = typeof schema;

/** A drizzle database (either driver) plus what it needs to be closed. */
export type Db = PgDatabase<PgQueryResultHKT, Schema> & {
  /** 'pg': a node-postgres Pool; 'pglite': the embedded database. */
  readonly driver: 'pg' | 'pglite';
  /** Where it is, without credentials: "host:port/database" or the PGlite data folder. */
  readonly location: string;
  close(): Promise<void>;
};

export interface CreateDbOptions {
  /** PGlite data folder when no URL is given; default $ICL_SWEEP_PGLITE_DIR or ./data/pglite. "memory://" keeps it in memory. */
  dataDir?: string;
  /** node-postgres pool size (default $DATABASE_POOL_SIZE or 10). */
  poolSize?: number;
  /** Milliseconds to wait for a connection (default $DATABASE_CONNECT_TIMEOUT_MS or 10000). */
  connectTimeoutMs?: number;
}

export const DEFAULT_PGLITE_DIR = './data/pglite';
/** The folder of the generated SQL migrations. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

/** host:port/database of a postgres URL, never the user's password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || process.env.PGHOST || 'localhost';
    const port = u.port || process.env.PGPORT || '5432';
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
    return `${host}:${port}/${database}`;
  } catch {
    return '(unparseable database URL)';
  }
}

function redact(text: string, url: string): string {
  try {
    const pw = decodeURIComponent(new URL(url).password);
    if (pw) return text.split(pw).join('***');
  } catch {
    /* ignore */
  }
  return text;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/** The error for a failed connection, naming where (host:port/database) but not the password. */
export function connectionError(url: string, cause: unknown): Error {
  const where = describeUrl(url);
  const c = cause as { code?: string; message?: string; errors?: { code?: string; message?: string }[] };
  const code = c?.code ?? c?.errors?.[0]?.code;
  const detail = redact(String(c?.message || c?.errors?.map((e) => e.message).join('; ') || code || cause), url);
  const unreachable = code === undefined || UNREACHABLE_CODES.has(code) || /timeout|terminated/i.test(detail);
  const message = unreachable
    ? `Database unreachable at ${where}: ${detail}. Check DATABASE_URL and that Postgres is running and reachable.`
    : `Cannot connect to the database at ${where}: ${detail}. Check DATABASE_URL.`;
  return new Error(message, { cause });
}

function isPgliteUrl(url: string): boolean {
  return url.startsWith('pglite:') || url.startsWith('memory://') || url.startsWith('file://');
}

/**
 * Opens the database. `url` (or DATABASE_URL): a postgres:// or postgresql:// URL -> node-postgres
 * Pool (checked with one query; an unreachable server throws an Error naming host:port/database). No
 * URL -> PGlite under opts.dataDir ($ICL_SWEEP_PGLITE_DIR, default ./data/pglite). "pglite:<folder>",
 * "file://<folder>" or "memory://" forces PGlite. Any other URL (mysql://, a typo) is refused rather
 * than guessed at. Does not apply migrations: call migrate(db).
 */
export async function createDb(url?: string, opts: CreateDbOptions = {}): Promise<Db> {
  const target = url ?? (process.env.DATABASE_URL || undefined);
  if (target !== undefined && !isPgliteUrl(target) && !/^postgres(ql)?:\/\//i.test(target)) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(target)?.[1];
    throw new Error(
      `DATABASE_URL must be a postgres:// or postgresql:// URL (or pglite:<folder>, file://<folder>, memory:// for the embedded database), ` +
        `not ${scheme ? `a ${scheme}: URL` : 'something without a scheme'}`,
    );
  }
  if (target === undefined || isPgliteUrl(target)) {
    let dataDir = opts.dataDir ?? process.env.ICL_SWEEP_PGLITE_DIR ?? DEFAULT_PGLITE_DIR;
    if (target?.startsWith('pglite:')) dataDir = target.slice('pglite:'.length).replace(/^\/\//, '') || DEFAULT_PGLITE_DIR;
    else if (target?.startsWith('file://')) dataDir = fileURLToPath(target);
    else if (target?.startsWith('memory://')) dataDir = 'memory://';
    return openPglite(dataDir);
  }
  return openPg(target, opts);
}

/** PGlite allows one process (and one instance) per data folder: a lock file with the owner's pid guards it. */
function lockDataDir(dir: string): () => void {
  const lockPath = path.join(dir, '.icl-sweep.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lockPath, 'utf8').trim());
      let alive = false;
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (e) {
          alive = (e as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) {
        throw new Error(
          `The embedded database at ${dir} is already open in process ${pid}${pid === process.pid ? ' (this one)' : ''}. ` +
            'PGlite allows one process at a time; set DATABASE_URL to a Postgres server to share results between processes.',
        );
      }
      rmSync(lockPath, { force: true }); // stale lock of a dead process
    }
  }
  throw new Error(`Could not lock the embedded database at ${dir}`);
}

async function openPglite(dataDir: string): Promise<Db> {
  const inMemory = dataDir.startsWith('memory://');
  const location = inMemory ? 'memory://' : path.resolve(dataDir);
  let unlock = () => {};
  if (!inMemory) {
    mkdirSync(location, { recursive: true });
    unlock = lockDataDir(location);
  }
  let client: PGlite;
  try {
    client = inMemory ? new PGlite() : new PGlite(location);
    await client.waitReady;
  } catch (err) {
    unlock();
    throw err;
  }
  const db = drizzlePglite({ client, schema });
  let closed = false;
  return Object.assign(db, {
    driver: 'pglite' as const,
    location,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  }) as unknown as Db;
}

async function openPg(url: string, opts: CreateDbOptions): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? (Number(process.env.DATABASE_POOL_SIZE) || 10),
    connectionTimeoutMillis: opts.connectTimeoutMs ?? (Number(process.env.DATABASE_CONNECT_TIMEOUT_MS) || 10_000),
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw connectionError(url, err);
  }
  const db = drizzlePg({ client: pool, schema });
  let closed = false;
  return Object.assign(db, {
    driver: 'pg' as const,
    location: describeUrl(url),
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  }) as unknown as Db;
}

/** Applies db/migrations (drizzle's migrator; already applied ones are skipped). Safe to run concurrently on Postgres. */
export async function migrate(db: Db): Promise<void> {
  const config = { migrationsFolder: MIGRATIONS_FOLDER };
  if (db.driver === 'pglite') {
    await migratePglite(db as never, config);
  } else {
    // Serialize concurrent migrators (several workers starting at once) with an advisory lock.
    const pool = (db as unknown as { $client: pg.Pool }).$client;
    const client = await pool.connect();
    try {
      await client.query('select pg_advisory_lock(7402190651)');
      try {
        await migratePg(drizzlePg({ client: client as unknown as pg.Pool }), config);
      } finally {
        await client.query('select pg_advisory_unlock(7402190651)');
      }
    } finally {
      client.release();
    }
  }
}

/**
 * Throws an Error saying to run `npm run db:migrate` when the database lacks migrations this code
 * needs (a fresh database, or one migrated by an older version), instead of a driver error on the
 * first missing table.
 */
export async function assertMigrated(db: Db): Promise<void> {
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
  let applied = 0;
  try {
    const rows = await queryRows<{ n: number | string }>(db, 'select count(*) as n from drizzle.__drizzle_migrations');
    applied = Number(rows[0].n);
  } catch (err) {
    // 42P01: no such table; 3F000: no such schema: never migrated.
    if (!['42P01', '3F000'].includes((err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code ?? '')) throw err;
  }
  if (applied < journal.entries.length) {
    const state = applied === 0 ? 'has no icl-sweep tables' : `has ${applied} of the ${journal.entries.length} icl-sweep migrations`;
    throw new Error(`The database at ${db.location} ${state}: run \`npm run db:migrate\` (with the same DATABASE_URL) first.`);
  }
}

/**
 * The database for reading results (the CLI's results and report): the embedded one is this machine's
 * own and is migrated on the spot; a server's must have been migrated (assertMigrated).
 */
export async function openForReading(url?: string): Promise<Db> {
  const db = await createDb(url);
  try {
    if (db.driver === 'pglite') await migrate(db);
    else await assertMigrated(db);
    return db;
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Keys per statement for IN lists. */
export const KEY_CHUNK = 1000;

/** `items` cut into runs of at most `size` (statements stay under Postgres' parameter limit). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Rows of a raw SQL query (drizzle `sql\`...\`` or a string), the same on both drivers. */
export async function queryRows<T = Record<string, unknown>>(db: Db, query: SQL | string): Promise<T[]> {
  const result = (await db.execute(query as SQL)) as unknown as { rows: T[] };
  return result.rows;
}
