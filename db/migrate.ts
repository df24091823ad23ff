/** `npm run db:migrate`: applies db/migrations to DATABASE_URL (or the embedded PGlite database when unset). */
import { createDb, migrate } from './client.ts';

const db = await createDb().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
try {
  await migrate(db);
  console.log(`Migrations applied (${db.driver}: ${db.location}).`);
} catch (err) {
  console.error(`Migration failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await db.close();
}
