/**
 * `npm run db:sql -- "select * from cell_results where sweep = 'demo'"`: runs one SQL statement on
 * DATABASE_URL, or on the embedded PGlite database (./data/pglite) when unset, and prints the rows.
 * For the embedded database, which psql cannot reach. `--json` prints JSON instead of a table.
 */
import { createDb, queryRows } from './client.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const query = args.filter((a) => a !== '--json').join(' ').trim();
if (!query) {
  console.error('usage: npm run db:sql -- [--json] "<SQL>"   e.g. "select * from cell_results limit 20"');
  process.exit(2);
}
const db = await createDb().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
try {
  const rows = await queryRows(db, query);
  if (json) console.log(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) console.log('(no rows)');
  else console.table(rows);
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
} finally {
  await db.close();
}
