/** drizzle-kit configuration: `npm run db:generate` (SQL migrations from db/schema), `npm run db:migrate` uses db/migrate.ts. */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema/index.ts',
  out: './db/migrations',
  // Only `drizzle-kit push/pull/studio` connect; credentials come from the environment alone.
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres:postgres@localhost:5432/postgres' },
  strict: true,
  verbose: true,
});
