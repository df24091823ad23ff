#!/usr/bin/env bash
# Creates (or updates) the read-only role Grafana uses. Needs psql.
#   DATABASE_URL                    admin connection to the icl-sweep database (owner of its tables)
#   ICL_SWEEP_GRAFANA_DB_USER       role name (default icl_sweep_grafana)
#   ICL_SWEEP_GRAFANA_DB_PASSWORD   its password (required; never put it in a file under version control)
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL (admin connection to the icl-sweep database)}"
: "${ICL_SWEEP_GRAFANA_DB_PASSWORD:?set ICL_SWEEP_GRAFANA_DB_PASSWORD}"
here="$(cd "$(dirname "$0")" && pwd)"
exec psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 \
  -v ro_role="${ICL_SWEEP_GRAFANA_DB_USER:-icl_sweep_grafana}" \
  -v ro_password="$ICL_SWEEP_GRAFANA_DB_PASSWORD" \
  -f "$here/readonly-role.sql"
