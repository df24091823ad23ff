import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb, migrate, queryRows, type Db } from '../../db/client.ts';
import { cellResults, findDoneCells, linkCells, saveCellResult, claimSweep } from '../../db/queries.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { outcome, times } from './helpers.ts';

/** Every migration of db/migrations, as drizzle-kit lists them. */
const JOURNAL = JSON.parse(readFileSync(new URL('../../db/migrations/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] };
const TABLES = ['cell_conflicts', 'cells', 'demonstration_draws', 'examples', 'selection_draws', 'selections', 'sweep_cells', 'sweeps'];
const VIEWS = ['cell_deltas', 'cell_demonstrations', 'cell_draw_summaries', 'cell_results', 'selection_results'];

async function relations(db: Db): Promise<{ tables: string[]; views: string[] }> {
  const t = await queryRows<{ table_name: string }>(db, 
    sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`,
  );
  const v = await queryRows<{ table_name: string }>(db, 
    sql`select table_name from information_schema.views where table_schema = 'public' order by 1`,
  );
  return { tables: t.map((r) => r.table_name), views: v.map((r) => r.table_name) };
}

describe('migrations on Postgres', () => {
  let t: TestDatabase | undefined;
  afterAll(async () => {
    await t?.drop();
  });

  it('apply on an empty database, twice without harm', async () => {
    t = await createTestDatabase({ migrate: false });
    expect(await relations(t.db)).toEqual({ tables: [], views: [] });
    await migrate(t.db);
    expect(await relations(t.db)).toEqual({ tables: TABLES, views: VIEWS });
    await migrate(t.db);
    const applied = await queryRows<{ n: number }>(t.db, sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
    expect(applied[0].n).toBe(JOURNAL.entries.length); // each migration once
  });

  it('concurrent migrators do not trip over each other', async () => {
    const u = await createTestDatabase({ migrate: false });
    const others = await Promise.all([createDb(u.url), createDb(u.url), createDb(u.url)]);
    try {
      await Promise.all(others.map((d) => migrate(d)));
      expect(await relations(u.db)).toEqual({ tables: TABLES, views: VIEWS });
    } finally {
      await Promise.all(others.map((d) => d.close()));
      await u.drop();
    }
  });
});

describe('migrations on PGlite', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'icl-pglite-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('apply under a data folder, and data persists across reopen', async () => {
    const dataDir = path.join(dir, 'pglite');
    // Without a URL and without DATABASE_URL, createDb opens PGlite under the data folder.
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    let db: Db;
    try {
      db = await createDb(undefined, { dataDir });
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
    expect(db.driver).toBe('pglite');
    expect(db.location).toBe(path.resolve(dataDir));
    await migrate(db);
    expect(await relations(db)).toEqual({ tables: TABLES, views: VIEWS });
    await claimSweep(db, { name: 's', workflowId: 'w', spec: { datasets: [{ name: 'd', task: 'sst2' }] } });
    await linkCells(db, 's', [{ key: 'k', model: 'm', dataset: 'd', module: 'q_proj', layer: 1, ratio: 0.5, split: 'test' }]);
    await saveCellResult(db, { key: 'k', module: 'q_proj', layer: 1, ratio: 0.5, split: 'test', outcome: outcome(4, 3), worker: 'w1', ...times });
    await db.close();

    const again = await createDb(`pglite:${dataDir}`);
    try {
      // A second instance on the same folder would corrupt it: refused with a clear message.
      await expect(createDb(`pglite:${dataDir}`)).rejects.toThrow(/already open in process \d+.*DATABASE_URL/);
      await migrate(again);
      const rows = await cellResults(again, 's');
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ sweep: 's', task: 'sst2', status: 'done', accuracy: 0.75, n: 4 });
    } finally {
      await again.close();
    }
  });

  it('works in memory, with concurrent writers', async () => {
    const db = await createDb('memory://');
    try {
      await migrate(db);
      expect(await relations(db)).toEqual({ tables: TABLES, views: VIEWS });
      await claimSweep(db, { name: 's', workflowId: 'w', spec: {} });
      const keys = Array.from({ length: 8 }, (_, i) => `k${i % 4}`);
      await Promise.all([
        ...keys.map((key) => saveCellResult(db, { key, module: 'q_proj', layer: 0, ratio: 0.5, split: 'test', outcome: outcome(100, 50), worker: 'w', ...times })),
        linkCells(db, 's', keys.map((key) => ({ key, model: 'm', dataset: 'd', module: 'q_proj', layer: 0, ratio: 0.5, split: 'test' }))),
      ]);
      expect(await findDoneCells(db, keys)).toEqual(new Set(['k0', 'k1', 'k2', 'k3']));
      const n = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from examples`);
      expect(n[0].n).toBe(400);
    } finally {
      await db.close();
    }
  });
});
