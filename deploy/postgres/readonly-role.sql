-- Read-only database role for Grafana (and any other dashboard or SQL reader).
--
-- Run after the migrations (the views must exist), as the owner of the icl-sweep tables:
--   psql "$DATABASE_URL" -v ro_role=icl_sweep_grafana -v ro_password="$ICL_SWEEP_GRAFANA_DB_PASSWORD" \
--        -f deploy/postgres/readonly-role.sql
-- or deploy/postgres/create-readonly-role.sh, which reads the same from the environment.
-- Idempotent: rerun it after new migrations add views (it re-grants) or to rotate the password.
--
-- What the role can do: connect, and SELECT from the documented views cell_results, cell_deltas,
-- selection_results, cell_demonstrations and cell_draw_summaries (the views run with their owner's rights,
-- so the base tables need no grant).
-- What it cannot: INSERT / UPDATE / DELETE / TRUNCATE anything, create objects in schema public,
-- read the base tables directly. default_transaction_read_only is only a second line of defence
-- (a session can turn it off); the privileges are what keeps the role from writing.
\set ON_ERROR_STOP on
\if :{?ro_role}
\else
\set ro_role icl_sweep_grafana
\endif
\if :{?ro_password}
\else
\echo 'readonly-role.sql: set ro_password (psql -v ro_password=...)'
\quit 3
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'ro_role') AS ro_missing \gset
\if :ro_missing
CREATE ROLE :"ro_role" LOGIN PASSWORD :'ro_password';
\else
ALTER ROLE :"ro_role" LOGIN PASSWORD :'ro_password';
\endif
ALTER ROLE :"ro_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20;
ALTER ROLE :"ro_role" SET default_transaction_read_only = on;
ALTER ROLE :"ro_role" SET statement_timeout = '60s';

SELECT current_database() AS ro_database \gset
GRANT CONNECT ON DATABASE :"ro_database" TO :"ro_role";
GRANT USAGE ON SCHEMA public TO :"ro_role";
-- Postgres < 15 lets every role create tables in schema public; take that away.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"ro_role";
GRANT SELECT ON cell_results, cell_deltas, selection_results, cell_demonstrations, cell_draw_summaries TO :"ro_role";
